"""``anomaly config show``: the effective service configuration, where each key came from, secrets masked.

An operator debugging a deployment needs to see which of the file, the environment and a mounted
secret won for each key, without the output becoming a place where passwords leak.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import click
from pydantic import SecretStr
from rich.console import Console
from rich.table import Table

from anomaly import settings
from anomaly.store.config import hide_password


def _shown(key: str, value: Any) -> Any:
    """``value`` as it may be printed: the database URL without its password, other secrets as ``***``."""
    if value is None or key not in settings.SECRET_KEYS:
        return str(value) if isinstance(value, Path) else value
    if key == "database.url":
        return hide_password(value)
    return "***" if isinstance(value, SecretStr) else value


def effective() -> tuple[settings.Loaded, list[dict[str, Any]]]:
    """The loaded configuration and one row per key: ``key``, masked ``value``, ``source``, ``env``."""
    loaded = settings.load()
    values = loaded.settings.model_dump()
    rows = []
    for key in settings.keys():
        table, name = key.split(".", 1)
        rows.append(
            {
                "key": key,
                "value": _shown(key, values[table][name]),
                "source": loaded.origin(key),
                "env": list(settings.env_names(key)),
            }
        )
    return loaded, rows


@click.group("config")
def config_group() -> None:
    """The service configuration (``--config``, ``ANOMALY_CONFIG`` or ``anomaly.toml``, and ``ANOMALY_...``)."""


@config_group.command("show")
@click.option("--json", "as_json", is_flag=True, help="Print JSON instead of a table.")
def show(as_json: bool) -> None:
    """Print every key's effective value and its source (default, file, env, env file); secrets masked."""
    loaded, rows = effective()
    if as_json:
        click.echo(json.dumps({"file": str(loaded.path) if loaded.path else None, "settings": rows}, indent=2))
        return
    table = Table(title=f"configuration (file: {loaded.path or 'none'})")
    for heading in ("key", "value", "source"):
        table.add_column(heading)
    for row in rows:
        table.add_row(row["key"], "" if row["value"] is None else str(row["value"]), row["source"])
    Console(width=200).print(table)


COMMANDS = [config_group]
