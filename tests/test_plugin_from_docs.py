"""A plugin package made only from docs/plugins.md installs and works as the doc promises.

The doc's file blocks (each starts with a comment naming its file) are saved as they stand into a
fresh folder, pip-installed, and driven through the CLI in subprocesses like any installed plugin:
listed, trained, evaluated and scored on the bundled digits, and run through the contract kit by the
doc's own test module. Nothing here fills a gap the doc leaves: if the doc stops being enough to make
a working plugin, this fails.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from importlib.metadata import distributions
from pathlib import Path

import pytest
from PIL import Image

from anomaly.data.bundled import digits

# The contract kit trains the Keras detector six times (about 30 s of CPU on its own), so the module is slow.
pytestmark = pytest.mark.slow

DOC = Path(__file__).resolve().parents[1] / "docs" / "plugins.md"
# A fenced block whose first line is a comment naming a file: "# my_detectors/isolation.py", "# pyproject.toml".
FILE_BLOCK = re.compile(r"^```(?:python|toml)\n(# ([\w./-]+\.(?:py|toml))\b.*?)^```", re.S | re.M)
FIT_ONCE, KERAS = "my-iforest", "my-autoencoder"
TINY = {FIT_ONCE: ("--set", "trees=50"), KERAS: ("--set", "width=4", "--set", "latent=4")}


def doc_files() -> dict[str, str]:
    """{relative path: text} of every file the doc gives, exactly as an author would save them."""
    return {match.group(2): match.group(1) for match in FILE_BLOCK.finditer(DOC.read_text())}


def write_package(root: Path) -> Path:
    for relative, text in doc_files().items():
        (root / relative).parent.mkdir(parents=True, exist_ok=True)
        (root / relative).write_text(text)
    return root


def run(site: Path, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "PYTHONPATH": str(site)}
    env.pop("ANOMALY_PLUGINS", None)
    return subprocess.run(
        [sys.executable, *args], capture_output=True, text=True, env=env, timeout=300, cwd=cwd or site
    )


def anomaly(site: Path, *args: object) -> str:
    done = run(site, "-m", "anomaly", *map(str, args))
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


@pytest.fixture(scope="module")
def package(tmp_path_factory) -> Path:
    root = write_package(tmp_path_factory.mktemp("my-detectors"))
    expected = {"pyproject.toml", "my_detectors/__init__.py", "my_detectors/isolation.py"}
    assert expected | {"my_detectors/autoencoder.py", "tests/test_contract.py"} <= set(doc_files()), doc_files().keys()
    return root


@pytest.fixture(scope="module")
def site(package: Path, tmp_path_factory) -> Path:
    target = tmp_path_factory.mktemp("site")
    pip = ("-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation", "--target", str(target), str(package))
    done = run(target, *pip)
    assert done.returncode == 0, done.stderr
    return target


@pytest.fixture(scope="module")
def parts(tmp_path_factory) -> Path:
    """A labelled folder of bundled digits: 40 zeros are normal, 12 other digits the defects."""
    root = tmp_path_factory.mktemp("parts")
    data = digits(normal_digit=0)
    folders = {0: root / "good", 1: root / "other"}
    for folder in folders.values():
        folder.mkdir()
    counts = {0: 0, 1: 0}
    for item_id, image, label in zip(data.ids, data.images, data.labels):
        if counts[label] < (40, 12)[label]:
            counts[label] += 1
            Image.fromarray(image[..., 0]).save(folders[label] / f"{item_id.replace('/', '-')}.png")
    return root


def test_both_detectors_are_listed_under_the_distribution(site: Path) -> None:
    (installed,) = distributions(path=[str(site)])
    listing = json.loads(anomaly(site, "plugins", "--json"))
    assert not listing["broken"], listing["broken"]
    detectors = {d["name"]: d for d in listing["detectors"]}
    for name, components in ((FIT_ONCE, ["isolation"]), (KERAS, ["reconstruction"])):
        assert detectors[name]["distribution"] == installed.name == "my-detectors"
        assert detectors[name]["version"] == installed.version == "0.1.0"
        assert detectors[name]["components"] == components


@pytest.fixture(scope="module")
def commands(site: Path, parts: Path, tmp_path_factory) -> dict[str, dict[str, dict]]:
    """``anomaly train``, ``evaluate`` and ``score`` for both detectors: {detector: {verb: result}}.

    One process runs all six through the CLI (click's runner), paying TensorFlow's start-up once
    instead of six times; the listing test runs ``python -m anomaly`` itself.
    """
    root = tmp_path_factory.mktemp("models")
    shape = ("--image-size", "16", "--no-tile", "--epochs", "1", "--no-progress")
    plan = {
        name: {
            "train": ["train", name, str(parts), "--out", str(root / name), *shape, *TINY[name]],
            "evaluate": ["evaluate", str(root / name), str(parts), "--json"],
            "score": ["score", str(root / name), str(parts / "other")],
        }
        for name in (FIT_ONCE, KERAS)
    }
    report = root / "results.json"
    done = run(site, "-c", DRIVER, json.dumps(plan), str(report))
    assert done.returncode == 0, done.stderr[-3000:]
    results = json.loads(report.read_text())
    for name, verbs in results.items():
        for verb, result in verbs.items():
            assert result["exit_code"] == 0, f"anomaly {verb} {name}: {result['output'][-3000:]}"
    return {name: {**verbs, "model": root / name} for name, verbs in results.items()}


DRIVER = """
import json, os, sys
os.environ.setdefault("KERAS_BACKEND", "tensorflow")  # as the anomaly command does
from click.testing import CliRunner
from anomaly.cli import cli
results = {}
for name, verbs in json.loads(sys.argv[1]).items():
    for verb, args in verbs.items():
        done = CliRunner().invoke(cli, args, prog_name="anomaly")
        results.setdefault(name, {})[verb] = {"exit_code": done.exit_code, "stdout": done.stdout, "output": done.output}
with open(sys.argv[2], "w") as out:
    json.dump(results, out)
"""


@pytest.mark.parametrize("name", [FIT_ONCE, KERAS])
def test_trains_evaluates_and_scores_through_the_cli(name: str, commands: dict) -> None:
    manifest = json.loads((commands[name]["model"] / "manifest.json").read_text())
    assert manifest["detector"]["name"] == name and manifest["training"]["epochs_run"] == 1

    report = json.loads(commands[name]["evaluate"]["stdout"])
    assert report["detector"] == name and report["excluded_training_items"] == 28  # 70% of the 40 zeros
    result = report["results"]["all"]
    assert (result["normal"], result["anomalous"]) == (12, 12)
    assert 0.0 <= result["auroc"] <= 1.0
    if name == FIT_ONCE:  # a forest on raw pixels tells zeros from other digits; one Keras epoch need not
        assert result["auroc"] > 0.7, result

    rows = [json.loads(line) for line in commands[name]["score"]["stdout"].splitlines()]
    assert len(rows) == 12
    assert {tuple(row["components"]) for row in rows} == {tuple(manifest["detector"]["components"])}
    assert all(row["is_anomaly"] == (row["score"] > row["threshold"]) for row in rows)


def test_the_docs_contract_module_passes(site: Path, package: Path) -> None:
    done = run(site, "-m", "pytest", "-q", "-p", "no:cacheprovider", str(package / "tests"), cwd=site)
    assert done.returncode == 0, done.stdout[-4000:]
    counts = dict((kind, int(n)) for n, kind in re.findall(r"(\d+) (passed|failed|skipped)", done.stdout))
    assert counts.get("passed", 0) >= 40 and "failed" not in counts, done.stdout[-2000:]
