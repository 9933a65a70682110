"""GAN anomaly detection: detectors as plugins, trained on normal data, scoring streams into a SQL store."""

__version__ = "0.1.0"
