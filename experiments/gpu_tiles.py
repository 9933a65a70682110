"""GANomaly on magnetic_tile tiles at GPU scale, through the product's own detector: what width, epochs and scoring reach.

The product's ``ganomaly`` detector (``anomaly_plugins.ganomaly``, trained by ``anomaly.harness`` with
``anomaly.keras.steps``, so on any Keras backend; JAX on the GPU machine, which has no TensorFlow) is
fitted on the quality suite's magnetic_tile split (``benchmarks.datasets.magnetic_tile``) with
overlapping tiles, for a fixed number of epochs at each width, and each test image is scored several
ways from its tiles' components: every component and the bank's distance, and the largest 5x5-smoothed
residual of its map. Every statistic is standardised on held-out normal tiles, never on the test split.
The figures are exploration on the test split, labelled as such: no default is chosen from them.

    KERAS_BACKEND=jax python -m experiments.gpu_tiles [--epochs 15] [--widths 32 64] [--seeds 0 1 2]

What an earlier version (its own JAX copy of the training step, and a Skip-GANomaly generator) showed:
docs/decisions/0003-ganomaly-at-gpu-scale.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import time

import numpy as np
from scipy.ndimage import uniform_filter
from sklearn.metrics import roc_auc_score

from anomaly import harness
from anomaly.harness import FitSettings, holdout_images
from anomaly.inputs import ImageSpec, encode, pool
from anomaly.keras import backend
from anomaly.plugins import registry
from benchmarks import datasets

TILES = ImageSpec(image_size=32, tile=True, scale=128, stride=16, standardize=True, pool="topk")
SMOOTHED = "smoothed residual max"


def _components(detector, x: np.ndarray) -> dict[str, np.ndarray]:
    """Each tile's components, and the largest 5x5 mean of its residual map."""
    comps, maps = harness.components(detector, x, want_maps=True)
    return {**comps, SMOOTHED: uniform_filter(maps, size=(1, 5, 5), mode="nearest").max(axis=(1, 2))}


def run_one(seed: int, width: int, epochs: int, batch: int, limit: int | None = None, scale: int = 128) -> dict:
    task = datasets.magnetic_tile(seed, dataclasses.replace(TILES, scale=scale), limit)
    settings = FitSettings(epochs=epochs, batch_size=batch, patience=None, seed=seed)
    cls = registry().get("ganomaly")
    detector = cls(task.fresh_spec(), cls.Params(width=width), settings)
    clock = time.perf_counter()
    detector.fit(task.train)
    train_s = time.perf_counter() - clock
    _, held = holdout_images(task.train, settings.holdout, seed)
    val, test = encode(detector.spec, held), encode(detector.spec, task.test)
    val_c, test_c = _components(detector, val.x), _components(detector, test.x)
    labels = np.asarray(task.test.labels)
    result = {
        "seed": seed,
        "width": width,
        "scale": scale,
        "epochs": epochs,
        "backend": backend.current(),
        "device": detector.training.device,
        "train_images": int(detector.training.train_items),
        "train_s": round(train_s, 1),
        "auroc": {},
        "image_scores": {},
    }
    zs = {}
    for name in test_c:
        mean, sd = float(val_c[name].mean()), float(val_c[name].std()) or 1.0
        zs[name] = (test_c[name] - mean) / sd
    zs["latent + smoothed residual"] = (zs["latent"] + zs[SMOOTHED]) / 2
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
    parser.add_argument("--limit", type=int, help="images per class (a quick check), default all")
    parser.add_argument("--out", default="gpu_tiles.json")
    args = parser.parse_args()
    results = []
    for width in args.widths:
        for seed in args.seeds:
            r = run_one(seed, width, args.epochs, args.batch, args.limit, args.scale)
            results.append(r)
            best = sorted(r["auroc"].items(), key=lambda kv: -kv[1])[:4]
            print(
                f"width {width} seed {seed} on {r['device']}: {r['train_images']} training images, {r['train_s']} s;",
                best,
            )
            with open(args.out, "w") as f:
                json.dump({"results": results}, f)
    for width in args.widths:
        rows = [r for r in results if r["width"] == width]
        means = {name: np.mean([r["auroc"][name] for r in rows]) for name in rows[0]["auroc"]}
        print(
            f"width {width} mean over seeds:", {k: round(v, 3) for k, v in sorted(means.items(), key=lambda kv: -kv[1])}
        )


if __name__ == "__main__":
    main()
