"""The training and scoring engine every detector runs in: the same for a GAN and for a fit-once model.

A plugin only supplies the model math (``anomaly.detector.Detector``: build, a per-batch step
and/or a fit-once hook, score components, state). This module owns what must behave the same
for every detector, so that their figures can be compared: preprocessing from the input spec,
the held-out split (whole images, or the series' tail), the epoch loop with early stopping on
held-out normal data, score normalisation and threshold calibration on that held-out data,
pooling tiles into image scores, standardising image scores per mode of normal images
(``anomaly.modes``), and stitching anomaly maps.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import TYPE_CHECKING, Any

import numpy as np

from anomaly.artifact import DataSource, Training
from anomaly.data.images import ImageSet
from anomaly.data.series import SeriesSet
from anomaly.errors import AnomalyError, DataError
from anomaly.inputs import (
    ImageSpec,
    Samples,
    SeriesSpec,
    Spec,
    encode,
    finite,
    fit_spec,
    pool,
    standardise,
    stitch_maps,
)
from anomaly.modes import ImageModes, check_wanted
from anomaly.scores import Scores
from anomaly.threshold import Calibration, Normaliser

if TYPE_CHECKING:
    from anomaly.detector import Detector

Dataset = ImageSet | SeriesSet

# Seconds between updates of the progress bar's running losses: each update copies the losses to
# the host, which makes a backend that runs steps asynchronously (JAX on a GPU) wait for the step.
PROGRESS_REFRESH_S = 0.5


@dataclass
class FitSettings:
    """Training settings shared by every detector (detector-specific ones live in its Params)."""

    epochs: int = 15
    batch_size: int = 64
    seed: int | None = 0
    holdout: float = 0.2
    patience: int | None = 5
    calibration: Calibration = field(default_factory=Calibration)
    # "mixed": Keras networks train in bfloat16 (anomaly.keras.precision); scoring stays float32.
    precision: str = "float32"
    # Modes of normal images to calibrate scores per (anomaly.modes): "1" (none), a count, or "auto".
    modes: str = "auto"


class TrainingDiverged(AnomalyError):
    """Losses or scores became NaN or infinite: the model would flag nothing (or everything), so it is not kept."""


def fit(
    detector: Detector,
    train: Dataset,
    validation: Dataset | None,
    anomalies: Dataset | None,
    progress: bool,
    source: str | None,
) -> None:
    """Train on normal data only, then fix normalisation, threshold and map scale on held-out normal data."""
    started = datetime.now(timezone.utc)
    clock = time.perf_counter()
    settings = detector.settings
    if settings.seed is not None:
        detector.seed(settings.seed)
    given = train
    if validation is None:
        train, validation = holdout(detector, train)
    if detector.spec is None:
        raise AnomalyError(f"detector {detector.name!r} has no input spec: prepare it before fitting")
    spec = detector.spec = fit_spec(detector.spec, train)
    train_x = encode(spec, train).x
    val_samples = encode(spec, validation)
    if len(train_x) < 2:
        raise DataError("need at least two training samples after preprocessing")
    detector.planned_steps = settings.epochs * steps_per_epoch(len(train_x), settings.batch_size)
    runtime = _runtime(detector)
    detector.image_modes = _image_modes(detector, train)
    history, best_epoch = _build_and_train(detector, runtime, train_x, val_samples.x, progress)
    _calibrate(detector, spec, val_samples, validation, anomalies)
    detector.training = Training(
        started_at=started,
        finished_at=datetime.now(timezone.utc),
        seconds=round(time.perf_counter() - clock, 3),
        train_items=len(train),
        validation_items=len(validation),
        train_samples=int(len(train_x)),
        validation_samples=int(len(val_samples.x)),
        epochs_run=len(history),
        best_epoch=best_epoch,
        history=history,
        metrics=history[-1] if history else {},
        data=DataSource(
            source=source,
            items=len(given),
            # Images are items evaluation must leave out; a series' steps are not identified across files.
            trained_ids=list(given.ids) if isinstance(given, ImageSet) else [],
        ),
        **runtime,
    )


def _image_modes(detector: Detector, train: Dataset) -> ImageModes | None:
    """Modes of the normal training images (``FitSettings.modes``; anomaly.modes); series have none."""
    wanted = detector.settings.modes
    if isinstance(train, SeriesSet):
        if check_wanted(wanted) not in ("1", "auto"):
            raise AnomalyError(f"modes={wanted} clusters normal images; a series model takes modes=1 or auto")
        return None
    return ImageModes.cluster(train.images, wanted, detector.settings.seed)  # checks ``wanted`` itself


def _runtime(detector: Detector) -> dict[str, str]:
    """Backend, device and dtype policy a Keras detector trains with; nothing for one without Keras networks.

    Read before training and kept in the manifest, which says what trained the model and where.
    """
    from anomaly.keras.detector import KerasDetector

    precision = detector.settings.precision
    if not isinstance(detector, KerasDetector):
        if precision != "float32":
            raise AnomalyError(
                f"precision {precision!r} is for detectors with Keras networks; {detector.name} has none"
            )
        return {}
    from anomaly.keras import backend
    from anomaly.keras.precision import policy

    return {"backend": backend.current(), "device": backend.device(), "precision": policy(precision)}


def _build_and_train(
    detector: Detector, runtime: dict[str, str], train_x: np.ndarray, val_x: np.ndarray, progress: bool
) -> tuple[list[dict[str, float]], int | None]:
    """Build the networks and train them; under a mixed policy, end with float32 networks holding the weights.

    Calibration and every later scoring then run in float32, as a loaded model does.
    """
    mixed = runtime.get("precision", "float32")
    if mixed == "float32":
        detector.build()
        return _train(detector, train_x, val_x, progress)
    from anomaly.keras.precision import global_policy

    with global_policy(mixed):
        detector.build()
        trained = _train(detector, train_x, val_x, progress)
    state = detector.get_state()
    detector.build()
    detector.set_state(state)
    return trained


def holdout(detector: Detector, data: Dataset) -> tuple[Dataset, Dataset]:
    """Split off held-out normal data: whole images (never tiles of a training image), or the series' tail."""
    fraction = detector.settings.holdout
    if not 0 < fraction < 1:
        raise AnomalyError(f"holdout must be between 0 and 1 (got {fraction})")
    if isinstance(data, SeriesSet):
        cut = int(len(data) * (1 - fraction))
        if isinstance(detector.spec, SeriesSpec) and min(cut, len(data) - cut) < detector.spec.window:
            raise DataError(
                f"{data.name}: {len(data)} steps are too few for a window of {detector.spec.window} "
                f"with {fraction:.0%} held out for calibration"
            )
        return data.slice(0, cut), data.slice(cut, None)
    return holdout_images(data, fraction, detector.settings.seed)


