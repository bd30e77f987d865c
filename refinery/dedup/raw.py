"""Exact duplicates on raw bytes, found before extraction (cheap work before expensive work).

A page whose HTML bytes (and declared charset) equal those of an earlier page of
the same batch, in input order, would be extracted to the same text and
dropped by the dedup stage's exact check as a copy of that earlier page; or,
if the earlier page is dropped by a filter, dropped by the same filter, since
every stage is deterministic.  Either way it never reaches a shard.  So it is
dropped up front, as `dedup:exact_raw` with `dup_of` naming the first copy,
and trafilatura never runs on it: the kept set is unchanged.

Only in run mode and only when the pipeline has a dedup stage with
`exact: true` (batch.py decides).  Hashing is one extra read of the input
(fastwarc: hundreds of MB/s) in Ray tasks, one per work unit, run just ahead of
the units' processing (executor.RawCopyGate); the driver holds 16 bytes per page
with HTML.
"""

from __future__ import annotations

import xxhash

from refinery.readers import WorkUnit, doc_id

RAW_REASON = "exact_raw"


def raw_key(html: bytes, charset: str | None) -> int:
    h = xxhash.xxh3_64()
    h.update((charset or "").encode("utf-8", "replace") + b"\x00")
    h.update(html)
    return h.intdigest()


def unit_raw_keys(unit: WorkUnit) -> list[tuple[str, int]]:
    """(doc_id, raw key) of each record with HTML in the unit, in order."""
    uri = unit.file.uri
    out = []
    try:
        for row in unit.records():
            html = row.get("html")
            if html and row.get("read_error") is None:
                out.append((doc_id(uri, row["record_id"]), raw_key(html, row.get("http_charset"))))
    except Exception:  # noqa: BLE001 - an unreadable input is the reader's to report; here: no skips
        return out
    return out


class RawCopies:
    """Fed units' raw keys in input order; `skips` maps each unit index to
    {doc_id of a later copy: doc_id of the first copy}."""

    def __init__(self) -> None:
        self._first: dict[int, str] = {}
        self.skips: dict[int, dict[str, str]] = {}

    def add(self, index: int, keys: list[tuple[str, int]]) -> None:
        for did, key in keys:
            seen = self._first.setdefault(key, did)
            if seen != did:
                self.skips.setdefault(index, {})[did] = seen
