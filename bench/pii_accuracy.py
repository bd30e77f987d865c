"""PII stage: precision and recall per kind on the labelled set of real page text.

The set is rebuilt from ../shared/data (bench/pii_labelset.py explains the
labels); the detector is the one the `pii` stage runs, with web-en's options.
`tune` is the set the detection rules were written against, `held-out` the
sets labelled and (for phone and IP) partly looked at while rules were revised, `fresh-1`
crawls whose phone errors informed the 2026-12-02 date/time rules, `fresh-2` text labelled
only after those rules were fixed (its errors then informed a second round), `fresh-3` text
labelled after that round and never tuned on (bench/README.md).  Also prints the stage's speed (documents and MB per
CPU-second, on the held-out pages).

    .venv/bin/python bench/pii_accuracy.py [--limit N] [--errors]
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import shared, table  # noqa: E402
from pii_planted import FORMATS_NOTE, plant  # noqa: E402
from pii_labelset import SOURCES, SPLITS, candidates, label_page, load_reviews, luhn, pages, rule_label, span_key  # noqa: E402

from refinery.pii.detect import KINDS, find_pii  # noqa: E402
from refinery.pipeline_files import resolve  # noqa: E402
from refinery.stages.pii import PiiStage  # noqa: E402


def context(text: str, s: int, e: int, width: int = 60) -> str:
    return (text[max(0, s - width) : s] + "[[" + text[s:e] + "]]" + text[e : e + width]).replace("\n", " | ")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--limit", type=int, default=None, help="pages per source (default: all)")
    ap.add_argument("--errors", action="store_true", help="print every miss and false positive in context (review aid)")
    ap.add_argument("--review", default=None, help="print candidates of these kinds for hand review (comma list)")
    ap.add_argument("--sources", default=None, help="only these sources (comma list: " + ", ".join(SOURCES) + ")")
    ap.add_argument("--sample", type=int, default=0, help="also print this many random true positives per kind")
    args = ap.parse_args()
    for rel, _ in SOURCES.values():
        shared(rel.removeprefix("text:").split("/")[0])
    spec = resolve("web-en").stage("pii")
    if spec is None:
        sys.exit("web-en has no pii stage")
    stage = PiiStage(spec.options)
    stage.setup()
    reviews = load_reviews()
    tp: Counter = Counter()
    fp: Counter = Counter()
    fn: Counter = Counter()
    gold_n: Counter = Counter()
    reviewed: Counter = Counter()
    seconds = 0.0
    chars = docs = 0
    n_pages: Counter = Counter()
    tps: dict[str, list[str]] = {k: [] for k in KINDS}
    held_out = []
    review_kinds = set(args.review.split(",")) if args.review else set()
    for page in pages(args.limit, set(args.sources.split(",")) if args.sources else None):
        split = page.split
        n_pages[split] += 1
        labelled = label_page(page, reviews)
        gold = {(x.start, x.end, x.kind) for x in labelled if x.kind}
        for x in labelled:
            if x.origin == "review":
                reviewed[split, x.kind or "none"] += 1
        t0 = time.process_time()
        found = find_pii(page.text, stage.options.kinds, stage.regions(page.language))
        dt = time.process_time() - t0
        if split == "held-out":
            held_out.append(page)
            seconds += dt
            chars += len(page.text.encode())
            docs += 1
        # A review of a detected span overrides the candidates' labels where they overlap it.
        for d in found:
            rev = reviews.get(span_key(page, page.text[d.start : d.end]), "absent")
            if rev == "absent":
                continue
            overlapping = {g for g in gold if g[2] == d.kind and g[0] < d.end and d.start < g[1]}
            if rev is None:
                gold -= overlapping
            elif rev == d.kind and not overlapping:
                gold.add((d.start, d.end, d.kind))
            reviewed[split, rev or "none"] += 1
        matched: set[tuple[int, int, str]] = set()
        for d in found:
            hit = next((g for g in gold if g[2] == d.kind and g[0] < d.end and d.start < g[1] and g not in matched), None)
            if hit:
                matched.add(hit)
                tp[split, d.kind] += 1
                if args.sample:
                    tps[d.kind].append(f"{page.source}/{page.key} {span_key(page, page.text[d.start:d.end])} {context(page.text, d.start, d.end)}")
            elif not any(g[2] == d.kind and g[0] < d.end and d.start < g[1] for g in gold):
                fp[split, d.kind] += 1
                if args.errors:
                    k = span_key(page, page.text[d.start : d.end])
                    print(f"FP {d.kind:11} {split:8} {k} {page.language} {context(page.text, d.start, d.end)}")
        for g in gold:
            gold_n[split, g[2]] += 1
            if g not in matched:
                fn[split, g[2]] += 1
                if args.errors:
                    k = span_key(page, page.text[g[0] : g[1]])
                    print(f"FN {g[2]:11} {split:8} {k} {page.language} {context(page.text, g[0], g[1])}")
        if review_kinds:
            done = set()
            for kind, s, e in candidates(page):
                if kind in review_kinds:
                    lab, s, e = rule_label(page, kind, s, e)
                    if kind == "credit_card" and not luhn(re.sub(r"\D", "", page.text[s:e])):
                        continue  # a card number fails no check digit: only Luhn-valid runs are read
                    k = span_key(page, page.text[s:e])
                    if k in done:
                        continue
                    done.add(k)
                    print(f"RV {kind:11} {split:8} {k} rule={lab} rev={reviews.get(k, '-')} {context(page.text, s, e)}")
    if args.sample:
        rng = random.Random(17)
        for kind, items in tps.items():
            for line in rng.sample(items, min(args.sample, len(items))):
                print(f"TP {kind:11} {line}")
    rows = []
    for split in SPLITS:
        for kind in KINDS:
            t, f, n = tp[split, kind], fp[split, kind], fn[split, kind]
            prec = t / (t + f) if t + f else float("nan")
            rec = t / (t + n) if t + n else float("nan")
            rows.append((split, kind, gold_n[split, kind], t, f, n, prec, rec, reviewed[split, kind]))
    print(f"pages: {dict(n_pages)} (tune: boilerplate_snippets; held-out: wcxb_dev, article_benchmark; "
          "fresh-1: the dolma wget, Common Crawl and whirlwind WARCs; fresh-2: ClueWeb09-ja pages, Leipzig sentences, "
          "Wikipedia, Civil Comments; fresh-3: other Wikipedia articles, Gutenberg books, forum/tweet/Weibo sets, benchmark items)")
    print(table(rows, ("split", "kind", "gold", "TP", "FP", "FN", "precision", "recall", "reviewed")))
    print("reviewed as not PII: " + ", ".join(f"{sp} {reviewed[sp, 'none']}" for sp in SPLITS))
    rng = random.Random(17)
    found_n: Counter = Counter()
    planted_n: Counter = Counter()
    for page in held_out:
        regions = stage.regions(page.language)
        text, spans = plant(page.text, rng, regions)
        found = find_pii(text, stage.options.kinds, regions)
        for s0, e0, kind in spans:
            sub = kind
            if kind == "ip":
                sub = "ip (IPv6)" if ":" in text[s0:e0] else "ip (IPv4)"
            planted_n[sub] += 1
            if any(d.kind == kind and d.start <= s0 and d.end >= e0 for d in found):
                found_n[sub] += 1
    rows = [(k, planted_n[k], found_n[k], found_n[k] / planted_n[k]) for k in sorted(planted_n)]
    if rows:
        print(f"\nplanted (synthetic items in the {len(held_out)} held-out pages; {FORMATS_NOTE}): recall")
        print(table(rows, ("kind", "planted", "found", "recall")))
    if seconds:
        print(f"detector speed (held-out, one core): {docs / seconds:.0f} docs/CPU-s, {chars / seconds / 1e6:.2f} MB/CPU-s "
              f"({docs} pages, {chars / docs / 1000:.1f} KB mean)")


if __name__ == "__main__":
    main()
