"""The input specs and the turning of items into samples: checks, encoding, tiling, pooling and stitching."""

from __future__ import annotations

import numpy as np
import pytest

from anomaly.data.images import ImageSet
from anomaly.data.series import from_array
from anomaly.errors import DataError
from anomaly.inputs import (
    ImageSpec,
    SeriesSpec,
    encode,
    fit_spec,
    model_shape,
    pool,
    resize_map,
    spec_from_dict,
    spec_to_dict,
    stitch_maps,
)


def test_tiles_cover_the_image_and_maps_stitch_back_to_its_size() -> None:
    image = (np.arange(40 * 50).reshape(40, 50, 1) % 255).astype(np.uint8)
    data = ImageSet(ids=["a"], images=[image])
    spec = ImageSpec(image_size=16, tile=True, stride=16)
    samples = encode(spec, data)
    # starts 0,16,24 vertically and 0,16,32,34 horizontally: edges are covered by a last aligned tile
    assert samples.x.shape == (12, 16, 16, 1)
    maps = stitch_maps(spec, np.ones((12, 16, 16), np.float32), samples)
    assert maps[0].shape == (40, 50)
    np.testing.assert_allclose(maps[0], 1.0)


def test_tile_scale_resizes_the_short_side() -> None:
    data = ImageSet(ids=["a"], images=[np.zeros((100, 200, 1), np.uint8)])
    samples = encode(ImageSpec(image_size=16, tile=True, scale=32, stride=16), data)
    assert samples.layout[0][1] == (32, 64)
    assert len(samples.x) == 2 * 4


def test_pooling_max_and_top_k() -> None:
    values = np.array([1.0, 5.0, 3.0, 2.0, 10.0])
    owner = np.array([0, 0, 0, 1, 1])
    np.testing.assert_allclose(pool(values, owner, 2, "max"), [5.0, 10.0])
    np.testing.assert_allclose(pool(values, owner, 2, "topk", 2), [4.0, 6.0])


def test_contrast_pooling_measures_tiles_against_their_own_image() -> None:
    """A uniformly rough part (every tile high) scores below a smooth part with one bad tile."""
    rough = [5.0, 5.2, 4.9, 5.1, 5.0]
    smooth_with_defect = [1.0, 1.1, 0.9, 1.0, 4.0]
    values = np.array(rough + smooth_with_defect)
    owner = np.repeat([0, 1], 5)
    topk = pool(values, owner, 2, "topk", 1)
    contrast = pool(values, owner, 2, "contrast", 1)
    assert topk[0] > topk[1]
    np.testing.assert_allclose(contrast, [5.2 - 5.0, 4.0 - 1.0])


def test_series_statistics_are_fitted_on_training_data() -> None:
    train = from_array(np.c_[np.full(10, 5.0), np.arange(10.0)], "t")
    spec = fit_spec(SeriesSpec(window=3), train)
    assert spec.channels == 2 and spec.mean[0] == 5.0 and spec.std[0] == 1.0  # constant channel: no division by 0
    x = encode(spec, train).x
    assert abs(float(x[..., 1].mean())) < 0.5


def test_a_spec_survives_the_manifest_round_trip() -> None:
    image = ImageSpec(image_size=32, channels=3, tile=True, scale=64, stride=16, pool="topk", top_k=3)
    series = SeriesSpec(window=8, stride=2, channels=2, mean=[0.5, 1.0], std=[2.0, 3.0])
    assert spec_to_dict(image)["modality"] == "image"
    assert spec_from_dict(spec_to_dict(image)) == image
    assert spec_from_dict(spec_to_dict(series)) == series


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (["image"], "must be a mapping, not list"),
        ({"modality": "audio"}, "modality must be one of image, series, not 'audio'"),
        ({"modality": "image", "colour": True}, "unknown image input field[(]s[)] colour"),
    ],
)
def test_a_foreign_spec_is_one_data_error(data: object, message: str) -> None:
    with pytest.raises(DataError, match=message):
        spec_from_dict(data)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"image_size": 48}, "power of two"),
        ({"image_size": 512}, "image size must be from 16 to 256 [(]got 512[)]"),
        ({"image_size": 16.0}, "image size must be an integer"),
        ({"channels": 2}, "1 [(]grayscale[)] or 3 [(]RGB[)]"),
        ({"pool": "mean"}, "pool must be one of max, topk, contrast"),
        ({"image_size": 64, "stride": 8}, "stride must be from 16 to 1024 for tiles of 64 px [(]got 8[)]"),
    ],
)
def test_image_specs_refuse_what_no_network_could_take(fields: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        ImageSpec(**fields)


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"window": 1}, "window must be from 2 to 4096 steps"),
        ({"window": 4096, "channels": 3}, "window x channels must be at most 8192 [(]got 4096 x 3[)]"),
        ({"channels": 2, "mean": [0.0]}, "mean must be 2 finite numbers"),
        ({"channels": 1, "mean": [float("nan")]}, "mean must be 1 finite numbers"),
        ({"channels": 1, "std": [0.0]}, "std must be positive"),
    ],
)
def test_series_specs_refuse_bad_sizes_and_statistics(fields: dict, message: str) -> None:
    with pytest.raises(DataError, match=message):
        SeriesSpec(**fields)


