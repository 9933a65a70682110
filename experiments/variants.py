"""Development sweep: normal data with two modes, and whether GANomaly's latent memory bank scores both alike.

Issue 16 met two product variants whose normal images scored far apart (mean 2.3 against 0.4),
so the pooled AUROC mostly measured the variant, not the defects. This sweep builds such a set
from development data only: the quality suite's magnetic_tile training images (at most ``LIMIT``)
as one variant and one digit's training images as the other, both normal, trained together with
the small configuration's tile setup (the detector scales every image to short side 128, so both
variants become 32-px tiles). The images the detector held out of training are scored clean; the
anomalies are the held-out magnetic_tile images with a defect painted on (``image_defaults``) and
the held-out parts of the other nine digits' training splits. The held-out images are split in two:
the detectors calibrate on one half and are measured on the other (clean, and with the defects
painted on them). Scores compared: GANomaly's default, PCA, and the latent memory bank
(docs/decisions/0005) without per-mode handling and with its bank clustered into modes, each tile's
distance divided by its mode's typical distance or, with two modes, made a z-score among the training
distances of its mode, and the same bank's codes whitened over both variants' training codes
(``memory_distance=whitened``); and the product's modes of normal images (``--modes`` 2 and auto,
through ``Detector.score``: images clustered on their grey-level histograms and channel means, each
image's score standardised by its mode's calibration images, ``anomaly.modes``). The same runs on each
variant alone (digits in their own 16-px whole-image setup) check what the handling costs on data with
one mode.

    python -m experiments.variants [--docs FILE]

Decided: docs/decisions/0006-latent-bank-default-and-memory-modes.md (tile scaling) and
0008-per-mode-image-calibration.md.
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

from anomaly import harness
from anomaly.data.images import ImageSet
from anomaly.harness import holdout_images
from anomaly.inputs import encode, pool
from anomaly.modes import MAX_MODES
from anomaly.threshold import Normaliser
from anomaly_plugins.ganomaly import memory
from benchmarks import datasets, quality
from benchmarks.report import table
from experiments import cli
from experiments.image_defaults import DEFECTS, painted

SEEDS = (0, 1, 2)
CONFIG = quality.CONFIGS["small"]
DIGIT = 0
# magnetic_tile training images per seed, so a seed trains in minutes on the shared CPU.
LIMIT = 240
# As ``image_defaults`` and ``image_quality``: fewer epochs than the quality suite's 12.
EPOCHS = 4
DEFAULT = {"latent": 1.0, "reconstruction": 1.0, "discriminator": 1.0}
MODES = ("1", "2", "auto")
# --modes run through the product: images clustered, scores standardised per mode (anomaly.modes).
PER_IMAGE = ("2", "auto")
TILE = "magnetic_tile"
DIGITS = f"digit-{DIGIT}"


def _other_digits(seed: int, settings) -> ImageSet:
    """The held-out parts of the other digits' training splits (never a test split)."""
    parts = [holdout_images(datasets.digit(d, seed).train, settings.holdout, seed)[1] for d in range(10) if d != DIGIT]
    return ImageSet(ids=[i for p in parts for i in p.ids], images=[im for p in parts for im in p.images])


def _anomalies(variant: str, clean: ImageSet, seed: int, settings) -> ImageSet:
    if variant == DIGITS:
        return _other_digits(seed, settings)
    kinds = [painted(clean, d, seed) for d in DEFECTS]
    return ImageSet(ids=[i for k in kinds for i in k.ids], images=[im for k in kinds for im in k.images])


def _fit(name: str, spec, train: ImageSet, calibration: ImageSet, settings, **options):
    cls, params, one_pass = quality.detector_plan(CONFIG, ("ganomaly", "pca"))[name]
    if one_pass:
        settings = dataclasses.replace(settings, epochs=1, batch_size=quality.FULL_BATCH, patience=None)
    detector = cls(spec, dataclasses.replace(params, **options), settings)
    detector.fit(train, calibration)
    return detector


