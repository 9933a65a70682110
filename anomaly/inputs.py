"""What a detector's networks see: the input spec, and the turning of items into fixed-size samples.

Images become one resized square each, or many tiles cut at a chosen scale (small defects
vanish when a whole part is shrunk to 64 pixels). Series become sliding windows standardised
per channel with statistics fitted on training data. The spec, with those statistics, is
saved in the model manifest so scoring preprocesses exactly as training did.
"""

from __future__ import annotations

import math
import numbers
from dataclasses import asdict, dataclass, field, fields
from typing import Any

import numpy as np
from PIL import Image

from anomaly.data.images import ImageSet
from anomaly.data.series import SeriesSet, windows
from anomaly.errors import DataError

POOLS = ("max", "topk", "contrast")
MODALITIES = ("image", "series")

# Upper bounds on what a spec may ask for, checked before any network is built. A manifest is data
# anyone with write access to a model folder can edit, and its numbers size the networks and the
# buffers: `channels: 1000000` once grew `anomaly score` to 17 GB. Each bound is far above what the
# benchmarks use (images of 16-64 px, tiles cut from a 128 px short side, windows of 32) and keeps the
# worst allowed input to a few hundred MB.
MAX_IMAGE_SIZE = 256  # network input side; larger pictures are resized or tiled
MAX_SCALE = 1024  # short side a picture is resized to before tiling
MIN_TILE_OVERLAP = 4  # a tile stride of at least image_size / 4: each pixel is in at most 16 tiles
MAX_WINDOW = 4096  # steps in one series window
MAX_SERIES_CHANNELS = 1024  # sensors read per step
# Window x channels: the dense networks' first and last layers have that many weights per unit.
MAX_SERIES_VALUES = 8192


def _integer(value: Any) -> bool:
    return isinstance(value, numbers.Integral) and not isinstance(value, bool)


def check_int(name: str, value: Any, low: int, high: int, unit: str = "") -> None:
    """Refuse a non-integer or out-of-range value (from a manifest, say) with one line naming it and the limit."""
    if not _integer(value):
        raise DataError(f"{name} must be an integer, not {value!r}")
    if not low <= value <= high:
        raise DataError(f"{name} must be from {low} to {high}{unit} (got {value})")


@dataclass
class ImageSpec:
    image_size: int = 64
    channels: int = 1
    tile: bool = False
    scale: int | None = None
    stride: int | None = None
    standardize: bool = False
    pool: str = "max"
    top_k: int = 5

    modality = "image"

    def __post_init__(self) -> None:
        check_int("image size", self.image_size, 16, MAX_IMAGE_SIZE)
        if self.image_size & (self.image_size - 1):
            raise DataError(f"image size must be a power of two of at least 16 (got {self.image_size})")
        if not _integer(self.channels) or self.channels not in (1, 3):
            raise DataError(f"image channels must be 1 (grayscale) or 3 (RGB), not {self.channels!r}")
        if self.pool not in POOLS:
            raise DataError(f"pool must be one of {', '.join(POOLS)} (got {self.pool!r})")
        if self.scale is not None:
            check_int("scale", self.scale, 1, MAX_SCALE)
        if self.stride is not None:
            check_int(
                "stride",
                self.stride,
                max(1, self.image_size // MIN_TILE_OVERLAP),
                MAX_SCALE,
                f" for tiles of {self.image_size} px",
            )

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.image_size, self.image_size, self.channels)

    @property
    def tile_stride(self) -> int:
        return self.stride or self.image_size // 2


@dataclass
class SeriesSpec:
    window: int = 32
    stride: int = 1
    channels: int = 0
    mean: list[float] = field(default_factory=list)
    std: list[float] = field(default_factory=list)

    modality = "series"

    def __post_init__(self) -> None:
        check_int("window", self.window, 2, MAX_WINDOW, " steps")
        check_int("stride", self.stride, 1, MAX_WINDOW)
        check_int("channels", self.channels, 0, MAX_SERIES_CHANNELS)
        if self.window * self.channels > MAX_SERIES_VALUES:
            raise DataError(
                f"window x channels must be at most {MAX_SERIES_VALUES} (got {self.window} x {self.channels})"
            )
        for name, values in (("mean", self.mean), ("std", self.std)):
            if (
                not isinstance(values, (list, tuple))
                or values
                and (len(values) != self.channels or not all(finite(v) for v in values))
            ):
                raise DataError(f"{name} must be {self.channels} finite numbers, one per channel")
        if self.std and min(self.std) <= 0:
            raise DataError("std must be positive for every channel")

    @property
    def sample_shape(self) -> tuple[int, ...]:
        return (self.window, self.channels)


