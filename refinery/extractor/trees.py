"""Gradient-boosted trees scored with numpy: pass 2 of the main-content classifier.

Trained by scikit-learn's HistGradientBoostingClassifier at build time (`from_sklearn`); shipped as plain
arrays, so scoring a page needs neither scikit-learn nor pickles.  All trees are walked at once: the
nodes of every tree sit in one flat array (tree t's nodes at t * nodes_per_tree ...), leaves point to
themselves, and `depth` steps of flat `take`s over an (n_blocks, n_trees) array reach every leaf.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np


@dataclass
class Trees:
    feature: np.ndarray  # (n_trees * nodes_per_tree,) int: the feature a node splits on (0 at leaves)
    threshold: np.ndarray  # float: go left when x <= threshold (+inf at leaves)
    left: np.ndarray  # int: global index of the left child (the node itself at leaves)
    right: np.ndarray  # int: global index of the right child (the node itself at leaves)
    value: np.ndarray  # float: the leaf's contribution to the logit (0 at inner nodes)
    n_trees: int
    nodes_per_tree: int
    depth: int
    base: float  # the logit every sum starts from

    def __post_init__(self) -> None:
        self._children = np.stack([self.left, self.right], axis=1).ravel()  # node * 2 + went_right
        self._roots = np.arange(self.n_trees) * self.nodes_per_tree

    def logit(self, X: np.ndarray) -> np.ndarray:
        """Sum of every tree's leaf for each row of X (features never NaN: go left when x <= threshold)."""
        n, n_features = X.shape
        if n == 0:
            return np.zeros(0)
        flat = np.ascontiguousarray(X, dtype=np.float64).ravel()
        row_start = (np.arange(n) * n_features)[:, None]
        node = np.broadcast_to(self._roots, (n, self.n_trees))
        feature, threshold, children = self.feature, self.threshold, self._children
        for _ in range(self.depth):
            went_right = flat.take(row_start + feature.take(node)) > threshold.take(node)
            node = children.take(node * 2 + went_right)
        return self.value.take(node).sum(axis=1) + self.base

    def to_doc(self) -> dict:
        """JSON-ready: thresholds exactly (repr round-trips a float), leaf values to 6 significant digits."""
        return {
            "n_trees": self.n_trees, "nodes_per_tree": self.nodes_per_tree, "depth": self.depth,
            "base": float(f"{self.base:.6g}"),
            "feature": self.feature.tolist(), "threshold": [float(x) if np.isfinite(x) else None for x in self.threshold],
            "left": self.left.tolist(), "right": self.right.tolist(),
            "value": [float(f"{x:.6g}") for x in self.value.tolist()],
        }  # fmt: skip

    @classmethod
    def from_doc(cls, doc: dict, n_features: int) -> "Trees":
        size = int(doc["n_trees"]) * int(doc["nodes_per_tree"])
        arrays = [np.asarray(doc[k]) for k in ("feature", "left", "right", "value")]
        threshold = np.array([np.inf if x is None else x for x in doc["threshold"]], dtype=np.float64)
        if any(a.shape != (size,) for a in arrays + [threshold]):
            raise ValueError(f"tree arrays are not {doc['n_trees']} x {doc['nodes_per_tree']} nodes")
        feature, left, right, value = arrays
        if feature.max(initial=0) >= n_features or min(left.min(initial=0), right.min(initial=0)) < 0 \
                or max(left.max(initial=0), right.max(initial=0)) >= size:
            raise ValueError("tree arrays index outside the model")
        return cls(feature.astype(np.int64), threshold, left.astype(np.int64), right.astype(np.int64),
                   value.astype(np.float64), int(doc["n_trees"]), int(doc["nodes_per_tree"]), int(doc["depth"]),
                   float(doc["base"]))


def from_sklearn(model) -> Trees:
    """The trees of a fitted binary `HistGradientBoostingClassifier` (numeric features, no missing values).

    scikit-learn keeps them in private attributes (`_predictors`, `_baseline_prediction`); a release that
    moves them fails tests/test_extractor.py, which compares this walk with `predict_proba`."""
    nodes = [predictor[0].nodes for predictor in model._predictors]
    n_trees, width = len(nodes), max(len(n) for n in nodes)
    size = n_trees * width
    feature = np.zeros(size, dtype=np.int64)
    threshold = np.full(size, np.inf)
    left = np.arange(size, dtype=np.int64)  # padding and leaves point to themselves
    right = left.copy()
    value = np.zeros(size)
    depth = 0
    for t, tree in enumerate(nodes):
        offset = t * width
        inner = ~tree["is_leaf"].astype(bool)
        ids = offset + np.arange(len(tree))
        feature[ids[inner]] = tree["feature_idx"][inner]
        threshold[ids[inner]] = tree["num_threshold"][inner]
        left[ids[inner]] = offset + tree["left"][inner]
        right[ids[inner]] = offset + tree["right"][inner]
        value[ids[~inner]] = tree["value"][~inner]
        depth = max(depth, int(tree["depth"].max()))
    return Trees(feature, threshold, left, right, value, n_trees, width, depth,
                 float(np.ravel(model._baseline_prediction)[0]))
