"""Producing back to Kafka (dead letters, alerts) with an idempotent producer.

A batch's offsets are committed only after everything it produced is acknowledged, so a crash can
repeat a dead letter or an alert (at least once; each carries its source topic/partition/offset to
deduplicate by) but never lose one. While the broker is away (a retriable error), failed sends are
retried for as long as it takes. A record the broker or the client refuses for what it is (too
large, a topic that may not be written, any error Kafka does not call retriable) is tried a bounded
number of times and then handed to ``give_up``, so one such record never holds up its partition.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass

from kafka import KafkaProducer
from kafka.errors import KafkaError

log = logging.getLogger(__name__)

# Tries of a record whose error Kafka does not call retriable, before it is given up.
REFUSED_ATTEMPTS = 3


@dataclass
class Outgoing:
    """One record to produce; built by the dead-letter and alert modules, sent by the writer thread.

    ``origin`` is the (topic, partition, offset) of the message it is about, so the records of a
    message that could not be stored can be dropped with it.
    """

    topic: str
    value: bytes
    key: bytes | None = None
    headers: list[tuple[str, bytes]] | None = None
    origin: tuple[str, int, int] | None = None


GiveUp = Callable[[Outgoing, str], None]


class Publisher:
    """Send a batch of records and wait until the broker has acknowledged (or refused) every one."""

    def __init__(self, bootstrap_servers: str | list[str], retry_wait_s: float = 1.0, **config: object) -> None:
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            **config,
        )
        self.retry_wait_s = retry_wait_s
        self.failing_since: float | None = None
        self.last_error: str | None = None

    def send_all(
        self,
        records: list[Outgoing],
        keep_going: Callable[[], bool] = lambda: True,
        give_up: GiveUp = lambda record, error: None,
    ) -> bool:
        """True once each record is acknowledged or given up; False if ``keep_going`` turned false first."""
        pending, refusals = records, [0] * len(records)
        while pending:
            futures = []
            for record in pending:
                try:
                    futures.append(
                        self.producer.send(record.topic, value=record.value, key=record.key, headers=record.headers)
                    )
                except KafkaError as exc:
                    futures.append(exc)
            self.producer.flush()
            retry, retry_refusals = [], []
            for record, refused, future in zip(pending, refusals, futures):
                error = future if isinstance(future, Exception) else future.exception if future.failed() else None
                if error is None:
                    continue
                refused += not getattr(error, "retriable", False)
                if refused >= REFUSED_ATTEMPTS:
                    log.error(
                        "record refused; giving it up",
                        extra={"fields": {"topic": record.topic, "origin": record.origin, "error": _describe(error)}},
                    )
                    give_up(record, _describe(error))
                    continue
                retry.append(record)
                retry_refusals.append(refused)
                self.last_error = _describe(error)
            if not retry:
                self.failing_since = None
                return True
            if self.failing_since is None:
                self.failing_since = time.monotonic()
            log.warning("produce failed; retrying", extra={"fields": {"records": len(retry), "error": self.last_error}})
            if not keep_going():
                return False
            time.sleep(self.retry_wait_s)
            pending, refusals = retry, retry_refusals
        self.failing_since = None
        return True

    def failing_for(self) -> float:
        """Seconds since sends began failing without a round that succeeded; 0 when they are not failing."""
        return 0.0 if self.failing_since is None else time.monotonic() - self.failing_since

    def close(self) -> None:
        """Flush and close the producer, so nothing accepted by ``send_all`` is dropped at shutdown."""
        self.producer.close()


def _describe(error: BaseException) -> str:
    return f"{type(error).__name__}: {error}"
