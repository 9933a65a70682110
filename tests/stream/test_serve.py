"""The scorer in-process against the real broker and databases: one row per message, dead letters, alerts, hot swap."""

from __future__ import annotations

import json
import logging
import threading
import urllib.request
from collections import Counter

import pytest

from anomaly.store.engine import get_engine
from anomaly.store.registry import promote
from anomaly.stream.consumer import ServeSettings, StreamScorer
from anomaly.stream.deadletter import REASON_HEADER
from anomaly.stream.metrics import serve_http
from tests.kafka_broker import KafkaBroker
from tests.stream.support import (
    BAD_IMAGES,
    BAD_READINGS,
    committed,
    end_offsets,
    images,
    producer,
    read_topic,
    readings,
    register,
    rejections,
    send,
    stored,
    wait_until,
    window_message,
)

pytestmark = [pytest.mark.kafka, pytest.mark.timeout(240)]

SOURCES = frozenset({"cam-1", "pump-0", "pump-1", "pump-2", "pump-3"})


def test_mixed_stream_gives_one_event_per_valid_message_and_dead_letters_the_rest(
    kafka_broker: KafkaBroker, db_url: str, tiny_models: dict, caplog: pytest.LogCaptureFixture
) -> None:
    register(db_url, "tiles", tiny_models["image"])
    register(db_url, "pumps", tiny_models["series"])
    pictures_topic = kafka_broker.create_topic(prefix="pictures")
    sensors_topic = kafka_broker.create_topic(prefix="sensors")
    alerts_topic = f"{pictures_topic}-alerts"
    good_images, good_readings = images(24), readings(120) + [window_message()]
    client = producer(kafka_broker)
    try:
        # Bad messages sit between good ones, so they must not hold up their partitions.
        sent_images = send(client, pictures_topic, good_images[:12] + BAD_IMAGES + good_images[12:])
        sent_readings = send(client, sensors_topic, good_readings[:60] + BAD_READINGS + good_readings[60:])
    finally:
        client.close()
    total = len(sent_images) + len(sent_readings)
    group = f"{pictures_topic}-scorer"
    scorer = StreamScorer(
        ServeSettings(
            topics=[pictures_topic, sensors_topic],
            models={pictures_topic: "tiles", sensors_topic: "pumps"},
            bootstrap_servers=kafka_broker.bootstrap,
            group=group,
            alerts_topic=alerts_topic,
            sources=SOURCES,
            max_batch=40,
            max_messages=total,
            idle_timeout_s=60,
        ),
        get_engine(db_url),
    )
    server = serve_http(scorer.metrics, scorer.health, 0, host="127.0.0.1")
    caplog.set_level(logging.INFO, logger="anomaly.stream.consumer")
    try:
        summary = scorer.run()
        metrics = urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/metrics").read().decode()
        health = json.loads(urllib.request.urlopen(f"http://127.0.0.1:{server.server_port}/healthz").read())
    finally:
        server.shutdown()

    assert summary.consumed == total
    # Topic metadata was fetched before the join, so the first assignment already holds every partition
    # (a metadata-triggered rejoin is where kafka-python can lose an assignment).
    assignments = [r.fields["partitions"] for r in caplog.records if r.getMessage() == "partitions assigned"]
    assert len(assignments[0]) == 6, assignments
    for topic, sent, bad in ((pictures_topic, sent_images, BAD_IMAGES), (sensors_topic, sent_readings, BAD_READINGS)):
        events = stored(db_url, topic)
        rejected = rejections(db_url, topic)
        positions = [(p, o) for p, o, _ in events]
        assert len(positions) == len(set(positions)) == len(sent) - len(bad), "an event missing or doubled"
        assert len(rejected) == len(bad)
        assert set(positions) | set(rejected) == set(sent) and not set(positions) & set(rejected)
        dead = read_topic(kafka_broker, f"{topic}.dlq", len(bad))
        assert len(dead) == len(bad)
        reasons = {dict(r.headers)[REASON_HEADER].decode() for r in dead}
        assert reasons == set(rejected.values())
        ends, offsets = end_offsets(kafka_broker, topic), committed(kafka_broker, group)
        assert {tp: offsets.get(tp) for tp in ends} == ends, "committed offsets short of the partitions' ends"
    assert any("unknown source 'cam-9'" in r for r in rejections(db_url, pictures_topic).values())
    assert any("wrong channel count" in r for r in rejections(db_url, sensors_topic).values())

    alerts = [json.loads(r.value) for r in read_topic(kafka_broker, alerts_topic, summary.anomalies)]
    assert len(alerts) == summary.anomalies
    assert all(
        {"source", "topic", "partition", "offset", "score", "components", "threshold", "model_version"} <= set(a)
        for a in alerts
    )
    assert f'anomaly_stream_messages_consumed_total{{topic="{pictures_topic}"}} {float(len(sent_images))}' in metrics
    assert "anomaly_stream_consumer_lag" in metrics and "anomaly_stream_scoring_seconds_bucket" in metrics
    assert health["ok"] is True and health["models"] == {"tiles": 1, "pumps": 1}


