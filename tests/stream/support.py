"""Helpers of the stream integration tests: tiny models, messages of every kind, reading back the truth.

The truth is always read from where it lives: rows from the database, committed offsets from the
broker's group coordinator, dead letters and alerts from their topics.
"""

from __future__ import annotations

import base64
import json
import os
import subprocess
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from sqlalchemy import select
from sqlalchemy.orm import Session

from anomaly.artifact import Manifest
from anomaly.detector import FitSettings
from anomaly.inputs import ImageSpec, SeriesSpec
from anomaly.plugins import registry
from anomaly.store.engine import get_engine
from anomaly.store.registry import ModelRecord, register_trained_model
from anomaly.store.schema import Event, RejectedMessage
from anomaly.stream.produce import png_bytes, reading
from anomaly.testing import synthetic_images, synthetic_series
from tests.kafka_broker import KafkaBroker
from tests.scratch import postgres_script

Message = tuple[bytes | None, bytes, list[tuple[str, bytes]]]

# A PostgreSQL server of the stream tests' own, so stopping it (the outage test) never disturbs the
# shared one other test sessions may be using.
# The stream tests' own server; ANOMALY_STREAM_PG_DIR/PORT move it, so that two sessions at once (one
# of them stopping it for the outage test) need not share it.
PG_ENV = {
    "ANOMALY_PG_DIR": os.environ.get("ANOMALY_STREAM_PG_DIR", "/tmp/anomaly-pg-stream"),
    "ANOMALY_PG_PORT": os.environ.get("ANOMALY_STREAM_PG_PORT", "25442"),
}


def postgres(action: str) -> subprocess.CompletedProcess[str]:
    """``scripts/postgres.sh ACTION`` for the stream tests' own server."""
    return postgres_script(action, PG_ENV)


def train_tiny(modality: str, out: Path, seed: int = 0) -> Path:
    """A GANomaly of width 4, latent 4, one epoch: scores in milliseconds, trains in seconds."""
    cls = registry().get("ganomaly")
    if modality == "image":
        spec, data = ImageSpec(image_size=16), synthetic_images(16, seed)
    else:
        spec, data = SeriesSpec(window=8), synthetic_series(200, 2, seed)
    model = cls(spec, params=cls.Params(width=4, latent=4), settings=FitSettings(epochs=1, batch_size=16, seed=seed))
    model.fit(data)
    return model.save(out)


def register(url: str, name: str, model_dir: Path) -> ModelRecord:
    return register_trained_model(name, model_dir, Manifest.read(model_dir), engine=get_engine(url))


def producer(broker: KafkaBroker) -> KafkaProducer:
    return KafkaProducer(bootstrap_servers=broker.bootstrap, enable_idempotence=True, acks="all", linger_ms=5)


def send(client: KafkaProducer, topic: str, messages: list[Message]) -> list[tuple[int, int]]:
    """Send in order, wait for every acknowledgement; each message's (partition, offset)."""
    futures = [client.send(topic, key=key, value=value, headers=headers) for key, value, headers in messages]
    client.flush()
    return [(m.partition, m.offset) for m in (f.get(timeout=30) for f in futures)]


def images(count: int, seed: int = 0, source: bytes = b"cam-1") -> list[Message]:
    """Valid images in each accepted form: raw PNG with a header, sniffed PNG, and base64 JSON."""
    pictures = synthetic_images(count, seed).images
    out: list[Message] = []
    for i, image in enumerate(pictures):
        raw = png_bytes(image)
        if i % 3 == 0:
            out.append((source, raw, [("content-type", b"image/png")]))
        elif i % 3 == 1:
            out.append((source, raw, []))
        else:
            body = {"source": source.decode(), "ts": "2026-11-26T10:00:00Z", "image": base64.b64encode(raw).decode()}
            out.append((None, json.dumps(body).encode(), [("content-type", b"application/json")]))
    return out


