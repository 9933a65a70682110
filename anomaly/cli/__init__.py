"""The ``anomaly`` command line: one group, sub-commands registered from small modules."""

from __future__ import annotations

import logging
import os
import sys

import click

from anomaly import __version__
from anomaly.errors import AnomalyError


def _masked(message: str) -> str:
    """``message`` without any configured database or Kafka secret: the last guard before a terminal or a log."""
    from anomaly.store.config import configured_secrets, scrub
    from anomaly.stream.config import kafka_secrets

    return scrub(message, configured_secrets() | kafka_secrets())


class _Group(click.Group):
    """Turns every ``AnomalyError`` into a one-line message and exit status 2, never a traceback."""

    def invoke(self, ctx: click.Context):
        try:
            return super().invoke(ctx)
        except AnomalyError as exc:
            click.echo(f"Error: {_masked(str(exc))}", err=True)
            ctx.exit(2)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="anomaly")
@click.option("-v", "--verbose", count=True, help="More log output (-vv for debug).")
def cli(verbose: int) -> None:
    """GAN anomaly detection: train on normal data, score, evaluate, stream."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")


def _register_commands() -> None:
    from anomaly.cli import detectors, store, stream

    for command in detectors.COMMANDS + store.COMMANDS + stream.COMMANDS:
        cli.add_command(command)


_register_commands()


def main() -> None:
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    cli(prog_name="anomaly")


if __name__ == "__main__":
    sys.exit(main())
