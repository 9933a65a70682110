"""Detector-specific options: one declaration per option, read by ``--set``, ``plugins --json`` and the docs.

A plugin declares each field of its Params dataclass with :func:`option`: the type comes from the
annotation, the rest (help, choices, bounds) from the field's metadata. The same declaration turns
``--set key=value`` text into a typed value, refuses a value outside its choices or bounds before
anything is built or trained, and describes the option to ``anomaly plugins``. Fields declared
without :func:`option` (a third-party plugin's plain dataclass) are still typed; only their bounds
are the plugin's own business.
"""

from __future__ import annotations

import dataclasses
import math
import numbers
import types
import typing
from typing import Any

from anomaly.errors import AnomalyError

_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


def option(
    default: Any = dataclasses.MISSING,
    *,
    help: str,
    choices: tuple[str, ...] | None = None,
    low: float | None = None,
    high: float | None = None,
    above: float | None = None,
    default_factory: Any = dataclasses.MISSING,
) -> Any:
    """A Params field with its help text and allowed values: ``low``/``high`` are inclusive, ``above`` exclusive."""
    metadata = {"help": help, "choices": choices, "low": low, "high": high, "above": above}
    return dataclasses.field(default=default, default_factory=default_factory, metadata=metadata)


def _kind(hint: Any) -> tuple[Any, bool]:
    """(the non-None type of an annotation, whether None is allowed)."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [arg for arg in typing.get_args(hint) if arg is not type(None)]
        return args[0], len(args) < len(typing.get_args(hint))
    return hint, False


def _type_name(kind: Any) -> str:
    if typing.get_origin(kind) is dict:
        return "weights"
    return getattr(kind, "__name__", str(kind))


def _weights(key: str, raw: str) -> dict[str, float]:
    """``name:number,name:number`` (the form ``score_weights`` takes on the command line)."""
    weights = {}
    for item in (part.strip() for part in raw.split(",")):
        name, sep, value = item.partition(":")
        if not sep or not name.strip():
            raise AnomalyError(
                f"option {key}={raw!r}: expected COMPONENT:WEIGHT[,COMPONENT:WEIGHT...], "
                f"e.g. {key}=latent:1,reconstruction:0.5"
            )
        try:
            weights[name.strip()] = float(value)
        except ValueError:
            raise AnomalyError(
                f"option {key}={raw!r}: weight {value.strip()!r} of {name.strip()} is not a number"
            ) from None
    return weights


def _convert(key: str, raw: str, hint: Any) -> Any:
    kind, optional = _kind(hint)
    if optional and raw.lower() in ("auto", "none"):
        return None
    if typing.get_origin(kind) is dict:
        return _weights(key, raw)
    try:
        if kind is bool:
            if raw.lower() not in _TRUE | _FALSE:
                raise ValueError("expected true or false")
            return raw.lower() in _TRUE
        if kind is int:
            return int(raw)
        if kind is float:
            return float(raw)
        if kind is str:
            return raw
    except ValueError:
        raise AnomalyError(
            f"option {key}={raw!r}: expected {'true or false' if kind is bool else 'a number' if kind is float else 'an integer'}"
        ) from None
    raise AnomalyError(f"option {key} cannot be set from the command line")


def parse_params(params_cls: type, items: tuple[str, ...] | list[str], components: tuple[str, ...] = ()) -> Any:
    """Build and check the Params dataclass from KEY=VALUE text; unknown keys are an error that lists the valid ones."""
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
    params = params_cls(**values)
    check_params(params, components)
    return params


def check_params(params: Any, components: tuple[str, ...] = ()) -> None:
    """Refuse a value outside its declared choices or bounds, and weights for components the detector lacks."""
    hints = typing.get_type_hints(type(params))
    for f in dataclasses.fields(params):
        value = getattr(params, f.name)
        meta = f.metadata
        kind, optional = _kind(hints[f.name])
        if value is None and optional:
            continue
        if typing.get_origin(kind) is dict:
            _check_weights(f.name, value, components)
            continue
        if meta.get("choices") and value not in meta["choices"]:
            raise AnomalyError(f"{f.name} must be one of {', '.join(meta['choices'])} (got {value!r})")
        if kind is int and (isinstance(value, bool) or not isinstance(value, numbers.Integral)):
            raise AnomalyError(f"{f.name} must be an integer, not {value!r}")
        if kind in (int, float) and not isinstance(value, bool) and isinstance(value, numbers.Real):
            _check_range(f.name, value, meta)


def _check_range(name: str, value: numbers.Real, meta: typing.Mapping[str, Any]) -> None:
    low, high, above = meta.get("low"), meta.get("high"), meta.get("above")
    if (
        not math.isfinite(value)
        or (low is not None and value < low)
        or (high is not None and value > high)
        or (above is not None and value <= above)
    ):
        raise AnomalyError(f"{name} must be {_range_text(meta)} (got {value!r})")


def _range_text(meta: typing.Mapping[str, Any]) -> str:
    low, high, above = meta.get("low"), meta.get("high"), meta.get("above")
    if low is not None and high is not None:
        return f"from {low:g} to {high:g}"
    low_text = f"> {above:g}" if above is not None else (f">= {low:g}" if low is not None else "")
    high_text = f"<= {high:g}" if high is not None else ""
    return " and ".join(part for part in (low_text, high_text) if part) or "a finite number"


def _check_weights(name: str, weights: dict[str, float], components: tuple[str, ...]) -> None:
    unknown = sorted(set(weights) - set(components)) if components else []
    if unknown:
        raise AnomalyError(
            f"option {name}: unknown component(s) {', '.join(unknown)}; this detector has {', '.join(components)}"
        )
    bad = {k: v for k, v in weights.items() if not (isinstance(v, (int, float)) and math.isfinite(v) and v >= 0)}
    if bad:
        raise AnomalyError(f"option {name}: weights must be finite and >= 0 (got {bad})")


def describe_params(params_cls: type) -> list[dict[str, Any]]:
    """Each option as an object (name, type, default, help, choices, bounds); a None default is chosen from the input: "auto"."""
    hints = typing.get_type_hints(params_cls)
    described = []
    for f in dataclasses.fields(params_cls):
        kind = _kind(hints[f.name])[0]
        default = _default(f)
        entry: dict[str, Any] = {
            "name": f.name,
            "type": _type_name(kind),
            "default": "auto" if default is None else default,
            "help": f.metadata.get("help", ""),
        }
        for key in ("choices", "low", "high", "above"):
            if f.metadata.get(key) is not None:
                entry[key] = list(f.metadata[key]) if key == "choices" else f.metadata[key]
        described.append(entry)
    return described


def option_line(entry: dict[str, Any]) -> str:
    """One option for people: ``name=default  type, allowed values — help``."""
    allowed = ("one of " + "|".join(entry["choices"])) if entry.get("choices") else _range_text(entry)
    allowed = "" if allowed == "a finite number" else f", {allowed}"
    default = entry["default"]
    if isinstance(default, bool):
        default = str(default).lower()
    elif isinstance(default, dict):
        default = ",".join(f"{k}:{v:g}" for k, v in default.items()) or "detector default"
    return f"{entry['name']}={default}  ({entry['type']}{allowed})  {entry['help']}".rstrip()


def _default(f: dataclasses.Field) -> Any:
    if f.default is not dataclasses.MISSING:
        return f.default
    return f.default_factory() if f.default_factory is not dataclasses.MISSING else "?"


def params_from_mapping(params_cls: type, values: Any, detector: str) -> Any:
    """A detector's Params from a manifest's mapping: unknown names and wrongly typed values are refused.

    A manifest is data anyone could have edited; its values reach the Params constructor (and from
    there the networks), so each is checked against the field's annotation first.
    """
    if not isinstance(values, dict):
        raise AnomalyError(f"params must be a mapping, not {type(values).__name__}")
    hints = typing.get_type_hints(params_cls)
    known = {f.name for f in dataclasses.fields(params_cls)}
    unknown = sorted(set(values) - known)
    if unknown:
        raise AnomalyError(
            f"params {', '.join(unknown)} are not {detector} parameters (it takes {', '.join(sorted(known))})"
        )
    for key, value in values.items():
        if not _fits(value, hints[key]):
            kind = getattr(hints[key], "__name__", hints[key])
            raise AnomalyError(f"params {key} = {value!r} is not of type {kind}")
    return params_cls(**values)


def _fits(value: Any, hint: Any) -> bool:
    """Whether a JSON value has the field's type (ints pass as floats, None only where optional)."""
    options = typing.get_args(hint) if typing.get_origin(hint) in (typing.Union, types.UnionType) else (hint,)
    for candidate in options:
        kind = typing.get_origin(candidate) or candidate
        if kind is type(None):
            fits = value is None
        elif kind in (int, float):
            fits = isinstance(value, (int, float) if kind is float else int) and not isinstance(value, bool)
        elif kind in (str, bool, dict, list):
            fits = isinstance(value, kind)
        else:
            return True  # a type JSON has no counterpart for: the Params class checks it, if at all
        if fits:
            return True
    return False
