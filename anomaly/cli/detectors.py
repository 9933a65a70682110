"""Detector commands: list plugins, train on normal data, score, and evaluate on labelled data."""

from __future__ import annotations

import json
import shutil
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from anomaly.cli.config import config_option, recorded
from anomaly.errors import AnomalyError, DataError
from anomaly.extras import missing_extra
from anomaly.inputs import POOLS, finite
from anomaly.keras.precision import PRECISIONS

if TYPE_CHECKING:
    from anomaly.artifact import Manifest
    from anomaly.modes import ImageModes
    from anomaly.plugins import PluginRegistry

out = Console()
err = Console(stderr=True)


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_command(as_json: bool) -> None:
    """List detector plugins: where each came from and what input it accepts; decoders, plugin commands, broken ones."""
    from anomaly.cli import cli
    from anomaly.params import describe_params, option_line
    from anomaly.plugins import CORE, all_broken, registry

    reg = registry()
    rows: list[dict[str, Any]] = [
        {
            "name": name,
            "distribution": info.distribution,
            "version": info.version,
            "inputs": list(info.cls.modalities),
            "components": list(info.cls.components),
            "options": describe_params(info.cls.Params),
            "description": info.cls.description,
        }
        for name, info in sorted(reg.detectors.items())
    ]
    found, plugin_commands = _decoders(), cli.plugin_commands()
    decoders = [{"name": n, "modality": i.modality, "plugin": i.plugin} for n, i in sorted(found.known.items())]
    commands = [{"name": n, "plugin": i.plugin} for n, i in sorted(plugin_commands.known.items()) if i.plugin != CORE]
    broken = all_broken(reg, found, plugin_commands)
    if as_json:
        click.echo(
            json.dumps({"detectors": rows, "decoders": decoders, "commands": commands, "broken": broken}, indent=2)
        )
        return
    # Plain lines, not a table: a table squeezed into a narrow (or piped, 80-column) terminal wraps mid-word.
    for row in rows:
        click.echo(f"{row['name']}  ({row['distribution']} {row['version']})  {row['description']}")
        click.echo(f"  inputs: {', '.join(row['inputs'])};  components: {', '.join(row['components'])}")
        click.echo("  options (--set KEY=VALUE):")
        for entry in row["options"]:
            click.echo(f"    {option_line(entry)}")
    if decoders:
        click.echo(
            "stream decoders (--decoder): "
            + ", ".join(f"{d['name']} ({d['modality']}, {d['plugin']})" for d in decoders)
        )
    if commands:
        click.echo("plugin commands: " + ", ".join(f"{c['name']} ({c['plugin']})" for c in commands))
    for name, reason in broken.items():
        err.print(f"[red]broken plugin {name}[/red]: {reason}", highlight=False)


def _decoders() -> PluginRegistry[Any]:
    """The stream decoders, or none listed when the extra with their JSON parser (orjson) is not installed."""
    from anomaly.plugins import PluginRegistry

    try:
        from anomaly.stream.decode import decoders
    except ModuleNotFoundError as exc:
        if missing_extra(exc, "anomaly serve") is None:
            raise
        return PluginRegistry()
    return decoders()


def _spec(
    modality: str,
    image_size: int,
    tile: bool,
    scale: int | None,
    stride: int | None,
    standardize: bool,
    pool: str,
    top_k: int,
    window: int,
):
    from anomaly.inputs import ImageSpec, SeriesSpec

    if modality == "image":
        return ImageSpec(
            image_size=image_size,
            tile=tile,
            scale=scale or None,
            stride=stride,
            standardize=standardize,
            pool=pool,
            top_k=top_k,
        )
    return SeriesSpec(window=window, stride=stride or 1)


def _calibration(percentile: float, target_fpr: float | None, anomalies: Path | None):
    from anomaly.threshold import Calibration

    if anomalies is not None:
        return Calibration(method="f1", percentile=percentile)
    if target_fpr is not None:
        return Calibration(method="fpr", percentile=percentile, target_fpr=target_fpr)
    return Calibration(percentile=percentile)


