"""The champion/challenger rule: own-threshold FPR on the same held-out data, AUROC only with labels."""

from __future__ import annotations

import numpy as np

from anomaly.data.series import from_array
from anomaly.retrain.compare import decide, measure
from anomaly.scores import Scores


def test_a_challenger_no_worse_than_the_margin_is_promoted() -> None:
    decision = decide({"fpr": 0.02}, {"fpr": 0.025}, fpr_margin=0.01, auroc_margin=0.02)
    assert decision.promote and decision.name == "promoted"
    assert "no labelled anomalies" in decision.reason


def test_a_higher_false_positive_rate_than_the_margin_allows_is_rejected() -> None:
    decision = decide({"fpr": 0.02}, {"fpr": 0.05}, fpr_margin=0.01, auroc_margin=0.02)
    assert not decision.promote and decision.name == "rejected"
    assert decision.reason == "FPR 0.050 vs 0.020: worse than the champion by more than the margin 0.01"


def test_a_lower_auroc_is_rejected_even_at_a_better_false_positive_rate() -> None:
    decision = decide({"fpr": 0.05, "auroc": 0.95}, {"fpr": 0.0, "auroc": 0.7}, fpr_margin=0.01, auroc_margin=0.02)
    assert not decision.promote
    assert decision.reason.startswith("AUROC 0.700 vs 0.950")


class _Fixed:
    """Scores each step by its first channel, at threshold 0.5: a detector whose figures are known."""

    threshold = 0.5

    def score(self, data, maps: bool) -> Scores:
        return Scores(ids=list(data.ids), scores=data.values[:, 0], components={}, threshold=self.threshold)

    def score_windows(self, windows: np.ndarray) -> Scores:
        return Scores(ids=[], scores=windows[:, -1, 0], components={}, threshold=self.threshold)


def test_measure_counts_normal_items_over_the_models_own_threshold_and_ranks_anomalies() -> None:
    normal = from_array(np.array([[0.1], [0.2], [0.6], [0.3]]), "held out")
    anomalies = np.array([[[0.0], [0.9]], [[0.0], [0.25]]])
    result = measure(_Fixed(), normal, anomalies)  # type: ignore[arg-type]
    assert result["fpr"] == 0.25
    assert result["recall"] == 0.5
    # Of the 4 x 2 normal/anomalous pairs, the anomaly outscores the normal item in 6.
    assert result["auroc"] == 0.75
