"""Real page texts from ../shared/data, by set, for false-positive and throughput measurements.

Each loader yields (doc_id, text, language or None).  Book-length texts are cut
into ~5,000-character pages (a web document's size), so a false positive names
the passage, not the book.
"""

from __future__ import annotations

import csv
import gzip
import json
from pathlib import Path
from typing import Iterator

from bench.common import SHARED_DATA

PAGE_CHARS = 5000


def _jsonl(path: Path) -> Iterator[dict]:
    with gzip.open(path, "rt", encoding="utf-8") if path.suffix == ".gz" else open(path, encoding="utf-8") as f:
        for line in f:
            if line.strip():
                yield json.loads(line)


def _pages(text: str) -> Iterator[str]:
    for i in range(0, len(text), PAGE_CHARS):
        yield text[i : i + PAGE_CHARS]


def wcxb() -> Iterator[tuple[str, str, str | None]]:
    for r in _jsonl(SHARED_DATA / "extraction/wcxb_dev/ground_truth.jsonl.gz"):
        if r.get("main_content"):
            yield f"wcxb/{r['file_id']}", r["main_content"], None


def article_benchmark():
    gt = json.loads((SHARED_DATA / "extraction/article_benchmark/ground-truth.json").read_text(encoding="utf-8"))
    for k, v in sorted(gt.items()):
        if v.get("articleBody"):
            yield f"article/{k[:12]}", v["articleBody"], None


def enwiki():
    for r in _jsonl(SHARED_DATA / "lm_reference/enwiki/enwiki_2015_sample.jsonl.gz"):
        for j, page in enumerate(_pages(r["text"])):
            yield f"enwiki/{r['id']}/{j}", page, "en"


def gutenberg():
    for r in _jsonl(SHARED_DATA / "lm_reference/gutenberg_en/gutenberg_books.jsonl.gz"):
        for j, page in enumerate(_pages(r["text"])):
            yield f"gutenberg/{r['gutenberg_id']}/{j}", page, "en"


def jawiki():
    for r in _jsonl(SHARED_DATA / "lm_reference/jawiki/jawiki_sample.jsonl.gz"):
        for j, page in enumerate(_pages(r["text"])):
            yield f"jawiki/{r['id']}/{j}", page, "ja"


def neardup():
    for r in _jsonl(SHARED_DATA / "neardup/clusters.jsonl.gz"):
        yield f"neardup/{r['doc_id']}", r["text"], r.get("lang")


def langid_sentences():
    """Each language's sentences, 20 to a document."""
    for p in sorted((SHARED_DATA / "langid/sentences").glob("*.txt")):
        lines = [ln.strip() for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()]
        for j in range(0, len(lines), 20):
            yield f"langid/{p.stem}/{j}", "\n".join(lines[j : j + 20]), p.stem


def lm_text():
    for p in sorted((SHARED_DATA / "lm_reference/text").glob("*.txt")):
        lang = p.stem.split("_")[0]
        for j, page in enumerate(_pages(p.read_text(encoding="utf-8"))):
            yield f"lmtext/{p.stem}/{j}", page, lang


def toxicity():
    """Every JSONL comment set (tweets, forum posts) as documents."""
    for p in sorted((SHARED_DATA / "toxicity").glob("*/*.jsonl*")):
        for j, r in enumerate(_jsonl(p)):
            if isinstance(r.get("text"), str) and r["text"]:
                yield f"toxicity/{p.parent.name}/{j}", r["text"], None


def warc_pages():
    """The real WARC pages, extracted with resiliparse (fast; the text a page yields)."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType
    from resiliparse.extract.html2text import extract_plain_text

    from refinery.stages.extract import decode_html

    for d in ("real_pages", "resiliparse_tests", "dolma_wget", "whirlwind_cc"):
        for p in sorted((SHARED_DATA / "warc" / d).glob("*.warc.gz")):
            try:
                for j, rec in enumerate(ArchiveIterator(open(p, "rb"), record_types=WarcRecordType.response)):
                    html = rec.reader.read()  # parse_http (the default): the body after the HTTP headers
                    try:
                        text = extract_plain_text(decode_html(html, None), main_content=True)
                    except Exception:  # noqa: BLE001
                        continue
                    if text:
                        yield f"warc/{d}/{p.name}/{j}", text, None
            except Exception:  # noqa: BLE001  (the truncated test WARC)
                continue


SETS = {
    "wcxb_dev": wcxb, "article_benchmark": article_benchmark, "warc_pages": warc_pages, "enwiki": enwiki,
    "gutenberg_en": gutenberg, "jawiki": jawiki, "neardup": neardup, "langid_sentences": langid_sentences,
    "lm_reference_text": lm_text, "toxicity": toxicity,
}  # fmt: skip
