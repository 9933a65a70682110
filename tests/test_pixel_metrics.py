"""Pixel-level evaluation end to end: the resolution maps and masks are compared at, and what
`anomaly evaluate` and `score --maps` show (the metrics themselves: tests/core/test_metrics.py)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from anomaly.data.images import ImageSet
from anomaly.evaluation import pixel_results
from anomaly.inputs import ImageSpec
from anomaly.maps import PICTURE_SIZE
from tests.core.test_metrics import square_mask


def test_maps_and_masks_meet_at_the_resolution_the_network_saw() -> None:
    """Tiles cut at short side 20 from 40 x 60 images: every image counts 20 x 30 pixels; an anomalous
    image without a mask is left out, a normal one without a mask is all normal pixels."""
    spec = ImageSpec(image_size=16, tile=True, scale=20)
    mask = square_mask((40, 60), (10, 20, 10, 30))
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
                mask = square_mask((24, 32), (6 + i, 14 + i, 8, 18))
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