Spec = ImageSpec | SeriesSpec


def spec_to_dict(spec: Spec) -> dict[str, Any]:
    return {"modality": spec.modality, **asdict(spec)}


def spec_from_dict(data: dict[str, Any]) -> Spec:
    """The spec a manifest describes; unknown modalities or fields are refused, not passed on as TypeErrors."""
    if not isinstance(data, dict):
        raise DataError(f"the input spec must be a mapping, not {type(data).__name__}")
    data = dict(data)
    modality = data.pop("modality", None)
    if modality not in MODALITIES:
        raise DataError(f"input modality must be one of {', '.join(MODALITIES)}, not {modality!r}")
    cls = ImageSpec if modality == "image" else SeriesSpec
    unknown = sorted(set(data) - {f.name for f in fields(cls)})
    if unknown:
        raise DataError(f"unknown {modality} input field(s) {', '.join(unknown)}")
    return cls(**data)


def finite(value: Any) -> bool:
    """Whether a value read from JSON is a finite number (not a bool, nor an int too large for a float)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return False
    try:
        return math.isfinite(value)
    except OverflowError:
        return False


@dataclass
class Samples:
    """Network-ready samples and, for each, the index of the item (image or window) it came from."""

    x: np.ndarray
    owner: np.ndarray
    layout: list[Any]
    count: int


def fit_spec(spec: Spec, data: ImageSet | SeriesSet) -> Spec:
    """Complete the spec from training data: channel count and, for series, channel statistics."""
    if isinstance(spec, ImageSpec):
        if not isinstance(data, ImageSet):
            raise DataError("this detector was set up for images but got a series")
        spec.channels = data.channels
        return spec
    if not isinstance(data, SeriesSet):
        raise DataError("this detector was set up for series but got images")
    spec.channels = data.channels
    spec.mean = data.values.mean(axis=0).astype(float).tolist()
    std = data.values.std(axis=0)
    spec.std = np.where(std > 1e-6, std, 1.0).astype(float).tolist()
    return spec


def encode(spec: Spec, data: ImageSet | SeriesSet, stride: int | None = None) -> Samples:
    if isinstance(spec, ImageSpec):
        if not isinstance(data, ImageSet):
            raise DataError("this model scores images, but the input is a series")
        return _encode_images(spec, data)
    if not isinstance(data, SeriesSet):
        raise DataError("this model scores series, but the input is images")
    return _encode_series(spec, data, stride or spec.stride)


def standardise(spec: SeriesSpec, values: np.ndarray) -> np.ndarray:
    """Readings (..., channels) scaled with the channel statistics fitted on the training series."""
    scaled = (values - np.asarray(spec.mean, np.float32)) / np.asarray(spec.std, np.float32)
    return scaled.astype(np.float32, copy=False)


def _encode_series(spec: SeriesSpec, data: SeriesSet, stride: int) -> Samples:
    if data.channels != spec.channels:
        raise DataError(f"{data.name}: {data.channels} channel(s), but the model was trained on {spec.channels}")
    x, ends = windows(standardise(spec, data.values), spec.window, stride)
    return Samples(x=x, owner=np.arange(len(x)), layout=ends.tolist(), count=len(x))


def _encode_images(spec: ImageSpec, data: ImageSet) -> Samples:
    xs, owners, layout = [], [], []
    for index, (item_id, image) in enumerate(zip(data.ids, data.images)):
        if image.ndim != 3 or image.shape[2] not in (1, 3):
            raise DataError(f"{item_id}: expected a grayscale or RGB image, got shape {image.shape}")
        arr = _match_channels(image, spec.channels)
        if spec.tile:
            tiles, positions, shape = _tiles(spec, arr)
            xs.append(tiles)
            owners.append(np.full(len(tiles), index))
            layout.append((image.shape[:2], shape, positions))
        else:
            resized = _resize(arr, (spec.image_size, spec.image_size))
            xs.append(_normalise(spec, resized)[None])
            owners.append(np.array([index]))
            layout.append((image.shape[:2], None, None))
    if not xs:
        raise DataError("no images to score")
    return Samples(x=np.concatenate(xs), owner=np.concatenate(owners), layout=layout, count=len(data))


def _match_channels(image: np.ndarray, channels: int) -> np.ndarray:
    if image.shape[2] == channels:
        return image
    if channels == 1:
        return np.asarray(Image.fromarray(image).convert("L"))[..., None]
    return np.repeat(image, 3, axis=2)


def _resize(image: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    h, w = size_hw
    if image.shape[:2] == (h, w):
        return image
    pil = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
    out = np.asarray(pil.resize((w, h), Image.Resampling.BILINEAR))
    return out[..., None] if out.ndim == 2 else out


def _normalise(spec: ImageSpec, image: np.ndarray) -> np.ndarray:
    """Map to [-1, 1], or standardise per image so lighting changes don't read as defects."""
    x = image.astype(np.float32)
    if spec.standardize:
        return (x - x.mean(axis=(0, 1))) / (x.std(axis=(0, 1)) + 1e-3)
    return x / 127.5 - 1.0


