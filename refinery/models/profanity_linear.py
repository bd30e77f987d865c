"""alt-profanity-check's linear model as a plain array file, the second member of the English toxicity ensemble.

alt-profanity-check (MIT) is a TF-IDF bag of word unigrams scored by five
LinearSVCs, each calibrated by a sigmoid (scikit-learn's
CalibratedClassifierCV), trained by its authors on ~200k labelled tweets and
Wikipedia talk comments (Davidson et al.; the Jigsaw toxic-comment set).  On
sources neither model saw it errs differently from the fastText classifier
(it knows the talk-page comments, fastText the hate-speech forums), so their
mean log-odds beats both (docs/models.md).

`export` reads the package's fitted objects once, at build time and in a
fresh process (scikit-learn never loads into the build), and writes its
vocabulary, idf, weights and sigmoids to one .npz.  `LinearProfanityModel`
scores exactly as the package does (tests compare them) with a regex and a
dict lookup per token: no scikit-learn, no package, ~1 ms to load.
"""

from __future__ import annotations

import multiprocessing
import re
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from refinery.errors import InputError

PACKAGE = "alt-profanity-check"
LICENCE_NOTE = ("MIT (c) alt-profanity-check authors (Victor Zhou's profanity-check, maintained by Dimitrios Mistriotis); "
                "trained by them on Davidson et al. 2017 tweets and the Jigsaw toxic-comment Wikipedia talk comments")  # fmt: skip
_TOKEN = re.compile(r"(?u)\b\w\w+\b")  # the package's TfidfVectorizer token_pattern (lowercase=True)


class LinearProfanityModel:
    """P(profane) of texts, as `profanity_check.predict_prob` gives it."""

    def __init__(self, path: Path) -> None:
        with np.load(path, allow_pickle=False) as z:
            words = z["vocabulary"].tolist()
            self.idf = z["idf"]
            self.coef = z["coef"]  # (folds, features)
            self.intercept = z["intercept"]  # (folds,)
            self.sigmoid_a = z["sigmoid_a"]
            self.sigmoid_b = z["sigmoid_b"]
        self.index = {w: i for i, w in enumerate(words)}

    def scores(self, texts: Sequence[str]) -> list[float]:
        out = []
        index = self.index
        for text in texts:
            counts: dict[int, int] = {}
            for tok in _TOKEN.findall(text.lower()):
                i = index.get(tok)
                if i is not None:
                    counts[i] = counts.get(i, 0) + 1
            if counts:
                cols = np.fromiter(counts.keys(), np.int64, len(counts))
                x = np.fromiter(counts.values(), np.float64, len(counts)) * self.idf[cols]
                x /= np.sqrt(x @ x)
                decision = self.coef[:, cols] @ x + self.intercept
            else:
                decision = self.intercept.copy()
            p = 1.0 / (1.0 + np.exp(self.sigmoid_a * decision + self.sigmoid_b))
            out.append(float(p.mean()))
        return out


def _export_worker(path: str) -> dict[str, Any]:
    import importlib.metadata

    from profanity_check import profanity_check as pc

    vec, model = pc.vectorizer, pc.model
    params = vec.get_params()
    expected = {"analyzer": "word", "ngram_range": (1, 1), "lowercase": True, "norm": "l2", "use_idf": True,
                "sublinear_tf": False, "binary": False, "token_pattern": _TOKEN.pattern, "strip_accents": None}  # fmt: skip
    wrong = {k: params.get(k) for k, v in expected.items() if params.get(k) != v}
    if wrong or model.method != "sigmoid":
        raise InputError(f"{PACKAGE}: unexpected model layout {wrong or model.method}; this exporter knows the 1.x TF-IDF + calibrated LinearSVC")
    words = sorted(vec.vocabulary_, key=vec.vocabulary_.get)
    folds = model.calibrated_classifiers_
    _write_npz(
        Path(path),
        vocabulary=np.array(words),
        idf=vec.idf_.astype(np.float64),
        coef=np.stack([c.estimator.coef_[0] for c in folds]).astype(np.float64),
        intercept=np.array([c.estimator.intercept_[0] for c in folds], np.float64),
        sigmoid_a=np.array([c.calibrators[0].a_ for c in folds], np.float64),
        sigmoid_b=np.array([c.calibrators[0].b_ for c in folds], np.float64),
    )
    return {"package": PACKAGE, "version": importlib.metadata.version(PACKAGE), "vocabulary": len(words), "folds": len(folds)}


def _write_npz(path: Path, **arrays: np.ndarray) -> None:
    """np.savez_compressed with fixed entry timestamps, so a rebuild is byte-identical."""
    import io
    import zipfile

    with zipfile.ZipFile(path, "w") as zf:
        for name, arr in arrays.items():
            buf = io.BytesIO()
            np.save(buf, arr, allow_pickle=False)
            info = zipfile.ZipInfo(f"{name}.npy", date_time=(1980, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, buf.getvalue())


def export(path: Path) -> dict[str, Any]:
    """Write the installed alt-profanity-check model to `path` (.npz); returns what it was."""
    import importlib.util

    if importlib.util.find_spec("profanity_check") is None:
        raise InputError(f"--ensemble {PACKAGE} needs the package at build time: pip install '{PACKAGE}>=1.5,<2' (deploy/setup.sh --dev installs it)")
    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_export_worker, str(path)).result()
