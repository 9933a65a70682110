"""What an event's stored payload shows: the image it was, or the readings it held, the heat map and
the model's reconstruction.

The events table keeps the message as it came (image bytes, or the reading's JSON), not the anomaly
map nor the reconstruction: both are recomputed on demand from the stored image by the model version
that flagged it. Loaded models are kept, a few at a time, since loading one takes seconds.
"""

from __future__ import annotations

import io
from functools import lru_cache
from pathlib import Path

import numpy as np
import orjson
from PIL import Image

from anomaly import harness
from anomaly.artifact import MANIFEST
from anomaly.data.images import ImageSet, decode_image
from anomaly.detector import Detector
from anomaly.errors import AnomalyError, DataError
from anomaly.plugins import load_model, registry
from anomaly.stream.decode import IMAGE_FORMATS

IMAGE_TYPES = ("image/png", "image/jpeg")


def is_image(content_type: str | None) -> bool:
    return content_type in IMAGE_TYPES


def image(payload: bytes) -> np.ndarray:
    """The stored picture as (H, W, C) uint8, read only by the parsers the stream accepts."""
    return decode_image(payload, "payload", formats=IMAGE_FORMATS)


def readings(payload: bytes | None) -> np.ndarray | None:
    """The reading(s) of a sensor message, (rows, channels); None when it holds no readable ``values``."""
    if payload is None:
        return None
    try:
        values = orjson.loads(payload).get("values")
        rows = np.asarray(values if values and isinstance(values[0], list) else [values], float)
    except (orjson.JSONDecodeError, AttributeError, TypeError, ValueError):
        return None
    return rows if rows.ndim == 2 and rows.size else None


@lru_cache(maxsize=4)
def _detector(artifact: str, stamp: float) -> Detector:
    return load_model(Path(artifact))


def detector(artifact: str) -> Detector:
    """The model folder, loaded once per change of its manifest (a retrained folder is reloaded)."""
    manifest = Path(artifact) / MANIFEST
    try:
        stamp = manifest.stat().st_mtime
    except OSError:
        raise DataError(f"model folder {artifact} is not there any more") from None
    return _detector(artifact, stamp)


def anomaly_map(artifact: str, picture: np.ndarray) -> tuple[np.ndarray, float]:
    """The picture's anomaly map from the model at ``artifact``, and the map value drawn as full heat."""
    model = detector(artifact)
    scores = model.score(ImageSet(ids=["event"], images=[picture]), maps=True)
    if scores.maps is None:
        raise AnomalyError(f"the detector {model.name!r} gives no anomaly maps")
    return scores.maps[0], model.map_scale or 1.0


def draws_reconstructions(detector_name: str) -> bool:
    """Whether the installed detector of that name draws reconstructions: read from its class, so the
    event page knows without loading the model."""
    try:
        return registry().get(detector_name).draws_reconstructions()
    except AnomalyError:
        return False


def reconstruction_png(artifact: str, picture: np.ndarray) -> bytes | None:
    """The model's reconstruction of the picture at the picture's size, as PNG (``harness.reconstruction``
    says what is drawn); None where the detector draws none."""
    drawn = harness.reconstruction(detector(artifact), picture)
    if drawn is None:
        return None
    buffer = io.BytesIO()
    Image.fromarray(drawn[..., 0] if drawn.shape[2] == 1 else drawn).save(buffer, format="PNG")
    return buffer.getvalue()
