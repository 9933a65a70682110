"""Quality suite: how well each GAN detector and each baseline separates anomalies, on real data.

Every detector, baseline included, is trained and scored in the same run on the same splits
(``benchmarks.datasets``) through the same ``Detector`` pipeline, so tiles are pooled into image
scores, windows labelled by their last step, and thresholds calibrated on held-out normal data the
same way for all. No model or epoch is chosen by test score: early stopping and the threshold only
ever see the held-out part of the normal training data. Figures are mean ± sample standard
deviation over seeds (the seed drives the magnetic_tile/digits split and the detector's weights).
"""

from __future__ import annotations

import dataclasses
import json
import re
import statistics
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from anomaly.data.images import ImageSet
from anomaly.detector import Detector, FitSettings
from anomaly.errors import AnomalyError
from anomaly.evaluation import PIXEL_RESOLUTION, has_masks, pixel_results
from anomaly.inputs import ImageSpec
from anomaly.keras.detector import DEFAULT_WIDTH
from anomaly.metrics import detection_metrics
from anomaly.params import check_params, parse_params
from benchmarks import datasets
from benchmarks.report import DOCS, table, write_raw, write_section
from benchmarks.system import describe_machine

GAN_DETECTORS = ("ganomaly", "anogan")
# The yardsticks, built-in plugins like the GANs (anomaly_plugins.baselines); all but the autoencoder learn in one pass.
BASELINES = ("iforest", "pca", "autoencoder")
# More samples than any training set: the autoencoder then gets the whole set per epoch, in keras fit's minibatches.
FULL_BATCH = 2**31 - 1
METRICS = {"auroc": "AUROC", "auprc": "AUPRC", "best_f1": "best F1", "f1": "F1@thr"}
# Where the test images have ground-truth masks and the detector draws anomaly maps (anomaly.evaluation).
PIXEL_METRICS = {"pixel_auroc": "pixel AUROC", "pro": "PRO"}
FAMILY_TITLES = {"magnetic_tile": "magnetic_tile", "digits": "digits", "smd": "SMD", "asd": "ASD", "nab": "NAB"}
SENSOR_FAMILIES = ("smd", "asd", "nab")
TARGET_TILE_AUROC = 0.80
# Issue 16: GANomaly's margin over the best baseline on magnetic_tile, and how far below it digits may stay.
TILE_MARGIN = 0.05
DIGITS_TOLERANCE = 0.01
_DEFAULT_WIDTHS = f"{DEFAULT_WIDTH['image']} on images, {DEFAULT_WIDTH['series']} on series"


@dataclass(frozen=True)
class Config:
    """Sizes of one named configuration; ``None`` keeps the detector's own default for that option."""

    name: str
    seeds: int
    epochs: dict[str, int]
    batch_size: dict[str, int]
    family_seeds: dict[str, int]
    patience: int | None
    width: int | None
    latent: int | None
    search_steps: int | None
    tile: ImageSpec
    window: int
    train_stride: int
    limit: int | None
    digits: tuple[int, ...]
    smd: tuple[str, ...]
    asd: tuple[str, ...]
    nab: tuple[str, ...]
    summary: str = ""
    tried: str = ""