def _split_test(data, fraction: float, seed: int | None):
    """Hold back a share of a labelled folder's normal images so evaluation never sees training images."""
    from anomaly.data.images import normal_only

    normal = normal_only(data)
    if fraction <= 0:
        return normal
    if not 0 < fraction < 1:
        raise AnomalyError(f"--test-fraction must be between 0 and 1 (got {fraction})")
    order = np.random.default_rng(seed).permutation(len(normal))
    keep = np.sort(order[round(len(normal) * fraction) :])
    return normal.subset(keep)


def _check_out(out_dir: Path, force: bool) -> None:
    """Refuse an --out that training could not, or should not silently, write to — before training starts."""
    if out_dir.exists() and not out_dir.is_dir():
        raise AnomalyError(f"--out {out_dir}: is a file, not a model folder")
    if out_dir.is_dir() and any(out_dir.iterdir()):
        if not (out_dir / "manifest.json").is_file():
            raise AnomalyError(f"--out {out_dir}: a folder that is not empty and holds no model; choose another")
        if not force:
            raise AnomalyError(f"--out {out_dir}: already holds a model; pass --force to replace it")


def _save(model, out_dir: Path) -> None:
    """Write the model beside ``out_dir`` and swap it in: a failed save leaves the old model (or nothing)."""
    out_dir.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.", dir=out_dir.parent))
    try:
        model.save(staging)
        if out_dir.exists():
            shutil.rmtree(out_dir)
        staging.rename(out_dir)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


