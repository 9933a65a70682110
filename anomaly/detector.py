"""The one detector contract every plugin implements, and the pipeline around it.

A plugin supplies the learning part (``build``, ``train_step``, ``sample_components`` and
state I/O); this base class owns everything that must behave the same for every detector:
preprocessing from the input spec, the held-out split, early stopping on held-out normal
data, score normalisation, threshold calibration, pooling tiles into image scores, anomaly
maps and the manifest. Users call ``fit``, ``score``, ``save`` and ``load`` (PyOD/sklearn habits).
"""

from __future__ import annotations

import dataclasses
import json
import platform
import stat
import time
import types
import typing
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from anomaly import __version__
from anomaly.data.images import ImageSet
from anomaly.data.series import SeriesSet
from anomaly.errors import AnomalyError, ArtifactError, DataError
from anomaly.inputs import (
    ImageSpec,
    Samples,
    SeriesSpec,
    Spec,
    encode,
    finite,
    fit_spec,
    pool,
    spec_from_dict,
    spec_to_dict,
    standardise,
    stitch_maps,
)
from anomaly.params import check_params
from anomaly.threshold import Calibration, Normaliser

ARTIFACT_FORMAT = 1
MANIFEST = "manifest.json"
# A manifest holds hyper-parameters, channel statistics and the training history: kilobytes, or a
# megabyte for thousands of epochs. Anything far larger is not one, and would be read into memory whole.
MAX_MANIFEST_BYTES = 16 * 2**20
Dataset = ImageSet | SeriesSet


@dataclass
class FitSettings:
    """Training settings shared by every detector (detector-specific ones live in its Params)."""

    epochs: int = 15
    batch_size: int = 64
    seed: int | None = 0
    holdout: float = 0.2
    patience: int | None = 5
    calibration: Calibration = field(default_factory=Calibration)


@dataclass
class ScoreResult:
    """One scored item: maps straight onto a stored event row."""

    id: str
    score: float
    is_anomaly: bool
    threshold: float
    components: dict[str, float]
    anomaly_map: np.ndarray | None = None

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "score": self.score,
            "is_anomaly": self.is_anomaly,
            "threshold": self.threshold,
            "components": self.components,
        }


@dataclass
class Scores:
    """Scores of a batch, one entry per item (image, or window identified by its last step)."""

    ids: list[str]
    scores: np.ndarray
    components: dict[str, np.ndarray]
    threshold: float
    maps: list[np.ndarray] | None = None
    steps: np.ndarray | None = None

    @property
    def is_anomaly(self) -> np.ndarray:
        return self.scores > self.threshold

    def __len__(self) -> int:
        return len(self.ids)

    def __iter__(self) -> Iterator[ScoreResult]:
        flags = self.is_anomaly
        for i, item_id in enumerate(self.ids):
            yield ScoreResult(
                id=item_id,
                score=float(self.scores[i]),
                is_anomaly=bool(flags[i]),
                threshold=self.threshold,
                components={k: float(v[i]) for k, v in self.components.items()},
                anomaly_map=None if self.maps is None else self.maps[i],
            )


