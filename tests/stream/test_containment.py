"""Messages that get past the decoder and still fail, dead letters the broker refuses, and /healthz
while the broker is away: the scorer keeps going, loses nothing, and says what happened."""

from __future__ import annotations

import json
import threading
import urllib.error
import urllib.request
from datetime import datetime

import numpy as np
import pytest

from anomaly.store.engine import get_engine
from anomaly.stream import consumer
from anomaly.stream.consumer import ServeSettings, StreamScorer
from anomaly.stream.deadletter import REASON_HEADER
from anomaly.stream.decode import DecodeContext, DecoderInfo, Message, Reading, build_decoders
from anomaly.stream.metrics import serve_http
from tests.kafka_broker import KafkaBroker
from tests.stream.support import (
    committed,
    end_offsets,
    producer,
    read_topic,
    readings,
    register,
    rejections,
    send,
    stored,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]


def lenient(message: Message, _context: DecodeContext) -> Reading:
    """A careless plugin decoder: takes any JSON it can parse, so bad content reaches scoring and the store."""
    data = json.loads(message.value)
    if data.get("boom"):
        raise RuntimeError("decoder bug")
    when = datetime.fromisoformat(data["ts"]) if "ts" in data else None
    return Reading(source=data["source"], values=np.array([data["values"]], np.float32), event_time=when)


# Each of these is decoded by `lenient` and then refused by the database (or raises in the decoder).
POISON = [
    (b"pump-0", b'{"source": "\\ud800", "values": [1.0, 2.0]}', []),  # lone surrogate: not encodable
    (b"pump-1", b'{"source": "pump-1", "ts": "0001-01-01T00:00:00+14:00", "values": [1.0, 2.0]}', []),
    (b"pump-2", b'{"source": "pump-2", "ts": "9999-12-31T23:59:59-14:00", "values": [1.0, 2.0]}', []),
    (b"pump-3", b'{"source": "pump-3", "boom": true, "values": [1.0, 2.0]}', []),
]


def test_messages_that_fail_after_decoding_are_dead_lettered_and_the_rest_stored(
    kafka_broker: KafkaBroker, db_url: str, tiny_models: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    register(db_url, "pumps", tiny_models["series"])
    registry = build_decoders()
    registry.known["lenient"] = DecoderInfo(lenient, "series", "tests")
    monkeypatch.setattr(consumer, "decoders", lambda: registry)
    topic = kafka_broker.create_topic(prefix="contain")
    good = readings(60)
    client = producer(kafka_broker)
    try:
        sent = send(client, topic, good[:30] + POISON + good[30:])
    finally:
        client.close()
    poison_at = set(sent[30 : 30 + len(POISON)])
    scorer = StreamScorer(
        ServeSettings(
            topics=[topic],
            models={topic: "pumps"},
            decoders={topic: "lenient"},
            bootstrap_servers=kafka_broker.bootstrap,
            group=f"{topic}-scorer",
            alerts_topic=f"{topic}-alerts",
            max_batch=50,
            max_messages=len(sent),
            idle_timeout_s=60,
        ),
        get_engine(db_url),
    )
    summary = scorer.run()

    assert summary.consumed == len(sent) and summary.rejected == len(POISON)
    positions = [(p, o) for p, o, _ in stored(db_url, topic)]
    assert len(positions) == len(set(positions)) and set(positions) == set(sent) - poison_at
    rejected = rejections(db_url, topic)
    assert set(rejected) == poison_at
    reasons = sorted(rejected.values())
    assert sum("the store refused the scored event: UnicodeEncodeError" in r for r in reasons) == 1, reasons
    assert sum("the store refused the scored event: OverflowError" in r for r in reasons) == 2, reasons
    assert sum(r == "decoding failed: RuntimeError: decoder bug" for r in reasons) == 1, reasons
    dead = read_topic(kafka_broker, f"{topic}.dlq", len(POISON))
    assert {dict(r.headers)[REASON_HEADER].decode() for r in dead} == set(reasons)
    alerts = read_topic(kafka_broker, f"{topic}-alerts", summary.anomalies, timeout_s=5)
    assert len(alerts) == summary.anomalies
    assert not {(a["partition"], a["offset"]) for a in map(lambda r: json.loads(r.value), alerts)} & poison_at
    ends = end_offsets(kafka_broker, topic)
    assert {tp: committed(kafka_broker, f"{topic}-scorer").get(tp) for tp in ends} == ends


def test_a_dead_letter_the_broker_refuses_is_noted_on_its_rejection_and_the_partition_moves_on(
    kafka_broker: KafkaBroker, db_url: str, tiny_models: dict
) -> None:
    register(db_url, "pumps", tiny_models["series"])
    topic = kafka_broker.create_topic(prefix="refused", partitions=1)
    kafka_broker.create_topic(name=f"{topic}.dlq", partitions=1, configs={"max.message.bytes": "2000"})
    good = readings(20)
    oversized = (b"pump-0", b"{not json" + b" " * 20_000, [])
    client = producer(kafka_broker)
    try:
        sent = send(client, topic, good[:10] + [oversized] + good[10:])
    finally:
        client.close()
    scorer = StreamScorer(
        ServeSettings(
            topics=[topic],
            models={topic: "pumps"},
            bootstrap_servers=kafka_broker.bootstrap,
            group=f"{topic}-scorer",
            alerts_topic=None,
            max_messages=len(sent),
            idle_timeout_s=60,
        ),
        get_engine(db_url),
    )
    summary = scorer.run()

    assert summary.consumed == len(sent) and len(stored(db_url, topic)) == len(good)
    (reason,) = rejections(db_url, topic).values()
    assert (
        reason.startswith("invalid JSON") and f"dead letter to {topic}.dlq refused: MessageSizeTooLargeError" in reason
    )
    refused = scorer.metrics.registry.get_sample_value(
        "anomaly_stream_produce_refused_total", {"topic": f"{topic}.dlq"}
    )
    assert refused == 1
    assert committed(kafka_broker, f"{topic}-scorer") == end_offsets(kafka_broker, topic, partitions=1)


def _healthz(port: int) -> tuple[int, dict]:
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=5) as reply:
            return reply.status, json.loads(reply.read())
    except urllib.error.HTTPError as error:
        return error.code, json.loads(error.read())


