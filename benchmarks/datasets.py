"""The benchmark's train/test splits, built the same way for every detector and baseline.

Each split is a ``Task``: normal training data, labelled test data and the input spec to use.
Every detector gets a fresh copy of the spec (fitting a spec fills in statistics), the same training
items and the same test items, so the only difference between rows of a table is the detector.
Held-out normal data for early stopping and calibration is split off the training data by the
detector pipeline itself; test labels are used for metrics only.
"""

from __future__ import annotations

import copy
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

import numpy as np

from anomaly.data.bundled import digits
from anomaly.data.images import ImageSet, load_images
from anomaly.data.series import SeriesSet, load_series
from anomaly.inputs import ImageSpec, SeriesSpec

DATA = Path(__file__).resolve().parents[2] / "shared" / "data"
TILE = DATA / "magnetic_tile"
NORMAL_TILE_CLASS = "MT_Free"
TRAIN_FRACTION = 0.7
NAB_PROBATION = 0.15


@dataclass
class Task:
    """One train/test split: ``family`` groups tasks into a table row (e.g. the ten digits)."""

    family: str
    name: str
    spec: ImageSpec | SeriesSpec
    train: ImageSet | SeriesSet
    test: ImageSet | SeriesSet
    note: str = ""

    def fresh_spec(self) -> ImageSpec | SeriesSpec:
        """A spec no detector has fitted yet: ``fit`` writes channel statistics into the one it gets."""
        return copy.deepcopy(self.spec)

    def labels_for(self, steps: np.ndarray | None) -> np.ndarray:
        """Item labels; for series, each window is labelled by its last step (what a stream knows then)."""
        labels = np.asarray(self.test.labels)
        return labels if steps is None else labels[steps]

    def kinds(self) -> np.ndarray | None:
        """Defect type per test image (magnetic_tile), for per-type metrics against the normal test images."""
        if isinstance(self.test, ImageSet) and self.test.kinds and self.family == "magnetic_tile":
            return np.asarray(self.test.kinds)
        return None


@lru_cache(maxsize=1)
def _tile_images() -> ImageSet:
    return load_images(TILE, NORMAL_TILE_CLASS, with_masks=True)


def _one_class_split(data: ImageSet, seed: int, limit: int | None) -> tuple[ImageSet, ImageSet]:
    """Seeded 70/30 split of the normal items; the test part also gets every anomalous item.

    ``limit`` caps the training items, the normal test items and the anomalous items of each kind
    (tiny smoke runs); None keeps everything.
    """
    labels = np.asarray(data.labels)
    normal = np.random.default_rng(seed).permutation(np.flatnonzero(labels == 0))
    cut = round(TRAIN_FRACTION * len(normal))
    train, test_normal = normal[:cut], normal[cut:]
    anomalous = np.flatnonzero(labels == 1)
    if limit is not None:
        train, test_normal = train[:limit], test_normal[:limit]
        kinds = np.asarray(data.kinds)
        anomalous = np.concatenate([anomalous[kinds[anomalous] == k][:limit] for k in sorted(set(kinds[anomalous]))])
    return data.subset(np.sort(train)), data.subset(np.sort(np.concatenate([test_normal, anomalous])))


def magnetic_tile(seed: int, spec: ImageSpec, limit: int | None = None) -> Task:
    """``MT_Free`` split 70/30 by seed; the test set is the 30% plus all 392 defect images."""
    train, test = _one_class_split(_tile_images(), seed, limit)
    return Task("magnetic_tile", "magnetic_tile", spec, train, test)


def digit(normal_digit: int, seed: int, limit: int | None = None) -> Task:
    """scikit-learn digits, one-class: 70% of one digit trains, its other 30% and all other digits test."""
    train, test = _one_class_split(digits(normal_digit), seed, limit)
    return Task("digits", f"digit-{normal_digit}", ImageSpec(image_size=16), train, test)


@lru_cache(maxsize=8)
def npz_arrays(path: Path) -> tuple[SeriesSet, SeriesSet]:
    """The ``train`` and ``test`` series of an SMD/ASD file, read once per process."""
    return load_series(path, "train"), load_series(path, "test")


def _around_first_anomaly(series: SeriesSet, steps: int) -> SeriesSet:
    """A ``steps``-long slice of a labelled series that holds both normal and anomalous steps."""
    first = int(np.flatnonzero(series.labels)[0])
    start = max(0, min(first - steps // 2, len(series) - steps))
    return series.slice(start, start + steps)


def npz_series(family: str, path: Path, window: int, train_stride: int, limit: int | None = None) -> Task:
    """SMD/ASD layout: train on the ``train`` array, score every window of ``test`` point-wise."""
    train, test = npz_arrays(path)
    if limit is not None:
        train, test = train.slice(0, limit), _around_first_anomaly(test, limit)
    return Task(family, path.stem, SeriesSpec(window=window, stride=train_stride), train, test)


def nab_series(path: Path, window: int, train_stride: int, limit: int | None = None) -> Task:
    """NAB has no train split: train on the probationary first 15%, score the rest.

    Where a labelled window starts inside the first 15% (machine_temperature_system_failure), the
    training prefix ends where that first window starts, so training stays on normal-looking data.
    The test slice starts ``window - 1`` steps before the cut so that the first scored step is the
    first step after the training prefix.
    """
    series = load_series(path)
    cut = int(NAB_PROBATION * len(series))
    first_anomaly = int(np.flatnonzero(series.labels)[0])
    note = ""
    if first_anomaly < cut:
        note = f"training prefix cut at step {first_anomaly} (first labelled window) instead of {cut}"
        cut = first_anomaly
    train = series.slice(0, cut)
    test = series.slice(cut - window + 1, None)
    if limit is not None:
        train, test = train.slice(max(0, len(train) - limit), None), _around_first_anomaly(test, limit)
    return Task("nab", path.stem, SeriesSpec(window=window, stride=train_stride), train, test, note)
