"""Main-text extraction (trafilatura, or resiliparse), bounded so the result never depends on machine load.

datatrove bounds extraction with a wall-clock timeout, so the set of kept
documents changes with how busy the machine is.  Here every bound is on the
input itself (bytes of HTML, elements in the parsed tree), which gives the same
verdict on any machine.  A CPU-time guard (not wall time) with a wide margin is
kept only as a last line of defence against a pathological page.

`prefilter_languages` is cheap work before expensive work: a language guess
(lid.176 on resiliparse's plain text of the whole raw page, ~1 ms against ~25 ms for
trafilatura) drops pages that are certainly in another language before trafilatura runs.
It only drops at high confidence (`prefilter_min_score`).  The whole page's visible text
(`<noscript>` included: forum engines put their posts there) is cheaper to make than
resiliparse's main-content guess and a better language signal; on the real page sets no page
the full pipeline keeps is dropped at 0.5 or above (bench/README.md, "Survival gate").  The
same text feeds the survival gate (`gate`, survival_gate.py): pages whose whole visible text
already fails a later rule.

`extractor: refinery` is Refinery's own extractor (refinery/extractor/): a per-block main-content
classifier over a lexbor DOM, trained by `refinery models build-extractor` (docs/models.md), several
times faster than trafilatura (figures: bench/README.md, "Extractors").

`extractor: resiliparse` trades extraction quality for speed (about 10x the pages/s,
token F1 0.92 instead of 0.96 on the article benchmark: bench/README.md), for
operators whose budget is CPU.
"""

from __future__ import annotations

import codecs
import re
import signal
import threading
from contextlib import contextmanager
from typing import Iterator, Literal

import pyarrow as pa
import trafilatura
from lxml.html import HtmlElement
from pydantic import Field, model_validator
from trafilatura.utils import decode_file, load_html

from refinery.strict import StrictModel
from refinery.langcodes import LangCode
from refinery.stages.base import Stage, StageResult, set_column
from refinery.stages.html_depth import too_deep
from refinery.stages.survival_gate import GateOptions, SurvivalGate

