"""Detection quality on labelled data: the numbers users pick a detector by.

Image-level metrics say whether a part is flagged; pixel-level metrics, where ground-truth masks
exist, say whether the anomaly map points at the defect. Pixel AUROC pools every pixel of every
image and so is dominated by large defects; PRO (per-region overlap, Bergmann et al., "The MVTec
Anomaly Detection Dataset", IJCV 2021) weighs each connected defect region equally, so a small
blowhole counts as much as a large break.
"""

from __future__ import annotations

import numpy as np
from scipy import ndimage
from sklearn.metrics import auc, average_precision_score, f1_score, roc_auc_score

from anomaly.errors import DataError
from anomaly.threshold import best_f1_threshold

# PRO is integrated up to this false-positive rate on normal pixels, as the MVTec AD papers report it:
# beyond 30% of normal pixels flagged, an anomaly map is of no use to an inspector.
PRO_MAX_FPR = 0.3
# 8-connectivity, as in the MVTec AD evaluation code: diagonal neighbours belong to the same region.
_CONNECTIVITY = np.ones((3, 3), dtype=int)


def detection_metrics(labels: np.ndarray, scores: np.ndarray, threshold: float) -> dict[str, float]:
    labels = np.asarray(labels).astype(int)
    scores = np.asarray(scores, dtype=np.float64)
    if labels.min() == labels.max():
        raise DataError("evaluation needs both normal and anomalous samples in the labelled data")
    best_f1, best_threshold = best_f1_threshold(labels, scores)
    return {
        "auroc": float(roc_auc_score(labels, scores)),
        "auprc": float(average_precision_score(labels, scores)),
        "f1": float(f1_score(labels, scores > threshold, zero_division=0)),
        "best_f1": best_f1,
        "best_f1_threshold": best_threshold,
        "threshold": float(threshold),
        "normal": int((labels == 0).sum()),
        "anomalous": int((labels == 1).sum()),
    }


class PixelRanking:
    """Every pixel of a set of images, ranked once by anomaly-map value, for pixel AUROC and PRO.

    Both curves follow from one descending sort of all pixels: each distinct map value is a threshold,
    so the curves are exact where sampled thresholds would only approximate them (the MVTec AD
    evaluation code computes PRO this way too). Any subset of the images (one defect type and the
    normal images, say) keeps the order, so its curves need no new sort; scikit-learn's
    ``roc_auc_score`` would sort every subset's millions of pixels again. The tests check the AUROC
    against ``roc_auc_score``.

    Maps are used as they are, never rescaled per image or per batch, so a pixel's rank does not
    depend on which other images were scored with it. Masks are boolean (True = defect) and share
    their map's shape.
    """

    def __init__(self, maps: list[np.ndarray], masks: list[np.ndarray]) -> None:
        if len(maps) != len(masks) or not maps:
            raise DataError("pixel metrics need one mask per anomaly map, and at least one of each")
        values, defect, weight, owner, regions = [], [], [], [], []
        for index, (anomaly_map, mask) in enumerate(zip(maps, masks)):
            if np.shape(anomaly_map) != np.shape(mask):
                raise DataError(
                    f"an anomaly map of shape {np.shape(anomaly_map)} does not match its mask of shape {np.shape(mask)}"
                )
            labelled, count = ndimage.label(np.asarray(mask, bool), _CONNECTIVITY)
            labelled = labelled.ravel()
            sizes = np.bincount(labelled, minlength=count + 1).astype(np.float64)
            # A defect pixel weighs 1 / (its region's size): the weights of a region sum to one.
            weight.append(np.where(labelled > 0, 1.0 / sizes[labelled], 0.0))
            defect.append(labelled > 0)
            values.append(np.asarray(anomaly_map, np.float32).ravel())
            owner.append(np.full(labelled.size, index, np.int32))
            regions.append(count)
        order = np.argsort(-np.concatenate(values))
        self.values = np.concatenate(values)[order]
        self.defect = np.concatenate(defect)[order]
        self.weight = np.concatenate(weight)[order]
        self.owner = np.concatenate(owner)[order]
        self.regions = np.asarray(regions)

    def metrics(self, images: np.ndarray | list[int] | None = None, max_fpr: float = PRO_MAX_FPR) -> dict[str, float]:
        """Pixel AUROC, PRO up to ``max_fpr`` (normalised) and pixel counts over ``images`` (default: all)."""
        if not 0 < max_fpr <= 1:
            raise DataError(f"max_fpr must be in (0, 1] (got {max_fpr})")
        keep: slice | np.ndarray
        if images is None:
            keep = slice(None)
            regions = int(self.regions.sum())
        else:
            chosen = np.zeros(len(self.regions), bool)
            chosen[np.asarray(images, int)] = True
            keep = chosen[self.owner]
            regions = int(self.regions[chosen].sum())
        values, defect, weight = self.values[keep], self.defect[keep], self.weight[keep]
        if defect.all() or not defect.any():
            raise DataError("pixel metrics need both defect and normal pixels in the masks")
        # Pixels with equal values pass a threshold together: keep the curve's point after the last of them.
        last = np.append(values[1:] != values[:-1], True)
        fpr = np.concatenate([[0.0], np.cumsum(~defect)[last] / np.count_nonzero(~defect)])
        tpr = np.concatenate([[0.0], np.cumsum(defect)[last] / np.count_nonzero(defect)])
        # Clipped: summing millions of 1/size weights can overshoot 1 by rounding.
        pro = np.minimum(np.concatenate([[0.0], np.cumsum(weight, dtype=np.float64)[last] / regions]), 1.0)
        return {
            "pixel_auroc": float(auc(fpr, tpr)),
            "pro": _normalised_area(fpr, pro, max_fpr),
            "defect_pixels": int(defect.sum()),
            "normal_pixels": int((~defect).sum()),
            "regions": regions,
        }


def pixel_metrics(maps: list[np.ndarray], masks: list[np.ndarray], max_fpr: float = PRO_MAX_FPR) -> dict[str, float]:
    """Pixel AUROC and normalised PRO over every pixel of the given (map, mask) pairs."""
    return PixelRanking(maps, masks).metrics(max_fpr=max_fpr)


def per_region_overlap(maps: list[np.ndarray], masks: list[np.ndarray], max_fpr: float = PRO_MAX_FPR) -> float:
    """Area under the PRO curve up to ``max_fpr``, divided by ``max_fpr`` (1 = perfect, max_fpr / 2 = chance).

    At each threshold, PRO is the mean over all defect regions (connected components of every mask)
    of the share of the region's pixels above the threshold; the false-positive rate is the share of
    all normal pixels above it.
    """
    return pixel_metrics(maps, masks, max_fpr)["pro"]


def _normalised_area(fpr: np.ndarray, curve: np.ndarray, max_fpr: float) -> float:
    """Area under ``curve`` over fpr in [0, max_fpr], divided by max_fpr; the curve is cut at max_fpr exactly."""
    cut = int(np.searchsorted(fpr, max_fpr, side="right"))
    if cut < len(fpr):
        end = float(np.interp(max_fpr, fpr[cut - 1 : cut + 1], curve[cut - 1 : cut + 1]))
        fpr, curve = np.append(fpr[:cut], max_fpr), np.append(curve[:cut], end)
    return float(auc(fpr, curve) / max_fpr)
