"""``anomaly retrain NAME`` (one retrain now), its schedules, and ``anomaly scheduler`` (the timetable's runner).

Schedules live in the database (APScheduler's job store), set with ``anomaly retrain schedule``:
every replica and restart sees the same ones, and no file has to be kept in step across hosts.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import datetime
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from anomaly.errors import AnomalyError

out = Console()


class _RetrainGroup(click.Group):
    """``anomaly retrain NAME`` runs ``anomaly retrain run NAME``: the name is never a sub-command's."""

    def parse_args(self, ctx: click.Context, args: list[str]) -> list[str]:
        if args and not args[0].startswith("-") and args[0] not in self.commands:
            args = ["run", *args]
        return super().parse_args(ctx, args)


@click.group("retrain", cls=_RetrainGroup)
def retrain_group() -> None:
    """Retrain a registered model now (`anomaly retrain NAME`), or on a schedule (`schedule`, `schedules`, `unschedule`).

    The challenger is trained on fresh normal data in a separate process and replaces the serving
    version only when it is no worse on the same held-out data (`[retrain]` in the configuration).
    """


def _metric(metrics: dict[str, Any], key: str) -> str:
    value = metrics.get(key)
    return "-" if value is None else f"{value:.3f}"


def _summary(report: Any) -> None:
    """One screen: what was trained on, both models' figures side by side, and the decision with its reason."""
    table = Table(title=f"retrain {report.name} (run {report.run_id}, {report.trigger})", show_header=False)
    challenger = f"version {report.challenger_version}" if report.challenger_version else "-"
    table.add_row("champion / challenger", f"version {report.champion_version} / {challenger}")
    summary = report.summary
    if "train_items" in summary:
        table.add_row("trained on / held out", f"{summary['train_items']} / {summary['evaluation_items']} items")
        table.add_row(
            "events read / kept out",
            f"{summary.get('events_read', 0)} / {summary.get('events_dropped_as_contamination', 0)} top-scoring, "
            f"{summary.get('events_scored_anomalous', 0)} scored anomalous",
        )
        table.add_row("labelled anomalies", str(summary.get("labelled_anomalies", 0)))
    if report.metrics:
        champion, new = report.metrics["champion"], report.metrics["challenger"]
        table.add_row("FPR champion / challenger", f"{_metric(champion, 'fpr')} / {_metric(new, 'fpr')}")
        table.add_row("AUROC champion / challenger", f"{_metric(champion, 'auroc')} / {_metric(new, 'auroc')}")
    table.add_row("decision", f"[bold]{report.decision}[/bold]")
    table.add_row("reason", report.reason)
    table.add_row("time", f"{report.seconds:.1f} s")
    out.print(table)


@retrain_group.command("run")
@click.argument("name")
@click.option("--progress/--no-progress", default=True, show_default=True, help="Progress bar on stderr.")
@click.option("--json", "as_json", is_flag=True, help="Print the run's report as JSON.")
def run_command(name: str, progress: bool, as_json: bool) -> None:
    """Retrain NAME's active version now: train, compare with the champion, promote if no worse."""
    from anomaly.retrain.run import retrain

    report = retrain(name, progress=progress and not as_json)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(report), default=str))
    else:
        _summary(report)
    if report.status == "failed":
        raise AnomalyError(f"retrain of {name} failed: {report.reason}")


@retrain_group.command("schedule")
@click.argument("name")
@click.option("--every", help="Interval: 30m, 6h, 1d.")
@click.option("--cron", help="Crontab line in UTC, e.g. '0 3 * * *'.")
def schedule_command(name: str, every: str | None, cron: str | None) -> None:
    """Retrain NAME on a schedule (replacing its schedule, if any); `anomaly scheduler` or `serve --scheduler` runs it."""
    from anomaly.retrain import schedule

    entry = schedule.add_schedule(name, schedule.trigger_for(every, cron))
    click.echo(f"{entry.name} retrains on {entry.trigger}; next at {_when(entry.next_run)}")


def _when(moment: datetime | None) -> str:
    return moment.isoformat(timespec="seconds") if moment else "never (paused)"


@retrain_group.command("schedules")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def schedules_command(as_json: bool) -> None:
    """List every model's retrain schedule and its next run."""
    from anomaly.retrain import schedule

    entries = schedule.list_schedules()
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(e) for e in entries], default=str))
        return
    table = Table("name", "schedule", "next run (UTC)", title="Retrain schedules")
    for entry in entries:
        table.add_row(entry.name, entry.trigger, _when(entry.next_run))
    out.print(table)


@retrain_group.command("unschedule")
@click.argument("name")
def unschedule_command(name: str) -> None:
    """Stop retraining NAME on a schedule (a retrain already running finishes)."""
    from anomaly.retrain import schedule

    schedule.remove_schedule(name)
    click.echo(f"{name} is no longer retrained on a schedule")


@click.command("scheduler")
@click.option(
    "--poll", type=click.FloatRange(0.1), default=5.0, show_default=True, help="Seconds between leadership checks."
)
def scheduler_command(poll: float) -> None:
    """Run the retrain schedules until SIGTERM/SIGINT.

    On PostgreSQL any number may run: one holds the schedule, the others wait to take over. On SQLite run one only.
    """
    import logging
    import signal
    import threading

    from anomaly.retrain import schedule

    logging.getLogger("anomaly").setLevel(logging.INFO)
    stop = threading.Event()
    for number in (signal.SIGTERM, signal.SIGINT):
        signal.signal(number, lambda *_: stop.set())
    schedule.run_scheduler(stop, poll=poll)


COMMANDS = [retrain_group, scheduler_command]
