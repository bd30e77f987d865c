"""The driver-side dedup phase: decide, in input order, which documents are copies.

Workers have added `content_hash` and `minhash` to every surviving document
(stage `dedup`).  Here the driver reads just those columns from the part files
in unit order (then row order), each part as soon as every unit before it has
finished, and:

1. queries the committed index: a match means the earlier commit's copy wins;
2. among the rest, walks the batch in order: a document sharing its content
   hash or an LSH band with an earlier *kept* document of the batch is a copy
   of the earliest such document.

Both steps depend only on the data and the order of units, never on Ray's
scheduling, so a re-run decides the same.  Under the store's commit lock the
index is refreshed once more (`recheck`): a concurrent batch that committed
meanwhile may hold copies of our kept documents, and those are dropped then.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterator

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from refinery.config import PipelineConfig
from refinery.store.shards import iter_parts
from refinery.dedup.resident import NO_MATCH, CompactIndex, comparable
from refinery.dedup.index import DedupIndex, open_index, segment_table
from refinery.dedup.lsh import band_hashes
from refinery.dedup.options import DedupOptions
from refinery.dedup.signatures import DUP_OF_FIELD, signatures_from_column
from refinery.store import CorpusStore

STAGE = "dedup"


@dataclass
class Drop:
    reason: str  # "exact" | "near"
    dup_of: str  # doc_id of the kept copy
    detail: str  # where the kept copy is: "commit 00000003" or "this batch"


@dataclass
class Decisions:
    total: int = 0  # rows across all parts
    drops: dict[int, Drop] = field(default_factory=dict)  # position -> why
    # The batch's kept candidates, in input order: what its index segment will hold.
    positions: np.ndarray = field(default_factory=lambda: np.zeros(0, np.int64))
    doc_ids: list[str] = field(default_factory=list)
    exact: np.ndarray = field(default_factory=lambda: np.zeros(0, np.uint64))
    keys: np.ndarray | None = None


class _FirstKept:
    """First-copy-wins over documents fed in input order, one part at a time.

    A document is a copy when it shares its content hash (exact) or a band key
    (near) with an earlier *kept* document; it then names the earliest such
    document, and exact takes precedence over near.  Only kept documents count as
    earlier copies, so a copy of a copy names the original.  Band keys are compared
    on the 48 bits the committed index compares (resident.comparable), so a pair is
    matched by the same rule whether its documents share a batch or not.

    The kept documents of earlier parts sit in a CompactIndex (~190 bytes each,
    vectorised lookups); within a part, only documents that share a key with
    another document of the part, or that hit an earlier part, are walked one by
    one.  A decision depends only on the documents before it, so feeding the batch
    a part at a time decides exactly what one pass over all of it would.
    """

    def __init__(self, use_exact: bool, use_near: bool, bands: int) -> None:
        self.use_exact, self.use_near = use_exact, use_near
        self.earlier = CompactIndex(bands, exact=use_exact)
        self.kept = 0  # kept documents so far; `earlier` numbers them 0..kept-1

    def feed(self, exact: np.ndarray, keys: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per document: (-1, -1) when kept, else (kept ordinal of its copy, 0 exact / 1 near)."""
        n = len(exact)
        kept_by = np.full(n, -1, np.int64)
        kind = np.full(n, -1, np.int8)
        ue, un = self.use_exact, self.use_near
        if n == 0 or not (ue or un):
            self.kept += n
            return kept_by, kind
        keys = comparable(keys)
        prev_ex = prev_near = np.full(n, NO_MATCH, np.int64)
        if self.earlier.size:
            prev_ex, prev_near = self.earlier.query(keys, exact if ue else None)
        if ue:
            hit = prev_ex != NO_MATCH
            kept_by[hit], kind[hit] = prev_ex[hit], 0
        # an earlier part's near copy: final unless the part itself holds an exact copy (precedence)
        near_before = np.where(un & (prev_near != NO_MATCH) & (kept_by < 0), prev_near, -1)
        cand = np.flatnonzero(kept_by < 0)
        cols = ([exact[cand]] if ue else []) + ([keys[cand, j] for j in range(keys.shape[1])] if un else [])
        groups = [np.unique(c, return_inverse=True)[1].reshape(-1) for c in cols]
        walk = near_before[cand] >= 0
        for g in groups:
            walk |= np.bincount(g)[g] > 1
        local_by = np.full(n, -1, np.int64)  # position (in this part) of a copy's kept original
        first = [dict() for _ in groups]  # group -> position of its first kept document
        glists = [g[walk].tolist() for g in groups]
        band_from = 1 if ue else 0
        for w, i in enumerate(cand[walk].tolist()):
            if ue:
                f = first[0].get(glists[0][w], -1)
                if f >= 0:
                    local_by[i], kind[i] = f, 0
                    continue
            if near_before[i] >= 0:
                kept_by[i], kind[i] = near_before[i], 1
                continue
            best = -1
            for s in range(band_from, len(groups)):
                f = first[s].get(glists[s][w], -1)
                if f >= 0 and (best < 0 or f < best):
                    best = f
            if best >= 0:
                local_by[i], kind[i] = best, 1
                continue
            for s in range(len(groups)):
                first[s].setdefault(glists[s][w], i)
        kept = (kept_by < 0) & (local_by < 0)
        ordinal = self.kept + np.cumsum(kept) - 1  # kept ordinal of each kept position
        local = local_by >= 0
        kept_by[local] = ordinal[local_by[local]]
        if kept.any():
            self.earlier.insert(keys[kept], exact[kept] if ue else None, self.kept)
        self.kept += int(kept.sum())
        return kept_by, kind


