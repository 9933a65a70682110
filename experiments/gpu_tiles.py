"""GANomaly on magnetic_tile tiles at GPU scale, trained with JAX: what width, epochs and scoring reach.

The built-in detectors train with TensorFlow's autodiff, and the GPU machine this project is lent
holds JAX, not TensorFlow. This exploration builds the same networks (``anomaly.keras.networks``, Keras 3
layers, backend-agnostic) and the same tiles (``anomaly.inputs``) on the quality suite's split
(``benchmarks.datasets.magnetic_tile``), trains GANomaly's losses with a jit-compiled JAX step, and
scores each test image several ways. Every statistic is standardised on held-out normal tiles, never
on the test split. The figures are exploration on the test split, labelled as such: no default is
chosen from them.

    KERAS_BACKEND=jax python -m experiments.gpu_tiles [--epochs 15] [--widths 32 64] [--seeds 0 1 2]

What it showed: docs/decisions/0003-ganomaly-at-gpu-scale.md.
"""

from __future__ import annotations

import argparse
import json
import os
import time

os.environ.setdefault("KERAS_BACKEND", "jax")

import jax  # noqa: E402
import jax.numpy as jnp  # noqa: E402
import keras  # noqa: E402
import numpy as np  # noqa: E402
from sklearn.metrics import roc_auc_score  # noqa: E402

from anomaly.harness import FitSettings, holdout_images  # noqa: E402
from anomaly.inputs import ImageSpec, encode, pool  # noqa: E402
from anomaly.keras.networks import body, decoder, encoder, head  # noqa: E402
from benchmarks import datasets  # noqa: E402

TILES = ImageSpec(image_size=32, tile=True, scale=128, stride=16, standardize=True, pool="topk")


def skip_generator(shape: tuple[int, ...], latent: int, width: int) -> keras.Model:
    """Encoder and decoder joined by skip connections at every scale (as in Skip-GANomaly): x -> (x̂, z)."""
    layers = keras.layers
    down = body(shape, width, "dense", "skip_encoder")
    inputs, x = down.input, down.output
    skips = [layer.output for layer in down.layers if isinstance(layer, layers.LeakyReLU)]
    z = layers.Flatten()(layers.Conv2D(latent, x.shape[1], padding="valid")(x))
    x = layers.Reshape((1, 1, latent))(z)
    x = layers.Conv2DTranspose(skips[-1].shape[-1], skips[-1].shape[1], padding="valid", use_bias=False)(x)
    for skip in reversed(skips):
        x = layers.ReLU()(layers.BatchNormalization()(x))
        x = layers.Concatenate()([x, skip])
        channels = shape[-1] if skip is skips[0] else skip.shape[-1] // 2
        x = layers.Conv2DTranspose(channels, 4, strides=2, padding="same", use_bias=skip is skips[0])(x)
    return keras.Model(inputs, [x, z], name="skip_generator")


