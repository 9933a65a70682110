"""Detector-specific options from the command line (``--set key=value``), typed by the detector's Params."""

from __future__ import annotations

import dataclasses
import types
import typing
from typing import Any

from anomaly.errors import AnomalyError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def _convert(key: str, raw: str, kind: Any) -> Any:
    if isinstance(kind, types.UnionType) or typing.get_origin(kind) is typing.Union:
        kind = next(arg for arg in typing.get_args(kind) if arg is not type(None))
    origin = typing.get_origin(kind)
    try:
        if kind is bool:
            if raw.lower() not in _TRUE | _FALSE:
                raise ValueError("expected true or false")
            return raw.lower() in _TRUE
        if kind in (int, float, str):
            return kind(raw)
        if origin is dict:
            pairs = (item.split(":", 1) for item in raw.split(",") if item)
            return {name.strip(): float(value) for name, value in pairs}
    except ValueError as exc:
        raise AnomalyError(f"option {key}={raw!r}: {exc}") from None
    raise AnomalyError(f"option {key} cannot be set from the command line")


def parse_params(params_cls: type, items: tuple[str, ...] | list[str]) -> Any:
    """Build the Params dataclass; unknown keys are an error that lists the valid ones."""
    hints = typing.get_type_hints(params_cls)
    known = {f.name for f in dataclasses.fields(params_cls)}
    values = {}
    for item in items:
        if "=" not in item:
            raise AnomalyError(f"--set expects KEY=VALUE, got {item!r}")
        key, raw = item.split("=", 1)
        key = key.strip().replace("-", "_")
        if key not in known:
            raise AnomalyError(f"unknown option {key!r}; this detector accepts: {', '.join(sorted(known))}")
        values[key] = _convert(key, raw.strip(), hints[key])
    return params_cls(**values)


def describe_params(params_cls: type) -> str:
    """Options and defaults; an unset default (None) is chosen by the detector from the input: "auto"."""
    return ", ".join(f"{f.name}={'auto' if _default(f) is None else _default(f)}" for f in dataclasses.fields(params_cls))


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else "?"
