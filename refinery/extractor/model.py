"""The shipped main-content classifier: two logistic regressions (pass 1 on block features with hashed
class/id tokens, pass 2 stacked on pass 1's scores of neighbours and containers) and a threshold.

Stored as JSON (weights rounded to 6 significant digits) so that a rebuild is byte-identical and the
file diffs readably; it is a few hundred KB and loads in milliseconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from refinery.errors import ModelError
from refinery.extractor.blocks import HASH_SIZE, Block, page_blocks
from refinery.extractor.features import N_DENSE, N_STACK, dense_features, frame_ids, stack_features
from refinery.models.registry import DEFAULT_ROOT

MODEL_FILE = "extractor.json"
DEFAULT_DIR = DEFAULT_ROOT / "extractor"
FORMAT = "refinery-extractor/1"


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-np.clip(z, -30, 30)))


@dataclass
class ExtractorModel:
    w1_dense: np.ndarray  # (N_DENSE,)
    w1_sparse: np.ndarray  # (HASH_SIZE,)
    w2: np.ndarray  # (N_DENSE + N_STACK,)
    threshold: float

    def pass1(self, blocks: list[Block], X: np.ndarray) -> np.ndarray:
        sparse_of: dict[int, float] = {}
        ws = self.w1_sparse
        z = X @ self.w1_dense
        extra = np.empty(len(blocks))
        for i, b in enumerate(blocks):
            f = b.frame
            s = sparse_of.get(f.index)
            if s is None:
                s = float(ws[list(f.near)].sum() + ws[list(f.anc)].sum())
                sparse_of[f.index] = s
            extra[i] = s
        return _sigmoid(z + extra)

    def scores(self, blocks: list[Block]) -> np.ndarray:
        if not blocks:
            return np.zeros(0)
        X = dense_features(blocks)
        p1 = self.pass1(blocks, X)
        S = stack_features(p1, blocks, frame_ids(blocks))
        return _sigmoid(np.hstack([X, S]) @ self.w2)

    def extract(self, html: str, max_elements: int | None = None) -> str:
        """Main text of `html`: kept blocks in document order, one per line."""
        blocks = page_blocks(html, max_elements)
        if not blocks:
            return ""
        keep = self.scores(blocks) >= self.threshold
        return "\n".join(b.text for b, k in zip(blocks, keep) if k)

    def to_json(self) -> str:
        def r(a: np.ndarray) -> list[float]:
            return [float(f"{x:.6g}") for x in a.tolist()]

        nz = np.nonzero(self.w1_sparse)[0]
        doc = {
            "format": FORMAT,
            "hash_size": HASH_SIZE,
            "threshold": float(f"{self.threshold:.6g}"),
            "w1_dense": r(self.w1_dense),
            "w1_sparse": {str(int(i)): v for i, v in zip(nz, r(self.w1_sparse[nz]))},
            "w2": r(self.w2),
        }
        return json.dumps(doc, separators=(",", ":")) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> "ExtractorModel":
        try:
            doc = json.loads(text)
            if doc.get("format") != FORMAT or doc.get("hash_size") != HASH_SIZE:
                raise ValueError(f"format {doc.get('format')!r}/{doc.get('hash_size')}, expected {FORMAT}/{HASH_SIZE}")
            w1d = np.asarray(doc["w1_dense"], dtype=np.float64)
            w2 = np.asarray(doc["w2"], dtype=np.float64)
            if w1d.shape != (N_DENSE,) or w2.shape != (N_DENSE + N_STACK,):
                raise ValueError("feature count differs from this code's; rebuild the model")
            ws = np.zeros(HASH_SIZE)
            for k, v in doc["w1_sparse"].items():
                ws[int(k)] = v
            return cls(w1d, ws, w2, float(doc["threshold"]))
        except (ValueError, KeyError, TypeError) as err:
            raise ModelError(f"{source}: unreadable extractor model ({err}); rebuild it with "
                             "`refinery models build-extractor` (deploy/build-default-models.sh)") from err


_CACHE: dict[str, ExtractorModel] = {}


def load_extractor(directory: str | Path | None = None) -> ExtractorModel:
    """The model in `directory` (default: the shipped one), cached per process."""
    path = Path(directory) if directory not in (None, "default") else DEFAULT_DIR
    file = path / MODEL_FILE
    key = str(file.resolve())
    if key not in _CACHE:
        if not file.is_file():
            raise ModelError(f"no extractor model at {file}; build it with `refinery models build-extractor --out {path}` "
                             "(the shipped default is rebuilt by deploy/build-default-models.sh)")
        _CACHE[key] = ExtractorModel.from_json(file.read_text(encoding="utf-8"), str(file))
    return _CACHE[key]
