"""The resident LSH index: sorted numpy runs, ~192 bytes per document, no Python object per key.

Per band, a run stores each document's 64-bit band key as a sorted uint32
(high half) plus a uint16 (next 16 bits), and a uint32 document ordinal: 10
bytes.  With 18 bands that is 180 bytes, plus 12 for the exact layer (uint64
content hash + ordinal), plus a bucket directory over the top bits of each
band (~0.125 bytes per entry, ~2.3 per document).  48 key bits leave ~n/2**48 chance of a spurious
candidate per band lookup (3.6e-8 at 10M documents).

Runs are kept LSM-style: a new batch is one small sorted run; runs of similar
size are merged (numpy's stable sort finds the two sorted halves and merges
them in linear time), so there are O(log n) runs and each lookup is a few
binary searches per band.  A `CompactIndex` may hold only a range of bands:
N of them, each on its own Ray actor or machine, make the whole index
(`PartitionedIndex` combines their answers; see docs/dedup.md).
"""

from __future__ import annotations

import ctypes
from dataclasses import dataclass

import numpy as np

NO_MATCH = np.iinfo(np.int64).max
MERGE_RATIO = 4  # merge the newest run into the previous while it is >= 1/4 of its size


@dataclass
class Run:
    hi: np.ndarray  # (bands, m) uint32, each row sorted
    lo: np.ndarray  # (bands, m) uint16
    ords: np.ndarray  # (bands, m) uint32
    ex: np.ndarray  # (m,) uint64 sorted (empty when this index holds no exact layer)
    ex_ords: np.ndarray  # (m,) uint32
    dirs: np.ndarray | None = None  # (bands, 2**bits + 1) uint32: where each top-`bits` prefix starts
    bits: int = 0

    @property
    def size(self) -> int:
        return self.hi.shape[1] if self.hi.ndim == 2 else len(self.ex)

    @property
    def nbytes(self) -> int:
        arrays = (self.hi, self.lo, self.ords, self.ex, self.ex_ords, self.dirs)
        return sum(a.nbytes for a in arrays if a is not None)


KEY_BITS_MASK = np.uint64(~0xFFFF & 0xFFFFFFFFFFFFFFFF)


def comparable(keys: np.ndarray) -> np.ndarray:
    """Band keys reduced to the 48 bits this index compares: equal here <=> a match in query()."""
    return keys & KEY_BITS_MASK