def _starts(length: int, size: int, stride: int) -> list[int]:
    starts = list(range(0, length - size + 1, stride))
    if starts[-1] != length - size:
        starts.append(length - size)
    return starts


def model_shape(spec: ImageSpec, size_hw: tuple[int, int]) -> tuple[int, int]:
    """The (height, width) the network sees an image of ``size_hw`` at: the picture tiles are cut from
    (short side ``scale``, never below one tile), or the one resized square."""
    size = spec.image_size
    if not spec.tile:
        return size, size
    h, w = size_hw
    short = max(spec.scale or min(h, w), size)
    factor = short / min(h, w)
    return max(size, round(h * factor)), max(size, round(w * factor))


def _tiles(spec: ImageSpec, image: np.ndarray):
    size = spec.image_size
    shape = model_shape(spec, image.shape[:2])
    scaled = _normalise(spec, _resize(image, shape))
    positions = [
        (y, x) for y in _starts(shape[0], size, spec.tile_stride) for x in _starts(shape[1], size, spec.tile_stride)
    ]
    tiles = np.stack([scaled[y : y + size, x : x + size] for y, x in positions])
    return tiles, positions, shape


def pool(values: np.ndarray, owner: np.ndarray, count: int, how: str = "max", top_k: int = 5) -> np.ndarray:
    """One value per item from its samples: the max, the mean of the top-k (less noisy than max), or
    ``contrast``: that mean less the median of the same item's tiles.

    Contrast asks whether part of an image stands out from the rest of that image: a part whose
    whole surface is rougher or lit differently than the training parts raises every tile, a defect
    raises a few. It uses nothing but the item's own tiles, so scores stay independent of the batch.
    """
    out = np.empty(count, dtype=np.float64)
    order = np.argsort(owner, kind="stable")
    bounds = np.searchsorted(owner[order], np.arange(count + 1))
    for i in range(count):
        chunk = values[order[bounds[i] : bounds[i + 1]]]
        if how == "max" or len(chunk) <= 1:
            out[i] = chunk.max()
            continue
        out[i] = np.sort(chunk)[-top_k:].mean()
        if how == "contrast":
            out[i] -= np.median(chunk)
    return out


def stitch_maps(spec: ImageSpec, maps: np.ndarray, samples: Samples) -> list[np.ndarray]:
    """Per-item anomaly maps at the item's original size, averaged where tiles overlap."""
    result = []
    for index, (original, shape, positions) in enumerate(samples.layout):
        item_maps = maps[samples.owner == index]
        if positions is None:
            canvas = item_maps[0]
        else:
            total = np.zeros(shape, np.float32)
            hits = np.zeros(shape, np.float32)
            size = spec.image_size
            for tile_map, (y, x) in zip(item_maps, positions):
                total[y : y + size, x : x + size] += tile_map
                hits[y : y + size, x : x + size] += 1
            canvas = total / np.maximum(hits, 1)
        result.append(resize_map(canvas, original))
    return result


def resize_map(canvas: np.ndarray, size_hw: tuple[int, int]) -> np.ndarray:
    """A float map resized bilinearly to (height, width), kept float: maps are compared across images."""
    if canvas.shape == tuple(size_hw):
        return canvas.astype(np.float32)
    pil = Image.fromarray(canvas.astype(np.float32), mode="F")
    return np.asarray(pil.resize((size_hw[1], size_hw[0]), Image.Resampling.BILINEAR), dtype=np.float32)
