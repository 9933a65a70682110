"""Decoders and sliding windows, without a broker: every bad input becomes a Rejected with a clear reason."""

from __future__ import annotations

import base64
import io
import json

import numpy as np
import pytest
from PIL import Image

from anomaly.hookspecs import hookimpl
from anomaly.inputs import ImageSpec, SeriesSpec
from anomaly.stream.decode import (
    DecodeContext,
    Message,
    Picture,
    Reading,
    Rejected,
    build_decoders,
    decode_picture,
    decode_reading,
)
from anomaly.stream.produce import png_bytes, reading
from anomaly.stream.windows import WindowBuffers

SERIES = DecodeContext(spec=SeriesSpec(window=4, channels=2, mean=[0, 0], std=[1, 1]))
IMAGES = DecodeContext(spec=ImageSpec(image_size=16), max_bytes=50_000, max_pixels=300 * 300)


def message(value: bytes | None, key: bytes | None = None, headers=()) -> Message:
    return Message("t", 0, 7, key, value, tuple(headers), 1_700_000_000_000)


def picture(size=(20, 24), channels=1) -> np.ndarray:
    return np.random.default_rng(0).integers(0, 255, (*size, channels), dtype=np.uint8)


def jpeg(image: np.ndarray) -> bytes:
    out = io.BytesIO()
    Image.fromarray(image[..., 0]).save(out, format="JPEG")
    return out.getvalue()


def rejected(decode, msg: Message, context: DecodeContext) -> Rejected:
    with pytest.raises(Rejected) as caught:
        decode(msg, context)
    return caught.value


# ---- readings ------------------------------------------------------------------------------------


def test_one_reading_with_iso_time() -> None:
    got = decode_reading(message(b'{"source": "pump-1", "ts": "2026-11-26T10:00:00Z", "values": [1, 2.5]}'), SERIES)
    assert isinstance(got, Reading) and got.source == "pump-1"
    assert got.values.shape == (1, 2) and got.values.dtype == np.float32
    assert got.event_time.isoformat() == "2026-11-26T10:00:00+00:00"


def test_a_whole_window_per_message_and_the_key_as_source() -> None:
    body = json.dumps({"values": [[0, 1], [1, 2], [2, 3], [3, 4]], "ts": 1_700_000_000}).encode()
    got = decode_reading(message(body, key=b"pump-2"), SERIES)
    assert got.source == "pump-2" and got.values.shape == (4, 2)
    assert got.event_time.year == 2023


def test_broker_time_when_the_reading_has_none() -> None:
    got = decode_reading(message(reading("p", [1, 2], None).replace(b'"ts"', b'"x"')), SERIES)
    assert got.event_time.timestamp() == 1_700_000_000


@pytest.mark.parametrize(
    ("value", "kind", "words"),
    [
        (b"{not json", "json", "invalid JSON"),
        (b"\xff\xfe", "json", "invalid JSON"),
        (b"[1, 2]", "json", "JSON object"),
        (b'{"source": "p", "values": [1, 2, 3]}', "shape", "wrong channel count"),
        (b'{"source": "p", "values": [[1, 2], [3, 4]]}', "shape", "wrong length"),
        (b'{"source": "p", "values": [1, NaN]}', "non_finite", "NaN"),
        (b'{"source": "p", "values": [1, Infinity]}', "non_finite", "NaN or infinite"),
        (b'{"source": "p", "values": [1, 1e39]}', "non_finite", "NaN or infinite"),
        (b'{"source": "p", "values": [true, 1]}', "format", "list of numbers"),
        (b'{"source": "p", "values": ["1", 2]}', "format", "list of numbers"),
        (b'{"source": "p", "values": [[1, 2], [3]]}', "format", "list of numbers"),
        (b'{"source": "p"}', "format", "missing"),
        (b'{"values": [1, 2]}', "source", "unknown source"),
        (b'{"source": 5, "values": [1, 2]}', "source", "non-empty string"),
        (b'{"source": "p", "ts": "yesterday", "values": [1, 2]}', "format", "ISO-8601"),
        (b"", "format", "empty"),
    ],
)
@pytest.mark.filterwarnings("ignore:overflow encountered in cast:RuntimeWarning")  # 1e39 is beyond float32
def test_bad_readings_are_rejected_with_a_reason(value: bytes, kind: str, words: str) -> None:
    why = rejected(decode_reading, message(value), SERIES)
    assert why.kind == kind and words in why.reason


def test_unknown_source_when_the_operator_lists_sources() -> None:
    context = DecodeContext(spec=SERIES.spec, sources=frozenset({"pump-1"}))
    assert decode_reading(message(reading("pump-1", [1, 2])), context).source == "pump-1"
    why = rejected(decode_reading, message(reading("pump-9", [1, 2])), context)
    assert why.kind == "source" and "pump-9" in why.reason


