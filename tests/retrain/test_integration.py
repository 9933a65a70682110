"""A scheduled retrain against the real broker and PostgreSQL while messages keep flowing: promoted and served.

Any false-positive rate is within a margin of 1 here, so the challenger is promoted; the scorer swaps
to it between batches, and every message sent before, during and after is stored exactly once. The
rejection of a worse challenger is test_integration_reject.py's.
"""

from __future__ import annotations

import pytest

from tests.kafka_broker import KafkaBroker
from tests.retrain.streaming import assert_each_stored_once, retrain_while_streaming, wait_for_the_retrain
from tests.stream.conftest import kafka_broker  # noqa: F401 (the fixture)
from tests.stream.fixtures import tiny_models  # noqa: F401 (the fixture)
from tests.stream.support import register, wait_until

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(600)]


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
    with retrain_while_streaming(kafka_broker, pg_db, "pumps") as flow:
        run = wait_for_the_retrain(pg_db)
        assert (run.status, run.decision) == ("succeeded", "promoted"), (run.reason, run.error)
        wait_until(lambda: flow.scorer.models["pumps"].version == 2, 60, "the swap to the challenger")
    events = assert_each_stored_once(pg_db, flow)
    assert {model for _, _, model in events} == {champion.id, run.model_id}
    assert events[-1][2] == run.model_id
    assert run.data_summary is not None and run.data_summary["events_read"] >= 240
    assert set(run.metrics or {}) == {"champion", "challenger"}
