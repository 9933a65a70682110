"""Poison and malformed stream messages, generated deterministically, for the scorer's fuzz tests.

Every message here is one the built-in decoders must reject for the stream tests' models (a series
model of 2 channels and window 8 reading ``pump-0``..``pump-3``; an image model of 16 px reading
``cam-1``), whether or not the scorer lists its sources, so a fuzz test can demand that each one
ends in the dead-letter topic with a reason. Each generator returns a hand-written catalogue (every
kind, the messages that stopped the scorer in issue 15 first) followed by ``count`` seeded
variations: thousands cost well under a second.
"""

from __future__ import annotations

import base64
import io
import json
import struct
import zlib
from collections.abc import Callable

import numpy as np
from PIL import Image

from anomaly.inputs import ImageSpec, SeriesSpec
from anomaly.stream import decode

Message = tuple[bytes | None, bytes, list[tuple[str, bytes]]]  # as tests.stream.support.Message

SOURCES = tuple(f"pump-{i}" for i in range(4))
CAMERA = "cam-1"
READING_CONTEXT = decode.DecodeContext(spec=SeriesSpec(window=8, channels=2))
IMAGE_CONTEXT = decode.DecodeContext(spec=ImageSpec(image_size=16))
TS = "2026-11-26T10:00:00Z"
PNG = [("content-type", b"image/png")]
AS_JSON = [("content-type", b"application/json")]
OTHER_FORMATS = ("GIF", "BMP", "TIFF", "PPM", "ICO", "PCX", "TGA")  # all written by PIL without plugins


def _reading(source: object = "pump-0", values: object = (0.5, 1.5), **fields: object) -> bytes:
    body = {"source": source, "ts": TS, "values": list(values) if isinstance(values, tuple) else values}
    return json.dumps(body | fields).encode()


def _image_json(raw: bytes, **fields: object) -> bytes:
    return json.dumps({"source": CAMERA, "ts": TS, "image": base64.b64encode(raw).decode()} | fields).encode()


def _picture(rng: np.random.Generator, fmt: str = "PNG", channels: int = 1) -> bytes:
    pixels = rng.integers(0, 256, (16, 16, channels), dtype=np.uint8)
    out = io.BytesIO()
    Image.fromarray(pixels[..., 0] if channels == 1 else pixels).save(out, format=fmt)
    return out.getvalue()


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def png_claiming(width: int, height: int) -> bytes:
    """A well-formed PNG of a few dozen bytes whose header claims ``width`` x ``height`` pixels."""
    header = struct.pack(">IIBBBBB", width, height, 8, 0, 0, 0, 0)
    return decode.PNG_MAGIC + _chunk(b"IHDR", header) + _chunk(b"IDAT", zlib.compress(b"")) + _chunk(b"IEND", b"")


def jpeg_claiming(width: int, height: int, rng: np.random.Generator) -> bytes:
    """A real JPEG whose frame header is patched to claim ``width`` x ``height`` pixels."""
    raw = bytearray(_picture(rng, "JPEG"))
    frame = raw.index(b"\xff\xc0") + 5  # SOF0: marker, length (2), precision (1), then height, width
    raw[frame : frame + 4] = struct.pack(">HH", height, width)
    return bytes(raw)


def mutated(raw: bytes, rng: np.random.Generator) -> bytes:
    """One to four random byte flips, deletions or insertions."""
    out = bytearray(raw)
    for _ in range(rng.integers(1, 5)):
        at = int(rng.integers(0, len(out)))
        action = rng.integers(0, 3)
        if action == 0:
            out[at] ^= int(rng.integers(1, 256))
        elif action == 1:
            del out[at : at + int(rng.integers(1, 8))]
        else:
            out[at:at] = rng.integers(0, 256, int(rng.integers(1, 8)), dtype=np.uint8).tobytes()
    return bytes(out)


def _cut(raw: bytes, rng: np.random.Generator) -> bytes:
    """``raw`` missing at least its last byte."""
    return raw[: int(rng.integers(1, len(raw)))]


