"""Detector commands: list plugins, train on normal data, score, and evaluate on labelled data."""

from __future__ import annotations

import json
import sys
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.table import Table

from anomaly.errors import AnomalyError
from anomaly.inputs import POOLS

out = Console()
err = Console(stderr=True)


@click.command("plugins")
@click.option("--json", "as_json", is_flag=True, help="Machine-readable output.")
def plugins_command(as_json: bool) -> None:
    """List detector plugins: where each came from and what input it accepts."""
    from anomaly.params import describe_params
    from anomaly.plugins import registry

    reg = registry()
    rows = [
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
    if as_json:
        click.echo(json.dumps({"detectors": rows, "broken": reg.broken}, indent=2))
        return
    table = Table("detector", "from", "inputs", "components", "description")
    for row in rows:
        table.add_row(row["name"], f"{row['distribution']} {row['version']}", ", ".join(row["inputs"]),
                      ", ".join(row["components"]), row["description"])
    out.print(table)
    for name, reason in sorted(reg.broken.items()):
        err.print(f"[red]broken plugin {name}[/red]: {reason}", highlight=False)


def _spec(modality: str, image_size: int, tile: bool, scale: int | None, stride: int | None,
          standardize: bool, pool: str, top_k: int, window: int):
    from anomaly.inputs import ImageSpec, SeriesSpec

    if modality == "image":
        return ImageSpec(image_size=image_size, tile=tile, scale=scale or None, stride=stride, standardize=standardize,
                         pool=pool, top_k=top_k)
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


@click.command("train")
@click.argument("detector")
@click.argument("data", type=click.Path(path_type=Path))
@click.option("--out", "out_dir", type=click.Path(path_type=Path), required=True, help="Model folder to write.")
@click.option("--epochs", type=click.IntRange(1), default=15, show_default=True)
@click.option("--batch-size", type=click.IntRange(1), default=64, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True, help="Makes training and scores repeatable.")
@click.option("--image-size", type=int, default=32, show_default=True, help="Square network input (16, 32, 64, ...).")
@click.option("--tile/--no-tile", default=True, show_default=True,
              help="Cut tiles of --image-size (small defects survive) instead of resizing the whole image.")
@click.option("--scale", type=click.IntRange(0), default=128, show_default=True,
              help="Resize the image's short side to this before tiling (0 = keep the original size).")
@click.option("--stride", type=click.IntRange(1), default=None, help="Tile stride (images) or window stride (series).")
@click.option("--standardize/--no-standardize", default=True, show_default=True,
              help="Per-image intensity standardisation (lighting changes are not defects).")
@click.option("--pool", type=click.Choice(POOLS), default="max", show_default=True,
              help="Tile scores to image score: the max, the mean of the --top-k highest, or contrast "
                   "(that mean less the image's median tile).")
@click.option("--top-k", type=click.IntRange(1), default=5, show_default=True)
@click.option("--window", type=int, default=32, show_default=True, help="Series window length in steps.")
@click.option("--normal-class", default="good", show_default=True, help="Normal sub-folder of a labelled image folder.")
@click.option("--test-fraction", type=float, default=0.3, show_default=True,
              help="Share of a labelled folder's normal images kept out of training for evaluation.")
@click.option("--split", default="train", show_default=True, help="Array of an NPZ file to train on.")
@click.option("--holdout", type=float, default=0.2, show_default=True, help="Share of training data held out for calibration.")
@click.option("--patience", type=int, default=5, show_default=True, help="Early stopping on held-out normal loss (0 = off).")
@click.option("--threshold-percentile", type=float, default=99.0, show_default=True)
@click.option("--target-fpr", type=float, default=None, help="Set the threshold for this false-positive rate instead.")
@click.option("--calibration-anomalies", type=click.Path(path_type=Path), default=None,
              help="Labelled anomalies: set the F1-optimal threshold.")
@click.option("--set", "options", multiple=True, metavar="KEY=VALUE", help="Detector option (see `anomaly plugins --json`).")
@click.option("--register", "register_as", default=None, metavar="NAME", help="Store the model in the registry under NAME.")
@click.option("--progress/--no-progress", default=True, show_default=True)
def train_command(detector: str, data: Path, out_dir: Path, epochs: int, batch_size: int, seed: int, image_size: int,
                  tile: bool, scale: int | None, stride: int | None, standardize: bool, pool: str, top_k: int,
                  window: int, normal_class: str, test_fraction: float, split: str, holdout: float, patience: int,
                  threshold_percentile: float, target_fpr: float | None, calibration_anomalies: Path | None,
                  options: tuple[str, ...], register_as: str | None, progress: bool) -> None:
    """Train DETECTOR on the normal data in DATA (an image folder, or a CSV/NPZ series) and save it to --out."""
    from anomaly.data.images import ImageSet
    from anomaly.data.load import load_dataset, modality_of
    from anomaly.detector import FitSettings
    from anomaly.params import parse_params
    from anomaly.plugins import registry

    cls = registry().get(detector)
    params = parse_params(cls.Params, options)
    settings = FitSettings(epochs=epochs, batch_size=batch_size, seed=seed, holdout=holdout,
                           patience=patience or None,
                           calibration=_calibration(threshold_percentile, target_fpr, calibration_anomalies))
    spec = _spec(modality_of(data), image_size, tile, scale, stride, standardize, pool, top_k, window)
    model = cls(spec, params, settings)
    dataset = load_dataset(data, split=split, normal_class=normal_class)
    if isinstance(dataset, ImageSet) and dataset.labels is not None:
        dataset = _split_test(dataset, test_fraction, seed)
    anomalies = None
    if calibration_anomalies is not None:
        anomalies = load_dataset(calibration_anomalies, split=split, normal_class=normal_class)
    report = model.fit(dataset, anomalies=anomalies, progress=progress)
    model.training["data"] = {"source": str(data.resolve()), "items": len(dataset)}
    if isinstance(dataset, ImageSet):
        model.training["data"]["trained_ids"] = list(dataset.ids)
    model.save(out_dir)
    _summary(cls.name, out_dir, model, report)
    if register_as:
        from anomaly.store.registry import register_trained_model

        record = register_trained_model(register_as, out_dir, model.manifest(),
                                        data_summary={"source": str(data.resolve()), "items": len(dataset)})
        err.print(f"registered {register_as} version {record.version} ({record.status})")


def _summary(name: str, out_dir: Path, model, report: dict) -> None:
    table = Table(title=f"trained {name}", show_header=False)
    table.add_row("model folder", str(out_dir))
    table.add_row("training items / samples", f"{report['train_items']} / {report['train_samples']}")
    table.add_row("held-out items / samples", f"{report['validation_items']} / {report['validation_samples']}")
    table.add_row("epochs run (best)", f"{report['epochs_run']} ({report['best_epoch'] or '-'})")
    table.add_row("time", f"{report['seconds']:.1f} s")
    table.add_row("threshold", f"{model.threshold:.4f} ({model.settings.calibration.method})")
    for key, value in report["metrics"].items():
        if key != "epoch":
            table.add_row(key, f"{value:.5g}")
    err.print(table)


@click.command("score")
@click.argument("model_dir", metavar="MODEL", type=click.Path(path_type=Path))
@click.argument("input_path", metavar="INPUT", type=click.Path(path_type=Path))
@click.option("--split", default="test", show_default=True, help="Array of an NPZ file to score.")
@click.option("--normal-class", default="good", show_default=True)
@click.option("--stride", type=click.IntRange(1), default=1, show_default=True, help="Series: score every N-th window.")
@click.option("--maps", "maps_dir", type=click.Path(path_type=Path), default=None,
              help="Write anomaly-map pictures (image beside its heat overlay) to this folder.")
def score_command(model_dir: Path, input_path: Path, split: str, normal_class: str, stride: int,
                  maps_dir: Path | None) -> None:
    """Score INPUT (image, image folder or series file) with MODEL; prints one JSON line per item."""
    from anomaly.data.images import ImageSet
    from anomaly.data.load import load_dataset
    from anomaly.plugins import load_model

    model = load_model(model_dir)
    data = load_dataset(input_path, split=split, normal_class=normal_class, with_masks=maps_dir is not None)
    scores = model.score(data, maps=maps_dir is not None, stride=stride)
    for result in scores:
        sys.stdout.write(json.dumps(result.to_json()) + "\n")
    if maps_dir is not None and isinstance(data, ImageSet) and scores.maps is not None:
        from anomaly.maps import write_pictures

        written = write_pictures(maps_dir, data, scores, model.map_scale or 1.0)
        err.print(f"wrote {len(written)} anomaly-map pictures to {maps_dir}")


@click.command("evaluate")
@click.argument("model_dir", metavar="MODEL", type=click.Path(path_type=Path))
@click.argument("data_path", metavar="DATA", type=click.Path(path_type=Path))
@click.option("--split", default="test", show_default=True, help="Array of an NPZ file to evaluate on.")
@click.option("--normal-class", default="good", show_default=True)
@click.option("--json", "as_json", is_flag=True)
def evaluate_command(model_dir: Path, data_path: Path, split: str, normal_class: str, as_json: bool) -> None:
    """Evaluate MODEL on labelled DATA: AUROC, AUPRC, F1 at the threshold and best F1.

    Images the model was trained on are left out, so a labelled folder can serve for both.
    """
    from anomaly.evaluation import evaluate

    report = evaluate(model_dir, data_path, split=split, normal_class=normal_class)
    if as_json:
        click.echo(json.dumps(report, indent=2))
        return
    table = Table("subset", "normal", "anomalous", "AUROC", "AUPRC", "F1@threshold", "best F1",
                  title=f"{report['detector']} on {data_path}")
    for name, m in report["results"].items():
        table.add_row(name, str(m["normal"]), str(m["anomalous"]), f"{m['auroc']:.3f}", f"{m['auprc']:.3f}",
                      f"{m['f1']:.3f}", f"{m['best_f1']:.3f}")
    out.print(table)
    if "pixel_resolution" in report:
        pixels = Table("subset", "defect regions", "pixel AUROC", "PRO", title="pixel level: anomaly maps against masks",
                       caption=f"{report['pixel_resolution']}; PRO: per-region overlap to FPR 0.3, normalised")
        for name, m in report["results"].items():
            if "pro" in m:
                pixels.add_row(name, str(m["regions"]), f"{m['pixel_auroc']:.3f}", f"{m['pro']:.3f}")
        out.print(pixels)
    if report["excluded_training_items"]:
        err.print(f"left out {report['excluded_training_items']} item(s) the model was trained on")


COMMANDS = [plugins_command, train_command, score_command, evaluate_command]