_META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([a-zA-Z0-9_\-:.]+)""", re.I)
TEXT_FIELD = pa.field("text", pa.string())
PREFILTER_CPU_SECONDS = 1.0  # per page; over it the prefilter makes no guess (the page is extracted)
# Nesting deeper than this is dropped by the resiliparse extractor: its main-content pass takes time
# that grows much faster than the depth (html_depth.py), in C code the CPU guard cannot stop.  The
# prefilter's whole-page text (no main-content pass) is linear in the depth and needs no such bound.
RESILIPARSE_MAX_DEPTH = 5_000


class ExtractOptions(StrictModel):
    extractor: Literal["trafilatura", "resiliparse", "refinery"] = Field(
        "trafilatura", description="trafilatura, resiliparse (about 10x faster), or refinery (own block classifier)"
    )
    extractor_model: str = Field("default", description="extractor: refinery only: model directory ('default': shipped)")
    max_html_bytes: int = Field(5_000_000, ge=1024, description="larger pages are dropped as too_large")
    max_tree_elements: int = Field(60_000, ge=100, description="larger DOMs are dropped as too_complex")
    cpu_seconds_limit: float | None = Field(60.0, gt=0, description="CPU-time guard; null disables")
    favor_precision: bool = True
    favor_recall: bool = False
    include_comments: bool = False
    include_tables: bool = True
    fast: bool = False  # trafilatura only
    min_text_chars: int = Field(1, ge=0, description="shorter extractions are dropped as empty")
    prefilter_languages: list[LangCode] = Field(
        default_factory=list,
        description="if set, pages whose raw text is confidently another language are dropped before extraction",
    )
    prefilter_min_score: float = Field(0.9, ge=0.5, le=1.0, description="lid.176 confidence needed to drop a page")
    prefilter_max_chars: int = Field(4000, ge=100, description="characters of raw page text given to the model")
    gate: GateOptions | None = Field(
        None, description="survival gate on the prefilter's page text (needs prefilter_languages); null: off"
    )

    @model_validator(mode="after")
    def _gate_needs_prefilter(self) -> "ExtractOptions":
        if self.gate is not None and not self.prefilter_languages:
            raise ValueError("gate needs prefilter_languages (its stop words and its page text come from the prefilter)")
        return self

    @model_validator(mode="after")
    def _extractor_model_exists(self) -> "ExtractOptions":
        """`extractor: refinery` without its model fails when the pipeline is loaded, naming the build command."""
        if self.extractor == "refinery":
            from refinery.errors import ModelError
            from refinery.extractor.model import load_extractor

            try:
                load_extractor(self.extractor_model)
            except ModelError as err:
                raise ValueError(str(err)) from None
        return self


def _empty_detail(text: str | None, min_chars: int, extractor: str) -> str:
    """Why an extraction counts as empty: the length found against `min_text_chars`."""
    if not text:
        return f"{extractor} found no main text (text_chars=0<{max(min_chars, 1)})"
    return f"text_chars={len(text)}<{min_chars} (min_text_chars)"


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

    def setup(self) -> None:
        self.lid = None
        if self.options.extractor == "refinery":
            from refinery.extractor.model import load_extractor

            self.refinery_model = load_extractor(self.options.extractor_model)
        if self.options.prefilter_languages:
            from refinery.models import BUNDLED_LID, lid_model_path, load_fasttext

            self.lid = load_fasttext(lid_model_path(BUNDLED_LID))
            self.allowed = set(self.options.prefilter_languages)
        self.gate = SurvivalGate(self.options.gate, self.options.prefilter_languages) if self.options.gate else None

    def prefilter(self, htmls: list[bytes | None], charsets: list[str | None]) -> list[tuple[str, str] | None]:
        """Per page: (reason, detail) when it is certainly not an allowed language
        (`prefilter_language`, 'de 0.992: ...') or certainly fails a later rule (`gate:...`), else None.

        For each dropped page the language guess is kept in `self._guesses` (row -> (language,
        score)) for the reject row's `language`/`language_score`, the page text in `self._guess_texts`;
        every page it decoded in `self._decoded` (row -> str), which the extractor then reuses.

        One batched fastText call for the whole batch; pages without HTML, or whose visible
        text is empty, are never dropped here (the extractor decides).
        """
        from resiliparse.extract.html2text import extract_plain_text

        from refinery.stages.langid import prepare

        out: list[tuple[str, str] | None] = [None] * len(htmls)
        raw_texts: list[str | None] = [None] * len(htmls)
        self._guess_texts = {}  # row -> the plain text a drop was decided on (kept in reject rows)
        self._guesses: dict[int, tuple[str, float]] = {}
        self._decoded: dict[int, str] = {}  # row -> the decoded page, for extract_one
        idx, texts = [], []
        for i, (payload, charset) in enumerate(zip(htmls, charsets)):
            if payload is None or len(payload) > self.options.max_html_bytes:
                continue
            try:
                # Bounded: a pathological page must not stall the batch; any failure means "no guess".
                with cpu_budget(PREFILTER_CPU_SECONDS):
                    html = self._decoded[i] = decode_html(payload, charset)
                    text = extract_plain_text(html, main_content=False, alt_texts=False, links=False, noscript=True)
            except (Exception, CpuBudgetExceeded):  # noqa: BLE001  (the real extractor will report it)
                continue
            line = prepare(text, self.options.prefilter_max_chars)
            raw_texts[i] = text
            if line:
                idx.append(i)
                texts.append(line)
        guesses: dict[int, tuple[str, float]] = {}
        if texts:
            labels, probs = self.lid.predict(texts, k=1)
            for i, lab, prob in zip(idx, labels, probs):
                if len(lab) and len(prob):
                    lang, score = lab[0].removeprefix("__label__"), min(float(prob[0]), 1.0)
                    guesses[i] = (lang, score)
                    if lang not in self.allowed and score >= self.options.prefilter_min_score:
                        out[i] = ("prefilter_language",
                                  f"{lang} {score:.3f}: language_score={score:.3f}>={self.options.prefilter_min_score:g} "
                                  f"(prefilter_min_score), {lang} not in prefilter_languages {sorted(self.allowed)}")
        if self.gate is not None:
            for i in idx:  # pages with some visible text only: an empty one is the extractor's to judge
                if out[i] is None:
                    out[i] = self.gate.check(raw_texts[i])
        for i, drop in enumerate(out):
            if drop is not None:
                self._guess_texts[i] = raw_texts[i]
                if i in guesses:
                    self._guesses[i] = guesses[i]
        return out

    def model_info(self) -> dict:
        info = self._extractor_info()
        if self.options.prefilter_languages:
            from refinery.models import BUNDLED_LID, file_sha256, lid_model_path

            path = lid_model_path(BUNDLED_LID)
            info["extract_prefilter"] = {"file": path.name, "sha256": file_sha256(str(path))}
        return info

    def _extractor_info(self) -> dict:
        if self.options.extractor == "refinery":
            from refinery.extractor.model import model_info

            return {"refinery_extractor": model_info(self.options.extractor_model)}
        if self.options.extractor == "resiliparse":
            from importlib.metadata import version

            return {"resiliparse": version("resiliparse")}
        return {"trafilatura": trafilatura.__version__}

    def _resiliparse(self, html: str) -> str:
        from resiliparse.extract.html2text import extract_plain_text
        from resiliparse.parse.html import HTMLTree

        tree = HTMLTree.parse(html)
        return extract_plain_text(
            tree, main_content=True, alt_texts=False, links=False, form_fields=False, noscript=False,
            comments=self.options.include_comments, list_bullets=True, preserve_formatting=True,
        )

    def extract_one(
        self, payload: bytes, charset: str | None, html: str | None = None
    ) -> tuple[str | None, str | None, str | None]:
        """Return (text, reason, detail) for one page.  `html`: the page already decoded (the
        prefilter decodes every page it reads), so that it is not decoded twice."""
        opts: ExtractOptions = self.options
        if len(payload) > opts.max_html_bytes:
            return None, "too_large", f"html_bytes={len(payload)}>{opts.max_html_bytes} (max_html_bytes)"
        if opts.extractor == "resiliparse" and too_deep(payload, RESILIPARSE_MAX_DEPTH):
            return None, "too_complex", f"nested deeper than {RESILIPARSE_MAX_DEPTH} elements"
        if html is None:
            try:
                html = decode_html(payload, charset)
            except Exception as err:  # noqa: BLE001
                return None, "parse_error", str(err)[:500]
        if opts.extractor == "resiliparse":
            return self._guarded("resiliparse", lambda: self._resiliparse(html).strip())
        if opts.extractor == "refinery":
            return self._extract_refinery(html)
        try:
            tree: HtmlElement | None = load_html(html)
        except Exception as err:  # noqa: BLE001
            return None, "parse_error", str(err)[:500]
        if tree is None:
            return None, "parse_error", "not parseable as HTML"
        n_elements = sum(1 for _ in tree.iter())
        if n_elements > opts.max_tree_elements:
            return None, "too_complex", f"tree_elements={n_elements}>{opts.max_tree_elements} (max_tree_elements)"
        return self._guarded("trafilatura", lambda: trafilatura.extract(
            tree,
            fast=opts.fast,
            favor_precision=opts.favor_precision,
            favor_recall=opts.favor_recall,
            include_comments=opts.include_comments,
            include_tables=opts.include_tables,
            deduplicate=False,
        ))

    def _guarded(self, name: str, extract, too_complex: tuple[type[Exception], ...] = ()) -> tuple[str | None, str | None, str | None]:
        """Run one extractor under the CPU guard; (text, reason, detail) with the same reasons and
        details whichever extractor ran."""
        opts: ExtractOptions = self.options
        try:
            with cpu_budget(opts.cpu_seconds_limit):
                text = extract()
        except CpuBudgetExceeded:
            return None, "cpu_limit", f"cpu_seconds>{opts.cpu_seconds_limit:g} (cpu_seconds_limit)"
        except too_complex as err:
            return None, "too_complex", str(err)
        except RecursionError:
            return None, "too_complex", "tree too deep for the parser (recursion limit)"
        except Exception as err:  # noqa: BLE001
            return None, "extract_error", f"{type(err).__name__}: {err}"[:500]
        if not text or len(text) < opts.min_text_chars:
            return None, "empty", _empty_detail(text, opts.min_text_chars, name)
        return text, None, None

    def _extract_refinery(self, html: str) -> tuple[str | None, str | None, str | None]:
        from refinery.extractor.blocks import TooComplex

        opts: ExtractOptions = self.options
        model = getattr(self, "refinery_model", None)
        if model is None:
            self.setup()
            model = self.refinery_model
        return self._guarded("refinery", lambda: model.extract(html, max_elements=opts.max_tree_elements), (TooComplex,))

    def process(self, records: pa.RecordBatch) -> StageResult:
        htmls = records.column("html").to_pylist()
        charsets = records.column("http_charset").to_pylist()
        texts = records.column("text").to_pylist()
        prefiltered = getattr(self, "lid", None) is not None
        skips = self.prefilter(htmls, charsets) if prefiltered else [None] * len(htmls)
        decoded = self._decoded if prefiltered else {}
        reasons: list[str | None] = []
        details: list[str | None] = []
        out: list[str | None] = []
        for row, (html, charset, text, skip) in enumerate(zip(htmls, charsets, texts, skips)):
            if skip is not None:
                out.append(self._guess_texts.get(row))
                reasons.append(skip[0])
                details.append(skip[1])
                continue
            if html is None:  # plain-text input: nothing to extract
                ok = bool(text and text.strip())
                out.append(text)
                reasons.append(None if ok else "empty")
                details.append(None if ok else "input record has no text (text_chars=0<1)")
                continue
            t, reason, detail = self.extract_one(html, charset, decoded.get(row))
            out.append(t)
            reasons.append(reason)
            details.append(detail)
        guesses = getattr(self, "_guesses", {})
        extra = None
        if guesses:
            extra = {
                "language": [guesses[i][0] if i in guesses else None for i in range(len(reasons))],
                "language_score": [guesses[i][1] if i in guesses else None for i in range(len(reasons))],
            }
        return StageResult(set_column(records, TEXT_FIELD, out), reasons, details, reject_columns=extra)
