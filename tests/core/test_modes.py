"""Modes of normal images (``anomaly.modes``): two normal variants that score apart score alike after them.

The clustering and figures are checked on small images and arrays; the engine's use of them on a
detector of this file's own whose score is an image's brightness, so a bright normal variant outscores
a dark one by design.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest

from anomaly.data.bundled import digits
from anomaly.data.images import ImageSet
from anomaly.detector import Detector, FitSettings
from anomaly.errors import AnomalyError, ArtifactError
from anomaly.inputs import ImageSpec
from anomaly.modes import FEATURES, MIN_ITEMS, ImageModes, check_wanted, describe


def _images(level: int, count: int, seed: int, ramp: bool = False) -> ImageSet:
    rng = np.random.default_rng(seed)
    base = np.linspace(level - 30, level + 30, 16)[None, :, None] if ramp else level
    images = [np.clip(base + rng.normal(0, 6, (16, 16, 1)), 0, 255).astype(np.uint8) for _ in range(count)]
    return ImageSet(ids=[f"{level}-{seed}-{i}" for i in range(count)], images=images)


def _both(count: int, seed: int) -> ImageSet:
    dark, bright = _images(40, count, seed), _images(200, count, seed + 1, ramp=True)
    return ImageSet(ids=dark.ids + bright.ids, images=dark.images + bright.images)


def test_two_variants_are_two_modes_and_one_is_none() -> None:
    both = _both(40, 0)
    assert describe(both.images).shape == (80, FEATURES)
    modes = ImageModes.cluster(both.images, "auto", seed=0)
    assert modes is not None and modes.count == 2
    found = modes.assign(both.images)
    assert len(set(found[:40])) == len(set(found[40:])) == 1 and found[0] != found[40]
    # Real images of one kind (the bundled digits' normal class) show no structure to split.
    normal = digits(0)
    zeros = [image for image, label in zip(normal.images, normal.labels) if label == 0]
    assert ImageModes.cluster(zeros, "auto", seed=0) is None
    assert ImageModes.cluster(both.images, "1", seed=0) is None
    three = ImageModes.cluster(both.images, "3", seed=0)
    assert three is not None and three.count == 3
    with pytest.raises(AnomalyError, match="modes must be auto or a whole number from 1 to 8"):
        check_wanted("9")


def test_a_split_of_one_cloud_is_no_separation_and_of_two_groups_is() -> None:
    from sklearn.cluster import KMeans

    from anomaly.modes import SEPARATION, separation

    rng = np.random.default_rng(0)
    one = rng.normal(size=(2000, 3))
    two = np.r_[rng.normal(size=(1000, 3)), rng.normal(size=(1000, 3)) + [8.0, 0.0, 0.0]]
    found = {}
    for name, z in (("one", one), ("two", two)):
        split = KMeans(2, n_init=4, random_state=0).fit(z)
        found[name] = separation(z, split.labels_, split.cluster_centers_)
    assert found["one"] == pytest.approx(2 / np.pi, abs=0.03) and found["two"] > 0.9 > SEPARATION


def test_each_mode_is_standardised_by_its_own_figures_and_a_small_mode_by_all() -> None:
    modes = ImageModes.cluster(_both(20, 0).images, "3", seed=0)
    assert modes is not None
    rng = np.random.default_rng(0)
    scores = np.r_[rng.normal(5.0, 2.0, 400), rng.normal(0.0, 0.5, 400), rng.normal(9.0, 1.0, MIN_ITEMS - 1)]
    labels = np.r_[np.zeros(400, int), np.ones(400, int), np.full(MIN_ITEMS - 1, 2)]
    modes.calibrate(scores, labels)
    out = modes.apply(scores, labels)
    for m in (0, 1):
        assert abs(out[labels == m].mean()) < 0.01 and abs(out[labels == m].std() - 1) < 0.01
    # Too few images for figures of its own: mode 2 takes everyone's.
    assert modes.mean[2] == pytest.approx(scores.mean()) and modes.std[2] == pytest.approx(scores.std())


def test_cross_fitted_scores_are_calibrated_by_the_other_half() -> None:
    """One extreme normal image pulls its own mode's figures when it helps fit them; the other half does not."""
    modes = ImageModes.cluster(_both(20, 0).images, "2", seed=0)
    assert modes is not None
    scores, labels = np.r_[np.zeros(40), 100.0], np.zeros(41, int)
    modes.calibrate(scores, labels)
    in_sample = modes.apply(scores, labels)
    assert modes.cross_fitted(scores, labels, seed=0)[-1] > 1e6 > in_sample[-1]


@dataclass
class BrightParams:
    scale: float = 1.0


class Bright(Detector):
    """Scores an image by its mean brightness."""

    name = "bright"
    components = ("brightness",)
    modalities = ("image",)
    Params = BrightParams

    def build(self) -> None:
        pass

    def fit_once(self, x: np.ndarray) -> dict[str, float]:
        return {}

    def sample_components(self, x: np.ndarray):
        return {"brightness": self.params.scale * x.mean(axis=(1, 2, 3))}, None

    def save_state(self, directory: Path) -> None:
        pass

    def load_state(self, directory: Path) -> None:
        pass


def test_two_normal_variants_score_alike_and_the_modes_survive_save_and_load(tmp_path: Path) -> None:
    plain = Bright(ImageSpec(image_size=16), settings=FitSettings(seed=0, modes="1")).fit(_both(200, 0))
    assert plain.image_modes is None and plain.manifest().modes is None
    dark, bright = _images(40, 50, 7), _images(200, 50, 8, ramp=True)
    raw_low, raw_high = plain.score(dark).scores, plain.score(bright).scores
    assert raw_high.mean() - raw_low.mean() > 1.5 * np.r_[raw_low, raw_high].std()  # apart without modes

    detector = Bright(ImageSpec(image_size=16), settings=FitSettings(seed=0, modes="auto")).fit(_both(200, 0))
    assert detector.image_modes is not None and detector.image_modes.count == 2
    low, high = detector.score(dark).scores, detector.score(bright).scores
    assert abs(low.mean() - high.mean()) < 0.5 * np.r_[low, high].std()
    assert 0.0 < np.mean(np.r_[low, high] > detector.threshold) < 0.1

    folder = detector.save(tmp_path / "model")
    loaded = Bright.load(folder)
    np.testing.assert_allclose(loaded.score(dark).scores, low)
    manifest = json.loads((folder / "manifest.json").read_text())
    (folder / "manifest.json").write_text(json.dumps({**manifest, "modes": {**manifest["modes"], "std": [1.0, 0.0]}}))
    with pytest.raises(ArtifactError, match="one positive std per mode"):
        Bright.load(folder)
    short = [c[:3] for c in manifest["modes"]["centroids"]]
    (folder / "manifest.json").write_text(json.dumps({**manifest, "modes": {**manifest["modes"], "centroids": short}}))
    with pytest.raises(ArtifactError, match=f"needs {FEATURES} features per centroid"):
        Bright.load(folder)


def test_a_series_model_takes_no_count_of_modes() -> None:
    from anomaly.plugins import registry

    pca = registry().get("pca")
    series = np.sin(np.arange(400) / 5.0)[:, None].repeat(2, axis=1)
    pca(settings=FitSettings(modes="auto")).fit(series)
    with pytest.raises(AnomalyError, match="a series model takes modes=1 or auto"):
        pca(settings=FitSettings(modes="2")).fit(series)
