"""Perplexity and toxicity acceptance benchmark: prints the tables recorded in bench/README.md.

    .venv/bin/python bench/models_bench.py [--data ../shared/data]

1. Held-out reference paragraphs (the build's own hash split, never trained on):
   median perplexity of the real paragraphs vs the same paragraphs shuffled
   (words; characters for Chinese).
2. Bucket shares of real article bodies: the article benchmark's ground-truth
   `articleBody` texts and Refinery's own extraction of the same pages.
3. Toxicity ROC-AUC / precision / recall on held-out rows (English: the build's
   10% hash split of Davidson + OLID; Chinese: COLD dev), and alt-profanity-check
   on the same English rows when it is installed.
"""

from __future__ import annotations

import argparse
import collections
import gzip
import json
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED_DATA  # noqa: E402
from refinery.models import lid_model_path, load_fasttext  # noqa: E402
from refinery.models.lm import LanguageModel, parse_corpus_spec, read_corpus, shuffled, split_corpus  # noqa: E402
from refinery.models.metrics import classification_report  # noqa: E402
from refinery.models.registry import DEFAULT_ROOT, available, read_manifest  # noqa: E402
from refinery.models.textnorm import paragraphs  # noqa: E402
from refinery.models.toxicity import CLEAN_FORMATS, ToxicityModel, parse_data_spec, read_labelled, split_rows  # noqa: E402


def rebase(path: str, data: Path) -> str:
    """Manifest paths name the data folder the model was built from; find the same file under `data`."""
    parts = Path(path).parts
    for i, part in enumerate(parts):
        if part in ("lm_reference", "toxicity", "langid"):
            return str(data.joinpath(*parts[i:]))
    return path


def heldout_paragraphs(lang: str, data: Path) -> list[str]:
    m = read_manifest(DEFAULT_ROOT / "lm" / lang, "lm", lang)
    paras: list[str] = []
    for src in m["training_data"]:
        fmt, path = parse_corpus_spec(f"{src['format']}:{rebase(src['path'], data)}")
        paras.extend(read_corpus(fmt, path))
    return split_corpus(paras, m["split"]["heldout_percent"])[1]


