"""What machine produced a figure: every benchmark table names it, since CPU figures mean nothing without it."""

from __future__ import annotations

from pathlib import Path

from benchmarks.report import machine


def cpu_model() -> str:
    for line in Path("/proc/cpuinfo").read_text().splitlines() if Path("/proc/cpuinfo").exists() else []:
        if line.startswith("model name"):
            return line.split(":", 1)[1].strip()
    return "unknown CPU"


def describe_machine() -> str:
    """Architecture, cores, CPU model, Python and the TensorFlow/Keras versions that ran the networks."""
    from importlib.metadata import PackageNotFoundError, version

    libraries = []
    for name in ("tensorflow", "tensorflow-cpu", "keras", "scikit-learn"):
        try:
            libraries.append(f"{name} {version(name)}")
        except PackageNotFoundError:
            continue
    return f"{machine()}, {cpu_model()}, {', '.join(libraries)}"
