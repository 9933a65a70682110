"""Turning one Kafka message into something a detector can score, or a clear reason why not.

Two built-in decoders, chosen by the serving model's modality:

- ``reading`` (series models): JSON ``{"source": "...", "ts": "...", "values": [..]}`` holding one
  reading (one number per channel) or a whole window of readings (``window`` rows). Single readings
  are the normal case; the consumer keeps the sliding window per source (``anomaly.stream.windows``).
- ``image`` (image models): the raw PNG/JPEG bytes as the message value (content type from a
  ``content-type`` header, else sniffed), or JSON ``{"source", "ts", "image": "<base64>"}``.

Every way a message can be unusable raises ``Rejected`` with a reason a person can act on; the
consumer sends it to the dead-letter topic and carries on. More decoders come from plugins through
the ``register_decoders`` hook of the same pluggy manager that loads detectors.
"""

from __future__ import annotations

import base64
import binascii
import io
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from functools import lru_cache

import numpy as np
import orjson
from PIL import Image, UnidentifiedImageError

from anomaly import hookspecs
from anomaly.data.images import decode_image
from anomaly.errors import DataError, PluginError
from anomaly.inputs import ImageSpec, SeriesSpec, Spec

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
MAX_IMAGE_PIXELS = 4096 * 4096
MAX_SOURCE_CHARS = 255  # the events.source column

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"


class Rejected(Exception):
    """A message that cannot be scored; ``reason`` goes to the dead-letter header and the store.

    ``kind`` is a short fixed category (json, format, shape, non_finite, image, too_large, source)
    for metrics labels, where the free-text reason would explode the label space.
    """

    def __init__(self, reason: str, kind: str = "format") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


@dataclass(frozen=True)
class Message:
    """The parts of a Kafka record a decoder may look at, independent of the client library."""

    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    headers: tuple[tuple[str, bytes], ...] = ()
    timestamp_ms: int | None = None

    @classmethod
    def of(cls, record) -> Message:
        """From a kafka-python ``ConsumerRecord``."""
        return cls(
            topic=record.topic,
            partition=record.partition,
            offset=record.offset,
            key=record.key,
            value=record.value,
            headers=tuple(record.headers or ()),
            timestamp_ms=record.timestamp if record.timestamp is not None and record.timestamp >= 0 else None,
        )

    def header(self, name: str) -> bytes | None:
        """The first header called ``name`` (case-insensitive, as HTTP habits suggest)."""
        wanted = name.lower()
        return next((value for key, value in self.headers if key.lower() == wanted), None)

    @property
    def key_text(self) -> str | None:
        if self.key is None:
            return None
        return self.key.decode("utf-8", errors="replace").replace("\x00", "\ufffd")

    @property
    def broker_time(self) -> datetime | None:
        if self.timestamp_ms is None:
            return None
        return datetime.fromtimestamp(self.timestamp_ms / 1000, timezone.utc)


@dataclass
class Reading:
    """One reading (``values`` shaped (1, C)) or a whole window (``(window, C)``) from one source."""

    source: str
    values: np.ndarray
    event_time: datetime | None


@dataclass
class Picture:
    """One decoded image, (H, W, C) uint8, with the bytes it came from (stored as the event payload)."""

    source: str | None
    image: np.ndarray
    event_time: datetime | None
    content_type: str
    payload: bytes


Decoded = Reading | Picture


@dataclass
class DecodeContext:
    """What a decoder may check a message against: the serving model's input and the limits."""

    spec: Spec
    max_bytes: int = MAX_MESSAGE_BYTES
    max_pixels: int = MAX_IMAGE_PIXELS
    sources: frozenset[str] | None = None

    def check_source(self, source: str | None) -> None:
        """Reject sources the operator did not list (when a list is given) and unstorable names."""
        if source is not None and (len(source) > MAX_SOURCE_CHARS or "\x00" in source):
            raise Rejected(f"source name is longer than {MAX_SOURCE_CHARS} characters or holds NUL", "source")
        if self.sources is not None and source not in self.sources:
            raise Rejected(f"unknown source {source!r} (this scorer serves {', '.join(sorted(self.sources))})", "source")


Decoder = Callable[[Message, DecodeContext], Decoded]


@dataclass
class DecoderInfo:
    decode: Decoder
    modality: str
    plugin: str


