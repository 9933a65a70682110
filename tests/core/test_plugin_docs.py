"""The fit-once tutorial in docs/plugins.md works as written: registered, fitted on arrays, scored, saved, loaded.

In process and without installing (tests/test_plugin_from_docs.py installs the doc's whole package
and drives it through the CLI): the doc's files are saved, imported, and handed to the registry.
"""

from __future__ import annotations

import importlib
import sys
import types
from pathlib import Path

import numpy as np
import pytest

from anomaly.plugins import build_registry
from tests.test_plugin_from_docs import FIT_ONCE, write_package


@pytest.fixture
def doc_plugin(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """The doc's entry-point module, imported from the files the doc gives; forgotten afterwards."""
    monkeypatch.syspath_prepend(str(write_package(tmp_path)))
    yield importlib.import_module("my_detectors")
    for name in [m for m in sys.modules if m == "my_detectors" or m.startswith("my_detectors.")]:
        del sys.modules[name]


def test_the_fit_once_tutorial_trains_scores_and_round_trips(tmp_path: Path, doc_plugin: types.ModuleType) -> None:
    registry = build_registry(extra_plugins={"my-detectors": doc_plugin})
    assert "my-detectors" not in registry.broken
    cls = registry.get(FIT_ONCE)
    assert cls.components == ("isolation",)
    rng = np.random.default_rng(0)
    normal = rng.integers(100, 140, (20, 16, 16), dtype=np.uint8)
    defective = normal[:4].copy()
    defective[:, 4:12, 4:12] = 255
    detector = cls().fit(normal)
    record = detector.training
    assert record.epochs_run == 1 and record.history[0]["kept"] == record.train_samples > 0
    scores = detector.decision_function(np.concatenate([normal[:4], defective]))
    assert scores[4:].min() > scores[:4].max()
    assert detector.predict(defective).tolist() == [1, 1, 1, 1]
    loaded = cls.load(detector.save(tmp_path / "model"))
    np.testing.assert_array_equal(loaded.decision_function(defective), detector.decision_function(defective))
    assert loaded.training.data.trained_ids == [str(i) for i in range(20)]
