"""What a retrain trains on and is judged on: the recorded data source and/or recent stored events.

Events count as normal when an operator labelled them ``normal``, or when the serving model scored
them normal and nobody labelled them; the unlabelled ones scoring highest (relative to their
threshold) are dropped all the same, a guard against anomalies the champion missed teaching the
challenger that they are normal. Events labelled ``anomaly`` never train: they are the labelled
anomalies both models are scored on. Images are the stored payload bytes; readings are put back in
time order per source, the ones left out simply removed from the sequence.

Part of the normal data is held out before the challenger sees any of it: the champion and the
challenger are both scored on it. Images the champion was trained on are held out last, since the
champion would look better on images it has seen.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import orjson
from sqlalchemy import func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from anomaly.artifact import Manifest
from anomaly.data.images import ImageSet, decode_image, normal_only
from anomaly.data.load import load_dataset
from anomaly.data.series import SeriesSet, from_array
from anomaly.errors import AnomalyError
from anomaly.inputs import SeriesSpec
from anomaly.settings import RetrainConfig
from anomaly.store.schema import Event

Dataset = ImageSet | SeriesSet
# Labelled anomalies: images, or the raw windows (N, window, channels) ending at labelled readings.
Anomalies = ImageSet | np.ndarray


class NotEnoughData(AnomalyError):
    """Too little normal data to train and judge a challenger: the run is recorded as skipped, with why."""


@dataclass
class RetrainData:
    """The challenger's training data, the held-out normal data and labelled anomalies both models are scored on."""

    train: Dataset
    evaluation: Dataset
    anomalies: Anomalies | None
    summary: dict[str, Any] = field(default_factory=dict)


@dataclass
class _Row:
    id: int
    source: str | None
    score: float
    threshold: float
    is_anomaly: bool
    label: str | None
    payload: bytes

    @property
    def margin(self) -> float:
        """How far over (or under) its threshold the event scored: comparable across model versions."""
        return self.score - self.threshold


def gather(
    manifest: Manifest, model_ids: list[int], config: RetrainConfig, engine: Engine | None, seed: int | None = 0
) -> RetrainData:
    """Training and evaluation data for a retrain of the model ``manifest`` describes, or NotEnoughData."""
    spec = manifest.spec
    summary: dict[str, Any] = {"data": config.data}
    source = _source(manifest, summary) if config.data in ("source", "both") else None
    rows = _rows(engine, model_ids, config.max_events) if config.data in ("events", "both") and engine else []
    summary["events_read"] = len(rows)
    kept, anomalous = _sort_events(rows, config.contamination, summary)
    normal: Dataset | None
    anomalies: Anomalies | None
    if isinstance(spec, SeriesSpec):
        normal, anomalies = _series(spec, source, rows, kept, anomalous, summary)
    else:
        normal, anomalies = _images(source, rows, kept, anomalous, summary)
    if normal is None or len(normal) < config.min_items:
        raise NotEnoughData(
            f"{0 if normal is None else len(normal)} normal items to retrain on, fewer than the "
            f"{config.min_items} retrain.min_items asks for ({_described(summary)})"
        )
    trained = set(manifest.training.data.trained_ids) if manifest.training.data else set()
    train, evaluation = _split(
        normal, spec, config.holdout, float(manifest.settings.get("holdout", 0.2)), trained, seed
    )
    summary.update(train_items=len(train), evaluation_items=len(evaluation))
    summary["labelled_anomalies"] = 0 if anomalies is None else len(anomalies)
    return RetrainData(train, evaluation, anomalies, summary)


def _described(summary: dict[str, Any]) -> str:
    return ", ".join(f"{key} {value}" for key, value in summary.items() if key != "data") or "no data"


def _source(manifest: Manifest, summary: dict[str, Any]) -> Dataset | None:
    """The data the champion was trained on, read again (its normal part), if it is still there."""
    recorded = manifest.training.data.source if manifest.training.data else None
    summary["source"] = recorded
    if recorded is None or not Path(recorded).exists():
        summary["source_items"] = 0
        return None
    data = load_dataset(Path(recorded))
    if isinstance(data, ImageSet) and data.labels is not None:
        data = normal_only(data)
    summary["source_items"] = len(data)
    return data


def _rows(engine: Engine, model_ids: list[int], limit: int) -> list[_Row]:
    """The newest stored events the model's versions scored with their payload, oldest first by event time."""
    query = (
        select(
            Event.id,
            Event.source,
            Event.score,
            Event.threshold,
            Event.is_anomaly,
            Event.label,
            Event.payload,
            func.coalesce(Event.event_time, Event.received_at),
            Event.offset,
        )
        .where(Event.model_id.in_(model_ids), Event.payload.is_not(None))
        .order_by(Event.received_at.desc(), Event.id.desc())
        .limit(limit)
    )
    with Session(engine) as session:
        found = list(session.execute(query))
    return [_Row(*row[:6], payload=row[6] or b"") for row in sorted(found, key=lambda row: (row[7], row[8], row[0]))]