BAD_IMAGES: list[Message] = [
    (b"cam-1", b"\x89PNG\r\n\x1a\n truncated", [("content-type", b"image/png")]),
    (b"cam-1", b"\xff\xd8\xff corrupt", []),
    (b"cam-1", b'{"image": "%%%"}', []),
    (b"cam-1", b"{not json", [("content-type", b"application/json")]),
    (b"cam-9", png_bytes(np.zeros((20, 20, 1), np.uint8)), []),  # unknown source
]


def readings(count: int, sources: int = 4, seed: int = 0) -> list[Message]:
    """``count`` single readings of 2 channels, round-robin over sources, keyed by source."""
    values = synthetic_series(count, 2, seed).values
    out: list[Message] = []
    for i, row in enumerate(values):
        name = f"pump-{i % sources}"
        out.append((name.encode(), reading(name, row), []))
    return out


BAD_READINGS: list[Message] = [
    (b"pump-0", b"{not json", []),
    (b"pump-0", b'{"source": "pump-0", "values": [1.0, NaN]}', []),
    (b"pump-1", b'{"source": "pump-1", "values": [1.0, 2.0, 3.0]}', []),
    (b"pump-1", b'{"source": "pump-1", "values": [[1.0, 2.0], [3.0, 4.0]]}', []),
    (None, b'{"values": [1.0, 2.0]}', []),
    (b"pump-x", b'{"source": "pump-x", "values": [1.0, 2.0]}', []),  # unknown source
]


def window_message(source: str = "pump-2") -> Message:
    """A whole window of 8 readings in one message (also accepted)."""
    values = synthetic_series(8, 2, 5).values.tolist()
    return source.encode(), json.dumps({"source": source, "values": values}).encode(), []


def stored(url: str, topic: str) -> list[tuple[int, int, int | None]]:
    """(partition, offset, model_id) of the events stored for ``topic``."""
    with Session(get_engine(url)) as session:
        query = select(Event.partition, Event.offset, Event.model_id).where(Event.topic == topic)
        return [tuple(row) for row in session.execute(query.order_by(Event.id))]


def rejections(url: str, topic: str) -> dict[tuple[int, int], str]:
    with Session(get_engine(url)) as session:
        query = select(RejectedMessage.partition, RejectedMessage.offset, RejectedMessage.reason)
        return {(p, o): r for p, o, r in session.execute(query.where(RejectedMessage.topic == topic))}


def committed(broker: KafkaBroker, group: str) -> dict[tuple[str, int], int]:
    """The group's committed offsets, from the broker."""
    with broker.admin() as admin:
        offsets = admin.list_group_offsets(group).get(group, {})
    return {(tp.topic, tp.partition): meta.offset for tp, meta in offsets.items()}


def end_offsets(broker: KafkaBroker, topic: str, partitions: int = 3) -> dict[tuple[str, int], int]:
    consumer = KafkaConsumer(bootstrap_servers=broker.bootstrap)
    try:
        ends = consumer.end_offsets([TopicPartition(topic, p) for p in range(partitions)])
    finally:
        consumer.close()
    return {(tp.topic, tp.partition): offset for tp, offset in ends.items() if offset > 0}


def read_topic(broker: KafkaBroker, topic: str, count: int, timeout_s: float = 30.0) -> list:
    """Every record of ``topic`` from the beginning, waiting for at least ``count``, then a bit longer."""
    consumer = KafkaConsumer(
        topic, bootstrap_servers=broker.bootstrap, auto_offset_reset="earliest", enable_auto_commit=False, group_id=None
    )
    records: list = []
    try:
        deadline = time.monotonic() + timeout_s
        while len(records) < count and time.monotonic() < deadline:
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        for batch in consumer.poll(timeout_ms=1000).values():
            records.extend(batch)
    finally:
        consumer.close()
    return records


def wait_until(condition: Callable[[], bool], timeout_s: float, what: str, every_s: float = 0.05) -> None:
    deadline = time.monotonic() + timeout_s
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout_s}s waiting for {what}")
        time.sleep(every_s)
