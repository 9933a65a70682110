"""Score normalisation and threshold calibration, both fixed on held-out normal data at training time.

Scores are never normalised by the batch being scored: a sample's score must not depend on
its neighbours. Each component is standardised with the mean and spread it had on held-out
normal samples, and the combined score is their weighted mean, so 0 is "typical normal" and
each unit is one held-out standard deviation.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass

import numpy as np
from sklearn.metrics import precision_recall_curve

from anomaly.errors import AnomalyError


@dataclass
class Normaliser:
    mean: dict[str, float]
    std: dict[str, float]
    weights: dict[str, float]

    @classmethod
    def fit(cls, components: dict[str, np.ndarray], weights: dict[str, float]) -> Normaliser:
        unknown = set(weights) - set(components)
        if unknown:
            raise AnomalyError(
                f"score weights name unknown component(s) {sorted(unknown)}; known: {sorted(components)}"
            )
        mean = {k: float(np.mean(v)) for k, v in components.items()}
        std = {k: float(max(np.std(v), 1e-8)) for k, v in components.items()}
        return cls(mean=mean, std=std, weights=dict(weights))

    def combine(self, components: dict[str, np.ndarray]) -> np.ndarray:
        total = sum(self.weights.values())
        parts = [w * (components[k] - self.mean[k]) / self.std[k] for k, w in self.weights.items() if w]
        return np.sum(parts, axis=0) / total

    def to_dict(self) -> dict:
        return asdict(self)


@dataclass
class Calibration:
    """How the threshold was chosen, kept in the manifest so an operator can see why it is where it is."""

    method: str = "percentile"
    percentile: float = 99.0
    target_fpr: float | None = None

    def __post_init__(self) -> None:
        if self.method not in ("percentile", "fpr", "f1"):
            raise AnomalyError(f"threshold method must be percentile, fpr or f1 (got {self.method!r})")
        if not 0 < self.percentile < 100:
            raise AnomalyError(f"percentile must be between 0 and 100 (got {self.percentile})")
        if self.method == "fpr" and not (self.target_fpr and 0 < self.target_fpr < 1):
            raise AnomalyError("the fpr method needs a target false-positive rate between 0 and 1")

    def threshold(self, normal: np.ndarray, anomalous: np.ndarray | None = None) -> float:
        if len(normal) == 0:
            raise AnomalyError("no held-out normal samples to calibrate the threshold on")
        if self.method == "percentile":
            return float(np.percentile(normal, self.percentile))
        if self.method == "fpr":
            assert self.target_fpr is not None  # __post_init__ refuses the fpr method without one
            return float(np.quantile(normal, 1.0 - self.target_fpr))
        if anomalous is None or len(anomalous) == 0:
            raise AnomalyError("the f1 threshold method needs labelled anomalies for calibration")
        return best_f1_threshold(np.r_[np.zeros(len(normal)), np.ones(len(anomalous))], np.r_[normal, anomalous])[1]


def best_f1_threshold(labels: np.ndarray, scores: np.ndarray) -> tuple[float, float]:
    """(best F1, threshold) over all cut points; a sample is anomalous when its score is above the threshold."""
    precision, recall, cuts = precision_recall_curve(labels, scores)
    f1 = 2 * precision * recall / np.maximum(precision + recall, 1e-12)
    best = int(np.argmax(f1[:-1])) if len(cuts) else 0
    threshold = float(np.nextafter(cuts[best], -np.inf)) if len(cuts) else float(np.max(scores))
    return float(f1[best]), threshold
