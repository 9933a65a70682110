"""The model each topic is scored with, taken from the registry, and its hot swap.

``anomaly serve --model NAME`` serves whichever version of NAME is active in the registry. Between
batches (never inside one, so a batch is scored by exactly one version) the watcher asks the
registry every few seconds which version is active; when it changed, it loads the new version's
folder and swaps it in. The consumer never stops, so no message waits or is dropped. A registry
that cannot be reached, or a new version that fails to load in any way, keeps the current model
serving; at start-up an active version that will not load gives way to the newest retired one.
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from sqlalchemy.engine import Engine
from sqlalchemy.exc import DBAPIError

from anomaly.data.images import ImageSet
from anomaly.detector import Detector
from anomaly.errors import AnomalyError, failure_line
from anomaly.inputs import SeriesSpec, Spec
from anomaly.plugins import load_model
from anomaly.scores import Scores
from anomaly.store.registry import ModelRecord, active_model, list_models
from anomaly.stream.decode import DecodeContext, Decoded, Picture, Reading, Rejected
from anomaly.stream.metrics import StreamMetrics
from anomaly.stream.windows import WindowBuffers

log = logging.getLogger(__name__)

MIN_PADDED = 8


def padded_size(count: int, chunk: int) -> int:
    """How many samples to score so every chunk the detector scores has a power-of-two size.

    The detector scores in chunks of ``chunk`` (its ``score_batch_size``) and the networks are
    compiled per input shape; a stream delivers batches of every size, and each new size would pay a
    compilation (about a second on two cores). Only the last, partial chunk is padded (by repeating
    the last sample). Scores do not depend on the rest of the batch, so the padding's scores are
    simply dropped.
    """
    rest = count % chunk
    size = count - rest + (max(1 << (rest - 1).bit_length(), MIN_PADDED) if rest else 0)
    return max(size, MIN_PADDED)


def padded(samples: list[np.ndarray], chunk: int) -> list[np.ndarray]:
    return samples + [samples[-1]] * (padded_size(len(samples), chunk) - len(samples))


@dataclass
class Scored:
    """One item's score from one model version, ready to become an event row."""

    score: float
    threshold: float
    is_anomaly: bool
    components: dict[str, float]


