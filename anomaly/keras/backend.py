"""Which Keras backend runs the networks, and on which device.

Keras reads ``KERAS_BACKEND`` once, when it is first imported, so the choice is made here before
anything imports it; subprocesses (stream workers, the retrain worker) inherit it through the
environment. The device is read back from the backend after training, so the manifest and the
training summary say what really trained the model rather than what was asked for.
"""

from __future__ import annotations

import importlib.util
import os
import sys

from anomaly.errors import AnomalyError

BACKENDS = ("tensorflow", "jax", "torch")
DEFAULT = "tensorflow"
_INSTALL = {
    "tensorflow": "pip install tensorflow (tensorflow-cpu on a machine without a GPU)",
    "jax": "pip install 'jax[cpu]' (jax[cuda12] for an NVIDIA GPU)",
    "torch": "pip install torch",
}


def choose(name: str) -> None:
    """Make ``name`` the backend of this process and its subprocesses: refused, in one line, when it cannot be."""
    if name not in BACKENDS:
        raise AnomalyError(f"unknown Keras backend {name!r}; choose one of {', '.join(BACKENDS)}")
    if not installed(name):
        raise AnomalyError(f"the {name} backend is not installed: {_INSTALL[name]}")
    loaded = sys.modules.get("keras")
    if loaded is not None and loaded.backend.backend() != name:
        raise AnomalyError(
            f"Keras is already running on {loaded.backend.backend()} in this process; "
            f"choose {name} before Keras is imported (in a new process)"
        )
    os.environ["KERAS_BACKEND"] = name


def installed(name: str) -> bool:
    """Whether the backend's library can be imported, found without importing it (seconds for TensorFlow)."""
    return importlib.util.find_spec(name) is not None


def current() -> str:
    """The backend Keras runs on (imports Keras)."""
    import keras

    return str(keras.backend.backend())


def device() -> str:
    """Where the backend places the networks: ``cpu``, or ``gpu:`` and the GPU's name (the first one)."""
    backend = current()
    if backend == "jax":
        import jax

        first = jax.devices()[0]
        return "cpu" if first.platform == "cpu" else f"gpu:{first.device_kind}"
    if backend == "torch":
        import torch

        return f"gpu:{torch.cuda.get_device_name(0)}" if torch.cuda.is_available() else "cpu"
    if backend == "tensorflow":
        import tensorflow as tf

        gpus = tf.config.list_physical_devices("GPU")
        if tf.config.list_logical_devices("GPU") and gpus:
            details = tf.config.experimental.get_device_details(gpus[0])
            return f"gpu:{details.get('device_name', gpus[0].name)}"
    return "cpu"
