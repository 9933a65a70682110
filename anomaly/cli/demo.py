"""The end-to-end demo on data a library bundles: train on normal digits, score the rest, report."""

from __future__ import annotations

import time
from pathlib import Path

import click
import numpy as np
from rich.console import Console
from rich.table import Table


@click.command("demo")
@click.option("--detector", default="ganomaly", show_default=True)
@click.option("--normal-digit", type=click.IntRange(0, 9), default=0, show_default=True)
@click.option("--epochs", type=click.IntRange(1), default=15, show_default=True)
@click.option("--out", "out_dir", type=click.Path(path_type=Path), default=Path("runs/demo"), show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
def demo_command(detector: str, normal_digit: int, epochs: int, out_dir: Path, seed: int) -> None:
    """Train DETECTOR on one digit of scikit-learn's bundled digits, score all the others, print the result."""
    from anomaly.data.bundled import digits
    from anomaly.detector import FitSettings
    from anomaly.inputs import ImageSpec
    from anomaly.metrics import detection_metrics
    from anomaly.plugins import registry

    console = Console(stderr=True)
    data = digits(normal_digit)
    order = np.random.default_rng(seed).permutation(np.flatnonzero(data.labels == 0))
    train_ids = np.sort(order[: int(len(order) * 0.7)])
    test_ids = np.setdiff1d(np.arange(len(data)), train_ids)
    model = registry().get(detector)(ImageSpec(image_size=16), settings=FitSettings(epochs=epochs, batch_size=32, seed=seed))
    console.print(f"training {detector} on {len(train_ids)} images of digit {normal_digit} (scikit-learn digits)")
    model.fit(data.subset(train_ids), progress=True)
    model.save(out_dir)
    test = data.subset(test_ids)
    start = time.perf_counter()
    scores = model.score(test, maps=False)
    elapsed = time.perf_counter() - start
    metrics = detection_metrics(test.labels, scores.scores, model.threshold)
    table = Table(title=f"{detector}: digit {normal_digit} normal, all other digits anomalous", show_header=False)
    table.add_row("model folder", str(out_dir))
    table.add_row("scored", f"{len(test)} images ({metrics['normal']} normal, {metrics['anomalous']} anomalous)")
    table.add_row("flagged anomalous", str(int(scores.is_anomaly.sum())))
    table.add_row("AUROC / AUPRC", f"{metrics['auroc']:.3f} / {metrics['auprc']:.3f}")
    table.add_row("F1 at threshold / best F1", f"{metrics['f1']:.3f} / {metrics['best_f1']:.3f}")
    table.add_row("scoring throughput", f"{len(test) / elapsed:,.0f} images/s")
    Console().print(table)


COMMANDS = [demo_command]
