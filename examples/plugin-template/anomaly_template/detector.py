"""A deliberately simple detector: a per-position mean/spread template of normal samples.

It has no networks, which keeps the template about the contract rather than about
deep learning: statistics are accumulated batch by batch in ``train_step`` and saved as a
pickle-free NPZ. Its ``discriminator`` component is the standardised deviation from the
template, standing in for what a GAN's discriminator would judge.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anomaly.detector import Detector
from anomaly.errors import ArtifactError


@dataclass
class TemplateParams:
    min_std: float = 1e-3


class TemplateDetector(Detector):
    name = "template"
    version = "0.1"
    description = "Template plugin: per-position mean and spread of normal samples"
    modalities = ("image", "series")
    components = ("reconstruction", "discriminator")
    Params = TemplateParams

    def build(self) -> None:
        shape = self.spec.sample_shape
        self.count = 0
        self.total = np.zeros(shape, np.float64)
        self.total_sq = np.zeros(shape, np.float64)

    def train_step(self, x: np.ndarray) -> dict[str, float]:
        self.count += len(x)
        self.total += x.sum(axis=0)
        self.total_sq += np.square(x).sum(axis=0)
        return {"samples": float(self.count)}

    def _template(self) -> tuple[np.ndarray, np.ndarray]:
        mean = self.total / max(self.count, 1)
        std = np.sqrt(np.maximum(self.total_sq / max(self.count, 1) - mean**2, 0)) + self.params.min_std
        return mean, std

    def sample_components(self, x: np.ndarray):
        mean, std = self._template()
        residual = np.abs(x - mean)
        axes = tuple(range(1, x.ndim))
        components = {
            "reconstruction": residual.mean(axis=axes),
            "discriminator": np.square(residual / std).mean(axis=axes),
        }
        return components, residual.mean(axis=-1) if x.ndim == 4 else None

    def get_state(self):
        return self.count, self.total.copy(), self.total_sq.copy()

    def set_state(self, state) -> None:
        self.count, self.total, self.total_sq = state

    def save_state(self, directory: Path) -> None:
        np.savez(directory / "template.npz", count=self.count, total=self.total, total_sq=self.total_sq)

    def load_state(self, directory: Path) -> None:
        path = directory / "template.npz"
        if not path.is_file():
            raise ArtifactError(f"{directory}: missing {path.name}")
        with np.load(path, allow_pickle=False) as saved:
            self.count, self.total, self.total_sq = int(saved["count"]), saved["total"], saved["total_sq"]
