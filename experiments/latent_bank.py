"""Development sweep: the latent-code bank's size, and banks of several network seeds averaged, on painted magnetic_tile defects.

GANomaly's latent-code bank (docs/decisions/0005) is the best image score on the painted
development defects, and its seed spread is small beside its gain. Two cheap ways it could rise
further: a larger bank (the coreset keeps 4,096 of the training tiles' codes; a rare normal
tile left out scores as a defect) or several networks trained from different seeds, each with
its own bank, their image scores averaged (each standardised on its own held-out normal tiles,
as the product does). Judged as ``image_quality`` judges, on the held-out normal images of the
quality suite's magnetic_tile training split, clean and painted; never on the test split. Every
network trains on the same 80% of the training split, so no member has seen a scored image.

    python -m experiments.latent_bank [--docs FILE]
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np

from anomaly.inputs import encode, pool
from benchmarks import datasets, quality
from experiments import cli
from experiments.image_defaults import DEFECTS
from experiments.image_quality import CONFIG, EPOCHS, auroc, log_kinds, painted_split, publish_kinds

SEEDS = (0, 1, 2)
MEMBERS = 3
SIZES = (1024, 4096, 16384)
DETECTOR = "ganomaly[memory=latent]"


def _members(task: datasets.Task, train, settings) -> list:
    """``MEMBERS`` detectors with a latent bank, trained on ``train`` from seeds ``seed``, ``seed + 1000``, ..."""
    cls, params, _ = quality.detector_plan(CONFIG, (DETECTOR,))[DETECTOR]
    found = []
    for member in range(MEMBERS):
        detector = cls(task.fresh_spec(), params, dataclasses.replace(settings, seed=settings.seed + 1000 * member))
        detector.fit(train)
        found.append(detector)
    return found


def _bank_sizes(detector, train, sets: dict, seed: int) -> dict[str, dict[str, np.ndarray]]:
    """Bank size -> set name -> image scores, the first member's networks with a bank of each size."""
    from anomaly_plugins.ganomaly import memory

    spec = detector.spec
    train_x = encode(spec, train).x
    encoded = {name: encode(spec, data) for name, data in sets.items()}
    out = {}
    for size in SIZES:
        bank = memory.build_bank(detector.memory_model, train_x, size, seed)
        out[f"bank {size}"] = {
            n: pool(memory.patch_scores(detector.memory_model, bank, s.x), s.owner, s.count, "max", spec.top_k)
            for n, s in encoded.items()
        }
    return out


def _ensembles(members: list, sets: dict) -> dict[str, dict[str, np.ndarray]]:
    """Members averaged -> set name -> image scores: the first k members' standardised image scores, meaned."""
    scored = [{n: m.score(s, maps=False).scores for n, s in sets.items()} for m in members]
    return {
        f"{k} member{'s' if k > 1 else ''} (bank {members[0].params.memory_size})": {
            n: np.mean([scored[i][n] for i in range(k)], axis=0) for n in sets
        }
        for k in range(1, len(members) + 1)
    }


def _rows(seeds: tuple[int, ...], limit: int | None, log: Callable[[str], None]) -> list[dict]:
    rows = []
    for seed in seeds:
        clock = time.perf_counter()
        task, settings, train, sets = painted_split(seed, limit)
        members = _members(task, train, settings)
        scores = {**_bank_sizes(members[0], train, sets, seed), **_ensembles(members, sets)}
        aurocs = {name: {d: auroc(s["clean"], s[d]) for d in DEFECTS} for name, s in scores.items()}
        rows.append(
            {
                "seed": seed,
                "auroc": aurocs,
                "held_out_images": len(sets["clean"]),
                "train_tiles": int(len(encode(members[0].spec, train).x)),
                "seconds": round(time.perf_counter() - clock, 1),
            }
        )
        log_kinds(log, seed, aurocs)
    return rows


def run(
    command: str,
    log: Callable[[str], None],
    docs: Path | None = None,
    seeds: tuple[int, ...] = SEEDS,
    limit: int | None = None,
) -> list[dict]:
    """Sweep, write ``latent_bank.json`` (beside ``docs`` when given, else docs/benchmarks/) and log the markdown,
    which ``docs`` also gets as a ``Latent bank size and seed ensembles (development)`` section."""
    clock = time.perf_counter()
    rows = _rows(seeds, limit, log)
    intro = (
        f"magnetic_tile, the {CONFIG.name} configuration's tiles, width 16, {EPOCHS} epochs with early stopping, "
        f"seeds {', '.join(map(str, seeds))}; {rows[0]['held_out_images']} held-out images per seed, "
        f"{rows[0]['train_tiles']} training tiles (seed {rows[0]['seed']}). AUROC of painted against clean, "
        "mean ± standard deviation over seeds; `bank N`: the first network with a bank of N codes; "
        "`k members`: the first k networks' image scores averaged:"
    )
    section = "Latent bank size and seed ensembles (development)"
    publish_kinds("latent_bank", section, command, clock, __doc__, intro, rows, False, docs, log)
    return rows


if __name__ == "__main__":
    cli.main("latent_bank", __doc__, run)
