"""Training data for a retrain: stored events with labels and the contamination guard, the recorded source."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pytest
from sqlalchemy.engine import Engine

from anomaly.retrain.data import NotEnoughData, gather
from anomaly.settings import RetrainConfig
from anomaly.store.registry import ModelRecord
from tests.conftest import write_series
from tests.retrain.conftest import WINDOW, series_manifest


def _readings(count: int) -> list[tuple[list[float], float, bool, str | None]]:
    """Distinct readings (step i is [i, i + 0.5]) scored normal, with a score rising slowly below 0.4."""
    return [([float(i), i + 0.5], 0.4 * i / count, False, None) for i in range(count)]


def test_labels_win_and_the_top_scoring_normal_events_are_dropped(
    engine: Engine, champion: ModelRecord, store_readings: Callable[..., None]
) -> None:
    readings = _readings(60)
    readings[10] = (readings[10][0], 0.9, True, None)  # scored anomalous: out
    readings[20] = (readings[20][0], 0.9, True, "normal")  # an operator says normal: in
    readings[30] = (readings[30][0], 0.1, False, "anomaly")  # an operator says anomaly: out, and judged on
    readings[40] = (readings[40][0], 0.49, False, None)  # the highest unlabelled normal score: dropped
    store_readings(champion.id, readings)
    config = RetrainConfig(data="events", contamination=0.02, min_items=10, holdout=0.2)

    data = gather(series_manifest(), [champion.id], config, engine)

    steps = np.concatenate([data.train.values, data.evaluation.values])[:, 0].tolist()
    assert steps == [float(i) for i in range(60) if i not in (10, 30, 40)]
    assert data.anomalies is not None and data.anomalies.shape == (1, WINDOW, 2)
    assert data.anomalies[0, :, 0].tolist() == [27.0, 28.0, 29.0, 30.0]
    assert (len(data.train), len(data.evaluation)) == (45, 12)
    assert data.summary["events_dropped_as_contamination"] == 1
    assert data.summary["events_scored_anomalous"] == 1
    assert data.summary["labelled_anomalies"] == 1


def test_readings_are_put_back_in_time_order_per_source(
    engine: Engine, champion: ModelRecord, store_readings: Callable[..., None]
) -> None:
    store_readings(champion.id, _readings(20), source="b", first=100)
    store_readings(champion.id, [([-v[0] - 1, -v[1]], s, a, label) for v, s, a, label in _readings(20)], source="a")
    config = RetrainConfig(data="events", contamination=0, min_items=10)

    data = gather(series_manifest(), [champion.id], config, engine)

    steps = np.concatenate([data.train.values, data.evaluation.values])[:, 0]
    by_source = [steps[:20], steps[20:]] if steps[0] < 0 else [steps[20:], steps[:20]]
    assert by_source[0].tolist() == [-float(i) - 1 for i in range(20)]
    assert by_source[1].tolist() == [float(i) for i in range(20)]


def test_too_little_data_is_an_explained_skip(
    engine: Engine, champion: ModelRecord, store_readings: Callable[..., None]
) -> None:
    store_readings(champion.id, _readings(5))
    with pytest.raises(NotEnoughData, match=r"5 normal items to retrain on, fewer than the 32 retrain.min_items"):
        gather(series_manifest(), [champion.id], RetrainConfig(data="events", contamination=0), engine)


def test_the_recorded_source_is_read_again_and_its_tail_held_out(tmp_path: Path) -> None:
    csv = write_series(tmp_path / "normal.csv", steps=100)
    data = gather(series_manifest(str(csv)), [], RetrainConfig(data="source", min_items=10), None)
    assert (len(data.train), len(data.evaluation)) == (80, 20)
    assert data.summary["source_items"] == 100
    np.testing.assert_allclose(data.evaluation.values, np.loadtxt(csv, delimiter=",", skiprows=1)[80:], rtol=1e-6)
    assert data.anomalies is None
