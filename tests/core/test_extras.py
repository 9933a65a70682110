"""A train-only install: the core commands work without the optional extras, the others name the one to install.

Each command runs in its own process with the extras' modules blocked by a meta-path finder (as if
they were not installed), because this environment has every extra and an import, once made, stays.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import TINY_TRAINING, write_images
from tests.test_cli_errors import assert_one_error_line

EXTRA_MODULES = ("sqlalchemy", "alembic", "psycopg", "kafka", "orjson", "prometheus_client", "crc32c")

LAUNCHER = f"""
import importlib.abc, sys

class WithoutExtras(importlib.abc.MetaPathFinder):
    def find_spec(self, name, path=None, target=None):
        if name.partition(".")[0] in {EXTRA_MODULES!r}:
            raise ModuleNotFoundError(f"No module named {{name!r}}", name=name)

sys.meta_path.insert(0, WithoutExtras())
from anomaly.cli import main
sys.argv[0] = "anomaly"
main()
"""


def without_extras(*args: object, cwd: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-c", LAUNCHER, *map(str, args)], cwd=cwd, capture_output=True, text=True, timeout=300
    )


def succeeded(done: subprocess.CompletedProcess[str]) -> str:
    assert done.returncode == 0, done.stdout + done.stderr
    return done.stdout


def test_help_plugins_and_config_need_no_extra(tmp_path: Path) -> None:
    assert "train" in succeeded(without_extras("--help", cwd=tmp_path))
    assert "ganomaly" in succeeded(without_extras("plugins", cwd=tmp_path))
    assert "database.url" in succeeded(without_extras("config", "show", cwd=tmp_path))


def test_train_score_and_evaluate_from_files_need_no_extra(tmp_path: Path) -> None:
    data = write_images(tmp_path / "parts" / "good", 8).parent
    write_images(data / "scratch", 3, seed=9)
    model = tmp_path / "model"
    succeeded(
        without_extras("train", "ganomaly", data, "--out", model, "--image-size", "16", *TINY_TRAINING, cwd=tmp_path)
    )
    rows = [
        json.loads(line)
        for line in succeeded(without_extras("score", model, data / "scratch", cwd=tmp_path)).splitlines()
    ]
    assert len(rows) == 3
    report = json.loads(succeeded(without_extras("evaluate", model, data, "--json", cwd=tmp_path)))
    assert report["results"]["all"]["anomalous"] == 3


@pytest.mark.parametrize(
    ("args", "hint"),
    [
        (
            ("serve", "--topic", "t", "--model", "m"),
            "anomaly serve needs the Kafka client: pip install 'anomaly-gan[stream]'",
        ),
        (
            ("produce", "--digits", "--topic", "t"),
            "anomaly produce needs the Kafka client: pip install 'anomaly-gan[stream]'",
        ),
        (("db", "upgrade"), "anomaly db needs the SQL store: pip install 'anomaly-gan[store]'"),
        (("models",), "anomaly models needs the SQL store: pip install 'anomaly-gan[store]'"),
        (("events", "label", "1", "normal"), "anomaly events needs the SQL store: pip install 'anomaly-gan[store]'"),
    ],
)
def test_a_command_that_needs_an_extra_names_it_in_one_line(tmp_path: Path, args: tuple[str, ...], hint: str) -> None:
    done = without_extras(*args, cwd=tmp_path)
    assert done.returncode == 2
    assert assert_one_error_line(done) == f"Error: {hint}"