def test_oversized_message() -> None:
    context = DecodeContext(spec=SERIES.spec, max_bytes=10)
    assert rejected(decode_reading, message(reading("p", [1, 2])), context).kind == "too_large"


# ---- images ----------------------------------------------------------------------------------------


def test_raw_png_sniffed_and_with_header() -> None:
    image = picture()
    for headers in ((), (("Content-Type", b"image/png"),)):
        got = decode_picture(message(png_bytes(image), key=b"cam-1", headers=headers), IMAGES)
        assert isinstance(got, Picture) and got.source == "cam-1" and got.content_type == "image/png"
        assert np.array_equal(got.image, image)


def test_raw_jpeg_is_sniffed() -> None:
    got = decode_picture(message(jpeg(picture())), IMAGES)
    assert got.content_type == "image/jpeg" and got.image.shape == (20, 24, 1)


def test_base64_json_image() -> None:
    image = picture(channels=3)
    body = json.dumps({"source": "cam-2", "ts": "2026-11-26T10:00:00+01:00",
                       "image": base64.b64encode(png_bytes(image)).decode()}).encode()
    got = decode_picture(message(body), IMAGES)
    assert got.source == "cam-2" and got.event_time.utcoffset().total_seconds() == 3600
    assert np.array_equal(got.image, image)


@pytest.mark.parametrize(
    ("value", "headers", "kind", "words"),
    [
        (b"\x89PNG\r\n\x1a\n truncated", (), "image", "corrupt image"),
        (b"plain text, not an image", (), "image", "corrupt image"),
        (b'{"image": "***"}', (), "image", "base64"),
        (b'{"picture": ""}', (), "format", 'missing "image"'),
        (b"{broken", (("content-type", b"application/json"),), "json", "invalid JSON"),
        (b"", (), "format", "empty"),
    ],
)
def test_bad_images_are_rejected_with_a_reason(value: bytes, headers, kind: str, words: str) -> None:
    why = rejected(decode_picture, message(value, headers=headers), IMAGES)
    assert why.kind == kind and words in why.reason


def test_oversized_images_by_bytes_and_by_pixels() -> None:
    noisy = png_bytes(np.random.default_rng(1).integers(0, 255, (300, 300, 3), dtype=np.uint8))
    assert rejected(decode_picture, message(noisy), IMAGES).kind == "too_large"
    flat = png_bytes(np.zeros((400, 400, 1), np.uint8))
    assert len(flat) < IMAGES.max_bytes
    why = rejected(decode_picture, message(flat), IMAGES)
    assert why.kind == "too_large" and "400x400" in why.reason


def test_decoders_feed_only_their_modality() -> None:
    assert "series models" in rejected(decode_reading, message(reading("p", [1])), IMAGES).reason
    assert "image models" in rejected(decode_picture, message(png_bytes(picture())), SERIES).reason


# ---- windows and the plugin hook ------------------------------------------------------------------


def test_windows_pad_then_slide_per_source_across_batches() -> None:
    buffers = WindowBuffers(window=3, channels=1)

    def windows(*items: tuple[str, list[float]]) -> list[list[float]]:
        got = buffers.windows([(source, np.array(values, np.float32)[:, None]) for source, values in items])
        return got[..., 0].tolist()

    assert windows(("a", [1]), ("b", [9]), ("a", [2])) == [[1, 1, 1], [9, 9, 9], [1, 1, 2]]
    assert windows(("a", [3]), ("a", [4])) == [[1, 2, 3], [2, 3, 4]]
    assert windows(("b", [5, 6, 7]), ("b", [8])) == [[5, 6, 7], [6, 7, 8]]
    assert windows(("c", [1, 2, 3])) == [[1, 2, 3]]
    assert len(buffers) == 3


class CsvReadings:
    """A third-party decoder: comma-separated numbers, the source in the key."""

    @staticmethod
    @hookimpl
    def register_decoders(register) -> None:
        def decode(msg: Message, context: DecodeContext) -> Reading:
            values = np.array([[float(v) for v in msg.value.decode().split(",")]], np.float32)
            return Reading(msg.key_text, values, None)

        register("csv", decode, "series")


class Broken:
    @staticmethod
    @hookimpl
    def register_decoders(register) -> None:
        register("reading", lambda m, c: None, "series")


def test_plugins_add_decoders_and_broken_ones_are_reported() -> None:
    found = build_decoders({"csv-plugin": CsvReadings, "broken": Broken})
    assert {"reading", "image", "csv"} <= set(found.known)
    assert found.known["csv"].plugin == "csv-plugin"
    got = found.get("csv").decode(message(b"1.5,2", key=b"s"), SERIES)
    assert got.values.tolist() == [[1.5, 2.0]]
    assert "already registered" in found.broken["broken"]
    with pytest.raises(Exception, match="unknown message decoder 'xml'"):
        found.get("xml")