@click.command("train")
@config_option
@click.argument("detector")
@click.argument("data", type=click.Path(path_type=Path))
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    required=True,
    help="Model folder to write (refused if it holds a model, unless --force).",
)
@click.option("--force", is_flag=True, help="Replace the model already in --out.")
@click.option(
    "--epochs",
    type=click.IntRange(1),
    default=None,
    help="Passes over the training data (default: planned from the images, 15 for series).",
)
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True, help="Samples per training step.")
@click.option("--seed", type=int, default=0, show_default=True, help="Makes training and scores repeatable.")
@click.option(
    "--image-size",
    type=int,
    default=None,
    help="Square network input (16, 32, 64, ...; default: planned from the images).",
)
@click.option(
    "--tile/--no-tile",
    default=None,
    help="Cut tiles of --image-size (small defects survive) instead of resizing the whole image "
    "(default: planned, tiles for images over 64 px).",
)
@click.option(
    "--scale",
    type=click.IntRange(0),
    default=None,
    help="Resize the image's short side to this before tiling (0 = keep the original size; default: planned, 128).",
)
@click.option(
    "--stride",
    type=click.IntRange(1),
    default=None,
    help="Step between consecutive training windows of a series (default 1), or between image tiles "
    "(default half a tile; kept in the model and used when scoring).",
)
@click.option(
    "--standardize/--no-standardize",
    default=True,
    show_default=True,
    help="Per-image intensity standardisation (lighting changes are not defects).",
)
@click.option(
    "--pool",
    type=click.Choice(POOLS),
    default="max",
    show_default=True,
    help="Tile scores to image score: the max, the mean of the --top-k highest, or contrast "
    "(that mean less the image's median tile).",
)
@click.option(
    "--top-k", type=click.IntRange(1), default=5, show_default=True, help="Tiles averaged by --pool topk and contrast."
)
@click.option("--window", type=int, default=32, show_default=True, help="Series window length in steps.")
@click.option(
    "--normal-class",
    default="good",
    show_default=True,
    help="Normal sub-folder of a labelled image folder (must exist when the folder has class folders).",
)
@click.option(
    "--test-fraction",
    type=float,
    default=0.3,
    show_default=True,
    help="Share of a labelled folder's normal images kept out of training for evaluation.",
)
@click.option("--split", default="train", show_default=True, help="Array of an NPZ file to train on.")
@click.option(
    "--holdout", type=float, default=0.2, show_default=True, help="Share of training data held out for calibration."
)
@click.option(
    "--patience", type=int, default=5, show_default=True, help="Early stopping on held-out normal loss (0 = off)."
)
@click.option(
    "--precision",
    type=click.Choice(PRECISIONS),
    default="float32",
    show_default=True,
    help="mixed: Keras networks train in bfloat16 (no loss scaling needed; fast on A100/H100-class GPUs); scoring stays float32.",
)
@click.option(
    "--modes",
    default="auto",
    show_default=True,
    metavar="1|N|auto",
    help="Images: modes of normal data (variants, lighting, cameras), clustered on the images; each image's score "
    "is standardised by held-out normal images of its mode. auto: as many as the images show (1-8).",
)
@click.option(
    "--threshold-percentile",
    type=click.FloatRange(0, 100),
    default=99.0,
    show_default=True,
    help="Threshold at this percentile of held-out normal scores.",
)
@click.option(
    "--target-fpr",
    type=click.FloatRange(0, 1, min_open=True, max_open=True),
    default=None,
    help="Set the threshold for this false-positive rate instead.",
)
@click.option(
    "--calibration-anomalies",
    type=click.Path(path_type=Path),
    default=None,
    help="Labelled anomalies: set the F1-optimal threshold.",
)
@click.option("--set", "options", multiple=True, metavar="KEY=VALUE", help="Detector option (see `anomaly plugins`).")
@click.option(
    "--register", "register_as", default=None, metavar="NAME", help="Store the model in the registry under NAME."
)
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print the training report as JSON instead of a table.")
@click.pass_context
def train_command(
    ctx: click.Context,
    detector: str,
    data: Path,
    out_dir: Path,
    force: bool,
    epochs: int | None,
    batch_size: int,
    seed: int,
    image_size: int | None,
    tile: bool | None,
    scale: int | None,
    stride: int | None,
    standardize: bool,
    pool: str,
    top_k: int,
    window: int,
    normal_class: str,
    test_fraction: float,
    split: str,
    holdout: float,
    patience: int,
    precision: str,
    modes: str,
    threshold_percentile: float,
    target_fpr: float | None,
    calibration_anomalies: Path | None,
    options: tuple[str, ...],
    register_as: str | None,
    progress: bool,
    as_json: bool,
) -> None:
    """Train DETECTOR on the normal data in DATA (an image folder, or a CSV/NPZ series) and save it to --out.

    Everything is checked before training starts (options, data layout, --out), and a run whose
    losses or scores stop being finite is refused, so no model folder is written that would mislead.
    """
    from anomaly.data.images import ImageSet
    from anomaly.data.load import load_dataset, modality_of
    from anomaly.detector import FitSettings
    from anomaly.modes import check_wanted
    from anomaly.params import parse_params
    from anomaly.plugins import registry

    cls = registry().get(detector)
    params = parse_params(cls.Params, options, cls.components)
    settings = FitSettings(
        epochs=epochs or 15,
        batch_size=batch_size,
        seed=seed,
        holdout=holdout,
        patience=patience or None,
        precision=precision,
        modes=check_wanted(modes),
        calibration=_calibration(threshold_percentile, target_fpr, calibration_anomalies),
    )
    spec = _spec(modality_of(data), image_size or 32, bool(tile), scale, stride, standardize, pool, top_k, window)
    model = cls(spec, params, settings)
    _check_out(out_dir, force)
    if register_as:
        from anomaly.store.engine import get_engine

        get_engine()  # the registry's database is reachable and migrated before training, not after
    dataset = load_dataset(data, split=split, normal_class=normal_class)
    if isinstance(dataset, ImageSet) and dataset.labels is not None:
        dataset = _split_test(dataset, test_fraction, seed)
    if isinstance(dataset, ImageSet):
        _apply_plan(model, dataset, tile=tile, image_size=image_size, scale=scale, epochs=epochs)
    anomalies = None
    if calibration_anomalies is not None:
        anomalies = load_dataset(calibration_anomalies, split=split, normal_class=normal_class)
    model.fit(dataset, anomalies=anomalies, progress=progress, source=str(data.resolve()))
    assert model.training is not None  # fit records how it went
    report = model.training.model_dump(mode="json")
    model.config = recorded(ctx)
    _save(model, out_dir)
    registered = None
    if register_as:
        from anomaly.store.registry import register_trained_model

        record = register_trained_model(
            register_as, out_dir, model.manifest(), data_summary={"source": str(data.resolve()), "items": len(dataset)}
        )
        registered = {"name": register_as, "version": record.version, "status": record.status}
    if as_json:
        summary = {key: value for key, value in report.items() if key != "history"}
        click.echo(
            json.dumps(
                {
                    "detector": cls.name,
                    "model": str(out_dir),
                    "threshold": model.threshold,
                    "calibration": model.settings.calibration.method,
                    "modes": None if model.image_modes is None else _modes_report(model.image_modes),
                    "registered": registered,
                    **summary,
                },
                indent=2,
            )
        )
        return
    _summary(cls.name, out_dir, model, report, registered)


