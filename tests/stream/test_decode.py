"""Decoders and sliding windows, without a broker: every bad input becomes a Rejected with a clear reason."""

from __future__ import annotations

import base64
import io
import json
import warnings
from collections import Counter
from datetime import datetime, timezone

import numpy as np
import pytest
from PIL import Image, ImageFile

from anomaly.hookspecs import hookimpl
from anomaly.inputs import ImageSpec, SeriesSpec
from anomaly.stream.decode import (
    MAX_JSON_DEPTH,
    MAX_READING_BYTES,
    PNG_END,
    PNG_MAGIC,
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
from tests.stream import poison

SERIES = DecodeContext(spec=SeriesSpec(window=4, channels=2, mean=[0, 0], std=[1, 1]))
IMAGES = DecodeContext(spec=ImageSpec(image_size=16), max_bytes=50_000, max_pixels=300 * 300)


def message(
    value: bytes | None, key: bytes | None = None, headers=(), timestamp_ms: int = 1_700_000_000_000
) -> Message:
    return Message("t", 0, 7, key, value, tuple(headers), timestamp_ms)


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
        (b'{"source": "\\ud800", "values": [1, 2]}', "json", "surrogate"),
        (b'{"source": "\xed\xa0\x80", "values": [1, 2]}', "json", "not UTF-8"),
        (b'{"source": "p\\u0000", "values": [1, 2]}', "source", "NUL"),
        (b'{"source": "p", "values": [1, 1e400]}', "json", "infinity"),
        (b'{"source": "p", "values": [1, 2, 3, 4, "5"]}', "shape", "got 5 value(s)"),  # too many to look at each
        (b'{"source": "p", "values": [[1, 2], [1, 2], [1, 2], [1, 2], "x"]}', "shape", "wrong length: 5 readings"),
    ],
)
def test_bad_readings_are_rejected_with_a_reason(value: bytes, kind: str, words: str) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # 1e39 overflowing float32 must not warn once per message
        why = rejected(decode_reading, message(value), SERIES)
    assert why.kind == kind and words in why.reason


def test_nesting_is_refused_before_parsing() -> None:
    flat = rejected(decode_reading, message(b"[" * 100_000), SERIES)
    assert flat.kind == "json" and "nested 100000 levels deep" in flat.reason
    # well-formed and this deep, orjson itself overflows its stack: a segfault, not an exception
    assert "nested 300000 levels" in rejected(decode_reading, message(b"[" * 300_000 + b"]" * 300_000), SERIES).reason
    deepest = b"[" * (MAX_JSON_DEPTH - 1) + b"]" * (MAX_JSON_DEPTH - 1)
    assert decode_reading(message(b'{"source": "p", "values": [1, 2], "x": %s}' % deepest), SERIES).source == "p"
    too_deep = b'{"source": "p", "values": [1, 2], "x": [%s]}' % deepest
    assert f"nested {MAX_JSON_DEPTH + 1} levels" in rejected(decode_reading, message(too_deep), SERIES).reason


@pytest.mark.parametrize(
    ("source", "accepted"),
    [
        (b'"p[[[[[[[[[[{{{{"', True),  # brackets inside a string do not nest
        (b'"p\\"[[[[[[[[[[{{{{"', True),  # nor after an escaped quote
        (b'"p\\\\", "x": [[[[[[[[[[]]]]]]]]]]', False),  # an escaped backslash ends the string: real nesting
    ],
)
def test_nesting_is_counted_outside_strings(source: bytes, accepted: bool) -> None:
    value = b'{"values": [1, 2], "source": %s}' % source
    if accepted:
        assert decode_reading(message(value), SERIES).source.startswith("p")
    else:
        assert "nested 11 levels" in rejected(decode_reading, message(value), SERIES).reason


def test_storable_sources_only_even_from_plugin_decoders() -> None:
    for bad in ("\ud800", "p\x00", "p" * 256):
        with pytest.raises(Rejected, match="not UTF-8 text"):
            SERIES.check_source(bad)
    SERIES.check_source("pompe-é-1")