@pytest.mark.postgres
def test_healthz_turns_503_while_the_broker_is_down_with_messages_waiting_and_200_after(
    kafka_broker: KafkaBroker, pg_db: str, tiny_models: dict
) -> None:
    register(pg_db, "pumps", tiny_models["series"])
    topic = kafka_broker.create_topic(prefix="brokerdown")
    client = producer(kafka_broker)
    try:
        sent = send(client, topic, readings(3000))
    finally:
        client.close()
    scorer = StreamScorer(
        ServeSettings(
            topics=[topic],
            models={topic: "pumps"},
            bootstrap_servers=kafka_broker.bootstrap,
            group=f"{topic}-scorer",
            alerts_topic=None,
            max_batch=2,
            poll_timeout_ms=100,
            health_timeout_s=3,
            retry_max_s=1.0,
        ),
        get_engine(pg_db),
    )
    server = serve_http(scorer.metrics, scorer.health, 0, host="127.0.0.1")
    worker = threading.Thread(target=scorer.run)
    worker.start()
    try:
        wait_until(lambda: len(stored(pg_db, topic)) >= 100, 90, "scoring to be under way")
        assert _healthz(server.server_port)[0] == 200, _healthz(server.server_port)[1]
        kafka_broker.stop()
        try:
            wait_until(lambda: _healthz(server.server_port)[0] == 503, 20, "/healthz to report the outage", every_s=0.5)
            status, body = _healthz(server.server_port)
            assert body["ok"] is False, body
            assert any(word in reason for reason in body["reasons"] for word in ("heartbeat", "fetched", "broker")), (
                body
            )
            assert len(stored(pg_db, topic)) < len(sent), "the outage came too late to leave messages waiting"
        finally:
            kafka_broker.start()
        wait_until(lambda: len(stored(pg_db, topic)) == len(sent), 120, "every row after the broker came back")
        wait_until(lambda: _healthz(server.server_port)[0] == 200, 30, "/healthz to recover", every_s=0.5)
    finally:
        scorer.stop()
        worker.join(60)
        server.shutdown()
    positions = [(p, o) for p, o, _ in stored(pg_db, topic)]
    assert len(positions) == len(set(positions)) and set(positions) == set(sent)


def test_a_model_failing_on_some_items_rejects_those_alone(tiny_models: dict, monkeypatch: pytest.MonkeyPatch) -> None:
    """Halving finds the windows the detector fails on; the others keep their scores, and the
    sources' windows advance once per reading however often the batch is split."""
    from anomaly.store.registry import ModelRecord
    from anomaly.stream.models import ServingModel

    record = ModelRecord(
        id=1,
        name="pumps",
        detector="ganomaly",
        version=1,
        artifact=str(tiny_models["series"]),
        status="active",
        threshold=1.0,
        created_at=datetime.now(),
    )
    model = ServingModel.load(record)
    reference = ServingModel.load(record)
    values = np.arange(40, dtype=np.float32).reshape(20, 1, 2)
    items = [Reading(f"pump-{i % 2}", v, None) for i, v in enumerate(values)]
    poisoned = {5, 13}
    score_windows = model.detector.score_windows

    def failing(windows: np.ndarray):
        if any(float(w[-1, 0]) in {float(values[i, 0, 0]) for i in poisoned} for w in windows):
            raise ValueError("cannot score this window")
        return score_windows(windows)

    monkeypatch.setattr(model.detector, "score_windows", failing)
    results = model.score(items)
    expected = reference.score(items)
    assert len(results) == len(items)
    for i, (got, want) in enumerate(zip(results, expected)):
        if i in poisoned:
            assert got.reason == "the model cannot score this window: ValueError: cannot score this window"
        else:
            assert got.score == pytest.approx(want.score)
    assert {s: h.tolist() for s, h in model.windows._history.items()} == {
        s: h.tolist() for s, h in reference.windows._history.items()
    }
