"""Development check: GANomaly's bank scoring tiles at a second, finer scale, alone and combined.

Issue 16 lists multi-scale tiles among what measurement may support. The small configuration cuts
32-px tiles after resizing each image's short side to 128 px, where a thin crack or a small hole
covers few pixels. This fits the product's detector (``ganomaly``, whose image default is the
latent-code bank) once per seed and scale, at short side 128 and at 256 (about four times the tiles),
scores the held-out images through ``Detector.score``, and compares each scale with their mean and
their maximum. Both scores are in held-out standard deviations, so they combine without weights.
Judged on development data only: magnetic_tile's held-out normal training images, clean and painted.

    python -m experiments.scales [--docs FILE]
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from benchmarks import quality
from experiments import cli
from experiments.image_defaults import DEFECTS
from experiments.image_quality import CONFIG, auroc, log_kinds, painted_split, publish_kinds, tiles_setup

SEEDS = (0, 1, 2)
SCALES = (128, 256)


def _scores(task, settings, sets: dict, scale: int) -> dict[str, np.ndarray]:
    """Set name -> image scores of a detector trained with tiles cut at short side ``scale``."""
    cls, params, _ = quality.detector_plan(CONFIG, ("ganomaly",))["ganomaly"]
    detector = cls(dataclasses.replace(task.fresh_spec(), scale=scale), params, settings)
    detector.fit(task.train)
    return {name: detector.score(s, maps=False).scores for name, s in sets.items()}


def _sweep(seeds: tuple[int, ...], limit: int | None, log: Callable[[str], None]) -> list[dict]:
    rows = []
    for seed in seeds:
        clock = time.perf_counter()
        task, settings, _, sets = painted_split(seed, limit)
        per_scale = {f"short side {scale}": _scores(task, settings, sets, scale) for scale in SCALES}
        low, high = per_scale.values()
        scores = {
            **per_scale,
            "mean of both": {n: (low[n] + high[n]) / 2 for n in sets},
            "maximum of both": {n: np.maximum(low[n], high[n]) for n in sets},
        }
        aurocs = {name: {d: auroc(s["clean"], s[d]) for d in DEFECTS} for name, s in scores.items()}
        rows.append({"seed": seed, "auroc": aurocs, "seconds": round(time.perf_counter() - clock, 1)})
        log_kinds(log, seed, aurocs)
    return rows


def run(
    command: str, log: Callable[[str], None], docs: Path | None = None, seeds: tuple[int, ...] = SEEDS, limit=None
) -> list[dict]:
    """The sweep; ``scales.json`` beside ``docs`` (else docs/benchmarks/) and the markdown, which ``docs`` also
    gets as a ``Tile scales (development)`` section. ``seeds`` and ``limit`` shrink it."""
    clock = time.perf_counter()
    rows = [{**r, "command": command} for r in _sweep(seeds, limit, log)]
    intro = (
        f"{tiles_setup(seeds)}. AUROC of painted against clean held-out images, mean ± standard deviation over seeds:"
    )
    publish_kinds("scales", "Tile scales (development)", command, clock, __doc__, intro, rows, False, docs, log)
    return rows


if __name__ == "__main__":
    cli.main("scales", __doc__, run)
