"""The ``anomaly`` command line: one group, sub-commands registered from small modules."""

from __future__ import annotations

import logging
import os
import warnings
from pathlib import Path
from typing import TYPE_CHECKING

import click

from anomaly import __version__
from anomaly.errors import AnomalyError
from anomaly.extras import missing_extra
from anomaly.keras.backend import BACKENDS

if TYPE_CHECKING:
    from anomaly.plugins import Commands

CONFIG_META = "anomaly.config"


def _masked(message: str) -> str:
    """``message`` without any configured database or Kafka secret: the last guard before a terminal or a log."""
    from anomaly.store.config import configured_secrets, scrub
    from anomaly.stream.config import kafka_secrets

    return scrub(message, configured_secrets() | kafka_secrets())


class _Group(click.Group):
    """Turns every ``AnomalyError`` into a one-line message and exit status 2, never a traceback; so too a
    missing optional extra, named with its install command.

    The global ``--config`` file is in use for the whole command, the masking of its error included.
    Plugins' verbs are added on first need (a verb that is not a built-in, the command list of
    ``--help``), so a built-in command imports no plugin module before it asks for one.
    """

    _plugins: Commands | None = None

    def plugin_commands(self) -> Commands:
        """Every plugin's verbs, added once, after the built-ins: one whose name is taken is refused and reported."""
        if self._plugins is None:
            from anomaly.plugins import add_plugin_commands

            self._plugins = add_plugin_commands(self)
        return self._plugins

    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name not in self.commands:
            self.plugin_commands()
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        self.plugin_commands()
        return super().list_commands(ctx)

    def invoke(self, ctx: click.Context):
        from anomaly import settings

        with settings.using(ctx.meta.get(CONFIG_META)):
            try:
                return super().invoke(ctx)
            except AnomalyError as exc:
                click.echo(f"Error: {_masked(str(exc))}", err=True)
                ctx.exit(2)
            except ModuleNotFoundError as exc:
                hint = missing_extra(exc, f"anomaly {ctx.invoked_subcommand}")
                if hint is None:
                    raise
                click.echo(f"Error: {hint}", err=True)
                ctx.exit(2)


@click.group(cls=_Group)
@click.version_option(__version__, prog_name="anomaly")
@click.option("-v", "--verbose", count=True, help="More log output, TensorFlow's included (-vv for debug).")
@click.option(
    "--config",
    type=click.Path(path_type=Path),
    default=None,
    expose_value=False,
    callback=lambda ctx, _param, path: ctx.meta.__setitem__(CONFIG_META, path),
    help="Service configuration file (database, Kafka, serve) [default: ANOMALY_CONFIG, else "
    "anomaly.toml here]. Not train's --config, which holds a run's options.",
)
@click.option(
    "--backend",
    type=click.Choice(BACKENDS),
    default=None,
    help="Keras backend that runs the networks, for this command and the processes it starts "
    "[default: KERAS_BACKEND, else tensorflow].",
)
def cli(verbose: int, backend: str | None) -> None:
    """GAN anomaly detection: train on normal data, score, evaluate, stream."""
    level = logging.WARNING - 10 * min(verbose, 2)
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    _quiet_tensorflow(verbose)
    _use_backend(backend)


def _use_backend(option: str | None) -> None:
    """The option over KERAS_BACKEND, checked before any command imports Keras (which reads it once).

    A KERAS_BACKEND naming a backend Keras has beyond these (numpy, openvino) is left to Keras.
    """
    from anomaly.keras import backend

    chosen = option or os.environ.get("KERAS_BACKEND", backend.DEFAULT)
    if option or chosen in backend.BACKENDS:
        backend.choose(chosen)


def _quiet_tensorflow(verbose: int) -> None:
    """Silence TensorFlow's C++ and Python logs unless -v: runs before any command imports TensorFlow.

    Its start-up lines (CPU features, oneDNN, absl) and retracing warnings would bury the one line
    that matters; TF_CPP_MIN_LOG_LEVEL is only read when TensorFlow loads, so it must be set first.
    oneDNN's custom CPU kernels are off unless TF_ENABLE_ONEDNN_OPTS says otherwise, with or
    without -v: on CPUs where TensorFlow turns them on it announces so before its log level is read
    (TensorFlow 2.21), and they make results differ by CPU, where a seeded run should repeat.
    """
    os.environ.setdefault("TF_ENABLE_ONEDNN_OPTS", "0")
    if verbose:
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "0"
        return
    if not os.environ.get("TF_CPP_MIN_LOG_LEVEL"):
        os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
    for name in ("tensorflow", "absl", "keras"):
        logging.getLogger(name).setLevel(logging.ERROR)
    warnings.filterwarnings("ignore", module=r"(keras|tensorflow|absl)(\.|$)")


def _register_commands() -> None:
    from anomaly.cli import detectors, settings, store, stream, ui

    for command in detectors.COMMANDS + store.COMMANDS + stream.COMMANDS + settings.COMMANDS + ui.COMMANDS:
        cli.add_command(command)
    from anomaly.cli import retrain

    for command in retrain.COMMANDS:
        cli.add_command(command)


_register_commands()


def main() -> None:
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    cli(prog_name="anomaly")


if __name__ == "__main__":
    main()
