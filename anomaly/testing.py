"""The detector contract test kit: one suite every detector must pass, importable by plugin authors.

Subclass ``DetectorContract`` in a test module and provide a ``detector_name`` fixture
(override ``tiny_params`` if your detector needs special tiny settings)::

    import pytest
    from anomaly.testing import DetectorContract

    @pytest.fixture(scope="module")
    def detector_name():
        return "my-detector"

    class TestMyDetector(DetectorContract):
        pass

The suite fits on tiny synthetic normal data, scores, checks the result record, round-trips
through save/load with identical scores, checks anomaly-map shapes, and feeds bad input.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from anomaly.data.images import ImageSet
from anomaly.data.series import SeriesSet, from_array
from anomaly.detector import Detector, FitSettings
from anomaly.errors import DataError
from anomaly.inputs import ImageSpec, SeriesSpec, encode
from anomaly.plugins import registry

TINY = {"width": 4, "latent": 4, "search_steps": 3}


def synthetic_images(count: int = 12, seed: int = 0) -> ImageSet:
    """Smooth gradients with mild noise and varying sizes: what 'normal' parts look like to a test."""
    rng = np.random.default_rng(seed)
    images = []
    for i in range(count):
        h, w = 20 + i % 3 * 4, 24 + i % 2 * 6
        ramp = np.linspace(60, 180, w)[None, :, None] + rng.normal(0, 4, (h, w, 1))
        images.append(np.clip(ramp, 0, 255).astype(np.uint8))
    return ImageSet(ids=[f"normal/{i:02d}.png" for i in range(count)], images=images)


def synthetic_series(steps: int = 240, channels: int = 2, seed: int = 0) -> SeriesSet:
    rng = np.random.default_rng(seed)
    t = np.arange(steps)[:, None]
    values = np.sin(t / (4 + np.arange(channels))) + rng.normal(0, 0.05, (steps, channels))
    return from_array(values, "synthetic")


def make_spec(modality: str):
    return ImageSpec(image_size=16, tile=True, stride=8) if modality == "image" else SeriesSpec(window=8)


def make_data(modality: str):
    return synthetic_images() if modality == "image" else synthetic_series()


def make_validation(modality: str):
    return synthetic_images(count=10, seed=1) if modality == "image" else synthetic_series(steps=120, seed=1)


class DetectorContract:
    """The contract. Not collected by itself (its name does not start with ``Test``)."""

    @pytest.fixture(scope="class")
    @classmethod
    def detector_cls(cls_, detector_name: str) -> type[Detector]:
        return registry().get(detector_name)

    @pytest.fixture(scope="class")
    @classmethod
    def tiny_params(cls_, detector_cls: type[Detector]):
        names = {f.name for f in dataclasses.fields(detector_cls.Params)}
        return detector_cls.Params(**{k: v for k, v in TINY.items() if k in names})

    @pytest.fixture(scope="class", params=["image", "series"])
    @classmethod
    def modality(cls_, request, detector_cls: type[Detector]) -> str:
        if request.param not in detector_cls.modalities:
            pytest.skip(f"{detector_cls.name} does not accept {request.param} input")
        return request.param

    @pytest.fixture(scope="class")
    @classmethod
    def fitted(cls_, detector_cls, tiny_params, modality) -> Detector:
        detector = detector_cls(make_spec(modality), tiny_params, FitSettings(epochs=2, batch_size=8, seed=0))
        detector.fit(make_data(modality), validation=make_validation(modality))
        return detector

    def test_components_are_declared_consistently(self, fitted: Detector, modality: str) -> None:
        """The score's parts are the plugin's own names, declared once and used everywhere."""
        declared = fitted.components
        assert isinstance(declared, tuple) and declared, f"{fitted.name}.components must be a non-empty tuple of names"
        assert all(isinstance(n, str) and n for n in declared), f"{fitted.name}.components must be strings: {declared}"
        assert len(set(declared)) == len(declared), f"{fitted.name}.components repeats a name: {declared}"
        extra = set(fitted.default_weights) - set(declared)
        assert not extra, f"{fitted.name}.default_weights names undeclared components {sorted(extra)}"
        scores = fitted.score(make_data(modality))
        assert set(scores.components) == set(declared), (
            f"scores carry components {sorted(scores.components)}, {fitted.name} declares {sorted(declared)}"
        )
        assert fitted.normaliser is not None, f"{fitted.name} is fitted but has no normaliser"
        assert set(fitted.normaliser.weights) <= set(declared), "the normaliser weights undeclared components"

    def test_scores_are_finite(self, fitted: Detector, modality: str) -> None:
        scores = fitted.score(make_data(modality))
        assert len(scores) == len(scores.scores) > 0, "scoring returned no scores"
        assert np.all(np.isfinite(scores.scores)), f"{fitted.name} gave non-finite scores on normal data"
        for name, values in scores.components.items():
            assert np.all(np.isfinite(values)), f"component {name!r} is not finite on normal data"

    def test_pyod_calls_on_arrays(self, fitted: Detector, modality: str) -> None:
        """decision_function and predict take plain arrays, as PyOD users hold data."""
        data = make_data(modality)
        if modality == "image":
            array = np.stack([image[:20, :24] for image in data.images])
            expected = fitted.score(ImageSet(ids=[str(i) for i in range(len(array))], images=list(array))).scores
        else:
            array = data.values
            expected = fitted.score(data).scores
        np.testing.assert_allclose(fitted.decision_function(array), expected)
        np.testing.assert_array_equal(fitted.predict(array), (expected > fitted.threshold).astype(int))

    def test_result_record_maps_onto_a_row(self, fitted: Detector, modality: str) -> None:
        record = next(iter(fitted.score(make_data(modality))))
        row = record.to_json()
        assert set(row) == {"id", "score", "is_anomaly", "threshold", "components"}
        assert row["is_anomaly"] == (row["score"] > row["threshold"])
        assert isinstance(row["score"], float) and isinstance(row["is_anomaly"], bool)

    def test_threshold_is_the_99th_percentile_of_held_out_normal(self, fitted: Detector, modality: str) -> None:
        scores = fitted.score(make_validation(modality))
        assert scores.is_anomaly.sum() <= 0.01 * len(scores) + 1
        assert fitted.threshold == pytest.approx(np.percentile(scores.scores, 99))

    def test_score_does_not_depend_on_the_batch(self, fitted: Detector, modality: str) -> None:
        data = make_data(modality)
        part = data.subset([0, 1]) if modality == "image" else data.slice(0, 20)
        whole, alone = fitted.score(data), fitted.score(part)
        np.testing.assert_allclose(alone.scores, whole.scores[: len(alone)], rtol=1e-4, atol=1e-5)

    def test_save_load_gives_identical_scores(
        self, fitted: Detector, detector_cls, modality: str, tmp_path: Path
    ) -> None:
        fitted.save(tmp_path / "model")
        loaded = detector_cls.load(tmp_path / "model")
        data = make_data(modality)
        np.testing.assert_array_equal(fitted.score(data).scores, loaded.score(data).scores)
        assert loaded.threshold == fitted.threshold

    def test_anomaly_map_matches_image_size(self, fitted: Detector, modality: str) -> None:
        if modality != "image":
            pytest.skip("anomaly maps are per pixel: images only")
        data = make_data(modality)
        scores = fitted.score(data)
        if scores.maps is None:
            pytest.skip(f"{fitted.name} returns no anomaly maps (allowed: sample_components may give None)")
        assert fitted.map_scale is not None and fitted.map_scale > 0
        for image, anomaly_map in zip(data.images, scores.maps):
            assert anomaly_map.shape == image.shape[:2]
            assert np.all(anomaly_map >= 0)

    def test_reconstruction_has_the_input_shape(self, fitted: Detector, modality: str) -> None:
        if not fitted.draws_reconstructions():
            pytest.skip(f"{fitted.name} draws no reconstruction (allowed: sample_reconstructions is optional)")
        assert fitted.spec is not None
        x = encode(fitted.spec, make_data(modality)).x[:4]
        assert np.shape(fitted.sample_reconstructions(x)) == x.shape, (
            "sample_reconstructions must return the shape of its input"
        )

    def test_wrong_modality_is_a_clear_error(self, fitted: Detector, modality: str) -> None:
        other = "series" if modality == "image" else "image"
        with pytest.raises(DataError):
            fitted.score(make_data(other))

    def test_wrong_shape_is_a_clear_error(self, fitted: Detector, modality: str) -> None:
        bad: ImageSet | SeriesSet
        if modality == "image":
            bad = ImageSet(ids=["bad"], images=[np.zeros((20, 20, 4), np.uint8)])
        else:
            bad = synthetic_series(channels=3)
        with pytest.raises(DataError):
            fitted.score(bad)

    def test_non_finite_series_is_rejected(self) -> None:
        values = synthetic_series().values.copy()
        values[5, 1] = np.nan
        with pytest.raises(DataError, match="non-finite"):
            from_array(values, "nan-series")

    def test_seed_repeats_scores(self, detector_cls, tiny_params, modality: str) -> None:
        runs = []
        for _ in range(2):
            detector = detector_cls(make_spec(modality), tiny_params, FitSettings(epochs=1, batch_size=8, seed=3))
            detector.fit(make_data(modality))
            runs.append(detector.score(make_data(modality)).scores)
        np.testing.assert_array_equal(runs[0], runs[1])
