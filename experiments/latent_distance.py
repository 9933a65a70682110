"""Development check: the GANomaly bank's whitened distance against its Euclidean one, through the product.

``experiments.latent_scores`` found whitened latent codes (Mahalanobis with Ledoit-Wolf shrinkage,
nearest neighbour) the best code score on painted magnetic_tile defects, computed outside the
product on every training code. This fits the product's detector (``ganomaly``, whose image default
is the latent-code bank, a 4,096-code coreset) once per seed and task, scores the held-out images
through ``Detector.score`` with its Euclidean bank, then rebuilds the bank from the same networks
with ``memory_distance=whitened`` and scores them again. One score component and a monotone pooling
make AUROC independent of the normaliser, so the first bank's calibration serves both. Judged on
development data only: magnetic_tile's held-out normal training images, clean and painted; and
each digit's held-out normal images against the other digits' held-out images.

    python -m experiments.latent_distance [--docs FILE]
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from anomaly.data.images import ImageSet
from anomaly.harness import holdout_images
from anomaly.inputs import encode
from benchmarks import datasets, quality
from benchmarks.report import table
from experiments import cli
from experiments.image_defaults import DEFECTS
from experiments.image_quality import CONFIG, EPOCHS, auroc, kinds_table, log_kinds, painted_split, tiles_setup

SEEDS = (0, 1, 2)
DIGIT_SEED = 0
DISTANCES = ("euclidean", "whitened")


def _per_distance(detector, train: ImageSet, sets: dict[str, ImageSet]) -> dict[str, dict[str, np.ndarray]]:
    """Distance -> set name -> image scores, the whitened bank built from the networks the Euclidean one used."""
    from anomaly_plugins.ganomaly import memory

    out = {"euclidean": {n: detector.score(s, maps=False).scores for n, s in sets.items()}}
    detector.params = dataclasses.replace(detector.params, memory_distance="whitened")
    detector.memory_model = memory.whitened_model(detector.memory_model)
    detector.fit_once(encode(detector.spec, train).x)
    out["whitened"] = {n: detector.score(s, maps=False).scores for n, s in sets.items()}
    return out


def _fit(task: datasets.Task, settings):
    cls, params, _ = quality.detector_plan(CONFIG, ("ganomaly",))["ganomaly"]
    detector = cls(task.fresh_spec(), params, settings)
    detector.fit(task.train)
    return detector


def _tiles(seeds: tuple[int, ...], limit: int | None, log: Callable[[str], None]) -> list[dict]:
    rows = []
    for seed in seeds:
        clock = time.perf_counter()
        task, settings, train, sets = painted_split(seed, limit)
        scores = _per_distance(_fit(task, settings), train, sets)
        aurocs = {name: {d: auroc(s["clean"], s[d]) for d in DEFECTS} for name, s in scores.items()}
        rows.append({"seed": seed, "auroc": aurocs, "seconds": round(time.perf_counter() - clock, 1)})
        log_kinds(log, seed, aurocs)
    return rows


def _digits(seed: int, limit: int | None, log: Callable[[str], None]) -> list[dict]:
    settings = quality.settings_for(CONFIG, "digits", seed, one_pass=False)
    settings = dataclasses.replace(settings, epochs=min(EPOCHS, settings.epochs))
    tasks = {d: datasets.digit(d, seed, limit) for d in CONFIG.digits}
    splits = {d: holdout_images(t.train, settings.holdout, seed) for d, t in tasks.items()}
    rows = []
    for digit, task in tasks.items():
        others = [splits[o][1] for o in tasks if o != digit]
        other = ImageSet(ids=[i for s in others for i in s.ids], images=[im for s in others for im in s.images])
        train, held_out = splits[digit]
        scores = _per_distance(_fit(task, settings), train, {"clean": held_out, "other": other})
        aurocs = {name: auroc(s["clean"], s["other"]) for name, s in scores.items()}
        rows.append({"digit": digit, "seed": seed, "auroc": aurocs})
        log(f"digit {digit}: " + ", ".join(f"{n} {a:.3f}" for n, a in aurocs.items()))
    return rows


def run(command: str, log: Callable[[str], None], docs: Path | None = None, limit: int | None = None) -> dict:
    """Both checks; ``latent_distance.json`` beside ``docs`` (else docs/benchmarks/) and the markdown, which
    ``docs`` also gets as a ``Bank distance (development)`` section."""
    clock = time.perf_counter()
    rows = {"magnetic_tile": _tiles(SEEDS, limit, log), "digits": _digits(DIGIT_SEED, limit, log)}
    digit_rows = [
        [
            name,
            f"{np.mean([r['auroc'][name] for r in rows['digits']]):.3f}",
            f"{min(r['auroc'][name] for r in rows['digits']):.3f}",
        ]
        for name in DISTANCES
    ]
    text = "\n\n".join(
        [
            cli.ran(command, clock),
            cli.about(__doc__),
            f"{tiles_setup(SEEDS)}. AUROC of painted against clean held-out images, mean ± standard deviation "
            "over seeds:",
            kinds_table(rows["magnetic_tile"], best_first=False),
            f"Digits {', '.join(map(str, CONFIG.digits))}, seed {DIGIT_SEED}, at most {EPOCHS} epochs: AUROC of "
            "the other digits' held-out images against the normal digit's:",
            table(["distance", "mean over digits", "worst digit"], digit_rows),
        ]
    )
    cli.publish("latent_distance", "Bank distance (development)", command, rows, text, docs, log)
    return rows


if __name__ == "__main__":
    cli.main("latent_distance", __doc__, run)