def test_tiles_step_half_a_tile_unless_told() -> None:
    assert ImageSpec(image_size=32).tile_stride == 16
    assert ImageSpec(image_size=32, stride=24).tile_stride == 24
    assert ImageSpec(image_size=32, channels=3).sample_shape == (32, 32, 3)
    assert SeriesSpec(window=8, channels=2).sample_shape == (8, 2)


def test_a_whole_image_is_one_square_scaled_to_minus_one_to_one() -> None:
    dark_and_light = np.zeros((20, 30, 1), np.uint8)
    dark_and_light[:, 15:] = 255
    samples = encode(ImageSpec(image_size=16), ImageSet(ids=["a"], images=[dark_and_light]))
    assert samples.x.shape == (1, 16, 16, 1) and samples.owner.tolist() == [0] and samples.count == 1
    assert samples.x[0, :, 0, 0].tolist() == [-1.0] * 16
    assert samples.x[0, :, -1, 0].tolist() == [1.0] * 16


def test_standardised_images_have_zero_mean_whatever_the_lighting() -> None:
    ramp = np.tile(np.arange(16, dtype=np.uint8)[None, :, None] * 4, (16, 1, 1))
    dim, bright = encode(ImageSpec(image_size=16, standardize=True), ImageSet(["a", "b"], [ramp, ramp + 100])).x
    assert abs(float(dim.mean())) < 1e-5
    np.testing.assert_allclose(dim, bright, atol=1e-5)


def test_images_are_matched_to_the_channels_the_model_was_trained_on() -> None:
    colour = np.zeros((16, 16, 3), np.uint8) + np.array([255, 0, 0], np.uint8)  # pure red: luma 76
    grey = np.full((16, 16, 1), 255, np.uint8)
    as_grey = encode(ImageSpec(image_size=16, channels=1), ImageSet(["c"], [colour])).x
    as_colour = encode(ImageSpec(image_size=16, channels=3), ImageSet(["g"], [grey])).x
    assert as_grey.shape == (1, 16, 16, 1) and as_grey[0, 0, 0, 0] == pytest.approx(76 / 127.5 - 1)
    assert as_colour.shape == (1, 16, 16, 3) and (as_colour == 1.0).all()


def test_encoding_refuses_the_other_modality_and_a_wrong_channel_count() -> None:
    series = from_array(np.zeros((10, 2)), "pumps")
    with pytest.raises(DataError, match="scores images, but the input is a series"):
        encode(ImageSpec(image_size=16), series)
    with pytest.raises(DataError, match="scores series, but the input is images"):
        encode(SeriesSpec(window=4, channels=2), ImageSet(["a"], [np.zeros((16, 16, 1), np.uint8)]))
    with pytest.raises(DataError, match="pumps: 2 channel[(]s[)], but the model was trained on 3"):
        encode(SeriesSpec(window=4, channels=3, mean=[0.0] * 3, std=[1.0] * 3), series)
    with pytest.raises(DataError, match="no images to score"):
        encode(ImageSpec(image_size=16), ImageSet([], []))


def test_series_windows_are_standardised_with_the_training_statistics() -> None:
    spec = SeriesSpec(window=2, stride=2, channels=1, mean=[1.0], std=[2.0])
    samples = encode(spec, from_array(np.array([1.0, 3.0, 5.0, 7.0, 9.0]), "s"))
    assert samples.x[..., 0].tolist() == [[0.0, 1.0], [2.0, 3.0]]
    assert samples.layout == [1, 3]  # each window's last step


def test_the_network_sees_tiles_cut_at_the_scaled_short_side() -> None:
    assert model_shape(ImageSpec(image_size=16), (100, 200)) == (16, 16)
    assert model_shape(ImageSpec(image_size=16, tile=True, scale=32), (100, 200)) == (32, 64)
    assert model_shape(ImageSpec(image_size=16, tile=True), (10, 40)) == (16, 64)  # never below one tile


def test_overlapping_tiles_average_their_maps() -> None:
    spec = ImageSpec(image_size=16, tile=True, stride=8)
    samples = encode(spec, ImageSet(["a"], [np.zeros((16, 24, 1), np.uint8)]))
    assert [positions for _, _, positions in samples.layout] == [[(0, 0), (0, 8)]]
    tile_maps = np.stack([np.full((16, 16), 1.0), np.full((16, 16), 3.0)]).astype(np.float32)
    (stitched,) = stitch_maps(spec, tile_maps, samples)
    assert stitched[0].tolist() == [1.0] * 8 + [2.0] * 8 + [3.0] * 8


def test_a_map_is_resized_as_floats() -> None:
    canvas = np.full((4, 4), 0.25, np.float32)
    assert resize_map(canvas, (4, 4)).dtype == np.float32
    np.testing.assert_allclose(resize_map(canvas, (8, 6)), np.full((8, 6), 0.25))


def test_an_item_of_one_sample_pools_to_that_sample() -> None:
    values, owner = np.array([2.0, 7.0, 1.0]), np.array([0, 1, 1])
    np.testing.assert_allclose(pool(values, owner, 2, "topk", 5), [2.0, 4.0])
    np.testing.assert_allclose(pool(values, owner, 2, "contrast", 1), [2.0, 7.0 - 4.0])
