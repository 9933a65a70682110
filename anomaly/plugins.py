"""Plugins from the ``anomaly.detectors`` entry-point group: one pluggy manager, and registries filled from it.

Entry points are loaded one by one (rather than with pluggy's ``load_setuptools_entrypoints``,
which stops at the first failure) so that a plugin that fails to import, or implements a hook
that does not exist, is reported by name and left out instead of taking the CLI down.
``ANOMALY_PLUGINS`` narrows which external plugins load (a comma-separated list of entry-point
names, or an empty string for built-ins only) by blocking the others in pluggy, before they are
imported; the built-ins (distribution ``anomaly-gan``) are never blocked.

This module is imported by the CLI at start-up: it imports nothing heavy (not the detector
harness, nor TensorFlow), and the built-ins' hooks import what they register only when called.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from importlib.metadata import EntryPoint, entry_points
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Protocol, TypeVar

import pluggy

from anomaly import __version__, hookspecs
from anomaly.errors import PluginError

if TYPE_CHECKING:
    from pathlib import Path

    import click
    from pluggy import HookImpl

    from anomaly.detector import Detector

GROUP = "anomaly.detectors"
BUILTIN_DISTRIBUTION = "anomaly-gan"
ENV_FILTER = "ANOMALY_PLUGINS"
# The plugin name of the core package's own hooks (built-in decoders, built-in commands).
CORE = BUILTIN_DISTRIBUTION


@dataclass(frozen=True)
class Source:
    """The distribution a plugin came from, as ``anomaly plugins`` shows it."""

    distribution: str
    version: str


class _CoreHooks:
    """The core package's hooks, registered like any plugin's. Each imports its module only when called."""

    @hookspecs.hookimpl
    def register_decoders(self, register: Callable[..., None]) -> None:
        from anomaly.stream.decode import register_builtin_decoders

        register_builtin_decoders(register)


class PluginManager(pluggy.PluginManager):
    """pluggy's manager, plus what pluggy does not keep: where each plugin came from and why one was left out."""

    def __init__(self) -> None:
        super().__init__("anomaly")
        self.add_hookspecs(hookspecs)
        self.sources: dict[str, Source] = {}
        self.broken: dict[str, str] = {}

    def add(self, plugin: object, name: str, source: Source) -> None:
        """Register ``plugin``; one whose hooks do not match the hookspecs is recorded in ``broken`` instead."""
        try:
            if self.register(plugin, name=name) is None:
                return  # blocked
            self.check_pending()
        except pluggy.PluginValidationError as exc:
            unknown = [caller.name for caller in self.get_hookcallers(plugin) or [] if not caller.has_spec()]
            if self.get_plugin(name) is plugin:
                self.unregister(name=name)
            hooks = ", ".join(sorted(n for n, caller in vars(self.hook).items() if n[0] != "_" and caller.has_spec()))
            if unknown:
                self.broken[name] = f"unknown hook {', '.join(map(repr, unknown))} (the hooks are: {hooks})"
            else:
                self.broken[name] = f"bad hook: {' '.join(str(exc).split())}"
            return
        except ValueError as exc:  # the name or the object is already registered
            self.broken[name] = f"not loaded: {str(exc).splitlines()[0]}"
            return
        self.sources[name] = source


def _source(ep: EntryPoint) -> Source:
    dist = getattr(ep, "dist", None)
    return Source(dist.name, dist.version) if dist is not None else Source("unknown", "?")


def _block_unlisted(manager: PluginManager, found: list[EntryPoint]) -> None:
    """Block, by entry-point name, every external plugin ``ANOMALY_PLUGINS`` does not list (none when unset)."""
    wanted = os.environ.get(ENV_FILTER)
    if wanted is None:
        return
    listed = {name.strip() for name in wanted.split(",") if name.strip()}
    for ep in found:
        if ep.name not in listed and _source(ep).distribution != BUILTIN_DISTRIBUTION:
            manager.set_blocked(ep.name)


def build_plugin_manager(extra_plugins: Mapping[str, object] | None = None) -> PluginManager:
    """A manager with the core hooks, every allowed entry point (each import guarded) and ``extra_plugins``."""
    manager = PluginManager()
    manager.add(_CoreHooks(), CORE, Source(BUILTIN_DISTRIBUTION, __version__))
    found = list(entry_points(group=GROUP))
    _block_unlisted(manager, found)
    for ep in found:
        if manager.is_blocked(ep.name):
            continue
        try:
            plugin = ep.load()
        except Exception as exc:  # a plugin's import can fail in any way; report and go on
            manager.broken[ep.name] = f"import failed: {exc.__class__.__name__}: {exc}"
            continue
        manager.add(plugin, ep.name, _source(ep))
    for name, plugin in (extra_plugins or {}).items():
        manager.add(plugin, name, Source("in-process", "-"))
    return manager


@lru_cache(maxsize=1)
def plugin_manager() -> PluginManager:
    """The process's plugin manager: entry points are loaded once, whichever registry asks first."""
    return build_plugin_manager()


class _Entry(Protocol):
    plugin: str


E = TypeVar("E", bound=_Entry)