def _apply_plan(model, dataset, **given: Any) -> None:
    """Fill the options the operator left unset from the images (anomaly.plan), print the plan and keep it
    for the manifest; options given on the command line or in a config file are kept as they are."""
    import dataclasses

    from anomaly.plan import plan_images

    sizes = [image.shape[:2] for image in dataset.images]
    plan = plan_images(sizes, model.settings.batch_size, model.settings.holdout, **given)
    model.prepare(dataclasses.replace(model.spec, tile=plan.tile, image_size=plan.image_size, scale=plan.scale or None))
    model.settings.epochs = plan.epochs
    model.plan = plan.to_dict()
    click.echo(plan.line(), err=True)


def _modes_report(modes: ImageModes) -> dict[str, Any]:
    """What the JSON report says of the modes: how many, and each one's held-out normal figures."""
    return {"count": modes.count, "mean": modes.mean, "std": modes.std}


def _summary(name: str, out_dir: Path, model, report: dict, registered: dict[str, Any] | None) -> None:
    table = Table(title=f"trained {name}", show_header=False)
    table.add_row("model folder", str(out_dir))
    table.add_row("training items / samples", f"{report['train_items']} / {report['train_samples']}")
    table.add_row("held-out items / samples", f"{report['validation_items']} / {report['validation_samples']}")
    table.add_row("epochs run (best)", f"{report['epochs_run']} ({report['best_epoch'] or '-'})")
    table.add_row("time", f"{report['seconds']:.1f} s")
    if report.get("backend"):
        table.add_row("trained on", f"{report['backend']}, {report['device']} ({report['precision']})")
    table.add_row("threshold", f"{model.threshold:.4f} ({model.settings.calibration.method})")
    if model.image_modes is not None:
        means = ", ".join(f"{m:.3g}" for m in model.image_modes.mean)
        table.add_row(
            "modes of normal data",
            f"{model.image_modes.count}: scores standardised per mode (held-out means {means})",
        )
    for key, value in report["metrics"].items():
        if key != "epoch":
            table.add_row(key, f"{value:.5g}")
    if registered:
        table.add_row("registered", f"{registered['name']} version {registered['version']} ({registered['status']})")
    out.print(table)


def _score_line(result) -> tuple[str, bool]:
    """One JSON line (never NaN or Infinity, which JSON lacks): a non-finite score is null, and so is its flag."""
    row = result.to_json()
    valid = finite(row["score"])
    if not valid:
        row["score"], row["is_anomaly"] = None, None
    row["components"] = {name: value if finite(value) else None for name, value in row["components"].items()}
    return json.dumps(row, allow_nan=False), valid


def _check_inputs(model_dir: Path, data_path: Path) -> Manifest:
    """The model folder's manifest and the input's existence, checked before TensorFlow or the model loads."""
    from anomaly.artifact import Manifest

    manifest = Manifest.read(model_dir)
    if not data_path.exists():
        raise DataError(f"{data_path}: no such file or folder")
    return manifest