@dataclass
class ServingModel:
    """One loaded version of a registered model, with the per-source windows it scores readings in."""

    name: str
    version: int
    model_id: int
    detector: Detector
    spec: Spec
    windows: WindowBuffers | None

    @classmethod
    def load(cls, record: ModelRecord) -> ServingModel:
        """Open the version's model folder (data only, see Detector.load) with empty source windows."""
        detector = load_model(record.artifact)
        spec = detector.spec
        if spec is None:  # Detector.load prepares the spec from the manifest before anything else
            raise AnomalyError(f"{record.name} v{record.version}: the loaded model has no input spec")
        windows = WindowBuffers(spec.window, spec.channels) if isinstance(spec, SeriesSpec) else None
        return cls(record.name, record.version, record.id, detector, spec, windows)

    def warm(self, max_batch: int) -> None:
        """Score dummy batches of every padded size a batch can take, before this version serves.

        Each size compiles the networks once (about a second each on two cores); paid here, it
        never stalls a live batch, and a hot swap only switches to a version that is ready.
        """
        spec = self.spec
        sample: Decoded
        if isinstance(spec, SeriesSpec):
            sample = Reading("warm-up", np.zeros((spec.window, spec.channels), np.float32), None)
        else:
            sample = Picture(None, np.zeros((spec.image_size, spec.image_size, spec.channels), np.uint8), None, "", b"")
        size = MIN_PADDED
        while True:
            self.score([sample] * size)
            if size >= min(max_batch, self.detector.score_batch_size):
                break
            size *= 2
        if self.windows is not None:
            self.windows = WindowBuffers(self.windows.window, self.windows.channels)

    @property
    def modality(self) -> str:
        return self.spec.modality

    def inherit_windows(self, previous: ServingModel) -> None:
        """Keep the sources' recent readings across a swap when the new version reads the same shape."""
        if self.windows is not None and previous.windows is not None:
            if (self.windows.window, self.windows.channels) == (previous.windows.window, previous.windows.channels):
                self.windows = previous.windows

    def score(self, items: list[Decoded]) -> list[Scored | Rejected]:
        """Score a batch at once; an item the detector fails on is rejected alone, not its batch.

        Readings go through the source's sliding window first (once: the windows advance per
        reading); each message is then exactly one window.
        """
        if not items:
            return []
        if self.windows is not None:
            windows = self.windows.windows([(item.source, item.values) for item in items if isinstance(item, Reading)])
            return self._contained(list(windows), self._score_windows, "window")
        pictures = [item.image for item in items if isinstance(item, Picture)]
        return self._contained(pictures, self._score_images, "image")

    def _contained(
        self, samples: list[np.ndarray], score: Callable[[list[np.ndarray]], Scores], what: str
    ) -> list[Scored | Rejected]:
        """All samples scored at once; if that fails, each half on its own, down to the samples at fault.

        Any exception counts: a detector (a plugin's, too) failing on one odd input must cost that
        message, not the stream. Halving finds k bad samples in about k·log2(n) extra calls.
        """
        try:
            return self._results(score(padded(samples, self.detector.score_batch_size)), len(samples))
        except Exception as exc:  # noqa: BLE001 — isolated per sample below
            if len(samples) == 1:
                return [Rejected(f"the model cannot score this {what}: {type(exc).__name__}: {exc}", "score")]
        middle = len(samples) // 2
        return self._contained(samples[:middle], score, what) + self._contained(samples[middle:], score, what)

    def _score_windows(self, windows: list[np.ndarray]) -> Scores:
        return self.detector.score_windows(np.stack(windows))

    def _score_images(self, images: list[np.ndarray]) -> Scores:
        return self.detector.score(ImageSet(ids=[str(i) for i in range(len(images))], images=images), maps=False)

    def _results(self, scores: Scores, expected: int) -> list[Scored | Rejected]:
        if len(scores) < expected:
            raise AnomalyError(f"{self.name} v{self.version}: {len(scores)} scores for {expected} messages")
        names = list(scores.components)
        columns = [scores.components[name][:expected].tolist() for name in names]
        threshold = float(scores.threshold)
        return [
            Scored(value, threshold, flag, dict(zip(names, parts)))
            for value, flag, *parts in zip(
                scores.scores[:expected].tolist(), scores.is_anomaly[:expected].tolist(), *columns
            )
        ]

    def context(self, sources: frozenset[str] | None, max_bytes: int) -> DecodeContext:
        """What decoders check messages against: this version's input spec (channels, window) and the limits."""
        return DecodeContext(spec=self.spec, sources=sources, max_bytes=max_bytes)


