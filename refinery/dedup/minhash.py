"""Normalisation, shingling and MinHash signatures, vectorised with numpy.

Signatures are bit-for-bit those of `datasketch.MinHash(num_perm, seed,
hashfunc=shingle_hash32)` (scheme "affine32", datasketch's default): the same
RandomState permutations, the same MurmurHash3 pre-mix, the same uint32
wrap-around.  What differs is speed: datasketch applies the permutations one
document at a time from Python; here every shingle of a whole batch of
documents is hashed into one array and permuted/min-reduced in a few numpy
calls, and token hashes are combined into shingle hashes without building
shingle strings.
"""

from __future__ import annotations

import re
import unicodedata
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import xxhash

U32 = np.uint32
U64 = np.uint64
MAX_HASH = np.uint32(0xFFFFFFFF)
NORMALISATION_VERSION = 1  # bump when normalise() changes: it changes every hash

_NON_WORD = re.compile(r"[^\w\s]|_")
_DIGIT = re.compile(r"\d")
_SPACE = re.compile(r"\s+")

# Token-combining constants (64-bit odd multipliers from xxh64 / splitmix64).
_P1 = 0x9E3779B185EBCA87
_P2 = 0xC2B2AE3D27D4EB4F
_MASK64 = (1 << 64) - 1


@dataclass(frozen=True)
class Shingling:
    """How a document becomes a set: word n-grams or character n-grams."""

    kind: str = "word"  # "word" | "char"
    size: int = 5


def normalise(text: str | None) -> str:
    """NFKC, case-folded, digits -> 0, punctuation -> space, whitespace collapsed.

    Chosen so reformatting (case, quotes, spacing, renumbered dates) does not
    make a copy look new, while every word still counts.
    """
    if not text:
        return ""
    text = unicodedata.normalize("NFKC", text).casefold()
    text = _DIGIT.sub("0", _NON_WORD.sub(" ", text))
    return _SPACE.sub(" ", text).strip()


def exact_hash(normalised: str) -> int:
    """64-bit content hash of the normalised text (the exact-duplicate layer)."""
    return xxhash.xxh3_64_intdigest(normalised.encode("utf-8"))


# -- token hashes --------------------------------------------------------------
def fmix64(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> U64(33))
    h = h * U64(0xFF51AFD7ED558CCD)
    h = h ^ (h >> U64(33))
    h = h * U64(0xC4CEB9FE1A85EC53)
    return h ^ (h >> U64(33))


def _fmix64_py(h: int) -> int:
    h ^= h >> 33
    h = (h * 0xFF51AFD7ED558CCD) & _MASK64
    h ^= h >> 33
    h = (h * 0xC4CEB9FE1A85EC53) & _MASK64
    return h ^ (h >> 33)


_POW: list[np.ndarray] = [np.ones(1, dtype=U64)]


def _powers(n: int) -> np.ndarray:
    """_P1**i mod 2**64 for i < n (grown on demand, shared by all calls)."""
    if len(_POW[0]) < n:
        size = max(n, 2 * len(_POW[0]))
        with np.errstate(over="ignore"):
            _POW[0] = np.cumprod(np.concatenate((np.ones(1, U64), np.full(size - 1, _P1, dtype=U64))), dtype=U64)
    return _POW[0][:n]


def _word_hash(word: str) -> int:
    """fmix64 of sum((byte+1) * P1**i) over the UTF-8 bytes of `word + " "` (see _word_hashes)."""
    h = 0
    p = 1
    for byte in (word + " ").encode("utf-8"):
        h = (h + (byte + 1) * p) & _MASK64
        p = (p * _P1) & _MASK64
    return _fmix64_py(h)


def _word_hashes(normalised: str) -> np.ndarray:
    """_word_hash of every space-separated word at once: a polynomial hash summed per word with reduceat."""
    data = np.frombuffer((normalised + " ").encode("utf-8"), dtype=np.uint8)
    ends = np.flatnonzero(data == 32)  # each word owns its trailing space
    starts = np.concatenate(([0], ends[:-1] + 1))
    lengths = ends - starts + 1
    pos = np.arange(len(data)) - np.repeat(starts, lengths)
    with np.errstate(over="ignore"):
        vals = (data.astype(U64) + U64(1)) * _powers(int(lengths.max()))[pos]
        return fmix64(np.add.reduceat(vals, starts))


def _char_hash(ch: str) -> int:
    return _fmix64_py((ord(ch) * _P1 + 1) & _MASK64)


def tokens(normalised: str, kind: str) -> list[str]:
    if kind == "char":
        return [c for c in normalised if not c.isspace()]
    return normalised.split(" ") if normalised else []