@pytest.mark.parametrize(
    ("ts", "expected"),
    [
        ("2026-11-26T10:00:00+01:00", datetime(2026, 11, 26, 9, tzinfo=timezone.utc)),
        ("2026-11-26T10:00:00", datetime(2026, 11, 26, 10, tzinfo=timezone.utc)),
        ("1900-01-01T00:00:00Z", datetime(1900, 1, 1, tzinfo=timezone.utc)),
        ("2200-01-01T13:00:00+14:00", datetime(2199, 12, 31, 23, tzinfo=timezone.utc)),
        (1_700_000_000.5, datetime(2023, 11, 14, 22, 13, 20, 500_000, tzinfo=timezone.utc)),
    ],
)
def test_times_come_out_in_utc(ts, expected: datetime) -> None:
    got = decode_reading(message(json.dumps({"source": "p", "ts": ts, "values": [1, 2]}).encode()), SERIES).event_time
    assert got == expected and got.utcoffset().total_seconds() == 0


@pytest.mark.parametrize(
    ("ts", "words"),
    [
        ("0001-01-01T00:00:00+14:00", "is not between 1900 and 2200"),  # overflowed converting to UTC
        ("9999-12-31T23:59:59-14:00", "is not between 1900 and 2200"),
        ("1899-12-31T23:59:59Z", "is not between 1900 and 2200"),
        ("2200-01-01T00:00:00Z", "is not between 1900 and 2200"),
        (1_700_000_000_000, "milliseconds?"),
        (-1e10, "not epoch seconds between 1900 and 2200"),
        ("x" * 10_000, "is not an ISO-8601 time"),
    ],
)
def test_times_out_of_range_are_rejected(ts, words: str) -> None:
    why = rejected(decode_reading, message(json.dumps({"source": "p", "ts": ts, "values": [1, 2]}).encode()), SERIES)
    assert why.kind == "format" and words in why.reason and len(why.reason) < 120


def test_a_broker_time_out_of_range_is_left_unknown() -> None:
    got = decode_reading(message(b'{"source": "p", "values": [1, 2]}', timestamp_ms=2**62), SERIES)
    assert got.event_time is None


def test_unknown_source_when_the_operator_lists_sources() -> None:
    context = DecodeContext(spec=SERIES.spec, sources=frozenset({"pump-1"}))
    assert decode_reading(message(reading("pump-1", [1, 2])), context).source == "pump-1"
    why = rejected(decode_reading, message(reading("pump-9", [1, 2])), context)
    assert why.kind == "source" and "pump-9" in why.reason


def test_oversized_message() -> None:
    context = DecodeContext(spec=SERIES.spec, max_bytes=10)
    assert rejected(decode_reading, message(reading("p", [1, 2])), context).kind == "too_large"
    padded = b'{"source": "p", "values": [1, 2], "x": "%s"}' % (b" " * MAX_READING_BYTES)
    why = rejected(decode_reading, message(padded), SERIES)
    assert why.kind == "too_large" and f"over the {MAX_READING_BYTES}-byte limit" in why.reason


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
    body = json.dumps(
        {"source": "cam-2", "ts": "2026-11-26T10:00:00+01:00", "image": base64.b64encode(png_bytes(image)).decode()}
    ).encode()
    got = decode_picture(message(body), IMAGES)
    assert got.source == "cam-2" and got.event_time == datetime(2026, 11, 26, 9, tzinfo=timezone.utc)
    assert np.array_equal(got.image, image)


def test_the_content_type_is_what_the_bytes_are() -> None:
    raw = png_bytes(picture())
    body = json.dumps({"image": base64.b64encode(raw).decode(), "content_type": "x" * 200}).encode()
    assert decode_picture(message(body), IMAGES).content_type == "image/png"
    declared = [("content-type", b"image/gif\x00")]
    assert decode_picture(message(raw, headers=declared), IMAGES).content_type == "image/png"


