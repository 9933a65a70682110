"""Sensor series: CSV or NPZ files of channels, with the label conventions of the public sets.

Labels come from a ``label`` column, from an NPZ's ``test_label`` (SMD/ASD layout: ``train``,
``test``, ``test_label`` arrays), or from NAB's ``labels/combined_windows.json`` found in a
parent folder of the CSV. A time step is one row; windows are cut by the detector.
"""

from __future__ import annotations

import json
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from anomaly.errors import DataError

TIME_COLUMNS = ("timestamp", "time", "ts", "date", "datetime")
LABEL_COLUMNS = ("label", "is_anomaly", "anomaly")


@dataclass
class SeriesSet:
    """A multichannel series shaped (T, C) with optional per-step labels (1 = anomalous)."""

    values: np.ndarray
    ids: list[str]
    labels: np.ndarray | None = None
    name: str = "series"

    modality = "series"

    def __len__(self) -> int:
        return len(self.values)

    @property
    def channels(self) -> int:
        return int(self.values.shape[1])

    def slice(self, start: int, stop: int | None) -> SeriesSet:
        return SeriesSet(
            values=self.values[start:stop],
            ids=self.ids[start:stop],
            labels=None if self.labels is None else self.labels[start:stop],
            name=self.name,
        )


def check_finite(values: np.ndarray, name: str) -> None:
    bad = ~np.isfinite(values)
    if bad.any():
        row, col = np.argwhere(bad)[0]
        raise DataError(f"{name}: {int(bad.sum())} missing or non-finite value(s), first at row {row}, channel {col}")


def from_array(values: np.ndarray, name: str, labels: np.ndarray | None = None) -> SeriesSet:
    values = np.asarray(values)
    if values.ndim == 1:
        values = values[:, None]
    if values.ndim != 2 or values.shape[0] == 0:
        raise DataError(f"{name}: expected a (time, channels) array, got shape {values.shape}")
    if not np.issubdtype(values.dtype, np.number):
        raise DataError(f"{name}: values are not numeric ({values.dtype})")
    values = values.astype(np.float32)
    check_finite(values, name)
    if labels is not None:
        labels = np.asarray(labels).astype(np.int8).reshape(-1)
        if len(labels) != len(values):
            raise DataError(f"{name}: {len(labels)} labels for {len(values)} time steps")
    return SeriesSet(values=values, ids=[str(i) for i in range(len(values))], labels=labels, name=name)


def _read_csv(path: Path) -> SeriesSet:
    try:
        frame = pd.read_csv(path)
    except pd.errors.EmptyDataError:
        raise DataError(f"{path}: the file is empty") from None
    except (pd.errors.ParserError, UnicodeDecodeError) as exc:
        raise DataError(f"{path}: not a well-formed CSV ({str(exc).strip()})") from None
    if frame.empty:
        raise DataError(f"{path}: no data rows")
    lower = {c.lower(): c for c in frame.columns}
    time_col = next((lower[c] for c in TIME_COLUMNS if c in lower), None)
    label_col = next((lower[c] for c in LABEL_COLUMNS if c in lower), None)
    channels = [c for c in frame.columns if c not in (time_col, label_col)]
    if not channels:
        raise DataError(f"{path}: no value columns (found only {list(frame.columns)})")
    non_numeric = [c for c in channels if not pd.api.types.is_numeric_dtype(frame[c])]
    if non_numeric:
        raise DataError(f"{path}: column(s) {non_numeric} are not numeric")
    values = frame[channels].to_numpy(dtype=np.float32)
    check_finite(values, str(path))
    ids = frame[time_col].astype(str).tolist() if time_col else [str(i) for i in range(len(frame))]
    labels = _label_column(path, frame[label_col]) if label_col else _nab_labels(path, frame, time_col)
    return SeriesSet(values=values, ids=ids, labels=labels, name=path.stem)


def _label_column(path: Path, column: pd.Series) -> np.ndarray:
    """Per-step labels from a CSV column of 0 and 1 (or true/false): anything else is refused, not cast."""
    if pd.api.types.is_bool_dtype(column):
        return column.to_numpy().astype(np.int8)
    numeric = pd.to_numeric(column, errors="coerce")
    bad = ~numeric.isin((0, 1))
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        raise DataError(
            f"{path}: column {column.name!r} must hold 0 (normal) or 1 (anomalous); "
            f"row {first} holds {column.iloc[first]!r}"
        )
    return numeric.to_numpy().astype(np.int8)


def _nab_labels(path: Path, frame: pd.DataFrame, time_col: str | None) -> np.ndarray | None:
    """Point labels from NAB's anomaly windows (a row is anomalous inside a window, ends included)."""
    if time_col is None:
        return None
    for root in path.resolve().parents:
        windows_file = root / "labels" / "combined_windows.json"
        if windows_file.is_file():
            key = path.resolve().relative_to(root).as_posix()
            windows = json.loads(windows_file.read_text()).get(key)
            if windows is None:
                return None
            times = pd.to_datetime(frame[time_col])
            labels = np.zeros(len(frame), dtype=np.int8)
            for start, end in windows:
                labels[((times >= pd.Timestamp(start)) & (times <= pd.Timestamp(end))).to_numpy()] = 1
            return labels
    return None


def _read_npz(path: Path, split: str) -> SeriesSet:
    if not zipfile.is_zipfile(path):
        raise DataError(f"{path}: not an NPZ file (an NPZ is a zip archive of .npy arrays, as numpy.savez writes)")
    try:
        arrays = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"{path}: not a readable NPZ file ({exc})") from None
    with arrays:
        keys = list(arrays.keys())
        if split in keys:
            key = split
        elif len([k for k in keys if "label" not in k]) == 1:
            key = next(k for k in keys if "label" not in k)
        else:
            raise DataError(f"{path}: no array named {split!r} (found {keys})")
        labels = None
        for label_key in (f"{key}_label", f"{key}_labels", "labels", "label"):
            if label_key in keys:
                labels = arrays[label_key]
                break
        try:
            values = arrays[key]
        except ValueError as exc:
            raise DataError(f"{path}: array {key!r} cannot be read without pickles ({exc})") from None
    series = from_array(values, f"{path}[{key}]", labels)
    series.name = path.stem
    return series


def load_series(path: Path, split: str = "train") -> SeriesSet:
    """Read a series file; ``split`` picks the array of an NPZ holding ``train``/``test`` arrays."""
    path = Path(path)
    if not path.exists():
        raise DataError(f"{path}: no such file")
    if path.is_dir():
        raise DataError(f"{path}: is a folder; series are read from a .csv or .npz file")
    if path.suffix.lower() == ".npz":
        return _read_npz(path, split)
    if path.suffix.lower() in (".csv", ".txt"):
        return _read_csv(path)
    raise DataError(f"{path}: unsupported series file type {path.suffix!r} (use .csv or .npz)")


def windows(values: np.ndarray, window: int, stride: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Sliding windows (N, window, C) and the index of each window's last step.

    A window's score belongs to its last step, which is what a stream can know at that moment.
    """
    if window < 2:
        raise DataError(f"window must be at least 2 steps (got {window})")
    if len(values) < window:
        raise DataError(f"window of {window} steps is longer than the series ({len(values)} steps)")
    view = np.lib.stride_tricks.sliding_window_view(values, window, axis=0)[::stride]
    ends = np.arange(window - 1, len(values), stride)
    return np.ascontiguousarray(view.transpose(0, 2, 1)), ends
