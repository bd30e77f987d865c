"""Heuristic quality rules: Gopher quality and repetition, C4, FineWeb.

Rules run in the order of the FineWeb recipe (Gopher repetition, Gopher
quality, C4, FineWeb); a dropped document is named by the first rule it fails
(`quality:gopher_stop_words`).  Every threshold is nullable: null switches that
rule off.  Every signal is also written as a `q_*` column so `annotate` shows
operators how far each document is from each threshold.

C4's line rules edit the text (removing lines), as in C4 and datatrove; the
FineWeb rules then see the edited text.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Annotated, Any

import pyarrow as pa
from pydantic import Field

from refinery.langcodes import LangCode
from refinery.stop_words import DEFAULT_STOP_WORDS
from refinery.strict import StrictModel
from refinery.schema import DUP_NS, QUALITY_SIGNAL_FIELDS, TOP_NS
from refinery.stages import text_stats as ts
from refinery.stages.base import Stage, StageResult, languages, set_column


Frac = Annotated[float, Field(ge=0.0, le=1.0)]  # a fraction threshold; null switches the rule off
Count = Annotated[int, Field(ge=0)]


def _frac(default: float | None) -> Any:
    return Field(default, ge=0.0, le=1.0, description="fraction in [0, 1]; null switches the rule off")


def _count(default: int | None, minimum: int = 0) -> Any:
    return Field(default, ge=minimum, description=f"integer >= {minimum}; null switches the rule off")


class GopherRepetitionOptions(StrictModel):
    dup_para_frac: float | None = _frac(0.3)
    dup_para_char_frac: float | None = _frac(0.2)
    dup_line_frac: float | None = _frac(0.3)
    dup_line_char_frac: float | None = _frac(0.2)
    top_n_grams: dict[Annotated[int, Field(ge=1)], Frac | None] = Field(default_factory=lambda: {2: 0.2, 3: 0.18, 4: 0.16})
    dup_n_grams: dict[Annotated[int, Field(ge=1)], Frac | None] = Field(
        default_factory=lambda: {5: 0.15, 6: 0.14, 7: 0.13, 8: 0.12, 9: 0.11, 10: 0.10}
    )


class GopherQualityOptions(StrictModel):
    min_doc_words: int | None = _count(50)
    max_doc_words: int | None = _count(100_000, 1)
    min_avg_word_length: float | None = Field(3.0, ge=0.0)
    max_avg_word_length: float | None = Field(10.0, gt=0.0)
    max_symbol_word_ratio: float | None = Field(0.1, ge=0.0)
    max_bullet_lines_ratio: float | None = _frac(0.9)
    max_ellipsis_lines_ratio: float | None = _frac(0.3)
    min_alpha_words_ratio: float | None = _frac(0.8)
    min_stop_words: int | None = _count(2)
    stop_words: dict[LangCode, list[str]] = Field(default_factory=lambda: dict(DEFAULT_STOP_WORDS))


class C4Options(StrictModel):
    filter_no_terminal_punct: bool = False  # off in FineWeb; on in the original C4
    min_num_sentences: int | None = _count(5)
    min_words_per_line: int | None = _count(3)
    max_word_length: int | None = _count(1000, 1)
    filter_lorem_ipsum: bool = True
    filter_javascript: bool = True
    filter_curly_bracket: bool = True
    filter_policy: bool = True
    remove_citations: bool = True


class FineWebOptions(StrictModel):
    line_punct_thr: float | None = _frac(0.12)
    line_punct_exclude_zero: bool = False
    short_line_thr: float | None = _frac(0.67)
    short_line_length: int = Field(30, ge=0)
    char_duplicates_ratio: float | None = _frac(0.01)
    new_line_ratio: float | None = Field(0.3, ge=0.0)


class CjkOptions(StrictModel):
    """Character-based equivalents for languages written without spaces."""

    languages: list[LangCode] = Field(default_factory=lambda: ["zh", "ja"])
    chars_per_word: int = Field(2, ge=1, description="n-gram rules use n x this many characters")
    min_doc_chars: int | None = _count(100)  # replaces gopher min_doc_words
    max_doc_chars: int | None = _count(300_000, 1)
    min_words_per_line_chars: int | None = _count(6)  # replaces c4 min_words_per_line


class QualityOptions(StrictModel):
    gopher_repetition: GopherRepetitionOptions | None = GopherRepetitionOptions()
    gopher_quality: GopherQualityOptions | None = GopherQualityOptions()
    c4: C4Options | None = C4Options()
    fineweb: FineWebOptions | None = FineWebOptions()
    cjk: CjkOptions = CjkOptions()


# The q_* columns are part of the column contract (shards, rejects, annotate): see refinery/schema.py.
SIGNAL_FIELDS = QUALITY_SIGNAL_FIELDS

_POLICY = ("terms of use", "privacy policy", "cookie policy", "uses cookies", "use of cookies", "use cookies")
_CITATION = re.compile(r"\[\d*]|\[edit]|\[citation needed]")


@dataclass
class Assessment:
    signals: dict[str, float | int | None] = field(default_factory=dict)
    reason: str | None = None  # first failing rule
    text: str | None = None  # text after C4 line removal
    detail: str | None = None  # the first failing rule's measured value against its threshold

    def fail(self, rule: str, detail: str) -> None:
        if self.reason is None:
            self.reason = rule
            self.detail = detail


def fmt(value: float | int) -> str:
    """A number as short as it can be written (3 significant digits; ints as ints)."""
    if isinstance(value, int):
        return str(value)
    return f"{value:.3g}"


def _cmp(signal: str, value: float | int, op: str, limit: float | int) -> str:
    """`q_alpha_words_ratio=0.58<0.8`: the rejects table's detail for a threshold rule.

    Digits are added until value and threshold read differently (0.0104>0.01, not 0.01>0.01)."""
    v, lim = fmt(value), fmt(limit)
    digits = 4
    while v == lim and isinstance(value, float) and digits < 12:
        v, digits = f"{value:.{digits}g}", digits + 1
    return f"{signal}={v}{op}{lim}"


def _ratio(num: float, den: float) -> float:
    return num / den if den else 0.0


def _over(value: float, limit: float | None) -> bool:
    return limit is not None and value > limit


def _under(value: float, limit: float | None) -> bool:
    return limit is not None and value < limit


class QualityStage(Stage):
    name = "quality"
    order = 30
    Options = QualityOptions
    fields = [pa.field("text", pa.string())] + SIGNAL_FIELDS

    def assess(self, text: str | None, language: str | None) -> Assessment:
        a = Assessment(signals={f.name: None for f in SIGNAL_FIELDS}, text=text)
        if not text or not text.strip():
            a.fail("empty", "no text")
            return a
        opts: QualityOptions = self.options
        cjk = language in opts.cjk.languages
        tokens = ts.words(text, cjk)
        if opts.gopher_repetition:
            self._gopher_repetition(a, text, tokens, cjk)
        if opts.gopher_quality:
            self._gopher_quality(a, text, tokens, language, cjk)
        if opts.c4:
            a.text = self._c4(a, text, cjk)
        if opts.fineweb and a.text:
            # C4 often removes nothing: then the text, and so its tokens, are the ones already made
            self._fineweb(a, a.text, cjk, len(tokens) if a.text == text else None)
        if not a.text or not a.text.strip():
            removed = a.signals.get("q_c4_lines_removed")
            a.fail("empty", f"no text left after C4's line rules (q_c4_lines_removed={removed})")
        return a

    def _gopher_repetition(self, a: Assessment, text: str, tokens: list[str], cjk: bool) -> None:
        o = self.options.gopher_repetition
        s = a.signals
        n_chars = len(text)
        paras = ts.paragraphs(text)
        dup, dup_chars = ts.find_duplicates(paras)
        s["q_dup_para_frac"] = _ratio(dup, len(paras))
        s["q_dup_para_char_frac"] = _ratio(dup_chars, n_chars)
        lines = ts.lines(text)
        dup, dup_chars = ts.find_duplicates(lines)
        s["q_dup_line_frac"] = _ratio(dup, len(lines))
        s["q_dup_line_char_frac"] = _ratio(dup_chars, n_chars)
        for key, limit in (
            ("dup_para_frac", o.dup_para_frac),
            ("dup_para_char_frac", o.dup_para_char_frac),
            ("dup_line_frac", o.dup_line_frac),
            ("dup_line_char_frac", o.dup_line_char_frac),
        ):
            if _over(s[f"q_{key}"], limit):
                a.fail(f"gopher_{key}", _cmp(f"q_{key}", s[f"q_{key}"], ">", limit))
        scale = self.options.cjk.chars_per_word if cjk else 1
        joiner = "" if cjk else " "
        glued = ts.Joined(tokens, "")  # the duplicate n-grams' string; the top n-grams' too for CJK
        spaced = glued if cjk else ts.Joined(tokens, joiner)
        for n in TOP_NS:
            frac = _ratio(ts.top_ngram_chars(tokens, n * scale, joiner, spaced), n_chars)
            s[f"q_top_{n}gram_char_frac"] = frac
            if _over(frac, o.top_n_grams.get(n)):
                a.fail(f"gopher_top_{n}gram", _cmp(f"q_top_{n}gram_char_frac", frac, ">", o.top_n_grams[n]))
        for n in DUP_NS:
            frac = _ratio(ts.duplicate_ngram_chars(tokens, n * scale, glued), n_chars)
            s[f"q_dup_{n}gram_char_frac"] = frac
            if _over(frac, o.dup_n_grams.get(n)):
                a.fail(f"gopher_dup_{n}gram", _cmp(f"q_dup_{n}gram_char_frac", frac, ">", o.dup_n_grams[n]))

    def _gopher_quality(self, a: Assessment, text: str, tokens: list[str], language: str | None, cjk: bool) -> None:
        o = self.options.gopher_quality
        cj = self.options.cjk
        s = a.signals
        n_tokens = len(tokens) or 1
        content = [w for w in tokens if not ts.is_symbol(w)]
        s["q_words"] = len(content)
        if cjk:
            n_chars = sum(len(w) for w in content)
            if _under(n_chars, cj.min_doc_chars):
                a.fail("gopher_min_doc_words", _cmp("cjk_chars", n_chars, "<", cj.min_doc_chars))
            if _over(n_chars, cj.max_doc_chars):
                a.fail("gopher_max_doc_words", _cmp("cjk_chars", n_chars, ">", cj.max_doc_chars))
        else:
            if _under(len(content), o.min_doc_words):
                a.fail("gopher_min_doc_words", _cmp("q_words", len(content), "<", o.min_doc_words))
            if _over(len(content), o.max_doc_words):
                a.fail("gopher_max_doc_words", _cmp("q_words", len(content), ">", o.max_doc_words))
        avg = _ratio(sum(len(w) for w in content), len(content))
        s["q_avg_word_length"] = avg
        if not cjk:  # one character per word is what CJK text is made of
            if _under(avg, o.min_avg_word_length):
                a.fail("gopher_min_avg_word_length", _cmp("q_avg_word_length", avg, "<", o.min_avg_word_length))
            if _over(avg, o.max_avg_word_length):
                a.fail("gopher_max_avg_word_length", _cmp("q_avg_word_length", avg, ">", o.max_avg_word_length))
        s["q_hash_ratio"] = text.count("#") / n_tokens
        s["q_ellipsis_ratio"] = (text.count("...") + text.count("…")) / n_tokens
        if _over(s["q_hash_ratio"], o.max_symbol_word_ratio):
            a.fail("gopher_hash_ratio", _cmp("q_hash_ratio", s["q_hash_ratio"], ">", o.max_symbol_word_ratio))
        if _over(s["q_ellipsis_ratio"], o.max_symbol_word_ratio):
            a.fail("gopher_ellipsis_ratio", _cmp("q_ellipsis_ratio", s["q_ellipsis_ratio"], ">", o.max_symbol_word_ratio))
        lines = text.splitlines() or [""]
        bullets = sum(1 for ln in lines if ln.lstrip().startswith(("•", "-", "*", "·")))
        s["q_bullet_lines_ratio"] = bullets / len(lines)
        if _over(s["q_bullet_lines_ratio"], o.max_bullet_lines_ratio):
            a.fail("gopher_bullet_lines", _cmp("q_bullet_lines_ratio", s["q_bullet_lines_ratio"], ">", o.max_bullet_lines_ratio))
        ends = sum(1 for ln in lines if ln.rstrip().endswith(("...", "…")))
        s["q_end_ellipsis_lines_ratio"] = ends / len(lines)
        if _over(s["q_end_ellipsis_lines_ratio"], o.max_ellipsis_lines_ratio):
            a.fail(
                "gopher_end_ellipsis_lines",
                _cmp("q_end_ellipsis_lines_ratio", s["q_end_ellipsis_lines_ratio"], ">", o.max_ellipsis_lines_ratio),
            )
        alpha = sum(1 for w in tokens if ts.has_letter(w))
        s["q_alpha_words_ratio"] = alpha / n_tokens
        if _under(s["q_alpha_words_ratio"], o.min_alpha_words_ratio):
            a.fail("gopher_alpha_words", _cmp("q_alpha_words_ratio", s["q_alpha_words_ratio"], "<", o.min_alpha_words_ratio))
        stop = o.stop_words.get(language or "")
        if stop is not None:
            stop_set = set(stop)
            s["q_stop_words"] = sum(1 for w in tokens if w.lower() in stop_set)
            if _under(s["q_stop_words"], o.min_stop_words):
                a.fail("gopher_stop_words", _cmp("q_stop_words", s["q_stop_words"], "<", o.min_stop_words) + f" ({language})")

    def _c4(self, a: Assessment, text: str, cjk: bool) -> str:
        o = self.options.c4
        min_words = self.options.cjk.min_words_per_line_chars if cjk else o.min_words_per_line
        kept: list[str] = []
        n_sentences = 0
        removed = 0
        lorem = curly = False
        for raw in text.splitlines():
            line = raw.strip()
            line_words = line.split()
            if o.max_word_length is not None and any(len(w) > o.max_word_length for w in line_words):
                removed += 1
                continue
            if o.remove_citations:
                line = _CITATION.sub("", line)
            if o.filter_no_terminal_punct and (not line.endswith(ts.TERMINAL_PUNCTUATION) or line.endswith("...")):
                removed += 1
                continue
            size = ts.count_cjk(line) + len(ts.words(line, False)) if cjk else len(line_words)
            if min_words is not None and size < min_words:
                removed += 1
                continue
            lowered = line.lower()
            if o.filter_lorem_ipsum and "lorem ipsum" in lowered:
                lorem = True
            if o.filter_javascript and "javascript" in lowered:
                removed += 1
                continue
            if o.filter_curly_bracket and "{" in line:
                curly = True
            if o.filter_policy and any(p in lowered for p in _POLICY):
                removed += 1
                continue
            n_sentences += len(ts.sentences(line))
            kept.append(line)
        a.signals["q_c4_sentences"] = n_sentences
        a.signals["q_c4_lines_removed"] = removed
        if lorem:
            a.fail("c4_lorem_ipsum", "a line contains 'lorem ipsum' (filter_lorem_ipsum)")
        if curly:
            a.fail("c4_curly_bracket", "a line contains '{' (filter_curly_bracket)")
        if _under(n_sentences, o.min_num_sentences):
            a.fail("c4_min_sentences", _cmp("q_c4_sentences", n_sentences, "<", o.min_num_sentences))
        return "\n".join(kept).strip()

    def _fineweb(self, a: Assessment, text: str, cjk: bool, n_tokens: int | None = None) -> None:
        o = self.options.fineweb
        s = a.signals
        lines = [ln for ln in text.split("\n") if ln.strip()]
        if not lines:
            a.fail("empty", "no non-blank line left after C4's line rules")
            return
        punct = sum(1 for ln in lines if ln.endswith(ts.TERMINAL_PUNCTUATION)) / len(lines)
        s["q_line_punct_ratio"] = punct
        if o.line_punct_thr is not None and punct < o.line_punct_thr and not (punct == 0 and o.line_punct_exclude_zero):
            a.fail("fineweb_line_punct", _cmp("q_line_punct_ratio", punct, "<", o.line_punct_thr))
        s["q_short_line_ratio"] = sum(1 for ln in lines if len(ln) <= o.short_line_length) / len(lines)
        if _over(s["q_short_line_ratio"], o.short_line_thr):
            a.fail("fineweb_short_lines", _cmp("q_short_line_ratio", s["q_short_line_ratio"], ">", o.short_line_thr))
        s["q_char_dup_ratio"] = _ratio(ts.find_duplicates(lines)[1], len(text.replace("\n", "")))
        if _over(s["q_char_dup_ratio"], o.char_duplicates_ratio):
            a.fail("fineweb_char_dup", _cmp("q_char_dup_ratio", s["q_char_dup_ratio"], ">", o.char_duplicates_ratio))
        s["q_newline_ratio"] = _ratio(text.count("\n"), n_tokens if n_tokens is not None else len(ts.words(text, cjk)))
        if _over(s["q_newline_ratio"], o.new_line_ratio):
            a.fail("fineweb_newline_ratio", _cmp("q_newline_ratio", s["q_newline_ratio"], ">", o.new_line_ratio))

    def process(self, records: pa.RecordBatch) -> StageResult:
        texts = records.column("text").to_pylist()
        langs = languages(records)
        results = [self.assess(t, lang) for t, lang in zip(texts, langs)]
        records = set_column(records, self.fields[0], [r.text for r in results])
        for f in SIGNAL_FIELDS:
            records = set_column(records, f, [r.signals[f.name] for r in results])
        return StageResult(records, [r.reason for r in results], [r.detail for r in results])