def _null_if_not_finite(value: Any) -> Any:
    """A report with NaN (an AUROC over one class, say) as null: JSON has no NaN."""
    if isinstance(value, dict):
        return {key: _null_if_not_finite(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_null_if_not_finite(item) for item in value]
    if isinstance(value, float) and not finite(value):
        return None
    return value


@click.command("score")
@click.argument("model_dir", metavar="MODEL", type=click.Path(path_type=Path))
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--split", default="test", show_default=True, help="Array of an NPZ file to score.")
@click.option(
    "--normal-class",
    default="good",
    show_default=True,
    help="Normal sub-folder, when INPUT is a labelled image folder.",
)
@click.option(
    "--stride",
    type=click.IntRange(1),
    default=None,
    help="Step between consecutive scored windows of a series (default 1: every step); "
    "images are tiled with the stride the model was trained with.",
)
@click.option(
    "--maps",
    "maps_dir",
    type=click.Path(path_type=Path),
    default=None,
    help="Write anomaly-map pictures (image beside its heat overlay) to this folder.",
)
def score_command(
    model_dir: Path, input_path: Path, split: str, normal_class: str, stride: int | None, maps_dir: Path | None
) -> None:
    """Score INPUT (image, image folder or series file) with MODEL; prints one JSON line per item (already JSON).

    A score that is not a finite number is printed as null (is_anomaly null too) and the command
    then fails: JSON has no NaN, and a NaN compared with the threshold would read as "normal".
    """
    from anomaly.data.images import ImageSet
    from anomaly.data.load import load_dataset
    from anomaly.plugins import load_model

    manifest = _check_inputs(model_dir, input_path)
    if stride is not None and manifest.input.get("modality") == "image":
        raise AnomalyError("--stride applies to series; this model tiles images with the stride it was trained with")
    data = load_dataset(input_path, split=split, normal_class=normal_class, with_masks=maps_dir is not None)
    model = load_model(model_dir)
    scores = model.score(data, maps=maps_dir is not None, stride=stride)
    invalid = 0
    for result in scores:
        line, valid = _score_line(result)
        invalid += not valid
        sys.stdout.write(line + "\n")
    if maps_dir is not None and isinstance(data, ImageSet) and scores.maps is not None:
        from anomaly.maps import write_pictures

        written = write_pictures(maps_dir, data, scores, model.map_scale or 1.0)
        err.print(f"wrote {len(written)} anomaly-map pictures to {maps_dir}")
    if invalid:
        raise AnomalyError(
            f"{invalid} of {len(scores)} item(s) got no finite score (printed as null): "
            "the model's networks give NaN or infinity on this input; retrain the model"
        )


@click.command("evaluate")
@config_option
@click.argument("model_dir", metavar="MODEL", type=click.Path(path_type=Path))
@click.argument("data_path", metavar="DATA", type=click.Path(path_type=Path))
@click.option("--split", default="test", show_default=True, help="Array of an NPZ file to evaluate on.")
@click.option("--normal-class", default="good", show_default=True, help="Normal sub-folder of a labelled image folder.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of a table.")
def evaluate_command(model_dir: Path, data_path: Path, split: str, normal_class: str, as_json: bool) -> None:
    """Evaluate MODEL on labelled DATA: AUROC, AUPRC, F1 at the threshold and best F1.

    Images the model was trained on are left out, so a labelled folder can serve for both.
    """
    from anomaly.evaluation import evaluate

    _check_inputs(model_dir, data_path)
    report = evaluate(model_dir, data_path, split=split, normal_class=normal_class)
    if as_json:
        click.echo(json.dumps(_null_if_not_finite(report), indent=2, allow_nan=False))
        return
    table = Table(
        "subset",
        "normal",
        "anomalous",
        "AUROC",
        "AUPRC",
        "F1@threshold",
        "best F1",
        title=f"{report['detector']} on {data_path}",
    )
    for name, m in report["results"].items():
        table.add_row(
            name,
            str(m["normal"]),
            str(m["anomalous"]),
            f"{m['auroc']:.3f}",
            f"{m['auprc']:.3f}",
            f"{m['f1']:.3f}",
            f"{m['best_f1']:.3f}",
        )
    out.print(table)
    if "pixel_resolution" in report:
        pixels = Table(
            "subset",
            "defect regions",
            "pixel AUROC",
            "PRO",
            title="pixel level: anomaly maps against masks",
            caption=f"{report['pixel_resolution']}; PRO: per-region overlap to FPR 0.3, normalised",
        )
        for name, m in report["results"].items():
            if "pro" in m:
                pixels.add_row(name, str(m["regions"]), f"{m['pixel_auroc']:.3f}", f"{m['pro']:.3f}")
        out.print(pixels)
    if report["excluded_training_items"]:
        err.print(f"left out {report['excluded_training_items']} item(s) the model was trained on")


COMMANDS = [plugins_command, train_command, score_command, evaluate_command]
