"""Text measurements shared by the quality rules: words, lines, n-gram repetition.

Words come from a regex tokenizer for space-delimited scripts; for Chinese and
Japanese every Han/kana character counts as a word, which gives the
character-based equivalents of rules written for space-separated languages.
"""

from __future__ import annotations

import re
import string
from collections import Counter
from itertools import accumulate
from typing import Iterator

PUNCTUATION = set(string.punctuation) | set("«»‘’‚‛“”„‟‹›–—―…·•¡¿、。，！？：；（）《》〈〉「」『』【】〔〕・～")
# Sentence-ending characters used by C4 and FineWeb (a subset of Unicode Sentence_Terminal
# plus closing quotes, which end many sentences).
TERMINAL_PUNCTUATION = (".", "!", "?", '"', "'", "”", "’", "。", "！", "？", "…", "؟", "।", "॥", "։", "።", "။", "۔", "‼", "⁇", "⁈", "⁉", "︒", "﹒", "﹖", "﹗", "．", "｡")

_WORD = re.compile(r"\w+(?:[-'’]\w+)*|[^\w\s]+", re.UNICODE)
_CJK_CHAR = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]")
_CJK_OR_WORD = re.compile(
    r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]"
    r"|[^\W\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff\uff66-\uff9f]+(?:[-'’]\w+)*"
    r"|[^\w\s]+",
    re.UNICODE,
)
_PARAGRAPHS = re.compile(r"\n{2,}")
_LINES = re.compile(r"\n+")
_SENTENCE_END = re.compile(r"(?<=[.!?。！？])[\"'”’)\]]*(?:\s+|$)")


def words(text: str, cjk: bool) -> list[str]:
    """Tokens including punctuation tokens (like a Treebank tokenizer)."""
    return (_CJK_OR_WORD if cjk else _WORD).findall(text)


def word_iter(text: str, cjk: bool) -> Iterator[re.Match[str]]:
    """The tokens of `words`, lazily (callers that can stop early need not tokenise everything)."""
    return (_CJK_OR_WORD if cjk else _WORD).finditer(text)


_PUNCTUATION_CHARS = "".join(sorted(PUNCTUATION))


def is_symbol(token: str) -> bool:
    """Every character is punctuation (str.strip runs at C speed: same answer as checking each one)."""
    return not token.strip(_PUNCTUATION_CHARS)


def has_letter(token: str) -> bool:
    return token.isalpha() or any(c.isalpha() for c in token)


def paragraphs(text: str) -> list[str]:
    return _PARAGRAPHS.split(text.strip())


def lines(text: str) -> list[str]:
    return _LINES.split(text)


def sentences(line: str) -> list[str]:
    return [s for s in _SENTENCE_END.split(line) if s.strip()]


def find_duplicates(items: list[str]) -> tuple[int, int]:
    """(number of repeated elements, characters in them), counting first occurrences as unique."""
    seen: set[str] = set()
    dup_elements = dup_chars = 0
    for item in items:
        if item in seen:
            dup_elements += 1
            dup_chars += len(item)
        else:
            seen.add(item)
    return dup_elements, dup_chars


class Joined:
    """Tokens joined once with `joiner`, so that each n-gram is one slice of one string instead of
    a list slice and a join per position (the n-gram rules read every position for 9 values of n).
    `gram(i, n)` is exactly `joiner.join(tokens[i:i + n])`."""

    def __init__(self, tokens: list[str], joiner: str) -> None:
        self.text = joiner.join(tokens)
        self.sep = len(joiner)
        self.starts = list(accumulate((len(t) + self.sep for t in tokens), initial=0))
        self.count = len(tokens)

    def grams(self, n: int) -> list[str]:
        text, starts, sep = self.text, self.starts, self.sep
        return [text[starts[i] : starts[i + n] - sep] for i in range(self.count - n + 1)]


def top_ngram_chars(tokens: list[str], n: int, joiner: str, joined: Joined | None = None) -> int:
    """Characters covered by the most frequent n-gram (length x count)."""
    if len(tokens) < n:
        return 0
    counts = Counter((joined or Joined(tokens, joiner)).grams(n))
    gram, count = counts.most_common(1)[0]
    return len(gram) * count if count > 1 else 0


def duplicate_ngram_chars(tokens: list[str], n: int, joined: Joined | None = None) -> int:
    """Characters in n-grams (tokens joined with no separator) that repeat an earlier n-gram,
    never counting a token twice.  `joined`: the tokens joined with "" (Joined), if already made."""
    j = joined or Joined(tokens, "")
    text, starts = j.text, j.starts
    seen: set[str] = set()
    add = seen.add
    repeated = 0
    i = 0
    limit = len(tokens) - n + 1
    while i < limit:
        gram = text[starts[i] : starts[i + n]]
        if gram in seen:
            repeated += len(gram)
            i += n
        else:
            add(gram)
            i += 1
    return repeated


def count_cjk(text: str) -> int:
    return len(_CJK_CHAR.findall(text))