class BatchDedup:
    def __init__(self, options: DedupOptions, store: CorpusStore | None, writable: bool) -> None:
        self.options = options
        self.writable = writable
        self.index: DedupIndex | None = open_index(store, options, writable) if store else None
        self.decisions = Decisions()
        self.seen_upto = 0  # newest commit decided against
        self.seen_size = 0  # documents indexed then: later ordinals belong to later commits

    @classmethod
    def for_config(cls, config: PipelineConfig, store: CorpusStore | None, writable: bool) -> "BatchDedup | None":
        spec = config.stage(STAGE)
        return cls(spec.options, store, writable) if spec else None

    # -- deciding -----------------------------------------------------------------
    def decide(self, parts: list[str | None], only_keep_verdict: bool = False) -> Decisions:
        """Read signatures from the part files (unit order) and decide every drop."""
        self.begin(only_keep_verdict)
        self.add_parts(parts)
        return self.finish()

    def begin(self, only_keep_verdict: bool = False) -> None:
        """Start deciding a batch: parts follow with add_parts() in unit order, then finish().

        The batch's run mode feeds parts while later units still execute, so the
        decision and shard writing overlap the execution instead of following it."""
        o = self.options
        self._only_keep = only_keep_verdict
        self._first = _FirstKept(o.exact, o.near, o.bands)
        self._kept: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []  # positions, exact, keys per batch
        self.decisions = Decisions()
        if self.index is not None:
            self.seen_upto, self.seen_size = self.index.refresh_sized()

    def add_parts(self, paths: list[str | None]) -> None:
        """Decide the documents of the next part files, in order (None: a unit that kept nothing).

        One lookup for all of them: the index answers a few thousand documents in about
        the time it answers one, so the caller passes every part that is ready."""
        o, d = self.options, self.decisions
        cols = ["doc_id", "content_hash", "minhash"] + (["verdict"] if self._only_keep else [])
        positions, doc_ids, exacts, keys = [], [], [], []
        for batch in iter_parts(paths, columns=cols, batch_size=8192):
            pos = np.arange(d.total, d.total + batch.num_rows)
            d.total += batch.num_rows
            if self._only_keep:
                mask = pc.equal(batch.column("verdict"), "keep").to_numpy(zero_copy_only=False)
                batch = batch.filter(pa.array(mask))
                pos = pos[mask]
            if batch.num_rows == 0:
                continue
            positions.append(pos)
            doc_ids.extend(batch.column("doc_id").to_pylist())
            exacts.append(batch.column("content_hash").to_numpy().astype(np.uint64))
            keys.append(band_hashes(signatures_from_column(batch.column("minhash"), o.num_perm), o.bands, o.rows))
        if positions:
            self._decide(np.concatenate(positions), doc_ids, np.concatenate(exacts), np.concatenate(keys))

    def _decide(self, pos: np.ndarray, doc_ids: list[str], exact: np.ndarray, keys: np.ndarray) -> None:
        d = self.decisions
        # 1. against everything committed
        committed = np.zeros(len(pos), bool)
        if self.index is not None:
            committed = self._drop_committed(pos, doc_ids, exact, keys, d, min_ordinal=0)
        # 2. against the batch so far, in order, among documents not already copies of committed ones
        rest = np.flatnonzero(~committed)
        kept_by, kind = self._first.feed(exact[rest], keys[rest])
        keep = rest[kept_by < 0]
        d.doc_ids.extend(doc_ids[i] for i in keep.tolist())  # kept ordinals index d.doc_ids
        for i in np.flatnonzero(kept_by >= 0).tolist():
            reason = "exact" if kind[i] == 0 else "near"
            d.drops[int(pos[rest[i]])] = Drop(reason, d.doc_ids[int(kept_by[i])], "this batch")
        self._kept.append((pos[keep], exact[keep], keys[keep]))

    def finish(self) -> Decisions:
        """The batch's decisions, with the kept candidates its index segment will hold."""
        d = self.decisions
        if self._kept:
            d.positions = np.concatenate([k[0] for k in self._kept])
            d.exact = np.concatenate([k[1] for k in self._kept])
            d.keys = np.concatenate([k[2] for k in self._kept])
        else:
            d.keys = np.zeros((0, self.options.bands), np.uint64)
        self._kept = []
        return d

    def _drop_committed(self, pos, doc_ids, exact, keys, d: Decisions, min_ordinal: int) -> np.ndarray:
        """Mark documents with a copy among indexed ordinals >= min_ordinal; returns the mask."""
        assert self.index is not None
        ex_ord, near_ord = self.index.query(keys, exact)
        o = self.options
        use_ex = (ex_ord != NO_MATCH) & (ex_ord >= min_ordinal) if o.exact else np.zeros(len(pos), bool)
        use_near = (near_ord != NO_MATCH) & (near_ord >= min_ordinal) & ~use_ex if o.near else np.zeros(len(pos), bool)
        hits = use_ex | use_near
        for i in np.flatnonzero(hits).tolist():
            ordinal = int(ex_ord[i] if use_ex[i] else near_ord[i])
            kept_id, commit = self.index.locate(ordinal)
            if not self.writable and kept_id == doc_ids[i]:
                # annotate against the store this very document was committed to: it is the kept
                # copy, not a copy of itself
                hits[i] = False
                continue
            d.drops[int(pos[i])] = Drop("exact" if use_ex[i] else "near", kept_id, f"commit {commit:08d}")
        return hits

    def recheck(self) -> bool:
        """Under the commit lock: drop kept documents that commits made since `decide` already hold.

        The index first removes orphan segments and merges the segment files into the base (DedupIndex.merge_segments), which
        only the lock holder may do.  True when documents were dropped (the outputs change)."""
        if self.index is None:
            return False
        self.index.remove_orphans()
        self.index.merge_segments()
        upto, size = self.index.refresh_sized()
        if upto == self.seen_upto:
            return False
        before, self.seen_upto, self.seen_size = self.seen_size, upto, size
        d = self.decisions
        n_before = len(d.drops)
        late = self._drop_committed(d.positions, d.doc_ids, d.exact, d.keys, d, min_ordinal=before)
        if not late.any():
            return False
        keep = ~late
        d.doc_ids = [x for x, k in zip(d.doc_ids, keep.tolist()) if k]
        d.positions, d.exact, d.keys = d.positions[keep], d.exact[keep], d.keys[keep]
        return len(d.drops) > n_before

    def segment(self) -> pa.Table:
        d = self.decisions
        return segment_table(d.doc_ids, d.exact, d.keys)

    def write_segment(self, commit: int, batch_key: str) -> None:
        """Under the commit lock: the batch's kept documents as commit `commit`'s index segment."""
        assert self.index is not None
        self.index.write_commit_segment(commit, batch_key, self.segment())

    # -- applying -----------------------------------------------------------------
    def drop_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for drop in self.decisions.drops.values():
            out[drop.reason] = out.get(drop.reason, 0) + 1
        return out

    def copy_filter(self, runner, rejects_path: Path) -> "CopyFilter":
        """A filter fed the parts in unit order, each once its documents are decided."""
        return CopyFilter(self.decisions, runner, rejects_path, self.options)

    def annotate_parts(self, parts: list[str | None]) -> Iterator[pa.RecordBatch]:
        """Every row of the parts with `dup_of` filled and the verdict of copies set to dedup:<reason>."""
        drops = self.decisions.drops
        offset = 0
        for batch in iter_parts(parts):
            n = batch.num_rows
            dup_of = [None] * n
            verdict = batch.column("verdict").to_pylist()
            for i in range(n):
                drop = drops.get(offset + i)
                if drop is not None:
                    dup_of[i], verdict[i] = drop.dup_of, f"{STAGE}:{drop.reason}"
            offset += n
            idx = batch.schema.get_field_index(DUP_OF_FIELD.name)
            batch = batch.set_column(idx, DUP_OF_FIELD, pa.array(dup_of, pa.string()))
            vidx = batch.schema.get_field_index("verdict")
            batch = batch.set_column(vidx, batch.schema.field(vidx), pa.array(verdict, pa.string()))
            yield batch