def token_hashes(normalised: str, kind: str) -> np.ndarray:
    """uint64 hash per token, computed in bulk."""
    if kind == "char":
        s = normalised.replace(" ", "")
        cps = np.frombuffer(s.encode("utf-32-le"), dtype="<u4").astype(U64)
        with np.errstate(over="ignore"):
            return fmix64(cps * U64(_P1) + U64(1))
    if not normalised:
        return np.zeros(0, dtype=U64)
    return _word_hashes(normalised)


def shingle_hashes(tok: np.ndarray, size: int) -> np.ndarray:
    """32-bit hash per n-gram of consecutive token hashes (one n-gram if the text is shorter)."""
    n = len(tok)
    if n == 0:
        return np.zeros(0, dtype=U32)
    k = min(size, n)
    m = n - k + 1
    with np.errstate(over="ignore"):
        h = tok[:m].copy()
        for j in range(1, k):
            h = h * U64(_P2) + tok[j : j + m]
        h = fmix64(h)
    return (h >> U64(32)).astype(U32)


def shingle_hash32(shingle: Sequence[str], kind: str = "word") -> int:
    """The same shingle hash for one shingle given as its tokens: datasketch's `hashfunc`."""
    th = _char_hash if kind == "char" else _word_hash
    h = th(shingle[0])
    for t in shingle[1:]:
        h = (h * _P2 + th(t)) & _MASK64
    return _fmix64_py(h) >> 32


def shingles(normalised: str, shingling: Shingling) -> list[tuple[str, ...]]:
    """The distinct shingles as token tuples (reference path for tests and datasketch)."""
    tok = tokens(normalised, shingling.kind)
    if not tok:
        return []
    k = min(shingling.size, len(tok))
    return sorted({tuple(tok[i : i + k]) for i in range(len(tok) - k + 1)})


# -- MinHash -------------------------------------------------------------------
def permutations(num_perm: int, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """datasketch's affine32 permutation parameters (a odd, b), from RandomState(seed)."""
    gen = np.random.RandomState(seed)
    a = gen.randint(0, 1 << 31, num_perm, dtype=U32) * U32(2) + U32(1)
    b = gen.randint(0, 1 << 32, num_perm, dtype=U32)
    return a, b


def _fmix32(h: np.ndarray) -> np.ndarray:
    h = h ^ (h >> U32(16))
    h = h * U32(0x85EBCA6B)
    h = h ^ (h >> U32(13))
    h = h * U32(0xC2B2AE35)
    return h ^ (h >> U32(16))


class MinHasher:
    """Signatures for batches of documents; one instance per worker process."""

    # Cap on the permuted matrix per chunk (rows x num_perm uint32), ~32 MiB.
    CHUNK_ELEMENTS = 8 * 1024 * 1024

    def __init__(self, num_perm: int = 128, seed: int = 1) -> None:
        self.num_perm = num_perm
        self.seed = seed
        self.a, self.b = permutations(num_perm, seed)

    def signatures_from_hashes(self, per_doc: Sequence[np.ndarray]) -> np.ndarray:
        """(n_docs, num_perm) uint32 signatures from each document's shingle hashes."""
        n = len(per_doc)
        out = np.full((n, self.num_perm), MAX_HASH, dtype=U32)
        max_rows = max(1, self.CHUNK_ELEMENTS // self.num_perm)
        start = 0
        while start < n:
            # Group consecutive documents until the chunk is full (one doc may exceed it alone).
            end, rows = start, 0
            while end < n and (rows == 0 or rows + len(per_doc[end]) <= max_rows):
                rows += len(per_doc[end])
                end += 1
            self._fill(per_doc[start:end], out[start:end])
            start = end
        return out

    def _fill(self, docs: Sequence[np.ndarray], out: np.ndarray) -> None:
        lengths = np.fromiter((len(d) for d in docs), dtype=np.int64, count=len(docs))
        nonempty = np.flatnonzero(lengths)
        if len(nonempty) == 0:
            return
        hv = _fmix32(np.concatenate([docs[i] for i in nonempty]).astype(U32, copy=False))
        with np.errstate(over="ignore"):
            phv = hv[:, None] * self.a[None, :] + self.b[None, :]
        offsets = np.concatenate(([0], np.cumsum(lengths[nonempty])[:-1]))
        out[nonempty] = np.minimum.reduceat(phv, offsets, axis=0)

    def signatures(self, texts: Iterable[str | None], shinglings: Iterable[Shingling]) -> np.ndarray:
        per_doc = [
            shingle_hashes(token_hashes(normalise(t), s.kind), s.size) for t, s in zip(texts, shinglings)
        ]
        return self.signatures_from_hashes(per_doc)


def jaccard(sig_a: np.ndarray, sig_b: np.ndarray) -> float:
    """MinHash Jaccard estimate: the fraction of equal signature slots."""
    return float(np.count_nonzero(sig_a == sig_b)) / len(sig_a)
