"""A scheduled retrain against the real broker and PostgreSQL while messages keep flowing.

The scorer runs in this process, the scheduler in a thread beside it (as ``serve --scheduler`` runs
it), the training in its own process. The challenger is promoted (any false-positive rate is within
a margin of 1 here), the scorer swaps to it between batches, and every message sent before, during
and after is stored exactly once. The rejection of a worse challenger is tests/retrain/test_run.py's.
"""

from __future__ import annotations

import threading
from datetime import datetime, timezone

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from anomaly.retrain import schedule
from anomaly.store.engine import get_engine
from anomaly.store.schema import TrainingRun
from anomaly.stream.consumer import ServeSettings, StreamScorer
from tests.kafka_broker import KafkaBroker
from tests.stream.conftest import kafka_broker  # noqa: F401 (the fixture)
from tests.stream.fixtures import tiny_models  # noqa: F401 (the fixture)
from tests.stream.support import producer, readings, register, send, stored, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(600)]


def _run(url: str) -> TrainingRun | None:
    with Session(get_engine(url)) as session:
        return session.scalars(select(TrainingRun).where(TrainingRun.trigger == "scheduled")).one_or_none()


def test_a_scheduled_retrain_is_promoted_and_served_while_messages_flow_without_loss_or_duplicates(
    kafka_broker: KafkaBroker,  # noqa: F811
    pg_db: str,
    tiny_models: dict,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for key, value in {"DATABASE_URL": pg_db, "RETRAIN_DATA": "events", "RETRAIN_EPOCHS": "1"}.items():
        monkeypatch.setenv(f"ANOMALY_{key}", value)
    monkeypatch.setenv("ANOMALY_RETRAIN_FPR_MARGIN", "1")
    champion = register(pg_db, "pumps", tiny_models["series"])
    topic = kafka_broker.create_topic(prefix="retrain")
    scorer = StreamScorer(
        ServeSettings(
            topics=[topic],
            models={topic: "pumps"},
            bootstrap_servers=kafka_broker.bootstrap,
            group=f"{topic}-scorer",
            alerts_topic=None,
            model_check_s=0.3,
            poll_timeout_ms=100,
        ),
        get_engine(pg_db),
    )
    consuming = threading.Thread(target=scorer.run)
    consuming.start()
    client = producer(kafka_broker)
    stop_scheduling, stop_sending = threading.Event(), threading.Event()
    sent: list[tuple[int, int]] = []
    try:
        sent += send(client, topic, readings(240))
        wait_until(lambda: len(stored(pg_db, topic)) == len(sent), 240, "the first readings stored")
        schedule.add_schedule("pumps", schedule.trigger_for("1h", None))
        due = schedule._store(None)
        due.modify_job("retrain:pumps", next_run_time=datetime.now(timezone.utc))
        due.shutdown(wait=False)
        threading.Thread(target=schedule.run_scheduler, args=(stop_scheduling,), kwargs={"poll": 0.2}).start()

        def keep_sending() -> None:
            seed = 1
            while not stop_sending.wait(0.5):
                sent.extend(send(client, topic, readings(8, seed=seed)))
                seed += 1

        sender = threading.Thread(target=keep_sending)
        sender.start()
        wait_until(lambda: (r := _run(pg_db)) is not None and r.status != "running", 400, "the retrain", every_s=1)
        run = _run(pg_db)
        assert run is not None and (run.status, run.decision) == ("succeeded", "promoted"), (run.reason, run.error)
        wait_until(lambda: scorer.models["pumps"].version == 2, 60, "the swap to the challenger")
        stop_sending.set()
        sender.join(30)
        sent += send(client, topic, readings(16, seed=99))
        wait_until(lambda: len(stored(pg_db, topic)) >= len(sent), 120, "every reading stored")
    finally:
        stop_sending.set()
        stop_scheduling.set()
        client.close()
        scorer.stop()
        consuming.join(30)
        schedule.remove_schedule("pumps")
    events = stored(pg_db, topic)
    positions = [(p, o) for p, o, _ in events]
    assert len(positions) == len(set(positions)) == len(sent) and set(positions) == set(sent)
    assert {model for _, _, model in events} == {champion.id, run.model_id}
    assert events[-1][2] == run.model_id
    assert run.data_summary is not None and run.data_summary["events_read"] >= 240
    assert set(run.metrics or {}) == {"champion", "challenger"}
