"""A small sample crawl batch that Refinery generates itself (no download, no copied data).

Pages are built from the documentation strings of Python's standard library
(PSF licence) wrapped in typical site chrome (navigation, cookie banner,
footer), plus pages made to be dropped: a copy of another page, non-English
pages, a navigation-only page and an empty page.  Generation is
deterministic, so the demo's output is the same on every machine.
"""

from __future__ import annotations

import gzip
import html
import importlib
import io
import uuid
from pathlib import Path

MODULES = [
    "argparse", "json", "csv", "collections", "functools", "heapq", "bisect", "difflib",
    "textwrap", "decimal", "fractions", "statistics", "zipfile", "tarfile", "logging",
    "pickle", "shelve", "sqlite3", "threading", "queue", "sched", "calendar", "contextlib",
    "dataclasses", "enum", "gettext", "inspect", "ipaddress", "locale", "mailbox",
    "optparse", "pprint", "shlex", "smtplib", "socketserver", "tempfile", "timeit",
    "tokenize", "turtle", "typing", "uuid", "warnings", "weakref", "zipapp",
]

NON_ENGLISH = {
    "de": "Die Stadtbibliothek hat ihre Öffnungszeiten erweitert. Ab dem kommenden Monat können "
    "Leserinnen und Leser auch am Samstag bis zum späten Nachmittag Bücher ausleihen. Die Leitung "
    "begründet die Änderung mit der großen Nachfrage der vergangenen Wochen und mit den neuen "
    "Lesesälen, die im Frühjahr eröffnet wurden. Außerdem wird es regelmäßige Lesungen geben.",
    "fr": "La bibliothèque municipale a élargi ses horaires d'ouverture. À partir du mois prochain, "
    "les lecteurs pourront aussi emprunter des livres le samedi jusqu'en fin d'après-midi. La "
    "direction explique ce changement par la forte demande des dernières semaines et par les "
    "nouvelles salles de lecture ouvertes au printemps. Des lectures publiques sont prévues.",
}

CHROME_TOP = (
    '<header><nav><ul><li><a href="/">Home</a></li><li><a href="/docs">Docs</a></li>'
    '<li><a href="/blog">Blog</a></li><li><a href="/about">About</a></li></ul></nav></header>'
    '<div class="cookie">This site uses cookies. <a href="/privacy">Privacy policy</a></div>'
)
CHROME_BOTTOM = (
    '<aside><h3>Related</h3><ul><li><a href="/a">Another article</a></li>'
    '<li><a href="/b">More reading</a></li></ul></aside>'
    "<footer><p>Copyright 2026 Sample Site. All rights reserved.</p>"
    '<p><a href="/terms">Terms of use</a> | <a href="/contact">Contact</a></p></footer>'
)


def _page(title: str, body_paragraphs: list[str], lang: str = "en") -> str:
    body = "".join(f"<p>{html.escape(p)}</p>" for p in body_paragraphs)
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head><meta charset="utf-8"><title>{html.escape(title)}</title></head>'
        f"<body>{CHROME_TOP}<main><article><h1>{html.escape(title)}</h1>{body}</article></main>{CHROME_BOTTOM}</body></html>"
    )


def _doc_paragraphs(module_name: str) -> list[str]:
    doc = importlib.import_module(module_name).__doc__ or ""
    paras = [" ".join(p.split()) for p in doc.split("\n\n")]
    return [p for p in paras if p]


def sample_pages() -> list[tuple[str, str]]:
    """(url, html) pairs, in a fixed order."""
    pages = []
    for name in MODULES:
        try:
            paras = _doc_paragraphs(name)
        except Exception:  # noqa: BLE001 - a module missing on this Python is skipped
            continue
        if paras:
            pages.append((f"http://sample.refinery.invalid/docs/{name}", _page(f"The {name} module", paras)))
    if pages:
        url, page = pages[0]
        pages.append((url + "?utm_source=copy", page))  # an exact copy under another URL
    for lang, text in NON_ENGLISH.items():
        pages.append((f"http://sample.refinery.invalid/{lang}/news", _page("Bibliothek", [text], lang)))
    pages.append(("http://sample.refinery.invalid/sitemap", _page("Sitemap", ["Home", "Docs", "Blog", "About"])))
    pages.append(("http://sample.refinery.invalid/empty", "<html><body></body></html>"))
    return pages


def warc_record(url: str, payload: bytes, index: int, payload_type: str | None = None) -> bytes:
    """One gzip-member WARC response record (record id derived from index and URL: deterministic).

    `payload_type`: a `WARC-Identified-Payload-Type` header, as Common Crawl writes (readers such as
    datatrove's sniff the bytes with libmagic without it, and skip pages it does not call HTML)."""
    http = (
        b"HTTP/1.1 200 OK\r\nContent-Type: text/html; charset=utf-8\r\n"
        + f"Content-Length: {len(payload)}\r\n\r\n".encode()
        + payload
    )
    record_id = uuid.uuid5(uuid.NAMESPACE_URL, f"{index}:{url}")
    head = (
        "WARC/1.0\r\nWARC-Type: response\r\n"
        f"WARC-Record-ID: <urn:uuid:{record_id}>\r\n"
        "WARC-Date: 2026-01-01T00:00:00Z\r\n"
        f"WARC-Target-URI: {url}\r\n"
        + (f"WARC-Identified-Payload-Type: {payload_type}\r\n" if payload_type else "")
        + "Content-Type: application/http; msgtype=response\r\n"
        + f"Content-Length: {len(http)}\r\n\r\n"
    ).encode()
    buf = io.BytesIO()
    with gzip.GzipFile(fileobj=buf, mode="wb", mtime=0) as gz:  # one gzip member per record
        gz.write(head + http + b"\r\n\r\n")
    return buf.getvalue()


def write_sample_warc(out_dir: Path) -> tuple[Path, int]:
    out_dir.mkdir(parents=True, exist_ok=True)
    path = out_dir / "sample.warc.gz"
    pages = sample_pages()
    with path.open("wb") as f:
        for i, (url, page) in enumerate(pages):
            f.write(warc_record(url, page.encode("utf-8"), i))
    return path, len(pages)
