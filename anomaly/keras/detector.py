"""Shared plumbing for detectors built on Keras 3 networks.

Keras is imported lazily: listing plugins or reading a manifest must not pay TensorFlow's
start-up. Weights are saved as ``.weights.h5`` files — data only, the architecture is rebuilt
from the manifest's hyper-parameters — so loading a model folder never runs code from it.
"""

from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from anomaly.artifact import state_file
from anomaly.detector import Detector
from anomaly.errors import AnomalyError, ArtifactError
from anomaly.inputs import Spec
from anomaly.params import option

# Default network width per modality when a detector's ``width`` is left unset. Images: 16 scores
# 64x64 images about 3x faster than 32 on a 2-core CPU (the 300 images/s target), and wider networks
# did not score magnetic_tile better (0.61-0.62 AUROC at 16 here, 0.63-0.64 at 64 in the shared GPU
# findings); series: 32 separates anomalies better on every score component
# (docs/decisions/0001-series-score-and-network-widths.md).
DEFAULT_WIDTH = {"image": 16, "series": 32}

# Network size bounds, checked before anything is built: ``width`` and ``latent`` come from the
# manifest, and a layer's weights grow with the square of its features (the optimisers built with
# the networks triple that). 1024 features is 8x the default image networks' widest layer (64 px,
# width 16) and keeps the largest allowed GANomaly to a few hundred MB.
MAX_FEATURES = 1024
MAX_LATENT = 1024
# The network bodies ``anomaly.keras.networks`` builds for series windows (images always use 2-D convolutions).
NETWORKS = ("dense", "conv")


@dataclass
class GANParams:
    """Options every built-in GAN detector shares; a detector's Params adds its own (and may change a default)."""

    latent: int = option(64, low=1, high=MAX_LATENT, help="size of the latent code z")
    width: int | None = option(
        None, low=1, high=MAX_FEATURES, help="features of the first network layer (auto: 16 for images, 32 for series)"
    )
    network: str = option("dense", choices=NETWORKS, help="series networks: dense stack or 1-D convolutions")
    lr: float = option(2e-4, above=0, high=1, help="Adam learning rate")
    beta1: float = option(0.5, low=0, high=0.999, help="Adam beta1")
    score_weights: dict[str, float] = option(
        default_factory=dict, help="COMPONENT:WEIGHT,... overriding the score's component weights"
    )


def widest_layer(shape: tuple[int, ...], width: int, network: str) -> int:
    """Features in the widest layer ``anomaly.keras.networks`` builds for samples of ``shape``.

    Images double the features at each stride-2 level down to 4x4, 1-D convolutions at each
    halving of the window down to 4 steps; the dense stack is 4 x width wide.
    """
    if len(shape) == 3:
        return width * 2 ** (int(math.log2(shape[0] // 4)) - 1)
    if network == "conv":
        return width * 2 ** max(math.ceil(math.log2(shape[0] / 4)) - 1, 0)
    return width * 4


class KerasDetector(Detector):
    """A detector whose learned state is a dict of named Keras models in ``self.networks``."""

    networks: dict[str, Any]
    xla_min_steps: int = 1000

    def prepare(self, spec: Spec) -> None:
        """Fill the network width for the modality and refuse a size that would not fit in memory."""
        super().prepare(spec)
        if getattr(self.params, "width", 0) is None:
            # A copy: the caller's params may configure other detectors, for other inputs, too.
            self.params = dataclasses.replace(self.params, width=DEFAULT_WIDTH[spec.modality])
        self._check_size(spec)

    def _check_size(self, spec: Spec) -> None:
        """Refuse a width whose widest layer would not fit in memory, before the networks are built.

        ``width`` and ``latent`` on their own are bounded by their Params declarations.
        """
        if hasattr(self.params, "width"):
            shape = spec.sample_shape
            widest = widest_layer(shape, self.params.width, getattr(self.params, "network", "dense"))
            if widest > MAX_FEATURES:
                raise AnomalyError(
                    f"width {self.params.width} makes the widest layer {widest} features for "
                    f"samples shaped {shape}; the limit is {MAX_FEATURES}"
                )

    @property
    def compile_training(self) -> bool:
        """XLA makes a CPU training step 20–40% faster but costs seconds to compile: worth it for long runs only."""
        return self.planned_steps >= self.xla_min_steps

    def seed(self, seed: int) -> None:
        """Seed Python, NumPy and the backend; TensorFlow also needs its ops made deterministic to repeat a run."""
        import keras

        keras.utils.set_random_seed(seed)
        if keras.backend.backend() == "tensorflow":
            import tensorflow as tf

            tf.config.experimental.enable_op_determinism()

    def get_state(self) -> dict[str, list]:
        from anomaly.keras import steps

        steps.flush()
        return {name: net.get_weights() for name, net in self.networks.items()}

    def set_state(self, state: dict[str, list]) -> None:
        from anomaly.keras import steps

        steps.flush()
        for name, weights in state.items():
            self.networks[name].set_weights(weights)

    def save_state(self, directory: Path) -> None:
        from anomaly.keras import steps

        steps.flush()
        for name, net in self.networks.items():
            net.save_weights(directory / f"{name}.weights.h5")

    def load_state(self, directory: Path) -> None:
        for name, net in self.networks.items():
            path = state_file(directory, f"{name}.weights.h5")
            try:
                net.load_weights(path)
            except (ValueError, OSError) as exc:
                raise ArtifactError(f"{path}: weights do not fit the {name} network ({exc})") from None
