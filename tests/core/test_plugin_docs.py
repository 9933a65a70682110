"""The fit-once tutorial in docs/plugins.md works as written: registered, fitted on arrays, scored, saved, loaded."""

from __future__ import annotations

import re
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from anomaly.hookspecs import hookimpl
from anomaly.plugins import build_registry

DOC = Path(__file__).resolve().parents[2] / "docs" / "plugins.md"


def _tutorial_module(monkeypatch: pytest.MonkeyPatch) -> types.ModuleType:
    """The first tutorial's code block, as the plugin module an author would save it as."""
    section = DOC.read_text().split("## Tutorial 1")[1].split("## Tutorial 2")[0]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    module = types.ModuleType("nearest_plugin")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # dataclasses resolve annotations through it
    exec(compile(code, str(DOC), "exec"), module.__dict__)

    @hookimpl
    def register_detectors(register) -> None:
        register(module.NearestDetector)

    module.register_detectors = register_detectors
    return module


def test_the_fit_once_tutorial_trains_scores_and_round_trips(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = build_registry(extra_plugins={"nearest-plugin": _tutorial_module(monkeypatch)})
    assert "nearest-plugin" not in registry.broken
    cls = registry.get("nearest")
    rng = np.random.default_rng(0)
    normal = rng.integers(100, 140, (20, 16, 16), dtype=np.uint8)
    defective = normal[:4].copy()
    defective[:, 4:12, 4:12] = 255
    detector = cls().fit(normal)
    assert detector.training.epochs_run == 1 and detector.training.history[0]["stored"] == 16.0
    scores = detector.decision_function(np.concatenate([normal[:4], defective]))
    assert scores[4:].min() > scores[:4].max()
    assert detector.predict(defective).tolist() == [1, 1, 1, 1]
    loaded = cls.load(detector.save(tmp_path / "nearest"))
    np.testing.assert_array_equal(loaded.decision_function(defective), detector.decision_function(defective))
    assert loaded.training.data.trained_ids == [str(i) for i in range(20)]
