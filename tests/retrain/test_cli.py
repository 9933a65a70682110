"""`anomaly retrain NAME` end to end: a real tiny model retrained, judged, promoted and listed."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from anomaly.store import migrate
from tests.conftest import write_series

TINY = ("--epochs", "1", "--set", "width=4", "--set", "latent=4", "--no-progress", "--window", "8")


@pytest.fixture
def database(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    url = f"sqlite:///{tmp_path / 'store.db'}"
    migrate.upgrade(url=url)
    monkeypatch.setenv("ANOMALY_DATABASE_URL", url)
    return url


def test_retraining_a_name_with_no_active_version_is_one_line(cli, database: str) -> None:
    result = cli("retrain", "pump")
    assert result.exit_code == 2
    assert result.output == "Error: no active version of 'pump' to retrain; see `anomaly models`\n"


@pytest.mark.slow
def test_retrain_promotes_a_challenger_within_the_margin_and_models_shows_the_run(
    cli, database: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    csv = write_series(tmp_path / "normal.csv", steps=240)
    trained = cli("train", "ganomaly", csv, "--out", tmp_path / "pump-1", "--register", "pump", *TINY)
    assert trained.exit_code == 0, trained.output
    # Any false-positive rate is within a margin of 1: this run must promote.
    monkeypatch.setenv("ANOMALY_RETRAIN_EPOCHS", "1")
    monkeypatch.setenv("ANOMALY_RETRAIN_FPR_MARGIN", "1")

    result = cli("retrain", "pump", "--json")

    assert result.exit_code == 0, result.output
    report = json.loads(result.stdout)
    assert (report["status"], report["decision"], report["challenger_version"]) == ("succeeded", "promoted", 2)
    assert set(report["metrics"]) == {"champion", "challenger"}
    assert report["summary"]["train_items"] + report["summary"]["evaluation_items"] == 240
    listing = {m["version"]: m["status"] for m in json.loads(cli("models", "--json").stdout)}
    assert listing == {1: "retired", 2: "active"}
    assert "promoted" in cli("models").stdout


def test_schedule_commands_set_list_and_remove_a_schedule(cli, database: str, tmp_path: Path) -> None:
    from anomaly.store.engine import get_engine
    from anomaly.store.registry import register_trained_model
    from tests.retrain.conftest import series_manifest

    folder = tmp_path / "pump-1"
    folder.mkdir()
    series_manifest().write(folder)
    register_trained_model("pump", folder, series_manifest(), engine=get_engine(database))

    set_ = cli("retrain", "schedule", "pump", "--every", "6h")
    assert set_.exit_code == 0 and set_.output.startswith("pump retrains on interval[6:00:00]; next at ")
    (entry,) = json.loads(cli("retrain", "schedules", "--json").stdout)
    assert (entry["name"], entry["trigger"]) == ("pump", "interval[6:00:00]")
    assert cli("retrain", "schedule", "pump", "--every", "6h", "--cron", "0 3 * * *").exit_code == 2
    assert cli("retrain", "unschedule", "pump").output == "pump is no longer retrained on a schedule\n"
    assert json.loads(cli("retrain", "schedules", "--json").stdout) == []
    missing = cli("retrain", "unschedule", "pump")
    assert (missing.exit_code, missing.output) == (
        2,
        "Error: pump has no retrain schedule; see `anomaly retrain schedules`\n",
    )
