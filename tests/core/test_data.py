"""Data sources: image folders, series files and arrays, the bundled digits; real shared data where layout matters."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from anomaly.data.bundled import digits
from anomaly.data.images import ImageSet, decode_image, load_images, normal_only
from anomaly.data.load import load_dataset, modality_of
from anomaly.data.series import from_array, load_series, windows
from anomaly.errors import DataError
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


def test_load_dataset_dispatches_on_path(tmp_path: Path) -> None:
    folder = write_images(tmp_path / "imgs", 2)
    assert isinstance(load_dataset(folder), ImageSet)
    assert len(load_dataset(folder / "img00.png")) == 1
    (tmp_path / "x.parquet").touch()
    with pytest.raises(DataError, match="unsupported series file"):
        load_dataset(tmp_path / "x.parquet")


def test_series_from_an_array_are_checked_for_shape_numbers_and_labels() -> None:
    series = from_array(np.array([1.0, 2.0, 3.0]), "s", labels=[0, 1, 0])
    assert series.values.shape == (3, 1) and series.values.dtype == np.float32
    assert series.ids == ["0", "1", "2"] and series.labels.tolist() == [0, 1, 0]
    assert series.slice(1, None).values[:, 0].tolist() == [2.0, 3.0]
    with pytest.raises(DataError, match=r"s: 1 missing or non-finite value\(s\), first at row 1, channel 0"):
        from_array(np.array([[1.0], [np.nan]]), "s")
    with pytest.raises(DataError, match=r"expected a \(time, channels\) array, got shape \(0, 1\)"):
        from_array(np.array([]), "s")
    with pytest.raises(DataError, match="2 labels for 3 time steps"):
        from_array(np.zeros(3), "s", labels=[0, 1])


def test_a_subset_keeps_labels_kinds_and_masks_in_step() -> None:
    images = [np.full((2, 2, 1), i, np.uint8) for i in range(3)]
    masks = [None, np.ones((2, 2), bool), None]
    data = ImageSet(["a", "b", "c"], images, np.array([0, 1, 0]), ["good", "dent", "good"], masks)
    picked = data.subset([2, 1])
    assert picked.ids == ["c", "b"] and picked.labels.tolist() == [0, 1] and picked.kinds == ["good", "dent"]
    assert picked.masks[0] is None and picked.masks[1].all() and picked.images[0][0, 0, 0] == 2
    assert normal_only(data).ids == ["a", "c"]
    assert ImageSet(["a"], [np.zeros((2, 2, 3), np.uint8)]).channels == 3


def test_folders_and_picture_files_are_images_everything_else_a_series(tmp_path: Path) -> None:
    assert modality_of(tmp_path) == "image"
    assert modality_of(tmp_path / "part.JPG") == "image"
    assert modality_of(tmp_path / "pumps.csv") == "series"


def test_the_bundled_digits_are_one_normal_digit_against_the_rest() -> None:
    data = digits(normal_digit=3)
    assert len(data) == 1797 and data.images[0].shape == (16, 16, 1)  # 8 x 8 doubled
    assert int((data.labels == 0).sum()) == 183  # scikit-learn's count of threes
    assert data.kinds[data.labels.tolist().index(0)] == "digit-3"
