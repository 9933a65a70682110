"""Stream fixtures: one real Kafka broker per test session, started by scripts/kafka.sh.

Without Java or Maven (or without network for the first fetch) the broker cannot start: Kafka
tests then skip locally, and fail under CI (``CI`` set), where the broker must be available.
"""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.kafka_broker import KafkaBroker, KafkaBrokerError
from tests.stream.fixtures import postgres_server, tiny_models  # noqa: F401 (the scorer tests' fixtures)


@pytest.fixture(scope="session")
def kafka_broker() -> Iterator[KafkaBroker]:
    """The running broker (``.bootstrap`` is its address); left running if it already was."""
    broker = KafkaBroker()
    was_running = broker.is_running()
    try:
        broker.start()
    except KafkaBrokerError as exc:
        reason = f"the local Kafka broker did not start: {exc}"
        if os.environ.get("CI"):
            pytest.fail(reason)
        pytest.skip(reason)
    yield broker
    if broker.is_running():
        broker.delete_created_topics()
        if not was_running:
            broker.stop()