def table(rows: list[list], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    lines = [fmt.format(*header), "  ".join("-" * w for w in widths)]
    lines += [fmt.format(*[str(x) for x in r]) for r in rows]
    return "\n".join(lines)


def bench_shuffle(data: Path) -> None:
    rows = []
    for lang in available(DEFAULT_ROOT, "lm"):
        model = LanguageModel(DEFAULT_ROOT / "lm" / lang, lang)
        held = heldout_paragraphs(lang, data)
        real = statistics.median(p for p in (model.perplexity(t) for t in held) if p)
        shuf = statistics.median(p for p in (model.perplexity(shuffled(t, lang, i)) for i, t in enumerate(held)) if p)
        target = ">= 3" if lang in ("en", "zh") else "-"
        rows.append([lang, len(held), f"{real:.1f}", f"{shuf:.1f}", f"{shuf / real:.2f}", target])
    print("## 1. Held-out Wikipedia paragraphs: real vs shuffled (words; characters for zh)\n")
    print(table(rows, ["lang", "paragraphs", "median ppl real", "median ppl shuffled", "ratio", "acceptance"]))


def bench_articles(data: Path) -> None:
    import trafilatura

    bench = data / "extraction" / "article_benchmark"
    truth = json.loads((bench / "ground-truth.json").read_text(encoding="utf-8"))
    lid = load_fasttext(lid_model_path("lid.176.ftz"))
    models = {lang: LanguageModel(DEFAULT_ROOT / "lm" / lang, lang) for lang in available(DEFAULT_ROOT, "lm")}
    counts: dict[str, collections.Counter] = {"ground truth articleBody": collections.Counter(), "Refinery extraction": collections.Counter()}
    score_seconds, score_chars, score_docs = 0.0, 0, 0
    for sha, rec in sorted(truth.items()):
        page = bench / "html" / f"{sha}.html.gz"
        extracted = trafilatura.extract(gzip.decompress(page.read_bytes()).decode("utf-8", "replace"), favor_precision=True) if page.is_file() else None
        for kind, text in (("ground truth articleBody", rec["articleBody"]), ("Refinery extraction", extracted)):
            if not text or not text.strip():
                counts[kind]["(no text)"] += 1
                continue
            lang = lid.predict([" ".join(text[:4000].split())])[0][0][0].removeprefix("__label__")
            model = models.get(lang)
            if model is None:
                counts[kind][f"no model ({lang})"] += 1
                continue
            start = time.perf_counter()
            ppl = model.perplexity(text)
            score_seconds += time.perf_counter() - start
            score_chars += len(text)
            score_docs += 1
            counts[kind][model.bucket(ppl)] += 1
    print("\n## 2. Buckets of real article bodies (article_benchmark, 92 pages)\n")
    rows = []
    for kind, c in counts.items():
        scored = c["head"] + c["middle"] + c["tail"]
        others = ", ".join(f"{k} {v}" for k, v in sorted(c.items()) if k not in ("head", "middle", "tail"))
        rows.append([kind, scored, f"{c['head']} ({c['head'] / scored:.0%})", f"{c['middle']} ({c['middle'] / scored:.0%})", f"{c['tail']} ({c['tail'] / scored:.0%})", others])
    print(table(rows, ["text", "scored", "head", "middle", "tail", "not scored"]))
    print(f"\nperplexity scoring speed (one core): {score_docs / score_seconds:,.0f} docs/s, {score_chars / score_seconds / 1e6:.1f} M chars/s")


def bench_toxicity(data: Path) -> None:
    print("\n## 3. Toxicity on held-out rows\n")
    rows = []
    en_rows = []
    for lang in available(DEFAULT_ROOT, "toxicity"):
        m = read_manifest(DEFAULT_ROOT / "toxicity" / lang, "toxicity", lang)
        if m["eval_data"]:
            held = [r for src in m["eval_data"] for r in read_labelled(*parse_data_spec(f"{src['format']}:{rebase(src['path'], data)}"))]
            where = "eval files"
        else:
            # labelled sources only: clean-* prose rows are easy negatives that would flatter ROC-AUC
            allrows = [r for src in m["training_data"] if src["format"] not in CLEAN_FORMATS
                       for r in read_labelled(*parse_data_spec(f"{src['format']}:{rebase(src['path'], data)}"))]
            held = split_rows(allrows, m["split"]["heldout_percent"])[1]
            where = f"{m['split']['heldout_percent']}% hash split"
        model = ToxicityModel(DEFAULT_ROOT / "toxicity" / lang, lang)
        texts, labels = [t for t, _ in held], [y for _, y in held]
        start = time.perf_counter()
        scores = model.scores(texts)
        rate = len(texts) / (time.perf_counter() - start)
        rep = classification_report(labels, scores, 0.5)
        target = {"en": ">= 0.85", "zh": ">= 0.80"}.get(lang, "-")
        rows.append([f"Refinery toxicity-{lang}", where, rep["rows"], rep["positives"], rep["precision"], rep["recall"], rep["roc_auc"], target, f"{rate:,.0f}"])
        if lang == "en":
            en_rows = held
    if en_rows:
        # Per source too: alt-profanity-check was itself trained on Davidson's tweets (its README),
        # so only the OLID rows are unseen by both models.
        m = read_manifest(DEFAULT_ROOT / "toxicity" / "en", "toxicity", "en")
        by_source = {
            src["format"]: split_rows(read_labelled(*parse_data_spec(f"{src['format']}:{rebase(src['path'], data)}")), m["split"]["heldout_percent"])[1]
            for src in m["training_data"] if src["format"] not in CLEAN_FORMATS
        }
        en_model = ToxicityModel(DEFAULT_ROOT / "toxicity" / "en", "en")
        try:
            from profanity_check import predict_prob
        except Exception as err:  # noqa: BLE001 - the comparison is optional
            predict_prob = None
            rows.append(["alt-profanity-check", f"unavailable: {err}"[:60], "-", "-", "-", "-", "-", "-", "-"])
        sets = [("same en rows", en_rows)] + [(f"  only {name} rows", part) for name, part in by_source.items()]
        for label, part in sets:
            texts, labels = [t for t, _ in part], [y for _, y in part]
            if label != "same en rows":
                rep = classification_report(labels, en_model.scores(texts), 0.5)
                rows.append(["Refinery toxicity-en", label, rep["rows"], rep["positives"], rep["precision"], rep["recall"], rep["roc_auc"], "-", "-"])
            if predict_prob is not None:
                start = time.perf_counter()
                scores = list(predict_prob(texts))
                rate = len(texts) / (time.perf_counter() - start)
                rep = classification_report(labels, scores, 0.5)
                rows.append(["alt-profanity-check", label, rep["rows"], rep["positives"], rep["precision"], rep["recall"], rep["roc_auc"], "-", f"{rate:,.0f}"])
    print(table(rows, ["model", "held-out rows", "rows", "toxic", "precision@0.5", "recall@0.5", "ROC-AUC", "acceptance", "rows/s"]))
    if en_rows:
        bench_clean_prose(data, predict_prob)


def bench_clean_prose(data: Path, predict_prob) -> None:
    """False positives on clean prose no model trained on: news/blog article paragraphs, XQuAD en."""
    truth = json.loads((data / "extraction" / "article_benchmark" / "ground-truth.json").read_text(encoding="utf-8"))
    sets = {
        "article-benchmark paragraphs": [p for r in truth.values() for p in paragraphs(r["articleBody"]) if len(p) >= 20],
        "XQuAD en Wikipedia paragraphs": read_corpus("lines", data / "lm_reference" / "text" / "en_wiki_xquad.txt"),
    }
    model = ToxicityModel(DEFAULT_ROOT / "toxicity" / "en", "en")
    rows = []
    for name, texts in sets.items():
        ours = sum(s >= 0.5 for s in model.scores(texts)) / len(texts)
        alt = f"{sum(s >= 0.5 for s in predict_prob(texts)) / len(texts):.2%}" if predict_prob else "-"
        rows.append([name, len(texts), f"{ours:.2%}", alt])
    print("\nClean prose flagged toxic at 0.5 (false-positive rate; neither model trained on these):\n")
    print(table(rows, ["text", "rows", "Refinery toxicity-en", "alt-profanity-check"]))


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(SHARED_DATA), help="shared data folder (default: $REFINERY_SHARED_DATA or ../shared/data)")
    args = ap.parse_args()
    data = Path(args.data)
    if not data.is_dir():
        sys.exit(f"shared data not found at {data}; pass --data")
    bench_shuffle(data)
    bench_articles(data)
    bench_toxicity(data)
    from quality_bench import run as bench_quality  # the quality classifier's own module

    print()
    bench_quality(data)


if __name__ == "__main__":
    main()
