"""GANomaly's networks and losses in Keras 3 (``keras.ops``); ``anomaly.keras.steps`` trains them on any backend."""

from __future__ import annotations

from typing import Any

import keras
import numpy as np
from keras import ops

from anomaly.keras import steps
from anomaly.keras.networks import body, decoder, encoder, head

_bce = keras.losses.BinaryCrossentropy(from_logits=True)


class GANomalyModel:
    def __init__(self, shape: tuple[int, ...], params, bounded: bool, xla: bool = False) -> None:
        p = params
        self.params = p
        self.image = len(shape) == 3
        self.encoder = encoder(shape, p.latent, p.width, p.network, "encoder")
        self.decoder = decoder(shape, p.latent, p.width, p.network, bounded, "decoder")
        self.encoder2 = encoder(shape, p.latent, p.width, p.network, "encoder2")
        self.features = body(shape, p.width, p.network, "discriminator_body")
        self.discriminator = head(self.features, 1, "discriminator")
        self.networks = {
            "encoder": self.encoder,
            "decoder": self.decoder,
            "encoder2": self.encoder2,
            "discriminator": self.discriminator,
        }
        g_vars = self.encoder.trainable_variables + self.decoder.trainable_variables + self.encoder2.trainable_variables
        d_vars = self.discriminator.trainable_variables
        self.g_opt = keras.optimizers.Adam(p.lr, beta_1=p.beta1)
        self.d_opt = keras.optimizers.Adam(p.lr, beta_1=p.beta1)
        self.g_opt.build(g_vars)
        self.d_opt.build(d_vars)
        self._d_initial = self.discriminator.get_weights()
        self._d_loss: Any = None
        state = steps.variables(*self.networks.values())
        updates = (steps.Update("g_loss", g_vars, self.g_opt), steps.Update("d_loss", d_vars, self.d_opt))
        self._step = steps.train_step([steps.Phase(self._losses, updates)], state, shape, xla)
        self._score = steps.function(self._components, state, shape)

    def _losses(self, x):
        p = self.params
        z = self.encoder(x, training=True)
        fake = self.decoder(z, training=True)
        z_hat = self.encoder2(fake, training=True)
        adv = ops.mean(ops.square(self.features(x, training=True) - self.features(fake, training=True)))
        con = ops.mean(ops.abs(x - fake))
        enc = ops.mean(ops.square(z - z_hat))
        g_loss = p.w_adv * adv + p.w_con * con + p.w_enc * enc
        real_logits = self.discriminator(x, training=True)
        fake_logits = self.discriminator(ops.stop_gradient(fake), training=True)
        d_loss = _bce(ops.ones_like(real_logits), real_logits) + _bce(ops.zeros_like(fake_logits), fake_logits)
        return {"g_loss": g_loss, "d_loss": d_loss, "adv": adv, "con": con, "enc": enc}

    def train_step(self, x: np.ndarray) -> dict[str, Any]:
        logs = self._step(x)
        won, self._d_loss = self._d_loss, logs["d_loss"]
        # The paper's remedy for a discriminator that has won outright: start it afresh. Checked a
        # step late, so that on a backend running steps asynchronously this step is queued before
        # the host waits for the last one's loss.
        if won is not None and won < 1e-5:
            steps.flush()
            self.discriminator.set_weights(self._d_initial)
        return logs

    def _components(self, x):
        z = self.encoder(x, training=False)
        fake = self.decoder(z, training=False)
        z_hat = self.encoder2(fake, training=False)
        residual = ops.abs(x - fake)
        sample_axes = list(range(1, len(x.shape)))
        feat_diff = ops.square(self.features(x, training=False) - self.features(fake, training=False))
        return {
            "latent": ops.mean(ops.square(z - z_hat), axis=1),
            "reconstruction": ops.mean(residual, axis=sample_axes),
            "discriminator": ops.mean(feat_diff, axis=list(range(1, len(feat_diff.shape)))),
        }, ops.mean(residual, axis=-1)

    def components(self, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        comps, residual = self._score(x)
        return comps, residual if self.image else None
