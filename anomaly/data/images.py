"""Image folders: plain folders of normal parts, and labelled folders in the MVTec layout.

A labelled folder has one sub-folder per class: the normal class (``good`` by default,
``MT_Free`` for magnetic_tile) and any number of defect classes. Images are found
recursively inside each class folder. A PNG that shares its stem with a JPEG beside it is
that image's ground-truth mask (the magnetic_tile layout), not an image of its own.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, UnidentifiedImageError

from anomaly.errors import DataError

IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".tif", ".tiff"}
MAX_PIXELS = 40_000_000


@dataclass
class ImageSet:
    """Images of any size as uint8 arrays shaped (H, W, C), with optional labels (1 = anomalous)."""

    ids: list[str]
    images: list[np.ndarray]
    labels: np.ndarray | None = None
    kinds: list[str] = field(default_factory=list)
    masks: list[np.ndarray | None] = field(default_factory=list)

    modality = "image"

    def __len__(self) -> int:
        return len(self.ids)

    def subset(self, index: np.ndarray | list[int]) -> ImageSet:
        index = list(index)
        return ImageSet(
            ids=[self.ids[i] for i in index],
            images=[self.images[i] for i in index],
            labels=None if self.labels is None else self.labels[index],
            kinds=[self.kinds[i] for i in index] if self.kinds else [],
            masks=[self.masks[i] for i in index] if self.masks else [],
        )

    @property
    def channels(self) -> int:
        """1 when every image is grayscale, else 3: grayscale parts should not cost three channels."""
        return 1 if all(img.shape[2] == 1 for img in self.images) else 3


def decode_image(data: bytes, name: str = "image", formats: tuple[str, ...] | None = None) -> np.ndarray:
    """Decode image bytes to (H, W, C) uint8 with C in {1, 3}; corrupt data raises DataError.

    ``formats`` limits which PIL parsers may read the bytes (the stream decoder allows PNG and JPEG
    only: every other parser is attack surface for messages from the network).
    """
    try:
        with Image.open(io.BytesIO(data), formats=formats) as img:
            if img.width * img.height > MAX_PIXELS:
                raise DataError(f"{name}: image of {img.width}x{img.height} pixels is larger than allowed")
            img.load()
            return _to_array(img)
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"{name}: not a readable image ({exc.__class__.__name__}: {exc})") from None


def _to_array(img: Image.Image) -> np.ndarray:
    if img.mode in ("L", "I;16", "I", "F", "1", "LA"):
        arr = np.asarray(img.convert("L"))[..., None]
    else:
        arr = np.asarray(img.convert("RGB"))
        if np.array_equal(arr[..., 0], arr[..., 1]) and np.array_equal(arr[..., 1], arr[..., 2]):
            arr = arr[..., :1]
    return np.ascontiguousarray(arr, dtype=np.uint8)


def read_image(path: Path) -> np.ndarray:
    return decode_image(path.read_bytes(), str(path))


def _image_files(folder: Path) -> list[tuple[Path, Path | None]]:
    """(image, mask-or-None) pairs under ``folder``, sorted by path for repeatable order."""
    files = sorted(p for p in folder.rglob("*") if p.is_file() and p.suffix.lower() in IMAGE_SUFFIXES)
    non_png_stems = {p.with_suffix("") for p in files if p.suffix.lower() != ".png"}
    pairs = []
    for path in files:
        if path.suffix.lower() == ".png" and path.with_suffix("") in non_png_stems:
            continue
        mask = path.with_suffix(".png")
        pairs.append((path, mask if path.suffix.lower() != ".png" and mask.exists() else None))
    return pairs


def _check_folder(folder: Path) -> None:
    if not folder.exists():
        raise DataError(f"{folder}: no such folder")
    if not folder.is_dir():
        raise DataError(f"{folder}: not a folder")


def _load(pairs: list[tuple[Path, Path | None]], root: Path, with_masks: bool):
    ids, images, masks = [], [], []
    for path, mask in pairs:
        ids.append(path.relative_to(root).as_posix())
        images.append(read_image(path))
        masks.append(read_image(mask)[..., 0] > 127 if with_masks and mask is not None else None)
    return ids, images, masks


def class_folders(root: Path) -> list[Path]:
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))


def is_labelled(root: Path, normal_class: str) -> bool:
    return (root / normal_class).is_dir()


DEFAULT_NORMAL_CLASS = "good"


def _check_layout(root: Path, normal_class: str) -> None:
    """Refuse a folder whose normal class is missing, instead of training on every image, defects included.

    A folder holding images in two or more sub-folders looks labelled (one folder per class), so it
    needs its normal class; so does any folder when a class other than the default was asked for.
    A plain folder of normal images (images at its top, or all in one sub-folder) needs none.
    """
    if is_labelled(root, normal_class):
        return
    with_images = [folder.name for folder in class_folders(root) if _image_files(folder)]
    if normal_class != DEFAULT_NORMAL_CLASS:
        raise DataError(
            f"{root}: no class folder {normal_class!r} (sub-folders found: {', '.join(with_images) or 'none'})"
        )
    if len(with_images) >= 2:
        raise DataError(
            f"{root}: looks labelled but has no {normal_class!r} folder; name the normal class with "
            f"--normal-class (sub-folders found: {', '.join(with_images)}), or point at the normal folder itself"
        )


def load_images(root: Path, normal_class: str = DEFAULT_NORMAL_CLASS, with_masks: bool = False) -> ImageSet:
    """Load a plain folder (every image normal, no labels) or a labelled one (normal class + defects)."""
    root = Path(root)
    _check_folder(root)
    _check_layout(root, normal_class)
    if not is_labelled(root, normal_class):
        pairs = _image_files(root)
        if not pairs:
            raise DataError(f"{root}: no images found (looked for {', '.join(sorted(IMAGE_SUFFIXES))})")
        ids, images, masks = _load(pairs, root, with_masks)
        return ImageSet(ids=ids, images=images, masks=masks)

    ids, images, masks, labels, kinds = [], [], [], [], []
    for folder in class_folders(root):
        pairs = _image_files(folder)
        i, im, m = _load(pairs, root, with_masks)
        ids += i
        images += im
        masks += m
        labels += [0 if folder.name == normal_class else 1] * len(i)
        kinds += [folder.name] * len(i)
    if not ids:
        raise DataError(f"{root}: no images found in its class folders")
    return ImageSet(ids=ids, images=images, labels=np.asarray(labels, dtype=np.int8), kinds=kinds, masks=masks)


def normal_only(data: ImageSet) -> ImageSet:
    """The normal images of a labelled set: detectors learn from normal data only."""
    if data.labels is None:
        return data
    return data.subset(np.flatnonzero(data.labels == 0))