SMALL_TRIED = (
    "magnetic_tile runs the input settings that did best for plain GANomaly in the shared findings "
    "(`../shared/notes/findings.md`: per-image standardisation, 32-px tiles of the image at short side 128), "
    "shrunk to fit this CPU (width 16, tiles not overlapping), for up to 12 epochs: at 4 the held-out loss of most fits "
    "was still falling at the last epoch. Tile scores pool into the image score by their maximum, chosen on "
    "defects painted onto held-out normal images, never on this test split (docs/decisions/0002-image-tile-pooling-and-score.md): it "
    "beat the mean of the top-5 tiles for every score and detector there (GANomaly 0.645 against 0.598, mean "
    "AUROC over four painted kinds). Tried and not adopted: GANomaly's latent error alone as the image score,"
    " best on the painted defects (0.693) but below chance on digits 0 and 1 in a run of this suite (0.36 and"
    " 0.45; all three components 0.99 and 0.97), so images keep all three; occlusion training "
    "(blobs painted over training tiles for the generator to repaint as normal surface, an inpainting "
    "objective), worse on painted scratches and holes (0.694 and 0.667 against 0.714 and 0.713, three seeds); "
    "`contrast` pooling (the top-5 mean less the image's median tile), between max and top-5 there. The GPU runs "
    "in the shared findings (up to 40 epochs, overlapping tiles, other scores and pooling) stayed at 0.61–0.72 "
    "AUROC, and on this CPU 3/5/7-px smoothed residual maps, signed and dark-only residuals and "
    "discriminator-feature error all stayed at or below 0.63; at GPU scale plain GANomaly reaches 0.67–0.69, and "
    "neither a second tile scale nor a generator with skip connections (Skip-GANomaly's shape, 0.61) helped "
    "(docs/decisions/0003-ganomaly-at-gpu-scale.md). Why 0.80 is out of reach for this method here: the painted defects show "
    "that even a 70–90% dark hole 3–5% of the part across is told from the clean part at best 0.78 of the time, and a "
    "large brighter or darker patch not at all (0.46): the generator rebuilds smooth dark shapes about as well as "
    "the surface, whose fine stripes dominate the residual; real blowholes cover a median 32 pixels (about 6 × 6) "
    "once the image's short side is 128. Digits: at 40 epochs (about 240 steps at batch 16) the held-out loss of every network "
    "detector was still falling at the last epoch, so digits were also run at 100 epochs (section `Quality suite "
    "(small, digits, 100 epochs)` under History, measured before every epoch trained on every sample, so its network figures "
    "are if anything low). Sensor sets: GANomaly scores series by reconstruction error alone, and "
    "SMD/ASD train up to 15 epochs (early stopping deciding within that); both were chosen on development data the "
    "small configuration never reports (SMD machine-2-7 and machine-3-4, ASD omi-2 and omi-3; docs/decisions/0001-series-score-and-network-widths.md), "
    "never on these test splits."
)

CONFIGS: dict[str, Config] = {
    "smoke": Config(
        name="smoke",
        seeds=1,
        epochs={"magnetic_tile": 1, "digits": 1, "smd": 1, "asd": 1, "nab": 1},
        batch_size={},
        family_seeds={},
        patience=None,
        width=4,
        latent=8,
        search_steps=2,
        tile=ImageSpec(image_size=16, tile=True, scale=48, stride=16, standardize=True, pool="max"),
        window=32,
        train_stride=8,
        limit=6,
        digits=(0,),
        smd=("machine-2-2",),
        asd=(),
        nab=("ec2_request_latency_system_failure",),
        summary="magnetic_tile, one digit, one SMD machine and one NAB series on a few items (6 images per class, "
        "384 series steps), 1 epoch, width 4 (ASD is left out: it takes the SMD code path): checks that "
        "every column is produced, the figures mean nothing",
    ),
    "small": Config(
        name="small",
        seeds=3,
        epochs={"magnetic_tile": 12, "digits": 40, "smd": 15, "asd": 15, "nab": 15},
        batch_size={"digits": 16},
        family_seeds={"digits": 1},
        patience=3,
        width=None,
        latent=None,
        search_steps=10,
        tile=ImageSpec(image_size=32, tile=True, scale=128, stride=32, standardize=True, pool="max"),
        window=32,
        train_stride=4,
        limit=None,
        digits=tuple(range(10)),
        smd=("machine-2-2",),
        asd=("omi-1",),
        nab=("ec2_request_latency_system_failure", "nyc_taxi"),
        summary="sized for the 2-core CPU: magnetic_tile 32-px tiles of the image at short side 128, tiles "
        f"not overlapping; default network widths ({_DEFAULT_WIDTHS}); AnoGAN search 10 steps; one SMD machine, one ASD entity, two NAB series; "
        "digits with one seed in the run of every dataset (50 fits per seed), three seeds in their own run "
        "(section `Quality suite (small, digits)`)",
        tried=SMALL_TRIED,
    ),
    "full": Config(
        name="full",
        seeds=3,
        epochs={"magnetic_tile": 30, "digits": 100, "smd": 30, "asd": 30, "nab": 30},
        batch_size={"digits": 16},
        family_seeds={},
        patience=5,
        width=None,
        latent=None,
        search_steps=None,
        tile=ImageSpec(image_size=32, tile=True, scale=128, stride=16, standardize=True, pool="max"),
        window=32,
        train_stride=1,
        limit=None,
        digits=tuple(range(10)),
        smd=("machine-2-2", "machine-2-7", "machine-3-4"),
        asd=tuple(f"omi-{k}" for k in range(1, 7)),
        nab=(
            "ambient_temperature_system_failure",
            "cpu_utilization_asg_misconfiguration",
            "ec2_request_latency_system_failure",
            "machine_temperature_system_failure",
            "nyc_taxi",
            "rogue_agent_key_hold",
            "rogue_agent_key_updown",
        ),
        summary="real size for a GPU or a long run: overlapping tiles (stride 16), default widths and search "
        "steps, every shared SMD machine, ASD entity and NAB realKnownCause series",
    ),
}
FAMILIES = tuple(FAMILY_TITLES)


