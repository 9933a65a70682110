"""Evaluating a saved model on labelled data, pooled and per defect type."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from anomaly.data.images import ImageSet
from anomaly.data.load import load_dataset
from anomaly.errors import DataError
from anomaly.metrics import detection_metrics
from anomaly.plugins import load_model


def evaluate(model_dir: Path, data_path: Path, *, split: str = "test", normal_class: str = "good") -> dict[str, Any]:
    model = load_model(model_dir)
    data = load_dataset(data_path, split=split, normal_class=normal_class)
    if data.labels is None:
        raise DataError(f"{data_path}: no labels found (need a '{normal_class}' folder, a label column or labels file)")
    excluded = 0
    if isinstance(data, ImageSet):
        trained = set(model.training.get("data", {}).get("trained_ids", []))
        keep = [i for i, item_id in enumerate(data.ids) if item_id not in trained]
        excluded = len(data) - len(keep)
        data = data.subset(keep)
    scores = model.score(data, maps=False, stride=1)
    if isinstance(data, ImageSet):
        labels, kinds = data.labels, np.asarray(data.kinds)
    else:
        labels, kinds = data.labels[scores.steps], None
    results = {"all": detection_metrics(labels, scores.scores, model.threshold)}
    if kinds is not None:
        for kind in sorted(set(kinds[labels == 1])):
            pick = (labels == 0) | (kinds == kind)
            results[kind] = detection_metrics(labels[pick], scores.scores[pick], model.threshold)
    return {
        "detector": model.name,
        "model": str(model_dir),
        "data": str(data_path),
        "excluded_training_items": excluded,
        "results": results,
    }
