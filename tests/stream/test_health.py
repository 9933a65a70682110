"""/healthz's view of the consumer group, without a broker: the rebalance callbacks drive it."""

from __future__ import annotations

from pathlib import Path

import pytest

from anomaly.store import migrate
from anomaly.store.engine import get_engine
from anomaly.stream import consumer
from anomaly.stream.consumer import ServeSettings, StreamScorer
from tests.stream.support import register


def test_health_turns_bad_when_a_group_join_outlasts_max_poll_interval(
    tmp_path: Path, tiny_models: dict, monkeypatch: pytest.MonkeyPatch
) -> None:
    url = f"sqlite:///{tmp_path / 'health.db'}"
    migrate.upgrade(url=url)
    register(url, "pumps", tiny_models["series"])
    scorer = StreamScorer(
        ServeSettings(
            topics=["pumps"], models={"pumps": "pumps"}, bootstrap_servers="127.0.0.1:9", max_poll_interval_ms=90_000
        ),
        get_engine(url),
    )
    listener = consumer._Rebalance(scorer)
    listener.on_partitions_assigned([])
    ok, details = scorer.health()
    assert ok and not details["joining_group"]

    now = consumer.time.monotonic()
    listener.on_partitions_revoked([])
    monkeypatch.setattr(consumer.time, "monotonic", lambda: now + 89)
    ok, details = scorer.health()
    assert ok and details["joining_group"] and not details["stuck_joining"]

    monkeypatch.setattr(consumer.time, "monotonic", lambda: now + 91)
    ok, details = scorer.health()
    assert not ok and details["stuck_joining"]

    listener.on_partitions_assigned([])
    assert scorer.health()[1]["stuck_joining"] is False