def _sort_events(rows: list[_Row], contamination: float, summary: dict[str, Any]) -> tuple[set[int], set[int]]:
    """(ids that may train, ids labelled anomalous); the highest-scoring unlabelled fraction is dropped."""
    labelled_normal = {r.id for r in rows if r.label == "normal"}
    anomalous = {r.id for r in rows if r.label == "anomaly"}
    unlabelled = sorted((r for r in rows if r.label is None and not r.is_anomaly), key=lambda r: r.margin)
    dropped = int(np.floor(len(unlabelled) * contamination))
    kept = labelled_normal | {r.id for r in unlabelled[: len(unlabelled) - dropped]}
    summary.update(
        events_labelled_normal=len(labelled_normal),
        events_labelled_anomaly=len(anomalous),
        events_scored_anomalous=sum(r.label is None and r.is_anomaly for r in rows),
        events_dropped_as_contamination=dropped,
    )
    return kept, anomalous


def _images(
    source: Dataset | None, rows: list[_Row], kept: set[int], anomalous: set[int], summary: dict[str, Any]
) -> tuple[ImageSet | None, ImageSet | None]:
    normal = ImageSet(ids=[], images=[])
    anomalies = ImageSet(ids=[], images=[])
    undecodable = 0
    for row in rows:
        if row.id not in kept and row.id not in anomalous:
            continue
        try:
            image = decode_image(row.payload, f"event {row.id}", formats=("PNG", "JPEG"))
        except AnomalyError:
            undecodable += 1
            continue
        target = normal if row.id in kept else anomalies
        target.ids.append(f"event:{row.id}")
        target.images.append(image)
    summary["events_undecodable"] = undecodable
    if isinstance(source, ImageSet):
        normal = ImageSet(ids=source.ids + normal.ids, images=source.images + normal.images)
    return (normal if len(normal) else None), (anomalies if len(anomalies) else None)


def _reading(payload: bytes, channels: int) -> np.ndarray | None:
    """One reading's values from a stored message (a window's last row), or None when it cannot be used."""
    try:
        values = np.asarray(orjson.loads(payload)["values"], dtype=np.float32)
    except (orjson.JSONDecodeError, KeyError, TypeError, ValueError):
        return None
    row = values[-1] if values.ndim == 2 else values
    if row.shape != (channels,) or not np.isfinite(row).all():
        return None
    return row


def _series(
    spec: SeriesSpec,
    source: Dataset | None,
    rows: list[_Row],
    kept: set[int],
    anomalous: set[int],
    summary: dict[str, Any],
) -> tuple[SeriesSet | None, np.ndarray | None]:
    """Kept readings per source in time order (after the recorded series), and windows ending at labelled anomalies."""
    channels = spec.channels or (source.channels if isinstance(source, SeriesSet) else None)
    per_source: dict[str | None, list[tuple[int, np.ndarray]]] = {}
    unusable = 0
    for row in rows:
        reading = _reading(row.payload, channels) if channels else None
        if reading is None:
            unusable += 1
            continue
        per_source.setdefault(row.source, []).append((row.id, reading))
    summary["events_unusable"] = unusable
    parts = [source.values] if isinstance(source, SeriesSet) else []
    windows = []
    for readings in per_source.values():
        values = np.stack([value for _, value in readings])
        keep = [i for i, (event_id, _) in enumerate(readings) if event_id in kept]
        if keep:
            parts.append(values[keep])
        for i, (event_id, _) in enumerate(readings):
            if event_id in anomalous and i >= spec.window - 1:
                windows.append(values[i - spec.window + 1 : i + 1])
    if not parts:
        return None, None
    normal = from_array(np.concatenate(parts), "retrain")
    return normal, (np.stack(windows) if windows else None)


def _split(
    normal: Dataset, spec: Any, fraction: float, fit_holdout: float, trained: set[str], seed: int | None
) -> tuple[Dataset, Dataset]:
    """(challenger's training data, held-out normal data): a series' newest tail, or images the champion never saw."""
    if isinstance(normal, SeriesSet):
        cut = int(len(normal) * (1 - fraction))
        window = spec.window if isinstance(spec, SeriesSpec) else 2
        if len(normal) - cut < window or cut * min(fit_holdout, 1 - fit_holdout) < window:
            raise NotEnoughData(
                f"{len(normal)} normal readings are too few for windows of {window} with {fraction:.0%} "
                "held out for the comparison and part of the rest for calibration"
            )
        return normal.slice(0, cut), normal.slice(cut, None)
    if len(normal) < 3:
        raise NotEnoughData(f"{len(normal)} normal images; a retrain needs at least three")
    rng = np.random.default_rng(seed)
    # Unseen images first (random among themselves), then the champion's training images.
    order = sorted(range(len(normal)), key=lambda i: (normal.ids[i] in trained, rng.random()))
    n_eval = min(max(1, round(len(normal) * fraction)), len(normal) - 2)
    return normal.subset(sorted(order[n_eval:])), normal.subset(sorted(order[:n_eval]))
