"""``--config FILE``: a command's options from a TOML, YAML or JSON file, with flags on the command line winning.

A file's keys are the command's long option names (``epochs``, ``normal-class`` or ``normal_class``,
``set``) and its arguments (``detector``, ``data``, ``model``). ``set`` takes a table of detector
options or a list of ``KEY=VALUE`` strings. A model folder, or its ``manifest.json``, is read as the
configuration it was trained with, so ``anomaly train --config runs/tile --out runs/tile-again``
repeats a run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
import yaml

from anomaly.errors import AnomalyError

if sys.version_info >= (3, 11):
    import tomllib
else:  # the same parser, before it joined the standard library
    import tomli as tomllib

MANIFEST = "manifest.json"


def option_keys(command: click.Command) -> dict[str, str]:
    """Every key a config file may use for ``command``, mapped to the parameter it sets."""
    keys: dict[str, str] = {}
    for param in command.params:
        if param.name in ("config", "help"):
            continue
        if isinstance(param, click.Argument):
            keys[param.human_readable_name.lower()] = param.name
            keys[param.name] = param.name
        for opt in param.opts:
            if opt.startswith("--"):
                keys[opt[2:]] = param.name
                keys[opt[2:].replace("-", "_")] = param.name
    return keys


def read_config(path: Path) -> dict[str, Any]:
    """The mapping a config file holds; a model folder or manifest gives the configuration it recorded."""
    if path.is_dir():
        path = path / MANIFEST
    if not path.is_file():
        raise AnomalyError(f"--config {path}: no such file")
    text = path.read_text()
    try:
        if path.suffix.lower() == ".toml":
            data = tomllib.loads(text)
        elif path.suffix.lower() in (".yaml", ".yml"):
            data = yaml.safe_load(text)
        elif path.suffix.lower() == ".json":
            data = json.loads(text)
        else:
            raise AnomalyError(f"--config {path}: use a .toml, .yaml, .yml or .json file")
    except (tomllib.TOMLDecodeError, yaml.YAMLError, json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise AnomalyError(f"--config {path}: not readable ({' '.join(str(exc).split())})") from None
    if isinstance(data, dict) and "format" in data and "detector" in data:
        if not isinstance(data.get("config"), dict) or not data["config"]:
            raise AnomalyError(f"--config {path}: this model's manifest records no configuration")
        data = data["config"]
    if not isinstance(data, dict):
        raise AnomalyError(f"--config {path}: expected a table of options, not {type(data).__name__}")
    return data


def _set_items(value: Any) -> list[str]:
    """``set`` as ``--set`` would give it: a table of detector options becomes KEY=VALUE strings."""
    if isinstance(value, dict):
        items = []
        for key, item in value.items():
            if isinstance(item, dict):
                item = ",".join(f"{name}:{weight}" for name, weight in item.items())
            elif isinstance(item, bool):
                item = str(item).lower()
            items.append(f"{key}={item}")
        return items
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return value
    raise AnomalyError("--config: 'set' must be a table of detector options or a list of KEY=VALUE strings")


def apply_config(ctx: click.Context, _param: click.Parameter, path: Path | None) -> Path | None:
    """Eager ``--config`` callback: the file's values become the command's defaults, so flags override them."""
    if path is None:
        return None
    keys = option_keys(ctx.command)
    defaults: dict[str, Any] = {}
    for key, value in read_config(path).items():
        if key not in keys:
            known = sorted({k for k in keys if "_" not in k})
            raise AnomalyError(f"--config {path}: unknown key {key!r} (known: {', '.join(known)})")
        defaults[keys[key]] = _set_items(value) if keys[key] == "options" else value
    ctx.default_map = {**(ctx.default_map or {}), **defaults}
    return path


def config_option(command: Any) -> Any:
    """Add ``--config FILE`` to a command."""
    return click.option(
        "--config",
        type=click.Path(path_type=Path),
        is_eager=True,
        expose_value=False,
        callback=apply_config,
        help="Options from a TOML/YAML/JSON file (keys as the long options) or a model folder's "
        "recorded configuration; flags given here override it.",
    )(command)


def recorded(ctx: click.Context) -> dict[str, Any]:
    """The command's full configuration, in config-file keys, for the manifest: the run can be repeated from it."""
    names = {
        param.name: next((o[2:] for o in param.opts if o.startswith("--")), param.name) for param in ctx.command.params
    }
    config: dict[str, Any] = {}
    for name, value in ctx.params.items():
        if isinstance(value, Path):
            value = str(value.resolve())
        elif isinstance(value, tuple):
            value = list(value)
        config[names.get(name, name)] = value
    return config
