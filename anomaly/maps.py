"""Anomaly-map pictures: the part beside its residual heat map, because people would rather look.

Each picture carries what is needed to read it without the JSON beside it: the item's score, the
model's threshold and the verdict in the title, a colour scale for the heat, and the outline of the
ground-truth mask where the data has one, so a reader sees at once whether the heat is on the defect.
matplotlib draws them (its ``Figure`` directly, not pyplot: no global state, no display needed).
"""

from __future__ import annotations

import io
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from anomaly.data.images import ImageSet

if TYPE_CHECKING:
    from anomaly.scores import Scores

# Every picture has the same size in pixels, whatever the part's shape: pictures line up in a viewer
# and a test can check what was written. A part of another aspect ratio is letterboxed.
PICTURE_SIZE = (1000, 450)
_DPI = 100
MASK_COLOUR = "#00e5ff"


def picture(
    image: np.ndarray,
    anomaly_map: np.ndarray,
    *,
    scale: float,
    score: float,
    threshold: float,
    mask: np.ndarray | None = None,
    title: str = "",
) -> bytes:
    """The image and its heat overlay side by side: PNG bytes of ``PICTURE_SIZE`` pixels.

    ``scale`` is the map value drawn as full heat: the model's own (a high percentile of held-out
    normal residuals), fixed, so pictures of different parts are comparable and a normal part stays
    dark instead of being stretched to full colour. ``mask`` (True = defect), when given, is outlined
    on both panels.
    """
    from matplotlib.figure import Figure

    gray = image[..., 0] if image.shape[2] == 1 else None
    fig = Figure(figsize=(PICTURE_SIZE[0] / _DPI, PICTURE_SIZE[1] / _DPI), dpi=_DPI)
    left, right = fig.subplots(1, 2)
    for ax in (left, right):
        ax.imshow(image if gray is None else gray, cmap=None if gray is None else "gray", vmin=0, vmax=255)
        ax.set_xticks([])
        ax.set_yticks([])
    heat = right.imshow(anomaly_map, cmap="hot", alpha=0.6, vmin=0.0, vmax=max(scale, 1e-8))
    if mask is not None and mask.any():
        for ax in (left, right):
            ax.contour(mask.astype(np.float32), levels=[0.5], colors=MASK_COLOUR, linewidths=1.2)
        left.set_xlabel("ground-truth defect outlined", color="#007c8a")
    right.set_xlabel("residual heat")
    bar = fig.colorbar(heat, ax=[left, right], fraction=0.04, pad=0.02)
    bar.set_label(f"map value (full heat = {scale:.3g})")
    verdict = "ANOMALOUS" if score > threshold else "normal"
    fig.suptitle(
        f"{title}\nscore {score:.3f}  ·  threshold {threshold:.3f}  ·  {verdict}".lstrip(),
        color="#b00020" if score > threshold else "black",
    )
    out = io.BytesIO()
    fig.savefig(out, format="png")
    return out.getvalue()


def picture_name(item_id: str) -> str:
    """A flat file name for an item id (``MT_Crack/Imgs/exp1.jpg`` -> ``MT_Crack__Imgs__exp1.png``)."""
    return Path(item_id).with_suffix("").as_posix().replace("/", "__") + ".png"


def write_pictures(folder: Path, data: ImageSet, scores: Scores, scale: float) -> list[Path]:
    """One picture per scored image of ``data`` (``scores`` from ``Detector.score(..., maps=True)``)."""
    if scores.maps is None:
        raise ValueError("write_pictures needs the scores' maps: score with maps=True")
    masks = data.masks or [None] * len(data)
    folder.mkdir(parents=True, exist_ok=True)
    paths = []
    for image, mask, result, anomaly_map in zip(data.images, masks, scores, scores.maps):
        path = folder / picture_name(result.id)
        drawn = picture(
            image,
            anomaly_map,
            scale=scale,
            score=result.score,
            threshold=result.threshold,
            mask=mask,
            title=result.id,
        )
        path.write_bytes(drawn)
        paths.append(path)
    return paths