def explain(drop: Drop, options: DedupOptions | None) -> str:
    """The rejects table's detail: where the kept copy is, then the rule and its threshold.

    `commit 00000003: ...` / `this batch: ...` stays the prefix (scripts split on ':')."""
    if drop.reason == "exact":
        return f"{drop.detail}: same content_hash (normalised text) as dup_of"
    if drop.reason == "near" and options is not None:
        b, r = options.bands, options.rows
        return (
            f"{drop.detail}: shares a MinHash LSH band with dup_of (bands={b}, rows={r}: "
            f"Jaccard threshold ~(1/bands)^(1/rows)={(1 / b) ** (1 / r):.2f})"
        )
    return drop.detail


class CopyFilter:
    """Removes the copies from parts fed in unit order; copies become reject rows."""

    def __init__(self, decisions: Decisions, runner, rejects_path: Path, options: DedupOptions | None = None) -> None:
        from refinery.schema import REJECT_SCHEMA
        from refinery.store.shards import PartWriter

        self.options = options
        self.decisions = decisions
        self.runner = runner
        self.writer = PartWriter(rejects_path, REJECT_SCHEMA)
        self.offset = 0  # position of the next row fed, over all parts

    def part(self, path: str | None) -> Iterator[pa.RecordBatch]:
        """The part's rows that are not copies (its documents must be decided already)."""
        from refinery.schema import REJECT_SCHEMA

        drops = self.decisions.drops
        for batch in iter_parts([path]):
            n, offset = batch.num_rows, self.offset
            self.offset += n
            hit = [i for i in range(n) if offset + i in drops] if drops else []
            if hit:
                mask = [False] * n
                reasons: list = [None] * n
                details: list = [None] * n
                dup_of: list = [None] * n
                for i in hit:
                    drop = drops[offset + i]
                    mask[i], reasons[i], details[i], dup_of[i] = True, drop.reason, explain(drop, self.options), drop.dup_of
                rows = self.runner.reject_rows(batch, mask, STAGE, reasons, details, dup_of)
                if rows:
                    self.writer.write(pa.Table.from_pylist(rows, schema=REJECT_SCHEMA))
                batch = batch.filter(pc.invert(pa.array(mask, pa.bool_())))
            if batch.num_rows:
                yield batch

    def close(self) -> str | None:
        """The reject part of the copies (None when there were none)."""
        return self.writer.close()
