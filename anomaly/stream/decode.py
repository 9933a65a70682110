"""Turning one Kafka message into something a detector can score, or a clear reason why not.

Two built-in decoders, chosen by the serving model's modality:

- ``reading`` (series models): JSON ``{"source": "...", "ts": "...", "values": [..]}`` holding one
  reading (one number per channel) or a whole window of readings (``window`` rows). Single readings
  are the normal case; the consumer keeps the sliding window per source (``anomaly.stream.windows``).
- ``image`` (image models): the raw PNG/JPEG bytes as the message value, or JSON
  ``{"source", "ts", "image": "<base64>"}`` (a ``content-type: application/json`` header, or a
  value starting with ``{``). The stored content type is the one the bytes turned out to be.

The decoders are total: whatever the bytes, they return a ``Reading``/``Picture`` or raise
``Rejected`` with a reason a person can act on (the consumer sends it to the dead-letter topic and
carries on). They refuse early, before the expensive or fragile step: JSON nesting is counted
before parsing (orjson has no depth limit of its own and overflows its stack on deep nesting),
image dimensions are read from the header before decoding, and only the PNG and JPEG parsers of
PIL are reachable from the network. More decoders come from plugins through
the ``register_decoders`` hook of the same pluggy manager that loads detectors.
"""

from __future__ import annotations

import base64
import binascii
import io
import re
import reprlib
import warnings
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache
from typing import ClassVar

import numpy as np
import orjson
from PIL import Image, UnidentifiedImageError

from anomaly.data.images import decode_image
from anomaly.errors import DataError
from anomaly.inputs import MAX_SERIES_VALUES, ImageSpec, SeriesSpec, Spec
from anomaly.plugins import PluginRegistry, Source

MAX_MESSAGE_BYTES = 8 * 1024 * 1024
MAX_IMAGE_PIXELS = 4096 * 4096
MAX_SOURCE_CHARS = 255  # the events.source column
# A series model reads at most MAX_SERIES_VALUES (8192) numbers at once: about 200 KiB of JSON at 25
# characters a number. 128 bytes a number (1 MiB) leaves room for extra fields and keeps the parse of
# the worst message a reading may be (a hundred thousand tiny lists) to a fraction of a second.
MAX_READING_BYTES = 128 * MAX_SERIES_VALUES
# A reading is {"source", "ts", "values": [[...], ...]}: 3 levels. 8 leaves room for plugins' extra
# fields while keeping every parser far from its recursion or stack limits.
MAX_JSON_DEPTH = 8
# Event times outside these bounds are typos or units mistakes (epoch milliseconds sent as seconds
# land in the year 55,000); inside them every conversion (UTC, PostgreSQL timestamptz) is safe.
EARLIEST_TIME = datetime(1900, 1, 1, tzinfo=timezone.utc)
LATEST_TIME = datetime(2200, 1, 1, tzinfo=timezone.utc)

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
JPEG_MAGIC = b"\xff\xd8\xff"
PNG_END = b"\x00\x00\x00\x00IEND\xaeB`\x82"  # the IEND chunk: length 0, type, CRC
JPEG_END = b"\xff\xd9"  # the EOI marker
IMAGE_FORMATS = ("PNG", "JPEG")  # the only PIL parsers a message reaches


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
        """The record's timestamp; None when absent or outside the supported range (producers set
        it freely, and an unknown time is better than a message that cannot be stored)."""
        if self.timestamp_ms is None:
            return None
        return _utc_from_epoch(self.timestamp_ms / 1000)


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
        """Reject sources the operator did not list (when a list is given) and unstorable names:
        too long for the column, NUL, or lone surrogates (not UTF-8, so PostgreSQL refuses them)."""
        if source is not None and (len(source) > MAX_SOURCE_CHARS or "\x00" in source or not _is_utf8(source)):
            raise Rejected(
                f"source name is longer than {MAX_SOURCE_CHARS} characters, holds NUL or is not UTF-8 text", "source"
            )
        if self.sources is not None and source not in self.sources:
            raise Rejected(
                f"unknown source {source!r} (this scorer serves {', '.join(sorted(self.sources))})", "source"
            )