@pytest.mark.parametrize(
    ("value", "headers", "kind", "words"),
    [
        (b"\x89PNG\r\n\x1a\n truncated", (), "image", "truncated PNG"),
        (b"plain text, not an image", (), "image", "not a PNG or JPEG image"),
        (b"\x89PNG\r\n\x1a\nGIF89a\x00\x00\x00\x00IEND\xaeB`\x82", (), "image", "header is not a readable PNG"),
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


def other_format(fmt: str) -> bytes:
    out = io.BytesIO()
    Image.fromarray(picture()[..., 0]).save(out, format=fmt)
    return out.getvalue()


@pytest.mark.parametrize("fmt", ["GIF", "BMP", "TIFF", "PPM"])
def test_only_png_and_jpeg_reach_a_parser(fmt: str) -> None:
    for value in (other_format(fmt), PNG_MAGIC + other_format(fmt) + PNG_END):
        why = rejected(decode_picture, message(value, headers=[("content-type", b"image/png")]), IMAGES)
        assert why.kind == "image" and ("not a PNG or JPEG" in why.reason or "not a readable PNG" in why.reason)


@pytest.mark.parametrize(
    ("value", "words"),
    [
        (poison.png_claiming(20_000, 20_000), "exceeds limit"),  # PIL's bomb error: crashed the scorer
        (poison.png_claiming(10_000, 10_000), "exceeds limit"),  # PIL's bomb warning, raised
        (poison.png_claiming(301, 300), "301x300 pixels is over the 90000-pixel limit"),
        (poison.jpeg_claiming(5000, 4000, np.random.default_rng(0)), "5000x4000 pixels"),
    ],
)
def test_dimensions_come_from_the_header_before_decoding(value: bytes, words: str) -> None:
    assert len(value) < 1000
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        why = rejected(decode_picture, message(value), IMAGES)
    assert why.kind == "too_large" and words in why.reason


@pytest.mark.parametrize("load_truncated", [False, True])
def test_truncated_images_are_refused(monkeypatch: pytest.MonkeyPatch, load_truncated: bool) -> None:
    monkeypatch.setattr(ImageFile, "LOAD_TRUNCATED_IMAGES", load_truncated)  # any library may switch it on
    png, jpg = png_bytes(picture()), jpeg(picture())
    for raw, cuts, kind in ((png, (len(png) // 2, 1, 4, 12), "PNG"), (jpg, (len(jpg) // 2, 1, 2), "JPEG")):
        for cut in cuts:
            why = rejected(decode_picture, message(raw[:-cut]), IMAGES)
            assert why.kind == "image" and f"truncated {kind}" in why.reason
    broken = bytearray(png)
    broken[png.index(b"IDAT") + 6] ^= 0xFF
    assert "broken PNG file" in rejected(decode_picture, message(bytes(broken)), IMAGES).reason


def test_decoders_feed_only_their_modality() -> None:
    assert "series models" in rejected(decode_reading, message(reading("p", [1])), IMAGES).reason
    assert "image models" in rejected(decode_picture, message(png_bytes(picture())), SERIES).reason


# ---- every poison message, and totality ----------------------------------------------------------


@pytest.mark.parametrize(
    ("decode", "generate", "context", "sources", "kinds"),
    [
        (
            decode_reading,
            poison.bad_readings,
            poison.READING_CONTEXT,
            poison.SOURCES,
            {"json", "format", "shape", "non_finite", "source", "too_large"},
        ),
        (
            decode_picture,
            poison.bad_images,
            poison.IMAGE_CONTEXT,
            (poison.CAMERA,),
            {"json", "format", "image", "non_finite", "source", "too_large"},
        ),
    ],
)
def test_every_generated_poison_message_is_rejected_with_a_reason(decode, generate, context, sources, kinds) -> None:
    messages = generate(1200, seed=3)
    assert len(messages) >= 1200 and generate(50, seed=1) == generate(50, seed=1)
    listing = DecodeContext(spec=context.spec, sources=frozenset(sources))
    seen = Counter()
    for key, value, headers in messages:
        for each in (context, listing):  # refused whether or not the scorer lists its sources
            why = rejected(decode, message(value, key, headers), each)
            assert why.reason and len(why.reason) < 300
            seen[why.kind] += 1
    assert set(seen) == kinds


def test_the_crash_cases_are_rejected_for_what_they_are() -> None:
    readings = [
        rejected(decode_reading, message(value, key, headers), poison.READING_CONTEXT)
        for key, value, headers in poison.crash_readings()
    ]
    assert [why.kind for why in readings] == ["json", "json", "json", "format", "format", "too_large", "shape"]
    assert "surrogate" in readings[2].reason and "wrong channel count" in readings[6].reason
    for key, value, headers in poison.crash_images():
        assert rejected(decode_picture, message(value, key, headers), poison.IMAGE_CONTEXT).kind == "too_large"


def test_decoders_return_or_reject_whatever_the_bytes() -> None:
    rng = np.random.default_rng(11)
    with_strings = reading("p", [1, 2])[:-1] + b', "x": [[{"a": "\\""}]]}'
    valid = [
        (decode_reading, reading("p", [1, 2]), SERIES),
        (decode_reading, with_strings, SERIES),
        (decode_picture, png_bytes(picture(channels=3)), IMAGES),
        (decode_picture, jpeg(picture()), IMAGES),
    ]
    for n in range(3000):
        decode, value, context = valid[n % len(valid)]
        try:
            assert isinstance(decode(message(poison.mutated(value, rng)), context), (Reading, Picture))
        except Rejected as why:
            assert why.reason


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