@dataclass
class Decoders:
    """Decoders by name, and plugins whose decoders could not be loaded (reported, then skipped)."""

    known: dict[str, DecoderInfo] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> DecoderInfo:
        info = self.known.get(name)
        if info is None:
            raise PluginError(f"unknown message decoder {name!r} (available: {', '.join(sorted(self.known))})")
        return info

    def default_for(self, spec: Spec) -> str:
        """The built-in decoder for the model's input, used when ``--decoder`` is not given."""
        return "image" if spec.modality == "image" else "reading"


# ---- shared checks -----------------------------------------------------------------------------


def _size(message: Message, context: DecodeContext) -> bytes:
    if message.value is None or len(message.value) == 0:
        raise Rejected("empty message (no value)", "format")
    if len(message.value) > context.max_bytes:
        raise Rejected(f"message of {len(message.value)} bytes is over the {context.max_bytes}-byte limit", "too_large")
    return message.value


def _json_object(value: bytes) -> dict:
    """Parse with orjson (about 3x faster: JSON parsing is the biggest per-reading cost); on failure
    parse again with the standard library, which accepts NaN/Infinity tokens so that such a reading
    is rejected as non-finite rather than as malformed, and words the error for people."""
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError:
        try:
            data = json.loads(value)
        except UnicodeDecodeError:
            raise Rejected("invalid JSON: not UTF-8 text", "json") from None
        except ValueError as exc:
            raise Rejected(f"invalid JSON: {exc}", "json") from None
    if not isinstance(data, dict):
        raise Rejected(f"expected a JSON object, got {type(data).__name__}", "json")
    return data


