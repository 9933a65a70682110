"""Detection quality on labelled data: the numbers users pick a detector by."""

from __future__ import annotations

import numpy as np
from sklearn.metrics import average_precision_score, f1_score, roc_auc_score

from anomaly.errors import DataError
from anomaly.threshold import best_f1_threshold


def detection_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.min() == labels.max():
        raise DataError("evaluation needs both normal and anomalous samples in the labelled data")
    best_f1, best_threshold = best_f1_threshold(labels, scores)
    return {
        "auroc": float(roc_auc_score(labels, scores)),
        "auprc": float(average_precision_score(labels, scores)),
        "f1": float(f1_score(labels, scores > threshold, zero_division=0)),
        "best_f1": best_f1,
        "best_f1_threshold": best_threshold,
        "threshold": float(threshold),
        "normal": int((labels == 0).sum()),
        "anomalous": int((labels == 1).sum()),
    }
