"""Texts -> 64-bit n-gram hashes, a whole batch at a time.

Normalisation (NORMALISATION_VERSION): NFKC, case-folded; tokens are runs of
ASCII letters and digits and of non-ASCII characters, everything else
(ASCII punctuation, whitespace, and the Unicode punctuation of the Latin-1,
General Punctuation and CJK Symbols blocks: typographic quotes, dashes,
ellipses, NBSP, 「」, 。) separates them.  So an item that was re-cased,
re-punctuated or re-spaced yields the same tokens.  Digits are kept (unlike
dedup's normalisation, which maps them to 0): arithmetic items would
otherwise match every page with a run of numbers.  Chinese and Japanese are
tokenised by character instead.

Tokens are split at C speed (bytes.translate + split) and hashed with xxh3;
then one vectorised recurrence h = h*P + token over the whole batch gives
every n-gram, keeping those that do not cross a document boundary: numpy's
per-call overhead is paid per batch, not per document.
"""

from __future__ import annotations

import re
import unicodedata
from typing import Sequence

import numpy as np
import xxhash

from refinery.dedup.minhash import fmix64

U64 = np.uint64
NORMALISATION_VERSION = 1
_P = U64(0xC2B2AE3D27D4EB4F)
# bytes.translate table: every ASCII byte that is not a letter or digit becomes a space.
# Upper-case ASCII is lowered by the same table (ASCII texts skip str.casefold).
_TABLE = bytes(
    c + 32 if 65 <= c <= 90 else c if (chr(c).isascii() and chr(c).isalnum()) or c >= 0x80 else 0x20 for c in range(256)
)
# UTF-8 of U+00A0-00BF, U+2000-207F, U+3000-303F (NBSP, Latin-1 punctuation, quotes, dashes, CJK punctuation).
_UNICODE_PUNCT = re.compile(rb"\xc2[\xa0-\xbf]|\xe2[\x80\x81][\x80-\xbf]|\xe3\x80[\x80-\xbf]")
_CHAR_TOKEN = re.compile(r"[^\W_]")


def fold(text: str | None) -> str:
    """NFKC + casefold for non-ASCII text; ASCII text is returned as is (split_words lowers it)."""
    if not text:
        return ""
    if text.isascii():
        return text
    return unicodedata.normalize("NFKC", text).casefold()


def split_words(folded: str) -> list[bytes]:
    """The word tokens of a folded text, as UTF-8 bytes (C-speed translate + split)."""
    data = folded.encode("utf-8")
    if not folded.isascii():
        data = _UNICODE_PUNCT.sub(b" ", data)
    return data.translate(_TABLE).split()


def word_tokens(folded: Sequence[str]) -> tuple[np.ndarray, np.ndarray]:
    """(uint64 xxh3 hash per word token, document index per token) for a batch of folded texts."""
    allw: list[bytes] = []
    sizes = []
    for text in folded:
        words = split_words(text)
        sizes.append(len(words))
        allw += words
    hashes = np.fromiter(map(xxhash.xxh3_64_intdigest, allw), dtype=U64, count=len(allw))
    return hashes, np.repeat(np.arange(len(folded), dtype=np.int64), sizes)


def char_tokens(folded: str) -> np.ndarray:
    """uint64 hash per letter/digit character (zh/ja), punctuation and spaces removed."""
    s = "".join(_CHAR_TOKEN.findall(folded.lower() if folded.isascii() else folded))
    if not s:
        return np.zeros(0, U64)
    cps = np.frombuffer(s.encode("utf-32-le"), dtype="<u4").astype(U64)
    with np.errstate(over="ignore"):
        return fmix64(cps * U64(0x9E3779B185EBCA87) + U64(7))


_POW: list[np.ndarray] = [np.ones(1, U64), np.ones(1, U64)]  # P**i and P**-i mod 2**64, grown on demand
_P_INV = U64(pow(int(_P), -1, 1 << 64))


def _powers(n: int) -> tuple[np.ndarray, np.ndarray]:
    if len(_POW[0]) < n:
        size = max(n, 2 * len(_POW[0]))
        with np.errstate(over="ignore"):
            _POW[0] = np.cumprod(np.concatenate((np.ones(1, U64), np.full(size - 1, _P, U64))), dtype=U64)
            _POW[1] = np.cumprod(np.concatenate((np.ones(1, U64), np.full(size - 1, _P_INV, U64))), dtype=U64)
    return _POW[0][:n], _POW[1][:n]


def gram_hashes(tok: np.ndarray, doc: np.ndarray, lengths: Sequence[int]) -> tuple[np.ndarray, np.ndarray]:
    """(hashes, document index) of every run of k consecutive tokens of one document, for each k in `lengths`.

    `tok`/`doc`: the batch's tokens in order and the document of each (non-decreasing).  The hash of
    tokens i..i+k-1 is fmix64(k ^ sum_t tok[i+t] * P**t mod 2**64), from one prefix sum S:
    (S[i+k] - S[i]) * P**-i (P is odd, so invertible mod 2**64)."""
    lengths = sorted(set(lengths))
    n = len(tok)
    if not n or not lengths:
        return np.zeros(0, U64), np.zeros(0, np.int64)
    pw, inv = _powers(n + 1)
    out_h, out_d = [], []
    with np.errstate(over="ignore"):
        prefix = np.concatenate((np.zeros(1, U64), np.cumsum(tok * pw[:n], dtype=U64)))
        for k in lengths:
            m = n - k + 1
            if m <= 0:
                continue
            ok = np.flatnonzero(doc[:m] == doc[k - 1 :])  # first and last token in the same document
            h = (prefix[ok + k] - prefix[ok]) * inv[ok]
            out_h.append(fmix64(h ^ U64(k)))
            out_d.append(doc[ok])
    if not out_h:
        return np.zeros(0, U64), np.zeros(0, np.int64)
    return np.concatenate(out_h), np.concatenate(out_d)
