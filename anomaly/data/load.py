"""One entry point from a path on disk to a dataset: folders are images, files are series."""

from __future__ import annotations

from pathlib import Path

from anomaly.data.images import IMAGE_SUFFIXES, ImageSet, decode_image, load_images
from anomaly.data.series import SeriesSet, load_series
from anomaly.errors import DataError


def load_dataset(
    path: Path, *, split: str = "train", normal_class: str = "good", with_masks: bool = False
) -> ImageSet | SeriesSet:
    """``with_masks`` also reads an image folder's ground-truth masks (pixel-level evaluation, map pictures)."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file or folder")
    if path.is_dir():
        return load_images(path, normal_class, with_masks=with_masks)
    if path.suffix.lower() in IMAGE_SUFFIXES:
        return ImageSet(ids=[path.name], images=[decode_image(path.read_bytes(), str(path))])
    return load_series(path, split)


def modality_of(path: Path) -> str:
    path = Path(path)
    return "image" if path.is_dir() or path.suffix.lower() in IMAGE_SUFFIXES else "series"
