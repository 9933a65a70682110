"""The input plan's exact choices for given image sizes and counts, and options given winning."""

from __future__ import annotations

import pytest

from anomaly.errors import DataError
from anomaly.plan import plan_images


def test_small_digits_get_whole_images_near_native_size_and_many_epochs():
    plan = plan_images([(28, 28)] * 180, batch_size=64, holdout=0.2)
    assert (plan.tile, plan.image_size, plan.scale) == (False, 32, None)
    # 144 training images are 3 steps an epoch: 200 epochs reach the 600-step target.
    assert plan.epochs == 200
    assert plan.line() == "plan: whole images at 32 px, 200 epochs (auto: 28-px images, 180 of them)"


def test_eight_px_images_are_not_shrunk_below_the_smallest_network():
    plan = plan_images([(8, 8)] * 1000, batch_size=64, holdout=0.2)
    assert (plan.tile, plan.image_size, plan.epochs) == (False, 16, 47)  # 800 training images: 13 steps an epoch


def test_cells_and_large_tiles_get_tiles_of_a_scaled_image():
    cells = plan_images([(300, 300)] * 500, batch_size=64, holdout=0.2)
    assert (cells.tile, cells.image_size, cells.scale, cells.epochs) == (True, 32, 128, 15)
    large = plan_images([(1000, 1200)] * 40, batch_size=64, holdout=0.2)
    assert (large.tile, large.image_size, large.scale) == (True, 32, 128)
    assert large.line().startswith("plan: tiles of 32 px from the image at short side 128")


def test_options_given_win_and_are_recorded_as_given():
    plan = plan_images([(28, 28)] * 180, batch_size=64, holdout=0.2, tile=True, image_size=16, epochs=7)
    assert (plan.tile, plan.image_size, plan.scale, plan.epochs) == (True, 16, 128, 7)
    assert plan.auto == ["scale"]
    assert "set: tile, image-size, epochs" in plan.line()


def test_no_images_is_one_clear_error():
    with pytest.raises(DataError, match="no images"):
        plan_images([], batch_size=64, holdout=0.2)
