"""``anomaly ui`` serves the review pages; ``anomaly report`` writes a model's evaluation as one HTML file.

Flask, waitress and the store are imported inside the commands: they belong to the ``ui`` and
``store`` extras, and ``anomaly --help`` must work without them.
"""

from __future__ import annotations

from pathlib import Path

import click

from anomaly.errors import AnomalyError


@click.command()
@click.option("--host", help="Address to listen on [default: [ui] host, 127.0.0.1].")
@click.option("--port", type=click.IntRange(0, 65535), help="Port to listen on [default: [ui] port, 8050].")
def ui(host: str | None, port: int | None) -> None:
    """Serve the review pages: flagged events, their pictures and plots, labels, models.

    Read-only unless [ui] token (ANOMALY_UI_TOKEN) is set: reviewers then sign in with it to label.
    """
    from waitress import serve

    from anomaly import settings
    from anomaly.store.config import database_url
    from anomaly.store.engine import get_engine
    from anomaly.ui.app import create_app

    config = settings.load().settings.ui
    token = config.token.get_secret_value() if config.token else None
    host, port = host or config.host, config.port if port is None else port
    app = create_app(get_engine(database_url()), token=token)
    mode = "labelling with the review token" if token else "read-only (no [ui] token)"
    click.echo(f"review pages on http://{host}:{port}/, {mode}; Ctrl-C stops")
    serve(app, host=host, port=port, threads=4, ident=None)


@click.command()
@click.argument("model", type=click.Path(exists=True, file_okay=False, path_type=Path))
@click.argument("data", type=click.Path(exists=True, path_type=Path))
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), required=True, help="Folder for report.html.")
@click.option("--top", type=click.IntRange(min=1), default=8, show_default=True, help="Highest-scoring samples shown.")
@click.option("--split", default="test", show_default=True, help="Which split of a split dataset to report on.")
@click.option("--normal-class", default="good", show_default=True, help="Folder or label naming normal items.")
def report(model: Path, data: Path, out: Path, top: int, split: str, normal_class: str) -> None:
    """Write OUT/report.html: ROC and PR curves, score histograms, per-defect results, top samples."""
    from anomaly.report import write_report

    if out.exists() and not out.is_dir():
        raise AnomalyError(f"--out {out} is a file, not a folder")
    path = write_report(model, data, out, top=top, split=split, normal_class=normal_class)
    click.echo(f"report written to {path}")


COMMANDS = [ui, report]
