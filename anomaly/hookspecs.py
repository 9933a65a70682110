"""The hooks a plugin may implement. Built-in detectors use exactly these, through entry points."""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("anomaly")
hookimpl = pluggy.HookimplMarker("anomaly")


@hookspec
def register_detectors(register: Callable[[type], None]) -> None:
    """Call ``register(DetectorClass)`` for each detector the plugin provides."""
