"""GANomaly's generator without the GAN: the same encoder and decoder, trained on L1 reconstruction only.

If GANomaly does not beat this, its adversarial and latent losses are not earning their cost. The
weights are saved as ``.weights.h5`` files, as the GAN detectors' are (``KerasDetector``).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from anomaly import harness
from anomaly.keras.detector import MAX_LATENT, GANParams, KerasDetector
from anomaly.params import option


@dataclass
class AutoencoderParams(GANParams):
    latent: int = option(100, low=1, high=MAX_LATENT, help="size of the latent code z (GANomaly's default)")
    batch_size: int = option(
        64,
        low=1,
        help="keras fit's minibatch within each training batch (more than one step only if --batch-size is larger)",
    )


class Autoencoder(KerasDetector):
    """Encoder and decoder from ``anomaly.keras.networks``; each training batch is one ``keras fit`` epoch over it.

    The quality benchmark hands it the whole training set as one batch, so an epoch there is a
    shuffled pass in minibatches of ``batch_size``, the way an autoencoder is usually trained.
    """

    name = "autoencoder"
    version = "1.0"
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
        self.autoencoder.compile(optimizer=keras.optimizers.Adam(p.lr, beta_1=p.beta1), loss="mae")
        self.networks = {"encoder": enc, "decoder": dec}

    def train_step(self, x: np.ndarray) -> dict[str, float]:
        history = self.autoencoder.fit(x, x, batch_size=self.params.batch_size, epochs=1, shuffle=True, verbose=0)
        return {"loss": float(history.history["loss"][-1])}

    def sample_components(self, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        residual = np.abs(x - self.sample_reconstructions(x))
        maps = residual.mean(axis=-1) if x.ndim == 4 else None
        return {"reconstruction": residual.reshape(len(x), -1).mean(axis=1)}, maps

    def sample_reconstructions(self, x: np.ndarray) -> np.ndarray:
        return np.asarray(self.autoencoder.predict_on_batch(x))

    def validation_loss(self, x: np.ndarray) -> float:
        """Held-out L1 reconstruction, the loss it trains on, drives early stopping."""
        comps, _ = harness.components(self, x, want_maps=False)
        return float(np.mean(comps["reconstruction"]))
