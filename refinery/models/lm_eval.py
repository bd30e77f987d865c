"""Perplexity models measured on documents they were never trained nor calibrated on.

`build-lm --eval-docs` records, in the manifest's `metrics.unseen`, the median perplexity of such
documents against the same words shuffled within each line (same words, lines and sentence
boundaries: only the order differs) and how the calibrated buckets place them.  A held-out split
of the training corpus comes from the same source and overstates what a model does on new text.
"""

from __future__ import annotations

import collections
import statistics
from typing import Any

from refinery.errors import InputError


def shuffle_lines(text: str, lang: str, seed: int) -> str:
    """The same words (characters for CJK) shuffled within each line."""
    from refinery.models.lm import shuffled

    return "\n".join(shuffled(line, lang, seed * 1000 + j) for j, line in enumerate(text.split("\n")))


def unseen_metrics(model, docs: list[str], lang: str) -> dict[str, Any]:
    real = [model.perplexity(d) for d in docs]
    pairs = [(r, model.perplexity(shuffle_lines(d, lang, i))) for i, (d, r) in enumerate(zip(docs, real)) if r]
    pairs = [(r, s) for r, s in pairs if s]
    if len(pairs) < 5:
        raise InputError(f"--eval-docs: only {len(pairs)} scorable {lang} documents (need 5)")
    med_real = statistics.median(r for r, _ in pairs)
    med_shuf = statistics.median(s for _, s in pairs)
    buckets = collections.Counter(model.bucket(r) for r, _ in pairs)
    return {
        "documents": len(pairs),
        "median_perplexity": round(med_real, 1),
        "shuffled_median_perplexity": round(med_shuf, 1),
        "shuffled_over_real": round(med_shuf / med_real, 2),
        "shuffle_unit": "words within each line" if lang not in ("zh", "ja", "th", "ko") else "characters within each line",
        "buckets": {b: buckets.get(b, 0) for b in ("head", "middle", "tail")},
    }


def unseen_summary(manifest: dict[str, Any]) -> str:
    """`refinery models ls` text: held-out shuffled/real ratio, and metrics.unseen when the build had --eval-docs."""
    held = manifest.get("metrics", {}).get("shuffled_over_real")
    text = f"; heldout shuffled/real {held}x" if held else ""
    u = manifest.get("metrics", {}).get("unseen")
    if not u:
        return text
    b = u["buckets"]
    return f"{text}; unseen docs {u['documents']}: shuffled/real {u['shuffled_over_real']}x, head/middle/tail {b['head']}/{b['middle']}/{b['tail']}"
