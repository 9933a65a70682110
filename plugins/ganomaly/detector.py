"""GANomaly: an encoder-decoder-encoder generator with a discriminator, trained on normal data.

Anomalies are samples whose latent code is not preserved through reconstruction (the
``latent`` component), that reconstruct badly (``reconstruction``) or whose discriminator
features differ from their reconstruction's (``discriminator``). Images score by default
instead by how far their latent code (or, when asked, their patches' features) is from the nearest training
sample's (``memory``, ``anomaly_plugins.ganomaly.memory``; docs/decisions/0005 and 0006), measured
between the codes as they are or, when asked, whitened over the training set (``memory_distance``;
docs/decisions/0007), and in units of its mode's typical distance when asked to treat normal data as
several modes (``memory_modes``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anomaly.errors import AnomalyError
from anomaly.keras.detector import MAX_LATENT, GANParams, KerasDetector
from anomaly.modes import MAX_MODES, check_wanted
from anomaly.params import option

# The memory bank's options: what it holds (none: no bank): each sample's latent code, or one feature map
# of the encoder or the discriminator, position by position; auto: the latent code for images, none for series.
MEMORY = ("auto", "none", "latent", "encoder", "discriminator")
MAX_BANK = 65536
# How the bank measures distance (memory_distance; anomaly_plugins.ganomaly.memory).
DISTANCES = ("euclidean", "whitened")


@dataclass
class GANomalyParams(GANParams):
    latent: int = option(100, low=1, high=MAX_LATENT, help="size of the latent code z")
    w_adv: float = option(1.0, low=0, help="weight of the adversarial (feature-matching) loss")
    w_con: float = option(50.0, low=0, help="weight of the reconstruction loss")
    w_enc: float = option(1.0, low=0, help="weight of the latent (encoder) loss")
    memory: str = option(
        "auto",
        choices=MEMORY,
        help="images: score by distance to the nearest training sample's latent code, or patch features of this "
        "network (auto: latent for images, none for series)",
    )
    memory_level: int = option(
        0, low=0, high=16, help="encoder/discriminator banks: the feature map, 0 the first (half the sample's size)"
    )
    memory_size: int = option(
        4096, low=1, high=MAX_BANK, help="patches the bank keeps (a greedy coreset of training's)"
    )
    memory_modes: str = option(
        "1",
        help=f"banks: modes of normal data (1-{MAX_MODES}, or auto: by silhouette); "
        "each distance is divided by its mode's typical one",
    )
    memory_distance: str = option(
        "euclidean",
        choices=DISTANCES,
        help="banks: euclidean, or whitened (Mahalanobis over the training features: each feature in units of its normal spread)",
    )


class GANomaly(KerasDetector):
    name = "ganomaly"
    version = "1.0"
    description = "GANomaly: encoder-decoder-encoder GAN; latent, reconstruction and discriminator error"
    components = ("latent", "reconstruction", "discriminator")
    # Images weigh all three components. The latent error alone found defects painted onto magnetic_tile
    # parts best (`python -m experiments.image_defaults`) but ranked other digits below the normal one on
    # digits 0 and 1 (AUROC 0.36 and 0.45 against 0.99 and 0.97 with all three):
    # docs/decisions/0002-image-tile-pooling-and-score.md.
    default_weights = {"latent": 1.0, "reconstruction": 1.0, "discriminator": 1.0}
    # On sensor windows the latent error is unreliable (AUROC 0.25-0.94 on the benchmark's development
    # machines, where reconstruction gave 0.83-0.96; docs/decisions/0001-series-score-and-network-widths.md):
    # series score by reconstruction unless told otherwise.
    series_weights = {"latent": 0.0, "reconstruction": 1.0, "discriminator": 0.0}
    # With a bank, its distance alone: on painted magnetic_tile defects it beat the three components, and
    # adding them to it lost most of the gain (docs/decisions/0005-ganomaly-memory-bank-scoring.md).
    memory_weights = {"memory": 1.0}
    Params = GANomalyParams

    def __init__(self, spec, params=None, settings=None) -> None:
        params = params if params is not None else self.Params()
        # What the bank holds once ``auto`` is resolved: the latent-code bank is the image default, chosen on
        # painted defects and digits (docs/decisions/0005); series keep their reconstruction score (0001).
        self.memory = ("none" if spec.modality == "series" else "latent") if params.memory == "auto" else params.memory
        if self.memory != "none":
            self.components = (*type(self).components, "memory")
        super().__init__(spec, params, settings)
        if spec.modality == "series":
            self.default_weights = self.series_weights
        elif self.memory != "none":
            self.default_weights = self.memory_weights
        self.bank: np.ndarray | None = None
        # Per bank row, its mode's typical distance (memory_modes other than 1), else None.
        self.scale: np.ndarray | None = None
        # The whitening map's (kernel, bias) (memory_distance=whitened), else None.
        self.whitening: tuple[np.ndarray, np.ndarray] | None = None

    def prepare(self, spec) -> None:
        """Refuse a bank for series, or of a feature level the sample size does not have, before anything trains."""
        super().prepare(spec)
        check_wanted(self.params.memory_modes, "memory_modes")
        if self.memory in ("none", "latent"):
            return
        if spec.modality != "image":
            raise AnomalyError("the memory bank scores image patches; series take memory=none")
        levels = int(np.log2(spec.sample_shape[0] // 4))
        if self.params.memory_level >= levels:
            raise AnomalyError(
                f"memory_level: {spec.sample_shape[0]}-px samples have feature levels 0-{levels - 1}, "
                f"not {self.params.memory_level}"
            )

    @property
    def whitened(self) -> bool:
        return self.memory != "none" and self.params.memory_distance == "whitened"

    @property
    def fits_once(self) -> bool:
        """The bank is built once, from the trained networks' features of every training sample."""
        return self.memory != "none"

    def build(self) -> None:
        from anomaly_plugins.ganomaly import memory
        from anomaly_plugins.ganomaly.model import GANomalyModel

        bounded = self.spec.modality == "image" and not self.spec.standardize
        self.model = GANomalyModel(self.spec.sample_shape, self.params, bounded, self.compile_training)
        self.networks = self.model.networks
        if self.memory == "latent":
            self.memory_model = self.model.encoder
        elif self.memory != "none":
            network = self.model.features if self.memory == "discriminator" else self.model.encoder
            self.memory_model = memory.feature_model(network, self.params.memory_level)
        if self.whitened:
            self.memory_model = memory.whitened_model(self.memory_model)
            if self.whitening is not None:
                memory.set_whitening(self.memory_model, *self.whitening)

    def train_step(self, x: np.ndarray) -> dict[str, float]:
        return self.model.train_step(x)

    def fit_once(self, x: np.ndarray) -> dict[str, float]:
        from anomaly_plugins.ganomaly import memory

        seed = self.settings.seed
        if self.whitened:
            self.whitening = memory.fit_whitening(self.memory_model, x, seed)
        self.bank = memory.build_bank(self.memory_model, x, self.params.memory_size, seed)
        logs = {"memory_patches": float(len(self.bank))}
        if self.params.memory_modes != "1":
            labels, found = memory.modes(self.bank, self.params.memory_modes, seed, MAX_MODES)
            self.scale = memory.mode_scales(self.memory_model, self.bank, labels, x, seed)
            logs.update(found)
        return logs

    def sample_components(self, x: np.ndarray):
        from anomaly_plugins.ganomaly import memory

        comps, residual = self.model.components(x)
        if self.bank is not None:
            comps["memory"] = memory.patch_scores(self.memory_model, self.bank, x, self.scale)
        return comps, residual

    def sample_reconstructions(self, x: np.ndarray) -> np.ndarray:
        """G(x): the decoder's picture of the encoder's code, the residual's other half."""
        import keras

        from anomaly.keras import steps

        steps.flush()  # the networks' current weights, wherever training left them
        model = self.model
        return keras.ops.convert_to_numpy(model.decoder(model.encoder(x, training=False), training=False))

    def validation_loss(self, x: np.ndarray) -> float:
        """Reconstruction and latent loss on held-out normal data: what the generator is asked to minimise.

        Read from the networks alone: during training there is no bank yet to score a ``memory`` component.
        """
        losses = []
        # A diverged network's errors overflow: the harness reports the non-finite loss in one line.
        with np.errstate(over="ignore", invalid="ignore"):
            for start in range(0, len(x), self.score_batch_size):
                comps, _ = self.model.components(x[start : start + self.score_batch_size])
                losses.append(self.params.w_con * comps["reconstruction"] + self.params.w_enc * comps["latent"])
            return float(np.mean(np.concatenate(losses)))

    def save_state(self, directory: Path) -> None:
        from anomaly_plugins.ganomaly import memory

        super().save_state(directory)
        if self.bank is not None:
            memory.save_bank(directory, self.bank, self.scale, self.whitening)

    def load_state(self, directory: Path) -> None:
        from anomaly_plugins.ganomaly import memory

        super().load_state(directory)
        if self.memory != "none":
            features = int(self.memory_model.output.shape[-1])
            self.bank, self.scale, self.whitening = memory.load_bank(
                directory, features, self.params.memory_modes != "1", self.whitened
            )
            if self.whitening is not None:
                memory.set_whitening(self.memory_model, *self.whitening)
