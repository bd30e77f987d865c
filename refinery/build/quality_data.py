"""Training, evaluation and calibration text for the quality classifier (`build-quality`).

Every row is a `Doc`: text plus, where the source knows it, the page's domain
and page type.  The domain decides the held-out split for web pages (a site is
either trained on or held out, never both), so the build's figures are on
sites the classifier never saw.

Formats (`FORMAT:FILE`):

- `lines`: one document per line (`.gz` allowed);
- `jsonl`: one JSON object per line with a `text` field (`.gz` allowed), e.g.
  lm_reference/enwiki, gutenberg_en;
- `wcxb`: a WCXB `ground_truth.jsonl.gz`: the gold `main_content` of each page
  (reference prose from real pages), with its domain and page type;
- `wcxb-pages`: the HTML pages that same file lists, through Refinery's own
  extract and langid stages (what the pipeline really produces from them);
- `pages`: `.html(.gz)` files, directories of them, or `.warc(.gz)` crawls,
  through the same extract and langid stages;
- `wcxb-pages-resiliparse`, `pages-resiliparse`: the same pages through the
  extract stage's resiliparse extractor.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator
from urllib.parse import urlsplit

from refinery.build.pages import extract_texts
from refinery.errors import InputError
from refinery.files import parse_format_spec
from refinery.scripts import CJK_LANGS

FORMATS = ("lines", "jsonl", "wcxb", "wcxb-pages", "pages", "wcxb-pages-resiliparse", "pages-resiliparse",
           "wcxb-pages-recall", "pages-recall")
# Rows that are Refinery's own extraction of HTML, and the extract-stage options each runs:
# trafilatura as web-en and web-multilingual run it, or the stage's resiliparse extractor
# (more boilerplate leaks through it: FIELD_NOTES.md, 0.12 vs 0.04 leaked).
EXTRACT_SETTINGS = {
    "wcxb-pages": {"favor_precision": True}, "pages": {"favor_precision": True},
    "wcxb-pages-resiliparse": {"extractor": "resiliparse"}, "pages-resiliparse": {"extractor": "resiliparse"},
    "wcxb-pages-recall": {"favor_precision": False, "favor_recall": True}, "pages-recall": {"favor_precision": False, "favor_recall": True},
}
PAGE_FORMATS = tuple(EXTRACT_SETTINGS)
CHUNK_CHARS = 5000  # long documents (books, long articles) are cut into ~5,000-character pieces
MIN_CHARS = 50  # shorter rows carry too little text to learn from (CJK: 20 characters)


@dataclass(frozen=True)
class Doc:
    text: str
    domain: str | None = None
    page_type: str | None = None
    page: str | None = None  # wcxb rows: the page's HTML file, to derive its boilerplate for evaluation


def parse_spec(spec: str, option: str) -> tuple[str, Path]:
    fmt, rest = parse_format_spec(spec, FORMATS, option)
    path = Path(rest)
    if not path.exists():
        raise InputError(f"{option} {spec!r}: {path} not found")
    return fmt, path


def _open_text(path: Path):
    return gzip.open(path, "rt", encoding="utf-8") if path.name.endswith(".gz") else open(path, encoding="utf-8")


def _json_lines(path: Path, fmt: str) -> Iterator[dict]:
    try:
        with _open_text(path) as f:
            for n, line in enumerate(f, 1):
                if not line.strip():
                    continue
                try:
                    obj = json.loads(line)
                except ValueError:
                    raise InputError(f"{path}: line {n} is not JSON; not a {fmt} file") from None
                if not isinstance(obj, dict):
                    raise InputError(f"{path}: line {n} is not a JSON object; not a {fmt} file")
                yield obj
    except (OSError, EOFError, UnicodeDecodeError) as err:
        raise InputError(f"{path}: unreadable as {fmt} ({err})") from None


def domain_of(url: str | None) -> str | None:
    if not url:
        return None
    host = urlsplit(url).hostname or ""
    return host.removeprefix("www.") or None


def chunk(text: str, max_chars: int = CHUNK_CHARS) -> list[str]:
    """Pieces of at most ~max_chars on paragraph boundaries (a book is many documents, not one)."""
    if len(text) <= max_chars:
        return [text]
    out, cur, size = [], [], 0
    for para in text.split("\n"):
        if cur and size + len(para) > max_chars:
            out.append("\n".join(cur))
            cur, size = [], 0
        cur.append(para[: max_chars * 2])
        size += len(para) + 1
    if cur:
        out.append("\n".join(cur))
    return out


_BLANK = re.compile(r"\n\s*\n")


def unwrap(text: str) -> str:
    """Hard-wrapped text (Project Gutenberg: ~70-character lines, blank line between paragraphs)
    becomes one line per paragraph, as web extraction and Wikipedia give it."""
    text = text.replace("\r\n", "\n").replace("\r", "\n")
    lines = [ln for ln in text.split("\n") if ln.strip()]
    if len(lines) < 10 or "\n\n" not in text:
        return text
    lengths = sorted(len(ln) for ln in lines)
    if lengths[len(lengths) // 2] > 100:
        return text
    return "\n".join(" ".join(p.split()) for p in _BLANK.split(text) if p.strip())


def read_docs(fmt: str, path: Path, lang: str) -> list[Doc]:
    """Rows of one input; raises InputError naming the file when it is not in that format."""
    docs: list[Doc] = []
    if fmt == "lines":
        try:
            with _open_text(path) as f:
                docs = [Doc(ln.strip()) for ln in f if ln.strip()]
        except (OSError, EOFError, UnicodeDecodeError) as err:
            raise InputError(f"{path}: unreadable as lines ({err})") from None
    elif fmt == "jsonl":
        for n, obj in enumerate(_json_lines(path, fmt), 1):
            if not isinstance(obj.get("text"), str):
                raise InputError(f"{path}: record {n} has no string 'text' field; not a jsonl text file")
            docs.extend(Doc(c) for c in chunk(unwrap(obj["text"]).strip()))
    elif fmt.startswith("wcxb"):
        records = list(_json_lines(path, fmt))
        for n, obj in enumerate(records, 1):
            if not isinstance(obj.get("html_path"), str) or not isinstance(obj.get("main_content", ""), str):
                raise InputError(f"{path}: record {n} lacks html_path; not a WCXB ground-truth file")
        records = [r for r in records if r.get("main_content")]  # 2 WCXB dev records have no gold text
        if fmt == "wcxb":
            for obj in records:
                page = path.parent / obj["html_path"]
                docs.append(Doc(obj["main_content"].strip(), domain_of(obj.get("url")) or obj.get("domain"), _page_type(obj), str(page) if page.is_file() else None))
        else:
            pages = []
            for obj in records:
                page = path.parent / obj["html_path"]
                if not page.is_file():
                    raise InputError(f"{path}: page {page} it lists is missing")
                pages.append((str(page), obj.get("url"), page.read_bytes(), _page_type(obj)))
            docs = extract_pages(pages, lang, EXTRACT_SETTINGS[fmt])
    else:
        docs = extract_pages(list(iter_pages(path)), lang, EXTRACT_SETTINGS[fmt])
    least = 20 if lang in CJK_LANGS else MIN_CHARS
    return [d for d in docs if len(d.text) >= least]


def _page_type(obj: dict) -> str | None:
    t = obj.get("page_type")
    if isinstance(t, dict):  # a few WCXB records carry {"primary": ...}
        t = t.get("primary")
    return str(t) if t else None


def iter_pages(path: Path) -> Iterator[tuple[str, str | None, bytes, str | None]]:
    """(uri, url, html bytes, page type) of every HTML page under `path` (files, dirs, WARCs)."""
    files = sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    found = False
    for f in files:
        name = f.name.lower()
        if name.endswith((".warc", ".warc.gz")):
            from refinery.readers import warc

            for rec in warc.iter_records(str(f), 0, None):
                if rec.get("html") is not None and rec.get("read_error") is None:
                    found = True
                    yield f"{f}#{rec['record_id']}", rec.get("url"), rec["html"], None
        elif name.endswith((".html", ".htm", ".html.gz", ".htm.gz")):
            found = True
            data = f.read_bytes()
            yield str(f), None, gzip.decompress(data) if name.endswith(".gz") else data, None
        elif not path.is_dir():
            raise InputError(f"{f}: expected .html(.gz) pages or .warc(.gz) crawls for the pages format")
    if not found:
        raise InputError(f"{path}: no HTML pages found (pages format: .html(.gz) files or .warc(.gz) crawls)")


def extract_pages(pages: list[tuple[str, str | None, bytes, str | None]], lang: str, settings: dict) -> list[Doc]:
    """Refinery's own extract + langid stages over real pages: the text the pipeline meets.

    Runs in a fresh child process, so the process that trains fastText afterwards has run no
    extraction: after one that had, training can diverge (`Encountered NaN`) on rows that train
    cleanly elsewhere (docs/models.md)."""
    import multiprocessing
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=1, mp_context=multiprocessing.get_context("spawn")) as pool:
        return pool.submit(_extracted_docs, pages, lang, settings).result()


def _extracted_docs(pages: list[tuple[str, str | None, bytes, str | None]], lang: str, settings: dict) -> list[Doc]:
    htmls = [p[2] if p[2][:2] != b"\x1f\x8b" else gzip.decompress(p[2]) for p in pages]
    kept = extract_texts([(p[0], p[1], h) for p, h in zip(pages, htmls)], lang, settings)
    return [Doc(t, domain_of(pages[i][1]), pages[i][3]) for i, t in kept]


def heldout_bucket(key: str) -> int:
    return int.from_bytes(hashlib.sha1(key.encode("utf-8")).digest()[:4], "big") % 100


def is_heldout(doc: Doc, percent: int, domain_percent: int) -> bool:
    """Web rows split by domain (a site is trained on or held out whole), others by their text."""
    if doc.domain:
        return heldout_bucket(doc.domain) < domain_percent
    return heldout_bucket(" ".join(doc.text.lower().split())) < percent


def read_page(path: str) -> bytes:
    data = Path(path).read_bytes()
    return gzip.decompress(data) if data[:2] == b"\x1f\x8b" else data


_WORD = re.compile(r"\w+", re.UNICODE)


def _words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def boilerplate(html: bytes, main_content: str) -> str:
    """The page's text outside its gold main content: the lines of the full-page text that are
    not main content (menus, footers, related links, cookie and share bars...).  A line of four
    or more words is main content when half its word trigrams occur in the gold text (the gold
    text is re-wrapped and re-typeset, so exact line matches miss); a shorter line when it is a
    whole line of the gold text."""
    from resiliparse.extract.html2text import extract_plain_text
    from resiliparse.parse.encoding import bytes_to_str, detect_encoding

    full = extract_plain_text(bytes_to_str(html, detect_encoding(html)), main_content=False, alt_texts=False)
    gold = _words(main_content)
    trigrams = set(zip(gold, gold[1:], gold[2:]))
    gold_lines = {" ".join(_words(ln)) for ln in main_content.split("\n")}
    lines = []
    for line in full.split("\n"):
        words = _words(line)
        if not words:
            continue
        if len(words) >= 4:
            grams = list(zip(words, words[1:], words[2:]))
            if sum(g in trigrams for g in grams) >= 0.5 * len(grams):
                continue
        elif " ".join(words) in gold_lines:
            continue
        lines.append(line.strip())
    return "\n".join(lines)
