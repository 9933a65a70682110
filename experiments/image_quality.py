"""Development sweep: nearest-neighbour scoring in GANomaly's own feature space, on data the quality suite never reports.

GANomaly's reconstruction, latent and discriminator errors stay at 0.61-0.69 AUROC on
magnetic_tile however it is trained (docs/decisions/0002 and 0003). This sweep keeps the
trained networks and scores differently: a memory bank of the training tiles' patch features
(one feature map of the encoder or the discriminator, or the latent code; a greedy coreset of
4,096 patches, ``anomaly_plugins.ganomaly.memory``), each patch scored by its distance to the
nearest bank patch, the largest over the tile, tiles pooled by their maximum. It is judged
as ``image_defaults`` judges: on the held-out normal images of the quality suite's magnetic_tile
training split, clean and with each painted defect kind; and on digits, the held-out part of
each digit's training split against the held-out parts of the other digits' training splits.
The same detector's default score and PCA (the best baseline on the test split) are scored on the
same images.

    python -m experiments.image_quality [--docs FILE] [--seeds 2] [--digit-seeds ''] [--latent-only] [--merge]

Decided: docs/decisions/0005-ganomaly-memory-bank-scoring.md.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shlex
import sys
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from anomaly import harness
from anomaly.data.images import ImageSet
from anomaly.detector import FitSettings
from anomaly.harness import holdout_images
from anomaly.inputs import encode, pool
from anomaly.threshold import Normaliser
from benchmarks import datasets, quality
from benchmarks.report import RAW, read_raw, table
from benchmarks.system import describe_machine
from experiments import cli
from experiments.image_defaults import DEFECTS, painted

SEEDS = (0, 1, 2)
DIGIT_SEEDS = (0,)
CONFIG = quality.CONFIGS["small"]
BANK = 4096
# Fewer epochs than the quality suite's 12, as in ``image_defaults``: three seeds and ten digits then fit the CPU time here.
EPOCHS = 4
DEFAULT = {"latent": 1.0, "reconstruction": 1.0, "discriminator": 1.0}


def _candidates(detector, latent_only: bool) -> dict[str, object]:
    """Feature name -> Keras model giving each sample's patch features: each level of both bodies (unless
    ``latent_only``: the feature-map banks cost most of a seed's scoring time), and the code."""
    from anomaly_plugins.ganomaly import memory

    model = detector.model
    if latent_only:
        return {"latent code": model.encoder}
    levels = int(np.log2(detector.spec.sample_shape[0] // 4))
    found = {}
    for net_name, net in (("discriminator", model.features), ("encoder", model.encoder)):
        for level in range(levels):
            found[f"{net_name} {level}"] = memory.feature_model(net, level)
    found["latent code"] = model.encoder
    return found


def _scores(
    detector, pca, train: ImageSet, sets: dict[str, ImageSet], seed: int, latent_only: bool
) -> dict[str, dict[str, np.ndarray]]:
    """score name -> set name -> image scores (tiles pooled by their maximum)."""
    from anomaly_plugins.ganomaly import memory

    spec = detector.spec
    train_x = encode(spec, train).x
    encoded = {name: encode(spec, data) for name, data in sets.items()}
    tile_scores: dict[str, dict[str, np.ndarray]] = {}
    comps = {name: harness.components(detector, s.x, want_maps=False)[0] for name, s in encoded.items()}
    default = Normaliser(detector.normaliser.mean, detector.normaliser.std, DEFAULT)
    tile_scores["ganomaly (default)"] = {n: default.combine(c) for n, c in comps.items()}
    pca_comps = {name: harness.components(pca, s.x, want_maps=False)[0] for name, s in encoded.items()}
    pca_norm = Normaliser(pca.normaliser.mean, pca.normaliser.std, {"reconstruction": 1.0})
    tile_scores["pca"] = {n: pca_norm.combine(c) for n, c in pca_comps.items()}
    for name, extractor in _candidates(detector, latent_only).items():
        bank = memory.build_bank(extractor, train_x, BANK, seed)
        raw = {n: memory.patch_scores(extractor, bank, s.x) for n, s in encoded.items()}
        tile_scores[f"memory: {name}"] = raw
        # Standardised on the clean held-out images, as the product's normaliser is, then added to the default.
        mean, std = float(np.mean(raw["clean"])), float(max(np.std(raw["clean"]), 1e-8))
        tile_scores[f"memory: {name} + default"] = {
            n: ((raw[n] - mean) / std + 3 * tile_scores["ganomaly (default)"][n]) / 4 for n in raw
        }
    out: dict[str, dict[str, np.ndarray]] = {}
    for score_name, per_set in tile_scores.items():
        out[score_name] = {}
        for set_name, values in per_set.items():
            s = encoded[set_name]
            out[score_name][set_name] = pool(values, s.owner, s.count, "max", spec.top_k) if spec.tile else values
    return out


def auroc(normal: np.ndarray, anomalous: np.ndarray) -> float:
    """AUROC of ``anomalous`` scores against ``normal`` ones (1 = every anomaly above every normal)."""
    labels = np.r_[np.zeros(len(normal)), np.ones(len(anomalous))]
    return float(roc_auc_score(labels, np.r_[normal, anomalous]))


def _fit(name: str, spec, train: ImageSet, settings):
    cls, params, one_pass = quality.detector_plan(CONFIG, ("ganomaly", "pca"))[name]
    if one_pass:
        settings = dataclasses.replace(settings, epochs=1, batch_size=quality.FULL_BATCH, patience=None)
    detector = cls(spec, params, settings)
    detector.fit(train)
    return detector


def tiles_setup(seeds: tuple[int, ...]) -> str:
    """How the sweeps on painted magnetic_tile defects trained, for their sections' text."""
    return (
        f"magnetic_tile, the {CONFIG.name} configuration's tiles, {EPOCHS} epochs with early stopping, "
        f"seeds {', '.join(map(str, seeds))}"
    )


def painted_split(seed: int, limit: int | None) -> tuple[datasets.Task, FitSettings, ImageSet, dict[str, ImageSet]]:
    """The quality suite's magnetic_tile task for ``seed``, its development settings (at most ``EPOCHS``), the
    images a detector trains on, and the images it holds out: clean, and with each painted kind (never the test split)."""
    task = datasets.magnetic_tile(seed, dataclasses.replace(CONFIG.tile), limit)
    settings = quality.settings_for(CONFIG, "magnetic_tile", seed, one_pass=False)
    settings = dataclasses.replace(settings, epochs=min(EPOCHS, settings.epochs))
    train, held_out = holdout_images(task.train, settings.holdout, seed)
    return task, settings, train, {"clean": held_out, **{d: painted(held_out, d, seed) for d in DEFECTS}}


def log_kinds(log: Callable[[str], None], seed: int, aurocs: dict[str, dict[str, float]]) -> None:
    """One line per score: its AUROC on each painted kind, and their mean."""
    for name, per in aurocs.items():
        log(
            f"seed {seed} {name}: "
            + ", ".join(f"{d} {v:.3f}" for d, v in per.items())
            + f"; mean {np.mean(list(per.values())):.3f}"
        )


def publish_kinds(
    name: str,
    section: str,
    command: str,
    started: float,
    doc: str,
    intro: str,
    rows: list[dict],
    best_first: bool,
    docs: Path | None,
    log: Callable[[str], None],
) -> None:
    """A painted-kinds sweep's ending: its section (command, what it measured, ``intro``, the kinds table),
    published with its raw rows (``cli.publish``)."""
    from experiments import cli

    text = "\n\n".join([cli.ran(command, started), cli.about(doc), intro, kinds_table(rows, best_first)])
    cli.publish(name, section, command, rows, text, docs, log)


def kinds_table(rows: list[dict], best_first: bool) -> str:
    """Per score, AUROC on each painted kind and the mean over kinds, each mean ± standard deviation over seeds."""
    body = []
    for name in rows[0]["auroc"]:
        per = [[r["auroc"][name][d] for d in DEFECTS] for r in rows]
        cells = [_cell([p[i] for p in per]) for i in range(len(DEFECTS))]
        body.append([name, *cells, _cell([float(np.mean(p)) for p in per])])
    if best_first:
        body.sort(key=lambda row: row[-1], reverse=True)
    return table(["score", *DEFECTS, "mean over kinds"], body)


def _tiles(seeds: tuple[int, ...], limit: int | None, latent_only: bool, log: Callable[[str], None]) -> list[dict]:
    rows = []
    for seed in seeds:
        clock = time.perf_counter()
        task, settings, train, sets = painted_split(seed, limit)
        held_out = sets["clean"]
        gan = _fit("ganomaly", task.fresh_spec(), task.train, settings)
        pca = _fit("pca", task.fresh_spec(), task.train, settings)
        fitted = time.perf_counter()
        scores = _scores(gan, pca, train, sets, seed, latent_only)
        aurocs = {name: {d: auroc(s["clean"], s[d]) for d in DEFECTS} for name, s in scores.items()}
        rows.append(
            {
                "data": "magnetic_tile",
                "seed": seed,
                "auroc": aurocs,
                "held_out_images": len(held_out),
                "epochs_run": gan.training.epochs_run,
                "fit_seconds": round(fitted - clock, 1),
                "score_seconds": round(time.perf_counter() - fitted, 1),
            }
        )
        for name, per in aurocs.items():
            log(f"magnetic_tile seed {seed} {name}: " + ", ".join(f"{d} {v:.3f}" for d, v in per.items()))
    return rows


def _digits(seeds: tuple[int, ...], limit: int | None, latent_only: bool, log: Callable[[str], None]) -> list[dict]:
    rows = []
    for seed in seeds:
        settings = quality.settings_for(CONFIG, "digits", seed, one_pass=False)
        tasks = {d: datasets.digit(d, seed, limit) for d in CONFIG.digits}
        splits = {d: holdout_images(t.train, settings.holdout, seed) for d, t in tasks.items()}
        for digit, task in tasks.items():
            others = [splits[o][1] for o in tasks if o != digit]
            other = ImageSet(ids=[i for s in others for i in s.ids], images=[im for s in others for im in s.images])
            gan = _fit("ganomaly", task.fresh_spec(), task.train, settings)
            pca = _fit("pca", task.fresh_spec(), task.train, settings)
            scores = _scores(gan, pca, splits[digit][0], {"clean": splits[digit][1], "other": other}, seed, latent_only)
            aurocs = {name: {"other digits": auroc(s["clean"], s["other"])} for name, s in scores.items()}
            rows.append({"data": f"digit-{digit}", "seed": seed, "auroc": aurocs})
            log(f"digit {digit} seed {seed}: " + ", ".join(f"{n} {a['other digits']:.3f}" for n, a in aurocs.items()))
    return rows


def _cell(values: list[float]) -> str:
    return quality._fmt(quality._spread(values))


def _tile_table(rows: list[dict]) -> tuple[list[str], list[list[str]]]:
    names = list(rows[0]["auroc"])
    body = []
    for name in names:
        per = [[r["auroc"][name][d] for d in DEFECTS] for r in rows]
        cells = [_cell([p[i] for p in per]) for i in range(len(DEFECTS))]
        body.append([name, *cells, f"{np.mean(per):.3f}"])
    return ["score", *DEFECTS, "mean"], sorted(body, key=lambda row: row[-1], reverse=True)


def _held_out_kind(rows: list[dict]) -> list[list[str]]:
    """For each painted kind left out: the memory score best on the other three, and how it does on the one left out."""
    names = [n for n in rows[0]["auroc"] if n.startswith("memory")]
    body = []
    for kind in DEFECTS:
        seen = [d for d in DEFECTS if d != kind]
        best = max(names, key=lambda n: np.mean([[r["auroc"][n][d] for d in seen] for r in rows]))
        left = {n: np.mean([r["auroc"][n][kind] for r in rows]) for n in (best, "ganomaly (default)", "pca")}
        body.append([kind, best, *(f"{v:.3f}" for v in left.values())])
    return body


def _digit_table(rows: list[dict]) -> list[list[str]]:
    names = list(rows[0]["auroc"])
    body = []
    for name in names:
        values = [r["auroc"][name]["other digits"] for r in rows]
        body.append([name, f"{np.mean(values):.3f}", f"{min(values):.3f}"])
    return sorted(body, key=lambda row: row[1], reverse=True)


def _merged(rows: list[dict], docs: Path | None) -> list[dict]:
    """``rows`` with the rows of the last run (beside ``docs``) that this one did not remeasure, so seeds can run one at a time."""
    last = read_raw("image_quality", docs) if docs else None
    if last is None and (RAW / "image_quality.json").exists():
        last = json.loads((RAW / "image_quality.json").read_text())
    fresh = {(r["data"], r["seed"]) for r in rows}
    kept = [r for r in (last or {}).get("rows", []) if (r["data"], r["seed"]) not in fresh]
    return sorted(kept + rows, key=lambda r: (r["data"], r["seed"]))


def _shared(rows: list[dict]) -> list[dict]:
    """Rows cut to the scores every one of them has: a latent-only run beside a full one compares what both measured."""
    if not rows:
        return rows
    names = [n for n in rows[0]["auroc"] if all(n in r["auroc"] for r in rows)]
    return [{**r, "auroc": {n: r["auroc"][n] for n in names}} for r in rows]


def run(
    command: str,
    log: Callable[[str], None],
    docs: Path | None = None,
    seeds: tuple[int, ...] = SEEDS,
    digit_seeds: tuple[int, ...] = DIGIT_SEEDS,
    limit: int | None = None,
    latent_only: bool = False,
    merge: bool = False,
) -> list[dict]:
    """Sweep, write ``image_quality.json`` (beside ``docs`` when given, else docs/benchmarks/) and log the
    markdown, which ``docs`` also gets as an ``Image quality (development)`` section. ``seeds``,
    ``digit_seeds`` and ``limit`` shrink it for a smoke run; ``latent_only`` skips the feature-map banks;
    ``merge`` keeps the last run's rows for the seeds not rerun, each row naming the command that measured it."""
    clock = time.perf_counter()
    rows = [
        {**r, "command": command}
        for r in _tiles(seeds, limit, latent_only, log)
        + (_digits(digit_seeds, limit, latent_only, log) if digit_seeds else [])
    ]
    if merge:
        rows = _merged(rows, docs)
    tiles = _shared([r for r in rows if r["data"] == "magnetic_tile"])
    digits = _shared([r for r in rows if r["data"].startswith("digit-")])
    tile_seeds = sorted({r["seed"] for r in tiles})
    header, body = _tile_table(tiles)
    commands = "; ".join(f"`{c}`" for c in dict.fromkeys(r["command"] for r in rows))
    parts = [
        f"Commands: {commands} — {describe_machine()}; the last took {(time.perf_counter() - clock) / 60:.1f} min.",
        cli.about(__doc__),
        f"magnetic_tile, the {CONFIG.name} configuration (32-px tiles of the image at short side "
        f"{CONFIG.tile.scale}, width 16, {min(EPOCHS, CONFIG.epochs['magnetic_tile'])} epochs with early stopping), seeds "
        f"{', '.join(map(str, tile_seeds))}; {tiles[0]['held_out_images']} held-out images per seed, each clean and "
        "painted. AUROC of painted against clean, mean ± standard deviation over seeds:",
        table(header, body),
        "`+ default` adds the bank's distance, standardised on the clean held-out images, to GANomaly's three "
        "components as one more equally weighted part. With one painted kind held out: the memory score that "
        "is best on the other three kinds, and its AUROC on the kind left out beside the default score's and PCA's:",
        table(
            ["kind left out", "chosen on the other three", "its AUROC", "ganomaly (default)", "pca"],
            _held_out_kind(tiles),
        ),
    ]
    if digits:
        parts += [
            f"digits (16 px, {CONFIG.epochs['digits']} epochs at batch {CONFIG.batch_size['digits']}), seeds "
            f"{', '.join(map(str, sorted({r['seed'] for r in digits})))}: AUROC of the other digits' held-out images "
            "against the normal digit's, over the ten digits:",
            table(["score", "mean", "worst digit"], _digit_table(digits)),
        ]
    text = "\n\n".join(parts)
    cli.publish("image_quality", "Image quality (development)", command, rows, text, docs, log)
    return rows


def _seeds(text: str) -> tuple[int, ...]:
    return tuple(int(s) for s in text.split(",") if s)


def main() -> None:
    """The shared ``--docs`` plus what this sweep needs to run a seed at a time: ``--seeds 2 --digit-seeds '' --merge``."""
    parser = argparse.ArgumentParser(prog="python -m experiments.image_quality", description=__doc__.splitlines()[0])
    parser.add_argument("--docs", type=Path, help="also write the markdown into this file (raw JSON beside it)")
    parser.add_argument("--seeds", type=_seeds, default=SEEDS, help="magnetic_tile seeds, comma-separated")
    parser.add_argument("--digit-seeds", type=_seeds, default=DIGIT_SEEDS, help="digits seeds ('' for none)")
    parser.add_argument(
        "--latent-only", action="store_true", help="skip the encoder and discriminator feature-map banks"
    )
    parser.add_argument("--merge", action="store_true", help="keep the last run's rows for seeds not rerun")
    args = parser.parse_args()
    command = shlex.join(["python", "-m", "experiments.image_quality", *sys.argv[1:]])
    run(command, print, args.docs, args.seeds, args.digit_seeds, latent_only=args.latent_only, merge=args.merge)


if __name__ == "__main__":
    main()
