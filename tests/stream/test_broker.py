"""Smoke tests of the real local broker: what the streaming scorer relies on, end to end."""

from __future__ import annotations

import time
from collections import defaultdict
from collections.abc import Iterator

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.consumer.fetcher import ConsumerRecord

from tests.kafka_broker import KafkaBroker

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(180)]

PARTITIONS = 3
KEYS = 8  # several keys per partition, so each partition interleaves more than one source


@pytest.fixture
def producer(kafka_broker: KafkaBroker) -> Iterator[KafkaProducer]:
    client = KafkaProducer(bootstrap_servers=kafka_broker.bootstrap, enable_idempotence=True, acks="all", linger_ms=5)
    yield client
    client.close()


def group_consumer(broker: KafkaBroker, topic: str) -> KafkaConsumer:
    return KafkaConsumer(
        topic,
        bootstrap_servers=broker.bootstrap,
        group_id=f"{topic}-group",
        auto_offset_reset="earliest",
        enable_auto_commit=False,
    )


def produce(producer: KafkaProducer, topic: str, numbers: range) -> None:
    """Send each number, keyed by source, and wait until the broker has acknowledged all of them."""
    futures = [producer.send(topic, key=f"sensor-{n % KEYS}".encode(), value=str(n).encode()) for n in numbers]
    producer.flush()
    for future in futures:
        future.get(timeout=0)  # raises the send's error, if it failed


def consume(consumer: KafkaConsumer, count: int, timeout_s: float = 60.0) -> list[ConsumerRecord]:
    """Poll until ``count`` records came, committing after each batch, then make sure no more come."""
    records: list[ConsumerRecord] = []
    deadline = time.monotonic() + timeout_s
    while len(records) < count and time.monotonic() < deadline:
        batch = consumer.poll(timeout_ms=500)
        if batch:
            records.extend(record for part in batch.values() for record in part)
            consumer.commit()
    extra = consumer.poll(timeout_ms=1000)
    records.extend(record for part in extra.values() for record in part)
    return records


def assert_exactly_once_in_order(records: list[ConsumerRecord], numbers: range) -> None:
    assert sorted(int(r.value) for r in records) == list(numbers), "lost or duplicated messages"
    by_partition: dict[int, list[ConsumerRecord]] = defaultdict(list)
    for record in records:
        by_partition[record.partition].append(record)
    assert len(by_partition) > 1, "the keys should spread over several partitions"
    for partition, part in by_partition.items():
        offsets = [r.offset for r in part]
        assert offsets == list(range(offsets[0], offsets[0] + len(part))), f"gap in partition {partition}"
        values = [int(r.value) for r in part]
        assert values == sorted(values), f"partition {partition} out of order"


def assert_all_committed(consumer: KafkaConsumer, topic: str) -> None:
    partitions = [TopicPartition(topic, p) for p in range(PARTITIONS)]
    ends = consumer.end_offsets(partitions)
    assert {tp: consumer.committed(tp) or 0 for tp in partitions} == ends


def test_idempotent_producer_to_group_consumer_exactly_once_in_order(
    kafka_broker: KafkaBroker, producer: KafkaProducer
) -> None:
    topic = kafka_broker.create_topic(partitions=PARTITIONS)
    numbers = range(1000)
    produce(producer, topic, numbers)

    consumer = group_consumer(kafka_broker, topic)
    try:
        records = consume(consumer, len(numbers))
        assert_exactly_once_in_order(records, numbers)
        assert_all_committed(consumer, topic)
    finally:
        consumer.close()


def test_clients_carry_on_after_the_broker_restarts(kafka_broker: KafkaBroker, producer: KafkaProducer) -> None:
    topic = kafka_broker.create_topic(partitions=PARTITIONS)
    consumer = group_consumer(kafka_broker, topic)
    try:
        before = range(100)
        produce(producer, topic, before)
        assert_exactly_once_in_order(consume(consumer, len(before)), before)

        kafka_broker.restart()

        # The same producer and consumer reconnect; committed offsets survived the restart,
        # so the consumer gets only the new messages.
        after = range(100, 200)
        produce(producer, topic, after)
        assert_exactly_once_in_order(consume(consumer, len(after)), after)
        assert_all_committed(consumer, topic)
    finally:
        consumer.close()
