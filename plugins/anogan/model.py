"""AnoGAN's DCGAN, optional f-AnoGAN encoder, and the batched latent search, on Keras 3 + TensorFlow."""

from __future__ import annotations

import keras
import numpy as np
import tensorflow as tf

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
        self.g_opt = keras.optimizers.Adam(p.lr, beta_1=p.beta1)
        self.d_opt = keras.optimizers.Adam(p.lr, beta_1=p.beta1)
        self.g_opt.build(self.generator.trainable_variables)
        self.d_opt.build(self.discriminator.trainable_variables)
        if p.encoder_init:
            self.encoder = encoder(shape, p.latent, p.width, p.network, "encoder")
            self.networks["encoder"] = self.encoder
            self.e_opt = keras.optimizers.Adam(p.lr, beta_1=p.beta1)
            self.e_opt.build(self.encoder.trainable_variables)
        self._noise = tf.random.Generator.from_seed(seed)
        spec = tf.TensorSpec([None, *shape], tf.float32)
        self._step = tf.function(self._train_step, input_signature=[spec], jit_compile=xla)
        self._search = tf.function(self._search_fn, input_signature=[spec])
        self._reconstruct = tf.function(self._reconstruct_fn, input_signature=[spec])
        self._residual = tf.function(self._encoder_residual, input_signature=[spec])

    def _train_step(self, x):
        p = self.params
        z = self._noise.normal([tf.shape(x)[0], p.latent])
        with tf.GradientTape() as g_tape, tf.GradientTape() as d_tape:
            fake = self.generator(z, training=True)
            real_logits = self.discriminator(x, training=True)
            fake_logits = self.discriminator(fake, training=True)
            d_loss = _bce(tf.ones_like(real_logits), real_logits) + _bce(tf.zeros_like(fake_logits), fake_logits)
            g_loss = _bce(tf.ones_like(fake_logits), fake_logits)
        g_vars, d_vars = self.generator.trainable_variables, self.discriminator.trainable_variables
        self.g_opt.apply(g_tape.gradient(g_loss, g_vars), g_vars)
        self.d_opt.apply(d_tape.gradient(d_loss, d_vars), d_vars)
        logs = {"g_loss": g_loss, "d_loss": d_loss}
        if p.encoder_init:
            with tf.GradientTape() as e_tape:
                e_loss = tf.reduce_mean(
                    self._match_loss(x, self.generator(self.encoder(x, training=True), training=False))
                )
            e_vars = self.encoder.trainable_variables
            self.e_opt.apply(e_tape.gradient(e_loss, e_vars), e_vars)
            logs["e_loss"] = e_loss
        return logs

    def train_step(self, x: np.ndarray) -> dict[str, float]:
        return {k: float(v) for k, v in self._step(tf.convert_to_tensor(x)).items()}

    def _parts(self, x, fake, x_features):
        axes = list(range(1, len(x.shape)))
        residual = tf.reduce_mean(tf.abs(x - fake), axis=axes)
        feat = self.features(fake, training=False)
        discrimination = tf.reduce_mean(tf.abs(x_features - feat), axis=list(range(1, len(feat.shape))))
        return residual, discrimination

    def _match_loss(self, x, fake):
        lam = self.params.lam
        residual, discrimination = self._parts(x, fake, self.features(x, training=False))
        return (1.0 - lam) * residual + lam * discrimination

    def _encoder_residual(self, x):
        fake = self.generator(self.encoder(x, training=False), training=False)
        return tf.reduce_mean(tf.abs(x - fake), axis=list(range(1, len(x.shape))))

    def encoder_residual(self, x: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [self._residual(tf.convert_to_tensor(x[i : i + 256])).numpy() for i in range(0, len(x), 256)]
        )

    def _latent_search(self, x, x_features):
        """z*: Adam on the latent codes of the whole batch at once; per-sample losses are summed so gradients
        stay per sample. Scoring and drawing both start here, so the picture shown is the one scored."""
        p = self.params
        lam = p.lam
        n = tf.shape(x)[0]
        if p.encoder_init:
            z = self.encoder(x, training=False)
        else:
            z = tf.random.stateless_normal([n, p.latent], seed=[self.seed, 0])
        m = tf.zeros_like(z)
        v = tf.zeros_like(z)
        b1, b2, eps = 0.9, 0.999, 1e-8
        for step in tf.range(1, p.search_steps + 1):
            with tf.GradientTape() as tape:
                tape.watch(z)
                residual, discrimination = self._parts(x, self.generator(z, training=False), x_features)
                loss = tf.reduce_sum((1.0 - lam) * residual + lam * discrimination)
            grad = tape.gradient(loss, z)
            t = tf.cast(step, tf.float32)
            m = b1 * m + (1 - b1) * grad
            v = b2 * v + (1 - b2) * tf.square(grad)
            z = z - p.search_lr * (m / (1 - b1**t)) / (tf.sqrt(v / (1 - b2**t)) + eps)
        return z

    def _search_fn(self, x):
        x_features = self.features(x, training=False)
        fake = self.generator(self._latent_search(x, x_features), training=False)
        residual, discrimination = self._parts(x, fake, x_features)
        return {"reconstruction": residual, "discriminator": discrimination}, tf.reduce_mean(tf.abs(x - fake), axis=-1)

    def _reconstruct_fn(self, x):
        return self.generator(self._latent_search(x, self.features(x, training=False)), training=False)

    def search(self, x: np.ndarray) -> tuple[dict[str, np.ndarray], np.ndarray | None]:
        comps, residual = self._search(tf.convert_to_tensor(x, tf.float32))
        return {k: v.numpy() for k, v in comps.items()}, residual.numpy() if self.image else None

    def reconstruct(self, x: np.ndarray) -> np.ndarray:
        """G(z*) for a batch, from the same search scoring runs."""
        return self._reconstruct(tf.convert_to_tensor(x, tf.float32)).numpy()
