"""Built-in detectors, installed as ``anomaly_plugins`` and loaded through entry points like any other."""
