"""The shipped main-content classifier: pass 1, a logistic regression on block features with hashed
class/id tokens; pass 2, gradient-boosted trees on those features, pass 1's scores of the neighbours and
containers, and the page context (title overlap, repeated containers); and a threshold.

Stored as JSON (weights rounded to 6 significant digits, tree thresholds exact) so that a rebuild is
byte-identical and the file diffs readably; it is a few hundred KB and loads in milliseconds.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from refinery.errors import ModelError
from refinery.extractor.blocks import HASH_SIZE, Block, own_features, bucket, segment
from refinery.extractor.features import (
    N_CONTEXT, N_DENSE, N_STACK, context_features, dense_features, frame_ids, lexical_ids, stack_features,
)
from refinery.extractor.trees import Trees
from refinery.models.logistic import sigmoid
from refinery.models.registry import DEFAULT_ROOT

MODEL_FILE = "extractor.json"
DEFAULT_DIR = DEFAULT_ROOT / "extractor"
FORMAT = "refinery-extractor/2"
N_PASS2 = N_DENSE + N_STACK + N_CONTEXT


@dataclass
class ExtractorModel:
    w1_dense: np.ndarray  # (N_DENSE,)
    w1_sparse: np.ndarray  # (HASH_SIZE,)
    pass2: Trees  # over N_PASS2 features: dense, stacked pass-1 scores, page context
    threshold: float

    def __post_init__(self) -> None:
        self._ws = self.w1_sparse.tolist()  # Python floats: summing a few of them beats numpy indexing
        self._own_cache: dict[tuple[str, str], tuple[float, float, float]] = {}
        self._pair_cache: dict[tuple[str, str], float] = {}

    def _sums(self, f) -> tuple[float, float, float]:
        """Model weight sums of an element's own, as-parent and ancestor features, memoised per element and
        per (tag, attributes)."""
        if f.sums is not None:
            return f.sums
        key = (f.tag, f.attrs)
        sums = self._own_cache.get(key)
        if sums is None:
            ws = self._ws
            own, as_parent, anc = own_features(f.tag, f.attrs)
            sums = (sum([ws[i] for i in own]), sum([ws[i] for i in as_parent]), sum([ws[i] for i in anc]))
            if len(self._own_cache) > 200_000:
                self._own_cache.clear()
            self._own_cache[key] = sums
        f.sums = sums
        return sums

    def _pair(self, parent_tag: str, tag: str) -> float:
        key = (parent_tag, tag)
        w = self._pair_cache.get(key)
        if w is None:
            w = self._pair_cache[key] = self._ws[bucket(f"pt:{parent_tag}>{tag}")]
        return w

    def _anc_score(self, f) -> float:
        """Parent's score plus this element's (iterative: a DOM may be thousands deep)."""
        chain = []
        while f is not None and f.anc_score is None:
            chain.append(f)
            f = f.parent
        total = f.anc_score if f is not None else 0.0
        for g in reversed(chain):
            total += self._sums(g)[2]
            g.anc_score = total
        return total

    def _frame_score(self, f) -> float:
        """Equals the sum of the weights of `f.near` and `f.anc` (what training sees), without building them."""
        if f.score is None:
            p = f.parent
            near = self._sums(f)[0] + (self._sums(p)[1] + self._pair(p.tag, f.tag) if p is not None else self._pair("root", f.tag))
            f.score = near + self._anc_score(f)
        return f.score

    def pass1(self, blocks: list[Block], X: np.ndarray) -> np.ndarray:
        score, ws = self._frame_score, self._ws
        extra = np.fromiter((score(b.frame) + sum([ws[i] for i in lexical_ids(b)]) for b in blocks),
                            dtype=np.float64, count=len(blocks))
        return sigmoid(X @ self.w1_dense + extra)

    def scores(self, blocks: list[Block], title: str) -> np.ndarray:
        if not blocks:
            return np.zeros(0)
        X = dense_features(blocks)
        p1 = self.pass1(blocks, X)
        ids = frame_ids(blocks)
        S = stack_features(p1, blocks, ids)
        return sigmoid(self.pass2.logit(np.hstack([X, S, context_features(blocks, title, ids)])))

    def extract(self, html: str, max_elements: int | None = None) -> str:
        """Main text of `html`: kept blocks in document order, one per line."""
        page = segment(html, max_elements)
        blocks = page.blocks
        if not blocks:
            return ""
        keep = self.scores(blocks, page.title) >= self.threshold
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
            "pass2_trees": self.pass2.to_doc(),
        }
        return json.dumps(doc, separators=(",", ":")) + "\n"

    @classmethod
    def from_json(cls, text: str, source: str = "model") -> "ExtractorModel":
        try:
            doc = json.loads(text)
            if doc.get("format") != FORMAT or doc.get("hash_size") != HASH_SIZE:
                raise ValueError(f"format {doc.get('format')!r}/{doc.get('hash_size')}, expected {FORMAT}/{HASH_SIZE}")
            w1d = np.asarray(doc["w1_dense"], dtype=np.float64)
            if w1d.shape != (N_DENSE,):
                raise ValueError("feature count differs from this code's; rebuild the model")
            ws = np.zeros(HASH_SIZE)
            for k, v in doc["w1_sparse"].items():
                ws[int(k)] = v
            return cls(w1d, ws, Trees.from_doc(doc["pass2_trees"], N_PASS2), float(doc["threshold"]))
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


def model_info(directory: str | Path | None = None) -> dict:
    """What a commit records of the model: its manifest version and the model file's sha256."""
    import hashlib

    path = Path(directory) if directory not in (None, "default") else DEFAULT_DIR
    file = path / MODEL_FILE
    if not file.is_file():
        load_extractor(directory)  # raises the clear "build it with" error
    info = {"file": MODEL_FILE, "sha256": hashlib.sha256(file.read_bytes()).hexdigest()}
    manifest = path / "manifest.json"
    if manifest.is_file():
        info["version"] = json.loads(manifest.read_text(encoding="utf-8")).get("version")
    return info


def clear_caches() -> None:
    """Forget every memoised feature and score (benchmarks: a timed pass starts as cold as a new worker)."""
    from refinery.extractor import blocks, features

    blocks.bucket.cache_clear()
    blocks.own_features.cache_clear()
    features.short_ids.cache_clear()
    for model in _CACHE.values():
        model._own_cache.clear()
        model._pair_cache.clear()
