"""Evaluating a saved model on labelled data, pooled and per defect type.

Where the data has ground-truth masks (magnetic_tile's PNGs, MVTec's ``ground_truth``), each subset
also gets pixel-level metrics computed on the detector's anomaly maps: pixel AUROC and PRO.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image

from anomaly.data.images import ImageSet
from anomaly.data.load import load_dataset
from anomaly.errors import DataError
from anomaly.inputs import ImageSpec, model_shape, resize_map
from anomaly.metrics import PixelRanking, detection_metrics
from anomaly.plugins import load_model

# How maps and masks are brought together, shown beside every pixel figure.
PIXEL_RESOLUTION = "maps and masks at the network's input resolution (tiled: short side --scale; else the square input)"


def evaluate(model_dir: Path, data_path: Path, *, split: str = "test", normal_class: str = "good") -> dict[str, Any]:
    model = load_model(model_dir)
    data = load_dataset(data_path, split=split, normal_class=normal_class, with_masks=True)
    excluded = 0
    if isinstance(data, ImageSet):
        trained = set(model.training.data.trained_ids if model.training and model.training.data else [])
        keep = [i for i, item_id in enumerate(data.ids) if item_id not in trained]
        excluded = len(data) - len(keep)
        data = data.subset(keep)
    labels = data.labels
    if labels is None:
        raise DataError(f"{data_path}: no labels found (need a '{normal_class}' folder, a label column or labels file)")
    want_maps = isinstance(data, ImageSet) and has_masks(data)
    scores = model.score(data, maps=want_maps, stride=1)
    if not np.isfinite(scores.scores).all():
        raise DataError(
            f"{model_dir}: {int((~np.isfinite(scores.scores)).sum())} of {len(scores)} item(s) got no "
            "finite score; the model's networks give NaN or infinity on this data: retrain the model"
        )
    kinds: np.ndarray | None
    if isinstance(data, ImageSet):
        kinds = np.asarray(data.kinds)
    else:
        labels, kinds = labels[scores.steps], None
    results = {"all": detection_metrics(labels, scores.scores, scores.threshold)}
    if kinds is not None:
        for kind in sorted(set(kinds[labels == 1])):
            pick = (labels == 0) | (kinds == kind)
            results[kind] = detection_metrics(labels[pick], scores.scores[pick], scores.threshold)
    report = {
        "detector": model.name,
        "model": str(model_dir),
        "data": str(data_path),
        "excluded_training_items": excluded,
        "results": results,
    }
    if want_maps and scores.maps is not None and isinstance(data, ImageSet) and isinstance(model.spec, ImageSpec):
        for subset, metrics in pixel_results(model.spec, data, scores.maps).items():
            results[subset].update(metrics)
        report["pixel_resolution"] = PIXEL_RESOLUTION
    return report


def has_masks(data: ImageSet) -> bool:
    """Whether any anomalous image has a ground-truth mask, so pixel-level metrics can be computed."""
    return data.labels is not None and any(
        mask is not None and label == 1 for mask, label in zip(data.masks, data.labels)
    )


def pixel_results(spec: ImageSpec, data: ImageSet, maps: list[np.ndarray]) -> dict[str, dict[str, float]]:
    """Pixel AUROC and PRO for all images and per defect type, from anomaly maps at the images' size.

    Each map and mask is brought to ``model_shape`` (the resolution the network saw, so no detail is
    invented or thrown away twice): maps bilinearly, masks by nearest neighbour so they stay binary.
    A normal image without a mask counts as all normal pixels; an anomalous one without a mask is left
    out, since where its defect lies is unknown; one whose mask is empty (four of magnetic_tile's MT_Uneven
    images) adds normal pixels only, as its mask says. A defect type whose masks are all empty gets no entry.
    """
    labels = np.asarray(data.labels)
    kinds = np.asarray(data.kinds) if data.kinds else np.full(len(data), "all")
    kept, sized_maps, sized_masks = [], [], []
    for i, (anomaly_map, mask) in enumerate(zip(maps, data.masks or [None] * len(data))):
        if mask is None and labels[i] == 1:
            continue
        shape = model_shape(spec, anomaly_map.shape)
        if mask is None:
            mask = np.zeros(shape, bool)
        else:
            mask = np.asarray(Image.fromarray(mask).resize((shape[1], shape[0]), Image.Resampling.NEAREST), bool)
        kept.append(i)
        sized_maps.append(resize_map(anomaly_map, shape))
        sized_masks.append(mask)
    if not kept:
        return {}
    ranking = PixelRanking(sized_maps, sized_masks)
    labels, kinds = labels[kept], kinds[kept]
    subsets = {"all": np.arange(len(kept))}
    for kind in sorted(set(kinds[labels == 1])):
        subsets[kind] = np.flatnonzero((labels == 0) | (kinds == kind))
    return {name: ranking.metrics(members) for name, members in subsets.items() if ranking.regions[members].sum() > 0}
