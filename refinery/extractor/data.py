"""The gold extraction pages in ../shared/data/extraction, the split by domain, and the scores.

Split: WCXB dev pages go to train / tune / test by a hash of their *domain* (crc32 % 10: 0-5 train,
6 tune, 7-9 test), so no site is on both sides.  The trafilatura evaluation pages (boilerplate_snippets,
multilingual, keep/drop snippets only) are split the same way by their host's last two labels
(crc32 % 4: 0-1 train, 2 tune, 3 test).  The article benchmark is never trained or tuned on.

Scores, per page then averaged: token F1 (WCXB's own word_f1: lowercase \\w+ tokens, multiset
overlap), the share of `with` snippets found in the extraction ("kept") and of `without` snippets
found ("leaked"), both as whole-word sequences of those tokens (so "Home" is not leaked by "homemade").
"""

from __future__ import annotations

import gzip
import json
import re
import zlib
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

_WORD = re.compile(r"\w+")


@dataclass
class Page:
    source: str  # wcxb | article | snippets
    id: str
    html: bytes
    gold: str | None = None  # full main text, where the benchmark has one
    page_type: str = ""
    domain: str = ""
    with_: list[str] = field(default_factory=list)
    without: list[str] = field(default_factory=list)


def domain_part(domain: str) -> str:
    b = zlib.crc32(domain.lower().encode()) % 10
    return "train" if b <= 5 else "tune" if b == 6 else "test"


def snippet_part(domain: str) -> str:
    b = zlib.crc32(domain.lower().encode()) % 4
    return "train" if b <= 1 else "tune" if b == 2 else "test"


def site(url: str) -> str:
    """The host's last two labels (`www.spiegel.de` -> `spiegel.de`): pages of one site share a split."""
    host = urlsplit(url).hostname or ""
    return ".".join(host.split(".")[-2:])


def wcxb_pages(base: Path, parts: set[str] | None = None) -> list[Page]:
    out = []
    with gzip.open(base / "ground_truth.jsonl.gz", "rt", encoding="utf-8") as fh:
        for line in fh:
            r = json.loads(line)
            if parts is not None and domain_part(r["domain"]) not in parts:
                continue
            html = gzip.decompress((base / r["html_path"]).read_bytes())
            kind = r["page_type"]["primary"] if isinstance(r["page_type"], dict) else r["page_type"]
            out.append(Page("wcxb", r["file_id"], html, r.get("main_content") or "", kind, r["domain"],
                            list(r.get("with") or []), list(r.get("without") or [])))
    return out


def article_pages(base: Path) -> list[Page]:
    truth = json.loads((base / "ground-truth.json").read_text(encoding="utf-8"))
    out = []
    for key, item in sorted(truth.items()):
        path = base / "html" / f"{key}.html.gz"
        if path.exists():
            out.append(Page("article", key, gzip.decompress(path.read_bytes()), item["articleBody"], "article"))
    return out


def snippet_pages(base: Path, parts: set[str] | None = None) -> list[Page]:
    data = json.loads((base / "evaldata.json").read_text(encoding="utf-8"))
    out = []
    for url, item in sorted(data.items()):
        if parts is not None and snippet_part(site(url)) not in parts:
            continue
        path = base / "pages" / item["file"]  # SOURCE.txt: pages were gzipped in place; the name may lack ".gz"
        if not path.exists():
            path = base / "pages" / (item["file"] + ".gz")
        if path.exists():
            out.append(Page("snippets", item["file"], gzip.decompress(path.read_bytes()), None, "", site(url),
                            with_=list(item.get("with") or []), without=list(item.get("without") or [])))
    return out


def tokens(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def word_f1(pred: str | None, gold: str) -> tuple[float, float, float]:
    p, g = Counter(tokens(pred or "")), Counter(tokens(gold))
    if not g:
        return (1.0, 1.0, 1.0) if not p else (0.0, 0.0, 0.0)
    if not p:
        return 0.0, 0.0, 0.0
    tp = sum((p & g).values())
    precision, recall = tp / sum(p.values()), tp / sum(g.values())
    f1 = 2 * precision * recall / (precision + recall) if tp else 0.0
    return precision, recall, f1


def token_string(text: str) -> str:
    return " " + " ".join(tokens(text)) + " "


def snippet_hits(pred: str | None, page: Page) -> tuple[list[bool], list[bool]]:
    """Per snippet: found in the extraction as a whole-word token sequence ("home" is not found in "homemade")."""
    text = token_string(pred or "")
    found = lambda s: token_string(s) in text  # noqa: E731
    return [found(s) for s in page.with_ if tokens(s)], [found(s) for s in page.without if tokens(s)]


def snippet_rates(pred: str | None, page: Page) -> tuple[float | None, float | None]:
    """(kept, leaked) shares of this page's snippets; None where it has none of that kind."""
    kept, leaked = snippet_hits(pred, page)
    return (sum(kept) / len(kept) if kept else None), (sum(leaked) / len(leaked) if leaked else None)
