"""Corpus figures for setting mixture weights: documents, tokens and bytes per language and bucket.

The token count is documented and tokenizer-free: **whitespace words**, the number of
maximal runs of non-whitespace characters in `text` (Unicode whitespace, exactly Python's
`len(text.split())`), counted by a vectorised scan of the UTF-8 bytes (word_counts).  `bytes` is the
UTF-8 length of `text`.  A null text counts as a document of 0 words and 0 bytes.

Each commit's figures are written into its manifest (`CommitRecord.stats`) when it is
committed; `refinery store stats` adds them up (computing them from the shards for
manifests written before this field existed).
"""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.parquet as pq

TOKEN_COUNT = "whitespace words of text (len(text.split()))"
# Breakdowns: single columns and the pairs an operator sets weights on; a column the shards lack is skipped.
DIMENSIONS: tuple[tuple[str, ...], ...] = (
    ("language",), ("ppl_bucket",), ("quality_bucket",), ("language", "ppl_bucket"), ("language", "quality_bucket"),
)
NULL = "null"


_ASCII_WS = np.zeros(256, dtype=bool)
_ASCII_WS[[9, 10, 11, 12, 13, 28, 29, 30, 31, 32]] = True  # str.isspace() below 128
_LEAD = np.zeros(256, dtype=bool)
_LEAD[[0xC2, 0xE1, 0xE2, 0xE3]] = True  # first bytes of the other whitespace characters


def _whitespace(b: np.ndarray) -> np.ndarray:
    """Per byte of UTF-8 text: part of a whitespace character (exactly str.isspace())."""
    ws = _ASCII_WS[b]
    lead = np.flatnonzero(_LEAD[b])  # sparse: checked one by one, vectorised
    if len(lead):
        pad = np.concatenate([b, np.zeros(2, np.uint8)])
        b0, b1, b2 = pad[lead], pad[lead + 1], pad[lead + 2]
        two = (b0 == 0xC2) & ((b1 == 0x85) | (b1 == 0xA0))  # U+0085, U+00A0
        three = ((b0 == 0xE2) & (b1 == 0x80) & (((b2 >= 0x80) & (b2 <= 0x8A)) | (b2 == 0xA8) | (b2 == 0xA9) | (b2 == 0xAF))) \
            | ((b0 == 0xE2) & (b1 == 0x81) & (b2 == 0x9F)) | ((b0 == 0xE1) & (b1 == 0x9A) & (b2 == 0x80)) \
            | ((b0 == 0xE3) & (b1 == 0x80) & (b2 == 0x80))  # U+2000..200A, 2028, 2029, 202F, 205F, 1680, 3000
        for at, width in ((lead[two], 2), (lead[three], 3)):
            for k in range(width):
                ws[at + k] = True
    return ws


def word_counts(text: pa.ChunkedArray | pa.Array) -> np.ndarray:
    """Whitespace words per document, exactly `len(text.split())` (int64; null text: 0).

    A vectorised scan of the UTF-8 bytes (a word starts at a non-whitespace byte after
    whitespace or at the document's start): no list of words is built."""
    if isinstance(text, pa.ChunkedArray):
        parts = [word_counts(c) for c in text.chunks]
        return np.concatenate(parts) if parts else np.zeros(0, np.int64)
    n = len(text)
    if n == 0:
        return np.zeros(0, np.int64)
    if pa.types.is_large_string(text.type):
        off_type = np.int64
    elif pa.types.is_string(text.type):
        off_type = np.int32
    else:
        text = text.cast(pa.string())
        off_type = np.int32
    _, obuf, dbuf = text.buffers()
    offsets = np.frombuffer(obuf, dtype=off_type)[text.offset:text.offset + n + 1].astype(np.int64)
    data = np.frombuffer(dbuf, dtype=np.uint8)[offsets[0]:offsets[-1]] if dbuf is not None else np.zeros(0, np.uint8)
    offsets -= offsets[0]
    ws = _whitespace(data)
    starts = np.empty(len(data), dtype=bool)  # a word starts at a non-whitespace byte after whitespace
    if len(data):
        starts[0] = True
        starts[1:] = ws[:-1]
        starts[offsets[:-1][offsets[:-1] < len(data)]] = True  # ... or at the document's first byte
        starts &= ~ws
    at = np.flatnonzero(starts)
    counts = np.diff(np.searchsorted(at, offsets)).astype(np.int64)
    if text.null_count:
        counts[np.asarray(text.is_null())] = 0
    return counts


def _key(values: list[Any]) -> str:
    return "/".join(NULL if v is None else str(v) for v in values)


