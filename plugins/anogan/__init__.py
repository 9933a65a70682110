"""AnoGAN (Schlegl et al., IPMI 2017) as an anomaly plugin."""

from anomaly.hookspecs import hookimpl


@hookimpl
def register_detectors(register) -> None:
    from anomaly_plugins.anogan.detector import AnoGAN

    register(AnoGAN)
