"""GANomaly's networks and training step on Keras 3 with TensorFlow's autodiff."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

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
        self.g_vars = (
            self.encoder.trainable_variables + self.decoder.trainable_variables + self.encoder2.trainable_variables
        )
        self.d_vars = self.discriminator.trainable_variables
        self.g_opt = keras.optimizers.Adam(p.lr, beta_1=p.beta1)
        self.d_opt = keras.optimizers.Adam(p.lr, beta_1=p.beta1)
        self.g_opt.build(self.g_vars)
        self.d_opt.build(self.d_vars)
        self._d_initial = self.discriminator.get_weights()
        spec = tf.TensorSpec([None, *shape], tf.float32)
        self._step = tf.function(self._train_step, input_signature=[spec], jit_compile=xla)
        self._score = tf.function(self._components, input_signature=[spec])

    def _train_step(self, x):
        p = self.params
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            z = self.encoder(x, training=True)
            fake = self.decoder(z, training=True)
            z_hat = self.encoder2(fake, training=True)
            adv = tf.reduce_mean(tf.square(self.features(x, training=True) - self.features(fake, training=True)))
            con = tf.reduce_mean(tf.abs(x - fake))
            enc = tf.reduce_mean(tf.square(z - z_hat))
            g_loss = p.w_adv * adv + p.w_con * con + p.w_enc * enc
            real_logits = self.discriminator(x, training=True)
            fake_logits = self.discriminator(tf.stop_gradient(fake), training=True)
            d_loss = _bce(tf.ones_like(real_logits), real_logits) + _bce(tf.zeros_like(fake_logits), fake_logits)
        self.g_opt.apply(g_tape.gradient(g_loss, self.g_vars), self.g_vars)
        self.d_opt.apply(d_tape.gradient(d_loss, self.d_vars), self.d_vars)
        return {"g_loss": g_loss, "d_loss": d_loss, "adv": adv, "con": con, "enc": enc}

    def train_step(self, x: np.ndarray) -> dict[str, float]:
        logs = {k: float(v) for k, v in self._step(tf.convert_to_tensor(x)).items()}
        if logs["d_loss"] < 1e-5:
            # The paper's remedy for a discriminator that has won outright: start it afresh.
            self.discriminator.set_weights(self._d_initial)
        return logs

    def _components(self, x):
        z = self.encoder(x, training=False)
        fake = self.decoder(z, training=False)
        z_hat = self.encoder2(fake, training=False)
        residual = tf.abs(x - fake)
        sample_axes = list(range(1, len(x.shape)))
        feat_diff = tf.square(self.features(x, training=False) - self.features(fake, training=False))
        return {
            "latent": tf.reduce_mean(tf.square(z - z_hat), axis=1),
            "reconstruction": tf.reduce_mean(residual, axis=sample_axes),
            "discriminator": tf.reduce_mean(feat_diff, axis=list(range(1, len(feat_diff.shape)))),
        }, tf.reduce_mean(residual, axis=-1)

    def components(self, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        comps, residual = self._score(tf.convert_to_tensor(x, tf.float32))
        return {k: v.numpy() for k, v in comps.items()}, residual.numpy() if self.image else None
