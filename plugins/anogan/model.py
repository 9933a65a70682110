"""AnoGAN's DCGAN, optional f-AnoGAN encoder, and the batched latent search, in Keras 3 (``keras.ops``).

``anomaly.keras.steps`` trains the networks and runs the search's gradient steps on any backend.
"""

from __future__ import annotations

import keras
import numpy as np
from keras import ops

from anomaly.keras import steps
from anomaly.keras.networks import body, decoder, encoder, head

_bce = keras.losses.BinaryCrossentropy(from_logits=True)


class AnoGANModel:
    def __init__(self, shape: tuple[int, ...], params, bounded: bool, seed: int, xla: bool = False) -> None:
        p = params
        self.params = p
        self.seed = seed
        self.image = len(shape) == 3
        self.generator = decoder(shape, p.latent, p.width, p.network, bounded, "generator")
        self.features = body(shape, p.width, p.network, "discriminator_body")
        self.discriminator = head(self.features, 1, "discriminator")
        self.networks = {"generator": self.generator, "discriminator": self.discriminator}
        g_vars, d_vars = self.generator.trainable_variables, self.discriminator.trainable_variables
        self.g_opt = keras.optimizers.Adam(p.lr, beta_1=p.beta1)
        self.d_opt = keras.optimizers.Adam(p.lr, beta_1=p.beta1)
        self.g_opt.build(g_vars)
        self.d_opt.build(d_vars)
        phases = [
            steps.Phase(
                self._gan_losses,
                (steps.Update("g_loss", g_vars, self.g_opt), steps.Update("d_loss", d_vars, self.d_opt)),
            )
        ]
        if p.encoder_init:
            self.encoder = encoder(shape, p.latent, p.width, p.network, "encoder")
            self.networks["encoder"] = self.encoder
            self.e_opt = keras.optimizers.Adam(p.lr, beta_1=p.beta1)
            e_vars = self.encoder.trainable_variables
            self.e_opt.build(e_vars)
            phases.append(steps.Phase(self._encoder_losses, (steps.Update("e_loss", e_vars, self.e_opt),)))
        self._noise = keras.random.SeedGenerator(seed)
        state = [*steps.variables(*self.networks.values()), self._noise.state]
        self._step = steps.train_step(phases, state, shape, xla)
        self._search = steps.function(self._search_fn, state, shape)
        self._reconstruct = steps.function(self._reconstruct_fn, state, shape)
        if p.encoder_init:
            self._residual = steps.function(self._encoder_residual, state, shape)

    def _gan_losses(self, x):
        z = keras.random.normal((ops.shape(x)[0], self.params.latent), seed=self._noise)
        fake = self.generator(z, training=True)
        real_logits = self.discriminator(x, training=True)
        fake_logits = self.discriminator(fake, training=True)
        d_loss = _bce(ops.ones_like(real_logits), real_logits) + _bce(ops.zeros_like(fake_logits), fake_logits)
        return {"g_loss": _bce(ops.ones_like(fake_logits), fake_logits), "d_loss": d_loss}

    def _encoder_losses(self, x):
        fake = self.generator(self.encoder(x, training=True), training=False)
        return {"e_loss": ops.mean(self._match_loss(x, fake))}

    def train_step(self, x: np.ndarray) -> dict[str, float]:
        return self._step(x)

    def _parts(self, x, fake, x_features):
        axes = list(range(1, len(x.shape)))
        residual = ops.mean(ops.abs(x - fake), axis=axes)
        feat = self.features(fake, training=False)
        discrimination = ops.mean(ops.abs(x_features - feat), axis=list(range(1, len(feat.shape))))
        return residual, discrimination

    def _match_loss(self, x, fake):
        lam = self.params.lam
        residual, discrimination = self._parts(x, fake, self.features(x, training=False))
        return (1.0 - lam) * residual + lam * discrimination

    def _encoder_residual(self, x):
        fake = self.generator(self.encoder(x, training=False), training=False)
        return ops.mean(ops.abs(x - fake), axis=list(range(1, len(x.shape))))

    def encoder_residual(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate([self._residual(x[i : i + 256]) for i in range(0, len(x), 256)])

    def _latent_search(self, x, x_features):
        """z*: Adam on the latent codes of the whole batch at once; per-sample losses are summed so gradients
        stay per sample. Scoring and drawing both start here, so the picture shown is the one scored."""
        p = self.params
        lam = p.lam
        if p.encoder_init:
            z = self.encoder(x, training=False)
        else:
            z = keras.random.normal((ops.shape(x)[0], p.latent), seed=self.seed)

        def loss(z):
            residual, discrimination = self._parts(x, self.generator(z, training=False), x_features)
            return ops.sum((1.0 - lam) * residual + lam * discrimination)

        return steps.descend(loss, z, p.search_steps, p.search_lr)

    def _search_fn(self, x):
        x_features = self.features(x, training=False)
        fake = self.generator(self._latent_search(x, x_features), training=False)
        residual, discrimination = self._parts(x, fake, x_features)
        return {"reconstruction": residual, "discriminator": discrimination}, ops.mean(ops.abs(x - fake), axis=-1)

    def _reconstruct_fn(self, x):
        return self.generator(self._latent_search(x, self.features(x, training=False)), training=False)

    def search(self, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        comps, residual = self._search(x)
        return comps, residual if self.image else None

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """G(z*) for a batch, from the same search scoring runs."""
        return self._reconstruct(x)
