"""Choosing the Keras backend and precision: refused in one line when it cannot hold, recorded when it does.

The cross-backend save/load round trip is tests/core/test_backends.py; these stay in this process
(its backend is the suite's, KERAS_BACKEND) or in one ``python -m anomaly`` for the option itself.
"""

from __future__ import annotations

import json
import sys
import types
from pathlib import Path

import keras
import numpy as np
import pytest

from anomaly.errors import AnomalyError
from anomaly.keras import backend
from anomaly.keras.precision import policy
from tests.conftest import TINY_TRAINING as TINY
from tests.conftest import write_series
from tests.test_cli_errors import assert_one_error_line, run_anomaly


def test_an_unknown_backend_is_refused_with_the_choices() -> None:
    with pytest.raises(AnomalyError, match="unknown Keras backend 'mxnet'; choose one of tensorflow, jax, torch"):
        backend.choose("mxnet")


def test_a_backend_that_is_not_installed_says_how_to_install_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(backend, "installed", lambda name: False)
    with pytest.raises(AnomalyError, match=r"the torch backend is not installed: pip install torch"):
        backend.choose("torch")


def test_another_backend_once_keras_runs_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    running = keras.backend.backend()
    other = next(name for name in backend.BACKENDS if name != running)
    monkeypatch.setattr(backend, "installed", lambda name: True)
    with pytest.raises(AnomalyError, match=f"already running on {running}.*in a new process"):
        backend.choose(other)


def test_the_running_backend_is_accepted_and_passed_to_subprocesses(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("KERAS_BACKEND", raising=False)
    backend.choose(keras.backend.backend())
    import os

    assert os.environ["KERAS_BACKEND"] == backend.current()


def test_a_cpu_only_backend_reports_cpu(monkeypatch: pytest.MonkeyPatch) -> None:
    """The device is read from the backend, not assumed: a torch without CUDA says cpu."""
    fake_torch = types.SimpleNamespace(cuda=types.SimpleNamespace(is_available=lambda: False))
    monkeypatch.setitem(sys.modules, "torch", fake_torch)
    monkeypatch.setattr(backend, "current", lambda: "torch")
    assert backend.device() == "cpu"


@pytest.mark.parametrize(("precision", "expected"), [("float32", "float32"), ("mixed", "mixed_bfloat16")])
def test_mixed_precision_is_bfloat16_which_needs_no_loss_scaling(precision: str, expected: str) -> None:
    assert policy(precision) == expected


def test_an_unknown_precision_is_refused() -> None:
    with pytest.raises(AnomalyError, match="unknown precision 'half'; choose one of float32, mixed"):
        policy("half")


def test_the_backend_option_rejects_a_name_keras_lacks(tmp_path: Path) -> None:
    done = run_anomaly("--backend", "mxnet", "plugins", cwd=tmp_path)
    assert done.returncode == 2 and "'mxnet' is not one of 'tensorflow', 'jax', 'torch'" in done.stderr


def test_mixed_precision_for_a_detector_without_networks_is_one_line(tmp_path: Path) -> None:
    csv = write_series(tmp_path / "s.csv")
    done = run_anomaly(
        "train", "pca", csv, "--out", tmp_path / "m", "--window", "8", "--precision", "mixed", cwd=tmp_path
    )
    assert_one_error_line(done, "precision 'mixed' is for detectors with Keras networks; pca has none")
    assert not (tmp_path / "m").exists()


def test_a_mixed_precision_model_records_how_it_trained_and_scores_in_float32(cli, tmp_path: Path) -> None:
    csv = write_series(tmp_path / "s.csv")
    model = tmp_path / "model"
    result = cli("train", "ganomaly", csv, "--out", model, "--window", "8", "--precision", "mixed", *TINY)
    assert result.exit_code == 0, result.output
    training = json.loads((model / "manifest.json").read_text())["training"]
    assert (training["backend"], training["device"], training["precision"]) == (
        keras.backend.backend(),
        "cpu",
        "mixed_bfloat16",
    )
    assert f"trained on │ {keras.backend.backend()}, cpu (mixed_bfloat16)" in " ".join(result.output.split())
    scored = cli("score", model, csv)
    assert scored.exit_code == 0, scored.output
    scores = [json.loads(line)["score"] for line in scored.output.splitlines() if line.startswith("{")]
    assert scores and np.all(np.isfinite(scores))