def _time_out_of_range(rng: np.random.Generator) -> str:
    """An ISO time before 1900 or from 2200 on; mid-June, so no UTC offset brings it into range."""
    year = int(rng.choice([rng.integers(1, 1900), rng.integers(2200, 10_000)]))
    return f"{year:04d}-06-15T12:00:00{rng.choice(['+', '-'])}{rng.integers(0, 15):02d}:00"


def _refused(
    decoder: Callable, context: decode.DecodeContext, key: bytes | None, value: bytes, headers: list[tuple[str, bytes]]
) -> bool:
    try:
        decoder(decode.Message("poison", 0, 0, key, value, tuple(headers)), context)
    except decode.Rejected:
        return True
    return False


def _refused_mutation(
    valid: bytes,
    rng: np.random.Generator,
    decoder: Callable,
    context: decode.DecodeContext,
    key: bytes | None,
    headers: list[tuple[str, bytes]],
) -> bytes:
    """A mutation of ``valid`` that the decoder refuses: some mutations stay valid (a changed digit)."""
    while True:
        value = mutated(valid, rng)
        if _refused(decoder, context, key, value, headers):
            return value


def _sign(rng: np.random.Generator) -> float:
    return float(rng.choice([-1.0, 1.0]))


# ---- readings ------------------------------------------------------------------------------------


