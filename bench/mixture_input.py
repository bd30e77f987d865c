#!/usr/bin/env python
"""Input batches for the mixture benchmark: real multilingual documents as JSONL.

    python bench/mixture_input.py --out /tmp/mix-in [--batches 3] [--enwiki 900]

English Wikipedia articles (../shared/data/lm_reference/enwiki) and Wikipedia paragraphs
in de/es/ru/zh/el/vi (XQuAD, lm_reference/text; one paragraph per document), dealt
round-robin into --batches files, so that `refinery run` over them makes one commit each
with every language in every commit.  The store the benchmark reads is then built by the
refinery itself (langid, quality, perplexity buckets, dedup):

    for f in /tmp/mix-in/batch-*.jsonl; do refinery run -q --pipeline web-multilingual --store /tmp/mix-store $f; done
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

DATA = Path(__file__).resolve().parents[1] / ".." / "shared" / "data" / "lm_reference"
LANGS = ("de", "es", "ru", "zh", "el", "vi")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", required=True)
    p.add_argument("--batches", type=int, default=3)
    p.add_argument("--enwiki", type=int, default=900, help="English articles to take")
    p.add_argument("--paragraphs-per-doc", type=int, default=1)
    args = p.parse_args()
    docs = []
    with gzip.open(DATA / "enwiki" / "enwiki_2015_sample.jsonl.gz", "rt", encoding="utf-8") as f:
        for line, _ in zip(f, range(args.enwiki)):
            a = json.loads(line)
            docs.append({"id": f"enwiki-{a['id']}", "url": a["url"], "text": a["text"]})
    for lang in LANGS:
        paras = [ln.strip() for ln in (DATA / "text" / f"{lang}_wiki_xquad.txt").read_text(encoding="utf-8").splitlines() if ln.strip()]
        k = args.paragraphs_per_doc
        for i in range(0, len(paras), k):
            docs.append({"id": f"xquad-{lang}-{i // k}", "url": f"https://{lang}.wikipedia.org/xquad/{i // k}",
                         "text": "\n\n".join(paras[i:i + k])})
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    for b in range(args.batches):
        with open(out / f"batch-{b}.jsonl", "w", encoding="utf-8") as f:
            for d in docs[b::args.batches]:
                f.write(json.dumps(d, ensure_ascii=False) + "\n")
    print(f"{len(docs)} documents in {args.batches} batches under {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
