"""Document-quality classifiers: fastText on word bigrams, DCLM's recipe.

`refinery models build-quality` (refinery/build/quality.py) trains `__label__hq` (reference prose:
Wikipedia, books) against `__label__lq` (what Refinery's own extract stage
produces from real crawl pages), quantises the model, optionally fits a second
stage over its score and the document's structure (`--stack`,
quality_stack.py), then:

- reports, on rows never trained on (web rows held out by domain), ROC-AUC of
  positives over negatives and, for WCXB pages of held-out domains, of each
  page's gold main content over the same page's boilerplate;
- calibrates: the score's percentiles 0..100 over real pages (`--calibration`;
  WCXB pages of held-out domains are left out) are stored in the manifest.
  `quality_bucket` is the 5%-wide bin of a score among them (0-19, as
  Nemotron-CC bins its ensemble) and `keep_top_fraction` becomes a score
  threshold read off the same table.
"""

from __future__ import annotations

import bisect
import hashlib
import json
import re
from pathlib import Path
from typing import Any

from refinery.models.metrics import percentiles as interpolated_percentiles
from refinery.models import load_fasttext
from refinery.models.quality_features import MAX_CHARS, SENTENCE_END
from refinery.scripts import CJK_LANGS, split_cjk
from refinery.models.quality_stack import Stacker
from refinery.models.registry import read_manifest

HQ, LQ = "__label__hq", "__label__lq"
BUCKETS = 20  # 5%-wide percentile bins

_TOKEN = re.compile(r"\w+|[^\w\s]", re.UNICODE)
_DIGITS = re.compile(r"\d")


def preprocess(text: str, lang: str) -> str:
    """One line of tokens: lower case, digits -> 0, punctuation split, CJK cut into characters.
    Line structure is kept as tokens: `_nl_` between lines, each line tagged by its length
    (`_s_` < 30, `_m_` < 80, `_l_` < 200, `_xl_` characters) and by whether it ends like a
    sentence (`_p_`) or not (`_np_`): many short unpunctuated lines are what boilerplate looks
    like (on validation pages, ROC-AUC of main content over boilerplate: 0.54 with no line
    tokens, 0.90 with `_nl_` only, 0.92 with the length and ending tags)."""
    lines = []
    for line in text[:MAX_CHARS].lower().split("\n"):
        tokens = _TOKEN.findall(_DIGITS.sub("0", line))
        if not tokens:
            continue
        if lang in CJK_LANGS:
            tokens = split_cjk(tokens)
        n = len(line.strip())
        size = "_s_" if n < 30 else "_m_" if n < 80 else "_l_" if n < 200 else "_xl_"
        end = "_p_" if line.rstrip()[-1:] in SENTENCE_END else "_np_"
        lines.append(f"{size} {' '.join(tokens)} {end}")
    return " _nl_ ".join(lines)


def bucket_of(score: float, percentiles: list[float]) -> int:
    """0-19: how many of the 5%, 10%, ..., 95% calibration percentiles the score reaches."""
    edges = percentiles[5:100:5]
    return bisect.bisect_right(edges, score)


def threshold_for_fraction(fraction: float, percentiles: list[float]) -> float:
    """Score at the (1 - fraction) calibration percentile (linear between whole percentiles)."""
    q = 100.0 * (1.0 - fraction)
    lo = int(q)
    hi = min(lo + 1, 100)
    return percentiles[lo] + (percentiles[hi] - percentiles[lo]) * (q - lo)


def percentiles(values: list[float]) -> list[float]:
    """Percentiles 0..100, rounded to 6 digit(s)."""
    return interpolated_percentiles(values, 6)


# ---------------------------------------------------------------- scoring


class QualityModel:
    """A loaded classifier with its calibration percentiles."""

    def __init__(self, directory: Path, lang: str) -> None:
        self.directory = directory
        self.lang = lang
        self.manifest = read_manifest(directory, "quality", lang)
        self.model = load_fasttext(directory / self.manifest["files"]["fasttext"]["path"])
        stack = self.manifest["files"].get("stack")
        self.stacker = Stacker.load(directory / stack["path"]) if stack else None
        self.percentiles: list[float] = self.manifest["calibration"]["percentiles"]

    @property
    def info(self) -> dict[str, Any]:
        return model_info(self.manifest)

    def scores(self, texts: list[str]) -> list[float]:
        """P(high quality) per text (fastText: pass a list, never a single string), through the
        second stage when the model has one."""
        return score_texts(self.model, self.stacker, texts, self.lang)

    def bucket(self, score: float) -> int:
        return bucket_of(score, self.percentiles)


def score_texts(model, stacker: Stacker | None, texts: list[str], lang: str) -> list[float]:
    if not texts:
        return []
    p = p_hq(model, [preprocess(t, lang) for t in texts])
    return stacker.scores(p, texts, lang) if stacker else p


def model_info(m: dict[str, Any]) -> dict[str, Any]:
    """What a commit records: the calibration counts too, since it decides every bucket."""
    info = {
        "name": m["name"],
        "version": m["version"],
        "sha256": m["files"]["fasttext"]["sha256"],
        "calibration_sha256": calibration_digest(m["calibration"]["percentiles"]),
    }
    if "stack" in m["files"]:
        info["stack_sha256"] = m["files"]["stack"]["sha256"]
    return info


def calibration_digest(pcts: list[float]) -> str:
    return hashlib.sha256(json.dumps(pcts).encode()).hexdigest()


def p_hq(model, texts: list[str]) -> list[float]:
    labels, probs = model.predict(texts, k=2)
    out = []
    for lab, prob in zip(labels, probs):
        p = dict(zip(lab, (float(x) for x in prob)))
        s = p[HQ] if HQ in p else 1.0 - p.get(LQ, 0.0)
        out.append(round(min(1.0, max(0.0, s)), 6))
    return out
