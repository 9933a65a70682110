"""Shared fixtures: tiny data on disk and a CLI runner that shows what a user would see."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from PIL import Image

os.environ.setdefault("KERAS_BACKEND", "tensorflow")
os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "2")

pytest_plugins = ["tests.db"]

SHARED_DATA = Path(__file__).resolve().parents[2] / "shared" / "data"


@pytest.fixture
def cli():
    from anomaly.cli import cli as group

    runner = CliRunner()

    def invoke(*args: str):
        return runner.invoke(group, [str(a) for a in args], catch_exceptions=False)

    return invoke


def write_images(folder: Path, count: int, seed: int = 0, size=(24, 30)) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    for i in range(count):
        ramp = np.linspace(60, 180, size[1])[None, :] + rng.normal(0, 4, size)
        Image.fromarray(np.clip(ramp, 0, 255).astype(np.uint8)).save(folder / f"img{i:02d}.png")
    return folder


def write_series(path: Path, steps: int = 200, channels: int = 2) -> Path:
    t = np.arange(steps)[:, None]
    values = np.sin(t / (4 + np.arange(channels)))
    header = ",".join(f"c{i}" for i in range(channels))
    np.savetxt(path, values, delimiter=",", header=header, comments="")
    return path


@pytest.fixture(scope="session")
def shared_data() -> Path:
    if not SHARED_DATA.is_dir():
        pytest.skip("../shared/data is not beside the repository")
    return SHARED_DATA


TINY_TRAINING = ("--epochs", "1", "--set", "width=4", "--set", "latent=4", "--no-progress")


@pytest.fixture(scope="module")
def series_model(tmp_path_factory) -> Path:
    """A GANomaly trained one epoch on a two-channel sine series (window 8): a model for commands to fail on."""
    from anomaly.cli import cli

    tmp = tmp_path_factory.mktemp("series-model")
    csv = write_series(tmp / "train.csv")
    result = CliRunner().invoke(
        cli, ["train", "ganomaly", str(csv), "--out", str(tmp / "model"), "--window", "8", *TINY_TRAINING]
    )
    assert result.exit_code == 0, result.output
    return tmp / "model"
