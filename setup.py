"""The package list, found rather than kept by hand; everything else about the build is in pyproject.toml.

Built-in detectors live in plugins/ and install as ``anomaly_plugins``, loaded through the same
entry-point group as any third-party detector; Alembic's scripts in migrations/ install as
``anomaly_migrations``, so a plain (non-editable) install can migrate too. pyproject.toml can map a
folder to another package name or find packages, not both, so the finding is done here. tests/,
benchmarks/, demo/ and the other folders are not found, so they never ship.
"""

from setuptools import find_packages, setup

RENAMED = {"anomaly_plugins": "plugins", "anomaly_migrations": "migrations"}


def _packages() -> list[str]:
    found = find_packages(include=["anomaly", "anomaly.*"])
    for name, folder in RENAMED.items():
        found += [name + package[len(folder) :] for package in find_packages(include=[folder, f"{folder}.*"])]
    return found


setup(packages=_packages(), package_dir=RENAMED)
