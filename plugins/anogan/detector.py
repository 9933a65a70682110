"""AnoGAN: a DCGAN learns the manifold of normal samples; scoring searches its latent space.

For each sample the search finds the latent code whose generated sample best matches it,
minimising (1-λ)·residual + λ·discrimination (feature matching). What cannot be matched is
the anomaly: the ``reconstruction`` residual and the ``discriminator`` feature distance. The
search runs over a whole batch at once. With ``encoder_init`` (as in f-AnoGAN) an encoder
trained alongside the GAN gives the search its starting point, so far fewer steps are needed.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anomaly.keras.detector import GANParams, KerasDetector
from anomaly.params import option

# Scoring runs this many optimisation steps per batch: 20x the default still scores, while a
# hand-edited manifest's billion would hang the first batch (and a scorer's warm-up) for good.
MAX_SEARCH_STEPS = 1000


@dataclass
class AnoGANParams(GANParams):
    lam: float = option(0.1, low=0, high=1, help="λ: share of the discrimination error in search and score")
    search_steps: int = option(50, low=1, high=MAX_SEARCH_STEPS, help="latent-search steps per scored batch")
    search_lr: float = option(0.05, above=0, high=10, help="learning rate of the latent search")
    encoder_init: bool = option(True, help="start the search from a trained encoder's code (f-AnoGAN)")


class AnoGAN(KerasDetector):
    name = "anogan"
    version = "1.0"
    description = "AnoGAN: DCGAN with batched latent search; residual and discrimination error"
    components = ("reconstruction", "discriminator")
    Params = AnoGANParams

    def __init__(self, spec, params=None, settings=None) -> None:
        super().__init__(spec, params, settings)
        self.default_weights = {"reconstruction": 1.0 - self.params.lam, "discriminator": self.params.lam}

    def build(self) -> None:
        from anomaly_plugins.anogan.model import AnoGANModel

        bounded = self.spec.modality == "image" and not self.spec.standardize
        self.model = AnoGANModel(
            self.spec.sample_shape, self.params, bounded, self.settings.seed or 0, self.compile_training
        )
        self.networks = self.model.networks

    def train_step(self, x: np.ndarray) -> dict[str, float]:
        return self.model.train_step(x)

    def sample_components(self, x: np.ndarray):
        return self.model.search(x)

    def sample_reconstructions(self, x: np.ndarray) -> np.ndarray:
        """G(z*): the generated sample the latent search settles on, the one the residual is measured against."""
        return self.model.reconstruct(x)

    def validation_loss(self, x: np.ndarray) -> float | None:
        """With an encoder, its held-out reconstruction error tracks how well the GAN covers normal data."""
        if not self.params.encoder_init:
            return None
        return float(np.mean(self.model.encoder_residual(x)))