Decoder = Callable[[Message, DecodeContext], Decoded]


@dataclass
class DecoderInfo:
    decode: Decoder
    modality: str
    plugin: str


@dataclass
class Decoders(PluginRegistry[DecoderInfo]):
    """Decoders by name, and plugins whose decoders could not be loaded (reported, then skipped)."""

    hook: ClassVar[str] = "register_decoders"
    kind: ClassVar[str] = "message decoder"

    def get(self, name: str) -> DecoderInfo:
        return self.info(name)

    def entry(self, plugin: str, source: Source, name: str, decode: Decoder, modality: str) -> tuple[str, DecoderInfo]:
        if modality not in ("image", "series"):
            raise ValueError(f"decoder {name!r}: modality must be 'image' or 'series', not {modality!r}")
        return name, DecoderInfo(decode, modality, plugin)

    def default_for(self, spec: Spec) -> str:
        """The built-in decoder for the model's input, used when ``--decoder`` is not given."""
        return "image" if spec.modality == "image" else "reading"


# ---- shared checks -----------------------------------------------------------------------------


def _size(message: Message, limit: int) -> bytes:
    if message.value is None or len(message.value) == 0:
        raise Rejected("empty message (no value)", "format")
    if len(message.value) > limit:
        raise Rejected(f"message of {len(message.value)} bytes is over the {limit}-byte limit", "too_large")
    return message.value


def _is_utf8(text: str) -> bool:
    return text.isascii() or not any("\ud800" <= char <= "\udfff" for char in text)


def _shown(value: object) -> str:
    """A message's value quoted in a reason, cut short: reasons travel in dead-letter headers."""
    return reprlib.repr(value)


_NOT_BRACKETS = bytes(byte for byte in range(256) if byte not in b"[]{}")
_AS_SQUARE = bytes.maketrans(b"{}", b"[]")


def _nesting_depth(value: bytes) -> int:
    """How deep ``[``/``{`` nest outside strings, counted without parsing and in C-speed passes (a
    hostile 8 MiB message costs well under a second, a window message microseconds). Escaped
    backslashes go first, then escaped quotes; what is left between quotes is string content."""
    unescaped = value.replace(b"\\\\", b"").replace(b'\\"', b"")
    brackets = b"".join(unescaped.split(b'"')[::2]).translate(_AS_SQUARE, _NOT_BRACKETS)
    steps = 92 - np.frombuffer(brackets, np.int8)  # "[" is 91 and "]" is 93: +1 and -1
    return int(np.cumsum(steps, dtype=np.int32).max(initial=0))


_NON_FINITE_TOKEN = re.compile(r"-?(?:NaN|Infinity)")


def _json_object(value: bytes) -> dict:
    """Parse with orjson (about 3x faster: JSON parsing is the biggest per-reading cost) after a
    depth check, and word its refusals for people; NaN/Infinity tokens (not JSON, but what some
    producers write) are told apart so such a reading is rejected as non-finite, not malformed."""
    if value.count(b"[") + value.count(b"{") > MAX_JSON_DEPTH:
        depth = _nesting_depth(value)
        if depth > MAX_JSON_DEPTH:
            raise Rejected(f"invalid JSON: nested {depth} levels deep, over the limit of {MAX_JSON_DEPTH}", "json")
    try:
        data = orjson.loads(value)
    except orjson.JSONDecodeError as exc:
        try:
            text = value.decode("utf-8")
        except UnicodeDecodeError as bad:
            raise Rejected(f"invalid JSON: not UTF-8 text (byte {bad.start})", "json") from None
        if _NON_FINITE_TOKEN.match(text, exc.pos):
            reason = "NaN or infinite value: JSON has no NaN or Infinity, send finite numbers"
            raise Rejected(reason, "non_finite") from None
        raise Rejected(f"invalid JSON: {exc}", "json") from None
    if not isinstance(data, dict):
        raise Rejected(f"expected a JSON object, got {type(data).__name__}", "json")
    return data