def _tile_scores(gan, pca, train: ImageSet, sets: dict[str, ImageSet], seed: int) -> tuple[dict, dict, dict]:
    """(score name -> set name -> raw tile scores, encoded sets, what each mode choice saw)."""
    spec = gan.spec
    encoded = {name: encode(spec, data) for name, data in sets.items()}
    comps = {n: harness.components(gan, s.x, want_maps=False)[0] for n, s in encoded.items()}
    pca_comps = {n: harness.components(pca, s.x, want_maps=False)[0] for n, s in encoded.items()}
    raw = {
        "ganomaly (default)": comps,
        "pca": {n: {"reconstruction": c["reconstruction"]} for n, c in pca_comps.items()},
    }
    train_x = encode(spec, train).x
    seen = {}
    white = memory.whitened_model(gan.memory_model)
    memory.fit_whitening(white, train_x, seed)
    bank = memory.build_bank(white, train_x, gan.params.memory_size, seed)
    raw["memory: latent, whitened"] = {n: {"memory": memory.patch_scores(white, bank, s.x)} for n, s in encoded.items()}
    for wanted in MODES:
        name = f"memory: latent, modes {wanted}"
        if wanted == "1":
            raw[name] = {n: {"memory": c["memory"]} for n, c in comps.items()}
            continue
        labels, found = memory.modes(gan.bank, wanted, seed, MAX_MODES)
        scale = memory.mode_scales(gan.memory_model, gan.bank, labels, train_x, seed)
        raw[name] = {
            n: {"memory": memory.patch_scores(gan.memory_model, gan.bank, s.x, scale)} for n, s in encoded.items()
        }
        seen[wanted] = found
        if wanted == "2":
            raw[f"{name}, standardised"] = {
                n: {"memory": _standardised(gan.memory_model, gan.bank, labels, train_x, s.x, seed)}
                for n, s in encoded.items()
            }
    return raw, encoded, seen


def _standardised(model, bank: np.ndarray, labels: np.ndarray, train_x: np.ndarray, x: np.ndarray, seed: int):
    """Each tile's distance as a z-score among training tiles nearest the same mode (mean and spread, not the median)."""
    from sklearn.metrics import pairwise_distances_argmin_min

    found, mode = memory.training_distances(model, bank, labels, train_x, seed)
    mean = np.array([found[mode == m].mean() for m in range(labels.max() + 1)])
    std = np.array([max(found[mode == m].std(), 1e-8) for m in range(labels.max() + 1)])
    nearest, d = pairwise_distances_argmin_min(memory.patch_features(model, x).reshape(len(x), -1), bank)
    return (d - mean[labels[nearest]]) / std[labels[nearest]]


def _image_scores(raw: dict, encoded: dict, calibration: list[str]) -> dict[str, dict[str, np.ndarray]]:
    """Each score standardised on the calibration images' tiles (as the product's normaliser is), pooled by the max."""
    out = {}
    for score, per_set in raw.items():
        keys = list(next(iter(per_set.values())))
        held = {k: np.concatenate([per_set[n][k] for n in calibration]) for k in keys}
        normaliser = Normaliser.fit(held, {k: DEFAULT.get(k, 1.0) for k in keys})
        out[score] = {}
        for n, comps in per_set.items():
            s, combined = encoded[n], normaliser.combine(comps)
            out[score][n] = pool(combined, s.owner, s.count, "max", 5) if s.owner is not None else combined
    return out


def _auroc(normal: np.ndarray, anomalous: np.ndarray) -> float:
    return float(roc_auc_score(np.r_[np.zeros(len(normal)), np.ones(len(anomalous))], np.r_[normal, anomalous]))


