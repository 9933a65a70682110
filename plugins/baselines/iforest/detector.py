"""Isolation forest (Liu et al., ICDM 2008) on raw pixel or window values: no learned features at all.

scikit-learn grows the forest; the model folder keeps only the fitted trees' arrays (split feature,
threshold, children, and each leaf's path length) in ``forest.npz``, and ``Forest.isolation``
scores with a few lines of numpy. That was chosen over a safe serialiser of the estimator (skops):
no new dependency, nothing but plain arrays in the folder, so a folder does not depend on
scikit-learn's private tree layout of the version that wrote it, and the arrays are checked here
(every child link points further down its own tree, so a walk always ends at a leaf).
``Forest.isolation`` repeats ``IsolationForest.score_samples``'s arithmetic step for step, so its
scores are bitwise the estimator's (tests/plugins/test_baselines.py checks this).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from anomaly.detector import Detector
from anomaly.errors import ArtifactError
from anomaly.params import option
from anomaly_plugins.baselines.arrays import Layout, load_arrays, save_arrays

STATE = "forest.npz"
LAYOUT: Layout = {
    "roots": ("i", 1),
    "left": ("i", 1),
    "right": ("i", 1),
    "feature": ("i", 1),
    "threshold": ("f", 1),
    "path": ("f", 1),
    "denominator": ("f", 0),
}


@dataclass
class IsolationForestParams:
    trees: int = option(100, low=1, high=10_000, help="trees in the forest")
    max_samples: int = option(
        256, low=2, high=100_000, help="training samples each tree is grown on (all of them if fewer)"
    )


def average_path_length(samples: np.ndarray) -> np.ndarray:
    """Mean depth at which a random tree isolates one of ``samples`` points (scikit-learn's formula, 0 and 1 for 1 and 2)."""
    n = np.asarray(samples, dtype=np.float64)
    length = np.zeros(n.shape)
    many = n > 2
    length[n == 2] = 1.0
    length[many] = 2.0 * (np.log(n[many] - 1.0) + np.euler_gamma) - 2.0 * (n[many] - 1.0) / n[many]
    return length


@dataclass
class Forest:
    """Every tree's nodes laid end to end: tree t starts at ``roots[t]``; a leaf's children are -1."""

    roots: np.ndarray
    left: np.ndarray
    right: np.ndarray
    feature: np.ndarray
    threshold: np.ndarray
    path: np.ndarray
    denominator: np.ndarray

    @classmethod
    def of(cls, estimator) -> Forest:
        """The arrays of a fitted ``sklearn.ensemble.IsolationForest``, through the trees' public ``tree_``."""
        parts: dict[str, list[np.ndarray]] = {"left": [], "right": [], "feature": [], "threshold": [], "path": []}
        roots, offset = [], 0
        for tree in (t.tree_ for t in estimator.estimators_):
            roots.append(offset)
            leaf = tree.children_left < 0
            parts["left"].append(np.where(leaf, -1, tree.children_left + offset))
            parts["right"].append(np.where(leaf, -1, tree.children_right + offset))
            parts["feature"].append(np.where(leaf, 0, tree.feature))
            parts["threshold"].append(tree.threshold)
            # The same sum in the same order as scikit-learn's, so the depths add up to the same bits.
            parts["path"].append(
                _depths(tree.children_left, tree.children_right) + average_path_length(tree.n_node_samples) - 1.0
            )
            offset += tree.node_count
        denominator = len(estimator.estimators_) * average_path_length([estimator.max_samples_])[0]
        return cls(
            roots=np.asarray(roots, np.int64),
            denominator=np.asarray(denominator, np.float64),
            **{
                k: np.concatenate(v).astype(np.int64 if k in ("left", "right", "feature") else np.float64)
                for k, v in parts.items()
            },
        )

    def isolation(self, flat: np.ndarray) -> np.ndarray:
        """2^(-mean path length / expected length) per row of ``flat``: near 1 isolates fast (anomalous), near 0.5 not."""
        # Trees split float32 values, as scikit-learn's do; comparing them with float64 thresholds is exact.
        values = np.asarray(flat, dtype=np.float32)
        rows = np.arange(len(values))[:, None]
        nodes = np.broadcast_to(self.roots, (len(values), len(self.roots))).copy()
        inner = self.left[nodes] >= 0
        while inner.any():
            goes_left = values[rows, self.feature[nodes]] <= self.threshold[nodes]
            nodes = np.where(inner, np.where(goes_left, self.left[nodes], self.right[nodes]), nodes)
            inner = self.left[nodes] >= 0
        # cumsum adds tree by tree, as scikit-learn does; a plain sum would add pairwise and round differently.
        depths = np.cumsum(self.path[nodes], axis=1)[:, -1]
        return 2 ** (-(depths / self.denominator))

    def check(self, trees: int, features: int, where: Path) -> None:
        """Refuse arrays that would index outside the input or the forest, or walk in circles."""
        nodes = len(self.left)
        if len(self.roots) != trees:
            raise ArtifactError(f"{where}: holds {len(self.roots)} trees, the manifest says {trees}")
        if not all(len(a) == nodes for a in (self.right, self.feature, self.threshold, self.path)):
            raise ArtifactError(f"{where}: the node arrays differ in length")
        if nodes == 0 or self.roots[0] != 0 or np.any(np.diff(self.roots) <= 0) or self.roots[-1] >= nodes:
            raise ArtifactError(f"{where}: tree starts are not increasing positions within the nodes")
        ends = np.append(self.roots[1:], nodes)[np.searchsorted(self.roots, np.arange(nodes), side="right") - 1]
        index = np.arange(nodes)
        inner = self.left >= 0
        links_ok = all(
            np.all((child[inner] > index[inner]) & (child[inner] < ends[inner])) for child in (self.left, self.right)
        )
        if not links_ok or np.any(self.right[~inner] != -1):
            raise ArtifactError(f"{where}: a tree's child links do not lead down its own tree")
        if np.any((self.feature < 0) | (self.feature >= features)):
            raise ArtifactError(f"{where}: a split names a feature outside the {features} of each sample")
        if not self.denominator > 0:
            raise ArtifactError(f"{where}: the expected path length is not positive")


def _depths(left: np.ndarray, right: np.ndarray) -> np.ndarray:
    """Each node's depth, the root's being 1 (scikit-learn's ``compute_node_depths``); children follow their parent."""
    depth = np.zeros(len(left), dtype=np.float64)
    depth[0] = 1
    frontier = np.array([0])
    while frontier.size:
        parents = frontier[left[frontier] >= 0]
        children = np.concatenate([left[parents], right[parents]])
        depth[children] = np.concatenate([depth[parents], depth[parents]]) + 1
        frontier = children
    return depth


class IsolationForest(Detector):
    """Isolation forest on flattened samples: an anomaly is split off from the rest in fewer random cuts.

    It scores each sample (tile or window) as a whole, so it draws no anomaly map.
    """

    name = "iforest"
    version = "1.0"
    description = "isolation forest (scikit-learn) on flattened tiles or windows; no anomaly map"
    components = ("isolation",)
    Params = IsolationForestParams

    def build(self) -> None:
        self.forest: Forest | None = None

    def fit_once(self, x: np.ndarray) -> dict[str, float]:
        from sklearn.ensemble import IsolationForest as Estimator

        estimator = Estimator(
            n_estimators=self.params.trees,
            max_samples=min(self.params.max_samples, len(x)),
            random_state=self.settings.seed,
        ).fit(x.reshape(len(x), -1))
        self.forest = Forest.of(estimator)
        return {}

    def sample_components(self, x: np.ndarray) -> tuple[dict[str, np.ndarray], None]:
        return {"isolation": self.forest.isolation(x.reshape(len(x), -1))}, None

    def save_state(self, directory: Path) -> None:
        save_arrays(directory, STATE, vars(self.forest))

    def load_state(self, directory: Path) -> None:
        forest = Forest(**load_arrays(directory, STATE, LAYOUT))
        forest.check(self.params.trees, int(np.prod(self.spec.sample_shape)), directory / STATE)
        self.forest = forest