def table_stats(batches: Iterable[pa.RecordBatch | pa.Table]) -> dict[str, Any]:
    """Totals and per-dimension figures of some rows (columns: text and whichever DIMENSIONS exist);
    keys sorted, so the same rows give the same JSON."""
    total = {"documents": 0, "tokens": 0, "bytes": 0}
    by: dict[str, dict[str, dict[str, int]]] = {}
    for batch in batches:
        if batch.num_rows == 0:
            continue
        text = batch.column("text") if "text" in batch.schema.names else pa.nulls(batch.num_rows, pa.string())
        words = word_counts(text)
        nbytes = pc.fill_null(pc.binary_length(text), 0).to_numpy(zero_copy_only=False).astype(np.int64)
        total["documents"] += batch.num_rows
        total["tokens"] += int(words.sum())
        total["bytes"] += int(nbytes.sum())
        for dims in DIMENSIONS:
            if not all(d in batch.schema.names for d in dims):
                continue
            cols = [batch.column(d).to_pylist() for d in dims]
            keys = [_key(list(v)) for v in zip(*cols)]
            uniq, inv = np.unique(np.array(keys, dtype=object), return_inverse=True)
            table = by.setdefault("+".join(dims), {})
            docs = np.bincount(inv, minlength=len(uniq))
            toks = np.bincount(inv, weights=words, minlength=len(uniq))
            byts = np.bincount(inv, weights=nbytes, minlength=len(uniq))
            for j, k in enumerate(uniq):
                row = table.setdefault(str(k), {"documents": 0, "tokens": 0, "bytes": 0})
                row["documents"] += int(docs[j])
                row["tokens"] += int(round(toks[j]))
                row["bytes"] += int(round(byts[j]))
    return {"token_count": "whitespace_words", **total,
            "by": {d: dict(sorted(t.items())) for d, t in sorted(by.items())}}


def file_batches(paths: Iterable[str | Path], read=None) -> Iterable[pa.Table]:
    """The stats columns of Parquet shards, a row group at a time (`read`: path -> ParquetFile)."""
    wanted = {"text", *(d for dims in DIMENSIONS for d in dims)}
    for p in paths:
        f = read(p) if read is not None else pq.ParquetFile(p)
        cols = [n for n in f.schema_arrow.names if n in wanted]
        for i in range(f.num_row_groups):
            yield f.read_row_group(i, columns=cols)


def shard_stats(paths: Iterable[str | Path], read=None) -> dict[str, Any]:
    """Figures of a commit's shard files."""
    return table_stats(file_batches(paths, read))


def merge(parts: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """Sum of several stats dicts (commits -> store)."""
    total = {"documents": 0, "tokens": 0, "bytes": 0}
    by: dict[str, dict[str, dict[str, int]]] = {}
    for p in parts:
        for k in total:
            total[k] += int(p.get(k, 0))
        for dim, table in p.get("by", {}).items():
            out = by.setdefault(dim, {})
            for key, row in table.items():
                acc = out.setdefault(key, {"documents": 0, "tokens": 0, "bytes": 0})
                for k in acc:
                    acc[k] += int(row.get(k, 0))
    return {"token_count": "whitespace_words", **total,
            "by": {d: dict(sorted(t.items())) for d, t in sorted(by.items())}}


def store_stats(records: Iterable[Any], open_shard=None) -> dict[str, Any]:
    """Figures of a store: totals, per dimension, and per commit (`commits`).

    Commit records written before manifests carried `stats` are measured from their
    shards (`open_shard`: the path in the record -> ParquetFile); `computed` says so."""
    per_commit = []
    for rec in records:
        figures = rec.stats or shard_stats([s.path for s in rec.shards], read=open_shard)
        per_commit.append({"commit": rec.commit, "created_at": rec.created_at, "computed": not rec.stats, **figures})
    return {**merge(per_commit), "token_count_definition": TOKEN_COUNT, "commits": per_commit}


class StoreStatsCache:
    """Running totals of a local store for the status page: each manifest is read once.

    Manifests without `stats` (older commits) are counted in `commits_without_figures`
    rather than measured here: the page must stay fast; `refinery store stats` measures them."""

    def __init__(self, store: Any) -> None:
        self.store = store
        self._lock = threading.Lock()  # the service answers requests on several threads
        self._seen = 0
        self._parts: list[dict[str, Any]] = []
        self._missing = 0

    def summary(self, top: int = 12) -> dict[str, Any]:
        with self._lock:
            return self._summary(top)

    def _summary(self, top: int) -> dict[str, Any]:
        for n in self.store.commit_numbers():
            if n <= self._seen:
                continue
            rec = self.store.commit(n)
            if rec.stats:
                self._parts = [merge(self._parts + [rec.stats])]
            else:
                self._missing += 1
            self._seen = n
        out = merge(self._parts)
        for dim, table in out["by"].items():  # the largest rows only: the page shows a table per dimension
            keep = sorted(table.items(), key=lambda kv: -kv[1]["tokens"])[:top]
            out["by"][dim] = dict(keep)
        return {**out, "commits": self._seen, "commits_without_figures": self._missing}
