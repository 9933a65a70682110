"""``anomaly db``, ``anomaly models`` and ``anomaly events``: the store from the command line.

The store modules are imported inside each command: they need the ``store`` extra (SQLAlchemy,
Alembic), which a train-only install lacks, and ``anomaly --help`` must work there too.
"""

from __future__ import annotations

import dataclasses
import json
import re
from collections.abc import Sequence
from datetime import datetime, timedelta, timezone
from typing import Any

import click
from rich.console import Console
from rich.table import Table

from anomaly.errors import AnomalyError
from anomaly.store import LABELS
from anomaly.store.config import database_url, hide_password

_AGO = re.compile(r"^(\d+)\s*([smhd])$")
_UNITS = {"s": "seconds", "m": "minutes", "h": "hours", "d": "days"}


def _parse_since(value: str) -> datetime:
    """``15m``, ``2h``, ``7d`` ago, or an ISO timestamp (UTC when it names no zone)."""
    ago = _AGO.match(value.strip())
    if ago:
        return datetime.now(timezone.utc) - timedelta(**{_UNITS[ago[2]]: int(ago[1])})
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise AnomalyError(f"--since takes 15m, 2h, 7d or an ISO timestamp, not {value!r}") from None
    return moment if moment.tzinfo else moment.replace(tzinfo=timezone.utc)


def _json_default(value: Any) -> str:
    if isinstance(value, datetime):
        return value.isoformat()
    raise TypeError(f"cannot write {type(value).__name__} as JSON")


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, datetime):
        return value.isoformat(timespec="seconds")
    if isinstance(value, float):
        return f"{value:.4g}"
    return str(value)


def _print_records(records: Sequence[Any], as_json: bool, title: str, columns: dict[str, str]) -> None:
    """Records as a JSON list for scripts, or a rich table of the chosen ``columns`` for people."""
    if as_json:
        click.echo(json.dumps([dataclasses.asdict(r) for r in records], default=_json_default, indent=2))
        return
    table = Table(title=title)
    for heading in columns.values():
        table.add_column(heading)
    for record in records:
        table.add_row(*(_cell(getattr(record, field)) for field in columns))
    Console().print(table)


@click.group()
def db() -> None:
    """Create or migrate the database schema (Alembic)."""


_JSON_OPTION = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")


def _revision_report(as_json: bool, revision: str | None, text: str) -> None:
    """The database (password hidden), its revision and the head revision: one line, or JSON for scripts."""
    from anomaly.store import migrate

    url, head = hide_password(database_url()), migrate.head_revision()
    if as_json:
        click.echo(json.dumps({"database": url, "revision": revision, "head": head, "up_to_date": revision == head}))
    else:
        click.echo(f"{url}{text}")


@db.command()
@click.argument("revision", default="head")
@_JSON_OPTION
def upgrade(revision: str, as_json: bool) -> None:
    """Migrate the database up to REVISION (default: the newest)."""
    from anomaly.store import migrate

    migrate.upgrade(revision)
    now = migrate.current()
    _revision_report(as_json, now, f" is at revision {now}")


@db.command()
@click.argument("revision")
@_JSON_OPTION
def downgrade(revision: str, as_json: bool) -> None:
    """Migrate the database down to REVISION (`base` removes every table)."""
    from anomaly.store import migrate

    migrate.downgrade(revision)
    now = migrate.current()
    _revision_report(as_json, now, f" is at revision {now or 'base'}")


@db.command()
@_JSON_OPTION
def current(as_json: bool) -> None:
    """Show the database's revision and whether it is up to date."""
    from anomaly.store import migrate

    revision = migrate.current()
    head = migrate.head_revision()
    state = "up to date" if revision == head else f"behind {head}: run `anomaly db upgrade`"
    _revision_report(as_json, revision, f": {revision or 'no schema'} ({state})")


def _size(count: int) -> str:
    return f"{count / 2**20:.1f} MiB" if count >= 2**20 else f"{count / 2**10:.1f} KiB"


_SHOWN_VERSIONS = 12  # a summary stays on one screen however many versions a run removes


