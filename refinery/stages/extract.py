"""Main-text extraction with trafilatura, bounded so the result never depends on machine load.

datatrove bounds extraction with a wall-clock timeout, so the set of kept
documents changes with how busy the machine is.  Here every bound is on the
input itself (bytes of HTML, elements in the parsed tree), which gives the same
verdict on any machine.  A CPU-time guard (not wall time) with a wide margin is
kept only as a last line of defence against a pathological page.
"""

from __future__ import annotations

import codecs
import re
import signal
import threading
from contextlib import contextmanager
from typing import Iterator

import pyarrow as pa
import trafilatura
from lxml.html import HtmlElement
from pydantic import Field
from trafilatura.utils import decode_file, load_html

from refinery.config import StrictModel
from refinery.stages.base import Stage, StageResult, set_column

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_\-:.]+)""", re.I)
TEXT_FIELD = pa.field("text", pa.string())


class ExtractOptions(StrictModel):
    max_html_bytes: int = Field(5_000_000, ge=1024, description="larger pages are dropped as too_large")
    max_tree_elements: int = Field(60_000, ge=100, description="larger DOMs are dropped as too_complex")
    cpu_seconds_limit: float | None = Field(60.0, gt=0, description="CPU-time guard; null disables")
    favor_precision: bool = True
    favor_recall: bool = False
    include_comments: bool = False
    include_tables: bool = True
    fast: bool = False
    min_text_chars: int = Field(1, ge=0, description="shorter extractions are dropped as empty")


class CpuBudgetExceeded(BaseException):
    """A BaseException so that libraries' `except Exception` blocks cannot swallow it."""

    pass


def _on_cpu_budget(signum, frame):  # noqa: ARG001
    raise CpuBudgetExceeded()


@contextmanager
def cpu_budget(seconds: float | None) -> Iterator[None]:
    """Raise CpuBudgetExceeded once this process has spent `seconds` of CPU in the block.

    ITIMER_PROF counts CPU time, not wall time, so a loaded machine does not
    trip it earlier.  Signals only work in the main thread; elsewhere the
    input-size bounds alone apply.
    """
    if seconds is None or threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGPROF, _on_cpu_budget)
    signal.setitimer(signal.ITIMER_PROF, seconds)
    try:
        yield
    finally:
        signal.setitimer(signal.ITIMER_PROF, 0)
        signal.signal(signal.SIGPROF, previous)


def _valid_codec(name: str | None) -> str | None:
    if not name:
        return None
    try:
        return codecs.lookup(name.strip().strip("\"'")).name
    except LookupError:
        return None


def decode_html(payload: bytes, declared: str | None) -> str:
    """Bytes -> str.  Valid UTF-8 wins over a declaration (mislabelled pages are common),
    then the HTTP or <meta> charset, then statistical detection."""
    try:
        return payload.decode("utf-8")
    except UnicodeDecodeError:
        pass
    meta = _META_CHARSET.search(payload[:8192])
    for name in (declared, meta.group(1).decode("ascii", "ignore") if meta else None):
        codec = _valid_codec(name)
        if codec and codec != "utf-8":
            try:
                return payload.decode(codec)
            except (UnicodeDecodeError, LookupError):
                continue
    return decode_file(payload)


class ExtractStage(Stage):
    name = "extract"
    order = 10
    Options = ExtractOptions
    fields = [TEXT_FIELD]

    def model_info(self) -> dict:
        return {"trafilatura": trafilatura.__version__}

    def extract_one(self, payload: bytes, charset: str | None) -> tuple[str | None, str | None, str | None]:
        """Return (text, reason, detail) for one page."""
        opts: ExtractOptions = self.options
        if len(payload) > opts.max_html_bytes:
            return None, "too_large", f"{len(payload)} bytes > {opts.max_html_bytes}"
        try:
            html = decode_html(payload, charset)
            tree: HtmlElement | None = load_html(html)
        except Exception as err:  # noqa: BLE001
            return None, "parse_error", str(err)[:500]
        if tree is None:
            return None, "parse_error", "not parseable as HTML"
        n_elements = sum(1 for _ in tree.iter())
        if n_elements > opts.max_tree_elements:
            return None, "too_complex", f"{n_elements} elements > {opts.max_tree_elements}"
        try:
            with cpu_budget(opts.cpu_seconds_limit):
                text = trafilatura.extract(
                    tree,
                    fast=opts.fast,
                    favor_precision=opts.favor_precision,
                    favor_recall=opts.favor_recall,
                    include_comments=opts.include_comments,
                    include_tables=opts.include_tables,
                    deduplicate=False,
                )
        except CpuBudgetExceeded:
            return None, "cpu_limit", f"over {opts.cpu_seconds_limit} CPU seconds"
        except RecursionError:
            return None, "too_complex", "tree too deep"
        except Exception as err:  # noqa: BLE001
            return None, "extract_error", f"{type(err).__name__}: {err}"[:500]
        if not text or len(text) < opts.min_text_chars:
            return None, "empty", None
        return text, None, None

    def process(self, batch: pa.RecordBatch) -> StageResult:
        htmls = batch.column("html").to_pylist()
        charsets = batch.column("http_charset").to_pylist()
        texts = batch.column("text").to_pylist()
        reasons: list[str | None] = []
        details: list[str | None] = []
        out: list[str | None] = []
        for html, charset, text in zip(htmls, charsets, texts):
            if html is None:  # plain-text input: nothing to extract
                ok = bool(text and text.strip())
                out.append(text)
                reasons.append(None if ok else "empty")
                details.append(None)
                continue
            t, reason, detail = self.extract_one(html, charset)
            out.append(t)
            reasons.append(reason)
            details.append(detail)
        return StageResult(set_column(batch, TEXT_FIELD, out), reasons, details)