class ModelWatcher:
    """The serving version of each model name, refreshed from the registry between batches.

    A version that fails to load or warm up, for any reason (a damaged manifest, networks over the
    size limits, weights of another shape, memory), never replaces the serving one: it is logged,
    counted in ``anomaly_stream_model_load_failures`` and not tried again until the registry
    activates another version or its folder changes. At start-up an active version that will not
    load is replaced by the newest retired one that does (``anomaly_stream_model_fallbacks``), so a
    bad promotion cannot keep a restarted scorer down.
    """

    def __init__(
        self,
        names: list[str],
        engine: Engine,
        check_every_s: float = 5.0,
        max_batch: int = 256,
        metrics: StreamMetrics | None = None,
    ) -> None:
        self.engine = engine
        self.check_every_s = check_every_s
        self.max_batch = max_batch
        self.metrics = metrics or StreamMetrics()
        self.models: dict[str, ServingModel] = {}
        # Per name, the (model id, folder stamp) of the active version that last failed to load.
        self._failed: dict[str, tuple[int, tuple]] = {}
        # Why the last check could not read the registry (None once it could), for /healthz.
        self.registry_error: str | None = None
        for name in dict.fromkeys(names):
            record = active_model(name, engine=engine)
            if record is None:
                raise AnomalyError(f"no active version of model {name!r} in the registry; see `anomaly models`")
            self.metrics.active_version.labels(name).set(record.version)
            self.models[name] = self._start(record)
            log.info("serving model", extra={"fields": {"model": name, "version": self.models[name].version}})
        self._checked = time.monotonic()

    def __getitem__(self, name: str) -> ServingModel:
        return self.models[name]

    def _ready(self, record: ModelRecord) -> ServingModel:
        model = ServingModel.load(record)
        model.warm(self.max_batch)
        return model

    def _start(self, active: ModelRecord) -> ServingModel:
        """The active version, or else the newest retired version that loads."""
        try:
            return self._ready(active)
        except Exception as exc:  # any failure to load means: do not serve this version
            self._failed[active.name] = (active.id, _folder_stamp(active.artifact))
            self._count_failure(active, exc, None)
            first_error = failure_line(exc)
        for record in list_models(active.name, engine=self.engine):
            if record.status != "retired" or record.artifact_removed_at is not None:
                continue  # a candidate was never approved to serve; retention removed this one's folder
            try:
                model = self._ready(record)
            except Exception as exc:
                self._count_failure(record, exc, None)
                continue
            self.metrics.fallbacks.labels(active.name).inc()
            log.error(
                "active version will not load; serving the newest retired version that does",
                extra={
                    "fields": {
                        "model": active.name,
                        "active": active.version,
                        "serving": record.version,
                        "error": first_error,
                    }
                },
            )
            return model
        raise AnomalyError(
            f"no version of model {active.name!r} loads: active version {active.version}: "
            f"{first_error}; see `anomaly models`"
        )

    def _count_failure(self, record: ModelRecord, exc: Exception, serving: int | None) -> None:
        self.metrics.load_failures.labels(record.name).inc()
        log.error(
            "model version failed to load; not serving it",
            extra={
                "fields": {
                    "model": record.name,
                    "failed": record.version,
                    "artifact": record.artifact,
                    "serving": serving,
                    "error": failure_line(exc),
                }
            },
        )

    def refresh(self, force: bool = False) -> list[ServingModel]:
        """Swap in newly activated versions (at most every ``check_every_s``); return what was swapped."""
        if not force and time.monotonic() - self._checked < self.check_every_s:
            return []
        self._checked = time.monotonic()
        swapped = []
        self.registry_error = None
        for name, current in list(self.models.items()):
            try:
                record = active_model(name, engine=self.engine)
            except (DBAPIError, AnomalyError) as exc:
                self.registry_error = str(exc)
                log.warning(
                    "registry unreachable; keeping the serving model",
                    extra={"fields": {"model": name, "version": current.version, "error": str(exc)}},
                )
                continue
            if record is None:
                continue
            self.metrics.active_version.labels(name).set(record.version)
            if record.version == current.version and record.id == current.model_id:
                self._failed.pop(name, None)
                continue
            attempt = (record.id, _folder_stamp(record.artifact))
            if self._failed.get(name) == attempt:
                continue
            try:
                fresh = self._ready(record)
            except Exception as exc:  # any failure to load means: keep serving the current version
                self._failed[name] = attempt
                self._count_failure(record, exc, current.version)
                continue
            self._failed.pop(name, None)
            fresh.inherit_windows(current)
            self.models[name] = fresh
            swapped.append(fresh)
            log.info(
                "hot-swapped model", extra={"fields": {"model": name, "from": current.version, "to": record.version}}
            )
        return swapped


def _folder_stamp(artifact: str) -> tuple:
    """Names, sizes and modification times in a model folder: a failed version is retried once they change."""
    stamp = []
    try:
        with os.scandir(artifact) as entries:
            for entry in entries:
                info = entry.stat(follow_symlinks=False)
                stamp.append((entry.name, info.st_size, info.st_mtime_ns))
    except OSError:
        return ()
    return tuple(sorted(stamp))
