"""The driver-side dedup phase: decide, in input order, which documents are copies.

Workers have added `content_hash` and `minhash` to every surviving document
(stage `dedup`).  Here, after all work units finished, the driver reads just
those columns from the part files in unit order (then row order) and:

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
import pyarrow.parquet as pq

from refinery.config import PipelineConfig
from refinery.store.shards import iter_parts
from refinery.dedup.compact import NO_MATCH
from refinery.dedup.index import DedupIndex, open_index, segment_table
from refinery.dedup.lsh import band_hashes
from refinery.stages.dedup import DUP_OF_FIELD, DedupOptions, signatures_from_column
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


def _first_kept(groups: list[np.ndarray], use_exact: bool, use_near: bool):
    """Sequential first-copy-wins over docs in order; groups[0] = exact groups, [1:] = band groups.

    Returns per doc: (-1, -1) when kept, else (index of the kept copy, 0 exact / 1 near).
    Only documents in a group with another member can be copies, so only those are walked.
    """
    n = len(groups[0])
    kept_by = np.full(n, -1, np.int64)
    kind = np.full(n, -1, np.int8)
    active = [g for g, on in zip(groups, [use_exact] + [use_near] * (len(groups) - 1)) if on]
    if not active or n == 0:
        return kept_by, kind
    shared = np.zeros(n, bool)
    counts = []
    for g in active:
        c = np.bincount(g)
        counts.append(c)
        shared |= c[g] > 1
    first = [dict() for _ in active]  # group -> first kept doc (only for shared groups)
    glists = [g.tolist() for g in active]
    exact_slot = 0 if use_exact else None
    for i in np.flatnonzero(shared).tolist():
        best, how = -1, -1
        if exact_slot is not None:
            f = first[0].get(glists[0][i], -1)
            if f >= 0:
                best, how = f, 0
        if best < 0:
            start = 1 if exact_slot is not None else 0
            for s in range(start, len(active)):
                f = first[s].get(glists[s][i], -1)
                if f >= 0 and (best < 0 or f < best):
                    best, how = f, 1
        if best >= 0:
            kept_by[i], kind[i] = best, how
            continue
        for s in range(len(active)):
            first[s].setdefault(glists[s][i], i)
    return kept_by, kind


class DedupPhase:
    def __init__(self, options: DedupOptions, store: CorpusStore | None, writable: bool) -> None:
        self.options = options
        self.index: DedupIndex | None = open_index(store, options, writable) if store else None
        self.decisions = Decisions()
        self.seen_upto = 0  # newest commit decided against
        self.seen_size = 0  # documents indexed then: later ordinals belong to later commits

    @classmethod
    def for_config(cls, config: PipelineConfig, store: CorpusStore | None, writable: bool) -> "DedupPhase | None":
        spec = config.stage(STAGE)
        return cls(spec.options, store, writable) if spec else None

    # -- deciding -----------------------------------------------------------------
    def decide(self, parts: list[str | None], only_keep_verdict: bool = False) -> Decisions:
        """Read signatures from the part files (unit order) and decide every drop."""
        o = self.options
        positions, doc_ids, exacts, sigs = [], [], [], []
        total = 0
        cols = ["doc_id", "content_hash", "minhash"] + (["verdict"] if only_keep_verdict else [])
        for p in parts:
            if p is None:
                continue
            for batch in pq.ParquetFile(p).iter_batches(batch_size=8192, columns=cols):
                pos = np.arange(total, total + batch.num_rows)
                total += batch.num_rows
                if only_keep_verdict:
                    mask = pc.equal(batch.column("verdict"), "keep").to_numpy(zero_copy_only=False)
                    batch = batch.filter(pa.array(mask))
                    pos = pos[mask]
                if batch.num_rows == 0:
                    continue
                positions.append(pos)
                doc_ids.extend(batch.column("doc_id").to_pylist())
                exacts.append(batch.column("content_hash").to_numpy().astype(np.uint64))
                sigs.append(band_hashes(signatures_from_column(batch.column("minhash"), o.num_perm), o.bands, o.rows))
        d = Decisions(total=total)
        if not positions:
            d.keys = np.zeros((0, o.bands), np.uint64)
            self.decisions = d
            return d
        pos = np.concatenate(positions)
        exact = np.concatenate(exacts)
        keys = np.concatenate(sigs)

        # 1. against everything committed
        committed = np.zeros(len(pos), bool)
        if self.index is not None:
            self.seen_upto, self.seen_size = self.index.refresh_sized()
            committed = self._drop_committed(pos, doc_ids, exact, keys, d, min_ordinal=0)

        # 2. within the batch, in order, among documents not already copies of committed ones
        rest = np.flatnonzero(~committed)
        groups = [np.unique(exact[rest], return_inverse=True)[1]]
        groups += [np.unique(keys[rest, j], return_inverse=True)[1] for j in range(o.bands)]
        kept_by, kind = _first_kept(groups, o.exact, o.near)
        for i in np.flatnonzero(kept_by >= 0).tolist():
            src = int(rest[kept_by[i]])
            me = int(rest[i])
            d.drops[int(pos[me])] = Drop("exact" if kind[i] == 0 else "near", doc_ids[src], "this batch")
        keep = rest[kept_by < 0]
        d.positions, d.exact, d.keys = pos[keep], exact[keep], keys[keep]
        d.doc_ids = [doc_ids[i] for i in keep.tolist()]
        self.decisions = d
        return d

    def _drop_committed(self, pos, doc_ids, exact, keys, d: Decisions, min_ordinal: int) -> np.ndarray:
        """Mark documents with a copy among indexed ordinals >= min_ordinal; returns the mask."""
        assert self.index is not None
        ex_ord, near_ord = self.index.query(keys, exact)
        o = self.options
        use_ex = (ex_ord != NO_MATCH) & (ex_ord >= min_ordinal) if o.exact else np.zeros(len(pos), bool)
        use_near = (near_ord != NO_MATCH) & (near_ord >= min_ordinal) & ~use_ex if o.near else np.zeros(len(pos), bool)
        for i in np.flatnonzero(use_ex | use_near).tolist():
            ordinal = int(ex_ord[i] if use_ex[i] else near_ord[i])
            kept_id, commit = self.index.locate(ordinal)
            d.drops[int(pos[i])] = Drop("exact" if use_ex[i] else "near", kept_id, f"commit {commit:08d}")
        return use_ex | use_near

    def recheck(self) -> bool:
        """Under the commit lock: drop kept documents that commits made since `decide` already hold."""
        if self.index is None:
            return False
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

    # -- applying -----------------------------------------------------------------
    def drop_counts(self) -> dict[str, int]:
        out: dict[str, int] = {}
        for drop in self.decisions.drops.values():
            out[drop.reason] = out.get(drop.reason, 0) + 1
        return out

    def filter_parts(self, parts: list[str | None], runner, rejects_path: Path) -> Iterator[pa.RecordBatch]:
        """Kept rows of the parts (unit order) minus copies; copies go to a reject part file."""
        from refinery.schema import REJECT_SCHEMA
        from refinery.store.shards import PartWriter

        drops = self.decisions.drops
        writer = PartWriter(rejects_path, REJECT_SCHEMA)
        offset = 0
        for batch in iter_parts(parts):
            n = batch.num_rows
            hit = [i for i in range(n) if offset + i in drops] if drops else []
            if hit:
                mask = [False] * n
                reasons: list = [None] * n
                details: list = [None] * n
                dup_of: list = [None] * n
                for i in hit:
                    drop = drops[offset + i]
                    mask[i], reasons[i], details[i], dup_of[i] = True, drop.reason, drop.detail, drop.dup_of
                rows = runner._rejects(batch, mask, STAGE, reasons, details, dup_of)
                if rows:
                    writer.write(pa.Table.from_pylist(rows, schema=REJECT_SCHEMA))
                batch = batch.filter(pc.invert(pa.array(mask, pa.bool_())))
            offset += n
            if batch.num_rows:
                yield batch
        writer.close()

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

