"""Text measurements shared by the quality rules: words, lines, n-gram repetition.

Words come from a regex tokenizer for space-delimited scripts; for Chinese and
Japanese every Han/kana character counts as a word, which gives the
character-based equivalents of rules written for space-separated languages.
"""

from __future__ import annotations

import re
import string
from collections import Counter

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


def is_symbol(token: str) -> bool:
    return all(ch in PUNCTUATION for ch in token)


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


def top_ngram_chars(tokens: list[str], n: int, joiner: str) -> int:
    """Characters covered by the most frequent n-gram (length x count)."""
    if len(tokens) < n:
        return 0
    counts = Counter(joiner.join(tokens[i : i + n]) for i in range(len(tokens) - n + 1))
    gram, count = counts.most_common(1)[0]
    return len(gram) * count if count > 1 else 0


def duplicate_ngram_chars(tokens: list[str], n: int) -> int:
    """Characters in n-grams that repeat an earlier n-gram, never counting a token twice."""
    seen: set[str] = set()
    repeated = 0
    i = 0
    limit = len(tokens) - n + 1
    while i < limit:
        gram = "".join(tokens[i : i + n])
        if gram in seen:
            repeated += len(gram)
            i += n
        else:
            seen.add(gram)
            i += 1
    return repeated


def count_cjk(text: str) -> int:
    return len(_CJK_CHAR.findall(text))
