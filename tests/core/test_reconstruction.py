"""harness.reconstruction: the picture a detector draws of an image, at the image's size, or None."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly import harness
from anomaly.detector import Detector, FitSettings
from anomaly.errors import DataError
from anomaly.inputs import ImageSpec, SeriesSpec
from anomaly.plugins import registry
from anomaly.testing import TINY, synthetic_images, synthetic_series

SETTINGS = FitSettings(epochs=1, batch_size=8, seed=0)


def fitted(name: str, spec: ImageSpec | SeriesSpec) -> Detector:
    cls = registry().get(name)
    params = cls.Params(**{k: v for k, v in TINY.items() if k in cls.Params.__dataclass_fields__})
    detector = cls(spec, params, SETTINGS)
    return detector.fit(synthetic_series() if isinstance(spec, SeriesSpec) else synthetic_images())


@pytest.mark.parametrize(
    "spec",
    [
        ImageSpec(image_size=16),
        ImageSpec(image_size=16, tile=True, stride=8),
        ImageSpec(image_size=16, standardize=True),
    ],
    ids=["resized", "tiled", "standardised"],
)
def test_ganomaly_draws_a_picture_of_the_input_size(spec: ImageSpec) -> None:
    detector = fitted("ganomaly", spec)
    for image in synthetic_images(count=3, seed=2).images:
        drawn = harness.reconstruction(detector, image)
        assert drawn is not None and drawn.dtype == np.uint8
        assert drawn.shape == (*image.shape[:2], 1)
        assert drawn.std() > 0  # a picture, not one flat value


@pytest.mark.parametrize("encoder_init", [True, False], ids=["encoder-start", "seeded-start"])
def test_anogan_draws_the_picture_its_search_scores(encoder_init: bool) -> None:
    cls = registry().get("anogan")
    assert cls.draws_reconstructions()
    params = cls.Params(**TINY, encoder_init=encoder_init)
    detector = cls(ImageSpec(image_size=16, tile=True, stride=8), params, SETTINGS).fit(synthetic_images())
    image = synthetic_images(count=1, seed=2).images[0]
    drawn = harness.reconstruction(detector, image)
    assert drawn is not None and drawn.dtype == np.uint8
    assert drawn.shape == (*image.shape[:2], 1)
    np.testing.assert_array_equal(drawn, harness.reconstruction(detector, image))  # deterministic search
    # The drawn G(z*) is the one scoring measured: its residual map is |x - G(z*)|.
    x = np.random.default_rng(3).uniform(-1, 1, (4, 16, 16, 1)).astype(np.float32)
    _, maps = detector.sample_components(x)
    np.testing.assert_allclose(maps, np.abs(x - detector.sample_reconstructions(x)).mean(axis=-1), atol=1e-5)


def test_an_rgb_image_is_drawn_in_the_models_channels() -> None:
    detector = fitted("ganomaly", ImageSpec(image_size=16))
    rgb = np.repeat(synthetic_images(count=1).images[0], 3, axis=2)
    drawn = harness.reconstruction(detector, rgb)
    assert drawn is not None and drawn.shape == (*rgb.shape[:2], 1)


def test_a_detector_without_reconstruct_draws_none() -> None:
    detector = fitted("pca", ImageSpec(image_size=16))
    assert not detector.draws_reconstructions()
    assert harness.reconstruction(detector, synthetic_images(count=1).images[0]) is None


def test_a_series_model_is_refused_in_one_line() -> None:
    detector = fitted("ganomaly", SeriesSpec(window=8))
    with pytest.raises(DataError, match="images"):
        harness.reconstruction(detector, synthetic_images(count=1).images[0])