def _event_time(data: dict, message: Message) -> datetime | None:
    """``ts`` as ISO-8601 (UTC when it names no zone) or epoch seconds; else the broker's timestamp."""
    ts = data.get("ts")
    if ts is None:
        return message.broker_time
    if isinstance(ts, (int, float)) and not isinstance(ts, bool) and math.isfinite(ts):
        try:
            return datetime.fromtimestamp(ts, timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise Rejected(f"ts {ts!r} is not a usable epoch time", "format") from None
    if isinstance(ts, str):
        try:
            moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            raise Rejected(f"ts {ts!r} is not an ISO-8601 time or epoch seconds", "format") from None
        return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
    raise Rejected(f"ts must be an ISO-8601 string or epoch seconds, not {type(ts).__name__}", "format")


def _source(data: dict, message: Message) -> str | None:
    source = data.get("source")
    if source is None:
        return message.key_text
    if not isinstance(source, str) or not source:
        raise Rejected("source must be a non-empty string", "source")
    return source


# ---- sensor readings ---------------------------------------------------------------------------


_NUMBER_TYPES = {int, float}


def _matrix(values: object) -> np.ndarray | None:
    """A (rows, channels) array from a list of numbers or a list of equal-length lists; else None.

    Checked element by element because numpy would quietly turn ``true`` into 1 and ``"1"`` into 1.0.
    """
    if not isinstance(values, list) or not values:
        return None
    rows = values if type(values[0]) is list else [values]
    width = len(rows[0])
    for row in rows:
        if type(row) is not list or len(row) != width or not set(map(type, row)) <= _NUMBER_TYPES:
            return None
    if width == 0:
        return None
    try:
        return np.array(rows, dtype=np.float64)
    except OverflowError:
        return None


def decode_reading(message: Message, context: DecodeContext) -> Reading:
    """One reading (or a full window of them) as JSON; the source comes from the body or the key."""
    spec = context.spec
    if not isinstance(spec, SeriesSpec):
        raise Rejected("the reading decoder feeds series models only", "format")
    data = _json_object(_size(message, context))
    source = _source(data, message)
    if source is None:
        raise Rejected("unknown source: the reading names no source and the message has no key", "source")
    context.check_source(source)
    if "values" not in data:
        raise Rejected('missing "values" (a list of one number per channel)', "format")
    values = _matrix(data["values"])
    if values is None:
        raise Rejected('"values" must be a list of numbers, or a list of such lists for a window', "format")
    channels, window = spec.channels, spec.window
    if values.ndim != 2 or values.shape[1] != channels:
        raise Rejected(
            f"wrong channel count: got {values.shape[-1] if values.ndim else 0} value(s) per reading, "
            f"the model reads {channels}",
            "shape",
        )
    if values.shape[0] not in (1, window):
        raise Rejected(f"wrong length: {values.shape[0]} readings; send 1 or a whole window of {window}", "shape")
    values = values.astype(np.float32)  # a value beyond float32 becomes inf and is rejected below
    if not np.isfinite(values).all():
        raise Rejected("NaN or infinite value in the reading", "non_finite")
    return Reading(source=source, values=values, event_time=_event_time(data, message))


# ---- images ------------------------------------------------------------------------------------


def sniff_content_type(value: bytes) -> str | None:
    """The image type from its first bytes; None when it is neither PNG nor JPEG."""
    if value.startswith(PNG_MAGIC):
        return "image/png"
    if value.startswith(JPEG_MAGIC):
        return "image/jpeg"
    return None


def _picture_array(raw: bytes, context: DecodeContext) -> np.ndarray:
    try:
        with Image.open(io.BytesIO(raw)) as probe:
            width, height = probe.size
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        raise Rejected(f"corrupt image: {exc}", "image") from None
    if width * height > context.max_pixels:
        raise Rejected(f"image of {width}x{height} pixels is over the {context.max_pixels}-pixel limit", "too_large")
    try:
        return decode_image(raw, "image")
    except DataError as exc:
        raise Rejected(f"corrupt image: {exc}", "image") from None


def decode_picture(message: Message, context: DecodeContext) -> Picture:
    """Raw image bytes (preferred: no base64 inflation or JSON parse) or JSON with a base64 ``image``."""
    if not isinstance(context.spec, ImageSpec):
        raise Rejected("the image decoder feeds image models only", "format")
    value = _size(message, context)
    header = message.header("content-type")
    declared = header.decode("latin-1").split(";")[0].strip().lower() if header else None
    is_json = declared == "application/json" or (declared is None and value.lstrip()[:1] == b"{")
    if not is_json:
        source = message.key_text
        context.check_source(source)
        content_type = declared or sniff_content_type(value) or "application/octet-stream"
        return Picture(source, _picture_array(value, context), message.broker_time, content_type, value)
    data = _json_object(value)
    source = _source(data, message)
    context.check_source(source)
    encoded = data.get("image")
    if not isinstance(encoded, str):
        raise Rejected('missing "image": the base64 of the PNG/JPEG bytes', "format")
    try:
        raw = base64.b64decode(encoded, validate=True)
    except (binascii.Error, ValueError):
        raise Rejected('"image" is not valid base64', "image") from None
    content_type = data.get("content_type") if isinstance(data.get("content_type"), str) else None
    image = _picture_array(raw, context)
    return Picture(source, image, _event_time(data, message), content_type or sniff_content_type(raw) or "image", raw)


# ---- the registry ------------------------------------------------------------------------------


@hookspecs.hookimpl
def register_decoders(register: Callable[..., None]) -> None:
    """The built-in decoders, registered through the hook exactly as a plugin's would be."""
    register("reading", decode_reading, "series")
    register("image", decode_picture, "image")


def build_decoders(extra_plugins: dict[str, object] | None = None) -> Decoders:
    """Built-ins plus every allowed ``anomaly.detectors`` plugin implementing ``register_decoders``."""
    import sys

    from anomaly.plugins import BUILTIN_DISTRIBUTION, call_per_plugin, plugin_modules

    decoders = Decoders()

    def make_register(plugin: str, _dist: tuple[str, str]):
        def register(decoder_name: str, decode: Decoder, modality: str) -> None:
            if modality not in ("image", "series"):
                raise ValueError(f"decoder {decoder_name!r}: modality must be 'image' or 'series'")
            if decoder_name in decoders.known:
                raise ValueError(f"decoder name {decoder_name!r} is already registered")
            decoders.known[decoder_name] = DecoderInfo(decode, modality, plugin)

        return register

    builtin = ("builtin", (BUILTIN_DISTRIBUTION, "-"), sys.modules[__name__])
    candidates = [builtin, *plugin_modules(decoders.broken, extra_plugins)]
    call_per_plugin("register_decoders", candidates, decoders.broken, make_register)
    return decoders


@lru_cache(maxsize=1)
def decoders() -> Decoders:
    """The process-wide decoder registry, built once: plugin imports are not repeated per scorer."""
    return build_decoders()
