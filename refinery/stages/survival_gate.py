"""Survival gate: drop, before trafilatura runs, pages whose whole visible text already fails a later rule.

trafilatura's main text is a part of the page's visible text, so a page whose *whole* visible text
has too few words, too few stop words or too little alphabetic text cannot give a main text that
passes Gopher's rules downstream.  web-en applies Gopher's own main-text thresholds (50 words; 5
stop words where Gopher asks 2) to the whole page, which also holds menus and footers, so that no
page the full pipeline keeps is lost; `bench/survival_gate.py` measures the false drops on every
real page set (bench/README.md, "Survival gate").  The text is the one the language prefilter
already made, so the gate costs a partial tokenisation, not a parse.
"""

from __future__ import annotations

from pydantic import Field

from refinery.strict import StrictModel
from refinery.stages import text_stats as ts
from refinery.stages.quality import CjkOptions
from refinery.stop_words import DEFAULT_STOP_WORDS


class GateOptions(StrictModel):
    """Thresholds on the whole page's visible text; null switches a rule off."""

    min_words: int | None = Field(None, ge=1, description="fewer words (not punctuation) on the whole page: gate:min_words")
    min_stop_words: int | None = Field(
        None, ge=1, description="fewer stop words of every prefilter language on the whole page: gate:stop_words"
    )
    min_alpha_words_ratio: float | None = Field(
        None, gt=0, le=1, description="smaller share of tokens with a letter on the whole page: gate:alpha_words"
    )


def stop_word_lists(languages: list[str]) -> dict[str, frozenset[str]]:
    """The quality stage's stop words of each language that has a list (others: no stop-word rule)."""
    return {lang: frozenset(DEFAULT_STOP_WORDS[lang]) for lang in languages if lang in DEFAULT_STOP_WORDS}


class SurvivalGate:
    """Decides from a page's visible text whether its main text could still pass the quality rules."""

    def __init__(self, options: GateOptions, languages: list[str]) -> None:
        self.options = options
        self.stop_words = stop_word_lists(languages)
        # Han/kana characters count one word each when a CJK language (the quality stage's default
        # list) is allowed: more words, so the word rules only get more lenient.
        cjk_languages = CjkOptions().languages
        self.cjk = any(lang in cjk_languages for lang in languages)

    def check(self, text: str) -> tuple[str, str] | None:
        """(reason, detail) when the page certainly fails later, else None.

        The word and stop-word rules stop reading as soon as the page has enough of both (a few
        hundred tokens on an ordinary page), so the gate costs far less than tokenising the page;
        the alphabetic-ratio rule, when on, needs every token."""
        o = self.options
        need_words = o.min_words or 0
        need_stop = o.min_stop_words if (o.min_stop_words is not None and self.stop_words) else 0
        full_pass = o.min_alpha_words_ratio is not None
        n_words = n_tokens = n_alpha = 0
        stops = dict.fromkeys(self.stop_words, 0)
        enough_stop = need_stop == 0
        is_symbol, lists = ts.is_symbol, list(self.stop_words.items())
        for match in ts.word_iter(text, self.cjk):
            token = match.group()
            n_tokens += 1
            if not is_symbol(token):
                n_words += 1
            if full_pass and ts.has_letter(token):
                n_alpha += 1
            if not enough_stop:
                lowered = token.lower()
                for lang, words in lists:
                    if lowered in words:
                        stops[lang] += 1
                        enough_stop = stops[lang] >= need_stop
            if not full_pass and enough_stop and n_words >= need_words:
                return None
        if n_words < need_words:
            return "gate:min_words", f"page_words={n_words}<{need_words} (gate.min_words, whole visible page)"
        if full_pass and n_tokens and n_alpha / n_tokens < o.min_alpha_words_ratio:
            return ("gate:alpha_words", f"page_alpha_words_ratio={n_alpha / n_tokens:.3f}<{o.min_alpha_words_ratio:g} "
                    "(gate.min_alpha_words_ratio, whole visible page)")
        if not enough_stop:
            found = ", ".join(f"{lang} {n}" for lang, n in sorted(stops.items()))
            return "gate:stop_words", f"page_stop_words=({found})<{need_stop} (gate.min_stop_words, whole visible page)"
        return None