def tasks(config: Config, seed: int, families: tuple[str, ...], seeds: int | None) -> Iterator[datasets.Task]:
    """The splits for one seed, built lazily so a long run holds one task's data at a time.

    A family runs ``seeds`` seeds when given (the command line's ``--seeds``), else its own count
    from the config (``family_seeds``) or the config's default.
    """
    families = tuple(f for f in families if seed < (seeds or config.family_seeds.get(f, config.seeds)))
    data, limit = datasets.DATA, config.limit
    series_limit = None if config.limit is None else config.limit * 64
    if "magnetic_tile" in families:
        yield datasets.magnetic_tile(seed, dataclasses.replace(config.tile), limit)
    if "digits" in families:
        for d in config.digits:
            yield datasets.digit(d, seed, limit)
    for family, names, folder in (("smd", config.smd, data / "smd"), ("asd", config.asd, data / "asd")):
        if family in families:
            for name in names:
                yield datasets.npz_series(
                    family, folder / f"{name}.npz", config.window, config.train_stride, series_limit
                )
    if "nab" in families:
        for name in config.nab:
            yield datasets.nab_series(
                data / "nab" / "realKnownCause" / f"{name}.csv", config.window, config.train_stride, series_limit
            )


def _params(cls: type[Detector], config: Config) -> Any:
    """The detector's Params with the config's sizes applied where the detector has such an option."""
    wanted = {"width": config.width, "latent": config.latent, "search_steps": config.search_steps}
    known = {f.name for f in dataclasses.fields(cls.Params)}
    return cls.Params(**{k: v for k, v in wanted.items() if v is not None and k in known})


def variant(name: str) -> tuple[str, list[str]]:
    """A detector row's plugin and option overrides: ``ganomaly[memory=latent,memory_size=2048]`` is
    ``ganomaly`` with two ``--set`` options, a row of its own beside plain ``ganomaly``."""
    base, bracket, rest = name.partition("[")
    if not bracket:
        return name, []
    if not rest.endswith("]") or not rest[:-1].strip():
        raise AnomalyError(f"detector {name!r}: expected NAME[KEY=VALUE,...]")
    return base, [item.strip() for item in rest[:-1].split(",")]


def _with_options(cls: type[Detector], params: Any, items: list[str]) -> Any:
    """``params`` with the ``KEY=VALUE`` items applied, each parsed and checked as ``--set`` checks it."""
    parsed = parse_params(cls.Params, items, cls.components)
    keys = {item.split("=", 1)[0].strip().replace("-", "_") for item in items}
    params = dataclasses.replace(params, **{k: getattr(parsed, k) for k in keys})
    check_params(params, cls.components)
    return params


def detector_plan(config: Config, names: tuple[str, ...]) -> dict[str, tuple[type[Detector], Any, bool]]:
    """Name -> (class, params, learns in one pass). The autoencoder copies GANomaly's sizes (the first
    GANomaly row's, a variant's when only variants run)."""
    from anomaly.plugins import registry

    found = registry()
    plan: dict[str, tuple[type[Detector], Any, bool]] = {}
    for name in names:
        base, items = variant(name)
        cls = found.get(base)
        params = _with_options(cls, _params(cls, config), items) if items else _params(cls, config)
        plan[name] = (cls, params, base in BASELINES and base != "autoencoder")
    gans = [params for name, (_, params, _) in plan.items() if variant(name)[0] == "ganomaly"]
    if "autoencoder" in plan and gans:
        gan, autoencoder = gans[0], plan["autoencoder"][0]
        plan["autoencoder"] = (
            autoencoder,
            autoencoder.Params(latent=gan.latent, width=gan.width, network=gan.network, lr=gan.lr),
            False,
        )
    return plan


