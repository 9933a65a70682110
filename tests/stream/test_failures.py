"""Failures while consuming: SIGKILL of `anomaly serve`, PostgreSQL stopped, the broker restarted.

Whatever happens, the end state must be exactly one stored row per message, and a committed offset
must never run ahead of what is stored.
"""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time

import pytest

from anomaly.store.engine import get_engine
from anomaly.stream.consumer import ServeSettings, StreamScorer
from tests.kafka_broker import KafkaBroker
from tests.stream.support import (
    committed,
    end_offsets,
    postgres,
    producer,
    readings,
    register,
    send,
    stored,
    wait_until,
)

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.timeout(300)]


def serve(broker: KafkaBroker, url: str, topic: str, group: str) -> subprocess.Popen:
    """`anomaly serve` as an operator runs it, in small batches so a kill lands mid-stream.

    Static membership (``--instance-id``) lets the restarted scorer take its partitions back at once;
    without it each restart waits for the killed member's 45-second session to expire.
    """
    command = [
        sys.executable,
        "-m",
        "anomaly",
        "serve",
        "--topic",
        topic,
        "--model",
        "pumps",
        "--group",
        group,
        "--instance-id",
        "scorer-1",
        "--bootstrap-servers",
        broker.bootstrap,
        "--metrics-port",
        "0",
        "--max-batch",
        "10",
        "--no-alerts",
        "--model-check-interval",
        "60",
    ]
    return subprocess.Popen(
        command,
        env={**os.environ, "ANOMALY_DATABASE_URL": url},
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )


def assert_nothing_committed_unstored(offsets: dict[tuple[str, int], int], url: str, topic: str) -> None:
    """Every offset below a partition's committed offset has its row."""
    have = {(p, o) for p, o, _ in stored(url, topic)}
    for (committed_topic, partition), offset in offsets.items():
        if committed_topic == topic:
            missing = [o for o in range(offset) if (partition, o) not in have]
            assert not missing, f"partition {partition}: committed {offset} but offsets {missing[:5]}... not stored"


def assert_one_row_per_message(url: str, topic: str, sent: list[tuple[int, int]]) -> None:
    positions = [(p, o) for p, o, _ in stored(url, topic)]
    assert len(positions) == len(set(positions)), "a message stored twice"
    assert set(positions) == set(sent), f"{len(set(sent) - set(positions))} message(s) lost"


def test_sigkill_mid_stream_then_restart_gives_exactly_one_row_per_message(
    kafka_broker: KafkaBroker, pg_db: str, tiny_models: dict
) -> None:
    register(pg_db, "pumps", tiny_models["series"])
    topic = kafka_broker.create_topic(prefix="kill")
    group = f"{topic}-scorer"
    client = producer(kafka_broker)
    try:
        sent = send(client, topic, readings(900))
    finally:
        client.close()
    # Five kill points: as soon as rows appear, then every 150 rows; each restart resumes from the last commit.
    for kill_at in (1, 150, 300, 450, 600):
        process = serve(kafka_broker, pg_db, topic, group)
        try:
            wait_until(
                lambda: len(stored(pg_db, topic)) >= kill_at or process.poll() is not None,
                90,
                f"{kill_at} rows stored",
                every_s=0.01,
            )
            assert process.poll() is None, process.stderr.read()
        finally:
            process.send_signal(signal.SIGKILL)
            process.wait(10)
        assert_nothing_committed_unstored(committed(kafka_broker, group), pg_db, topic)

    # The last run is stopped the graceful way: SIGTERM finishes the batch, commits, exits 0.
    process = serve(kafka_broker, pg_db, topic, group)
    try:
        wait_until(lambda: len(stored(pg_db, topic)) == len(sent) or process.poll() is not None, 120, "all rows")
        assert process.poll() is None, process.stderr.read()
        time.sleep(1)
    finally:
        process.send_signal(signal.SIGTERM)
        code = process.wait(30)
    assert code == 0, process.stderr.read()
    assert_one_row_per_message(pg_db, topic, sent)
    ends, offsets = end_offsets(kafka_broker, topic), committed(kafka_broker, group)
    assert {tp: offsets.get(tp) for tp in ends} == ends


def test_database_and_broker_outages_lose_nothing_and_commit_nothing_unstored(
    kafka_broker: KafkaBroker, pg_db: str, tiny_models: dict
) -> None:
    register(pg_db, "pumps", tiny_models["series"])
    topic = kafka_broker.create_topic(prefix="outage")
    group = f"{topic}-scorer"
    scorer = StreamScorer(
        ServeSettings(
            topics=[topic],
            models={topic: "pumps"},
            bootstrap_servers=kafka_broker.bootstrap,
            group=group,
            alerts_topic=None,
            max_batch=20,
            poll_timeout_ms=100,
            retry_max_s=1.0,
        ),
        get_engine(pg_db),
    )
    worker = threading.Thread(target=scorer.run)
    worker.start()
    messages = readings(600)
    client = producer(kafka_broker)
    sent: list[tuple[int, int]] = []
    try:
        sent += send(client, topic, messages[:150])
        wait_until(lambda: len(stored(pg_db, topic)) == 150, 60, "rows before the database outage")

        assert postgres("stop").returncode == 0
        try:
            sent += send(client, topic, messages[150:300])
            wait_until(lambda: scorer.health()[1]["waiting_on"] == "database", 30, "the scorer to notice")
            time.sleep(3)
            during = committed(kafka_broker, group)
        finally:
            assert postgres("start").returncode == 0
        assert_nothing_committed_unstored(during, pg_db, topic)
        wait_until(lambda: len(stored(pg_db, topic)) == 300, 60, "rows after the database came back")

        kafka_broker.restart()
        sent += send(client, topic, messages[300:450])
        wait_until(lambda: len(stored(pg_db, topic)) == 450, 90, "rows after the broker restart")

        # The broker goes away with messages still to score; the producer resends once it is back.
        sending = threading.Thread(target=lambda: sent.extend(send(client, topic, messages[450:])))
        sending.start()
        kafka_broker.restart()
        sending.join(120)
        wait_until(lambda: len(stored(pg_db, topic)) == len(messages), 90, "every row")
    finally:
        client.close()
        scorer.stop()
        worker.join(60)
    assert not worker.is_alive()
    assert_one_row_per_message(pg_db, topic, sent)
    assert len(sent) == len(messages)
    ends = end_offsets(kafka_broker, topic)
    wait_until(lambda: {tp: committed(kafka_broker, group).get(tp) for tp in ends} == ends, 30, "final commits")
    assert scorer.metrics.registry.get_sample_value("anomaly_stream_retries_total", {"dependency": "database"}) >= 1
