"""The tile-scales sweep at smoke size: both scales and both combinations scored on every painted kind."""

from __future__ import annotations

import json

from experiments import scales
from experiments.image_defaults import DEFECTS


def test_smoke_sweep_fills_every_cell(tmp_path, shared_data) -> None:
    docs = tmp_path / "benchmarks.md"
    rows = scales.run("python -m experiments.scales", lambda _: None, docs, seeds=(0,), limit=12)
    assert list(rows[0]["auroc"]) == ["short side 128", "short side 256", "mean of both", "maximum of both"]
    assert all(set(per) == set(DEFECTS) and all(0 <= v <= 1 for v in per.values()) for per in rows[0]["auroc"].values())
    assert "## Tile scales (development)" in docs.read_text()
    assert len(json.loads((tmp_path / "benchmarks" / "scales.json").read_text())["rows"]) == 1
