"""The image-defaults sweep: painted defects change what they claim to, and the smoke-sized sweep fills every cell."""

from __future__ import annotations

import json

import numpy as np
import pytest

from benchmarks import quality
from experiments import image_defaults


@pytest.mark.parametrize("paint", [image_defaults.scratch, image_defaults.hole, image_defaults.chip])
def test_painted_defects_only_darken_a_small_part_of_the_image(paint) -> None:
    rng = np.random.default_rng(0)
    image = rng.integers(100, 200, size=(240, 320, 1), dtype=np.uint8)
    out = paint(image, np.random.default_rng(1))
    assert out.shape == image.shape and out.dtype == np.uint8
    assert np.all(out <= image)
    changed = np.mean(out < image - 10)
    assert 0.0005 < changed < 0.05


def test_painted_patch_shifts_a_large_region_one_way() -> None:
    image = np.full((240, 320, 1), 120, np.uint8)
    out = image_defaults.patch(image, np.random.default_rng(2)).astype(int) - 120
    assert (np.all(out >= 0) or np.all(out <= 0)) and 0.05 < np.mean(np.abs(out) > 10) < 0.5


def test_smoke_sweep_fills_every_cell(tmp_path, shared_data) -> None:
    docs = tmp_path / "benchmarks.md"
    rows = image_defaults.run(
        "python -m experiments.image_defaults", lambda _: None, docs, config=quality.CONFIGS["smoke"], seeds=(0,)
    )
    assert [r["detector"] for r in rows] == ["ganomaly", "autoencoder"]
    for row in rows:
        weightings = image_defaults.WEIGHTINGS[row["detector"]]
        assert set(row["auroc"]) == {
            f"{w}/{p}/{d}" for w in weightings for p in ("max", "topk", "contrast") for d in image_defaults.DEFECTS
        }
        assert all(0.0 <= v <= 1.0 for v in row["auroc"].values())
    text = docs.read_text()
    assert "## Image defaults" in text and "| ganomaly | latent + reconstruction | contrast |" in text
    raw = json.loads((tmp_path / "benchmarks" / "image_defaults.json").read_text())
    assert len(raw["rows"]) == 2
