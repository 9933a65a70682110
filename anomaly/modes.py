"""Modes of normal images, and per-mode calibration of their scores, so that every mode scores alike.

Normal images can come in modes that look different but are all normal: product variants, lighting
setups, cameras. One mode's normal images can then score far above another's, and the pooled result
mostly measures the mode (issue 16). With ``--modes``, training images are clustered (k-means) on a
small description of the raw image: its grey-level histogram and channel means, all in [0, 1]. That
tells a variant, a light or a camera apart before any per-image standardisation removes it, and a
defect on a small part of the image barely moves it. The features are not standardised: a histogram
bin that is almost always empty would then turn noise into a mode of its own.

``auto`` first asks whether the images form separate groups at all. A two-means split of one
continuous cloud explains at most about two thirds of the spread along the line between its two
centres (2/pi for a Gaussian, 3/4 for a uniform); separate groups explain nearly all of it. Below
``SEPARATION`` there is one mode; above it, each group is asked the same again, up to ``MAX_MODES``
modes. A mode needs ``MIN_ITEMS`` training images at least. On development data, single-kind sets
(magnetic_tile, each digit) reached 0.56-0.80 and two variants 0.96-0.98. A silhouette threshold had
split one-kind sets (0.25 on the bundled zeros, 0.40 on magnetic_tile), and choosing k by silhouette
once two variants were found split magnetic_tile's parts as well, at a small cost in AUROC.

Each image's score is then standardised by the mean and spread of held-out normal images of its
mode, fixed at training time and stored in the manifest with the clustering, never taken from the
images being scored. A mode with fewer than ``MIN_ITEMS`` held-out images takes the figures of all of
them: a spread from a handful would make that mode's scores swing.

Other descriptions were measured and not kept: clustering the detector's own latent codes put a fifth
of the images of two variants (magnetic_tile parts and digits) in the other's mode, and adding an 8x8
thumbnail to the histogram put a third of the other digits (the anomalies) in the parts' mode, where
they scored low. The histogram alone placed every normal image, painted defect and other digit with
its variant. Measured in ``experiments/variants.py``; decided in
docs/decisions/0008-per-mode-image-calibration.md.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

from anomaly.errors import AnomalyError

MIN_ITEMS = 8
MAX_MODES = 8
# Share of the spread along a two-means split that the split must explain for ``auto`` to find modes.
SEPARATION = 0.85
LEVELS = 16
# Length of an image's description: the histogram and three channel means.
FEATURES = LEVELS + 3


def check_wanted(wanted: str, option: str = "modes") -> str:
    """``auto`` or a whole number of modes from 1 to MAX_MODES, else one error line naming ``option``."""
    if wanted != "auto" and not (wanted.isdigit() and 1 <= int(wanted) <= MAX_MODES):
        raise AnomalyError(f"{option} must be auto or a whole number from 1 to {MAX_MODES} (got {wanted!r})")
    return wanted


def describe(images: Sequence[np.ndarray]) -> np.ndarray:
    """Per image (H, W, C) uint8: its grey-level histogram (shares of pixels) and channel means, in [0, 1]."""
    rows = []
    for image in images:
        grey = image.mean(axis=2)
        histogram = np.histogram(grey, bins=LEVELS, range=(0, 256))[0] / grey.size
        channels = image.reshape(-1, image.shape[2]).mean(axis=0)
        rows.append(np.r_[histogram, np.resize(channels / 255, 3)])
    return np.array(rows, dtype=np.float64)


def _separate_groups(z: np.ndarray, seed: int | None) -> list[np.ndarray]:
    """Centres of the groups ``auto`` finds: split in two while a split is a separation, up to MAX_MODES."""
    from sklearn.cluster import KMeans

    open_groups, done = [np.arange(len(z))], list[np.ndarray]()
    while open_groups and len(open_groups) + len(done) < MAX_MODES:
        group = open_groups.pop()
        if len(group) < 2 * MIN_ITEMS:
            done.append(group)
            continue
        split = KMeans(2, n_init=10, random_state=seed).fit(z[group])
        small = min(np.bincount(split.labels_, minlength=2)) < MIN_ITEMS
        if small or separation(z[group], split.labels_, split.cluster_centers_) < SEPARATION:
            done.append(group)
        else:
            open_groups += [group[split.labels_ == 0], group[split.labels_ == 1]]
    return [z[g].mean(axis=0) for g in done + open_groups]


def separation(z: np.ndarray, labels: np.ndarray, centres: np.ndarray) -> float:
    """Share of the spread along the line between two centres that the split into their two groups explains."""
    if len(set(labels)) < 2:
        return 0.0
    direction = centres[1] - centres[0]
    x = z @ (direction / np.linalg.norm(direction))
    total = float(np.sum((x - x.mean()) ** 2))
    between = sum(np.sum(labels == j) * (x[labels == j].mean() - x.mean()) ** 2 for j in (0, 1))
    return float(between / total) if total > 0 else 0.0


@dataclass
class ImageModes:
    """The clustering of normal images, and per mode the held-out normal scores' mean and spread."""

    centroids: list[list[float]]
    mean: list[float]
    std: list[float]

    @classmethod
    def cluster(cls, images: Sequence[np.ndarray], wanted: str, seed: int | None) -> ImageModes | None:
        """Modes of training images, or None when there is one (asked for, or ``auto`` found no structure)."""
        from sklearn.cluster import KMeans

        check_wanted(wanted)
        z = describe(images)
        if wanted == "1" or len(z) < 3:
            return None
        if wanted == "auto":
            centroids = _separate_groups(z, seed)
        else:
            centroids = list(KMeans(min(int(wanted), len(z) - 1), n_init=10, random_state=seed).fit(z).cluster_centers_)
        if len(centroids) < 2:
            return None
        return cls(centroids=[c.tolist() for c in centroids], mean=[0.0] * len(centroids), std=[1.0] * len(centroids))

    @property
    def count(self) -> int:
        return len(self.centroids)

    def assign(self, images: Sequence[np.ndarray]) -> np.ndarray:
        """Each image's mode: its description's nearest centroid."""
        if len(images) == 0:
            return np.zeros(0, dtype=np.int64)
        z = describe(images)
        return ((z[:, None, :] - np.asarray(self.centroids)[None]) ** 2).sum(axis=2).argmin(axis=1)

    def calibrate(self, scores: np.ndarray, modes: np.ndarray) -> None:
        """Fix each mode's figures from held-out normal scores; a mode with too few takes everyone's, and
        with too few in all, every mode leaves the scores as they are (mean 0, spread 1)."""
        enough = len(scores) >= MIN_ITEMS
        pooled = (float(np.mean(scores)), float(max(np.std(scores), 1e-8))) if enough else (0.0, 1.0)
        for m in range(self.count):
            own = scores[modes == m]
            self.mean[m], self.std[m] = (
                (float(np.mean(own)), float(max(np.std(own), 1e-8))) if len(own) >= MIN_ITEMS else pooled
            )

    def apply(self, scores: np.ndarray, modes: np.ndarray) -> np.ndarray:
        """Each score in held-out standard deviations of its mode's normal images, from that mode's mean."""
        return (scores - np.asarray(self.mean)[modes]) / np.asarray(self.std)[modes]

    def cross_fitted(self, scores: np.ndarray, modes: np.ndarray, seed: int | None) -> np.ndarray:
        """Held-out normal scores, each half calibrated by the other half's figures.

        The threshold is set on these: scores calibrated by figures they helped fit sit closer to
        their mode's mean than new normal images will, so a threshold set on them would flag too many.
        """
        fold = np.random.default_rng(seed).permutation(len(scores)) % 2
        out = np.empty(len(scores), dtype=np.float64)
        for half in (0, 1):
            other = ImageModes(self.centroids, list(self.mean), list(self.std))
            other.calibrate(scores[fold != half], modes[fold != half])
            out[fold == half] = other.apply(scores[fold == half], modes[fold == half])
        return out
