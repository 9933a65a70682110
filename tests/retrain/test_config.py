"""Per-model retrain settings: ``[retrain.models.NAME]`` changes that model's data and margins only."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from anomaly import settings
from anomaly.errors import AnomalyError
from anomaly.retrain import run
from anomaly.settings import RetrainConfig
from anomaly.store.registry import ModelRecord
from anomaly.store.schema import TrainingRun
from tests.core.test_settings import clean_env  # noqa: F401 (an autouse fixture)


@pytest.fixture
def config_file(tmp_path: Path) -> Path:
    """The test's own anomaly.toml, in the working directory the autouse ``clean_env`` leaves free of ANOMALY_*."""
    return tmp_path / "anomaly.toml"


def test_an_override_changes_the_effective_settings_of_its_model_only(config_file: Path) -> None:
    config_file.write_text(
        '[retrain]\ndata = "events"\nfpr_margin = 0.03\ntime_limit = 60\n'
        '[retrain.models.pump]\ndata = "source"\nmin_items = 10\nepochs = 2\n'
    )
    retrain = settings.load().settings.retrain

    pump, other = retrain.for_model("pump"), retrain.for_model("fan")

    assert (pump.data, pump.min_items, pump.epochs, pump.fpr_margin, pump.time_limit) == ("source", 10, 2, 0.03, 60)
    assert (other.data, other.min_items, other.epochs, other.fpr_margin) == ("events", 32, None, 0.03)
    assert pump.decisions() == {
        "data": "source",
        "max_events": 20_000,
        "contamination": 0.05,
        "min_items": 10,
        "holdout": 0.2,
        "epochs": 2,
        "fpr_margin": 0.03,
        "auroc_margin": 0.02,
    }


@pytest.mark.parametrize(
    ("table", "line"),
    [
        ("retries = 3", "unknown setting retrain.models.pump.retries (allowed: data, max_events,"),
        ("time_limit = 5", "unknown setting retrain.models.pump.time_limit (allowed: data,"),
        ('data = "all"', "retrain.models.pump.data: input should be 'source', 'events' or 'both' (got 'all')"),
        ("contamination = 1.5", "retrain.models.pump.contamination: input should be less than 1 (got '1.5')"),
    ],
)
def test_a_bad_override_is_one_line_naming_its_key(config_file: Path, table: str, line: str) -> None:
    config_file.write_text(f"[retrain.models.pump]\n{table}\n")

    with pytest.raises(AnomalyError) as raised:
        settings.load()

    assert str(raised.value).startswith(f"{config_file}: {line}")
    assert "\n" not in str(raised.value)


def test_config_show_lists_the_overrides_as_set_and_no_variable_for_them(config_file: Path) -> None:
    from anomaly.cli.settings import effective

    config_file.write_text('[retrain.models.pump]\ndata = "source"\n')

    rows = {row["key"]: row for row in effective()[1]}

    assert rows["retrain.models"]["value"] == {"pump": {"data": "source"}}
    assert rows["retrain.models"]["source"] == f"file {config_file}"
    assert rows["retrain.models"]["env"] == []


@pytest.mark.parametrize(("overridden", "events_read"), [("pump", 0), ("fan", 40)])
def test_a_source_override_retrains_without_the_stored_events(
    engine: Engine,
    champion: ModelRecord,
    store_readings: Callable[..., None],
    overridden: str,
    events_read: int,
) -> None:
    """The champion records no source, so with ``data = "source"`` there is nothing to train on: a skip that read no events."""
    store_readings(champion.id, [([0.1 * i, 0.2], 0.1, False, None) for i in range(40)])
    config = RetrainConfig(data="events", min_items=1000, models={overridden: {"data": "source"}})

    report = run.retrain("pump", trigger="scheduled", config=config, engine=engine)

    assert (report.status, report.decision) == ("succeeded", "skipped")
    assert f"events_read {events_read}" in report.reason
    with Session(engine) as session:
        row = session.scalars(select(TrainingRun).where(TrainingRun.trigger == "scheduled")).one()
    assert row.data_summary["settings"]["data"] == ("source" if overridden == "pump" else "events")
    assert row.data_summary["settings"]["min_items"] == 1000
