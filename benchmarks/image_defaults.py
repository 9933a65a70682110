"""Development sweep behind the image defaults, judged on painted-on defects, never on the test split.

The quality suite reports magnetic_tile's real defects, so the image defaults cannot be chosen on
them. This sweep trains on the quality suite's training images and scores the images the
detector held out of training — clean, and again with a defect painted on: a thin dark scratch
(like a crack) or a soft dark spot (like a blowhole). How well a setting tells each painted copy
from its clean original is what the choice rests on. The choices it supports: whether GANomaly
trains with occlusion (``occlusion``: flat blobs painted over training tiles, to be repainted as
normal surface) and how tile scores pool into an image score.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFilter
from sklearn.metrics import roc_auc_score

from anomaly.data.images import ImageSet
from anomaly.detector import holdout_images
from anomaly.inputs import POOLS
from benchmarks import datasets, quality
from benchmarks.report import table, write_raw, write_section
from benchmarks.system import describe_machine

SEEDS = (0, 1, 2)
CONFIG = quality.CONFIGS["small"]
VARIANTS = (("ganomaly", 0.0), ("ganomaly", 0.5), ("autoencoder", None))
DEFECTS = ("scratch", "spot")


def scratch(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A dark polyline of three segments, 2-4 px wide and a fifth to two fifths of the short side long."""
    h, w = image.shape[:2]
    length = rng.uniform(0.2, 0.4) * min(h, w)
    point = np.array([rng.uniform(0.2, 0.8) * w, rng.uniform(0.2, 0.8) * h])
    heading = rng.uniform(0, 2 * np.pi)
    points = [tuple(point)]
    for _ in range(3):
        heading += rng.normal(0, 0.5)
        point = point + length / 3 * np.array([np.cos(heading), np.sin(heading)])
        points.append(tuple(point))
    mask = Image.new("L", (w, h))
    ImageDraw.Draw(mask).line(points, fill=255, width=int(rng.integers(2, 5)))
    return _darken(image, np.asarray(mask.filter(ImageFilter.GaussianBlur(1))) / 255.0, rng)


def spot(image: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A round dark spot with soft edges, 2-5% of the short side in radius."""
    h, w = image.shape[:2]
    sigma = rng.uniform(0.02, 0.05) * min(h, w)
    cy, cx = rng.uniform(0.15, 0.85) * h, rng.uniform(0.15, 0.85) * w
    yy, xx = np.mgrid[:h, :w]
    return _darken(image, np.exp(-((yy - cy) ** 2 + (xx - cx) ** 2) / (2 * sigma**2)), rng)


def _darken(image: np.ndarray, weight: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    depth = rng.uniform(0.4, 0.7)
    out = image.astype(np.float32) * (1 - depth * weight[..., None])
    return np.clip(out, 0, 255).astype(np.uint8)


def painted(clean: ImageSet, defect: str, seed: int) -> ImageSet:
    paint = {"scratch": scratch, "spot": spot}[defect]
    rng = np.random.default_rng(seed)
    return ImageSet(ids=[f"{i}+{defect}" for i in clean.ids], images=[paint(img, rng) for img in clean.images])


def _sweep(config: quality.Config, seeds: tuple[int, ...], log: Callable[[str], None]) -> list[dict]:
    plan = quality.detector_plan(config, ("ganomaly", "autoencoder"))
    rows = []
    for seed in seeds:
        task = datasets.magnetic_tile(seed, dataclasses.replace(config.tile), config.limit)
        settings = quality.settings_for(config, "magnetic_tile", seed, one_pass=False)
        _, held_out = holdout_images(task.train, settings.holdout, seed)
        copies = {defect: painted(held_out, defect, seed) for defect in DEFECTS}
        for name, occlusion in VARIANTS:
            cls, params, _ = plan[name]
            if occlusion is not None:
                params = dataclasses.replace(params, occlusion=occlusion)
            clock = time.perf_counter()
            detector = cls(task.fresh_spec(), params, settings)
            detector.fit(task.train)
            aurocs = {}
            for how in POOLS:
                detector.spec.pool = how
                clean = detector.score(held_out, maps=False)
                for defect, data in copies.items():
                    bad = detector.score(data, maps=False)
                    labels = np.r_[np.zeros(len(clean)), np.ones(len(bad))]
                    aurocs[f"{how}/{defect}"] = float(roc_auc_score(labels, np.r_[clean.scores, bad.scores]))
                    for part, values in clean.components.items():
                        both = np.r_[values, bad.components[part]]
                        aurocs[f"{how}/{defect}/{part}"] = float(roc_auc_score(labels, both))
            label = name if occlusion is None else f"{name} occlusion={occlusion}"
            rows.append({"seed": seed, "detector": label, "auroc": aurocs, "held_out_images": len(held_out),
                         "seconds": round(time.perf_counter() - clock, 1)})
            log(f"seed {seed} {label}: " + ", ".join(f"{k} {v:.3f}" for k, v in aurocs.items() if k.count("/") == 1))
    return rows


def _mean(rows: list[dict], detector: str, key: str) -> str:
    values = [r["auroc"][key] for r in rows if r["detector"] == detector]
    return f"{np.mean(values):.3f} ± {np.std(values, ddof=1):.3f}" if len(values) > 1 else f"{values[0]:.3f}"


def run(docs: Path, command: str, log: Callable[[str], None], config: quality.Config = CONFIG,
        seeds: tuple[int, ...] = SEEDS) -> list[dict]:
    """``config`` and ``seeds`` shrink the sweep for the tests; the docs figures use the defaults."""
    clock = time.perf_counter()
    rows = _sweep(config, seeds, log)
    detectors = list(dict.fromkeys(r["detector"] for r in rows))
    body = [[d, how, *(_mean(rows, d, f"{how}/{defect}") for defect in DEFECTS)] for d in detectors for how in POOLS]
    text = "\n\n".join([
        f"Command: `{command}` — {describe_machine()}; {(time.perf_counter() - clock) / 60:.1f} min in all.",
        __doc__.split("\n\n", 1)[1].strip(),
        f"The {config.name} configuration's magnetic_tile setup ({config.tile.image_size}-px tiles of the image "
        f"at short side {config.tile.scale}, {config.epochs['magnetic_tile']} epochs, early stopping on held-out "
        f"normal tiles), seeds {', '.join(map(str, seeds))}: each seed's training images are the quality suite's, and its "
        f"{rows[0]['held_out_images']} held-out images (20%, drawn by the seed) are scored clean and painted. "
        "AUROC of painted against clean, mean ± standard deviation over seeds:",
        table(["detector", "pool", *(f"{d} AUROC" for d in DEFECTS)], body),
        "Pools: `max` the highest tile score, `topk` the mean of the 5 highest, `contrast` that mean less "
        "the median tile of the same image.",
    ])
    write_raw("image_defaults", {"command": command, "machine": describe_machine(), "rows": rows}, docs.with_suffix(""))
    write_section("Image defaults", text, docs)
    log(text)
    return rows
