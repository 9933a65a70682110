"""Putting data on a topic in the formats ``anomaly serve`` reads: the demo, the tests and the benchmark use it.

Images go as raw PNG bytes with a ``content-type`` header, keyed by source; sensor series go one
reading per message as JSON, keyed by source so a source's readings stay in order on one partition.
"""

from __future__ import annotations

import io
import json
import time
from collections.abc import Iterable, Iterator
from datetime import datetime, timezone

import numpy as np
from kafka import KafkaProducer
from PIL import Image

from anomaly.data.images import ImageSet
from anomaly.data.series import SeriesSet


def png_bytes(image: np.ndarray) -> bytes:
    """An (H, W, C) uint8 array as PNG (lossless, so the scorer sees exactly the pixels sent)."""
    pil = Image.fromarray(image[..., 0] if image.shape[2] == 1 else image)
    out = io.BytesIO()
    pil.save(out, format="PNG", compress_level=1)
    return out.getvalue()


def image_messages(images: ImageSet, source: str = "camera") -> Iterator[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """(key, value, headers) per image: raw PNG bytes, the item id in a header."""
    for item_id, image in zip(images.ids, images.images):
        yield source.encode(), png_bytes(image), [("content-type", b"image/png"), ("id", item_id.encode())]


def reading(source: str, values: Iterable[float], ts: datetime | None = None) -> bytes:
    """One sensor reading as the scorer's JSON."""
    moment = ts or datetime.now(timezone.utc)
    return json.dumps({"source": source, "ts": moment.isoformat(), "values": [float(v) for v in values]}).encode()


def reading_messages(
    series: SeriesSet, source: str | None = None
) -> Iterator[tuple[bytes, bytes, list[tuple[str, bytes]]]]:
    """(key, value, headers) per time step of ``series``, the step id in a header."""
    name = source or series.name
    for step_id, row in zip(series.ids, series.values):
        yield name.encode(), reading(name, row), [("id", step_id.encode())]


def send(
    producer: KafkaProducer,
    topic: str,
    messages: Iterable[tuple[bytes, bytes, list[tuple[str, bytes]]]],
    rate: float | None = None,
) -> list[tuple[int, int]]:
    """Send every message (at ``rate`` per second when given), wait for all acknowledgements.

    Returns each message's (partition, offset), in sending order, so callers can match stored rows
    back to what they sent.
    """
    futures = []
    started = time.perf_counter()
    for n, (key, value, headers) in enumerate(messages):
        if rate:
            ahead = started + n / rate - time.perf_counter()
            if ahead > 0:
                time.sleep(ahead)
        futures.append(producer.send(topic, key=key, value=value, headers=headers))
    producer.flush()
    return [(meta.partition, meta.offset) for meta in (future.get(timeout=0) for future in futures)]
