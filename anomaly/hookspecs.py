"""The hooks a plugin may implement. Built-in detectors use exactly these, through entry points.

A hook with a name not listed here is refused when the plugin loads (``check_pending``), so a typo
such as ``register_detector`` shows up as a broken plugin in ``anomaly plugins``, not as silence.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    import click

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


@hookspec
def register_commands(cli: click.Group) -> None:
    """Add sub-commands to ``cli`` (``@cli.command()`` or ``cli.add_command``), as ``anomaly VERB``.

    It runs at every start of the CLI, so keep imports of heavy libraries inside the commands. A
    command whose name is taken (by a built-in or an earlier plugin) is refused and the plugin is
    reported broken; the built-in stays.
    """
