"""The example plugin installs with pip and works through the CLI exactly like a built-in detector."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[1]
TEMPLATE = ROOT / "examples" / "plugin-template"


def run_cli(site: Path, *args: str, env_extra: dict | None = None) -> subprocess.CompletedProcess:
    env = {**os.environ, "PYTHONPATH": str(site), **(env_extra or {})}
    if "ANOMALY_PLUGINS" not in (env_extra or {}):
        env.pop("ANOMALY_PLUGINS", None)
    return subprocess.run(
        [sys.executable, "-m", "anomaly", *args], capture_output=True, text=True, env=env, timeout=300
    )


@pytest.fixture(scope="module")
def site(tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "install",
            "-q",
            "--no-deps",
            "--no-build-isolation",
            "--target",
            str(target),
            str(TEMPLATE),
        ],
        check=True,
        capture_output=True,
    )
    return target


def _fake_distribution(site: Path, name: str, entry_point: str, module_source: str | None = None) -> None:
    info = site / f"{name}-0.1.dist-info"
    info.mkdir()
    (info / "METADATA").write_text(f"Metadata-Version: 2.1\nName: {name}\nVersion: 0.1\n")
    (info / "entry_points.txt").write_text(f"[anomaly.detectors]\n{name} = {entry_point}\n")
    if module_source is not None:
        (site / f"{entry_point}.py").write_text(module_source)


def test_installed_plugin_is_listed_with_its_distribution(site: Path) -> None:
    result = run_cli(site, "plugins", "--json")
    assert result.returncode == 0, result.stderr
    detectors = {d["name"]: d for d in json.loads(result.stdout)["detectors"]}
    assert {"ganomaly", "anogan", "template"} <= set(detectors)
    assert detectors["template"]["distribution"] == "anomaly-template-detector"
    assert detectors["template"]["version"] == "0.1.0"
    assert detectors["ganomaly"]["distribution"] == "anomaly-gan"


def test_installed_plugin_trains_and_scores_through_the_cli(site: Path, tmp_path: Path) -> None:
    t = np.arange(300)
    csv = tmp_path / "normal.csv"
    np.savetxt(csv, np.c_[np.sin(t / 5), np.cos(t / 9)], delimiter=",", header="a,b", comments="")
    model = tmp_path / "model"
    trained = run_cli(
        site, "train", "template", str(csv), "--out", str(model), "--epochs", "1", "--window", "10", "--no-progress"
    )
    assert trained.returncode == 0, trained.stderr
    scored = run_cli(site, "score", str(model), str(csv))
    assert scored.returncode == 0, scored.stderr
    rows = [json.loads(line) for line in scored.stdout.splitlines()]
    assert len(rows) == 300 - 10 + 1
    assert set(rows[0]) == {"id", "score", "is_anomaly", "threshold", "components"}
    assert set(rows[0]["components"]) == {"reconstruction", "discriminator"}


def test_environment_variable_narrows_external_plugins(site: Path) -> None:
    result = run_cli(site, "plugins", "--json", env_extra={"ANOMALY_PLUGINS": ""})
    detectors = json.loads(result.stdout)["detectors"]
    assert {"ganomaly", "anogan"} <= {d["name"] for d in detectors}
    assert {d["distribution"] for d in detectors} == {"anomaly-gan"}  # the built-ins only, never blocked


def test_broken_plugins_are_reported_and_skipped(site: Path, tmp_path: Path) -> None:
    broken_site = tmp_path / "broken-site"
    broken_site.mkdir()
    _fake_distribution(broken_site, "missing_module", "no_such_module_here")
    _fake_distribution(
        broken_site,
        "bad_hook",
        "bad_hook_plugin",
        "from anomaly.hookspecs import hookimpl\n\n@hookimpl\ndef register_detectors(register):\n"
        "    register(object)\n",
    )
    result = run_cli(Path(f"{site}{os.pathsep}{broken_site}"), "plugins", "--json")
    assert result.returncode == 0, result.stderr
    listing = json.loads(result.stdout)
    assert {"ganomaly", "anogan", "template"} <= {d["name"] for d in listing["detectors"]}
    assert "import failed" in listing["broken"]["missing_module"]
    assert "not a named Detector" in listing["broken"]["bad_hook"]
    table = run_cli(Path(f"{site}{os.pathsep}{broken_site}"), "plugins")
    assert "broken plugin missing_module" in table.stderr and "Traceback" not in table.stderr


def test_template_passes_the_contract_kit(site: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(site)}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(TEMPLATE / "tests")],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
        cwd=TEMPLATE,
    )
    assert result.returncode == 0, result.stdout[-3000:]
    assert " passed" in result.stdout
