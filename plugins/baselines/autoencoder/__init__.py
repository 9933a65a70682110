"""The autoencoder baseline as an anomaly plugin.

The hook imports the detector only when called, so listing commands or ``--help`` never pays for
the detector harness and scikit-learn.
"""

from anomaly.hookspecs import hookimpl


@hookimpl
def register_detectors(register) -> None:
    from anomaly_plugins.baselines.autoencoder.detector import Autoencoder

    register(Autoencoder)
