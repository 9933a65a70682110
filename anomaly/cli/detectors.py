"""Detector commands: plugins, train, score, evaluate."""

import click


@click.command("plugins")
def plugins_command() -> None:
    """List detector plugins."""


COMMANDS = [plugins_command]
