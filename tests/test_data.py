"""Sources and preprocessing, on the real shared data where the layout matters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anomaly.data.images import ImageSet, decode_image, load_images
from anomaly.data.load import load_dataset
from anomaly.data.series import load_series, windows
from anomaly.errors import DataError
from anomaly.inputs import ImageSpec, SeriesSpec, encode, fit_spec, pool, stitch_maps
from anomaly.params import parse_params
from anomaly.threshold import Calibration, Normaliser
from tests.conftest import write_images


def test_magnetic_tile_layout_pairs_masks_with_images(shared_data: Path) -> None:
    root = shared_data / "magnetic_tile"
    data = load_images(root / "MT_Fray", with_masks=True)
    assert len(data) == 32  # the README's count: masks are not counted as images
    assert all(i.endswith(".jpg") for i in data.ids)
    assert all(m is not None and m.shape == img.shape[:2] for m, img in zip(data.masks, data.images))
    assert any(m.any() for m in data.masks)


def test_labelled_folder_uses_the_normal_class(tmp_path: Path) -> None:
    write_images(tmp_path / "good", 3)
    write_images(tmp_path / "crack", 2, seed=1)
    data = load_images(tmp_path, "good")
    assert data.labels.tolist() == [1, 1, 0, 0, 0]
    assert data.kinds == ["crack"] * 2 + ["good"] * 3


def test_images_keep_one_channel_when_grayscale_and_three_for_colour() -> None:
    import io

    from PIL import Image

    buf = io.BytesIO()
    Image.fromarray((np.zeros((5, 7, 3)) + [10, 20, 30]).astype(np.uint8)).save(buf, "PNG")
    assert decode_image(buf.getvalue()).shape == (5, 7, 3)
    buf = io.BytesIO()
    Image.fromarray(np.full((5, 7), 9, np.uint8)).save(buf, "JPEG")
    assert decode_image(buf.getvalue()).shape == (5, 7, 1)
    with pytest.raises(DataError, match="not a readable image"):
        decode_image(b"GIF89a-but-not-really", "x.gif")


def test_smd_npz_splits_and_labels(shared_data: Path) -> None:
    train = load_series(shared_data / "smd" / "machine-2-2.npz", "train")
    test = load_series(shared_data / "smd" / "machine-2-2.npz", "test")
    assert train.values.shape == (23699, 38) and train.labels is None
    assert test.labels.sum() == 2833  # the README's anomalous-step count


def test_nab_labels_come_from_the_windows_file(shared_data: Path) -> None:
    series = load_series(shared_data / "nab" / "realKnownCause" / "ec2_request_latency_system_failure.csv")
    assert series.channels == 1 and len(series) == 4032
    assert series.labels is not None and 0 < series.labels.sum() < len(series)


def test_windows_end_at_each_step() -> None:
    values = np.arange(20, dtype=np.float32).reshape(10, 2)
    x, ends = windows(values, 4, 3)
    assert x.shape == (3, 4, 2)
    assert ends.tolist() == [3, 6, 9]
    np.testing.assert_array_equal(x[-1], values[6:10])
    with pytest.raises(DataError, match="longer than the series"):
        windows(values, 11)


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
    from anomaly.data.series import from_array

    train = from_array(np.c_[np.full(10, 5.0), np.arange(10.0)], "t")
    spec = fit_spec(SeriesSpec(window=3), train)
    assert spec.channels == 2 and spec.mean[0] == 5.0 and spec.std[0] == 1.0  # constant channel: no division by 0
    x = encode(spec, train).x
    assert abs(float(x[..., 1].mean())) < 0.5


def test_normalisation_uses_fixed_statistics() -> None:
    norm = Normaliser.fit({"a": np.array([1.0, 3.0]), "b": np.array([10.0, 30.0])}, {"a": 1.0, "b": 1.0})
    one = norm.combine({"a": np.array([5.0]), "b": np.array([50.0])})
    many = norm.combine({"a": np.array([5.0, 0.0, 100.0]), "b": np.array([50.0, 0.0, 100.0])})
    assert one[0] == many[0] == pytest.approx(3.0)


def test_calibration_methods() -> None:
    normal = np.linspace(0, 1, 101)
    assert Calibration().threshold(normal) == pytest.approx(0.99)
    assert Calibration(method="fpr", target_fpr=0.05).threshold(normal) == pytest.approx(0.95)
    f1 = Calibration(method="f1").threshold(normal, np.array([2.0, 3.0]))
    assert 1.0 <= f1 < 2.0
    with pytest.raises(Exception, match="needs labelled anomalies"):
        Calibration(method="f1").threshold(normal)


def test_params_parse_types_and_reject_unknown_keys() -> None:
    from anomaly_plugins.anogan.detector import AnoGANParams

    params = parse_params(AnoGANParams, ["width=8", "encoder_init=false", "lam=0.2", "score_weights=reconstruction:1"])
    assert params.width == 8 and params.encoder_init is False and params.lam == 0.2
    assert params.score_weights == {"reconstruction": 1.0}
    with pytest.raises(Exception, match="accepts"):
        parse_params(AnoGANParams, ["nope=1"])


def test_load_dataset_dispatches_on_path(tmp_path: Path) -> None:
    folder = write_images(tmp_path / "imgs", 2)
    assert isinstance(load_dataset(folder), ImageSet)
    assert len(load_dataset(folder / "img00.png")) == 1
    (tmp_path / "x.parquet").touch()
    with pytest.raises(DataError, match="unsupported series file"):
        load_dataset(tmp_path / "x.parquet")


def test_calibration_on_labelled_anomalies_sets_the_f1_threshold() -> None:
    from anomaly.detector import FitSettings
    from anomaly.plugins import registry
    from anomaly.testing import make_spec, synthetic_images

    cls = registry().get("ganomaly")
    detector = cls(
        make_spec("image"),
        cls.Params(width=4, latent=4),
        FitSettings(epochs=1, batch_size=8, calibration=Calibration(method="f1")),
    )
    rng = np.random.default_rng(1)
    noise = ImageSet(
        ids=["n0", "n1", "n2"], images=[rng.integers(0, 255, (24, 30, 1), dtype=np.uint8) for _ in range(3)]
    )
    detector.fit(synthetic_images(), anomalies=noise)
    assert detector.score(noise).is_anomaly.all()
