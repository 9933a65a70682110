"""User-facing errors.

Anything a user can cause (bad data, bad options, an incompatible model folder) raises
``AnomalyError`` with a one-line message naming the problem; the CLI prints it without a
traceback and exits non-zero. Programming errors stay ordinary exceptions.
"""


class AnomalyError(Exception):
    """A problem with the user's input, configuration or environment."""


class DataError(AnomalyError):
    """Input data that cannot be used: missing, empty, corrupt, wrong shape, NaN."""


class ArtifactError(AnomalyError):
    """A model folder that is missing, damaged or written by an incompatible version."""


class PluginError(AnomalyError):
    """An unknown detector or a plugin that failed to load."""


def failure_line(exc: BaseException) -> str:
    """Why something failed, on one line: the project's own message, else the exception's class too."""
    text = " ".join(str(exc).split())
    if isinstance(exc, AnomalyError) and text:
        return text
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
