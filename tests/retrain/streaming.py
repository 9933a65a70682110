"""A scheduled retrain while readings keep flowing: the scorer, the scheduler and the sender the integration tests share.

The scorer runs in this process, the scheduler in a thread beside it (as ``serve --scheduler`` runs
it), the training in its own process; readings are sent before the retrain is due, every half second
while it runs, and once more after it, and the block ends when every one is stored.
"""

from __future__ import annotations

import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone

from sqlalchemy import select
from sqlalchemy.orm import Session

from anomaly.retrain import schedule
from anomaly.store.engine import get_engine
from anomaly.store.schema import TrainingRun
from anomaly.stream.consumer import ServeSettings, StreamScorer
from tests.kafka_broker import KafkaBroker
from tests.stream.support import producer, readings, send, stored, wait_until


@dataclass
class Flow:
    scorer: StreamScorer
    topic: str
    sent: list[tuple[int, int]] = field(default_factory=list)


def scheduled_run(url: str) -> TrainingRun | None:
    with Session(get_engine(url)) as session:
        return session.scalars(select(TrainingRun).where(TrainingRun.trigger == "scheduled")).one_or_none()


def wait_for_the_retrain(url: str) -> TrainingRun:
    wait_until(lambda: (r := scheduled_run(url)) is not None and r.status != "running", 400, "the retrain", every_s=1)
    run = scheduled_run(url)
    assert run is not None
    return run


@contextmanager
def retrain_while_streaming(broker: KafkaBroker, url: str, name: str) -> Iterator[Flow]:
    """Readings of ``name``'s topic stored, its retrain due and scheduled, readings sent on until the block ends."""
    topic = broker.create_topic(prefix="retrain")
    scorer = StreamScorer(
        ServeSettings(
            topics=[topic],
            models={topic: name},
            bootstrap_servers=broker.bootstrap,
            group=f"{topic}-scorer",
            alerts_topic=None,
            model_check_s=0.3,
            poll_timeout_ms=100,
        ),
        get_engine(url),
    )
    flow = Flow(scorer, topic)
    consuming = threading.Thread(target=scorer.run)
    consuming.start()
    client = producer(broker)
    stop_scheduling, stop_sending = threading.Event(), threading.Event()
    try:
        flow.sent += send(client, topic, readings(240))
        wait_until(lambda: len(stored(url, topic)) == len(flow.sent), 240, "the first readings stored")
        schedule.add_schedule(name, schedule.trigger_for("1h", None))
        due = schedule._store(None)
        due.modify_job(schedule.JOB_PREFIX + name, next_run_time=datetime.now(timezone.utc))
        due.shutdown(wait=False)
        threading.Thread(target=schedule.run_scheduler, args=(stop_scheduling,), kwargs={"poll": 0.2}).start()

        def keep_sending() -> None:
            seed = 1
            while not stop_sending.wait(0.5):
                flow.sent.extend(send(client, topic, readings(8, seed=seed)))
                seed += 1

        sender = threading.Thread(target=keep_sending)
        sender.start()
        yield flow
        stop_sending.set()
        sender.join(30)
        flow.sent += send(client, topic, readings(16, seed=99))
        wait_until(lambda: len(stored(url, topic)) >= len(flow.sent), 120, "every reading stored")
    finally:
        stop_sending.set()
        stop_scheduling.set()
        client.close()
        scorer.stop()
        consuming.join(30)
        schedule.remove_schedule(name)


def assert_each_stored_once(url: str, flow: Flow) -> list[tuple[int, int, int | None]]:
    """Every message sent is stored exactly once; the stored events, in order."""
    events = stored(url, flow.topic)
    positions = [(p, o) for p, o, _ in events]
    assert len(positions) == len(set(positions)) == len(flow.sent) and set(positions) == set(flow.sent)
    return events
