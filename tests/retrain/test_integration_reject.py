"""A scheduled retrain on anomalous data against the real broker and PostgreSQL: rejected, the champion serves on.

The champion's recorded data source is a series far from the readings it serves (a level shift), and
the retrain reads it first and the newest stored readings last, so the challenger learns the shifted
series and is judged on held-out normal readings: it calls nearly all of them anomalous. It is
registered as a candidate, the run's row says why it lost, the scorer keeps the champion, and every
message sent meanwhile is stored exactly once.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import numpy as np
import pytest

from anomaly.artifact import Manifest
from anomaly.store.engine import get_engine
from anomaly.store.registry import active_model, list_models
from tests.kafka_broker import KafkaBroker
from tests.retrain.streaming import assert_each_stored_once, retrain_while_streaming, wait_for_the_retrain
from tests.stream.conftest import kafka_broker  # noqa: F401 (the fixture)
from tests.stream.fixtures import tiny_models  # noqa: F401 (the fixture)
from tests.stream.support import register

pytestmark = [pytest.mark.kafka, pytest.mark.postgres, pytest.mark.slow, pytest.mark.timeout(600)]


def _trained_on_shifted_series(model: Path, tmp_path: Path) -> Path:
    """A copy of ``model`` whose manifest records a level-shifted series as the data it was trained on."""
    folder = shutil.copytree(model, tmp_path / "champion")
    shifted = tmp_path / "shifted.csv"
    values = 20 + np.random.default_rng(0).normal(0, 0.05, (400, 2))
    np.savetxt(shifted, values, delimiter=",", header="c0,c1", comments="")
    manifest = Manifest.read(folder).to_json()
    manifest["training"]["data"] = {"source": str(shifted), "items": len(values)}
    Manifest.model_validate(manifest).write(folder)
    return folder


def test_a_challenger_trained_on_anomalous_data_is_rejected_and_the_champion_serves_on_without_loss(
    kafka_broker: KafkaBroker,  # noqa: F811
    pg_db: str,
    tiny_models: dict,  # noqa: F811
    monkeypatch: pytest.MonkeyPatch,
    tmp_path: Path,
) -> None:
    settings = {"DATABASE_URL": pg_db, "RETRAIN_DATA": "both", "RETRAIN_EPOCHS": "1", "RETRAIN_MAX_EVENTS": "100"}
    for key, value in settings.items():
        monkeypatch.setenv(f"ANOMALY_{key}", value)
    champion = register(pg_db, "pumps", _trained_on_shifted_series(tiny_models["series"], tmp_path))
    with retrain_while_streaming(kafka_broker, pg_db, "pumps") as flow:
        run = wait_for_the_retrain(pg_db)
        time.sleep(2)  # several model checks: a promotion, had there been one, would have been swapped in
    assert flow.scorer.models["pumps"].version == 1
    assert (run.status, run.decision) == ("succeeded", "rejected"), (run.reason, run.error)
    assert run.reason is not None and "worse than the champion by more than the margin 0.01" in run.reason
    champion_fpr, challenger_fpr = (run.metrics or {})["champion"]["fpr"], (run.metrics or {})["challenger"]["fpr"]
    assert challenger_fpr > champion_fpr + 0.5  # measured: 1.000 against 0.043
    assert (run.data_summary or {})["source_items"] == 400
    engine = get_engine(pg_db)
    assert active_model("pumps", engine=engine) == champion
    assert [m.status for m in list_models("pumps", engine=engine)] == ["candidate", "active"]
    events = assert_each_stored_once(pg_db, flow)
    assert {model for _, _, model in events} == {champion.id}
