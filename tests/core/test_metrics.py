"""Detection quality: image-level metrics and pixel AUROC and PRO, on tiny inputs with answers worked out by hand."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from anomaly.errors import DataError
from anomaly.metrics import PixelRanking, detection_metrics, per_region_overlap, pixel_metrics


def square_mask(shape: tuple[int, int] = (8, 8), box: tuple[int, int, int, int] = (2, 5, 2, 5)) -> np.ndarray:
    """A boolean mask, True inside ``box`` (y0, y1, x0, x1)."""
    mask = np.zeros(shape, bool)
    y0, y1, x0, x1 = box
    mask[y0:y1, x0:x1] = True
    return mask


def test_a_map_equal_to_its_mask_is_perfect_and_its_inverse_is_worst() -> None:
    masks = [square_mask(), np.zeros((8, 8), bool)]
    perfect = pixel_metrics([m.astype(float) for m in masks], masks)
    assert perfect["pixel_auroc"] == pytest.approx(1.0)
    assert perfect["pro"] == pytest.approx(1.0)
    assert perfect["regions"] == 1 and perfect["defect_pixels"] == 9 and perfect["normal_pixels"] == 119
    worst = pixel_metrics([1.0 - m for m in masks], masks)
    assert worst["pixel_auroc"] == pytest.approx(0.0)
    assert worst["pro"] == pytest.approx(0.0)


def test_a_constant_map_is_chance() -> None:
    """All pixels tie: one threshold, the curve runs straight from (0, 0) to (1, 1); area to 0.3 is 0.045."""
    masks = [square_mask()]
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


def test_image_metrics_at_the_models_threshold_and_at_the_best_cut() -> None:
    # ranked 0.8 (anomaly), 0.4 (normal), 0.35 (anomaly), 0.1 (normal)
    metrics = detection_metrics(np.array([0, 0, 1, 1]), np.array([0.1, 0.4, 0.35, 0.8]), threshold=0.5)
    assert metrics == {
        "auroc": pytest.approx(3 / 4),  # three of the four anomaly-normal pairs ranked right
        "auprc": pytest.approx(0.5 * 1 + 0.5 * 2 / 3),
        "f1": pytest.approx(2 / 3),  # only 0.8 is above 0.5: precision 1, recall 1/2
        "best_f1": pytest.approx(0.8),
        "best_f1_threshold": np.nextafter(0.35, -np.inf),
        "threshold": 0.5,
        "normal": 2,
        "anomalous": 2,
    }


def test_image_metrics_need_both_classes() -> None:
    with pytest.raises(DataError, match="both normal and anomalous"):
        detection_metrics(np.zeros(3), np.array([0.1, 0.2, 0.3]), threshold=0.5)
