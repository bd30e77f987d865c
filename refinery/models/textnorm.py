"""Text normalisation before SentencePiece/KenLM, as cc_net does it (cc_net/text_normalizer.py).

Lower case, accents stripped, every digit -> 0, typographic punctuation mapped to
ASCII, control characters removed.  The same function runs when the model is
trained and when a document is scored, so the two always agree.
"""

from __future__ import annotations

import re
import unicodedata

UNICODE_PUNCT = {
    "，": ",", "。": ".", "、": ",", "„": '"', "”": '"', "“": '"', "«": '"', "»": '"',
    "１": '"', "」": '"', "「": '"', "《": '"', "》": '"', "´": "'", "∶": ":", "：": ":",
    "？": "?", "！": "!", "（": "(", "）": ")", "；": ";", "–": "-", "—": " - ", "．": ". ",
    "～": "~", "’": "'", "…": "...", "━": "-", "〈": "<", "〉": ">", "【": "[", "】": "]",
    "％": "%", "►": "-",
}  # fmt: skip
_PUNCT_RE = re.compile("[" + "".join(re.escape(k) for k in UNICODE_PUNCT) + "]")
_DIGIT_RE = re.compile(r"\d")
_NON_PRINTING = re.compile("[" + "".join(map(chr, list(range(0, 32)) + list(range(127, 160)))) + "]")
_SPACES = re.compile(r"\s+")


def strip_accents(line: str) -> str:
    nfd = unicodedata.normalize("NFD", line)
    if len(nfd) == len(line):
        return line
    return "".join(c for c in nfd if unicodedata.category(c) != "Mn")


def normalize(line: str) -> str:
    """cc_net's normalize(accent=True, case=True, numbers=True, punct=1)."""
    line = line.strip()
    if not line:
        return line
    line = strip_accents(line.lower())
    line = _DIGIT_RE.sub("0", line)
    line = _PUNCT_RE.sub(lambda m: UNICODE_PUNCT[m.group(0)], line)
    line = _NON_PRINTING.sub("", line)
    return _SPACES.sub(" ", line).strip()


def paragraphs(text: str) -> list[str]:
    """Non-empty lines: cc_net scores a document line by line."""
    return [ln for ln in (p.strip() for p in text.split("\n")) if ln]


_WIKITEXT_JOINS = ((" @-@ ", "-"), (" @,@ ", ","), (" @.@ ", "."))
_WIKITEXT_SPACE_BEFORE = re.compile(r" ([,.;:!?)\]}'%]|'s|n't)")
_WIKITEXT_SPACE_AFTER = re.compile(r"([(\[{$]) ")


def detokenize_wikitext(line: str) -> str:
    """Undo WikiText's tokenisation (` , `, ` @-@ `) and drop `<unk>` so text looks like raw Wikipedia."""
    for a, b in _WIKITEXT_JOINS:
        line = line.replace(a, b)
    line = _SPACES.sub(" ", line.replace("<unk>", " "))
    line = _WIKITEXT_SPACE_BEFORE.sub(r"\1", line)
    line = _WIKITEXT_SPACE_AFTER.sub(r"\1", line)
    line = line.replace(' " ', ' "')
    return _SPACES.sub(" ", line).strip()
