"""Blocklist files -> compact hashed sets.

A Python set of a few million domain strings costs ~100 bytes an entry; here
every entry is a 64-bit xxh3 hash in one sorted numpy array, with a parallel
array of category bits (which of the configured categories list it), so an
entry costs 8 bytes plus 1-8 bytes of bits (bench/urlfilter_bench.py reports
the figure).  Lookups hash the candidate keys of a whole batch and answer
with one `searchsorted`.  A false match needs a 64-bit collision: about
entries / 2**64 per lookup (1.6e-13 for 3 million entries).

File format (UT1's): one entry a line, UTF-8, plain or gzip; blank lines and
lines starting with `#` are ignored.  A malformed line is a ListError naming
the file and the line number, raised when the pipeline is loaded.
"""

from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Iterator

import numpy as np
import xxhash

from refinery.errors import ConfigError
from refinery.files import open_maybe_gzip
from refinery.urlfilter.normalise import HOST_RE, normalise_host, split_url, url_key

KINDS = ("domains", "urls")


class ListError(ConfigError):
    """A list file that cannot be used: missing, unreadable, or a malformed line."""


def key_hash(key: str) -> int:
    return xxhash.xxh3_64_intdigest(key.encode("utf-8"))


def open_binary(path: Path) -> io.BufferedIOBase:
    """The file's bytes, gunzipped when it starts with the gzip magic."""
    try:
        return open_maybe_gzip(path)
    except OSError as err:
        raise ListError(f"{path}: cannot read list file: {err.strerror or err}") from None


def iter_lines(path: Path) -> Iterator[tuple[int, str]]:
    """(line number, stripped entry) for every entry line; errors name the file and line.

    Lines are decoded one by one, so a bad byte is reported on its own line."""
    lineno = 0
    with open_binary(path) as f:
        try:
            for lineno, raw in enumerate(f, 1):
                try:
                    entry = raw.decode("utf-8").strip()
                except UnicodeDecodeError as err:
                    raise ListError(f"{path}:{lineno}: not UTF-8 text ({err.reason})") from None
                if entry and not entry.startswith("#"):
                    yield lineno, entry
        except (OSError, EOFError) as err:  # a truncated or corrupt gzip member
            raise ListError(f"{path}:{lineno + 1}: unreadable ({err})") from None


def domain_entry(path: Path, lineno: int, entry: str) -> str:
    host = normalise_host(entry)
    if not HOST_RE.match(host):
        raise ListError(f"{path}:{lineno}: not a domain: {entry[:200]!r}")
    return host


def url_entry(path: Path, lineno: int, entry: str) -> str:
    if any(c.isspace() for c in entry):
        raise ListError(f"{path}:{lineno}: a URL entry cannot contain whitespace: {entry[:200]!r}")
    parts = split_url(entry)
    if parts is None or not HOST_RE.match(parts[0].split(":", 1)[0]):
        raise ListError(f"{path}:{lineno}: not a URL (host/path): {entry[:200]!r}")
    return url_key(*parts)


def entry_hashes(path: Path, kind: str) -> np.ndarray:
    """Hashes of every entry of one file (validated line by line)."""
    parse = domain_entry if kind == "domains" else url_entry
    return np.fromiter((key_hash(parse(path, n, e)) for n, e in iter_lines(path)), dtype=np.uint64)


def _sorted_unique(a: np.ndarray) -> np.ndarray:
    if len(a) < 2:
        return a
    keep = np.empty(len(a), dtype=bool)
    keep[0] = True
    np.not_equal(a[1:], a[:-1], out=keep[1:])
    return a if keep.all() else a[keep]


@dataclass
class HashedSet:
    """Sorted unique 64-bit key hashes, each with the bits of the categories that list it."""

    keys: np.ndarray  # uint64, sorted, unique
    bits: np.ndarray  # category bitmask per key (smallest unsigned type that fits)

    @classmethod
    def build(cls, parts: Iterable[tuple[np.ndarray, int]], n_categories: int) -> "HashedSet":
        """`parts`: (hashes, category index) pairs; a key in several categories gets all their bits.

        Each part is sorted and deduplicated before the merge, so the peak memory stays
        near twice the final arrays (no argsort index arrays).  Parts that own their
        memory (fresh arrays, as entry_hashes returns) are sorted in place: don't reuse them."""
        dtype = np.min_scalar_type((1 << max(n_categories, 1)) - 1)
        uniq: list[tuple[np.ndarray, int]] = []
        for h, cat in parts:
            if not h.flags.owndata:
                h = h.copy()
            h.sort()
            uniq.append((_sorted_unique(h), cat))
        if not uniq:
            return cls(np.zeros(0, np.uint64), np.zeros(0, dtype))
        if len(uniq) == 1:
            keys = uniq[0][0]
        else:
            keys = np.concatenate([h for h, _ in uniq])
            keys.sort()
            keys = _sorted_unique(keys)
        bits = np.zeros(len(keys), dtype=dtype)
        for h, cat in uniq:
            bits[np.searchsorted(keys, h)] |= dtype.type(1 << cat)
        return cls(keys, bits)

    def __len__(self) -> int:
        return len(self.keys)

    @property
    def nbytes(self) -> int:
        return self.keys.nbytes + self.bits.nbytes

    def lookup(self, hashes: np.ndarray) -> np.ndarray:
        """Category bits per query hash (0: not listed)."""
        if len(self.keys) == 0 or len(hashes) == 0:
            return np.zeros(len(hashes), dtype=self.bits.dtype)
        pos = np.searchsorted(self.keys, hashes)
        pos[pos == len(self.keys)] = 0
        found = self.keys[pos] == hashes
        return np.where(found, self.bits[pos], 0).astype(self.bits.dtype, copy=False)
