"""A template detector plugin: the entry point module implements the ``register_detectors`` hook."""

from anomaly.hookspecs import hookimpl


@hookimpl
def register_detectors(register) -> None:
    from anomaly_template.detector import TemplateDetector

    register(TemplateDetector)
