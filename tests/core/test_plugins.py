"""anomaly.plugins in-process: each way a plugin can break is reported by its name, with why, and costs only it."""

from __future__ import annotations

import sys
import types
from importlib.metadata import EntryPoint, entry_points

import click
import pytest
from click.testing import CliRunner

from anomaly import plugins
from anomaly.cli import _Group, cli
from anomaly.errors import PluginError
from anomaly.hookspecs import hookimpl
from anomaly.plugins import GROUP, build_plugin_manager, build_registry, plugin_manager
from anomaly.stream.decode import build_decoders


@pytest.fixture(autouse=True)
def _all_plugins(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("ANOMALY_PLUGINS", raising=False)


def _plugin(**hooks) -> type:
    """A plugin object whose hooks are the given functions."""
    return type("Plugin", (), {name: staticmethod(hookimpl(fn)) for name, fn in hooks.items()})


def _with_entry_points(monkeypatch: pytest.MonkeyPatch, *fake: EntryPoint, builtin: str = "ganomaly") -> None:
    """The module sees one real built-in entry point (distribution anomaly-gan) and the ``fake`` ones."""
    real = [ep for ep in entry_points(group=GROUP) if ep.name == builtin]
    monkeypatch.setattr(plugins, "entry_points", lambda group: [*real, *fake] if group == GROUP else [])


def _module_entry_point(monkeypatch: pytest.MonkeyPatch, name: str, **hooks) -> EntryPoint:
    module = types.ModuleType(f"fake_plugin_{name}")
    for hook, fn in hooks.items():
        setattr(module, hook, hookimpl(fn))
    monkeypatch.setitem(sys.modules, module.__name__, module)
    return EntryPoint(name, module.__name__, GROUP)


def _ganomaly() -> type:
    return build_registry({}).get("ganomaly")


def test_an_entry_point_that_fails_to_import_is_reported_and_the_others_load(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_entry_points(monkeypatch, EntryPoint("ghost", "no_such_module_for_anomaly_tests", GROUP))
    found = build_registry({})
    assert found.broken == {
        "ghost": "import failed: ModuleNotFoundError: No module named 'no_such_module_for_anomaly_tests'"
    }
    assert set(found.detectors) == {"ganomaly"}
    assert found.detectors["ganomaly"].distribution == "anomaly-gan"


def test_a_hook_that_raises_breaks_only_its_plugin() -> None:
    def register_detectors(register) -> None:
        raise RuntimeError("boom")

    found = build_registry({"raising": _plugin(register_detectors=register_detectors)})
    assert found.broken["raising"] == "register_detectors failed: RuntimeError: boom"
    assert "ganomaly" in found.detectors
    with pytest.raises(
        PluginError, match=r"unknown detector 'nope' \(available: .*ganomaly.*; broken plugins: raising\)"
    ):
        found.get("nope")


def test_registering_something_other_than_a_detector_is_refused() -> None:
    found = build_registry({"bad": _plugin(register_detectors=lambda register: register(object))})
    assert found.broken["bad"] == (
        "register_detectors failed: TypeError: registered <class 'object'>, which is not a named Detector subclass"
    )


def test_a_taken_detector_name_drops_everything_the_plugin_registered() -> None:
    ganomaly = _ganomaly()
    copy = type("Copy", (ganomaly,), {"name": "copy"})

    def register_detectors(register) -> None:
        register(copy)
        register(ganomaly)

    found = build_registry({"dup": _plugin(register_detectors=register_detectors)})
    assert found.broken["dup"] == (
        "register_detectors failed: ValueError: detector name 'ganomaly' is already registered by ganomaly"
    )
    assert "copy" not in found.detectors and found.detectors["ganomaly"].plugin == "ganomaly"


def test_a_misspelled_hook_is_reported_by_check_pending() -> None:
    manager = build_plugin_manager({"typo": _plugin(register_detector=lambda register: None)})
    assert manager.broken["typo"] == (
        "unknown hook 'register_detector' (the hooks are: register_commands, register_decoders, register_detectors)"
    )
    assert manager.get_plugin("typo") is None
    manager.check_pending()  # nothing of it is left behind to fail the next plugin


def test_a_hook_with_wrong_arguments_is_reported() -> None:
    manager = build_plugin_manager({"wrong": _plugin(register_detectors=lambda reg: None)})
    assert manager.broken["wrong"].startswith("bad hook: Plugin 'wrong' for hook 'register_detectors'")
    assert "{'reg'}" in manager.broken["wrong"]


def test_anomaly_plugins_blocks_unlisted_external_plugins_before_importing_them(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    wanted = _module_entry_point(monkeypatch, "wanted", register_decoders=lambda register: None)
    _with_entry_points(monkeypatch, wanted, EntryPoint("unlisted", "no_such_module_for_anomaly_tests", GROUP))
    monkeypatch.setenv("ANOMALY_PLUGINS", " wanted, ")
    manager = build_plugin_manager()
    assert manager.is_blocked("unlisted") and "unlisted" not in manager.broken  # never imported
    assert manager.has_plugin("wanted") and not manager.is_blocked("ganomaly")
    assert set(build_registry({}).detectors) == {"ganomaly"}


def test_an_empty_anomaly_plugins_loads_the_built_ins_only(monkeypatch: pytest.MonkeyPatch) -> None:
    _with_entry_points(monkeypatch, _module_entry_point(monkeypatch, "external", register_decoders=lambda r: None))
    monkeypatch.setenv("ANOMALY_PLUGINS", "")
    manager = build_plugin_manager()
    assert manager.is_blocked("external")
    assert not manager.is_blocked("ganomaly") and manager.has_plugin("ganomaly") and manager.has_plugin("anomaly-gan")


def test_entry_points_are_loaded_once_per_process(monkeypatch: pytest.MonkeyPatch) -> None:
    calls = []
    real = plugins.entry_points
    monkeypatch.setattr(plugins, "entry_points", lambda group: calls.append(group) or real(group=group))
    plugin_manager.cache_clear()
    try:
        build_registry()
        build_decoders()
        assert plugin_manager() is plugin_manager() and calls == [GROUP]
    finally:
        plugin_manager.cache_clear()


def _hello(cli: click.Group) -> None:
    @cli.command("hello")
    @click.option("--who", default="world")
    def hello(who: str) -> None:
        """Greet."""
        click.echo(f"hello {who}")


def _group_with(monkeypatch: pytest.MonkeyPatch, extra: dict[str, object]) -> _Group:
    """A copy of the CLI's group whose plugins are the built-ins plus ``extra``."""
    monkeypatch.setattr(plugins, "plugin_manager", lambda: build_plugin_manager(extra))
    return _Group("anomaly", commands=dict(cli.commands))


def test_a_plugin_adds_a_verb_that_runs_through_the_cli(monkeypatch: pytest.MonkeyPatch) -> None:
    group = _group_with(monkeypatch, {"greeter": _plugin(register_commands=_hello)})
    result = CliRunner().invoke(group, ["hello", "--who", "operator"])
    assert result.exit_code == 0, result.output
    assert result.output == "hello operator\n"
    assert group.plugin_commands().known["hello"].plugin == "greeter"
    assert "hello" in CliRunner().invoke(group, ["--help"]).output


def test_a_verb_taken_by_a_built_in_or_another_plugin_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    def clashing(cli: click.Group) -> None:
        _hello(cli)

        @cli.command("train")
        def train() -> None:
            click.echo("not the real train")

    group = _group_with(
        monkeypatch,
        {
            "greeter": _plugin(register_commands=_hello),
            "clash": _plugin(register_commands=clashing),
        },
    )
    builtin_train = group.commands["train"]
    commands = group.plugin_commands()
    assert commands.broken["clash"] == (
        "register_commands failed: ValueError: command name 'hello' is already registered by greeter"
    )
    assert group.commands["train"] is builtin_train
    assert commands.known["hello"].plugin == "greeter"


def test_a_verb_named_like_a_built_in_is_refused_and_the_built_in_kept(monkeypatch: pytest.MonkeyPatch) -> None:
    def shadow(cli: click.Group) -> None:
        cli.add_command(click.Command("score", callback=lambda: click.echo("shadow")))

    group = _group_with(monkeypatch, {"shadow": _plugin(register_commands=shadow)})
    builtin_score = group.commands["score"]
    commands = group.plugin_commands()
    assert commands.broken["shadow"] == (
        "register_commands failed: ValueError: command name 'score' is already registered by anomaly-gan"
    )
    assert group.get_command(click.Context(group), "score") is builtin_score


def test_a_raising_command_hook_does_not_take_the_cli_down(monkeypatch: pytest.MonkeyPatch) -> None:
    def raising(cli: click.Group) -> None:
        raise ImportError("its click extension is missing")

    group = _group_with(
        monkeypatch, {"raising": _plugin(register_commands=raising), "greeter": _plugin(register_commands=_hello)}
    )
    result = CliRunner().invoke(group, ["hello"])
    assert result.exit_code == 0 and result.output == "hello world\n"
    assert group.plugin_commands().broken["raising"] == (
        "register_commands failed: ImportError: its click extension is missing"
    )


def test_a_taken_decoder_name_is_refused() -> None:
    def register_decoders(register) -> None:
        register("reading", lambda message, context: None, "series")

    found = build_decoders({"dup": _plugin(register_decoders=register_decoders)})
    assert found.broken["dup"] == (
        "register_decoders failed: ValueError: message decoder name 'reading' is already registered by anomaly-gan"
    )
    assert found.known["reading"].plugin == "anomaly-gan"


def test_a_decoder_of_an_unknown_modality_is_refused() -> None:
    def register_decoders(register) -> None:
        register("ok", lambda message, context: None, "series")
        register("audio", lambda message, context: None, "sound")

    found = build_decoders({"odd": _plugin(register_decoders=register_decoders)})
    assert found.broken["odd"] == (
        "register_decoders failed: ValueError: decoder 'audio': modality must be 'image' or 'series', not 'sound'"
    )
    assert "ok" not in found.known and {"reading", "image"} <= set(found.known)
