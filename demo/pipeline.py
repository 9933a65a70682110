"""The main job end to end on data a library bundles: train, register, stream through Kafka, score, store.

scikit-learn's handwritten digits in the one-class protocol (one digit normal, every other digit
anomalous): GANomaly learns 70 % of the normal digit's images; the rest of the set (the unseen
normal images and every other digit) is produced to a fresh topic as PNG messages, with a few
malformed messages among them, and ``StreamScorer`` — the same loop ``anomaly serve`` runs —
consumes it into the store. The summary reads the stored events back and scores them against the
known labels, so it checks what really reached the database.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from kafka import KafkaProducer
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from anomaly.artifact import Manifest
from anomaly.data.bundled import digits
from anomaly.data.images import ImageSet
from anomaly.detector import FitSettings
from anomaly.inputs import ImageSpec
from anomaly.metrics import detection_metrics
from anomaly.plugins import registry
from anomaly.store.registry import ModelRecord, active_model, promote, register_trained_model
from anomaly.store.schema import Event, RejectedMessage
from anomaly.stream.consumer import RunSummary, ServeSettings, StreamScorer
from anomaly.stream.produce import image_messages, send

MALFORMED = [
    (b"camera", b"\x89PNG\r\n\x1a\n truncated", [("content-type", b"image/png")]),
    (b"camera", b'{"image": "not base64!"}', [("content-type", b"application/json")]),
    (b"camera", b"\xff\xd8\xff corrupt jpeg", []),
]


@dataclass
class DemoResult:
    """What the demo prints, every figure read back from the store rather than from the scorer's memory."""

    model: ModelRecord
    trained: bool
    topic: str
    produced: int
    produce_seconds: float
    run: RunSummary
    events: int
    rejected: int
    metrics: dict[str, float]
    flagged: int


def split(normal_digit: int, seed: int) -> tuple[ImageSet, ImageSet]:
    """The same train/test split on every run, so a reused model never sees its training images scored."""
    data = digits(normal_digit)
    order = np.random.default_rng(seed).permutation(np.flatnonzero(data.labels == 0))
    train_ids = np.sort(order[: int(len(order) * 0.7)])
    test_ids = np.setdiff1d(np.arange(len(data)), train_ids)
    return data.subset(train_ids), data.subset(test_ids)


def trained_model(
    name: str, out_dir: Path, normal_digit: int, epochs: int, seed: int, engine: Engine, say=print
) -> tuple[ModelRecord, bool]:
    """The active version of ``name`` when it is this folder's model, else train, register and activate it."""
    artifact = str(out_dir.resolve())
    current = active_model(name, engine=engine)
    if current is not None and current.artifact == artifact and (out_dir / "manifest.json").is_file():
        say(f"reusing {name} v{current.version} ({artifact})")
        return current, False
    train, _ = split(normal_digit, seed)
    say(f"training ganomaly on {len(train)} images of digit {normal_digit} (scikit-learn digits), {epochs} epochs")
    detector = registry().get("ganomaly")(
        ImageSpec(image_size=16), settings=FitSettings(epochs=epochs, batch_size=32, seed=seed)
    )
    detector.fit(train)
    detector.save(out_dir)
    record = register_trained_model(
        name,
        out_dir,
        Manifest.read(out_dir),
        data_summary={"data": "sklearn digits", "normal_digit": normal_digit},
        engine=engine,
    )
    if record.status != "active":
        record = promote(name, record.version, engine=engine)
    say(f"registered {name} v{record.version} as the active version")
    return record, True


def run_demo(
    bootstrap: str,
    engine: Engine,
    name: str = "digits",
    out_dir: Path = Path("runs/stream-demo"),
    normal_digit: int = 0,
    epochs: int = 100,
    seed: int = 0,
    say=print,
) -> DemoResult:
    """Train or reuse, produce the unseen digits (and three malformed messages), score them, read back."""
    model, trained = trained_model(name, out_dir, normal_digit, epochs, seed, engine, say)
    _, test = split(normal_digit, seed)
    topic = f"digits-demo-{uuid.uuid4().hex[:8]}"
    producer = KafkaProducer(bootstrap_servers=bootstrap, enable_idempotence=True, acks="all", linger_ms=5)
    try:
        clock = time.perf_counter()
        sent = send(producer, topic, image_messages(test))
        produce_seconds = time.perf_counter() - clock
        send(producer, topic, MALFORMED)
    finally:
        producer.close()
    say(f"produced {len(sent)} digit images and {len(MALFORMED)} malformed messages to {topic}")
    total = len(sent) + len(MALFORMED)
    scorer = StreamScorer(
        ServeSettings(
            topics=[topic],
            models={topic: name},
            bootstrap_servers=bootstrap,
            group=f"{topic}-scorer",
            max_messages=total,
            idle_timeout_s=120,
        ),
        engine,
    )
    run = scorer.run()
    labels = {position: int(label) for position, label in zip(sent, test.labels)}
    with Session(engine) as session:
        rows = session.execute(
            select(Event.partition, Event.offset, Event.score, Event.is_anomaly).where(Event.topic == topic)
        ).all()
        rejected = len(session.scalars(select(RejectedMessage.id).where(RejectedMessage.topic == topic)).all())
    scored = [(labels[(r.partition, r.offset)], r.score) for r in rows if (r.partition, r.offset) in labels]
    truth, scores = np.array([s[0] for s in scored]), np.array([s[1] for s in scored])
    return DemoResult(
        model=model,
        trained=trained,
        topic=topic,
        produced=total,
        produce_seconds=produce_seconds,
        run=run,
        events=len(rows),
        rejected=rejected,
        metrics=detection_metrics(truth, scores, model.threshold),
        flagged=int(sum(r.is_anomaly for r in rows)),
    )
