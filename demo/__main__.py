"""``python -m demo``: the stream demo as a command, with the ``anomaly`` CLI's configuration and error handling.

It runs as a sub-command of the ``anomaly`` group (added only here, so the library's CLI does not
carry it), which gives it ``--config``, quiet TensorFlow and one-line errors like every other command.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import sys
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from anomaly.cli import cli


@click.command("stream-demo")
@click.option("--bootstrap-servers", default=None, help="As for serve.")
@click.option("--model", "name", default="digits", show_default=True, help="Registry name of the demo model.")
@click.option(
    "--normal-digit",
    type=click.IntRange(0, 9),
    default=0,
    show_default=True,
    help="The digit trained on as normal; the others are the anomalies.",
)
@click.option("--epochs", type=click.IntRange(1), default=100, show_default=True, help="Training epochs.")
@click.option(
    "--out",
    "out_dir",
    type=click.Path(path_type=Path),
    default=Path("runs/stream-demo"),
    show_default=True,
    help="Model folder to write.",
)
@click.option("--seed", type=int, default=0, show_default=True, help="Makes training repeatable.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON instead of a table.")
def stream_demo_command(
    bootstrap_servers: str | None, name: str, normal_digit: int, epochs: int, out_dir: Path, seed: int, as_json: bool
) -> None:
    """The full pipeline on bundled digits: train (or reuse) and register, stream through Kafka, serve, report."""
    from anomaly.store import migrate
    from anomaly.store.config import database_url, hide_password
    from anomaly.store.engine import get_engine
    from anomaly.stream.config import kafka_settings
    from demo.pipeline import run_demo

    console = Console(stderr=True)
    migrate.upgrade()
    bootstrap, _ = kafka_settings(bootstrap_servers)
    logging.getLogger("kafka").setLevel(logging.CRITICAL)
    result = run_demo(bootstrap, get_engine(), name, out_dir, normal_digit, epochs, seed, say=console.print)
    m, run = result.metrics, result.run
    if as_json:
        click.echo(
            json.dumps(
                {
                    "model": {"name": result.model.name, "version": result.model.version},
                    "trained": result.trained,
                    "topic": result.topic,
                    "produced": result.produced,
                    "events": result.events,
                    "rejected": result.rejected,
                    "flagged": result.flagged,
                    "metrics": m,
                    "run": dataclasses.asdict(run),
                },
                indent=2,
                default=float,
            )
        )
        return
    table = Table(title=f"stream demo: digit {normal_digit} normal, every other digit anomalous", show_header=False)
    table.add_row(
        "model", f"{result.model.name} v{result.model.version} ({'trained now' if result.trained else 'reused'})"
    )
    table.add_row("store", hide_password(database_url()))
    table.add_row("topic", f"{result.topic} (dead letters: {result.topic}.dlq, alerts: anomaly.alerts)")
    table.add_row(
        "produced",
        f"{result.produced} messages ({m['normal']} normal, {m['anomalous']} anomalous, "
        f"{result.produced - m['normal'] - m['anomalous']} malformed)",
    )
    table.add_row("stored", f"{result.events} events, {result.rejected} rejected messages")
    table.add_row("flagged anomalous", str(result.flagged))
    table.add_row("AUROC / AUPRC", f"{m['auroc']:.3f} / {m['auprc']:.3f}")
    table.add_row("F1 at threshold / best F1", f"{m['f1']:.3f} / {m['best_f1']:.3f}")
    table.add_row(
        "throughput (consume → score → store)",
        f"{run.consumed / max(run.seconds, 1e-9):,.0f} messages/s ({run.consumed} in {run.seconds:.1f}s,"
        f" {run.batches} batches)",
    )
    Console().print(table)


def main() -> None:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    cli.add_command(stream_demo_command)
    cli(["stream-demo", *sys.argv[1:]], prog_name="python -m demo")


if __name__ == "__main__":
    main()
