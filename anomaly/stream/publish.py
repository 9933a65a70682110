"""Producing back to Kafka (dead letters, alerts) with an idempotent producer that never gives up.

A batch's offsets are committed only after everything it produced is acknowledged, so a crash can
repeat a dead letter or an alert (at least once; each carries its source topic/partition/offset to
deduplicate by) but never lose one. While the broker is away, failed sends are retried.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kafka import KafkaProducer
from kafka.errors import KafkaError

log = logging.getLogger(__name__)


@dataclass
class Outgoing:
    """One record to produce; built by the dead-letter and alert modules, sent by the writer thread."""

    topic: str
    value: bytes
    key: bytes | None = None
    headers: list[tuple[str, bytes]] | None = None


class Publisher:
    """Send a batch of records and wait until the broker has acknowledged every one of them."""

    def __init__(self, bootstrap_servers: str, retry_wait_s: float = 1.0, **config: Any) -> None:
        self.producer = KafkaProducer(
            bootstrap_servers=bootstrap_servers,
            enable_idempotence=True,
            acks="all",
            linger_ms=5,
            **config,
        )
        self.retry_wait_s = retry_wait_s

    def send_all(self, records: list[Outgoing], keep_going: Callable[[], bool] = lambda: True) -> bool:
        """True once all are acknowledged; False if ``keep_going`` turned false while retrying."""
        pending = records
        while pending:
            futures = []
            for record in pending:
                try:
                    futures.append((record, self.producer.send(record.topic, value=record.value, key=record.key,
                                                               headers=record.headers)))
                except KafkaError as exc:
                    futures.append((record, exc))
            self.producer.flush()
            failed, errors = [], []
            for record, future in futures:
                error = future if isinstance(future, Exception) else future.exception if future.failed() else None
                if error is not None:
                    failed.append(record)
                    errors.append(str(error))
            if failed:
                log.warning("produce failed; retrying", extra={"fields": {"records": len(failed), "error": errors[0]}})
                if not keep_going():
                    return False
                time.sleep(self.retry_wait_s)
            pending = failed
        return True

    def close(self) -> None:
        """Flush and close the producer, so nothing accepted by ``send_all`` is dropped at shutdown."""
        self.producer.close()
