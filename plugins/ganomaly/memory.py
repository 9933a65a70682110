"""A memory bank of normal features from GANomaly's own networks, scored by nearest-neighbour distance.

GANomaly's pixel residual misses defects its generator rebuilds well (smooth dark shapes on a
striped surface), and its latent and discriminator errors compare a sample only with its own
reconstruction. A bank instead compares a sample's features with the nearest ones seen in
training: its latent code (one "patch" per sample), or each position of one of the encoder's or
discriminator's feature maps, averaged over its 3x3 neighbourhood as PatchCore does. What no
training sample looked like is far from all of them. The bank is a greedy k-centre coreset of the training patches, so its size and the cost of
scoring stay bounded however many tiles trained. It is stored as one data-only ``.npz`` file.

Normal data can have several modes (product variants, cameras) whose normal samples lie at different
typical distances from their nearest neighbours, so one mode's normal samples would outscore
another's. With modes, the bank is clustered (k-means, k given or chosen by silhouette) and each
distance is divided by the typical distance of training patches nearest to the same mode, fixed at
training time and stored beside the bank (docs/decisions/0006-ganomaly-memory-modes.md).

Distances are Euclidean in the features as the network gives them, or (``whitened``) after a fixed
linear map fitted to the training features, under which Euclidean distance is their Mahalanobis
distance: a feature that varies little over normal samples then counts as much as one that varies a
lot. The map is a Dense layer after the feature model, its weights stored beside the bank and kept by
the detector, which sets them again whenever it rebuilds the layer (after mixed-precision training).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
from sklearn.metrics import pairwise_distances_argmin_min, silhouette_score
from sklearn.neighbors import NearestNeighbors

from anomaly_plugins.baselines.arrays import load_arrays, save_arrays

FILE = "memory.npz"
# Candidates the greedy coreset chooses among: a random subset of the training patches, so choosing
# stays seconds on a CPU (each centre costs one pass over the candidates).
MAX_CANDIDATES = 65536
# The coreset's distances are measured in a random projection of at most this many dimensions.
PROJECTED = 32
# Modes ``auto`` keeps the best of 2..most clusters only when its silhouette reaches SILHOUETTE
# (0.25: "weak structure" and above in Rousseeuw's reading); one mode otherwise.
SILHOUETTE = 0.25
# Training patches whose nearest-neighbour distances give each mode's typical distance, and bank rows
# the silhouette is computed on: bounded so both stay seconds on a CPU.
SCALE_PATCHES = 8192
SILHOUETTE_ROWS = 2048


def feature_model(network: Any, level: int) -> Any:
    """A Keras model from ``network``'s input to its ``level``-th downsampling feature map, 3x3-averaged.

    ``anomaly.keras.networks.body`` ends every stride-2 level in a LeakyReLU; level 0 is the first
    (half the input's size). The network's own layers are reused, not copied.
    """
    import keras

    outputs = [layer.output for layer in network.layers if isinstance(layer, keras.layers.LeakyReLU)]
    if not 0 <= level < len(outputs):
        raise ValueError(f"{network.name} has {len(outputs)} feature levels, not a level {level}")
    pooled = keras.layers.AveragePooling2D(3, strides=1, padding="same")(outputs[level])
    return keras.Model(network.input, pooled, name=f"{network.name}_level{level}")


def whitened_model(model: Any) -> Any:
    """``model`` followed by a fixed linear map of its features: identity until ``set_whitening`` sets it."""
    import keras

    features = int(model.output.shape[-1])
    layer = keras.layers.Dense(
        features, kernel_initializer="identity", trainable=False, dtype="float32", name=f"{model.name}_whiten"
    )
    return keras.Model(model.input, layer(model.output), name=f"{model.name}_whitened")


def set_whitening(model: Any, kernel: np.ndarray | None = None, bias: np.ndarray | None = None) -> None:
    """Set a ``whitened_model``'s map (identity when not given)."""
    features = int(model.output.shape[-1])
    kernel = np.eye(features, dtype=np.float32) if kernel is None else kernel
    bias = np.zeros(features, dtype=np.float32) if bias is None else bias
    model.layers[-1].set_weights([kernel, bias])


def fit_whitening(model: Any, x: np.ndarray, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """Fit a ``whitened_model``'s map on training samples ``x`` from the network's own features (identity
    first, so a refit does not whiten twice), set it, and return it."""
    set_whitening(model)
    fitted = whitening(model, x, seed)
    set_whitening(model, *fitted)
    return fitted


def whitening(model: Any, x: np.ndarray, seed: int | None) -> tuple[np.ndarray, np.ndarray]:
    """(kernel, bias) of the map under which Euclidean distance between ``model``'s features is Mahalanobis.

    Fitted on at most SCALE_PATCHES patches of training samples ``x`` with Ledoit-Wolf shrinkage, which
    keeps the covariance invertible when patches are few against features (100-dimensional codes of a
    few hundred images).
    """
    from sklearn.covariance import LedoitWolf

    fitted = LedoitWolf().fit(sample_patches(model, x, np.random.default_rng(seed)))
    values, vectors = np.linalg.eigh(fitted.precision_)
    kernel = vectors * np.sqrt(np.maximum(values, 0))
    return kernel.astype(np.float32), (-fitted.location_ @ kernel).astype(np.float32)


def sample_patches(model: Any, x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """(patches, features): every patch of enough random samples of ``x`` to give about SCALE_PATCHES."""
    positions = math.prod(model.output.shape[1:-1])
    picked = rng.choice(len(x), min(len(x), max(1, SCALE_PATCHES // positions)), replace=False)
    features = patch_features(model, x[np.sort(picked)])
    return features.reshape(-1, features.shape[-1])


def patch_features(model: Any, x: np.ndarray, batch_size: int = 256) -> np.ndarray:
    """(N, positions, features): every spatial position of every sample's feature map."""
    import keras

    from anomaly.keras import steps

    steps.flush()  # the networks' current weights, wherever training left them
    parts = []
    for start in range(0, len(x), batch_size):
        # convert_to_numpy, not np.asarray: a GPU tensor (PyTorch on CUDA) must be copied to the host first.
        out = np.asarray(keras.ops.convert_to_numpy(model(x[start : start + batch_size], training=False)), np.float32)
        parts.append(out.reshape(len(out), -1, out.shape[-1]))
    return np.concatenate(parts)


def build_bank(model: Any, x: np.ndarray, size: int, seed: int | None, batch_size: int = 256) -> np.ndarray:
    """The bank for training samples ``x``: a coreset of ``size`` of their patches.

    Features are computed a batch at a time and only the candidates kept, so memory stays bounded
    by ``MAX_CANDIDATES`` patches however many samples trained.
    """
    rng = np.random.default_rng(seed)
    positions, features = math.prod(model.output.shape[1:-1]), int(model.output.shape[-1])
    total = len(x) * positions
    if total <= MAX_CANDIDATES:
        return coreset(patch_features(model, x, batch_size).reshape(-1, features), size, rng)
    pick = rng.choice(total, MAX_CANDIDATES, replace=False)
    order = np.argsort(pick)
    wanted = pick[order]
    candidates = np.empty((MAX_CANDIDATES, features), dtype=np.float32)
    for start in range(0, len(x), batch_size):
        lo, hi = np.searchsorted(wanted, [start * positions, (start + batch_size) * positions])
        if lo == hi:
            continue
        flat = patch_features(model, x[start : start + batch_size], batch_size).reshape(-1, features)
        candidates[order[lo:hi]] = flat[wanted[lo:hi] - start * positions]
    return coreset(candidates, size, rng)


def coreset(candidates: np.ndarray, size: int, rng: np.random.Generator) -> np.ndarray:
    """``size`` rows of ``candidates`` chosen greedily, each the farthest from those chosen before (k-centre).

    The farthest-first choice covers rare normal patches that random sampling would drop, so a
    rare but normal texture does not score as a defect.
    """
    if len(candidates) <= size:
        return candidates.copy()
    projected = candidates
    if candidates.shape[1] > PROJECTED:
        projection = rng.normal(size=(candidates.shape[1], PROJECTED)) / np.sqrt(PROJECTED)
        projected = candidates @ projection.astype(np.float32)
    chosen = np.empty(size, dtype=np.int64)
    chosen[0] = rng.integers(len(candidates))
    nearest = np.sum((projected - projected[chosen[0]]) ** 2, axis=1)
    for i in range(1, size):
        chosen[i] = int(np.argmax(nearest))
        nearest = np.minimum(nearest, np.sum((projected - projected[chosen[i]]) ** 2, axis=1))
    return candidates[chosen]


def nearest_distances(queries: np.ndarray, bank: np.ndarray) -> np.ndarray:
    """Euclidean distance from each query row to its nearest bank row (exact, computed in chunks)."""
    return pairwise_distances_argmin_min(queries, bank)[1].astype(np.float64)


def patch_scores(model: Any, bank: np.ndarray, x: np.ndarray, scale: np.ndarray | None = None) -> np.ndarray:
    """Per sample, the largest nearest-neighbour distance over its patches: one unusual patch flags it.

    With ``scale`` (one per bank row, ``mode_scales``), each distance is divided by its nearest row's.
    """
    features = patch_features(model, x)
    queries = features.reshape(-1, features.shape[-1])
    if scale is None:
        distances = nearest_distances(queries, bank)
    else:
        nearest, found = pairwise_distances_argmin_min(queries, bank)
        distances = found.astype(np.float64) / scale[nearest]
    return distances.reshape(features.shape[:2]).max(axis=1)


def modes(bank: np.ndarray, wanted: str, seed: int | None, most: int) -> tuple[np.ndarray, dict[str, float]]:
    """Each bank row's mode (k-means on the rows), and what the choice saw: ``wanted`` is ``auto`` or a count.

    ``auto`` keeps the k in 2..``most`` of best silhouette when it reaches SILHOUETTE, else one mode:
    data with one mode keeps the plain distance.
    """
    from sklearn.cluster import KMeans

    def cluster(k: int) -> np.ndarray:
        if k == 1:
            return np.zeros(len(bank), dtype=np.int64)
        return KMeans(k, n_init=3, random_state=seed).fit_predict(bank).astype(np.int64)

    if wanted != "auto":
        k = min(int(wanted), len(bank))
        return cluster(k), {"memory_modes": float(len(np.unique(cluster(k))))}
    rng = np.random.default_rng(seed)
    rows = rng.choice(len(bank), min(len(bank), SILHOUETTE_ROWS), replace=False)
    best, best_score = 1, -1.0
    for k in range(2, min(most, len(bank) - 1) + 1):
        labels = cluster(k)
        if len(np.unique(labels[rows])) < 2:
            continue
        score = float(silhouette_score(bank[rows], labels[rows]))
        if score > best_score:
            best, best_score = k, score
    chosen = best if best_score >= SILHOUETTE else 1
    return cluster(chosen), {"memory_modes": float(chosen), "memory_silhouette": best_score}


def training_distances(
    model: Any, bank: np.ndarray, labels: np.ndarray, x: np.ndarray, seed: int | None
) -> tuple[np.ndarray, np.ndarray]:
    """(distance, mode) of sampled training patches: each one's distance to its nearest bank row, and that row's mode.

    A patch that is itself a bank row is measured to the next row, so the distances are like those
    of unseen normal patches.
    """
    queries = sample_patches(model, x, np.random.default_rng(seed))
    distances, rows = NearestNeighbors(n_neighbors=min(2, len(bank))).fit(bank).kneighbors(queries)
    second = (distances[:, 0] == 0) & (distances.shape[1] > 1)
    column = second.astype(np.int64)
    return distances[np.arange(len(queries)), column], labels[rows[np.arange(len(queries)), column]]


def mode_scales(model: Any, bank: np.ndarray, labels: np.ndarray, x: np.ndarray, seed: int | None) -> np.ndarray:
    """Per bank row, the median ``training_distances`` of patches nearest to its mode.

    A mode no patch falls nearest to takes the median of all.
    """
    found, mode = training_distances(model, bank, labels, x, seed)
    overall = float(np.median(found))
    typical = np.array(
        [float(np.median(found[mode == m])) if np.any(mode == m) else overall for m in range(labels.max() + 1)]
    )
    return np.maximum(typical, 1e-8)[labels].astype(np.float32)


def save_bank(
    directory: Path,
    bank: np.ndarray,
    scale: np.ndarray | None = None,
    whitening: tuple[np.ndarray, np.ndarray] | None = None,
) -> None:
    """The bank, its per-row scale and the (kernel, bias) of its whitening map, when there are."""
    arrays = {"bank": bank.astype(np.float32)}
    if scale is not None:
        arrays["scale"] = scale.astype(np.float32)
    if whitening is not None:
        arrays["whiten_kernel"], arrays["whiten_bias"] = (a.astype(np.float32) for a in whitening)
    save_arrays(directory, FILE, arrays)


def load_bank(
    directory: Path, features: int, with_scale: bool = False, with_whitening: bool = False
) -> tuple[np.ndarray, np.ndarray | None, tuple[np.ndarray, np.ndarray] | None]:
    """The stored bank, its per-row scale and its whitening map (each asked for, else None), or one
    ArtifactError line when missing, damaged or of another width."""
    from anomaly.errors import ArtifactError

    layout = {
        "bank": ("f", 2),
        **({"scale": ("f", 1)} if with_scale else {}),
        **({"whiten_kernel": ("f", 2), "whiten_bias": ("f", 1)} if with_whitening else {}),
    }
    arrays = load_arrays(directory, FILE, layout)
    bank = arrays["bank"]
    if bank.shape[1] != features or len(bank) == 0:
        raise ArtifactError(
            f"{directory / FILE}: holds {len(bank)} patches of {bank.shape[1]} features; "
            f"this model's feature map has {features}"
        )
    scale = arrays.get("scale")
    if scale is not None and (scale.shape != (len(bank),) or np.any(scale <= 0)):
        raise ArtifactError(f"{directory / FILE}: needs one positive scale per bank row ({len(bank)})")
    whitening = None
    if with_whitening:
        whitening = arrays["whiten_kernel"], arrays["whiten_bias"]
        if whitening[0].shape != (features, features) or whitening[1].shape != (features,):
            raise ArtifactError(
                f"{directory / FILE}: the whitening map must be {features}x{features} with {features} offsets"
            )
    return bank, scale, whitening
