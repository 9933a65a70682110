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