@dataclass
class PluginRegistry(Generic[E]):
    """What the plugins registered through one hook, by name, and the plugins left out, by name, with why.

    Each plugin's hook is called on its own and what it registers is kept only if the whole call
    succeeds: a plugin whose hook raises, or registers something invalid or a taken name, is
    reported broken and contributes nothing, and the other plugins are unaffected.
    """

    hook: ClassVar[str]
    kind: ClassVar[str]
    known: dict[str, E] = field(default_factory=dict)
    broken: dict[str, str] = field(default_factory=dict)

    def info(self, name: str) -> E:
        found = self.known.get(name)
        if found is None:
            available = ", ".join(sorted(self.known)) or "none"
            hint = f"; broken plugins: {', '.join(sorted(self.broken))}" if self.broken else ""
            raise PluginError(f"unknown {self.kind} {name!r} (available: {available}{hint})")
        return found

    def fill(self, manager: PluginManager) -> None:
        """Call the hook of every plugin of ``manager`` (that implements it); ``broken`` gets the manager's too."""
        self.broken.update(manager.broken)
        for impl in getattr(manager.hook, self.hook).get_hookimpls():
            self._fill_from(impl, manager.sources[impl.plugin_name])

    def _fill_from(self, impl: HookImpl, source: Source) -> None:
        plugin = impl.plugin_name
        added: dict[str, E] = {}

        def register(*args: Any, **kwargs: Any) -> None:
            name, entry = self.entry(plugin, source, *args, **kwargs)
            owner = self.known.get(name) or added.get(name)
            if owner is not None:
                raise ValueError(f"{self.kind} name {name!r} is already registered by {owner.plugin}")
            added[name] = entry

        try:
            self.call(impl, register)
        except Exception as exc:  # a plugin's hook can fail in any way; report it and keep nothing of it
            self.broken[plugin] = f"{self.hook} failed: {exc.__class__.__name__}: {exc}"
            return
        self.known.update(added)

    def call(self, impl: HookImpl, register: Callable[..., None]) -> None:
        """Run one plugin's hook; the register-style hooks take the ``register`` function as is."""
        impl.function(register=register)

    def entry(self, plugin: str, source: Source, *args: Any, **kwargs: Any) -> tuple[str, E]:
        """The name and entry for one ``register(...)`` call; raises (with why) on an invalid one."""
        raise NotImplementedError


@dataclass
class DetectorInfo:
    cls: type[Detector]
    plugin: str
    distribution: str
    version: str


@dataclass
class Registry(PluginRegistry[DetectorInfo]):
    """The detectors, by name."""

    hook: ClassVar[str] = "register_detectors"
    kind: ClassVar[str] = "detector"

    @property
    def detectors(self) -> dict[str, DetectorInfo]:
        return self.known

    def get(self, name: str) -> type[Detector]:
        return self.info(name).cls

    def entry(self, plugin: str, source: Source, cls: type) -> tuple[str, DetectorInfo]:
        from anomaly.detector import Detector

        if not (isinstance(cls, type) and issubclass(cls, Detector)) or not getattr(cls, "name", None):
            raise TypeError(f"registered {cls!r}, which is not a named Detector subclass")
        return cls.name, DetectorInfo(cls, plugin, source.distribution, source.version)


@dataclass
class CommandInfo:
    command: click.Command
    plugin: str


@dataclass
class Commands(PluginRegistry[CommandInfo]):
    """The CLI verbs plugins add. Each plugin's hook gets a scratch group, so its commands reach the real
    one only after all of them are known not to collide with a built-in's or another plugin's."""

    hook: ClassVar[str] = "register_commands"
    kind: ClassVar[str] = "command"

    def call(self, impl: HookImpl, register: Callable[..., None]) -> None:
        import click

        scratch = click.Group()
        impl.function(cli=scratch)
        for name, command in scratch.commands.items():
            register(name, command)

    def entry(self, plugin: str, source: Source, name: str, command: click.Command) -> tuple[str, CommandInfo]:
        return name, CommandInfo(command, plugin)


def add_plugin_commands(cli: click.Group, manager: PluginManager | None = None) -> Commands:
    """Add every plugin's commands to ``cli`` (whose commands so far are the built-ins); returns them."""
    commands = Commands(known={name: CommandInfo(command, CORE) for name, command in cli.commands.items()})
    commands.fill(manager or plugin_manager())
    for name, info in commands.known.items():
        if info.plugin != CORE:
            cli.add_command(info.command, name)
    return commands


def build_registry(extra_plugins: Mapping[str, object] | None = None) -> Registry:
    """Every allowed entry point's detectors (and in-process ``extra_plugins``'), isolating failures per plugin."""
    registry = Registry()
    registry.fill(plugin_manager() if extra_plugins is None else build_plugin_manager(extra_plugins))
    return registry


@lru_cache(maxsize=1)
def registry() -> Registry:
    return build_registry()


def load_model(directory: str | Path) -> Detector:
    """Open a saved model folder with the detector class named in its manifest."""
    from pathlib import Path

    from anomaly.artifact import Manifest

    manifest = Manifest.read(Path(directory))
    return registry().get(manifest.detector.name).load(directory)


def all_broken(*registries: PluginRegistry[Any]) -> dict[str, str]:
    """Every broken plugin of ``registries``, by name; a plugin broken in several ways gets each reason once."""
    reasons: dict[str, list[str]] = {}
    for found in registries:
        for name, reason in found.broken.items():
            if reason not in reasons.setdefault(name, []):
                reasons[name].append(reason)
    return {name: "; ".join(why) for name, why in sorted(reasons.items())}
