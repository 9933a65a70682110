"""`anomaly serve --workers N`: N scorer processes in one group share the partitions, lose and double nothing."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from anomaly.errors import AnomalyError
from anomaly.stream.consumer import ServeSettings
from anomaly.stream.workers import combined, worker_ports, worker_settings
from tests.kafka_broker import KafkaBroker
from tests.stream.support import committed, end_offsets, producer, readings, register, send, stored, wait_until
from tests.test_cli_errors import assert_one_error_line, run_anomaly

PARTITIONS = 6


def test_each_worker_has_its_own_instance_id_and_port() -> None:
    settings = ServeSettings(topics=["t"], models={"t": "m"}, bootstrap_servers="b", instance_id="scorer")
    assert [worker_settings(settings, i).instance_id for i in range(3)] == ["scorer-0", "scorer-1", "scorer-2"]
    dynamic = ServeSettings(topics=["t"], models={"t": "m"}, bootstrap_servers="b")
    assert worker_settings(dynamic, 1).instance_id is None
    assert worker_ports(9400, 3) == [9400, 9401, 9402] and worker_ports(0, 2) == [0, 0]
    with pytest.raises(AnomalyError, match="needs ports up to 65536"):
        worker_ports(65535, 2)
    one = {"consumed": 3, "scored": 2, "rejected": 1, "anomalies": 0, "batches": 1, "seconds": 2.0}
    two = {"consumed": 5, "scored": 5, "rejected": 0, "anomalies": 1, "batches": 2, "seconds": 3.0}
    total = combined([one, two])
    assert {k: total[k] for k in one} == {
        "consumed": 8,
        "scored": 7,
        "rejected": 1,
        "anomalies": 1,
        "batches": 3,
        "seconds": 3.0,
    }
    assert total["workers"] == [one, two]


def test_a_worker_that_cannot_start_stops_them_all_with_one_line(tmp_path: Path) -> None:
    from anomaly.store import migrate

    url = f"sqlite:///{tmp_path / 'empty.db'}"
    migrate.upgrade(url=url)
    done = run_anomaly(
        "serve",
        "--topic",
        "t",
        "--model",
        "nothing",
        "--workers",
        "2",
        "--bootstrap-servers",
        "127.0.0.1:1",
        "--metrics-port",
        "0",
        cwd=tmp_path,
        env={"ANOMALY_DATABASE_URL": url},
    )
    assert_one_error_line(done, "scorer worker", "failed: no active version of model 'nothing'", json_logs=True)


@pytest.mark.kafka
@pytest.mark.postgres
@pytest.mark.timeout(180)
def test_two_workers_share_six_partitions_store_each_message_once_and_stop_cleanly(
    kafka_broker: KafkaBroker, pg_db: str, tiny_models: dict, tmp_path: Path
) -> None:
    register(pg_db, "pumps", tiny_models["series"])
    topic = kafka_broker.create_topic(partitions=PARTITIONS, prefix="workers")
    group = f"{topic}-scorers"
    client = producer(kafka_broker)
    try:
        # 12 sources keyed over 6 partitions, so every partition (and so each worker) gets messages.
        sent = send(client, topic, readings(600, sources=12))
    finally:
        client.close()
    log_path = tmp_path / "serve.log"
    command = [sys.executable, "-m", "anomaly", "serve", "--topic", topic, "--model", "pumps", "--group", group]
    command += ["--instance-id", "scorer", "--workers", "2", "--bootstrap-servers", kafka_broker.bootstrap]
    command += ["--metrics-port", "0", "--max-batch", "50", "--no-alerts", "--model-check-interval", "60", "--json"]
    with log_path.open("w") as log:
        process = subprocess.Popen(
            command,
            env={**os.environ, "ANOMALY_DATABASE_URL": pg_db},
            stdout=subprocess.PIPE,
            stderr=log,
            text=True,
        )
        partitions = sorted(f"{topic}-{p}" for p in range(PARTITIONS))

        def settled() -> bool:
            """Every message stored and committed, and the workers' last assignments split the partitions.

            A rebalance that coincides with the stop can leave its batch uncommitted (stored; the next
            owner replays it into rows the store skips), so the stop is sent to a settled group.
            """
            if process.poll() is not None:
                return True
            if len(stored(pg_db, topic)) < len(sent):
                return False
            last = _last_assignments(log_path)
            if set(last) != {0, 1} or sorted(last[0] + last[1]) != partitions:
                return False
            return committed(kafka_broker, group) == end_offsets(kafka_broker, topic, PARTITIONS)

        try:
            wait_until(settled, 120, "every message stored and committed, the partitions split", every_s=0.2)
            assert process.poll() is None, log_path.read_text()
        finally:
            process.send_signal(signal.SIGTERM)
            out, _ = process.communicate(timeout=60)
    lines = [json.loads(line) for line in log_path.read_text().splitlines() if line.startswith("{")]
    assert process.returncode == 0, log_path.read_text()

    positions = [(p, o) for p, o, _ in stored(pg_db, topic)]
    assert len(positions) == len(set(positions)), "a message stored twice"
    assert set(positions) == set(sent), f"{len(set(sent) - set(positions))} message(s) lost"
    # The workers' rebalance and commit log lines, so that a commit left behind shows why.
    events = [line for line in lines if line["msg"] in ("partitions assigned", "partitions revoked", "stopped")]
    assert committed(kafka_broker, group) == end_offsets(kafka_broker, topic, PARTITIONS), events
    # Each worker's last assignment: both non-empty, together every partition, none shared.
    last = _last_assignments(log_path)
    assert set(last) == {0, 1} and all(last.values()), events
    assert sorted(last[0] + last[1]) == partitions, events
    # SIGTERM reached both: each finished its batch, closed and said so; the summary adds theirs up.
    assert {line["worker"] for line in lines if line["msg"] == "stopped"} == {0, 1}
    summary = json.loads(out)
    assert summary["consumed"] == sum(w["consumed"] for w in summary["workers"]) >= len(sent)
    assert all(w["consumed"] > 0 for w in summary["workers"]), summary


def _last_assignments(log_path: Path) -> dict[int, list[str]]:
    """Each worker's last logged assignment, read from ``serve --json``'s log records so far."""
    last: dict[int, list[str]] = {}
    for line in log_path.read_text().splitlines():
        if line.startswith("{") and line.endswith("}"):
            record = json.loads(line)
            if record["msg"] == "partitions assigned":
                last[record["worker"]] = record["partitions"]
    return last
