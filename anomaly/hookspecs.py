"""The hooks a plugin may implement. Built-in detectors use exactly these, through entry points."""

from __future__ import annotations

from collections.abc import Callable

import pluggy

hookspec = pluggy.HookspecMarker("anomaly")
hookimpl = pluggy.HookimplMarker("anomaly")


@hookspec
def register_detectors(register: Callable[[type], None]) -> None:
    """Call ``register(DetectorClass)`` for each detector the plugin provides."""


@hookspec
def register_decoders(register: Callable[..., None]) -> None:
    """Call ``register(name, decode, modality)`` for each stream message decoder the plugin provides.

    ``decode(message, context)`` turns one Kafka message into a ``Reading`` or ``Picture``
    (``anomaly.stream.decode``) or raises ``Rejected(reason)``; ``modality`` is ``"image"`` or
    ``"series"``, the kind of model it feeds. A plugin needs only the hooks it uses.
    """
