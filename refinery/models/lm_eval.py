"""Perplexity models measured on documents they were never trained nor calibrated on.

`build-lm --eval-docs` records, in the manifest's `metrics.unseen`, the median perplexity of such
documents against the same words shuffled within each line (same words, lines and sentence
boundaries: only the order differs) and how the calibrated buckets place them.  A held-out split
of the training corpus comes from the same source and overstates what a model does on new text.
"""

from __future__ import annotations

import collections
import json
import statistics
from pathlib import Path
from typing import Any

from refinery.errors import InputError
from refinery.models import file_sha256, lid_model_path, load_fasttext


def read_eval_docs(specs: list[str], lang: str) -> tuple[list[str], list[dict]]:
    """Documents of `lang`: `.json` ground-truth files of the article-benchmark kind
    (`{key: {"articleBody": ...}}`, kept when fastText lid.176 says `lang`), else whatever
    `--calibration` accepts (HTML pages through extract + langid, .txt, .jsonl)."""
    from refinery.models.lm import read_calibration

    docs: list[str] = []
    sources: list[dict] = []
    rest = []
    lid = None
    for spec in specs:
        path = Path(spec)
        if path.suffix != ".json":
            rest.append(spec)
            continue
        if not path.is_file():
            raise InputError(f"eval document file {path} not found")
        try:
            records = json.loads(path.read_text(encoding="utf-8"))
            bodies = [r["articleBody"] for _, r in sorted(records.items()) if (r.get("articleBody") or "").strip()]
        except (json.JSONDecodeError, AttributeError, KeyError, TypeError, UnicodeDecodeError):
            raise InputError(f"{path}: expected a JSON object of {{key: {{\"articleBody\": text}}}} (article benchmark ground truth)") from None
        lid = lid or load_fasttext(lid_model_path("lid.176.ftz"))
        labels = lid.predict([" ".join(b[:4000].split()) for b in bodies])[0] if bodies else []
        kept = [b for b, lab in zip(bodies, labels) if lab[0] == f"__label__{lang}"]
        docs.extend(kept)
        sources.append({"path": str(path), "sha256": file_sha256(str(path)), "documents": len(kept), "of": len(bodies)})
    if rest:
        more, more_sources = read_calibration(rest, lang, 1)
        docs.extend(more)
        sources.extend(more_sources)
    return docs, sources


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