class Ganomaly:
    """GANomaly's networks with a stateless, jit-compiled train step (the paper's losses and weights).

    ``skip`` replaces the encoder and decoder with one generator whose decoder sees the encoder's
    feature maps at every scale; its latent code is the bottleneck.
    """

    def __init__(
        self, shape: tuple[int, ...], width: int, latent: int = 100, lr: float = 2e-4, skip: bool = False
    ) -> None:
        self.skip = skip
        if skip:
            self.nets = [skip_generator(shape, latent, width), encoder(shape, latent, width, "dense", "encoder2")]
        else:
            self.nets = [
                encoder(shape, latent, width, "dense", "encoder"),
                decoder(shape, latent, width, "dense", False, "decoder"),
                encoder(shape, latent, width, "dense", "encoder2"),
            ]
        features = body(shape, width, "dense", "features")
        logit = head(features, 1, "discriminator")
        self.disc = keras.Model(features.input, [features.output, logit.output])
        self.g_opt = keras.optimizers.Adam(lr, beta_1=0.5)
        self.d_opt = keras.optimizers.Adam(lr, beta_1=0.5)
        g_vars = [v for net in self.nets for v in net.trainable_variables]
        self.g_opt.build(g_vars)
        self.d_opt.build(self.disc.trainable_variables)
        self.sizes = [len(net.trainable_variables) for net in self.nets]
        self.state = (
            [v.value for v in g_vars],
            [[v.value for v in net.non_trainable_variables] for net in self.nets],
            [v.value for v in self.disc.trainable_variables],
            [v.value for v in self.disc.non_trainable_variables],
            [v.value for v in self.g_opt.variables],
            [v.value for v in self.d_opt.variables],
        )
        self.step = jax.jit(self._step)
        self.score = jax.jit(self._score)

    def _split(self, flat: list) -> list[list]:
        out, start = [], 0
        for size in self.sizes:
            out.append(flat[start : start + size])
            start += size
        return out

    def _generate(self, g_tv, g_ntv, x, training):
        if self.skip:
            (gen, e2), (ng, n2) = self._split(g_tv), g_ntv
            (fake, z), ng = self.nets[0].stateless_call(gen, ng, x, training=training)
            z_hat, n2 = self.nets[1].stateless_call(e2, n2, fake, training=training)
            return z, fake, z_hat, [ng, n2]
        (e1, dec, e2), (n1, nd, n2) = self._split(g_tv), g_ntv
        z, n1 = self.nets[0].stateless_call(e1, n1, x, training=training)
        fake, nd = self.nets[1].stateless_call(dec, nd, z, training=training)
        z_hat, n2 = self.nets[2].stateless_call(e2, n2, fake, training=training)
        return z, fake, z_hat, [n1, nd, n2]

    def _g_loss(self, g_tv, g_ntv, d_tv, d_ntv, x):
        z, fake, z_hat, g_ntv = self._generate(g_tv, g_ntv, x, True)
        (f_real, _), _ = self.disc.stateless_call(d_tv, d_ntv, x, training=True)
        (f_fake, _), _ = self.disc.stateless_call(d_tv, d_ntv, fake, training=True)
        loss = jnp.mean((f_real - f_fake) ** 2) + 50.0 * jnp.mean(jnp.abs(x - fake)) + jnp.mean((z - z_hat) ** 2)
        return loss, (g_ntv, fake)

    def _d_loss(self, d_tv, d_ntv, x, fake):
        (_, real), d_ntv = self.disc.stateless_call(d_tv, d_ntv, x, training=True)
        (_, false), d_ntv = self.disc.stateless_call(d_tv, d_ntv, fake, training=True)
        bce = keras.losses.BinaryCrossentropy(from_logits=True)
        return bce(jnp.ones_like(real), real) + bce(jnp.zeros_like(false), false), d_ntv

    def _step(self, state, x):
        g_tv, g_ntv, d_tv, d_ntv, g_opt, d_opt = state
        (g_loss, (g_ntv, fake)), g_grads = jax.value_and_grad(self._g_loss, has_aux=True)(g_tv, g_ntv, d_tv, d_ntv, x)
        (d_loss, d_ntv), d_grads = jax.value_and_grad(self._d_loss, has_aux=True)(
            d_tv, d_ntv, x, jax.lax.stop_gradient(fake)
        )
        g_tv, g_opt = self.g_opt.stateless_apply(g_opt, g_grads, g_tv)
        d_tv, d_opt = self.d_opt.stateless_apply(d_opt, d_grads, d_tv)
        return (g_tv, g_ntv, d_tv, d_ntv, g_opt, d_opt), (g_loss, d_loss)

    def _score(self, state, x):
        g_tv, g_ntv, d_tv, d_ntv, _, _ = state
        z, fake, z_hat, _ = self._generate(g_tv, g_ntv, x, False)
        (f_real, _), _ = self.disc.stateless_call(d_tv, d_ntv, x, training=False)
        (f_fake, _), _ = self.disc.stateless_call(d_tv, d_ntv, fake, training=False)
        residual = jnp.abs(x - fake).mean(axis=-1)
        smooth = jax.lax.reduce_window(residual, 0.0, jax.lax.add, (1, 5, 5), (1, 1, 1), "SAME") / 25.0
        return {
            "latent": jnp.mean((z - z_hat) ** 2, axis=1),
            "reconstruction": residual.mean(axis=(1, 2)),
            "discriminator": jnp.mean((f_real - f_fake) ** 2, axis=(1, 2, 3)),
            "smoothed residual max": smooth.max(axis=(1, 2)),
        }

    def components(self, x: np.ndarray, batch: int = 2048) -> dict[str, np.ndarray]:
        parts: dict[str, list] = {}
        for start in range(0, len(x), batch):
            for k, v in self.score(self.state, jnp.asarray(x[start : start + batch])).items():
                parts.setdefault(k, []).append(np.asarray(v))
        return {k: np.concatenate(v) for k, v in parts.items()}