def _measure(data: str, parts: dict[str, ImageSet], spec, settings, seed: int) -> dict:
    """Train on the parts together; per score: each variant's mean normal score, AUROC within and pooled.

    The images held out of training are split in two: the detectors calibrate on one half (the
    product's normaliser and per-mode figures) and are measured on the other, so no measured image
    calibrated its own score.
    """
    combined = ImageSet(
        ids=[i for p in parts.values() for i in p.ids], images=[im for p in parts.values() for im in p.images]
    )
    train, held = holdout_images(combined, settings.holdout, seed)
    calibration, measured = holdout_images(held, 0.5, seed)
    owner = {i: v for v, p in parts.items() for i in p.ids}
    clean = {v: measured.subset([k for k, i in enumerate(measured.ids) if owner[i] == v]) for v in parts}
    sets = {f"{v} clean": c for v, c in clean.items()}
    sets.update({f"{v} anomalous": _anomalies(v, c, seed, settings) for v, c in clean.items()})
    clock = time.perf_counter()
    plain = dataclasses.replace(settings, modes="1")
    gan = _fit("ganomaly", spec, train, calibration, plain, memory="latent", memory_distance="euclidean")
    pca = _fit("pca", dataclasses.replace(spec), train, calibration, plain)
    per_image = {
        wanted: _fit(
            "ganomaly", dataclasses.replace(spec), train, calibration, dataclasses.replace(settings, modes=wanted)
        )
        for wanted in PER_IMAGE
    }
    fitted = time.perf_counter()
    raw, encoded, seen = _tile_scores(gan, pca, train, {**sets, "calibration": calibration}, seed)
    scores = _image_scores(raw, encoded, ["calibration"])
    for wanted, detector in per_image.items():
        scores[f"memory: latent, image modes {wanted}"] = {n: detector.score(s).scores for n, s in sets.items()}
        seen[f"image modes {wanted}"] = {"modes": float(detector.image_modes.count if detector.image_modes else 1)}
    results = {}
    for name, s in scores.items():
        normal = np.concatenate([s[f"{v} clean"] for v in parts])
        results[name] = {
            "mean": {v: float(np.mean(s[f"{v} clean"])) for v in parts},
            "held_out_std": float(np.std(normal)),
            "within": {v: _auroc(s[f"{v} clean"], s[f"{v} anomalous"]) for v in parts},
            "pooled": _auroc(normal, np.concatenate([s[f"{v} anomalous"] for v in parts])),
        }
    return {
        "data": data,
        "seed": seed,
        "scores": results,
        "modes_seen": seen,
        "calibration_images": {v: sum(owner[i] == v for i in calibration.ids) for v in parts},
        "measured_images": {v: len(c) for v, c in clean.items()},
        "epochs_run": gan.training.epochs_run,
        "fit_seconds": round(fitted - clock, 1),
        "score_seconds": round(time.perf_counter() - fitted, 1),
    }


def _sweep(seeds: tuple[int, ...], limit: int, log: Callable[[str], None]) -> list[dict]:
    rows = []
    for seed in seeds:
        tile_settings = quality.settings_for(CONFIG, TILE, seed, one_pass=False)
        tile_settings = dataclasses.replace(tile_settings, epochs=min(EPOCHS, tile_settings.epochs))
        tiles = datasets.magnetic_tile(seed, CONFIG.tile, limit).train
        digit = datasets.digit(DIGIT, seed)
        digit_settings = quality.settings_for(CONFIG, "digits", seed, one_pass=False)
        runs = [
            ("two variants", {TILE: tiles, DIGITS: digit.train}, CONFIG.tile, tile_settings),
            (TILE, {TILE: tiles}, CONFIG.tile, tile_settings),
            (DIGITS, {DIGITS: digit.train}, digit.spec, digit_settings),
        ]
        for data, parts, spec, settings in runs:
            row = _measure(data, parts, dataclasses.replace(spec), settings, seed)
            rows.append(row)
            for name, r in row["scores"].items():
                means = ", ".join(f"{v} {m:.2f}" for v, m in r["mean"].items())
                within = ", ".join(f"{v} {a:.3f}" for v, a in r["within"].items())
                log(
                    f"{data} seed {seed} {name}: normal mean {means} (held-out std {r['held_out_std']:.2f}); "
                    f"AUROC within {within}; pooled {r['pooled']:.3f}"
                )
            log(f"{data} seed {seed} modes seen: {row['modes_seen']}")
    return rows


