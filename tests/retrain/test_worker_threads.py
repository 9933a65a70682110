"""The retrain worker's thread cap holds on every Keras backend, and needs TensorFlow only when it is the backend."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

PROBE = (
    "import os, sys; from anomaly.retrain.worker import _set_threads; _set_threads(1); "
    "print(len(os.sched_getaffinity(0)), 'tensorflow' in sys.modules)"
)


@pytest.mark.skipif(not hasattr(os, "sched_setaffinity") or len(os.sched_getaffinity(0)) < 2, reason="needs 2 CPUs")
@pytest.mark.parametrize(("backend", "imports_tensorflow"), [("jax", False), ("tensorflow", True)])
def test_the_worker_runs_on_as_many_cpus_as_threads_allows(backend: str, imports_tensorflow: bool) -> None:
    env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3"}
    done = subprocess.run([sys.executable, "-c", PROBE], capture_output=True, text=True, env=env, timeout=120)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.split() == ["1", str(imports_tensorflow)]
