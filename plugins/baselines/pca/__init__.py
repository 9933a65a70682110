"""PCA baseline as an anomaly plugin.

The hook imports the detector only when called, so listing commands or ``--help`` never pays for
the detector harness and scikit-learn.
"""

from anomaly.hookspecs import hookimpl


@hookimpl
def register_detectors(register) -> None:
    from anomaly_plugins.baselines.pca.detector import PCA

    register(PCA)