def holdout_images(data: ImageSet, fraction: float, seed: int | None) -> tuple[ImageSet, ImageSet]:
    """(train, held out): whole images drawn by ``seed``, so no tile of a training image is ever held out."""
    if len(data) < 2:
        raise DataError("need at least two images: some are held out to calibrate the threshold")
    order = np.random.default_rng(seed).permutation(len(data))
    n_val = min(max(1, round(len(data) * fraction)), len(data) - 1)
    return data.subset(np.sort(order[n_val:])), data.subset(np.sort(order[:n_val]))


def steps_per_epoch(count: int, batch_size: int) -> int:
    return max(1, -(-count // batch_size))


def _batches(x: np.ndarray, rng: np.random.Generator, batch_size: int) -> Iterator[np.ndarray]:
    """Every sample once per epoch, in batches of at most two sizes (no tiny last batch, few retraces)."""
    order = rng.permutation(len(x))
    for index in np.array_split(order, steps_per_epoch(len(x), batch_size)):
        yield x[index]


def _train(
    detector: Detector, train_x: np.ndarray, val_x: np.ndarray, progress: bool
) -> tuple[list[dict[str, float]], int | None]:
    """Epochs of ``train_step`` with early stopping, then ``fit_once``: (history, best epoch)."""
    history: list[dict[str, float]] = []
    best_epoch = None
    if detector.trains_per_batch:
        history, best_epoch = _epochs(detector, train_x, val_x, progress)
    if detector.fits_once:
        logs = {k: float(v) for k, v in (detector.fit_once(train_x) or {}).items()}
        if history:
            # A step after the last epoch (a memory bank of the trained networks), not an epoch of its own.
            _check_converging(len(history), logs)
            history[-1].update(logs)
            return history, best_epoch
        val_loss = detector.validation_loss(val_x)
        if val_loss is not None:
            logs["val_loss"] = float(val_loss)
        _check_converging(1, logs)
        history.append({"epoch": 1, **logs})
    return history, best_epoch


def _epochs(
    detector: Detector, train_x: np.ndarray, val_x: np.ndarray, progress: bool
) -> tuple[list[dict[str, float]], int | None]:
    from anomaly.progress import TrainingProgress

    settings = detector.settings
    rng = np.random.default_rng(settings.seed)
    history: list[dict[str, float]] = []
    best_loss, best_state, best_epoch, stale = np.inf, None, None, 0
    steps = steps_per_epoch(len(train_x), settings.batch_size)
    with TrainingProgress(detector.name, settings.epochs, steps, enabled=progress) as bar:
        for epoch in range(1, settings.epochs + 1):
            sums: dict[str, Any] = {}
            shown = time.monotonic()
            for n, batch in enumerate(_batches(train_x, rng, settings.batch_size), start=1):
                for key, value in detector.train_step(batch).items():
                    sums[key] = sums.get(key, 0.0) + value
                if bar.enabled and time.monotonic() - shown >= PROGRESS_REFRESH_S:
                    bar.step(n, {k: float(v) / n for k, v in sums.items()})
                    shown = time.monotonic()
            logs = {k: float(v) / max(steps, 1) for k, v in sums.items()}
            val_loss = detector.validation_loss(val_x)
            if val_loss is not None:
                logs["val_loss"] = float(val_loss)
            _check_converging(epoch, logs)
            if val_loss is not None and val_loss < best_loss:
                best_loss, best_state, stale, best_epoch = val_loss, detector.get_state(), 0, epoch
            elif val_loss is not None:
                stale += 1
            history.append({"epoch": epoch, **logs})
            bar.epoch_done(epoch, logs)
            if settings.patience is not None and stale >= settings.patience:
                break
    if best_state is not None:
        detector.set_state(best_state)
    return history, best_epoch


def _check_converging(epoch: int, logs: dict[str, float]) -> None:
    """Stop at the first epoch whose losses are not finite: training on cannot recover, and saving would mislead."""
    bad = sorted(key for key, value in logs.items() if not np.isfinite(value))
    if bad:
        raise TrainingDiverged(
            f"training diverged at epoch {epoch}: {', '.join(bad)} not finite (NaN or infinity); "
            "lower the learning rate (--set lr=...) or the loss weights; nothing was saved"
        )


def components(detector: Detector, x: np.ndarray, want_maps: bool) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
    """Raw score components of samples, computed in batches; checked against what the detector declares."""
    parts: dict[str, list[np.ndarray]] = {}
    maps = []
    for start in range(0, len(x), detector.score_batch_size):
        batch = x[start : start + detector.score_batch_size]
        comps, residual = detector.sample_components(batch)
        _check_components(detector, comps, len(batch))
        for key, value in comps.items():
            parts.setdefault(key, []).append(np.asarray(value, dtype=np.float64))
        if want_maps and residual is not None:
            maps.append(np.asarray(residual, dtype=np.float32))
    return {k: np.concatenate(v) for k, v in parts.items()}, (np.concatenate(maps) if maps else None)


def _check_components(detector: Detector, comps: dict[str, Any], count: int) -> None:
    """A plugin's components must be the ones it declares, one value per sample: else scores would be misread."""
    if set(comps) != set(detector.components):
        raise AnomalyError(
            f"detector {detector.name!r} returned components {sorted(comps)} but declares "
            f"{sorted(detector.components)}; sample_components must return exactly the declared names"
        )
    for key, value in comps.items():
        if np.shape(value) != (count,):
            raise AnomalyError(
                f"detector {detector.name!r}: component {key!r} has shape {np.shape(value)} for a batch of "
                f"{count}; sample_components must return one value per sample"
            )


def _calibrate(detector: Detector, spec: Spec, val: Samples, validation: Dataset, anomalies: Dataset | None) -> None:
    comps, maps = components(detector, val.x, want_maps=spec.modality == "image")
    if maps is not None:
        # The residual a normal part rarely exceeds: anomaly-map pictures use it as full heat.
        detector.map_scale = float(np.percentile(maps, 99.5))
    weights = detector.default_weights or {k: 1.0 for k in comps}
    weights = {**weights, **(getattr(detector.params, "score_weights", None) or {})}
    detector.normaliser = Normaliser.fit(comps, weights)
    combined = _items(spec, detector.normaliser.combine(comps), val)
    if detector.image_modes is not None and isinstance(validation, ImageSet):
        modes = detector.image_modes.assign(validation.images)
        detector.image_modes.calibrate(combined, modes)
        combined = detector.image_modes.cross_fitted(combined, modes, detector.settings.seed)
    anomalous = None
    if anomalies is not None:
        anomalous = score(detector, anomalies, maps=False, stride=None, threshold=np.inf).scores
    if not np.isfinite(combined).all():
        raise TrainingDiverged(
            "training diverged: held-out scores are not finite (NaN or infinity); "
            "lower the learning rate (--set lr=...) or the loss weights, or check the data"
        )
    threshold = detector.settings.calibration.threshold(combined, anomalous)
    if not finite(threshold):
        raise TrainingDiverged(f"training diverged: the calibrated threshold is {threshold!r}, not a finite number")
    detector.threshold = threshold


def score(detector: Detector, data: Dataset, *, maps: bool, stride: int | None, threshold: float) -> Scores:
    """Per-item scores: tiles pooled into their image, a series scored at each window's last step."""
    spec, normaliser = _fitted(detector)
    samples = encode(spec, data, stride or 1)
    comps, raw_maps = components(detector, samples.x, want_maps=maps and isinstance(spec, ImageSpec))
    item_scores = _items(spec, normaliser.combine(comps), samples)
    if detector.image_modes is not None and isinstance(data, ImageSet):
        item_scores = detector.image_modes.apply(item_scores, detector.image_modes.assign(data.images))
    item_components = {n: _items(spec, v, samples) for n, v in comps.items()}
    if isinstance(spec, SeriesSpec):
        steps = np.asarray(samples.layout)
        ids = [data.ids[s] for s in steps]
    else:
        steps, ids = None, list(data.ids)
    item_maps = stitch_maps(spec, raw_maps, samples) if raw_maps is not None and isinstance(spec, ImageSpec) else None
    return Scores(
        ids=ids, scores=item_scores, components=item_components, threshold=threshold, maps=item_maps, steps=steps
    )


def score_windows(detector: Detector, raw_windows: np.ndarray, *, threshold: float) -> Scores:
    """Windows a caller has already cut, (N, window, channels) of raw readings; ids are positions."""
    spec, normaliser = _fitted(detector)
    if not isinstance(spec, SeriesSpec):
        raise DataError("this model scores images, but the input is series windows")
    if raw_windows.ndim != 3 or raw_windows.shape[1:] != (spec.window, spec.channels):
        raise DataError(f"expected windows shaped (N, {spec.window}, {spec.channels}), got {raw_windows.shape}")
    comps, _ = components(detector, standardise(spec, raw_windows), want_maps=False)
    return Scores(
        ids=[str(i) for i in range(len(raw_windows))],
        scores=normaliser.combine(comps),
        components=comps,
        threshold=threshold,
    )


def _items(spec: Spec, values: np.ndarray, samples: Samples) -> np.ndarray:
    """One value per item: tiles pooled into their image; a whole image or a window is its own item."""
    if isinstance(spec, ImageSpec) and spec.tile:
        return pool(values, samples.owner, samples.count, spec.pool, spec.top_k)
    return values


def _fitted(detector: Detector) -> tuple[Spec, Normaliser]:
    """What scoring needs: fit sets the spec, then the normaliser in calibration; load reads both."""
    if detector.spec is None or detector.normaliser is None:
        raise AnomalyError(f"detector {detector.name!r} must be fitted or loaded before scoring")
    return detector.spec, detector.normaliser


def reconstruction(detector: Detector, image: np.ndarray) -> np.ndarray | None:
    """The detector's reconstruction of one (H, W, C) uint8 image as a uint8 picture of the same height and
    width, in the model's channels; None for a detector without ``sample_reconstructions``.

    What is shown is the network's view: the image resized (to the square, or to the scale tiles are
    cut at), tiles' reconstructions averaged where they overlap, then resized back to the image's size.
    Scaling to [-1, 1] is undone exactly. Per-image standardisation is not invertible from the
    reconstruction (the image's own lighting was removed before the network saw it), so a standardised
    model's view is drawn at mid-grey, three standard deviations to either end of the range.
    """
    spec, _ = _fitted(detector)
    if not detector.draws_reconstructions():
        return None
    if not isinstance(spec, ImageSpec):
        raise DataError("reconstructions are drawn for images; this model scores series")
    samples = encode(spec, ImageSet(ids=["image"], images=[image]))
    parts = []
    for start in range(0, len(samples.x), detector.score_batch_size):
        batch = samples.x[start : start + detector.score_batch_size]
        out = np.asarray(detector.sample_reconstructions(batch), dtype=np.float32)
        if out.shape != batch.shape:
            raise AnomalyError(
                f"detector {detector.name!r}: sample_reconstructions returned shape {out.shape} for a batch of shape "
                f"{batch.shape}; it must return the shape of its input"
            )
        parts.append(out)
    view = np.concatenate(parts)
    pixels = 127.5 + view * (127.5 / 3 if spec.standardize else 127.5)
    channels = [stitch_maps(spec, pixels[..., c], samples)[0] for c in range(spec.channels)]
    return np.clip(np.rint(np.stack(channels, axis=-1)), 0, 255).astype(np.uint8)
