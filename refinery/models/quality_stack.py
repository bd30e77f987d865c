"""Second stage of the quality classifier: logistic regression over the fastText score and the
document's structure features (`quality_features.py`).

Trained on the same rows as fastText but on fastText scores computed *out of fold* (two folds,
web rows by domain), as the shipped model scores pages it never saw; a model scored on its own
training rows would be near 0/1 and the stage would learn to trust it blindly.  Weights are JSON
rounded to 6 significant digits (a few hundred bytes), applied with plain Python arithmetic.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path

from refinery.errors import ModelError
from refinery.models.metrics import logit
from refinery.models.quality_features import NAMES, features

FIRST = "fasttext_logit"
EPS = 1e-4  # fastText probabilities are clipped to [EPS, 1 - EPS] before the logit


def stack_row(p_fasttext: float, text: str, lang: str) -> list[float]:
    """The second stage's inputs: the fastText logit, then the structure features."""
    return [logit(p_fasttext, EPS), *features(text, lang)]


@dataclass(frozen=True)
class Stacker:
    names: tuple[str, ...]
    mean: tuple[float, ...]
    scale: tuple[float, ...]
    weights: tuple[float, ...]  # bias first, then one per name

    def score_rows(self, rows: list[list[float]]) -> list[float]:
        out = []
        for r in rows:
            z = self.weights[0] + sum(w * (x - m) / s for w, x, m, s in zip(self.weights[1:], r, self.mean, self.scale))
            out.append(round(1.0 / (1.0 + math.exp(-max(-50.0, min(50.0, z)))), 6))
        return out

    def scores(self, p_fasttext: list[float], texts: list[str], lang: str) -> list[float]:
        return self.score_rows([stack_row(p, t, lang) for p, t in zip(p_fasttext, texts)])

    def to_json(self) -> str:
        def r(xs) -> list[float]:
            return [float(f"{x:.6g}") for x in xs]

        return json.dumps({"names": list(self.names), "mean": r(self.mean), "scale": r(self.scale), "weights": r(self.weights)}, indent=1) + "\n"

    @classmethod
    def load(cls, path: Path) -> "Stacker":
        try:
            obj = json.loads(path.read_text(encoding="utf-8"))
            st = cls(tuple(obj["names"]), tuple(obj["mean"]), tuple(obj["scale"]), tuple(obj["weights"]))
        except (OSError, ValueError, KeyError, TypeError) as err:
            raise ModelError(f"{path}: not a quality stacker file ({err})") from None
        if st.names != (FIRST, *NAMES) or not (len(st.mean) == len(st.scale) == len(st.names) == len(st.weights) - 1):
            raise ModelError(f"{path}: stacker features {list(st.names)} are not this version's ({[FIRST, *NAMES]}); rebuild the model")
        return st


def fit_stacker(rows: list[list[float]], labels: list[int], l2: float) -> Stacker:
    """Class-balanced L2 logistic regression on standardised rows (L-BFGS from zeros: deterministic)."""
    import numpy as np

    from refinery.models.logistic import fit_logistic

    X = np.asarray(rows, dtype=np.float64)
    y = np.asarray(labels, dtype=np.float64)
    mean = X.mean(axis=0)
    scale = X.std(axis=0)
    scale[scale < 1e-9] = 1.0
    Z = np.hstack([np.ones((len(X), 1)), (X - mean) / scale])
    n_pos = y.sum()
    w = np.where(y == 1, 0.5 / n_pos, 0.5 / (len(y) - n_pos)) * len(y)
    reg = np.full(Z.shape[1], l2)
    reg[0] = 0.0
    beta = fit_logistic(Z, y, w, reg, iters=500)
    return Stacker((FIRST, *NAMES), tuple(mean), tuple(scale), tuple(beta))