def run_one(
    seed: int, width: int, epochs: int, batch: int, limit: int | None = None, scale: int = 128, skip: bool = False
) -> dict:
    task = datasets.magnetic_tile(seed, ImageSpec(**{**vars(TILES), "scale": scale}), limit)
    train, held = holdout_images(task.train, FitSettings().holdout, seed)
    spec = task.fresh_spec()
    spec.channels = train.channels
    x = encode(spec, train).x
    val, test = encode(spec, held), encode(spec, task.test)
    keras.utils.set_random_seed(seed)
    model = Ganomaly(spec.sample_shape, width, skip=skip)
    rng = np.random.default_rng(seed)
    clock = time.perf_counter()
    for _ in range(epochs):
        order = rng.permutation(len(x))
        for index in np.array_split(order, max(1, len(x) // batch)):
            model.state, _ = model.step(model.state, jnp.asarray(x[index]))
    jax.block_until_ready(model.state[0])
    train_s = time.perf_counter() - clock
    val_c, test_c = model.components(val.x), model.components(test.x)
    labels = np.asarray(task.test.labels)
    result = {
        "seed": seed,
        "width": width,
        "scale": scale,
        "skip": skip,
        "epochs": epochs,
        "train_tiles": len(x),
        "train_s": round(train_s, 1),
        "auroc": {},
        "image_scores": {},
    }
    zs = {}
    for name in test_c:
        mean, sd = float(val_c[name].mean()), float(val_c[name].std()) or 1.0
        zs[name] = (test_c[name] - mean) / sd
    zs["latent + smoothed residual"] = (zs["latent"] + zs["smoothed residual max"]) / 2
    for name, z in zs.items():
        for how in ("topk", "max"):
            image = pool(z, test.owner, test.count, how, 5)
            result["auroc"][f"{name}, {how}"] = float(roc_auc_score(labels, image))
            result["image_scores"][f"{name}, {how}"] = image.tolist()
    result["labels"] = labels.tolist()
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=15)
    parser.add_argument("--widths", type=int, nargs="+", default=[32, 64])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--batch", type=int, default=64)
    parser.add_argument("--scale", type=int, default=128, help="short side the images are resized to before tiling")
    parser.add_argument("--skip", action="store_true", help="a generator with skip connections (Skip-GANomaly)")
    parser.add_argument("--limit", type=int, help="images per class (a quick check), default all")
    parser.add_argument("--out", default="gpu_tiles.json")
    args = parser.parse_args()
    print("devices", jax.devices(), flush=True)
    results = []
    for width in args.widths:
        for seed in args.seeds:
            r = run_one(seed, width, args.epochs, args.batch, args.limit, args.scale, args.skip)
            results.append(r)
            best = sorted(r["auroc"].items(), key=lambda kv: -kv[1])[:4]
            print(f"width {width} seed {seed}: {r['train_tiles']} tiles, {r['train_s']} s;", best, flush=True)
            with open(args.out, "w") as f:
                json.dump({"devices": str(jax.devices()), "results": results}, f)
    for width in args.widths:
        rows = [r for r in results if r["width"] == width]
        ensemble = {}
        for name in rows[0]["auroc"]:
            ensemble[name] = np.mean([r["auroc"][name] for r in rows])
        print(
            f"width {width} mean over seeds:",
            {k: round(v, 3) for k, v in sorted(ensemble.items(), key=lambda kv: -kv[1])},
        )


if __name__ == "__main__":
    main()
