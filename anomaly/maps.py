"""Anomaly-map pictures: the part with its residual drawn over it, because people would rather look."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image


def heat_colours(values: np.ndarray) -> np.ndarray:
    """A black-red-yellow-white ramp for values in [0, 1], shaped (..., 3) uint8."""
    v = np.clip(values, 0, 1)[..., None]
    ramp = np.concatenate([np.clip(3 * v, 0, 1), np.clip(3 * v - 1, 0, 1), np.clip(3 * v - 2, 0, 1)], axis=-1)
    return (ramp * 255).astype(np.uint8)


def overlay(image: np.ndarray, anomaly_map: np.ndarray, scale: float) -> Image.Image:
    """The image beside the same image with the map blended in; ``scale`` is the map value shown as full heat.

    A fixed scale (taken from the model's held-out normal residuals) keeps pictures of different
    parts comparable: a normal part stays dark instead of being stretched to full colour.
    """
    base = np.repeat(image, 3, axis=2) if image.shape[2] == 1 else image
    heat = heat_colours(anomaly_map / max(scale, 1e-8))
    blended = (0.5 * base + 0.5 * heat).astype(np.uint8)
    return Image.fromarray(np.concatenate([base, blended], axis=1))


def save_overlay(path: Path, image: np.ndarray, anomaly_map: np.ndarray, scale: float) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    overlay(image, anomaly_map, scale).save(path)
    return path
