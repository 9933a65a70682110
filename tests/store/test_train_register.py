"""`anomaly train --register NAME` puts the trained model into the registry, on both dialects."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import write_series

TINY = ("--epochs", "1", "--set", "width=4", "--set", "latent=4", "--no-progress", "--window", "8")


def test_train_register_then_list(cli, db_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("ANOMALY_DATABASE_URL", db_url)
    csv = write_series(tmp_path / "normal.csv")
    for run in ("v1", "v2"):
        result = cli("train", "ganomaly", csv, "--out", tmp_path / run, "--register", "pump", "--json", *TINY)
        assert result.exit_code == 0, result.output
    assert json.loads(result.stdout)["registered"] == {"name": "pump", "version": 2, "status": "candidate"}
    listing = json.loads(cli("models", "--json").output)
    pump = sorted((m for m in listing if m["name"] == "pump"), key=lambda m: m["version"])
    assert [m["status"] for m in pump] == ["active", "candidate"]
    assert pump[1]["artifact"] == str((tmp_path / "v2").resolve())
    assert pump[0]["detector"] == "ganomaly"
