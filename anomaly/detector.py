"""The detector contract: what a plugin implements, and the calls its users make.

A plugin subclasses ``Detector`` and supplies only the model math: ``build`` the networks (or
estimator) for the input's sample shape, learn from batches (``train_step``) and/or from all
training samples at once (``fit_once``), return per-sample score ``components``, and keep its
learned state as data-only files. Everything that must be the same for every detector (split,
epochs, early stopping, normalisation, calibration, pooling, maps) runs in ``anomaly.harness``;
the model folder's manifest is ``anomaly.artifact.Manifest``.

Users call ``fit``, ``score``, ``save`` and ``load``, or PyOD's ``fit(X)``,
``decision_function(X)`` and ``predict(X)`` on plain arrays.
"""

from __future__ import annotations

import dataclasses
import platform
from abc import ABC, abstractmethod
from pathlib import Path
from typing import Any, ClassVar

import numpy as np

from anomaly import harness
from anomaly.artifact import DetectorRef, Manifest, ModeFigures, Normalisation, Training
from anomaly.data.images import ImageSet
from anomaly.data.series import SeriesSet, from_array
from anomaly.errors import AnomalyError, ArtifactError, DataError
from anomaly.harness import FitSettings
from anomaly.inputs import ImageSpec, SeriesSpec, Spec, spec_to_dict
from anomaly.modes import ImageModes
from anomaly.params import check_params, params_from_mapping
from anomaly.scores import Scores
from anomaly.threshold import Normaliser

Dataset = ImageSet | SeriesSet


