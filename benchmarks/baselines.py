"""Reference detectors the GAN detectors are measured against, run through the same Detector pipeline.

Each baseline subclasses ``anomaly.detector.Detector`` so it sees exactly what a GAN detector sees:
the same held-out split, tiles or windows, per-image pooling, score normalisation and threshold
calibration. Only the learning part differs, which is the point of a baseline. They live here, not
in ``plugins/``: they are yardsticks, not products, so they are never saved as model folders.

The scikit-learn baselines learn in one pass over all training samples through ``fit_once``. The
autoencoder receives the whole training set per epoch (``FitSettings(batch_size=FULL_BATCH)``) and
runs one ``keras fit`` epoch over it, so its early stopping on held-out normal data is the
harness's, like the GANs'.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anomaly import harness
from anomaly.detector import Detector
from anomaly.errors import AnomalyError
from anomaly.keras.detector import KerasDetector

FULL_BATCH = 2**31 - 1


class _SklearnBaseline(Detector):
    """A scikit-learn model on flattened samples; state is the fitted estimator itself."""

    def build(self) -> None:
        self.estimator: Any = None

    def get_state(self) -> Any:
        return self.estimator

    def set_state(self, state: Any) -> None:
        self.estimator = state

    def save_state(self, directory: Path) -> None:
        raise AnomalyError(f"{self.name} is a benchmark baseline and is not saved as a model folder")

    def load_state(self, directory: Path) -> None:
        raise AnomalyError(f"{self.name} is a benchmark baseline and is not loaded from a model folder")

    @staticmethod
    def flat(x: np.ndarray) -> np.ndarray:
        return x.reshape(len(x), -1)


@dataclass
class IsolationForestParams:
    trees: int = 100
    max_samples: int = 256


class IsolationForestBaseline(_SklearnBaseline):
    """Isolation forest (Liu et al., 2008) on raw pixels/window values: no learned features at all."""

    name = "iforest"
    description = "scikit-learn IsolationForest on flattened samples"
    components = ("isolation",)
    Params = IsolationForestParams

    def fit_once(self, x: np.ndarray) -> dict[str, float]:
        from sklearn.ensemble import IsolationForest

        self.estimator = IsolationForest(
            n_estimators=self.params.trees,
            max_samples=min(self.params.max_samples, len(x)),
            random_state=self.settings.seed,
        ).fit(self.flat(x))
        return {}

    def sample_components(self, x: np.ndarray) -> tuple[dict[str, np.ndarray], None]:
        return {"isolation": -self.estimator.score_samples(self.flat(x))}, None


@dataclass
class PCAParams:
    variance: float = 0.95


class PCABaseline(_SklearnBaseline):
    """Linear reconstruction: residual after projecting onto the components explaining ``variance`` of normal data."""

    name = "pca"
    description = "scikit-learn PCA reconstruction error on flattened samples"
    components = ("reconstruction",)
    Params = PCAParams

    def fit_once(self, x: np.ndarray) -> dict[str, float]:
        from sklearn.decomposition import PCA

        self.estimator = PCA(n_components=self.params.variance, svd_solver="full").fit(self.flat(x))
        return {"components": float(self.estimator.n_components_)}

    def sample_components(self, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        flat = self.flat(x)
        residual = np.abs(flat - self.estimator.inverse_transform(self.estimator.transform(flat))).reshape(x.shape)
        maps = residual.mean(axis=-1) if x.ndim == 4 else None
        return {"reconstruction": residual.reshape(len(x), -1).mean(axis=1)}, maps


@dataclass
class AutoencoderParams:
    latent: int = 100
    width: int | None = None
    network: str = "dense"
    lr: float = 2e-4
    batch_size: int = 64


class AutoencoderBaseline(KerasDetector):
    """GANomaly's generator without the GAN: the same encoder and decoder, trained on L1 reconstruction only.

    If GANomaly does not beat this, its adversarial and latent losses are not earning their cost.
    """

    name = "autoencoder"
    description = "encoder+decoder from anomaly.keras.networks (GANomaly's generator size), L1 loss, keras fit"
    components = ("reconstruction",)
    Params = AutoencoderParams

    def build(self) -> None:
        import keras

        from anomaly.keras.networks import decoder, encoder

        p = self.params
        shape = self.spec.sample_shape
        bounded = self.spec.modality == "image" and not self.spec.standardize
        enc = encoder(shape, p.latent, p.width, p.network, "encoder")
        dec = decoder(shape, p.latent, p.width, p.network, bounded, "decoder")
        self.autoencoder = keras.Model(enc.input, dec(enc.output), name="autoencoder")
        self.autoencoder.compile(optimizer=keras.optimizers.Adam(p.lr, beta_1=0.5), loss="mae")
        self.networks = {"encoder": enc, "decoder": dec}

    def train_step(self, x: np.ndarray) -> dict[str, float]:
        history = self.autoencoder.fit(x, x, batch_size=self.params.batch_size, epochs=1, shuffle=True, verbose=0)
        return {"loss": float(history.history["loss"][-1])}

    def _residual(self, x: np.ndarray) -> np.ndarray:
        return np.abs(x - self.autoencoder.predict_on_batch(x))

    def sample_components(self, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        residual = self._residual(x)
        maps = residual.mean(axis=-1) if x.ndim == 4 else None
        return {"reconstruction": residual.reshape(len(x), -1).mean(axis=1)}, maps

    def validation_loss(self, x: np.ndarray) -> float:
        """Held-out L1 reconstruction, the loss it trains on, drives early stopping."""
        comps, _ = harness.components(self, x, want_maps=False)
        return float(np.mean(comps["reconstruction"]))


BASELINES: dict[str, type[Detector]] = {
    cls.name: cls for cls in (IsolationForestBaseline, PCABaseline, AutoencoderBaseline)
}
