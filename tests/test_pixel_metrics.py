"""Pixel-level evaluation: pixel AUROC and PRO on tiny maps with answers worked out by hand,
the resolution maps and masks are compared at, and what `anomaly evaluate` and `score --maps` show."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from sklearn.metrics import roc_auc_score

from anomaly.data.images import ImageSet
from anomaly.errors import DataError
from anomaly.evaluation import pixel_results
from anomaly.inputs import ImageSpec
from anomaly.maps import PICTURE_SIZE, save_picture
from anomaly.metrics import PixelRanking, per_region_overlap, pixel_metrics


def _square(shape=(8, 8), box=(2, 5, 2, 5)) -> np.ndarray:
    mask = np.zeros(shape, bool)
    y0, y1, x0, x1 = box
    mask[y0:y1, x0:x1] = True
    return mask


def test_a_map_equal_to_its_mask_is_perfect_and_its_inverse_is_worst() -> None:
    masks = [_square(), np.zeros((8, 8), bool)]
    perfect = pixel_metrics([m.astype(float) for m in masks], masks)
    assert perfect["pixel_auroc"] == pytest.approx(1.0)
    assert perfect["pro"] == pytest.approx(1.0)
    assert perfect["regions"] == 1 and perfect["defect_pixels"] == 9 and perfect["normal_pixels"] == 119
    worst = pixel_metrics([1.0 - m for m in masks], masks)
    assert worst["pixel_auroc"] == pytest.approx(0.0)
    assert worst["pro"] == pytest.approx(0.0)


def test_a_constant_map_is_chance() -> None:
    """All pixels tie: one threshold, the curve runs straight from (0, 0) to (1, 1); area to 0.3 is 0.045."""
    masks = [_square()]
    result = pixel_metrics([np.zeros((8, 8))], masks)
    assert result["pixel_auroc"] == pytest.approx(0.5)
    assert result["pro"] == pytest.approx(0.15)


def test_pro_weighs_each_region_the_same_where_pixel_auroc_weighs_pixels() -> None:
    """A found 8-pixel region and a missed 1-pixel one: PRO 0.5 up to FPR 0.3, pixel AUROC 8/9."""
    mask = np.zeros((6, 6), bool)
    mask[0:2, 0:4] = True  # 8 pixels, scored highest
    mask[5, 5] = True  # 1 pixel, scored below every normal pixel
    anomaly_map = np.full((6, 6), 0.5)
    anomaly_map[mask] = 1.0
    anomaly_map[5, 5] = 0.0
    result = pixel_metrics([anomaly_map], [mask])
    assert result["regions"] == 2
    assert result["pixel_auroc"] == pytest.approx(8 / 9)
    assert result["pro"] == pytest.approx(0.5)


def test_pro_cuts_the_curve_at_max_fpr_exactly() -> None:
    """Region pixels A (top) and B (after two of ten normal pixels): PRO 0.5 up to FPR 0.2, then 1.

    Up to 0.3: (0.5 * 0.2 + 1 * 0.1) / 0.3; up to 0.25 the cut falls inside a step: (0.5 * 0.2 + 1 * 0.05) / 0.25.
    """
    truth = np.zeros(12, bool)
    truth[[0, 1]] = True  # one region: A and B side by side
    values = np.array([10, 7.5, 9, 8, 7, 6, 5, 4, 3, 2, 1, 0], float)
    maps, masks = [values.reshape(1, 12)], [truth.reshape(1, 12)]
    assert per_region_overlap(maps, masks) == pytest.approx((0.5 * 0.2 + 1.0 * 0.1) / 0.3)
    assert per_region_overlap(maps, masks, max_fpr=0.25) == pytest.approx((0.5 * 0.2 + 1.0 * 0.05) / 0.25)


def test_diagonal_neighbours_are_one_region() -> None:
    mask = np.zeros((4, 4), bool)
    mask[0, 0] = mask[1, 1] = True
    assert pixel_metrics([np.zeros((4, 4))], [mask])["regions"] == 1


def test_pixel_auroc_matches_scikit_learn_with_ties_across_images() -> None:
    rng = np.random.default_rng(3)
    masks = [rng.random((10, 12)) < 0.2 for _ in range(4)]
    maps = [np.round(rng.random((10, 12)) + 0.5 * m, 1) for m in masks]  # rounding makes many ties
    expected = roc_auc_score(np.concatenate([m.ravel() for m in masks]), np.concatenate([m.ravel() for m in maps]))
    assert pixel_metrics(maps, masks)["pixel_auroc"] == pytest.approx(expected)


def test_a_subset_ranks_as_if_scored_alone() -> None:
    rng = np.random.default_rng(4)
    masks = [rng.random((6, 6)) < 0.3 for _ in range(5)]
    maps = [rng.random((6, 6)) + m for m in masks]
    ranking = PixelRanking(maps, masks)
    alone = pixel_metrics([maps[i] for i in (1, 3)], [masks[i] for i in (1, 3)])
    assert ranking.metrics([1, 3]) == pytest.approx(alone)


def test_mismatched_or_maskless_input_is_refused() -> None:
    with pytest.raises(DataError, match="does not match"):
        pixel_metrics([np.zeros((4, 4))], [np.zeros((4, 5), bool)])
    with pytest.raises(DataError, match="both defect and normal"):
        pixel_metrics([np.zeros((4, 4))], [np.zeros((4, 4), bool)])


def test_maps_and_masks_meet_at_the_resolution_the_network_saw() -> None:
    """Tiles cut at short side 20 from 40 x 60 images: every image counts 20 x 30 pixels; an anomalous
    image without a mask is left out, a normal one without a mask is all normal pixels."""
    spec = ImageSpec(image_size=16, tile=True, scale=20)
    mask = _square((40, 60), (10, 20, 10, 30))
    data = ImageSet(
        ids=["a", "b", "c"],
        images=[np.zeros((40, 60, 1), np.uint8)] * 3,
        labels=np.array([1, 1, 0]),
        kinds=["dent", "dent", "good"],
        masks=[mask, None, None],
    )
    maps = [mask.astype(np.float32), np.ones((40, 60), np.float32), np.zeros((40, 60), np.float32)]
    results = pixel_results(spec, data, maps)
    assert set(results) == {"all", "dent"}
    assert results["all"]["defect_pixels"] + results["all"]["normal_pixels"] == 2 * 20 * 30
    assert results["all"]["defect_pixels"] == 5 * 10
    assert results["all"]["pixel_auroc"] == pytest.approx(1.0)


def _jpeg_folder_with_masks(root: Path) -> Path:
    """A labelled folder in the magnetic_tile layout: JPEG parts, same-stem PNG masks beside the defects."""
    rng = np.random.default_rng(0)
    for folder, count in (("good", 10), ("dent", 4)):
        (root / folder).mkdir(parents=True)
        for i in range(count):
            image = np.clip(np.linspace(60, 180, 32)[None, :] + rng.normal(0, 4, (24, 32)), 0, 255)
            if folder == "dent":
                mask = _square((24, 32), (6 + i, 14 + i, 8, 18))
                image[mask] = 250
                Image.fromarray(mask.astype(np.uint8) * 255).save(root / folder / f"p{i}.png")
            Image.fromarray(image.astype(np.uint8)).save(root / folder / f"p{i}.jpg", quality=95)
    return root


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> tuple[Path, Path]:
    from click.testing import CliRunner

    from anomaly.cli import cli

    root = tmp_path_factory.mktemp("pixels")
    data = _jpeg_folder_with_masks(root / "parts")
    model = root / "model"
    result = CliRunner().invoke(
        cli,
        [
            "train",
            "ganomaly",
            str(data),
            "--out",
            str(model),
            "--epochs",
            "1",
            "--set",
            "width=4",
            "--set",
            "latent=4",
            "--no-progress",
            "--image-size",
            "16",
            "--scale",
            "24",
        ],
        catch_exceptions=False,
    )
    assert result.exit_code == 0, result.output
    return model, data


def test_evaluate_reports_pixel_auroc_and_pro_where_masks_exist(cli, tiny_model) -> None:
    model, data = tiny_model
    shown = cli("evaluate", model, data)
    assert shown.exit_code == 0, shown.output
    assert "pixel AUROC" in shown.output and "PRO" in shown.output
    report = json.loads(cli("evaluate", model, data, "--json").output)
    for subset in ("all", "dent"):
        assert 0.0 <= report["results"][subset]["pixel_auroc"] <= 1.0
        assert 0.0 <= report["results"][subset]["pro"] <= 1.0
        assert report["results"][subset]["regions"] == 4
    assert "resolution" in report["pixel_resolution"]


def test_score_maps_writes_a_picture_per_image(cli, tiny_model, tmp_path: Path) -> None:
    model, data = tiny_model
    result = cli("score", model, data / "dent", "--maps", tmp_path / "maps")
    assert result.exit_code == 0, result.output
    pictures = sorted((tmp_path / "maps").glob("*.png"))
    assert [p.name for p in pictures] == [f"p{i}.png" for i in range(4)]
    for picture in pictures:
        with Image.open(picture) as img:
            assert img.size == PICTURE_SIZE


def test_a_picture_outlines_the_mask_and_shows_the_verdict(tmp_path: Path) -> None:
    image = np.full((24, 32, 1), 120, np.uint8)
    anomaly_map = np.zeros((24, 32), np.float32)
    anomaly_map[5:10, 5:10] = 1.0
    mask = anomaly_map > 0
    common = dict(image=image, anomaly_map=anomaly_map, scale=1.0, threshold=0.5)
    plain = np.asarray(Image.open(save_picture(tmp_path / "plain.png", score=0.9, **common)))
    outlined = np.asarray(Image.open(save_picture(tmp_path / "mask.png", score=0.9, mask=mask, **common)))
    normal = np.asarray(Image.open(save_picture(tmp_path / "normal.png", score=0.1, **common)))
    assert plain.shape[:2] == outlined.shape[:2] == (PICTURE_SIZE[1], PICTURE_SIZE[0])
    assert not np.array_equal(plain, outlined)
    assert not np.array_equal(plain, normal)  # the title says the score and the verdict
