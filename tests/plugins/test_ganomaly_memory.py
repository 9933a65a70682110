"""GANomaly's memory bank (``anomaly_plugins.ganomaly.memory``): exact distances, a coreset that covers, a data-only file.

The bank functions are checked on tiny arrays; one tiny GANomaly (16-px digits, width 4) is
fitted with the bank on, saved and loaded, in seconds.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anomaly.data.bundled import digits
from anomaly.detector import Detector, FitSettings
from anomaly.errors import AnomalyError, ArtifactError
from anomaly.inputs import ImageSpec
from anomaly.plugins import load_model, registry
from anomaly_plugins.ganomaly import memory


class _Identity:
    """A stand-in feature model: the samples are their own (positions, features) maps."""

    def __init__(self, shape: tuple[int, ...]) -> None:
        self.output = type("Output", (), {"shape": (None, *shape)})

    def __call__(self, x: np.ndarray, training: bool = False) -> np.ndarray:
        return x


def test_nearest_distances_are_exact() -> None:
    bank = np.array([[0.0, 0.0], [6.0, 8.0]], np.float32)
    queries = np.array([[0.0, 0.0], [3.0, 4.0], [1.0, 1.0], [6.0, 9.0]], np.float32)
    np.testing.assert_allclose(memory.nearest_distances(queries, bank), [0.0, 5.0, np.sqrt(2.0), 1.0], rtol=1e-6)


def test_a_sample_scores_its_most_unusual_patch() -> None:
    bank = np.zeros((1, 2), np.float32)
    x = np.array([[[0.0, 0.0], [3.0, 4.0]], [[1.0, 0.0], [0.0, 0.0]]], np.float32)  # (samples, positions, features)
    np.testing.assert_allclose(memory.patch_scores(_Identity((2, 2)), bank, x), [5.0, 1.0], rtol=1e-6)


def test_the_coreset_keeps_one_patch_of_every_cluster() -> None:
    """Farthest-first: three tight clusters, a rare one among them, give one centre each whatever the start."""
    rng = np.random.default_rng(0)
    centres = np.array([[0.0] * 40, [100.0] * 40, [-100.0] * 40])
    counts = (500, 500, 3)
    points = np.concatenate([c + rng.normal(0, 0.1, (n, 40)) for c, n in zip(centres, counts)]).astype(np.float32)
    for seed in range(3):
        bank = memory.coreset(points, 3, np.random.default_rng(seed))
        nearest = np.argmin(np.linalg.norm(bank[:, None] - centres[None], axis=2), axis=1)
        assert sorted(nearest) == [0, 1, 2]


def test_a_bank_streamed_in_batches_is_the_coreset_of_a_random_subset(monkeypatch) -> None:
    monkeypatch.setattr(memory, "MAX_CANDIDATES", 50)
    x = np.random.default_rng(1).normal(size=(30, 4, 3)).astype(np.float32)
    rng = np.random.default_rng(7)
    expected = memory.coreset(x.reshape(-1, 3)[rng.choice(120, 50, replace=False)], 10, rng)
    np.testing.assert_array_equal(memory.build_bank(_Identity((4, 3)), x, 10, 7, batch_size=7), expected)


def test_a_bank_round_trips_and_a_damaged_one_is_one_error_line(tmp_path: Path) -> None:
    bank = np.random.default_rng(0).normal(size=(5, 3)).astype(np.float32)
    memory.save_bank(tmp_path, bank)
    np.testing.assert_array_equal(memory.load_bank(tmp_path, 3)[0], bank)
    with pytest.raises(ArtifactError, match="holds 5 patches of 3 features; this model's feature map has 4"):
        memory.load_bank(tmp_path, 4)
    path = tmp_path / memory.FILE
    path.write_bytes(path.read_bytes()[:40])
    with pytest.raises(ArtifactError, match="not a readable .npz") as caught:
        memory.load_bank(tmp_path, 3)
    assert "\n" not in str(caught.value)


def test_a_feature_model_reads_each_level_of_a_body() -> None:
    from anomaly.keras.networks import body

    net = body((16, 16, 1), 4, "dense", "body")
    assert [tuple(memory.feature_model(net, level).output.shape) for level in (0, 1)] == [
        (None, 8, 8, 4),
        (None, 4, 4, 8),
    ]
    with pytest.raises(ValueError, match="has 2 feature levels, not a level 2"):
        memory.feature_model(net, 2)


def _digit_images(label: int) -> np.ndarray:
    data = digits(0)
    return np.stack([image for image, is_other in zip(data.images, data.labels) if is_other == label])


@pytest.fixture(scope="module")
def fitted(tmp_path_factory) -> tuple[Detector, Path]:
    cls = registry().get("ganomaly")
    params = cls.Params(width=4, latent=4, memory="latent", memory_size=64)
    detector = cls(ImageSpec(image_size=16), params, FitSettings(epochs=1, batch_size=32, seed=0))
    detector.fit(_digit_images(0)[:100])
    return detector, detector.save(tmp_path_factory.mktemp("ganomaly") / "model")


def test_a_model_with_a_bank_scores_by_it_and_loads_to_the_same_scores(fitted) -> None:
    detector, folder = fitted
    test = np.concatenate([_digit_images(0)[100:], _digit_images(1)[:40]])
    scores = detector.score(test, maps=False)
    assert set(scores.components) == {"latent", "reconstruction", "discriminator", "memory"}
    assert np.all(scores.components["memory"] >= 0) and np.ptp(scores.components["memory"]) > 0
    norm = detector.normaliser
    np.testing.assert_allclose(scores.scores, (scores.components["memory"] - norm.mean["memory"]) / norm.std["memory"])
    loaded = load_model(folder)
    np.testing.assert_allclose(loaded.score(test, maps=False).scores, scores.scores, rtol=1e-5, atol=1e-6)


def test_a_truncated_bank_file_is_one_artifact_error_line(fitted, tmp_path: Path) -> None:
    _, folder = fitted
    damaged = tmp_path / "model"
    damaged.mkdir()
    for file in folder.iterdir():
        data = file.read_bytes()
        (damaged / file.name).write_bytes(data[: len(data) // 2] if file.name == memory.FILE else data)
    with pytest.raises(ArtifactError, match=r"memory\.npz: not a readable .npz array file") as caught:
        load_model(damaged)
    assert "\n" not in str(caught.value)


def test_whitening_makes_euclidean_distance_the_training_features_mahalanobis() -> None:
    import keras

    rng = np.random.default_rng(0)
    inputs = keras.Input((3,))
    model = memory.whitened_model(keras.Model(inputs, keras.layers.Identity()(inputs)))
    rotation = np.linalg.qr(rng.normal(size=(3, 3)))[0]
    x = ((rng.normal(size=(4000, 3)) * [4.0, 1.0, 0.5]) @ rotation + [5.0, -2.0, 0.0]).astype(np.float32)
    memory.set_whitening(model, *memory.whitening(model, x, seed=0))
    white = memory.sample_patches(model, x, np.random.default_rng(1))
    # Correlated features of unequal spread come out uncorrelated and of unit spread, centred.
    np.testing.assert_allclose(np.cov(white.T), np.eye(3), atol=0.1)
    np.testing.assert_allclose(white.mean(axis=0), [0.0, 0.0, 0.0], atol=0.1)


@pytest.mark.parametrize("precision", ["float32", "mixed"])
def test_a_whitened_bank_loads_to_the_same_scores_and_a_wrong_map_is_refused(tmp_path: Path, precision: str) -> None:
    """Mixed precision rebuilds the networks after training: the map fitted on the first build must survive it."""
    cls = registry().get("ganomaly")
    params = cls.Params(width=4, latent=4, memory="latent", memory_size=64, memory_distance="whitened")
    settings = FitSettings(epochs=1, batch_size=32, seed=0, precision=precision)
    detector = cls(ImageSpec(image_size=16), params, settings)
    detector.fit(_digit_images(0)[:100])
    folder = detector.save(tmp_path / "model")
    kernel = detector.memory_model.layers[-1].get_weights()[0]
    assert not np.allclose(kernel, np.eye(4)), "the whitening map was left at identity"
    test = np.concatenate([_digit_images(0)[100:], _digit_images(1)[:40]])
    scores = detector.score(test, maps=False).scores
    np.testing.assert_allclose(load_model(folder).score(test, maps=False).scores, scores, rtol=1e-5, atol=1e-6)
    stored = dict(np.load(folder / memory.FILE))
    np.savez(folder / memory.FILE, **{**stored, "whiten_kernel": stored["whiten_kernel"][:2]})
    with pytest.raises(ArtifactError, match="the whitening map must be 4x4 with 4 offsets"):
        load_model(folder)


def test_series_and_missing_feature_levels_are_refused_before_training() -> None:
    from anomaly.inputs import SeriesSpec

    cls = registry().get("ganomaly")
    with pytest.raises(AnomalyError, match="memory bank scores image patches"):
        cls(SeriesSpec(), cls.Params(memory="encoder"))
    with pytest.raises(AnomalyError, match="16-px samples have feature levels 0-1, not 2"):
        cls(ImageSpec(image_size=16), cls.Params(memory="encoder", memory_level=2))
