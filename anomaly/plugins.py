"""Loading detector plugins from the ``anomaly.detectors`` entry-point group.

Entry points are walked one by one (rather than with pluggy's ``load_setuptools_entrypoints``,
which stops at the first failure) so that a broken plugin is reported by name and skipped
instead of taking the CLI down. ``ANOMALY_PLUGINS`` narrows which external plugins load: a
comma-separated list of entry-point names, or an empty string for built-ins only.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points

import pluggy

from anomaly import hookspecs
from anomaly.detector import Detector
from anomaly.errors import PluginError

GROUP = "anomaly.detectors"
BUILTIN_DISTRIBUTION = "anomaly-gan"
ENV_FILTER = "ANOMALY_PLUGINS"


@dataclass
class DetectorInfo:
    cls: type[Detector]
    plugin: str
    distribution: str
    version: str


@dataclass
class Registry:
    detectors: dict[str, DetectorInfo] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)

    def get(self, name: str) -> type[Detector]:
        info = self.detectors.get(name)
        if info is None:
            known = ", ".join(sorted(self.detectors)) or "none"
            hint = f"; broken plugins: {', '.join(sorted(self.broken))}" if self.broken else ""
            raise PluginError(f"unknown detector {name!r} (available: {known}{hint})")
        return info.cls


def _distribution(ep: EntryPoint) -> tuple[str, str]:
    dist = getattr(ep, "dist", None)
    return (dist.name, dist.version) if dist is not None else ("unknown", "?")


def _allowed(ep: EntryPoint, dist_name: str) -> bool:
    if dist_name == BUILTIN_DISTRIBUTION:
        return True
    wanted = os.environ.get(ENV_FILTER)
    if wanted is None:
        return True
    return ep.name in {name.strip() for name in wanted.split(",") if name.strip()}


def _registrar(registry: Registry, plugin: str, dist: tuple[str, str]):
    def register(cls: type) -> None:
        if not (isinstance(cls, type) and issubclass(cls, Detector)) or not getattr(cls, "name", None):
            raise TypeError(f"registered {cls!r}, which is not a named Detector subclass")
        if cls.name in registry.detectors:
            raise ValueError(
                f"detector name {cls.name!r} is already registered by {registry.detectors[cls.name].plugin}"
            )
        registry.detectors[cls.name] = DetectorInfo(cls, plugin, *dist)

    return register


Candidate = tuple[str, tuple[str, str], object]


def plugin_modules(broken: dict[str, str], extra_plugins: dict[str, object] | None = None) -> list[Candidate]:
    """(name, (distribution, version), module) of every allowed entry point and in-process plugin.

    An entry point that fails to import is recorded in ``broken`` by name and left out.
    """
    candidates: list[Candidate] = []
    for ep in entry_points(group=GROUP):
        dist = _distribution(ep)
        if not _allowed(ep, dist[0]):
            continue
        try:
            candidates.append((ep.name, dist, ep.load()))
        except Exception as exc:  # a plugin's import can fail in any way; report and go on
            broken[ep.name] = f"import failed: {exc.__class__.__name__}: {exc}"
    for name, module in (extra_plugins or {}).items():
        candidates.append((name, ("in-process", "-"), module))
    return candidates


def call_per_plugin(
    hook: str,
    candidates: list[Candidate],
    broken: dict[str, str],
    make_register: Callable[[str, tuple[str, str]], Callable[..., None]],
    on_failure: Callable[[str], None] | None = None,
) -> None:
    """Call ``hook`` of each plugin on its own, so one plugin's failure is recorded and the rest still load."""
    manager = pluggy.PluginManager("anomaly")
    manager.add_hookspecs(hookspecs)
    for name, dist, module in candidates:
        try:
            manager.register(module, name=name)
        except Exception as exc:
            broken[name] = f"bad hook: {exc}"
            continue
        for impl in getattr(manager.hook, hook).get_hookimpls():
            if impl.plugin_name != name:
                continue
            try:
                impl.function(register=make_register(name, dist))
            except Exception as exc:
                broken[name] = f"{hook} failed: {exc.__class__.__name__}: {exc}"
                if on_failure is not None:
                    on_failure(name)


def build_registry(extra_plugins: dict[str, object] | None = None) -> Registry:
    """Load every allowed entry point (and in-process ``extra_plugins``), isolating failures per plugin."""
    registry = Registry()

    def forget(plugin: str) -> None:
        for detector in [d for d, info in registry.detectors.items() if info.plugin == plugin]:
            del registry.detectors[detector]

    candidates = plugin_modules(registry.broken, extra_plugins)
    call_per_plugin(
        "register_detectors", candidates, registry.broken, lambda name, dist: _registrar(registry, name, dist), forget
    )
    return registry


@lru_cache(maxsize=1)
def registry() -> Registry:
    return build_registry()


def load_model(directory) -> Detector:
    """Open a saved model folder with the detector class named in its manifest."""
    from pathlib import Path

    from anomaly.artifact import Manifest

    manifest = Manifest.read(Path(directory))
    return registry().get(manifest.detector.name).load(directory)
