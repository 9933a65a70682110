"""Champion against challenger: the same held-out data for both, and a promotion rule with a margin.

The false-positive rate is each model's own: the share of held-out normal items over that model's
threshold, since each version alarms at its own threshold. AUROC counts only where operators have
labelled anomalies (with none it is undefined, not 0.5). A challenger is promoted unless it is worse
than the champion by more than the configured margin on either; a tie promotes, so the model keeps
following the data.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from sklearn.metrics import roc_auc_score

if TYPE_CHECKING:
    from anomaly.detector import Detector
    from anomaly.retrain.data import Anomalies, Dataset


@dataclass(frozen=True)
class Decision:
    """``promote`` or ``reject``, and the one line saying why."""

    promote: bool
    reason: str

    @property
    def name(self) -> str:
        return "promoted" if self.promote else "rejected"


def _scores(detector: Detector, data: Dataset | Anomalies) -> np.ndarray:
    if isinstance(data, np.ndarray):
        return np.asarray(detector.score_windows(data).scores, dtype=np.float64)
    return np.asarray(detector.score(data, maps=False).scores, dtype=np.float64)


def measure(detector: Detector, normal: Dataset, anomalies: Anomalies | None) -> dict[str, Any]:
    """FPR at the model's threshold on held-out normal data, and AUROC against labelled anomalies if any."""
    normal_scores = _scores(detector, normal)
    result: dict[str, Any] = {
        "threshold": float(detector.threshold or 0.0),
        "normal": len(normal_scores),
        "fpr": float(np.mean(normal_scores > detector.threshold)),
    }
    if anomalies is not None and len(anomalies):
        anomalous = _scores(detector, anomalies)
        labels = np.r_[np.zeros(len(normal_scores)), np.ones(len(anomalous))]
        result["anomalous"] = len(anomalous)
        result["auroc"] = float(roc_auc_score(labels, np.r_[normal_scores, anomalous]))
        result["recall"] = float(np.mean(anomalous > detector.threshold))
    return result


def decide(champion: dict[str, Any], challenger: dict[str, Any], fpr_margin: float, auroc_margin: float) -> Decision:
    """Promote unless the challenger's FPR is higher, or its AUROC lower, than the champion's by more than the margin."""
    fpr = f"FPR {challenger['fpr']:.3f} vs {champion['fpr']:.3f}"
    if challenger["fpr"] > champion["fpr"] + fpr_margin:
        return Decision(False, f"{fpr}: worse than the champion by more than the margin {fpr_margin}")
    if "auroc" in challenger and "auroc" in champion:
        auroc = f"AUROC {challenger['auroc']:.3f} vs {champion['auroc']:.3f}"
        if challenger["auroc"] < champion["auroc"] - auroc_margin:
            return Decision(False, f"{auroc}: worse than the champion by more than the margin {auroc_margin}")
        return Decision(True, f"{fpr}, {auroc}: within the margins {fpr_margin} and {auroc_margin}")
    return Decision(True, f"{fpr}: within the margin {fpr_margin} (no labelled anomalies, so no AUROC)")
