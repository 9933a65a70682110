"""A model trained on one Keras backend loads and scores on another (docs/decisions/0004).

Keras reads KERAS_BACKEND once per process, so each backend runs the real CLI in its own subprocess.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.conftest import write_images

TINY = ("--epochs", "1", "--set", "width=4", "--set", "latent=4", "--no-progress", "--image-size", "16")


def _anomaly(backend: str, *args: str | Path) -> str:
    env = {**os.environ, "KERAS_BACKEND": backend}
    done = subprocess.run(
        [sys.executable, "-c", "from anomaly.cli import main; main()", "--backend", backend, *map(str, args)],
        capture_output=True,
        text=True,
        env=env,
        timeout=300,
    )
    assert done.returncode == 0, done.stderr[-2000:]
    return done.stdout


def _scores(backend: str, model: Path, data: Path) -> np.ndarray:
    rows = [json.loads(line) for line in _anomaly(backend, "score", model, data).splitlines() if line.startswith("{")]
    assert rows
    return np.array([r["score"] for r in rows])


@pytest.mark.parametrize("detector", ["ganomaly", "anogan"])
@pytest.mark.parametrize(("trained_on", "scored_on"), [("tensorflow", "jax"), ("jax", "tensorflow")])
def test_a_model_trained_on_one_backend_scores_alike_on_another(
    tmp_path: Path, detector: str, trained_on: str, scored_on: str
) -> None:
    data = write_images(tmp_path / "good", 8)
    model = tmp_path / "model"
    extra = ("--set", "search_steps=2") if detector == "anogan" else ()
    _anomaly(trained_on, "train", detector, data, "--out", model, *TINY, *extra)
    manifest = json.loads((model / "manifest.json").read_text())
    assert manifest["training"]["backend"] == trained_on
    here = _scores(trained_on, model, data)
    there = _scores(scored_on, model, data)
    assert np.all(np.isfinite(here))
    np.testing.assert_allclose(there, here, rtol=1e-3, atol=1e-4)
