"""Development sweep: ways to score a tile by its latent code, on painted magnetic_tile defects.

GANomaly's latent-code bank (docs/decisions/0005) is the best image score on the painted
development defects, and neither a larger bank nor averaging networks of several seeds raised it
(``experiments.latent_bank``). What is left to vary costs no training: which code (the encoder's
``z``, the second encoder's code of the reconstruction ``ẑ``, both side by side), how distance is
measured (Euclidean, each dimension scaled by its training spread, whitened, cosine), how many
neighbours (1 or the mean of 5), and a single Gaussian over the codes (Mahalanobis distance to their
mean, as PaDiM scores patches); and, trained once more per seed, a network of width 32 instead of 16.
Judged as ``image_quality`` judges, on the held-out normal images of the quality suite's
magnetic_tile training split, clean and painted; never on the test split.

    python -m experiments.latent_scores [--docs FILE]
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.covariance import LedoitWolf
from sklearn.neighbors import NearestNeighbors

from anomaly.inputs import encode, pool
from benchmarks import quality
from experiments import cli
from experiments.image_defaults import DEFECTS
from experiments.image_quality import CONFIG, auroc, log_kinds, painted_split, publish_kinds, tiles_setup

SEEDS = (0, 1, 2)
DETECTOR = "ganomaly[memory=latent]"
WIDTHS = (16, 32)


def _codes(detector, x: np.ndarray) -> dict[str, np.ndarray]:
    """Code name -> (N, latent) codes of samples ``x``."""
    model = detector.model
    z = np.concatenate([np.asarray(model.encoder(x[i : i + 256], training=False)) for i in range(0, len(x), 256)])
    fake = np.concatenate([np.asarray(model.decoder(z[i : i + 256], training=False)) for i in range(0, len(z), 256)])
    z_hat = np.concatenate(
        [np.asarray(model.encoder2(fake[i : i + 256], training=False)) for i in range(0, len(fake), 256)]
    )
    return {"z": z.reshape(len(z), -1), "ẑ": z_hat.reshape(len(z), -1), "z+ẑ": np.c_[z.reshape(len(z), -1), z_hat]}


def _knn(train: np.ndarray, query: np.ndarray, k: int) -> np.ndarray:
    return NearestNeighbors(n_neighbors=k).fit(train).kneighbors(query)[0].mean(axis=1)


def _tile_scores(train: np.ndarray, query: np.ndarray, full: bool) -> dict[str, np.ndarray]:
    """Score name -> tile scores of ``query`` against training codes ``train``."""
    out = {"euclidean, 1 nn": _knn(train, query, 1)}
    if not full:
        return out
    out["euclidean, mean of 5 nn"] = _knn(train, query, 5)
    std = train.std(axis=0) + 1e-6
    out["per-dimension scaled, 1 nn"] = _knn(train / std, query / std, 1)
    gauss = LedoitWolf().fit(train)
    out["gaussian (mahalanobis to mean)"] = gauss.mahalanobis(query)
    mean, precision = gauss.location_, gauss.precision_
    vals, vecs = np.linalg.eigh(precision)
    whiten = vecs * np.sqrt(np.maximum(vals, 0))
    out["whitened, 1 nn"] = _knn((train - mean) @ whiten, (query - mean) @ whiten, 1)
    norm = np.linalg.norm(train, axis=1, keepdims=True) + 1e-9
    out["cosine, 1 nn"] = _knn(train / norm, query / np.linalg.norm(query, axis=1, keepdims=True), 1)
    return out


def _rows(seeds: tuple[int, ...], limit: int | None, log: Callable[[str], None]) -> list[dict]:
    rows = []
    cls, params, _ = quality.detector_plan(CONFIG, (DETECTOR,))[DETECTOR]
    for seed in seeds:
        clock = time.perf_counter()
        task, settings, train, sets = painted_split(seed, limit)
        aurocs: dict[str, dict[str, float]] = {}
        for width in WIDTHS:
            detector = cls(task.fresh_spec(), dataclasses.replace(params, width=width), settings)
            detector.fit(task.train)
            spec = detector.spec
            train_codes = _codes(detector, encode(spec, train).x)
            encoded = {n: encode(spec, s) for n, s in sets.items()}
            queries = {n: _codes(detector, s.x) for n, s in encoded.items()}
            for code in train_codes if width == WIDTHS[0] else ("z",):
                full = width == WIDTHS[0]
                per_set = {n: _tile_scores(train_codes[code], q[code], full) for n, q in queries.items()}
                for score in per_set["clean"]:
                    images = {
                        n: pool(per_set[n][score], s.owner, s.count, "max", spec.top_k) for n, s in encoded.items()
                    }
                    name = f"width {width}, {code}, {score}"
                    aurocs[name] = {d: auroc(images["clean"], images[d]) for d in DEFECTS}
        rows.append({"seed": seed, "auroc": aurocs, "seconds": round(time.perf_counter() - clock, 1)})
        log_kinds(log, seed, aurocs)
    return rows


def run(
    command: str,
    log: Callable[[str], None],
    docs: Path | None = None,
    seeds: tuple[int, ...] = SEEDS,
    limit: int | None = None,
) -> list[dict]:
    """Sweep, write ``latent_scores.json`` (beside ``docs`` when given, else docs/benchmarks/) and log the
    markdown, which ``docs`` also gets as a ``Latent-code scores (development)`` section."""
    clock = time.perf_counter()
    rows = _rows(seeds, limit, log)
    intro = (
        f"{tiles_setup(seeds)}; every training tile's code is kept (no coreset). AUROC of painted against "
        "clean, mean ± standard deviation over seeds, best first:"
    )
    section = "Latent-code scores (development)"
    publish_kinds("latent_scores", section, command, clock, __doc__, intro, rows, True, docs, log)
    return rows


if __name__ == "__main__":
    cli.main("latent_scores", __doc__, run)