def _split(keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    return (keys >> np.uint64(32)).astype(np.uint32), ((keys >> np.uint64(16)) & np.uint64(0xFFFF)).astype(np.uint16)


SMALL_QUERY = 512  # queries up to this many documents skip the directory (see _band_lookup)
DIRECTORY_BUCKET = 32  # entries per directory bucket, on average: ~0.125 bytes/entry, ~6 search steps


def _with_directory(run: Run) -> Run:
    """Bucket offsets by the top bits of `hi`, so a lookup binary-searches ~32 entries, not the run."""
    m = run.hi.shape[1]
    bits = max(0, min(24, int(np.log2(max(1, m // DIRECTORY_BUCKET)))))
    dirs = np.zeros((run.hi.shape[0], (1 << bits) + 1), np.uint32)
    for j in range(run.hi.shape[0]):
        counts = np.bincount(run.hi[j] >> np.uint32(32 - bits), minlength=1 << bits) if bits else np.array([m])
        np.cumsum(counts, out=dirs[j, 1:])
    run.dirs, run.bits = dirs, bits
    return run


def _make_run(keys: np.ndarray, exact: np.ndarray | None, ords: np.ndarray) -> Run:
    """keys: (m, bands) uint64; exact: (m,) uint64 or None; ords: (m,) uint32."""
    m, bands = keys.shape
    hi = np.empty((bands, m), np.uint32)
    lo = np.empty((bands, m), np.uint16)
    od = np.empty((bands, m), np.uint32)
    for j in range(bands):
        h, l = _split(keys[:, j])
        order = np.argsort(h, kind="stable")
        hi[j], lo[j], od[j] = h[order], l[order], ords[order]
    if exact is None:
        ex, ex_ords = np.zeros(0, np.uint64), np.zeros(0, np.uint32)
    else:
        order = np.argsort(exact, kind="stable")
        ex, ex_ords = exact[order], ords[order]
    return _with_directory(Run(hi, lo, od, ex, ex_ords))


def _merge(a: Run, b: Run) -> Run:
    """Merge two runs band by band (a stable sort of two sorted halves is a linear merge)."""
    bands = a.hi.shape[0]
    m = a.size + b.size
    hi = np.empty((bands, m), np.uint32)
    lo = np.empty((bands, m), np.uint16)
    od = np.empty((bands, m), np.uint32)
    for j in range(bands):
        h = np.concatenate((a.hi[j], b.hi[j]))
        order = np.argsort(h, kind="stable")
        hi[j] = h[order]
        lo[j] = np.concatenate((a.lo[j], b.lo[j]))[order]
        od[j] = np.concatenate((a.ords[j], b.ords[j]))[order]
    ex = np.concatenate((a.ex, b.ex))
    order = np.argsort(ex, kind="stable")
    return _with_directory(Run(hi, lo, od, ex[order], np.concatenate((a.ex_ords, b.ex_ords))[order]))


def _lookup(sorted_hi, los, ords, order, q_sorted, q_lo, best) -> None:
    """best[i] = min(best[i], ordinal of any entry equal to query i).

    Queries come pre-sorted (`q_sorted` = queries[order]): numpy's binary
    search reuses the previous position for ascending needles, which keeps
    the memory accesses local.  Only the rare hits are then walked.
    """
    m = len(sorted_hi)
    if m == 0:
        return
    left = np.searchsorted(sorted_hi, q_sorted, "left")
    idx = np.flatnonzero(left < m)
    idx = idx[sorted_hi[left[idx]] == q_sorted[idx]]
    k = 0
    while idx.size:
        pos = left[idx] + k
        qi = order[idx]
        if q_lo is not None:
            ok = los[pos] == q_lo[qi]
            qi, pos = qi[ok], pos[ok]
        np.minimum.at(best, qi, ords[pos].astype(np.int64))
        k += 1
        idx = idx[left[idx] + k < m]
        idx = idx[sorted_hi[left[idx] + k] == q_sorted[idx]]


def _band_lookup(sorted_hi, los, ords, directory, bits, q_hi, q_lo, best) -> None:
    """Like _lookup, for a band: the directory narrows each query to its bucket, then a
    vectorised binary search (a few numpy steps over all queries) finds the first entry."""
    m = len(sorted_hi)
    if m == 0:
        return
    if len(q_hi) <= SMALL_QUERY:
        # a few documents (the batch's own walk feeds a unit at a time): one plain binary
        # search each costs less than the vectorised search's fixed ~20 numpy calls
        lo = np.searchsorted(sorted_hi, q_hi, "left").astype(np.int64)
    else:
        bucket = (q_hi >> np.uint32(32 - bits)).astype(np.int64) if bits else np.zeros(len(q_hi), np.int64)
        lo = directory[bucket].astype(np.int64)
        hi = directory[bucket + 1].astype(np.int64)
        active = np.flatnonzero(lo < hi)
        while active.size:
            mid = (lo[active] + hi[active]) >> 1
            go = sorted_hi[mid] < q_hi[active]
            lo[active] = np.where(go, mid + 1, lo[active])
            hi[active] = np.where(go, hi[active], mid)
            active = active[lo[active] < hi[active]]
    idx = np.flatnonzero(lo < m)
    idx = idx[sorted_hi[lo[idx]] == q_hi[idx]]
    k = 0
    while idx.size:
        pos = lo[idx] + k
        ok = los[pos] == q_lo[idx]
        np.minimum.at(best, idx[ok], ords[pos[ok]].astype(np.int64))
        k += 1
        idx = idx[lo[idx] + k < m]
        idx = idx[sorted_hi[lo[idx] + k] == q_hi[idx]]


def _release_freed_memory() -> None:
    """Hand freed merge buffers back to the OS (glibc keeps them in its heap otherwise)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass


class CompactIndex:
    """Band keys (for bands [band_lo, band_hi)) and, optionally, exact hashes of indexed documents."""

    def __init__(self, bands: int, band_lo: int = 0, band_hi: int | None = None, exact: bool = True) -> None:
        self.bands = bands
        self.band_lo = band_lo
        self.band_hi = bands if band_hi is None else band_hi
        self.exact = exact
        self.runs: list[Run] = []
        self.size = 0

    @property
    def nbytes(self) -> int:
        return sum(r.nbytes for r in self.runs)

    def memory(self) -> int:
        """nbytes, as a method (callable on a Ray actor)."""
        return self.nbytes

    def insert(self, keys: np.ndarray, exact: np.ndarray | None, first_ordinal: int) -> None:
        """Add documents numbered first_ordinal.. (keys: (m, all bands) uint64)."""
        m = keys.shape[0]
        if m == 0:
            return
        if first_ordinal + m > 2**32:
            raise OverflowError("a CompactIndex numbers at most 2**32 documents: partition by hash range")
        ords = np.arange(first_ordinal, first_ordinal + m, dtype=np.uint32)
        self.runs.append(_make_run(keys[:, self.band_lo : self.band_hi], exact if self.exact else None, ords))
        self.size += m
        merged = False
        while len(self.runs) > 1 and self.runs[-1].size * MERGE_RATIO >= self.runs[-2].size:
            b = self.runs.pop()
            a = self.runs.pop()
            self.runs.append(_merge(a, b))
            del a, b
            merged = True
        if merged:
            _release_freed_memory()

    def query(self, keys: np.ndarray, exact: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        """Earliest ordinal with an equal content hash, and with a shared band (NO_MATCH if none)."""
        n = keys.shape[0]
        best_ex = np.full(n, NO_MATCH, np.int64)
        best_near = np.full(n, NO_MATCH, np.int64)
        if n == 0:
            return best_ex, best_near
        prepared = [_split(keys[:, j]) for j in range(self.band_lo, self.band_hi)]
        ex_order = np.argsort(exact, kind="stable") if exact is not None else None
        for run in self.runs:
            for j, (q_hi, q_lo) in enumerate(prepared):
                _band_lookup(run.hi[j], run.lo[j], run.ords[j], run.dirs[j], run.bits, q_hi, q_lo, best_near)
            if self.exact and exact is not None and len(run.ex):
                _lookup(run.ex, None, run.ex_ords, ex_order, exact[ex_order], None, best_ex)
        return best_ex, best_near


class PartitionedIndex:
    """N CompactIndex partitions by band range; the answer is the minimum over partitions.

    Each partition is independent (no shared state), so it can live in its own
    Ray actor (`actors=True`): the driver puts the key matrix in the object
    store once, every actor answers for its bands, and the driver min-reduces
    the (n,) answers.
    """

    def __init__(self, bands: int, partitions: int = 1, exact: bool = True, actors: bool = False) -> None:
        partitions = max(1, min(partitions, bands))
        edges = np.linspace(0, bands, partitions + 1).round().astype(int)
        specs = [(bands, int(edges[i]), int(edges[i + 1]), exact and i == 0) for i in range(partitions)]
        self.actors = actors
        if actors:
            import ray

            remote = ray.remote(num_cpus=0)(CompactIndex)
            self.parts = [remote.remote(*spec) for spec in specs]
        else:
            self.parts = [CompactIndex(*spec) for spec in specs]
        self.size = 0

    def _call(self, method: str, *args):
        if not self.actors:
            return [getattr(p, method)(*args) for p in self.parts]
        import ray

        refs = [ray.put(a) if isinstance(a, np.ndarray) else a for a in args]
        return ray.get([getattr(p, method).remote(*refs) for p in self.parts])

    @property
    def nbytes(self) -> int:
        return sum(self._call("memory"))

    def insert(self, keys: np.ndarray, exact: np.ndarray | None) -> None:
        if keys.shape[0]:
            self._call("insert", keys, exact, self.size)
        self.size += keys.shape[0]

    def query(self, keys: np.ndarray, exact: np.ndarray | None) -> tuple[np.ndarray, np.ndarray]:
        answers = self._call("query", keys, exact)
        best_ex = np.minimum.reduce([a[0] for a in answers])
        best_near = np.minimum.reduce([a[1] for a in answers])
        return best_ex, best_near