class Detector(ABC):
    """Base class for detectors; subclass it in a plugin and register the class through the hook."""

    name: ClassVar[str]
    version: ClassVar[str] = "1.0"
    description: ClassVar[str] = ""
    modalities: ClassVar[tuple[str, ...]] = ("image", "series")
    components: ClassVar[tuple[str, ...]] = ("reconstruction", "discriminator")
    Params: ClassVar[type]
    default_weights: ClassVar[dict[str, float]] = {}

    def __init__(self, spec: Spec, params: Any = None, settings: FitSettings | None = None) -> None:
        if spec.modality not in self.modalities:
            raise DataError(
                f"detector {self.name!r} does not accept {spec.modality} input (accepts {', '.join(self.modalities)})"
            )
        self.spec = spec
        self.params = params if params is not None else self.Params()
        check_params(self.params, self.components)
        self.settings = settings or FitSettings()
        self.normaliser: Normaliser | None = None
        self.threshold: float | None = None
        self.training: dict[str, Any] = {}
        # The options it was trained with (``anomaly train`` fills it), so the run can be repeated from the folder.
        self.config: dict[str, Any] = {}
        self.map_scale: float | None = None
        self.planned_steps = 0
        self.score_batch_size = 256

    # ---- what a plugin implements -------------------------------------------------------------

    @abstractmethod
    def build(self) -> None:
        """Create the networks for ``self.spec.sample_shape``."""

    @abstractmethod
    def train_step(self, x: np.ndarray) -> dict[str, float]:
        """One optimisation step on a batch of normal samples; returns named losses for progress."""

    @abstractmethod
    def sample_components(self, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """Per-sample raw score components (higher = more anomalous) and residual maps (N, H, W) or None."""

    @abstractmethod
    def get_state(self) -> Any:
        """An in-memory copy of the learned state, so early stopping can restore the best epoch."""

    @abstractmethod
    def set_state(self, state: Any) -> None: ...

    @abstractmethod
    def save_state(self, directory: Path) -> None:
        """Write learned state as data only (weights files, NPZ without pickles) — never code."""

    @abstractmethod
    def load_state(self, directory: Path) -> None: ...

    def validation_loss(self, x: np.ndarray) -> float | None:
        """Loss on held-out normal samples for early stopping; None disables early stopping."""
        return None

    def seed(self, seed: int) -> None:
        """Seed every random generator the detector uses so a seeded run repeats exactly."""
        np.random.seed(seed)

    # ---- the contract users call ---------------------------------------------------------------

    def fit(
        self,
        train: Dataset,
        validation: Dataset | None = None,
        *,
        anomalies: Dataset | None = None,
        progress: bool = False,
    ) -> dict[str, Any]:
        """Learn from normal data only; calibrate normalisation and threshold on held-out normal data."""
        started = datetime.now(timezone.utc)
        clock = time.perf_counter()
        if self.settings.seed is not None:
            self.seed(self.settings.seed)
        if validation is None:
            train, validation = self._holdout(train)
        self.spec = fit_spec(self.spec, train)
        train_x = encode(self.spec, train).x
        val_samples = encode(self.spec, validation)
        if len(train_x) < 2:
            raise DataError("need at least two training samples after preprocessing")
        self.planned_steps = self.settings.epochs * self._steps_per_epoch(len(train_x))
        self.build()
        history = self._train(train_x, val_samples.x, progress)
        self._calibrate(val_samples, anomalies)
        self.training = {
            "started_at": started.isoformat(),
            "finished_at": datetime.now(timezone.utc).isoformat(),
            "seconds": round(time.perf_counter() - clock, 3),
            "train_items": len(train),
            "validation_items": len(validation),
            "train_samples": int(len(train_x)),
            "validation_samples": int(len(val_samples.x)),
            "epochs_run": len(history),
            "best_epoch": self._best_epoch,
            "history": history,
            "metrics": history[-1] if history else {},
        }
        return self.training

    def score(self, data: Dataset, *, maps: bool = True, stride: int | None = None) -> Scores:
        """Score items; each score is independent of what else is in the batch.

        A series is scored at every step (its window ending there) unless ``stride`` asks for
        every n-th: the training stride only thins out training windows.
        """
        self._require_fitted()
        return self._score(data, maps=maps, stride=stride, threshold=self.threshold)

    def score_windows(self, raw_windows: np.ndarray) -> Scores:
        """Score windows a caller has already cut, (N, window, channels) of raw readings; ids are positions.

        A stream keeps each source's recent readings itself and hands over one window per message;
        this scores them as they are instead of laying them end to end and cutting them again.
        """
        self._require_fitted()
        spec = self.spec
        if not isinstance(spec, SeriesSpec):
            raise DataError("this model scores images, but the input is series windows")
        if raw_windows.ndim != 3 or raw_windows.shape[1:] != (spec.window, spec.channels):
            raise DataError(f"expected windows shaped (N, {spec.window}, {spec.channels}), got {raw_windows.shape}")
        components, _ = self._components(standardise(spec, raw_windows), want_maps=False)
        return Scores(
            ids=[str(i) for i in range(len(raw_windows))],
            scores=self.normaliser.combine(components),
            components=components,
            threshold=self.threshold,
        )

    def _require_fitted(self) -> None:
        if self.normaliser is None or self.threshold is None:
            raise AnomalyError(f"detector {self.name!r} must be fitted or loaded before scoring")

    def _score(self, data: Dataset, *, maps: bool, stride: int | None, threshold: float) -> Scores:
        samples = encode(self.spec, data, stride or 1)
        components, raw_maps = self._components(samples.x, want_maps=maps and self.spec.modality == "image")
        combined = self.normaliser.combine(components)
        if isinstance(self.spec, ImageSpec) and self.spec.tile:
            how, k = self.spec.pool, self.spec.top_k
            item_scores = pool(combined, samples.owner, samples.count, how, k)
            item_components = {n: pool(v, samples.owner, samples.count, how, k) for n, v in components.items()}
        else:
            item_scores, item_components = combined, components
        if isinstance(self.spec, SeriesSpec):
            steps = np.asarray(samples.layout)
            ids = [data.ids[s] for s in steps]
        else:
            steps, ids = None, list(data.ids)
        item_maps = stitch_maps(self.spec, raw_maps, samples) if raw_maps is not None else None
        return Scores(
            ids=ids, scores=item_scores, components=item_components, threshold=threshold, maps=item_maps, steps=steps
        )

    def save(self, directory: Path | str) -> Path:
        if self.threshold is None:
            raise AnomalyError("only a fitted detector can be saved")
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        self.save_state(directory)
        (directory / MANIFEST).write_text(json.dumps(self.manifest(), indent=2, default=_json_default))
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> Detector:
        """Rebuild from the manifest and data-only state files; nothing in the folder is executed.

        Every manifest value is checked (types, known fields, bounds) before the networks are built,
        so a hand-edited, truncated or foreign manifest is one ArtifactError line, never a KeyError
        or TypeError from deep inside, nor networks too large for memory.
        """
        directory = Path(directory)
        manifest = read_manifest(directory)
        if manifest["detector"]["name"] != cls.name:
            raise ArtifactError(f"{directory}: holds a {manifest['detector']['name']!r} model, not {cls.name!r}")
        saved_major = str(manifest["detector"]["version"]).split(".")[0]
        if saved_major != cls.version.split(".")[0]:
            raise ArtifactError(
                f"{directory}: written by {cls.name} {manifest['detector']['version']}, "
                f"which this installed {cls.name} {cls.version} cannot read; retrain the model"
            )
        missing = [key for key in ("input", "params", "normalisation", "threshold") if key not in manifest]
        if missing:
            raise ArtifactError(f"{directory}: manifest lacks {', '.join(missing)}")
        try:
            detector = cls(spec_from_dict(manifest["input"]), params=cls._manifest_params(manifest["params"]))
            detector.normaliser = _manifest_normaliser(manifest["normalisation"])
            detector.threshold = _number("threshold", manifest["threshold"])
            training = manifest.get("training", {})
            if not isinstance(training, dict):
                raise ArtifactError(f"training must be a mapping, not {type(training).__name__}")
            detector.training = training
            map_scale = manifest.get("map_scale")
            detector.map_scale = None if map_scale is None else _number("map_scale", map_scale)
        except AnomalyError as exc:
            raise ArtifactError(f"{directory}: manifest {exc}") from None
        detector.build()
        detector.load_state(directory)
        return detector

    @classmethod
    def _manifest_params(cls, values: Any) -> Any:
        """The detector's Params from a manifest: unknown names and wrongly typed values are refused."""
        if not isinstance(values, dict):
            raise ArtifactError(f"params must be a mapping, not {type(values).__name__}")
        hints = typing.get_type_hints(cls.Params)
        known = {f.name for f in dataclasses.fields(cls.Params)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ArtifactError(
                f"params {', '.join(unknown)} are not {cls.name} parameters (it takes {', '.join(sorted(known))})"
            )
        for key, value in values.items():
            if not _fits(value, hints[key]):
                kind = getattr(hints[key], "__name__", hints[key])
                raise ArtifactError(f"params {key} = {value!r} is not of type {kind}")
        return cls.Params(**values)

    def manifest(self) -> dict[str, Any]:
        return {
            "format": ARTIFACT_FORMAT,
            "anomaly_version": __version__,
            "detector": {"name": self.name, "version": self.version, "components": list(self.components)},
            "input": spec_to_dict(self.spec),
            "params": dataclasses.asdict(self.params),
            "settings": dataclasses.asdict(self.settings),
            "normalisation": self.normaliser.to_dict() if self.normaliser else None,
            "threshold": self.threshold,
            "map_scale": self.map_scale,
            "training": self.training,
            "config": self.config,
            "libraries": library_versions(),
        }

    # ---- the pipeline ----------------------------------------------------------------------

    def _holdout(self, data: Dataset) -> tuple[Dataset, Dataset]:
        """Split off held-out normal data: whole images (never tiles of a training image), or the series' tail."""
        fraction = self.settings.holdout
        if not 0 < fraction < 1:
            raise AnomalyError(f"holdout must be between 0 and 1 (got {fraction})")
        if isinstance(data, SeriesSet):
            cut = int(len(data) * (1 - fraction))
            if isinstance(self.spec, SeriesSpec) and min(cut, len(data) - cut) < self.spec.window:
                raise DataError(
                    f"{data.name}: {len(data)} steps are too few for a window of {self.spec.window} "
                    f"with {fraction:.0%} held out for calibration"
                )
            return data.slice(0, cut), data.slice(cut, None)
        return holdout_images(data, fraction, self.settings.seed)

    def _batches(self, x: np.ndarray, rng: np.random.Generator) -> Iterator[np.ndarray]:
        """Every sample once per epoch, in batches of at most two sizes (no tiny last batch, few retraces)."""
        order = rng.permutation(len(x))
        for index in np.array_split(order, self._steps_per_epoch(len(x))):
            yield x[index]

    def _steps_per_epoch(self, count: int) -> int:
        return max(1, -(-count // self.settings.batch_size))

    def _train(self, train_x: np.ndarray, val_x: np.ndarray, progress: bool) -> list[dict[str, float]]:
        from anomaly.progress import TrainingProgress

        rng = np.random.default_rng(self.settings.seed)
        history: list[dict[str, float]] = []
        best_loss, best_state, stale = np.inf, None, 0
        self._best_epoch = None
        steps = self._steps_per_epoch(len(train_x))
        with TrainingProgress(self.name, self.settings.epochs, steps, enabled=progress) as bar:
            for epoch in range(1, self.settings.epochs + 1):
                sums: dict[str, float] = {}
                for n, batch in enumerate(self._batches(train_x, rng), start=1):
                    for key, value in self.train_step(batch).items():
                        sums[key] = sums.get(key, 0.0) + float(value)
                    bar.step({k: v / n for k, v in sums.items()})
                logs = {k: v / max(steps, 1) for k, v in sums.items()}
                val_loss = self.validation_loss(val_x)
                if val_loss is not None:
                    logs["val_loss"] = float(val_loss)
                _check_converging(epoch, logs)
                if val_loss is not None and val_loss < best_loss:
                    best_loss, best_state, stale, self._best_epoch = val_loss, self.get_state(), 0, epoch
                elif val_loss is not None:
                    stale += 1
                history.append({"epoch": epoch, **logs})
                bar.epoch_done(epoch, logs)
                if self.settings.patience is not None and stale >= self.settings.patience:
                    break
        if best_state is not None:
            self.set_state(best_state)
        return history

    def _components(self, x: np.ndarray, want_maps: bool) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        parts: dict[str, list[np.ndarray]] = {}
        maps = []
        for start in range(0, len(x), self.score_batch_size):
            comps, residual = self.sample_components(x[start : start + self.score_batch_size])
            for key, value in comps.items():
                parts.setdefault(key, []).append(np.asarray(value, dtype=np.float64))
            if want_maps and residual is not None:
                maps.append(np.asarray(residual, dtype=np.float32))
        components = {k: np.concatenate(v) for k, v in parts.items()}
        return components, (np.concatenate(maps) if maps else None)

    def _calibrate(self, val: Samples, anomalies: Dataset | None) -> None:
        components, maps = self._components(val.x, want_maps=self.spec.modality == "image")
        if maps is not None:
            # The residual a normal part rarely exceeds: anomaly-map pictures use it as full heat.
            self.map_scale = float(np.percentile(maps, 99.5))
        weights = self.default_weights or {k: 1.0 for k in components}
        weights = {**weights, **(getattr(self.params, "score_weights", None) or {})}
        self.normaliser = Normaliser.fit(components, weights)
        combined = self.normaliser.combine(components)
        if isinstance(self.spec, ImageSpec) and self.spec.tile:
            combined = pool(combined, val.owner, val.count, self.spec.pool, self.spec.top_k)
        anomalous = None
        if anomalies is not None:
            anomalous = self._score(anomalies, maps=False, stride=None, threshold=np.inf).scores
        if not np.isfinite(combined).all():
            raise TrainingDiverged(
                "training diverged: held-out scores are not finite (NaN or infinity); "
                "lower the learning rate (--set lr=...) or the loss weights, or check the data"
            )
        threshold = self.settings.calibration.threshold(combined, anomalous)
        if not finite(threshold):
            raise TrainingDiverged(f"training diverged: the calibrated threshold is {threshold!r}, not a finite number")
        self.threshold = threshold


class TrainingDiverged(AnomalyError):
    """Losses or scores became NaN or infinite: the model would flag nothing (or everything), so it is not kept."""


def _check_converging(epoch: int, logs: dict[str, float]) -> None:
    """Stop at the first epoch whose losses are not finite: training on cannot recover, and saving would mislead."""
    bad = sorted(key for key, value in logs.items() if not np.isfinite(value))
    if bad:
        raise TrainingDiverged(
            f"training diverged at epoch {epoch}: {', '.join(bad)} not finite (NaN or infinity); "
            "lower the learning rate (--set lr=...) or the loss weights; nothing was saved"
        )


def holdout_images(data: ImageSet, fraction: float, seed: int | None) -> tuple[ImageSet, ImageSet]:
    """(train, held out): whole images drawn by ``seed``, so no tile of a training image is ever held out."""
    if len(data) < 2:
        raise DataError("need at least two images: some are held out to calibrate the threshold")
    order = np.random.default_rng(seed).permutation(len(data))
    n_val = min(max(1, round(len(data) * fraction)), len(data) - 1)
    return data.subset(np.sort(order[n_val:])), data.subset(np.sort(order[:n_val]))


def read_manifest(directory: Path) -> dict[str, Any]:
    """The folder's manifest, refused unless it is a readable format-1 manifest that names its detector."""
    path = directory / MANIFEST
    if not directory.is_dir():
        raise ArtifactError(f"{directory}: no such model folder")
    if not path.is_file():
        raise ArtifactError(f"{directory}: not a model folder (no {MANIFEST})")
    size = state_file(directory, MANIFEST).stat().st_size
    if size > MAX_MANIFEST_BYTES:
        raise ArtifactError(f"{path}: {size} bytes, over the {MAX_MANIFEST_BYTES} a manifest may have")
    try:
        manifest = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError) as exc:
        raise ArtifactError(f"{path}: damaged manifest ({exc})") from None
    fmt = manifest.get("format") if isinstance(manifest, dict) else None
    if fmt != ARTIFACT_FORMAT:
        written_by = manifest.get("anomaly_version", "an unknown version") if isinstance(manifest, dict) else "?"
        raise ArtifactError(
            f"{directory}: model format {fmt!r} written by anomaly {written_by}; "
            f"this anomaly {__version__} reads format {ARTIFACT_FORMAT} — retrain or use a matching version"
        )
    detector = manifest.get("detector")
    if not (isinstance(detector, dict) and isinstance(detector.get("name"), str) and "version" in detector):
        raise ArtifactError(f"{path}: damaged manifest (no detector name and version)")
    return manifest


def state_file(directory: Path, name: str) -> Path:
    """A file of the model folder, refused unless it is a regular file inside the folder.

    Plugins open their state through this: a symlink (to a file outside the folder, say) or a
    fifo or device in its place would make loading read whatever it points at, or block forever.
    """
    path = directory / name
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        raise ArtifactError(f"{directory}: missing state file {name}") from None
    if stat.S_ISLNK(mode):
        raise ArtifactError(f"{path}: a symlink, not a file of the model folder; copy the file in instead")
    if not stat.S_ISREG(mode):
        raise ArtifactError(f"{path}: not a regular file")
    if not path.resolve().is_relative_to(directory.resolve()):
        raise ArtifactError(f"{path}: outside the model folder")
    return path


def failure_line(exc: BaseException) -> str:
    """Why a model would not load, on one line: the project's own message, else the exception's class too."""
    text = " ".join(str(exc).split())
    if isinstance(exc, AnomalyError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _manifest_normaliser(norm: Any) -> Normaliser:
    """The score normaliser a manifest holds, checked now: a malformed one would only fail at the first score."""
    parts = ("mean", "std", "weights")
    if not isinstance(norm, dict) or not all(isinstance(norm.get(part), dict) for part in parts):
        raise ArtifactError("normalisation must map mean, std and weights to per-component numbers")
    values = {part: {str(k): _number(f"normalisation {part} {k}", v) for k, v in norm[part].items()} for part in parts}
    unmatched = set(values["weights"]) - (set(values["mean"]) & set(values["std"]))
    if unmatched or min(values["std"].values(), default=1.0) <= 0:
        raise ArtifactError("normalisation needs a mean and a positive std for every weighted component")
    return Normaliser(**values)


def _number(name: str, value: Any) -> float:
    if finite(value):
        return float(value)
    raise ArtifactError(f"{name} must be a finite number, not {value!r}")


def _fits(value: Any, hint: Any) -> bool:
    """Whether a manifest value has the Params field's type (ints pass as floats, None only where optional)."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    for option in options:
        kind = typing.get_origin(option) or option
        if kind is type(None):
            fits = value is None
        elif kind in (int, float):
            fits = isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)
        elif kind in (str, bool, dict, list):
            fits = isinstance(value, kind)
        else:
            return True  # a type JSON has no counterpart for: the Params class checks it, if at all
        if fits:
            return True
    return False


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in ("numpy", "keras", "tensorflow", "tensorflow-cpu", "jax", "scikit-learn"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found


def _json_default(value: Any) -> Any:
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")
