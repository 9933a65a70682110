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


HELD_STATE = """
from dataclasses import replace
import numpy as np
from anomaly.harness import FitSettings
from anomaly.inputs import ImageSpec, encode
from anomaly.plugins import registry
from benchmarks.speed import textures

cls = registry().get("ganomaly")
detector = cls(ImageSpec(image_size=16), replace(cls.Params(), width=4, latent=4), FitSettings(epochs=1, batch_size=8))
images = textures(24, size=16)
detector.fit(images)
batch = encode(detector.spec, images).x[:8]
flat = lambda state: np.concatenate([np.ravel(w) for name in sorted(state) for w in state[name]])
start = detector.get_state()
for _ in range(10):
    detector.train_step(batch)
first = detector.get_state()
assert not np.allclose(flat(first), flat(start)), "the steps moved no weight"
for _ in range(10):
    detector.train_step(batch)
detector.set_state(start)
detector.train_step(batch)
# One step from the set weights, not a twenty-first from the ones the steps held.
after = flat(detector.get_state())
assert np.linalg.norm(after - flat(start)) < np.linalg.norm(after - flat(first)), "set_state was overwritten"
detector.train_step(batch)
# Scored straight after a step, then from the same weights read out and set again.
scored = detector.score(images, maps=False).scores
trained = detector.get_state()
detector.set_state(start)
detector.set_state(trained)
np.testing.assert_allclose(detector.score(images, maps=False).scores, scored, rtol=1e-5, atol=1e-6)
print("ok")
"""


def test_jax_steps_hold_state_that_reads_and_writes_of_the_weights_see() -> None:
    """JAX keeps the weights with the step between calls: setting them must restart from the set ones,
    and scoring and ``get_state`` must see the trained ones (anomaly/keras/steps/jax.py)."""
    env = {**os.environ, "KERAS_BACKEND": "jax", "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", HELD_STATE], capture_output=True, text=True, env=env, timeout=300)
    assert done.returncode == 0, done.stderr[-3000:]
    assert done.stdout.strip().endswith("ok")