def _retention_summary(report: Any) -> None:
    """One screen: the payloads cleared (or that would be), the labelled ones kept, each version's folder."""
    payloads = report.payloads
    verb = "to clear" if report.dry_run else "cleared"
    table = Table(title="Retention (dry run: nothing changed)" if report.dry_run else "Retention", show_header=False)
    if payloads.cutoff is None:
        table.add_row("payloads", "kept forever (payload_days = 0)")
    else:
        table.add_row("payloads received before", f"{_cell(payloads.cutoff)} ({report.payload_days} days)")
        table.add_row(f"payloads {verb}", f"{payloads.cleared} ({_size(payloads.cleared_bytes)})")
        kept = f"{payloads.kept_labelled} labelled" if report.keep_labelled else "none (keep_labelled = false)"
        table.add_row("old payloads kept", kept)
    if report.keep_versions == 0:
        table.add_row("model folders", "kept forever (keep_versions = 0)")
    else:
        table.add_row("model folders", f"the {report.keep_versions} most recently retired versions of each name kept")
        for outcome in report.versions[:_SHOWN_VERSIONS]:
            freed = f" ({_size(outcome.folder_bytes)})" if outcome.folder_bytes else ""
            table.add_row(f"  {outcome.name} version {outcome.version}", f"{outcome.outcome}{freed}")
        if len(report.versions) > _SHOWN_VERSIONS:
            table.add_row("", f"and {len(report.versions) - _SHOWN_VERSIONS} more (--json lists them all)")
        if not report.versions:
            table.add_row("", "no retired version beyond those")
    table.add_row("time", f"{report.seconds:.1f} s")
    Console().print(table)


@db.command()
@click.option("--dry-run", is_flag=True, help="Count what would go; change nothing.")
@_JSON_OPTION
def prune(dry_run: bool, as_json: bool) -> None:
    """Apply [retention] now: clear old event payloads, remove old retired versions' folders.

    The scheduler does the same every [retention] every; events themselves are always kept.
    """
    from anomaly.store import retention

    report = retention.run(dry_run=dry_run)
    if as_json:
        click.echo(json.dumps(dataclasses.asdict(report), default=_json_default, indent=2))
    else:
        _retention_summary(report)


_MODEL_COLUMNS = {
    "name": "name",
    "version": "version",
    "shown_status": "status",
    "detector": "detector",
    "threshold": "threshold",
    "created_at": "created",
    "artifact": "artifact",
}


_RUN_COLUMNS = {
    "name": "name",
    "started_at": "started",
    "trigger": "trigger",
    "status": "status",
    "decision": "decision",
    "reason": "reason",
}


@click.group(invoke_without_command=True)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def models(ctx: click.Context, as_json: bool) -> None:
    """List registered models; sub-commands promote and roll back versions."""
    if ctx.invoked_subcommand is None:
        from anomaly.store import registry

        _print_records(registry.list_models(), as_json, "Registered models", _MODEL_COLUMNS)
        if not as_json:
            from anomaly.retrain.run import last_runs

            _print_records(last_runs(), False, "Last training run per model", _RUN_COLUMNS)


@models.command()
@click.argument("name")
@click.argument("version", type=int)
def promote(name: str, version: int) -> None:
    """Make VERSION of NAME the active one (the current active version is retired).

    The version's folder is opened first, as a scorer would; one that will not load stays inactive.
    """
    from anomaly.store import registry

    record = registry.promote(name, version)
    click.echo(f"{record.name} version {record.version} is active")


@models.command("rollback")
@click.argument("name")
def rollback_command(name: str) -> None:
    """Re-activate the version of NAME that was active before the current one."""
    from anomaly.store import registry

    record = registry.rollback(name)
    click.echo(f"{record.name} rolled back to version {record.version}")


_EVENT_COLUMNS = {
    "id": "id",
    "received_at": "received",
    "source": "source",
    "topic": "topic",
    "partition": "part",
    "offset": "offset",
    "score": "score",
    "threshold": "threshold",
    "is_anomaly": "anomaly",
    "label": "label",
}


@click.group(invoke_without_command=True)
@click.option("--anomalies", is_flag=True, help="Only events scored as anomalies.")
@click.option("--since", help="Only events received since then: 15m, 2h, 7d or an ISO timestamp.")
@click.option("--source", help="Only events from this source.")
@click.option(
    "--limit", type=click.IntRange(min=1), default=50, show_default=True, help="Show at most this many events."
)
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
@click.pass_context
def events(
    ctx: click.Context, anomalies: bool, since: str | None, source: str | None, limit: int, as_json: bool
) -> None:
    """Show the newest scored events; `label` records an operator's verdict on one."""
    if ctx.invoked_subcommand is not None:
        return
    from anomaly.store import queries

    records = queries.recent_events(
        anomalies_only=anomalies,
        since=_parse_since(since) if since else None,
        source=source,
        limit=limit,
    )
    _print_records(records, as_json, "Anomalies" if anomalies else "Events", _EVENT_COLUMNS)


@events.command()
@click.argument("event_id", type=int, metavar="ID")
@click.argument("label", type=click.Choice(LABELS))
def label(event_id: int, label: str) -> None:
    """Label event ID as normal or anomaly (kept for review and retraining)."""
    if not -(2**63) <= event_id < 2**63:
        # Ids are 64-bit in both databases; a larger number cannot be an event, nor even be sent to the driver.
        raise AnomalyError(f"no event with id {event_id}")
    from anomaly.store import queries

    record = queries.label_event(event_id, label)
    click.echo(f"event {record.id} labelled {record.label}")


COMMANDS = [db, models, events]