def _wide_reading(size: int) -> bytes:
    """A reading of about ``size`` bytes holding one row of far too many channels."""
    return b'{"source": "pump-0", "values": [' + b"0.5, " * (size // 5) + b"0.5]}"


def crash_readings(large_bytes: int = 2_000_000) -> list[Message]:
    """The readings that stopped the scorer before issue 15, a deep nesting that crashes orjson
    itself (a segmentation fault, no exception), and two readings with the wrong channel count whose
    dead letters are over a broker's default record limit: one of ``large_bytes`` (refused by size)
    and one of 900 kB (parsed, then refused by shape)."""
    return [
        (b"pump-0", b"[" * 100_000, []),
        (b"pump-0", b"[" * 300_000 + b"]" * 300_000, []),
        (b"pump-1", _reading("\ud800"), []),
        (b"pump-2", _reading(ts="0001-01-01T00:00:00+14:00"), []),
        (b"pump-3", _reading(ts="9999-12-31T23:59:59-14:00"), []),
        (b"pump-0", _wide_reading(large_bytes), []),
        (b"pump-0", _wide_reading(900_000), []),
    ]


_BAD_READING_VALUES: list[bytes] = [
    # not JSON, or not an object
    b"{not json",
    b"{",
    b"}",
    b'{"source": "pump-0", "values": [1, 2]',
    b'{"source": "pump-0", "values": [1, 2]} x',
    b"\xef\xbb\xbf" + _reading(),
    b"null",
    b"true",
    b"42",
    b'"pump-0"',
    b"[]",
    b"[0.5, 1.5]",
    b" ",
    b"\n\t",
    b'{"source": "pump-0", "values": [1, 2],}',
    b"{'source': 'pump-0', 'values': [1, 2]}",
    # not UTF-8, or not storable text
    b'{"source": "pump-\xff", "values": [1, 2]}',
    b'{"source": "\xc0\xaf", "values": [1, 2]}',
    b'{"source": "\xed\xa0\x80", "values": [1, 2]}',
    b'{"source": "pump-\xe2\x82", "values": [1, 2]}',
    _reading("\udfff"),
    _reading("pump-\udc00"),
    _reading("\ud800\ud800"),
    _reading("pump\x000"),
    _reading("p" * 256),
    # the source: missing (and no key, see below), empty or not a string
    _reading(""),
    _reading(5),
    _reading(["pump-0"]),
    _reading({"name": "pump-0"}),
    _reading(True),
    # NaN and infinities
    b'{"source": "pump-0", "values": [1.0, NaN]}',
    b'{"source": "pump-0", "values": [Infinity, 1]}',
    b'{"source": "pump-0", "values": [-Infinity, 1]}',
    b'{"source": "pump-0", "values": [[1, 2], [NaN, 2]]}',
    _reading(values=(1e39, 0)),
    _reading(values=(0, -1e39)),
    _reading(values=(3.5e38, 0)),
    _reading(values=(1e308, 1e308)),
    b'{"source": "pump-0", "values": [1e400, 0]}',
    # values of the wrong type
    _reading(values="0.5, 1.5"),
    _reading(values={"a": 1}),
    _reading(values=None),
    _reading(values=True),
    _reading(values=(True, False)),
    _reading(values=("1", "2")),
    _reading(values=(None, 1)),
    _reading(values=[[1, 2], "x"]),
    _reading(values=[{}, {}]),
    _reading(values=[[1, [2]]]),
    b'{"source": "pump-0", "values": [1, 2], "values": "x"}',
    b'{"source": "pump-0"}',
    # values of the wrong shape
    _reading(values=(1,)),
    _reading(values=(1, 2, 3)),
    _reading(values=()),
    _reading(values=[[]]),
    _reading(values=[[1, 2]] * 2),
    _reading(values=[[1, 2]] * 7),
    _reading(values=[[1, 2]] * 9),
    _reading(values=[[1]] * 8),
    _reading(values=[[1, 2, 3]] * 8),
    _reading(values=[[[1, 2]]]),
    # times that are not times, or outside 1900..2200
    _reading(ts="yesterday"),
    _reading(ts=""),
    _reading(ts="2026-13-01"),
    _reading(ts=True),
    _reading(ts=[]),
    _reading(ts={}),
    _reading(ts=1_700_000_000_000),
    _reading(ts=-1e10),
    _reading(ts=2**70),
    _reading(ts="1899-12-31T23:59:59Z"),
    _reading(ts="2200-01-01T00:00:00Z"),
    _reading(ts="0001-01-01"),
    _reading(ts="9999-12-31"),
    _reading(ts="2026-11-26T10:00:00+25:00"),
    # nested deeper than any reading
    b'{"a":' * 1000 + b"1" + b"}" * 1000,
    _reading(values=[[[[[[[[[[[1, 2]]]]]]]]]]]),
    b'{"source": "pump-0", "values": [1, 2], "x": ' + b"[" * 20 + b"]" * 20 + b"}",
    b"",
]


def _deep(rng: np.random.Generator, source: str) -> bytes:
    """Well-formed JSON nested a random depth past the limit, so only the depth check can refuse it."""
    pairs = int(rng.integers(decode.MAX_JSON_DEPTH // 2 + 1, 2000))
    return f'{{"source": "{source}", "values": '.encode() + b'[{"a":' * pairs + b"1" + b"}]" * pairs + b"}"


def _mutated_reading(rng: np.random.Generator, source: str) -> bytes:
    return _refused_mutation(_reading(source), rng, decode.decode_reading, READING_CONTEXT, source.encode(), [])


_READING_VARIATIONS: list[Callable[[np.random.Generator, str], bytes]] = [
    lambda rng, source: _cut(_reading(source), rng),
    lambda rng, source: _reading(source, values=rng.normal(size=int(rng.choice([1, 3, 4, 7, 16]))).tolist()),
    lambda rng, source: _reading(source, values=rng.normal(size=(int(rng.choice([2, 3, 7, 9, 20])), 2)).tolist()),
    lambda rng, source: _reading(source).replace(b"1.5", rng.choice([b"NaN", b"Infinity", b"-Infinity"])),
    lambda rng, source: _reading(source, values=(_sign(rng) * 10.0 ** int(rng.integers(39, 308)), 0.5)),  # > float32
    lambda rng, source: _reading(source, ts=_time_out_of_range(rng)),
    lambda rng, source: _reading(source, ts=_sign(rng) * 10.0 ** rng.uniform(9.9, 15)),  # epoch beyond 1900..2200
    lambda rng, source: _reading(f"{source}-{chr(int(rng.integers(0xD800, 0xE000)))}"),  # a lone surrogate
    lambda rng, source: _reading(source).replace(b"pump-", b"pump-" + bytes([int(rng.integers(0x80, 0xC0))])),
    lambda rng, source: _reading(source, values=rng.choice(np.array(["1", None, True, {}], object), 2).tolist()),
    _deep,
    _mutated_reading,
]


def bad_readings(count: int = 2000, seed: int = 0, large_bytes: int = 2_000_000) -> list[Message]:
    """Every hand-written bad reading, then ``count`` seeded variations taking each kind in turn,
    random byte mutations of valid readings among them."""
    rng = np.random.default_rng(seed)
    out = crash_readings(large_bytes) + [(b"pump-0", value, []) for value in _BAD_READING_VALUES]
    out.append((None, b'{"values": [0.5, 1.5]}', []))  # no source and no key
    for n in range(count):
        source = SOURCES[n % len(SOURCES)]
        out.append((source.encode(), _READING_VARIATIONS[n % len(_READING_VARIATIONS)](rng, source), []))
    return out


# ---- images --------------------------------------------------------------------------------------


def crash_images() -> list[Message]:
    """The image that stopped the scorer before issue 15: a PNG header claiming 20000 x 20000 pixels
    (PIL's decompression-bomb error), raw and as base64 JSON."""
    bomb = png_claiming(20_000, 20_000)
    return [(CAMERA.encode(), bomb, PNG), (CAMERA.encode(), bomb, []), (None, _image_json(bomb), AS_JSON)]


def _in_each_form(raw: bytes) -> list[Message]:
    """Image bytes as the scorer takes them: raw with a content type, raw and sniffed, base64 JSON."""
    return [(CAMERA.encode(), raw, PNG), (CAMERA.encode(), raw, []), (None, _image_json(raw), AS_JSON)]


def _image_catalogue(rng: np.random.Generator) -> list[Message]:
    key = CAMERA.encode()
    png, jpeg = _picture(rng), _picture(rng, "JPEG")
    others = [_picture(rng, fmt) for fmt in OTHER_FORMATS]
    bad_checksum = bytearray(png)
    bad_checksum[png.index(b"IDAT") + 6] ^= 0xFF
    base64_png = base64.b64encode(png).decode()
    return [
        *crash_images(),
        # headers claiming too many pixels, or none
        *_in_each_form(png_claiming(10_000, 10_000)),
        (key, png_claiming(4097, 4097), []),
        (key, png_claiming(2**31 - 1, 1), []),
        (key, png_claiming(0, 0), []),
        (key, png_claiming(16, 0), []),
        *_in_each_form(jpeg_claiming(65_000, 65_000, rng)),
        (key, jpeg_claiming(5000, 4000, rng), []),
        # formats other than PNG and JPEG
        *(message for raw in others for message in _in_each_form(raw)),
        # truncated or corrupt
        *(
            message
            for n in (len(png) // 2, len(png) - 1, len(png) - 4, len(png) - 12, len(png) - 13, 33, 8)
            for message in _in_each_form(png[:n])
        ),
        *(
            message
            for n in (len(jpeg) // 2, len(jpeg) - 1, len(jpeg) - 2, len(jpeg) - 10, 3)
            for message in _in_each_form(jpeg[:n])
        ),
        *_in_each_form(png + b"trailing"),
        *_in_each_form(bytes(bad_checksum)),
        (key, b"\x89PNG\r\n\x1a\n truncated", PNG),
        (key, b"\xff\xd8\xff corrupt", []),
        (key, decode.PNG_MAGIC + others[0], []),
        (key, decode.JPEG_MAGIC + others[1], []),
        # not an image at all, or declared as the other form
        (key, b"plain text, not an image", []),
        (key, b"", []),
        (key, b"", PNG),
        (key, b"\x00" * 64, []),
        (key, png, AS_JSON),
        (key, _image_json(png), PNG),
        (key, _reading("cam-1"), []),
        # base64 that is not base64 of an image
        *(
            (None, json.dumps({"source": CAMERA, "image": text}).encode(), AS_JSON)
            for text in (
                "***",
                "%%%",
                "abc",
                "aGVsbG8=",
                "ab-_",
                "",
                " ",
                base64.encodebytes(png).decode(),
                base64_png[:-1],
                base64_png.replace("A", "-"),
                base64.b64encode(others[0]).decode(),
            )
        ),
        # JSON of the wrong shape, source or time
        (key, b'{"picture": ""}', []),
        (key, b"{}", AS_JSON),
        *((key, json.dumps({"source": CAMERA, "image": value}).encode(), []) for value in (5, None, [], {}, True)),
        *(
            (key, _image_json(png, source=source), [])
            for source in (5, "", "\ud800", "cam-\udfff", "c" * 256, "cam\x001")
        ),
        *(
            (key, _image_json(png, ts=ts), [])
            for ts in ("0001-01-01T00:00:00+14:00", "9999-12-31T23:59:59-14:00", 1_700_000_000_000, -1e12, "noon", True)
        ),
        (key, b"{not json", AS_JSON),
        (key, b"[" * 100_000, AS_JSON),
        (key, b'{"image": NaN}', AS_JSON),
        (key, b"[1, 2]", AS_JSON),
        (key, b'{"source": "cam-1", "image": "\xff"}', AS_JSON),
        # a key too long to store as the source
        (b"c" * 256, png, PNG),
    ]


def _bad_base64(raw: bytes, rng: np.random.Generator) -> bytes:
    """The base64 of ``raw`` with a character outside the alphabet, or a length no base64 has."""
    text = base64.b64encode(raw).decode().rstrip("=")
    at = int(rng.integers(0, len(text)))
    if rng.integers(0, 2):
        text = text[:at] + str(rng.choice(list("*!-_ \n.,~"))) + text[at:]
    else:
        text = text[: 4 * (len(text) // 4) - 3]
    return json.dumps({"source": CAMERA, "ts": TS, "image": text}).encode()


def _any_form(raw: bytes, rng: np.random.Generator) -> Message:
    return _in_each_form(raw)[int(rng.integers(0, 3))]


def _format(rng: np.random.Generator) -> str:
    return str(rng.choice(["PNG", "JPEG"]))


def _mutated_image(rng: np.random.Generator) -> Message:
    key, valid, headers = _any_form(_picture(rng, _format(rng)), rng)
    return key, _refused_mutation(valid, rng, decode.decode_picture, IMAGE_CONTEXT, key, headers), headers


def _pixels_over_limit(rng: np.random.Generator, largest: int) -> tuple[int, int]:
    """A width and height of up to ``largest``, their product over the scorer's 4096 x 4096 pixels."""
    return int(rng.integers(4097, largest)), int(rng.integers(4097, largest))


_IMAGE_VARIATIONS: list[Callable[[np.random.Generator], Message]] = [
    lambda rng: _any_form(_cut(_picture(rng, _format(rng), int(rng.choice([1, 3]))), rng), rng),
    lambda rng: _any_form(png_claiming(*_pixels_over_limit(rng, 1 << 20)), rng),
    lambda rng: _any_form(jpeg_claiming(*_pixels_over_limit(rng, 1 << 16), rng), rng),
    lambda rng: _any_form(_picture(rng, str(rng.choice(OTHER_FORMATS))), rng),
    lambda rng: (None, _bad_base64(_picture(rng, _format(rng)), rng), AS_JSON),
    lambda rng: (CAMERA.encode(), _image_json(_picture(rng, _format(rng)), ts=_time_out_of_range(rng)), []),
    _mutated_image,
]


def bad_images(count: int = 600, seed: int = 0) -> list[Message]:
    """Every hand-written bad image, then ``count`` seeded variations taking each kind in turn: cut
    short, headers claiming too many pixels (PNG and JPEG), another format, bad base64, a time out
    of range, and random byte mutations of valid PNGs and JPEGs (only those the decoder refuses)."""
    rng = np.random.default_rng(seed)
    return _image_catalogue(rng) + [_IMAGE_VARIATIONS[n % len(_IMAGE_VARIATIONS)](rng) for n in range(count)]
