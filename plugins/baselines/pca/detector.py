"""Linear reconstruction: the residual after projecting a sample onto the principal components of normal data.

scikit-learn finds the components; the model folder keeps them and the mean in ``pca.npz``, and
scoring projects with numpy in the order scikit-learn's ``transform`` and ``inverse_transform``
do (centre after projecting), so a loaded model gives the fitted one's scores exactly.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anomaly.detector import Detector
from anomaly.errors import ArtifactError
from anomaly.params import option
from anomaly_plugins.baselines.arrays import Layout, load_arrays, save_arrays

STATE = "pca.npz"
LAYOUT: Layout = {"components": ("f", 2), "mean": ("f", 1)}


@dataclass
class PCAParams:
    # scikit-learn reads a share below 1 as "enough components to explain it"; 1 itself would mean one component.
    variance: float = option(
        0.95, above=0, high=0.999, help="share of the normal data's variance the kept components explain"
    )


class PCA(Detector):
    """PCA reconstruction error on flattened samples; per-pixel residuals make the anomaly map of an image."""

    name = "pca"
    version = "1.0"
    description = "PCA (scikit-learn) reconstruction error on flattened tiles or windows"
    components = ("reconstruction",)
    Params = PCAParams

    def build(self) -> None:
        self.basis: np.ndarray | None = None
        self.mean: np.ndarray | None = None

    def fit_once(self, x: np.ndarray) -> dict[str, float]:
        from sklearn.decomposition import PCA as Estimator

        estimator = Estimator(n_components=self.params.variance, svd_solver="full").fit(x.reshape(len(x), -1))
        self.basis, self.mean = estimator.components_, estimator.mean_
        return {"components": float(estimator.n_components_)}

    def reconstruct(self, flat: np.ndarray) -> np.ndarray:
        projected = flat @ self.basis.T
        projected -= self.mean.reshape(1, -1) @ self.basis.T
        return projected @ self.basis + self.mean

    def sample_components(self, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        flat = x.reshape(len(x), -1)
        residual = np.abs(flat - self.reconstruct(flat)).reshape(x.shape)
        maps = residual.mean(axis=-1) if x.ndim == 4 else None
        return {"reconstruction": residual.reshape(len(x), -1).mean(axis=1)}, maps

    def save_state(self, directory: Path) -> None:
        save_arrays(directory, STATE, {"components": self.basis, "mean": self.mean})

    def load_state(self, directory: Path) -> None:
        arrays = load_arrays(directory, STATE, LAYOUT)
        basis, mean = arrays["components"], arrays["mean"]
        features = int(np.prod(self.spec.sample_shape))
        if basis.shape[1:] != (features,) or mean.shape != (features,) or not 1 <= len(basis) <= features:
            raise ArtifactError(
                f"{directory / STATE}: components {basis.shape} and mean {mean.shape} do not fit samples of "
                f"{features} values"
            )
        self.basis, self.mean = basis, mean
