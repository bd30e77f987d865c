"""Weighted L2 logistic regression, fitted deterministically (L-BFGS from zeros), and its link.

Used at build time by the extractor's pass 1 and the quality stacker, and `sigmoid` at run time by
the extractor: one definition so that the build and the scorer cannot drift apart.
"""

from __future__ import annotations

import numpy as np


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


def fit_logistic(X, y: np.ndarray, w: np.ndarray, l2: np.ndarray, iters: int = 300) -> np.ndarray:
    """Coefficients minimising the `w`-weighted mean log-loss plus 0.5 * sum(l2 * beta^2); `X` dense or
    scipy sparse, `l2` one penalty per column (0 for an intercept column)."""
    import scipy.optimize

    wsum = w.sum()

    def loss(beta):
        p = sigmoid(X @ beta)
        ll = -(w * (y * np.log(np.clip(p, 1e-12, 1)) + (1 - y) * np.log(np.clip(1 - p, 1e-12, 1)))).sum() / wsum
        grad = X.T @ (w * (p - y)) / wsum
        return ll + 0.5 * float((l2 * beta * beta).sum()), np.asarray(grad).ravel() + l2 * beta

    res = scipy.optimize.minimize(loss, np.zeros(X.shape[1]), jac=True, method="L-BFGS-B", options={"maxiter": iters})
    return res.x
