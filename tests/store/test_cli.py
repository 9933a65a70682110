"""``anomaly db``, ``anomaly models`` and ``anomaly events`` through the real command group."""

from __future__ import annotations

import json
from collections.abc import Callable

import pytest
from click.testing import CliRunner, Result
from sqlalchemy.engine import Engine

from anomaly.cli import cli
from anomaly.store.config import URL_ENV, hide_password
from anomaly.store.migrate import head_revision
from anomaly.store.queries import insert_events, recent_events
from anomaly.store.registry import active_model


def _run(url: str, *args: str) -> Result:
    return CliRunner().invoke(cli, list(args), env={URL_ENV: url, "COLUMNS": "200"})


@pytest.fixture
def filled(engine: Engine, register: Callable) -> Engine:
    register(count=2)
    rows = [
        {
            "topic": "readings",
            "partition": 0,
            "offset": i,
            "source": f"press-{i % 2}",
            "score": i / 10,
            "threshold": 0.5,
            "is_anomaly": i >= 5,
            "components": {"latent": i},
        }
        for i in range(8)
    ]
    insert_events(engine, rows)
    return engine


def test_models_lists_as_table_and_json(db_url: str, filled: Engine) -> None:
    table = _run(db_url, "models")
    assert table.exit_code == 0, table.output
    assert "tiles" in table.output and "candidate" in table.output and "active" in table.output

    listed = json.loads(_run(db_url, "models", "--json").output)
    assert [(m["name"], m["version"], m["status"]) for m in listed] == [
        ("tiles", 2, "candidate"),
        ("tiles", 1, "active"),
    ]
    assert listed[0]["created_at"].endswith("+00:00")


def test_promote_and_rollback(db_url: str, filled: Engine) -> None:
    promoted = _run(db_url, "models", "promote", "tiles", "2")
    assert promoted.exit_code == 0 and "tiles version 2 is active" in promoted.output
    assert active_model("tiles", engine=filled).version == 2

    rolled = _run(db_url, "models", "rollback", "tiles")
    assert rolled.exit_code == 0 and "rolled back to version 1" in rolled.output
    assert active_model("tiles", engine=filled).version == 1


def test_user_errors_are_one_line(db_url: str, filled: Engine) -> None:
    result = _run(db_url, "models", "promote", "tiles", "9")
    assert result.exit_code == 2
    assert result.output.strip() == "Error: tiles has no version 9 (versions: 1, 2)"


def test_events_filters_and_json(db_url: str, filled: Engine) -> None:
    listed = json.loads(_run(db_url, "events", "--anomalies", "--source", "press-1", "--since", "1h", "--json").output)
    assert sorted(e["offset"] for e in listed) == [5, 7]
    assert all(e["is_anomaly"] and e["source"] == "press-1" for e in listed)
    assert listed[0]["components"] == {"latent": listed[0]["offset"]}

    limited = json.loads(_run(db_url, "events", "--limit", "3", "--json").output)
    assert len(limited) == 3

    table = _run(db_url, "events", "--anomalies")
    assert table.exit_code == 0 and "press-1" in table.output and "Anomalies" in table.output


def test_events_since_must_be_understood(db_url: str, filled: Engine) -> None:
    result = _run(db_url, "events", "--since", "last tuesday")
    assert result.exit_code == 2
    assert "--since takes 15m, 2h, 7d or an ISO timestamp" in result.output


def test_label_event(db_url: str, filled: Engine) -> None:
    event = recent_events(limit=1, engine=filled)[0]
    result = _run(db_url, "events", "label", str(event.id), "anomaly")
    assert result.exit_code == 0 and f"event {event.id} labelled anomaly" in result.output
    assert recent_events(limit=1, engine=filled)[0].label == "anomaly"
    assert _run(db_url, "events", "label", str(event.id), "maybe").exit_code == 2


def test_db_commands(blank_url: str) -> None:
    before = _run(blank_url, "db", "current")
    assert before.exit_code == 0 and "no schema" in before.output and "run `anomaly db upgrade`" in before.output

    upgraded = _run(blank_url, "db", "upgrade")
    assert upgraded.exit_code == 0 and f"at revision {head_revision()}" in upgraded.output
    assert "(up to date)" in _run(blank_url, "db", "current").output

    downgraded = _run(blank_url, "db", "downgrade", "base")
    assert downgraded.exit_code == 0 and "at revision base" in downgraded.output
    assert json.loads(_run(blank_url, "db", "current", "--json").output) == {
        "database": hide_password(blank_url),
        "revision": None,
        "head": head_revision(),
        "up_to_date": False,
    }
    assert json.loads(_run(blank_url, "db", "upgrade", "--json").output)["up_to_date"] is True


def test_commands_refuse_a_database_without_schema(blank_url: str) -> None:
    result = _run(blank_url, "models")
    assert result.exit_code == 2
    assert "no anomaly schema yet: run `anomaly db upgrade`" in result.output


def test_db_errors_hide_the_password() -> None:
    result = _run("postgresql+psycopg://anomaly:s3cret-Pw@127.0.0.1:1/anomaly", "db", "current")
    assert result.exit_code == 2
    assert "anomaly:***@127.0.0.1:1" in result.output and "s3cret-Pw" not in result.output
