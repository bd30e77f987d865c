"""The labelled PII set: real text spans from the pages in ../shared/data, labelled by reviewed rules.

The pages' text is third-party content and the spans are real people's
addresses and numbers, so neither ships with the project: the set is rebuilt
at run time from ../shared/data, and only the hand review ships, as
`bench/data/pii_labels.tsv` (a salted hash of the page and the span, the label,
a note that names no PII).

How a span gets its label (docs: bench/README.md, "PII"):
1. Text (five splits: `tune`, the pages the rules were written against; `held-out`, labelled and
   partly looked at while rules were revised; `fresh-1`, crawls labelled on 2026-12-01 whose phone
   errors informed the 2026-12-02 date/time rules; `fresh-2`, text of none of those, labelled after
   those rules were fixed, whose errors then informed a second round; `fresh-3`, labelled after
   that round and never tuned on): every HTML page's full visible text (resiliparse `extract_plain_text`,
   `main_content=False`, so footers and contact blocks are in), language from
   lid.176 on its first 1,000 characters; plain-text sources (fresh-2's sentences, Wikipedia
   paragraphs and comments) are joined into pages of a few dozen lines, language from the file.
2. Candidates: broad patterns, much wider than the detector's, for anything
   that might be one of the kinds (`CANDIDATES`): every `x@y.z`, every run of
   7-15 digits with phone-like separators, every dotted quad and colon-hex
   group, every 13-19 digit run, every `CC00...` code.
3. Rule labels (`rule_label`), written from the standards, not from the
   detector: an e-mail address has an alphabetic top-level domain that is no
   file extension; an IP is public in IANA's registries; a card number has an
   issuer prefix and Luhn digit; an IBAN its country's length and mod-97
   checksum; a phone number is written with a `+`/`00` country code, or a
   phone word (tel, phone, fax, call, ...) precedes it, or it has the North
   American (xxx) xxx-xxxx shape; dates, years, ranges, ISBN/ISSN/DOI, prices,
   postcodes and version numbers are never phone numbers.
4. Hand review: every candidate of the rare kinds (IP, card, IBAN), every
   span where the rule label and the detector disagree, and a random sample of
   the agreements were read in context; where the reader disagreed with the
   rule, `pii_labels.tsv` holds the reviewed label.  A span the detector
   finds outside every candidate is a false positive unless reviewed positive.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import ipaddress
import re
from dataclasses import dataclass
from typing import Iterator

from common import REPO, SHARED_DATA

LABELS_FILE = REPO / "bench" / "data" / "pii_labels.tsv"
# Tuning set (looked at while writing the detector) and held-out sets (only labelled, never tuned on).
SOURCES = {
    "boilerplate_snippets": ("extraction/boilerplate_snippets/pages", "tune"),
    "wcxb_dev": ("extraction/wcxb_dev/html", "held-out"),
    "article_benchmark": ("extraction/article_benchmark/html", "held-out"),
    # Labelled 2026-12-01 after the last rule change of that day; its false positives (Chinese
    # date-times) were then read, and the 2026-12-02 rules for dates and times were written with them
    # in view: no longer fresh for phone, kept as the split it was.
    "crawls": ("warc/dolma_wget/*.warc.gz warc/resiliparse_tests/warcfile.warc.gz warc/whirlwind_cc/whirlwind.warc.gz", "fresh-1"),
    # fresh-2, built 2026-12-02 after the date/time rules and region list were fixed, from text none of
    # the other splits hold: the ClueWeb09 Japanese pages; Leipzig news/web sentences of 75 languages
    # (50 lines a page); Wikipedia paragraphs of 13 languages (XQuAD, CMRC2018; 10 a page), 188
    # Japanese and every 10th of 3,294 English Wikipedia articles; Civil Comments (CC0; 40 a page).
    "clueweb_ja": ("warc/resiliparse_tests/clueweb-quirk.warc.gz", "fresh-2"),
    "leipzig": ("text:langid/sentences/*.txt", "fresh-2"),
    "wiki": ("text:lm_reference/text/*.txt lm_reference/jawiki/jawiki_sample.jsonl.gz lm_reference/enwiki/enwiki_2015_sample.jsonl.gz", "fresh-2"),
    "comments": ("text:toxicity/civil_comments_spans_en/toxic_spans_comments.jsonl.gz", "fresh-2"),
    # fresh-3, built after the rules that fresh-2's errors led to (the last rule change), labelled
    # once and never tuned on: the other English Wikipedia articles (every 10th from the 6th), every
    # 8th Project Gutenberg book, forum posts, tweets and dialogue turns of five English sets and
    # Weibo comments (40 a page), and the evaluation items of the decontamination sets (40 a page).
    "wiki_b": ("text:lm_reference/enwiki/enwiki_2015_sample.jsonl.gz", "fresh-3"),
    "gutenberg": ("text:lm_reference/gutenberg_en/gutenberg_books.jsonl.gz", "fresh-3"),
    "comments_b": ("text:toxicity/convabuse_en/convabuse.jsonl.gz toxicity/gab_hate_en/ghc_devtest_text_label.jsonl.gz "
                   "toxicity/jigsaw_detox_en/detox_sentences.jsonl.gz toxicity/stormfront_en/stormfront.jsonl.gz "
                   "toxicity/tweeteval_hate_en/tweeteval_hate.jsonl.gz toxicity/swsr_zh/swsr_comments.jsonl.gz", "fresh-3"),
    "benchmarks": ("text:decontamination/decontam_texts.jsonl.gz", "fresh-3"),
}
SPLITS = ("tune", "held-out", "fresh-1", "fresh-2", "fresh-3")
LINES_PER_PAGE = {"leipzig": 50, "wiki": 10, "comments": 40, "comments_b": 40, "benchmarks": 40}
# Files of whole documents (one a page): which of them, as (first, step).
ARTICLES = {"wiki": {"enwiki": (0, 10)}, "wiki_b": {"enwiki": (5, 10)}, "gutenberg": {"gutenberg": (0, 8)}}
SALT = b"refinery-pii-labels-v1"

CANDIDATES = {
    "email": re.compile(r"[\w.+'%-]+@[\w-]+(?:\.[\w-]+)+"),
    "phone": re.compile(r"(?:\+|\(|\b)\d[\d \t\-./()\u00a0]{5,22}\d"),
    "ip": re.compile(r"\b\d{1,3}(?:\.\d{1,3}){3}\b|(?<![\w:])[0-9A-Fa-f]{0,4}(?::[0-9A-Fa-f]{0,4}){2,7}(?![\w:])"),
    "credit_card": re.compile(r"\b\d(?:[ -]?\d){12,18}\b"),
    "iban": re.compile(r"\b[A-Z]{2}\d{2}(?: ?[A-Z0-9]){8,32}\b"),
}
FILE_EXT = {"png", "jpg", "jpeg", "gif", "svg", "webp", "css", "js", "json", "html", "htm", "php", "pdf", "mp4", "woff", "woff2", "ttf"}
PHONE_WORDS = re.compile(
    r"(?:\b(?:tel|telephone|phone|fax|call|mobile|mob|cell|ph|telefon|telefono|teléfono|téléphone|tél|handy|hotline|"
    r"whatsapp|ruf|appel|telefax|fon|fone|tlf|tfn|numéro|number|nummer)|\b[tfmp]\s?[:.]|☎|📞)\W{0,4}$",
    re.IGNORECASE,
)
NANP = re.compile(r"^(?:\+?1[ .-]?)?\(?[2-9]\d{2}\)?[ .-]?[2-9]\d{2}[ .-]\d{4}$")
NOT_PHONE_BEFORE = re.compile(r"(?:isbn|issn|doi|version|v\.|order|invoice|ref|art\.?-?nr|€|\$|£|no\.|nr\.)\W{0,4}$", re.IGNORECASE)
DATE_LIKE = re.compile(r"^\d{1,4}[./-]\d{1,2}[./-]\d{1,4}$|^(?:19|20)\d{2}\s*[-–/]\s*(?:19|20)?\d{2}$")


@dataclass(frozen=True)
class Page:
    source: str
    key: str
    split: str
    text: str
    language: str | None


@dataclass(frozen=True)
class Labelled:
    page: Page
    start: int
    end: int
    kind: str | None  # None: not PII
    origin: str  # "rule" or "review"

    @property
    def span(self) -> str:
        return self.page.text[self.start : self.end]


def span_key(page: Page, span: str) -> str:
    """Salted hash naming a span without its text (the labels file holds no PII)."""
    return hashlib.sha256(SALT + f"{page.source}/{page.key}\0{span}".encode()).hexdigest()[:20]


def pages(limit: int | None = None, sources: set[str] | None = None) -> Iterator[Page]:
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    from refinery.models import lid_model_path, load_fasttext

    lid = load_fasttext(lid_model_path("lid.176.ftz"))
    for source, (rel, split) in SOURCES.items():
        if sources and source not in sources:
            continue
        if rel.startswith("text:"):
            for key, text, lang in _texts(source, rel.removeprefix("text:"), limit):
                yield Page(source, key, split, text, lang)
            continue
        for key, raw in _documents(rel, limit):
            html = bytes_to_str(raw, detect_encoding(raw))
            text = extract_plain_text(html, main_content=False, links=False, alt_texts=False, preserve_formatting=True)
            head = text[:1000].replace("\n", " ")
            labels, _ = lid.predict([head], k=1)
            lang = labels[0][0].removeprefix("__label__") if head.strip() and len(labels[0]) else None
            yield Page(source, key, split, text, lang)


def _documents(rel: str, limit: int | None) -> Iterator[tuple[str, bytes]]:
    """(key, raw HTML) of a folder of pages, or of the HTML responses in the WARC files named."""
    if ".warc" not in rel:
        for path in sorted((SHARED_DATA / rel).glob("*.htm*"))[:limit]:
            yield path.name.split(".")[0], gzip.open(path).read() if path.suffix == ".gz" else path.read_bytes()
        return
    from refinery.readers.warc import iter_records

    n = 0
    for pattern in rel.split():
        for path in sorted(SHARED_DATA.glob(pattern)):
            if "clueweb" in path.name:  # WARC/0.18 with bare-LF HTTP headers: the reader skips it, read it raw
                yield from _clueweb_documents(path, limit)
                continue
            for row in iter_records(str(path), 0, None):
                if row.get("html") and (limit is None or n < limit):
                    n += 1
                    yield f"{path.name}:{row['record_id']}", row["html"]


def _clueweb_documents(path, limit: int | None) -> Iterator[tuple[str, bytes]]:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    n = 0
    for rec in ArchiveIterator(path.open("rb"), record_types=WarcRecordType.response, parse_http=False):
        block = rec.reader.read()
        cut = min((i for i in (block.find(b"\r\n\r\n"), block.find(b"\n\n")) if i >= 0), default=-1)
        body = block[cut:].lstrip(b"\r\n") if cut >= 0 else b""
        if body and (limit is None or n < limit):
            n += 1
            yield f"{path.name}:{rec.record_id}", body


def _texts(source: str, rel: str, limit: int | None) -> Iterator[tuple[str, str, str]]:
    """(key, text, language) of plain-text sources: lines (sentences, paragraphs, comments) joined
    into pages of LINES_PER_PAGE, or one Wikipedia article a page; the language is the file's."""
    import json

    per_page = LINES_PER_PAGE.get(source, 1)
    for pattern in rel.split():
        for path in sorted(SHARED_DATA.glob(pattern)):
            stem = path.name.split("_")[0].split(".")[0]  # de.txt, th_wiki_xquad.txt, jawiki_sample, enwiki_2015
            folder = path.parent.name  # toxicity/swsr_zh, lm_reference/gutenberg_en
            lang = {"jawiki": "ja", "enwiki": "en", "gutenberg": "en", "decontam": "en"}.get(stem, stem)
            if folder[-3:-2] == "_" and folder[-2:].isalpha():
                lang = folder[-2:]
            n = 0
            if path.name.endswith(".jsonl.gz"):
                with gzip.open(path, "rt", encoding="utf-8") as f:
                    rows = [json.loads(line) for line in f]
                if "title" in rows[0]:  # one article or book a page (a slice of the file: ARTICLES)
                    first, step = ARTICLES.get(source, {}).get(stem, (0, 1))
                    for i, row in enumerate(rows[first::step]):
                        if limit is None or n < limit:
                            n += 1
                            yield f"{path.name}:{row.get('id', row.get('gutenberg_id', i))}", row["text"], lang
                    continue
                # An item keeps its own line breaks (a benchmark item's options are one a line: joined
                # with spaces they would read as runs of numbers no page prints); fresh-2's comments
                # were joined with spaces, and are kept so (their spans and hashes were reviewed so).
                lines = [r["text"].replace("\n", " ") if source == "comments" else r["text"] for r in rows]
            else:
                lines = [ln.strip().lstrip("\ufeff") for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
            for i in range(0, len(lines), per_page):
                if limit is None or n < limit:
                    n += 1
                    yield f"{path.name}:{i}", "\n".join(lines[i : i + per_page]), lang


def luhn(d: str) -> bool:
    s = 0
    for i, ch in enumerate(reversed(d)):
        x = int(ch) * (2 if i % 2 else 1)
        s += x - 9 if x > 9 else x
    return s % 10 == 0


def rule_label(page: Page, kind: str, start: int, end: int) -> tuple[str | None, int, int]:
    """The rule label of one candidate and the span it labels (trimmed)."""
    text = page.text
    span = text[start:end]
    if kind == "email":
        span = span.rstrip(".-'")
        tld = span.rsplit(".", 1)[-1]
        ok = tld.isalpha() and len(tld) >= 2 and tld.lower() not in FILE_EXT and not span.startswith(".")
        return ("email" if ok else None), start, start + len(span)
    if kind == "ip":
        try:
            ok = ipaddress.ip_address(span).is_global
        except ValueError:
            ok = False
        if ok and ":" in span and sum(1 for g in span.split(":") if g) < 3:
            ok = False
        before = text[max(0, start - 20) : start].lower()
        if ok and re.search(r"(?:version|\bv|\bver|release|firmware|build|update)\W{0,3}$", before):
            ok = False
        return ("ip" if ok else None), start, end
    if kind == "credit_card":
        return None, start, end  # no rule: every card label comes from the hand review (Luhn-valid ones read)
    if kind == "iban":
        return None, start, end  # no rule: every IBAN label comes from the hand review
    # phone
    span = span.strip(" \t-./(\u00a0")
    start = text.index(span, start)
    end = start + len(span)
    if span.startswith("(") is False and text[start - 1 : start] == "(" and ")" in span:
        start -= 1
        span = text[start:end]
    digits = re.sub(r"\D", "", span)
    before = text[max(0, start - 30) : start]
    if not 7 <= len(digits) <= 15 or DATE_LIKE.match(span) or NOT_PHONE_BEFORE.search(before):
        return None, start, end
    if re.match(r"^(?:\+|00)[1-9]", span) or PHONE_WORDS.search(before) or NANP.match(span):
        return "phone", start, end
    return None, start, end


def load_reviews() -> dict[str, str | None]:
    """span key -> reviewed kind (None: not PII)."""
    out: dict[str, str | None] = {}
    if LABELS_FILE.exists():
        with LABELS_FILE.open(encoding="utf-8") as f:
            for row in csv.DictReader((ln for ln in f if not ln.startswith("#")), delimiter="\t"):
                out[row["key"]] = None if row["label"] == "none" else row["label"]
    return out


def candidates(page: Page) -> list[tuple[str, int, int]]:
    found = []
    for kind, pattern in CANDIDATES.items():
        for m in pattern.finditer(page.text):
            found.append((kind, m.start(), m.end()))
    return found


def label_page(page: Page, reviews: dict[str, str | None]) -> list[Labelled]:
    """Every candidate of the page with its label: the reviewed one where a review exists."""
    out = []
    seen: set[tuple[int, int, str | None]] = set()
    for kind, s, e in candidates(page):
        label, s, e = rule_label(page, kind, s, e)
        if s >= e:
            continue
        key = span_key(page, page.text[s:e])
        origin = "rule"
        if key in reviews:
            label, origin = reviews[key], "review"
        if (s, e, label) in seen:
            continue
        seen.add((s, e, label))
        out.append(Labelled(page, s, e, label, origin))
    return out
