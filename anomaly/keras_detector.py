"""Shared plumbing for detectors built on Keras 3 networks.

Keras is imported lazily: listing plugins or reading a manifest must not pay TensorFlow's
start-up. Weights are saved as ``.weights.h5`` files — data only, the architecture is rebuilt
from the manifest's hyper-parameters — so loading a model folder never runs code from it.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

from anomaly.detector import Detector
from anomaly.errors import AnomalyError, ArtifactError

# Default network width per modality when a detector's ``width`` is left unset. Images: 16 scores
# 64x64 images about 3x faster than 32 on a 2-core CPU (the 300 images/s target), and wider networks
# did not score magnetic_tile better (0.61-0.62 AUROC at 16 here, 0.63-0.64 at 64 in the shared GPU
# findings); series: 32 separates anomalies better on every score component (docs/benchmarks.md,
# "Defaults").
DEFAULT_WIDTH = {"image": 16, "series": 32}


def require_tensorflow() -> None:
    """The built-in GAN training steps use TensorFlow's autodiff; other Keras backends need their own."""
    import keras

    if keras.backend.backend() != "tensorflow":
        raise AnomalyError(
            f"the built-in GAN detectors train on Keras' TensorFlow backend, not {keras.backend.backend()!r}; "
            "unset KERAS_BACKEND or set it to tensorflow"
        )


class KerasDetector(Detector):
    """A detector whose learned state is a dict of named Keras models in ``self.networks``."""

    networks: dict[str, Any]
    xla_min_steps: int = 1000

    def __init__(self, spec, params: Any = None, settings: Any = None) -> None:
        super().__init__(spec, params, settings)
        if getattr(self.params, "width", 0) is None:
            # A copy: the caller's params may configure other detectors, for other inputs, too.
            self.params = dataclasses.replace(self.params, width=DEFAULT_WIDTH[spec.modality])

    @property
    def compile_training(self) -> bool:
        """XLA makes a CPU training step 20–40% faster but costs seconds to compile: worth it for long runs only."""
        return self.planned_steps >= self.xla_min_steps

    def seed(self, seed: int) -> None:
        require_tensorflow()
        import keras
        import tensorflow as tf

        keras.utils.set_random_seed(seed)
        tf.config.experimental.enable_op_determinism()

    def get_state(self) -> dict[str, list]:
        return {name: net.get_weights() for name, net in self.networks.items()}

    def set_state(self, state: dict[str, list]) -> None:
        for name, weights in state.items():
            self.networks[name].set_weights(weights)

    def save_state(self, directory: Path) -> None:
        for name, net in self.networks.items():
            net.save_weights(directory / f"{name}.weights.h5")

    def load_state(self, directory: Path) -> None:
        for name, net in self.networks.items():
            path = directory / f"{name}.weights.h5"
            if not path.is_file():
                raise ArtifactError(f"{directory}: missing weights file {path.name}")
            try:
                net.load_weights(path)
            except (ValueError, OSError) as exc:
                raise ArtifactError(f"{path}: weights do not fit the {name} network ({exc})") from None