def _mean(rows: list[dict], pick: Callable[[dict], float]) -> str:
    return quality._fmt(quality._spread([pick(r) for r in rows]))


def _two_variant_table(rows: list[dict]) -> list[list[str]]:
    body = []
    for name in rows[0]["scores"]:
        scores = [r["scores"][name] for r in rows]
        body.append(
            [
                name,
                *(_mean(scores, lambda s, v=v: s["mean"][v]) for v in (TILE, DIGITS)),
                _mean(scores, lambda s: abs(s["mean"][TILE] - s["mean"][DIGITS]) / s["held_out_std"]),
                *(_mean(scores, lambda s, v=v: s["within"][v]) for v in (TILE, DIGITS)),
                _mean(scores, lambda s: s["pooled"]),
            ]
        )
    return body


def _single_table(rows: list[dict]) -> list[list[str]]:
    body = []
    for data in (TILE, DIGITS):
        for name in rows[0]["scores"]:
            ran = [r for r in rows if r["data"] == data]
            body.append([data, name, _mean(ran, lambda r, n=name: r["scores"][n]["pooled"])])
    return body


def _modes_line(rows: list[dict]) -> str:
    seen = []
    for r in rows:
        found, images = r["modes_seen"]["auto"], r["modes_seen"]["image modes auto"]
        seen.append(
            f"{r['data']} seed {r['seed']}: {found['memory_modes']:.0f} on the bank's codes "
            f"(silhouette {found['memory_silhouette']:.2f}), {images['modes']:.0f} on the images"
        )
    return (
        "Modes `auto` chose, on the bank's codes (best silhouette over 2-8 clusters; one mode below 0.25) and on "
        "the images (split while a split separates, anomaly.modes): " + "; ".join(seen) + "."
    )


def run(
    command: str,
    log: Callable[[str], None],
    docs: Path | None = None,
    seeds: tuple[int, ...] = SEEDS,
    limit: int = LIMIT,
) -> list[dict]:
    """Sweep, write ``variants.json`` (beside ``docs`` when given, else docs/benchmarks/) and log the markdown,
    which ``docs`` also gets as a ``Two variants (development)`` section. ``seeds`` and ``limit`` shrink it."""
    clock = time.perf_counter()
    rows = [{**r, "command": command} for r in _sweep(seeds, limit, log)]
    two = [r for r in rows if r["data"] == "two variants"]
    calibrated, measured = two[0]["calibration_images"], two[0]["measured_images"]
    text = "\n\n".join(
        [
            cli.ran(command, clock),
            cli.about(__doc__),
            f"Seeds {', '.join(map(str, seeds))}; {limit} magnetic_tile images and digit {DIGIT}'s training split, "
            f"{EPOCHS} epochs; of the images held out of training, per seed {calibrated[TILE]} magnetic_tile and "
            f"{calibrated[DIGITS]} digit images calibrate and {measured[TILE]} and {measured[DIGITS]} are measured. "
            "Mean held-out normal image score of each variant (scores are in held-out standard deviations of tile "
            "scores, tiles pooled by their maximum), the gap between them in standard deviations of the held-out "
            "image scores, and AUROC within each variant and pooled; mean ± standard deviation over seeds:",
            table(
                [
                    "score",
                    f"{TILE} normal",
                    f"{DIGITS} normal",
                    "gap (held-out std)",
                    f"AUROC {TILE}",
                    f"AUROC {DIGITS}",
                    "AUROC pooled",
                ],
                _two_variant_table(two),
            ),
            "Each variant alone (one mode): AUROC of its anomalies against its held-out normal images:",
            table(["data", "score", "AUROC"], _single_table(rows)),
            _modes_line(rows),
        ]
    )
    cli.publish("variants", "Two variants (development)", command, rows, text, docs, log)
    return rows


if __name__ == "__main__":
    cli.main("variants", __doc__, run)