class Detector(ABC):
    """Base class for detectors; subclass it in a plugin and register the class through the hook.

    ``components`` names the parts of the score, in the plugin's own words (``("isolation",)``,
    ``("latent", "reconstruction", "discriminator")``): ``sample_components`` returns exactly
    those, one value per sample, higher meaning more anomalous. ``version``'s major part is the
    compatibility key: a folder written by another major version is refused on load.
    """

    name: ClassVar[str]
    version: ClassVar[str] = "1.0"
    description: ClassVar[str] = ""
    modalities: ClassVar[tuple[str, ...]] = ("image", "series")
    components: ClassVar[tuple[str, ...]]
    Params: ClassVar[type]
    default_weights: ClassVar[dict[str, float]] = {}

    def __init__(self, spec: Spec | None = None, params: Any = None, settings: FitSettings | None = None) -> None:
        self.params = params if params is not None else self.Params()
        check_params(self.params, self.components)
        self.settings = settings or FitSettings()
        self.spec: Spec | None = None
        if spec is not None:
            self.prepare(spec)
        self.normaliser: Normaliser | None = None
        self.threshold: float | None = None
        self.training: Training | None = None
        # The options it was trained with (``anomaly train`` fills it), so the run can be repeated from the folder.
        self.config: dict[str, Any] = {}
        self.map_scale: float | None = None
        # Modes of normal images and their held-out score figures, when asked for and found (anomaly.modes).
        self.image_modes: ImageModes | None = None
        # The input plan ``anomaly train`` chose from the images (anomaly.plan), recorded in the manifest.
        self.plan: dict[str, Any] | None = None
        self.planned_steps = 0
        self.score_batch_size = 256

    # ---- what a plugin implements -------------------------------------------------------------

    def prepare(self, spec: Spec) -> None:
        """Take the input spec (at construction, or from the data at the first fit), before anything is built.

        Override to refuse what cannot be built or to fill spec-dependent defaults; call super().
        """
        if spec.modality not in self.modalities:
            raise DataError(
                f"detector {self.name!r} does not accept {spec.modality} input (accepts {', '.join(self.modalities)})"
            )
        self.spec = spec

    @abstractmethod
    def build(self) -> None:
        """Create the networks for ``self.spec.sample_shape``: (H, W, C) tiles or images, (window, channels)."""

    def train_step(self, x: np.ndarray) -> dict[str, Any]:
        """One optimisation step on a batch (B, *sample_shape) of normal samples; named losses for progress.

        The losses are floats or scalars ``float()`` takes (a backend's device scalars: converting
        them waits for the step, so the harness does it only when it reports). Implement this,
        ``fit_once``, or both (epochs of steps first, then ``fit_once``).
        """
        raise NotImplementedError

    def fit_once(self, x: np.ndarray) -> dict[str, float] | None:
        """Learn from all training samples (N, *sample_shape) in one call, after any epochs of ``train_step``."""
        raise NotImplementedError

    @abstractmethod
    def sample_components(self, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        """Raw score components for a batch (B, *sample_shape): ``{name: (B,)}``, higher = more anomalous,
        and residual maps (B, H, W) for images, or None."""

    def sample_reconstructions(self, x: np.ndarray) -> np.ndarray:
        """Optional: what the networks make of a batch (B, *sample_shape), the same shape and scale as ``x``.

        Implement it where the model draws a reconstruction (an autoencoder's output, GANomaly's
        G(x)) so a reviewer can see what the model expected beside what came; a detector without
        one leaves it out and ``harness.reconstruction`` gives None.
        """
        raise NotImplementedError

    @classmethod
    def draws_reconstructions(cls) -> bool:
        """Whether the class implements ``sample_reconstructions``: known without loading a model."""
        return cls.sample_reconstructions is not Detector.sample_reconstructions

    def get_state(self) -> Any:
        """An in-memory copy of the learned state, so early stopping can restore the best epoch."""
        return None

    def set_state(self, state: Any) -> None:
        """Restore what ``get_state`` returned; the default ``get_state`` returns None, which needs nothing."""
        if state is not None:
            raise NotImplementedError(f"{self.name} returns a state from get_state but does not implement set_state")

    @abstractmethod
    def save_state(self, directory: Path) -> None:
        """Write learned state as data only (weights files, NPZ without pickles): never code."""

    @abstractmethod
    def load_state(self, directory: Path) -> None:
        """Read what ``save_state`` wrote, opening each file through ``anomaly.artifact.state_file``."""

    def validation_loss(self, x: np.ndarray) -> float | None:
        """Loss on held-out normal samples (N, *sample_shape) for early stopping; None disables it."""
        return None

    def seed(self, seed: int) -> None:
        """Seed every random generator the detector uses so a seeded run repeats exactly."""
        np.random.seed(seed)

    @property
    def trains_per_batch(self) -> bool:
        return type(self).train_step is not Detector.train_step

    @property
    def fits_once(self) -> bool:
        return type(self).fit_once is not Detector.fit_once

    # ---- the calls users make --------------------------------------------------------------

    def fit(
        self,
        train: Dataset | np.ndarray,
        validation: Dataset | np.ndarray | None = None,
        *,
        anomalies: Dataset | np.ndarray | None = None,
        progress: bool = False,
        source: str | None = None,
    ) -> Detector:
        """Learn from normal data only; calibrate normalisation and threshold on held-out normal data.

        ``train`` is a dataset, or an array: (N, H, W) or (N, H, W, C) uint8 images, or a
        (time, channels) series. ``source`` (a folder or file) is recorded in the manifest.
        """
        if not (self.trains_per_batch or self.fits_once):
            raise AnomalyError(f"detector {self.name!r} implements neither train_step nor fit_once")
        train = as_dataset(train)
        if self.spec is None:
            self.prepare(ImageSpec() if isinstance(train, ImageSet) else SeriesSpec())
        harness.fit(
            self,
            train,
            None if validation is None else as_dataset(validation),
            None if anomalies is None else as_dataset(anomalies),
            progress,
            source,
        )
        return self

    def score(self, data: Dataset | np.ndarray, *, maps: bool = True, stride: int | None = None) -> Scores:
        """Score items; each score is independent of what else is in the batch.

        A series is scored at every step (its window ending there) unless ``stride`` asks for
        every n-th: the training stride only thins out training windows.
        """
        return harness.score(self, as_dataset(data), maps=maps, stride=stride, threshold=self._fitted_threshold())

    def decision_function(self, x: Dataset | np.ndarray) -> np.ndarray:
        """Anomaly scores, PyOD's way: one per image, or one per series step that ends a full window."""
        return self.score(x, maps=False).scores

    def predict(self, x: Dataset | np.ndarray) -> np.ndarray:
        """1 where the score is over the calibrated threshold, else 0 (PyOD's labels)."""
        return self.score(x, maps=False).is_anomaly.astype(int)

    def score_windows(self, raw_windows: np.ndarray) -> Scores:
        """Score windows a caller has already cut, (N, window, channels) of raw readings; ids are positions.

        A stream keeps each source's recent readings itself and hands over one window per message;
        this scores them as they are instead of laying them end to end and cutting them again.
        """
        return harness.score_windows(self, raw_windows, threshold=self._fitted_threshold())

    def _fitted_threshold(self) -> float:
        """The calibrated threshold; a detector that was neither fitted nor loaded has none and cannot score."""
        if self.normaliser is None or self.threshold is None:
            raise AnomalyError(f"detector {self.name!r} must be fitted or loaded before scoring")
        return self.threshold

    def manifest(self) -> Manifest:
        if self.threshold is None or self.normaliser is None or self.training is None or self.spec is None:
            raise AnomalyError("only a fitted detector has a manifest")
        return Manifest(
            detector=DetectorRef(name=self.name, version=self.version, components=list(self.components)),
            input=spec_to_dict(self.spec),
            params=dataclasses.asdict(self.params),
            settings=dataclasses.asdict(self.settings),
            normalisation=Normalisation.of(self.normaliser),
            threshold=self.threshold,
            map_scale=self.map_scale,
            modes=None if self.image_modes is None else ModeFigures.of(self.image_modes),
            training=self.training,
            config=self.config,
            plan=self.plan,
            libraries=library_versions(),
        )

    def save(self, directory: Path | str) -> Path:
        if self.threshold is None:
            raise AnomalyError("only a fitted detector can be saved")
        directory = Path(directory)
        manifest = self.manifest()
        directory.mkdir(parents=True, exist_ok=True)
        self.save_state(directory)
        manifest.write(directory)
        return directory

    @classmethod
    def load(cls, directory: Path | str) -> Detector:
        """Rebuild from the manifest and data-only state files; nothing in the folder is executed.

        Every manifest value is checked (types, known fields, bounds) before the networks are built,
        so a hand-edited, truncated or foreign manifest is one ArtifactError line, never a KeyError
        or TypeError from deep inside, nor networks too large for memory.
        """
        directory = Path(directory)
        manifest = Manifest.read(directory)
        ref = manifest.detector
        if ref.name != cls.name:
            raise ArtifactError(f"{directory}: holds a {ref.name!r} model, not {cls.name!r}")
        if ref.version.split(".")[0] != cls.version.split(".")[0]:
            raise ArtifactError(
                f"{directory}: written by {cls.name} {ref.version}, "
                f"which this installed {cls.name} {cls.version} cannot read; retrain the model"
            )
        try:
            detector = cls(manifest.spec, params=params_from_mapping(cls.Params, manifest.params, cls.name))
        except AnomalyError as exc:
            raise ArtifactError(f"{directory}: manifest {exc}") from None
        if ref.components and sorted(ref.components) != sorted(detector.components):
            raise ArtifactError(
                f"{directory}: the model scores {', '.join(ref.components)}, but the installed {cls.name} "
                f"{cls.version} scores {', '.join(detector.components)}; retrain the model"
            )
        unknown = set(manifest.normalisation.weights) - set(detector.components)
        if unknown:
            raise ArtifactError(
                f"{directory}: manifest weights components {', '.join(sorted(unknown))} it does not have"
            )
        detector.normaliser = manifest.normalisation.normaliser()
        detector.threshold = manifest.threshold
        detector.training = manifest.training
        detector.map_scale = manifest.map_scale
        detector.image_modes = None if manifest.modes is None else manifest.modes.image_modes()
        detector.config = manifest.config
        detector.plan = manifest.plan
        detector.build()
        detector.load_state(directory)
        return detector


def as_dataset(data: Dataset | np.ndarray) -> Dataset:
    """A dataset from an array the way PyOD users hold data: images (N, H, W[, C]) uint8, or a (time, channels) series."""
    if isinstance(data, (ImageSet, SeriesSet)):
        return data
    array = np.asarray(data)
    if array.ndim <= 2:
        return from_array(array, "array")
    if array.ndim == 3:
        array = array[..., None]
    if array.ndim != 4 or array.shape[-1] not in (1, 3):
        raise DataError(f"expected images shaped (N, H, W) or (N, H, W, 1 or 3), got {array.shape}")
    if array.dtype != np.uint8:
        raise DataError(f"images must be uint8 (0-255), not {array.dtype}")
    return ImageSet(ids=[str(i) for i in range(len(array))], images=list(array))


def library_versions() -> dict[str, str]:
    from importlib.metadata import PackageNotFoundError, version

    found = {"python": platform.python_version()}
    for name in ("numpy", "keras", "tensorflow", "tensorflow-cpu", "jax", "scikit-learn"):
        try:
            found[name] = version(name)
        except PackageNotFoundError:
            continue
    return found