def settings_for(config: Config, family: str, seed: int, one_pass: bool) -> FitSettings:
    if one_pass:
        return FitSettings(epochs=1, batch_size=FULL_BATCH, seed=seed, patience=None)
    return FitSettings(
        epochs=config.epochs[family], batch_size=config.batch_size.get(family, 64), seed=seed, patience=config.patience
    )


def evaluate(task: datasets.Task, scores: Any, spec: Any = None) -> dict[str, dict[str, float]]:
    """Metrics over all test items, and per defect type (that type's images vs the normal test images).

    With anomaly maps (``scores.maps``) and the fitted ``spec``, each subset with masks also gets pixel
    AUROC and PRO, computed exactly as ``anomaly evaluate`` computes them.
    """
    labels = task.labels_for(scores.steps)
    results = {"all": detection_metrics(labels, scores.scores, scores.threshold)}
    kinds = task.kinds()
    if kinds is not None:
        for kind in sorted(set(kinds[labels == 1])):
            pick = (labels == 0) | (kinds == kind)
            results[kind] = detection_metrics(labels[pick], scores.scores[pick], scores.threshold)
    if scores.maps is not None and spec is not None:
        for subset, metrics in pixel_results(spec, task.test, scores.maps).items():
            results[subset].update(metrics)
    return results


def run_one(task: datasets.Task, cls: type[Detector], params: Any, settings: FitSettings) -> dict[str, Any]:
    detector = cls(task.fresh_spec(), params, settings)
    started = time.perf_counter()
    training = detector.fit(task.train).training
    fitted = time.perf_counter()
    maps = isinstance(task.test, ImageSet) and has_masks(task.test)
    scores = detector.score(task.test, maps=maps, stride=1)
    scored = time.perf_counter()
    metrics = evaluate(task, scores, detector.spec)
    return {
        "metrics": metrics,
        "fit_seconds": round(fitted - started, 2),
        "score_seconds": round(scored - fitted, 2),
        "pixel_seconds": round(time.perf_counter() - scored, 2),
        "scored_items": len(scores),
        "epochs_run": training.epochs_run,
        "best_epoch": training.best_epoch,
        "train_samples": training.train_samples,
    }