@pytest.mark.postgres
def test_hot_swap_between_batches_without_restart_or_loss(
    kafka_broker: KafkaBroker, pg_db: str, tiny_models: dict
) -> None:
    first = register(pg_db, "tiles", tiny_models["image"])
    second = register(pg_db, "tiles", tiny_models["image2"])
    assert (first.status, second.status) == ("active", "candidate")
    topic = kafka_broker.create_topic(prefix="swap")
    scorer = StreamScorer(
        ServeSettings(
            topics=[topic],
            models={topic: "tiles"},
            bootstrap_servers=kafka_broker.bootstrap,
            group=f"{topic}-scorer",
            alerts_topic=None,
            model_check_s=0.3,
            poll_timeout_ms=100,
        ),
        get_engine(pg_db),
    )
    worker = threading.Thread(target=scorer.run)
    worker.start()
    client = producer(kafka_broker)
    try:
        before = send(client, topic, images(15, seed=1))
        wait_until(lambda: len(stored(pg_db, topic)) == len(before), 60, "the first images stored")
        promote("tiles", second.version, engine=get_engine(pg_db))
        wait_until(lambda: scorer.models["tiles"].version == second.version, 30, "the swap")
        after = send(client, topic, images(15, seed=2))
        wait_until(lambda: len(stored(pg_db, topic)) == len(before) + len(after), 60, "the second images stored")
    except AssertionError as exc:
        raise AssertionError(f"{exc}; the scorer's health: {scorer.health()[1]}") from None
    finally:
        client.close()
        scorer.stop()
        worker.join(30)
    assert not worker.is_alive()
    by_position = {(p, o): model for p, o, model in stored(pg_db, topic)}
    assert len(by_position) == len(before) + len(after)
    assert Counter(by_position[pos] for pos in before) == Counter({first.id: len(before)})
    assert Counter(by_position[pos] for pos in after) == Counter({second.id: len(after)})
    assert scorer.metrics.registry.get_sample_value("anomaly_stream_model_swaps_total", {"model": "tiles"}) == 1


@pytest.mark.postgres
def test_a_second_scorer_joining_the_group_takes_partitions_without_loss_or_duplicates(
    kafka_broker: KafkaBroker, pg_db: str, tiny_models: dict
) -> None:
    register(pg_db, "pumps", tiny_models["series"])
    topic = kafka_broker.create_topic(prefix="rebalance")

    def scorer() -> StreamScorer:
        return StreamScorer(
            ServeSettings(
                topics=[topic],
                models={topic: "pumps"},
                bootstrap_servers=kafka_broker.bootstrap,
                group=f"{topic}-scorers",
                alerts_topic=None,
                max_batch=20,
                poll_timeout_ms=100,
            ),
            get_engine(pg_db),
        )

    first, second = scorer(), scorer()
    workers = [threading.Thread(target=first.run)]
    workers[0].start()
    client = producer(kafka_broker)
    messages = readings(600)
    try:
        sent = send(client, topic, messages[:300])
        wait_until(lambda: len(stored(pg_db, topic)) >= 100, 60, "the first scorer to start")
        workers.append(threading.Thread(target=second.run))
        workers[1].start()
        wait_until(
            lambda: second.consumer is not None and len(second.consumer.assignment()) > 0,
            60,
            "the rebalance to give the second scorer partitions",
        )
        sent += send(client, topic, messages[300:])
        wait_until(lambda: len(stored(pg_db, topic)) == len(messages), 60, "every row")
    finally:
        client.close()
        first.stop()
        second.stop()
        for worker in workers:
            worker.join(30)
    positions = [(p, o) for p, o, _ in stored(pg_db, topic)]
    assert len(positions) == len(set(positions)) and set(positions) == set(sent)
    assert first.summary.scored > 0 and second.summary.scored > 0
    ends, offsets = end_offsets(kafka_broker, topic), committed(kafka_broker, f"{topic}-scorers")
    assert {tp: offsets.get(tp) for tp in ends} == ends