def _utc_from_epoch(seconds: float) -> datetime | None:
    """Epoch seconds as an aware UTC time; None outside ``EARLIEST_TIME``..``LATEST_TIME``."""
    if not EARLIEST_TIME.timestamp() <= seconds < LATEST_TIME.timestamp():
        return None
    return datetime.fromtimestamp(seconds, timezone.utc)


def _event_time(data: dict, message: Message) -> datetime | None:
    """``ts`` as ISO-8601 (UTC when it names no zone) or epoch seconds, converted to UTC here so the
    store never meets a time it cannot convert; else the broker's timestamp."""
    ts = data.get("ts")
    if ts is None:
        return message.broker_time
    allowed = f"between {EARLIEST_TIME.year} and {LATEST_TIME.year}"
    if isinstance(ts, (int, float)) and not isinstance(ts, bool):
        moment = _utc_from_epoch(ts)
        if moment is None:
            raise Rejected(f"ts {_shown(ts)} is not epoch seconds {allowed} (milliseconds?)", "format")
        return moment
    if isinstance(ts, str):
        try:
            moment = datetime.fromisoformat(ts.replace("Z", "+00:00"))
        except ValueError:
            raise Rejected(f"ts {_shown(ts)} is not an ISO-8601 time or epoch seconds", "format") from None
        moment = moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)
        if not EARLIEST_TIME <= moment < LATEST_TIME:
            raise Rejected(f"ts {_shown(ts)} is not {allowed}", "format")
        return moment.astimezone(timezone.utc)
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


def _wrong_channels(got: int, channels: int) -> Rejected:
    return Rejected(f"wrong channel count: got {got} value(s) per reading, the model reads {channels}", "shape")


def _wrong_length(rows: int, window: int) -> Rejected:
    return Rejected(f"wrong length: {rows} readings; send 1 or a whole window of {window}", "shape")


def decode_reading(message: Message, context: DecodeContext) -> Reading:
    """One reading (or a full window of them) as JSON; the source comes from the body or the key."""
    spec = context.spec
    if not isinstance(spec, SeriesSpec):
        raise Rejected("the reading decoder feeds series models only", "format")
    data = _json_object(_size(message, min(context.max_bytes, MAX_READING_BYTES)))
    source = _source(data, message)
    if source is None:
        raise Rejected("unknown source: the reading names no source and the message has no key", "source")
    context.check_source(source)
    if "values" not in data:
        raise Rejected('missing "values" (a list of one number per channel)', "format")
    given, channels, window = data["values"], spec.channels, spec.window
    if isinstance(given, list) and len(given) > max(channels, window):
        # longer than any right shape: refused before checking each entry, which takes seconds for a few MB
        raise _wrong_length(len(given), window) if type(given[0]) is list else _wrong_channels(len(given), channels)
    values = _matrix(given)
    if values is None:
        raise Rejected('"values" must be a list of numbers, or a list of such lists for a window', "format")
    if values.shape[1] != channels:
        raise _wrong_channels(values.shape[1], channels)
    if values.shape[0] not in (1, window):
        raise _wrong_length(values.shape[0], window)
    with np.errstate(over="ignore"):
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


# What PIL's PNG and JPEG parsers raise on hostile bytes (found by fuzzing them with mutated images).
_PIL_ERRORS = (UnidentifiedImageError, OSError, SyntaxError, ValueError)


def _header_size(raw: bytes) -> tuple[int, int]:
    """Width and height from the header, before any pixel is decoded. PIL's decompression-bomb
    check runs while opening; its warning is raised as an error so that PIL's own limit
    (``Image.MAX_IMAGE_PIXELS``) stays a ceiling whatever ``max_pixels`` says. (``catch_warnings``
    swaps process-wide filters: fine, as decoders run on the consumer's polling thread only.)"""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(io.BytesIO(raw), formats=IMAGE_FORMATS) as probe:
                return probe.size
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise Rejected(f"image too large: {exc}", "too_large") from None
    except UnidentifiedImageError:  # its message names a Python object, not the problem
        raise Rejected("corrupt image: its header is not a readable PNG or JPEG header", "image") from None
    except _PIL_ERRORS as exc:
        raise Rejected(f"corrupt image: {exc}", "image") from None