def run(
    config: Config,
    *,
    seeds: int | None = None,
    families: tuple[str, ...] = FAMILIES,
    detectors: tuple[str, ...] = (*GAN_DETECTORS, *BASELINES),
    epochs: int | None = None,
    docs: Path = DOCS,
    command: str = "",
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train and score every detector on every task for each seed; write the docs section and raw JSON.

    A run narrowed to some dataset families, given its own epoch count or running detector variants
    (``ganomaly[memory=latent]``) writes its own section and JSON (named after what was narrowed or
    varied), so it never overwrites the configuration's complete run.
    """
    narrowed = [] if set(families) == set(FAMILIES) else ["+".join(families)]
    if epochs is not None:
        config = dataclasses.replace(config, epochs={f: epochs for f in config.epochs})
        narrowed.append(f"{epochs} epochs")
    narrowed += [name for name in detectors if variant(name)[1]]
    parts = [config.name, *narrowed]
    title = ", ".join(parts)
    raw_name = "quality_" + "_".join(re.sub(r"[^\w.]+", "-", part.replace(" ", "")).strip("-") for part in parts)
    plan = detector_plan(config, detectors)
    raw_folder = docs.with_suffix("")
    started = time.perf_counter()
    records: list[dict[str, Any]] = []
    notes: dict[str, str] = {}
    result: dict[str, Any] = {}
    for seed in range(seeds or max(config.seeds, *config.family_seeds.values(), 0)):
        for task in tasks(config, seed, families, seeds):
            if task.note:
                notes[task.name] = task.note
            for name, (cls, params, one_pass) in plan.items():
                record = run_one(task, cls, params, settings_for(config, task.family, seed, one_pass))
                records.append({"family": task.family, "task": task.name, "detector": name, "seed": seed, **record})
                pooled = record["metrics"]["all"]
                pixel = f", pixel AUROC {pooled['pixel_auroc']:.3f}, PRO {pooled['pro']:.3f}" if "pro" in pooled else ""
                log(
                    f"seed {seed} {task.name} {name}: AUROC {pooled['auroc']:.3f}{pixel} "
                    f"(fit {record['fit_seconds']:.0f} s, score {record['score_seconds']:.0f} s)"
                )
            result = _result(config, plan, records, notes, command, time.perf_counter() - started)
            result["title"] = title
            write_raw(raw_name, result, raw_folder)
    write_section(f"Quality suite ({title})", render(result), docs)
    return result


def rerender(docs: Path = DOCS) -> list[str]:
    """Rewrite every quality section from its raw JSON: a change of layout must not cost an hour of reruns."""
    titles = []
    for path in sorted(docs.with_suffix("").glob("quality_*.json")):
        result = json.loads(path.read_text())
        titles.append(f"Quality suite ({result['title']})")
        write_section(titles[-1], render(result), docs)
    return titles


def _result(
    config: Config,
    plan: dict[str, Any],
    records: list[dict[str, Any]],
    notes: dict[str, str],
    command: str,
    seconds: float,
) -> dict[str, Any]:
    seeds: dict[str, int] = {}
    for r in records:
        seeds[r["family"]] = max(seeds.get(r["family"], 0), r["seed"] + 1)
    return {
        "config": config.name,
        "command": command,
        "machine": describe_machine(),
        "seeds": seeds,
        "seconds": round(seconds, 1),
        "settings": {
            "epochs": config.epochs,
            "batch_size": config.batch_size,
            "patience": config.patience,
            "tile": dataclasses.asdict(config.tile),
            "window": config.window,
            "train_stride": config.train_stride,
            "limit": config.limit,
        },
        "params": {name: dataclasses.asdict(params) for name, (_, params, _) in plan.items()},
        "notes": notes,
        "summary": summarise(records),
        "records": records,
    }


def _spread(values: list[float]) -> dict[str, float]:
    return {
        "mean": float(np.mean(values)),
        "sd": statistics.stdev(values) if len(values) > 1 else 0.0,
        "n": len(values),
    }


def summarise(records: list[dict[str, Any]]) -> dict[str, dict[str, dict[str, dict[str, float]]]]:
    """Row -> detector -> metric -> mean/sd over seeds.

    Rows: each task's pooled metrics, each magnetic_tile defect type (``magnetic_tile/MT_Crack``) and,
    for a family of several tasks, the family mean (``digits (mean)``), whose spread is over seeds of
    the per-seed mean over the family's tasks.
    """
    per_seed: dict[tuple[str, str, str], dict[int, list[float]]] = {}
    for r in records:
        for subset, m in r["metrics"].items():
            row = r["task"] if subset == "all" else f"{r['task']}/{subset}"
            for metric in (*METRICS, *PIXEL_METRICS):
                if metric in m:
                    per_seed.setdefault((row, r["detector"], metric), {}).setdefault(r["seed"], []).append(m[metric])
            if subset == "all":
                for metric in (*METRICS, *PIXEL_METRICS):
                    if metric not in m:
                        continue
                    family_row = f"{r['family']} (mean)"
                    per_seed.setdefault((family_row, r["detector"], metric), {}).setdefault(r["seed"], []).append(
                        m[metric]
                    )
    family_sizes = {}
    for r in records:
        family_sizes.setdefault(r["family"], set()).add(r["task"])
    summary: dict[str, dict[str, dict[str, dict[str, float]]]] = {}
    for (row, detector, metric), by_seed in per_seed.items():
        family = row.removesuffix(" (mean)")
        if row.endswith(" (mean)") and len(family_sizes.get(family, ())) < 2:
            continue
        values = [float(np.mean(v)) for _, v in sorted(by_seed.items())]
        summary.setdefault(row, {}).setdefault(detector, {})[metric] = _spread(values)
    return summary


def _fmt(cell: dict[str, float] | None) -> str:
    if cell is None:
        return "–"
    return f"{cell['mean']:.3f} ± {cell['sd']:.3f}" if cell["n"] > 1 else f"{cell['mean']:.3f}"


def _detectors(result: dict[str, Any]) -> list[str]:
    return list(result["params"])


def _main_rows(result: dict[str, Any]) -> list[tuple[str, str]]:
    """(summary row, shown name) family by family: each task, then the family mean; single digits only
    when there is no digits mean (they have a table of their own)."""
    summary = result["summary"]
    tasks_by_family: dict[str, list[str]] = {}
    for r in result["records"]:
        names = tasks_by_family.setdefault(r["family"], [])
        if r["task"] not in names:
            names.append(r["task"])
    rows = []
    for family, names in tasks_by_family.items():
        title, mean = FAMILY_TITLES[family], f"{family} (mean)"
        if not (family == "digits" and mean in summary):
            rows += [(n, n if n == title else f"{title} {n}") for n in names]
        if mean in summary:
            rows.append((mean, f"{title} (mean of {len(names)})"))
    return rows


def render(result: dict[str, Any]) -> str:
    """The docs section: command, machine, what was run, then the tables."""
    summary = result["summary"]
    names = _detectors(result)
    main = []
    for row, shown in _main_rows(result):
        for name in names:
            cells = summary[row].get(name, {})
            main.append([shown, name, *(_fmt(cells.get(m)) for m in METRICS)])
    timing = _timing_rows(result)
    parts = [
        f"Command: `{result['command']}` — {result['machine']}; seeds per dataset "
        f"{', '.join(f'{FAMILY_TITLES[f]} {n}' for f, n in result['seeds'].items())}; "
        f"{result['seconds'] / 60:.1f} min in all.",
        f"Configuration `{result['config']}`: {CONFIGS[result['config']].summary}. "
        f"Epochs {result['settings']['epochs']}, batch size 64 except {result['settings']['batch_size']}, early-stopping patience {result['settings']['patience']} "
        f"on held-out normal data (20% of the training items, or the last 20% of a training series); series "
        f"windows of {result['settings']['window']} steps, training stride {result['settings']['train_stride']}, "
        "scored at stride 1. Detector options: "
        + "; ".join(f"`{n}` {_options(p)}" for n, p in result["params"].items())
        + ".",
        PROTOCOL,
        "Pooled results (mean ± sample standard deviation over seeds; `F1@thr` uses the threshold calibrated "
        "on held-out normal data, the 99th percentile; `best F1` is the best any threshold reaches on the test "
        "set, an upper bound no deployed detector gets):",
        table(["data", "detector", *METRICS.values()], main),
    ]
    parts += [
        "For scale, flagging every item scores F1 " + ", ".join(_flag_all_f1(result)) + " — a best F1 "
        "near that figure means no threshold does better than raising every alarm."
    ]
    per_type = _pivot(result, lambda r: r.startswith("magnetic_tile/"))
    if per_type:
        parts += ["magnetic_tile AUROC per defect type (that type's images against the normal test images):", per_type]
    parts += _pixel_parts(result)
    per_digit = _pivot(result, lambda r: r.startswith("digit-"))
    if per_digit:
        parts += ["Digits AUROC, each digit in turn as the normal class:", per_digit]
    parts += [
        "Mean wall-clock seconds per fit (training plus calibration) and per scoring of the test split, on "
        "the shared machine with whatever else ran at the time (quality runs are not speed measurements):",
        table(["data", *[f"{n} fit / score s" for n in names]], timing),
    ]
    goals = targets(result)
    if goals:
        parts += ["Targets (issues 6 and 16):", table(["target", "measured", "met"], goals)]
        absent = [b for b in BASELINES if b not in result["params"]]
        if absent and any(variant(n)[0] == "ganomaly" for n in names):
            parts += [
                f"Not run here: `{'`, `'.join(absent)}`; the best baseline above is the best of those this run "
                "measured. The configuration's own section for the same datasets has every baseline on the same "
                "splits and seeds."
            ]
    tried = CONFIGS[result["config"]].tried
    if tried and any("no" in row[-1] for row in goals):
        parts += ["What was tried: " + tried]
    if result["notes"]:
        parts += ["Notes: " + "; ".join(f"{k}: {v}" for k, v in result["notes"].items()) + "."]
    return "\n\n".join(parts)


PROTOCOL = (
    "Splits: magnetic_tile `MT_Free` shuffled by seed, 70% trains, the other 30% plus every defect image "
    "test; digits (scikit-learn, 8×8 upscaled to 16×16) the same 70/30 split of the normal digit, all "
    "other digits anomalous; SMD/ASD train on the `train` array and score every window of `test`, each "
    "window's score belonging to its last step (the first window−1 test steps get no score); NAB "
    "realKnownCause has no train split: the first 15% (NAB's probationary period) trains, the rest is "
    "scored. Baselines run in the same process on the same splits through the same pipeline (tiles, "
    "tile pooling, windows, calibration): `iforest` = IsolationForest, `pca` = PCA reconstruction "
    "keeping 95% of the variance (both scikit-learn, on flattened tiles/windows), `autoencoder` = "
    "GANomaly's encoder and decoder (`anomaly.keras.networks`, same width and latent size) trained alone with "
    "L1 reconstruction via keras fit."
)


def _flag_all_f1(result: dict[str, Any]) -> list[str]:
    """F1 of the detector that calls everything anomalous: 2p/(1+p) for anomaly share p, per task (digits: mean)."""
    shares: dict[str, dict[str, float]] = {}
    for r in result["records"]:
        m = r["metrics"]["all"]
        shares.setdefault(r["family"], {})[r["task"]] = m["anomalous"] / (m["anomalous"] + m["normal"])
    shown = []
    for family, by_task in shares.items():
        f1 = {task: 2 * p / (1 + p) for task, p in by_task.items()}
        if family == "digits":
            shown.append(f"digits {np.mean(list(f1.values())):.3f}")
        else:
            shown += [f"{task} {value:.3f}" for task, value in f1.items()]
    return shown


def _options(params: dict[str, Any]) -> str:
    """The options a row ran that set it apart; GANomaly's bank options only where it has a bank."""
    bank = params.get("memory", "none") != "none"
    shown = {
        k: v
        for k, v in params.items()
        if k in ("width", "latent", "network", "search_steps", "encoder_init", "trees", "variance", "lr", "memory")
        or (bank and k in ("memory_size", "memory_level") and (k != "memory_level" or params["memory"] != "latent"))
    }
    return ", ".join(f"{k}={f'default ({_DEFAULT_WIDTHS})' if v is None else v}" for k, v in shown.items())


def _pivot(result: dict[str, Any], keep: Callable[[str], bool], metric: str = "auroc") -> str:
    names = _detectors(result)
    rows = [
        [row.split("/")[-1], *(_fmt(result["summary"][row].get(n, {}).get(metric)) for n in names)]
        for row in result["summary"]
        if keep(row)
    ]
    return table(["subset", *names], rows) if rows else ""


def _pixel_parts(result: dict[str, Any]) -> list[str]:
    """Pixel-level tables where masks were scored: pooled pixel AUROC and PRO, then each per defect type.

    A detector without anomaly maps (IsolationForest scores each flattened tile as a whole) shows "–":
    no per-pixel figure is invented for it.
    """
    summary, names = result["summary"], _detectors(result)
    shown = [row for row, _ in _main_rows(result) if any("pro" in summary[row].get(n, {}) for n in names)]
    if not shown:
        return []
    main = [
        [row, name, *(_fmt(summary[row].get(name, {}).get(m)) for m in PIXEL_METRICS)]
        for row in shown
        for name in names
    ]
    mapless = [n for n in names if not any("pro" in summary[row].get(n, {}) for row in shown)]
    note = (
        f" `{'`, `'.join(mapless)}` draws no anomaly map (it scores each flattened tile as a whole), so it has "
        "no pixel figures (–)."
        if mapless
        else ""
    )
    banked = [n for n in names if result["params"][n].get("memory", "none") != "none"]
    if banked:
        note += (
            f" `{'`, `'.join(banked)}` scores images by its memory bank but draws the same map as plain GANomaly, "
            "the tile's reconstruction residual: the bank gives one distance per tile (a latent code, or the "
            "largest patch distance), no per-pixel one, so these pixel figures are the residual's, not the bank's."
        )
    parts = [
        f"Pixel-level results where the test images have ground-truth masks: the detectors' anomaly maps (tile "
        f"residuals stitched per image, raw values, never rescaled per image or batch) against the masks; "
        f"{PIXEL_RESOLUTION}: short side {result['settings']['tile']['scale']} px here. Pixel AUROC pools "
        "every pixel of every test image (normal images' masks are empty; an anomalous image with an empty "
        "mask, as four of MT_Uneven's are, adds normal pixels only); PRO is the area under the "
        "per-region-overlap curve up to a false-positive rate of 0.3 on normal pixels, divided by 0.3 (MVTec "
        "AD's AUPRO: each connected defect region weighs the same; 1 = perfect, 0.15 = chance)." + note,
        table(["data", "detector", *PIXEL_METRICS.values()], main),
    ]
    for metric, label in PIXEL_METRICS.items():
        pivot = _pivot(result, lambda r: r.startswith("magnetic_tile/"), metric)
        if pivot:
            parts += [f"magnetic_tile {label} per defect type (that type's images and the normal test images):", pivot]
    return parts


def _timing_rows(result: dict[str, Any]) -> list[list[str]]:
    cells: dict[str, dict[str, list[tuple[float, float]]]] = {}
    for r in result["records"]:
        cells.setdefault(r["family"], {}).setdefault(r["detector"], []).append((r["fit_seconds"], r["score_seconds"]))
    rows = []
    for family, by_detector in cells.items():
        row = [FAMILY_TITLES[family]]
        for name in _detectors(result):
            pairs = by_detector.get(name, [])
            row.append(f"{np.mean([p[0] for p in pairs]):.1f} / {np.mean([p[1] for p in pairs]):.1f}" if pairs else "–")
        rows.append(row)
    return rows


def _family_row(result: dict[str, Any], family: str) -> str | None:
    """The summary row that stands for a whole family: its mean, or its only task."""
    summary = result["summary"]
    if f"{family} (mean)" in summary:
        return f"{family} (mean)"
    tasks_seen = {r["task"] for r in result["records"] if r["family"] == family}
    return next(iter(tasks_seen)) if tasks_seen else None


def _auroc(result: dict[str, Any], row: str | None, detector: str) -> float | None:
    cell = result["summary"].get(row or "", {}).get(detector, {}).get("auroc")
    return None if cell is None else cell["mean"]


def _ganomaly_rows(result: dict[str, Any]) -> list[str]:
    """Plain ``ganomaly`` and its variants (``ganomaly[memory=latent]``), in the run's order."""
    return [name for name in _detectors(result) if variant(name)[0] == "ganomaly"]


def _against_baselines(result: dict[str, Any], name: str) -> list[list[str]]:
    """Issue 16: on magnetic_tile a GANomaly row beats the best baseline by TILE_MARGIN, on digits it is within
    DIGITS_TOLERANCE of it; the best is taken among the baselines this run measured, named in the row."""
    rows = []
    for family, goal, margin in (
        ("magnetic_tile", f"≥ best baseline + {TILE_MARGIN:.2f}", TILE_MARGIN),
        ("digits", f"within {DIGITS_TOLERANCE:.2f} of the best baseline", -DIGITS_TOLERANCE),
    ):
        row = _family_row(result, family)
        gan = _auroc(result, row, name)
        measured = {b: v for b in BASELINES if (v := _auroc(result, row, b)) is not None}
        if gan is None or not measured:
            continue
        best = max(measured, key=lambda b: measured[b])
        rows.append(
            [
                f"{name} {FAMILY_TITLES[family]} AUROC {goal}",
                f"{gan:.3f} vs {best} {measured[best]:.3f} (best of {', '.join(measured)}; "
                f"{gan - measured[best]:+.3f})",
                "yes" if gan >= measured[best] + margin else "**no**",
            ]
        )
    return rows


def targets(result: dict[str, Any]) -> list[list[str]]:
    """The issues' quality targets, each marked met or missed from this run's means."""
    rows = []
    auto = _auroc(result, "magnetic_tile", "autoencoder")
    for name in _ganomaly_rows(result):
        gan = _auroc(result, "magnetic_tile", name)
        if gan is not None:
            rows.append(
                [
                    f"{name} magnetic_tile AUROC ≥ {TARGET_TILE_AUROC:.2f}",
                    f"{gan:.3f}",
                    "yes" if gan >= TARGET_TILE_AUROC else "**no**",
                ]
            )
        if gan is not None and auto is not None:
            rows.append(
                [
                    f"{name} magnetic_tile AUROC ≥ autoencoder",
                    f"{gan:.3f} vs {auto:.3f}",
                    "yes" if gan >= auto else "**no**",
                ]
            )
        rows += _against_baselines(result, name)
    wins, compared, detail = 0, 0, []
    for family in SENSOR_FAMILIES:
        row = _family_row(result, family)
        forest = _auroc(result, row, "iforest")
        gans = [v for v in (_auroc(result, row, n) for n in GAN_DETECTORS) if v is not None]
        if forest is None or not gans:
            continue
        compared += 1
        wins += max(gans) >= forest
        detail.append(f"{FAMILY_TITLES[family]} {max(gans):.3f} vs {forest:.3f}")
    if compared:
        rows.append(
            [
                "best GAN AUROC ≥ IsolationForest on ≥ 2 of 3 sensor sets",
                f"{wins} of {compared} ({'; '.join(detail)})",
                "yes" if wins >= 2 else "**no**",
            ]
        )
    return rows
