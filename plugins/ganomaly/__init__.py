"""GANomaly (Akcay et al., ACCV 2018) as an anomaly plugin."""

from anomaly.hookspecs import hookimpl


@hookimpl
def register_detectors(register) -> None:
    from anomaly_plugins.ganomaly.detector import GANomaly

    register(GANomaly)