def _check_end(raw: bytes, content_type: str) -> None:
    """Refuse truncated images by their last bytes: PIL decodes a PNG cut after its last image data
    without complaint, and ``ImageFile.LOAD_TRUNCATED_IMAGES`` is process-wide, so any library may
    switch it on."""
    if content_type == "image/png" and not raw.endswith(PNG_END):
        raise Rejected("truncated PNG: it does not end with the IEND chunk", "image")
    if content_type == "image/jpeg" and not raw.endswith(JPEG_END):
        raise Rejected("truncated JPEG: it does not end with the end-of-image marker", "image")


def _verify_png(raw: bytes) -> None:
    """Every chunk and its checksum up to IEND: PIL's decoder reads the image data unchecked."""
    try:
        with Image.open(io.BytesIO(raw), formats=("PNG",)) as png:
            png.verify()
    except _PIL_ERRORS as exc:
        raise Rejected(f"corrupt image: {exc}", "image") from None


def _picture_array(raw: bytes, context: DecodeContext) -> tuple[np.ndarray, str]:
    """The pixels and content type of PNG or JPEG bytes. Other formats are refused by their first
    bytes, so no other PIL parser ever sees a message."""
    content_type = sniff_content_type(raw)
    if content_type is None:
        raise Rejected(f"not a PNG or JPEG image (it starts {_shown(raw[:8])}); only those are accepted", "image")
    _check_end(raw, content_type)
    width, height = _header_size(raw)
    if width * height > context.max_pixels:
        raise Rejected(f"image of {width}x{height} pixels is over the {context.max_pixels}-pixel limit", "too_large")
    if content_type == "image/png":
        _verify_png(raw)
    try:
        return decode_image(raw, "image", formats=IMAGE_FORMATS), content_type
    except DataError as exc:
        raise Rejected(f"corrupt image: {exc}", "image") from None


def decode_picture(message: Message, context: DecodeContext) -> Picture:
    """Raw image bytes (preferred: no base64 inflation or JSON parse) or JSON with a base64 ``image``."""
    if not isinstance(context.spec, ImageSpec):
        raise Rejected("the image decoder feeds image models only", "format")
    value = _size(message, context.max_bytes)
    header = message.header("content-type")
    declared = header.decode("latin-1").split(";")[0].strip().lower() if header else None
    is_json = declared == "application/json" or (declared is None and value.lstrip()[:1] == b"{")
    if not is_json:
        source = message.key_text
        context.check_source(source)
        image, content_type = _picture_array(value, context)
        return Picture(source, image, message.broker_time, content_type, value)
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
    image, content_type = _picture_array(raw, context)
    return Picture(source, image, _event_time(data, message), content_type, raw)


# ---- the registry ------------------------------------------------------------------------------


def register_builtin_decoders(register: Callable[..., None]) -> None:
    """The built-in decoders, registered through the ``register_decoders`` hook as a plugin's would be
    (by ``anomaly.plugins``, whose manager must not import this module before it is needed)."""
    register("reading", decode_reading, "series")
    register("image", decode_picture, "image")


def build_decoders(extra_plugins: Mapping[str, object] | None = None) -> Decoders:
    """Built-ins plus every allowed ``anomaly.detectors`` plugin implementing ``register_decoders``."""
    from anomaly.plugins import build_plugin_manager, plugin_manager

    found = Decoders()
    found.fill(plugin_manager() if extra_plugins is None else build_plugin_manager(extra_plugins))
    return found


@lru_cache(maxsize=1)
def decoders() -> Decoders:
    """The process-wide decoder registry, built once: plugin imports are not repeated per scorer."""
    return build_decoders()
