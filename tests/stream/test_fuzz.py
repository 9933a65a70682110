"""Thousands of poison messages of every kind between valid ones, through the real broker into PostgreSQL.

The scorer must not stop; each bad message must end in its topic's dead-letter topic and in
``rejected_messages`` with a reason, and each valid one must be scored exactly once.
"""

from __future__ import annotations

import numpy as np
import pytest
from kafka import KafkaProducer

from anomaly.store.engine import get_engine
from anomaly.stream.consumer import ServeSettings, StreamScorer
from anomaly.stream.deadletter import DEAD_LETTER_MAX_BYTES, REASON_HEADER, TRUNCATED_HEADER
from tests.kafka_broker import KafkaBroker
from tests.stream.poison import bad_images, bad_readings
from tests.stream.support import (
    committed,
    end_offsets,
    images,
    read_topic,
    readings,
    register,
    rejections,
    send,
    stored,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(300)]

# Topics take messages up to the scorer's 8 MiB limit (the broker's default is 1 MiB).
LARGE_TOPIC = {"max.message.bytes": str(10 * 1024 * 1024)}


def interleave(good: list, bad: list, seed: int) -> tuple[list, np.ndarray]:
    """Good and bad messages shuffled together, and which of them are bad."""
    is_bad = np.array([False] * len(good) + [True] * len(bad))
    order = np.random.default_rng(seed).permutation(len(is_bad))
    messages = good + bad
    return [messages[i] for i in order], is_bad[order]


def test_fuzzed_poison_messages_are_all_dead_lettered_and_every_valid_message_scored_once(
    kafka_broker: KafkaBroker, pg_db: str, tiny_models: dict
) -> None:
    register(pg_db, "tiles", tiny_models["image"])
    register(pg_db, "pumps", tiny_models["series"])
    streams = {
        kafka_broker.create_topic(prefix="fuzz-sensors", configs=LARGE_TOPIC): interleave(
            readings(400), bad_readings(1200, seed=1), seed=1
        ),
        kafka_broker.create_topic(prefix="fuzz-pictures", configs=LARGE_TOPIC): interleave(
            images(60), bad_images(1000, seed=2), seed=2
        ),
    }
    assert sum(int(is_bad.sum()) for _, is_bad in streams.values()) >= 2000
    client = KafkaProducer(
        bootstrap_servers=kafka_broker.bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        max_request_size=10 * 1024 * 1024,
    )
    try:
        sent = {topic: send(client, topic, messages) for topic, (messages, _) in streams.items()}
    finally:
        client.close()
    topics = list(streams)
    total = sum(len(positions) for positions in sent.values())
    group = f"{topics[0]}-scorer"
    scorer = StreamScorer(
        ServeSettings(
            topics=topics,
            models=dict(zip(topics, ["pumps", "tiles"])),
            bootstrap_servers=kafka_broker.bootstrap,
            group=group,
            alerts_topic=f"{topics[0]}-alerts",
            max_batch=200,
            max_messages=total,
            idle_timeout_s=60,
        ),
        get_engine(pg_db),
    )
    summary = scorer.run()

    assert summary.consumed == total
    for topic, (messages, is_bad) in streams.items():
        positions = sent[topic]
        bad = {pos for pos, flag in zip(positions, is_bad) if flag}
        good = set(positions) - bad
        events = [(p, o) for p, o, _ in stored(pg_db, topic)]
        assert len(events) == len(set(events)) and set(events) == good, "a valid message lost, doubled or rejected"
        rejected = rejections(pg_db, topic)
        assert set(rejected) == bad, f"{len(bad - set(rejected))} bad message(s) not rejected"
        assert all(reason.strip() for reason in rejected.values())
        dead = read_topic(kafka_broker, f"{topic}.dlq", len(bad), timeout_s=60)
        letters = {
            (int(dict(r.headers)["anomaly-source-partition"]), int(dict(r.headers)["anomaly-source-offset"])): r
            for r in dead
        }
        assert set(letters) == bad
        assert all(dict(r.headers)[REASON_HEADER] for r in letters.values())
        for (partition, offset), record in letters.items():
            original = messages[positions.index((partition, offset))][1]
            if len(original) > DEAD_LETTER_MAX_BYTES:
                assert TRUNCATED_HEADER in dict(record.headers) and original.startswith(record.value)
            else:
                assert record.value == original
        ends = end_offsets(kafka_broker, topic)
        assert {tp: committed(kafka_broker, group).get(tp) for tp in ends} == ends
    assert any(len(m[1]) > DEAD_LETTER_MAX_BYTES for m in streams[topics[0]][0]), "no oversized reject was tried"
