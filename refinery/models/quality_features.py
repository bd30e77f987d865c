"""Document-structure features for the quality classifier's second stage.

fastText sees words and per-line tags, but not the shape of the whole
document: what share of its lines are short, unpunctuated or repeated, how
much of it is function words, digits or Title Case.  Menus, footers, link
lists and product grids differ from prose in exactly these shares, so the
second stage (`quality_stack.py`) combines them with the fastText score.
Pure Python on the first `MAX_CHARS` characters, ~0.1 ms per document.
"""

from __future__ import annotations

import math
import re

from refinery.scripts import CJK_CHAR, CJK_LANGS
from refinery.stop_words import DEFAULT_STOP_WORDS

MAX_CHARS = 20_000  # a document is scored (fastText and these features) on its first 20k characters
SENTENCE_END = frozenset(".!?\"'”’:;)。！？」』）")
_WORD = re.compile(r"\w+", re.UNICODE)
_DIGIT = re.compile(r"\d")
_SYMBOL = re.compile(r"[^\w\s]")
_SPACE = re.compile(r"\s")
_BULLET = re.compile(r"^\s*(?:[-*•·▪►→>|]|\d{1,3}[.)])\s")
# English function words (Gopher's 8 are too few to tell a menu from a sentence); other languages
# use the quality stage's list, CJK the commonest particles.
_FUNCTION_WORDS = {
    "en": frozenset(
        "the of and to a in is that for it as was with be by on not this are or from at which but have an they "
        "you were their one all we can has there been if more when will would who so no its our your".split()
    ),
    "zh": frozenset("的 了 是 在 和 有 我 不 这 也 就 人 都 一 他 们 中 上 为 个 到 说 对 要 以 而".split()),
}

NAMES = (
    "log_chars", "log_lines", "mean_line_chars", "short_lines", "long_line_chars", "punct_lines",
    "function_words", "digits", "title_case_words", "repeated_lines", "link_like_lines", "bullet_lines", "symbols",
)  # fmt: skip


def function_words(lang: str) -> frozenset[str]:
    return _FUNCTION_WORDS.get(lang) or frozenset(DEFAULT_STOP_WORDS.get(lang, ()))


def features(text: str, lang: str) -> list[float]:
    """The `NAMES` features of one document (shares in 0..1, sizes as logs)."""
    text = text[:MAX_CHARS]
    lines = [ln.strip() for ln in text.split("\n") if ln.strip()]
    if not lines:
        return [0.0] * len(NAMES)
    n = len(lines)
    chars = sum(len(ln) for ln in lines)
    words = _WORD.findall(text)
    if lang in CJK_LANGS:
        words = [c for w in words for c in (CJK_CHAR.findall(w) or [w])]
    nw = max(1, len(words))
    fw = function_words(lang)
    ends = [ln[-1] in SENTENCE_END for ln in lines]
    seen: dict[str, int] = {}
    for ln in lines:
        seen[ln] = seen.get(ln, 0) + 1
    non_space = max(1, len(text) - len(_SPACE.findall(text)))
    return [
        math.log1p(chars) / 10,
        math.log1p(n) / 10,
        min(chars / n, 1000) / 1000,
        sum(len(ln) < 30 for ln in lines) / n,
        sum(len(ln) for ln in lines if len(ln) >= 80) / max(1, chars),
        sum(ends) / n,
        sum(map(fw.__contains__, map(str.lower, words))) / nw,
        len(_DIGIT.findall(text)) / non_space,
        sum(map(str.isupper, [w[0] for w in words])) / nw,
        sum(c for c in seen.values() if c > 1) / n,
        sum(len(_WORD.findall(ln)) <= 4 for ln, e in zip(lines, ends) if not e) / n,
        sum(bool(_BULLET.match(ln)) for ln in lines) / n,
        len(_SYMBOL.findall(text)) / non_space,
    ]
