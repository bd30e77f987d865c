"""The persistent dedup index: one segment file per commit, in the store's state directory.

    state/dedup/<index id>/seg-<commit:08d>-<batch key[:16]>.parquet
        doc_id, content_hash (uint64), bands (fixed list of uint64 band keys)

A segment is written under the store's commit lock *before* the manifest of
its commit, so it is valid only if manifest/<commit>.json exists and names
the same batch key.  A crash between the two leaves a segment no manifest
vouches for: it is ignored on load and deleted at the next commit, so a
re-run never sees its own documents.  A missing segment (state lost, index
parameters changed, commit made without dedup) is rebuilt from the commit's
shards: from their `minhash` column when it was computed with the same
parameters, else from their text.
"""

from __future__ import annotations

import os
import threading
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from refinery.dedup.resident import NO_MATCH, PartitionedIndex
from refinery.dedup.lsh import band_hashes
from refinery.durable import replace_durably
from refinery.dedup.options import DedupOptions
from refinery.dedup.signatures import Signer, signatures_from_column
from refinery.store import CorpusStore
from refinery.store.corpus_store import pid_alive

SEGMENT_PREFIX = "seg-"
BASE_PREFIX = "base-"
MERGE_SEGMENTS_AT = 64  # segment files that trigger their merge into the base file
BASE_ROW_GROUP = 65536


@dataclass
class Segment:
    commit: int
    base: int  # ordinal of its first document
    count: int
    path: Path | None  # None for a segment rebuilt in memory only (read-only store)
    row: int = 0  # first row in `path` (a base file holds many commits)
    doc_ids: list[str] | None = None  # only for segments held in memory only


def segment_name(commit: int, batch_key: str) -> str:
    return f"{SEGMENT_PREFIX}{commit:08d}-{batch_key[:16]}.parquet"


def _parse_segment_name(name: str) -> tuple[int, str] | None:
    if not (name.startswith(SEGMENT_PREFIX) and name.endswith(".parquet")):
        return None
    stem = name[len(SEGMENT_PREFIX) : -len(".parquet")]
    num, _, key = stem.partition("-")
    return (int(num), key) if num.isdigit() and key else None


def base_name(upto: int) -> str:
    return f"{BASE_PREFIX}{upto:08d}.parquet"


def _parse_base_name(name: str) -> int | None:
    stem = name[len(BASE_PREFIX) : -len(".parquet")]
    if name.startswith(BASE_PREFIX) and name.endswith(".parquet") and stem.isdigit():
        return int(stem)
    return None


def segment_table(doc_ids: list[str], exact: np.ndarray, keys: np.ndarray) -> pa.Table:
    n, bands = keys.shape
    flat = pa.array(keys.reshape(-1), pa.uint64())
    return pa.table(
        {
            "doc_id": pa.array(doc_ids, pa.string()),
            "content_hash": pa.array(exact, pa.uint64()),
            "bands": pa.FixedSizeListArray.from_arrays(flat, bands),
        }
    )


def write_segment(path: Path, table: pa.Table, row_group_size: int | None = None) -> None:
    """Write atomically and durably: tmp file, fsync, rename."""
    tmp = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    pq.write_table(table, tmp, compression="zstd", compression_level=1, row_group_size=row_group_size)
    replace_durably(tmp, path)


class DedupIndex:
    """Everything committed to `store`, as a resident compact index plus on-disk segments."""

    def __init__(self, store: CorpusStore, options: DedupOptions, writable: bool = True) -> None:
        self.store = store
        self.options = options
        self.writable = writable
        self.dir = store.state_dir / "dedup" / options.index_id()
        if writable:
            self.dir.mkdir(parents=True, exist_ok=True)
        self.mem = PartitionedIndex(options.bands, options.index_partitions, exact=True, actors=options.index_actors)
        self.segments: list[Segment] = []
        self.loaded_upto = 0  # highest commit number loaded
        self.rebuilt: list[int] = []  # commits whose segment had to be rebuilt from shards
        self._signer: Signer | None = None
        self._views: tuple | None = None  # during a refresh: what is on disk
        self._doc_id_groups: dict[tuple[str, int], list[str]] = {}  # small cache of row groups read
        self._lock = threading.RLock()  # one index may serve concurrent batches of one process

    # -- loading ----------------------------------------------------------------
    def _on_disk(self) -> dict[int, dict[str, Path]]:
        found: dict[int, dict[str, Path]] = {}
        if self.dir.is_dir():
            for p in self.dir.iterdir():
                parsed = _parse_segment_name(p.name)
                if parsed:
                    found.setdefault(parsed[0], {})[parsed[1]] = p
        return found

    def _base(self) -> tuple[int, Path | None]:
        """The newest base file (compacted segments of commits 1..upto), if any."""
        best: tuple[int, Path | None] = (0, None)
        if self.dir.is_dir():
            for p in self.dir.iterdir():
                upto = _parse_base_name(p.name)
                if upto is not None and upto > best[0]:
                    best = (upto, p)
        return best

    def refresh_sized(self) -> tuple[int, int]:
        """refresh(), returning (newest commit loaded, documents indexed) consistently."""
        with self._lock:
            return self._refresh(), self.mem.size

    def refresh(self) -> int:
        """Load every commit newer than the last one loaded; returns the newest commit loaded."""
        with self._lock:
            return self._refresh()

    def _refresh(self) -> int:
        numbers = [n for n in self.store.commit_numbers() if n > self.loaded_upto]
        if not numbers:
            return self.loaded_upto
        self._views = (self._on_disk(), *self._base(), None, None)
        for n in numbers:
            rec = self.store.commit(n)
            try:
                table, path, row = self._read_commit(n, rec.batch_key)
            except FileNotFoundError:  # a concurrent compaction moved it into a new base
                self._views = (self._on_disk(), *self._base(), None, None)
                table, path, row = self._read_commit(n, rec.batch_key)
            if table is None:
                table = self._rebuild(n)
                path = None
                if self.writable:
                    path = self.dir / segment_name(n, rec.batch_key)
                    write_segment(path, table)
                table = table.select(["content_hash", "bands"])
                self.rebuilt.append(n)
            self._add(n, path, table, row)
        self._views = None
        self.loaded_upto = numbers[-1]
        return self.loaded_upto

    def _read_commit(self, n: int, batch_key: str) -> tuple[pa.Table | None, Path | None, int]:
        """(content_hash + bands, file, first row) of commit n from its segment file or the base."""
        on_disk, base_upto, base_path, base_table, base_commits = self._views
        path = on_disk.get(n, {}).get(batch_key[:16])
        if path is not None:
            return pq.read_table(path, columns=["content_hash", "bands"]), path, 0
        if base_path is not None and n <= base_upto:
            if base_table is None:
                base_table = pq.read_table(base_path, columns=["commit", "content_hash", "bands"])
                base_commits = base_table.column("commit").to_numpy()
                self._views = (on_disk, base_upto, base_path, base_table, base_commits)
            row = int(np.searchsorted(base_commits, n, "left"))
            end = int(np.searchsorted(base_commits, n, "right"))
            return base_table.slice(row, end - row).select(["content_hash", "bands"]), base_path, row
        return None, None, 0

    def _relocate(self, seg: Segment) -> None:
        """Another process compacted the segment file of `seg` away: find it in the base."""
        base_upto, base_path = self._base()
        if base_path is not None and seg.commit <= base_upto:
            commits = pq.read_table(base_path, columns=["commit"]).column("commit").to_numpy()
            seg.path, seg.row = base_path, int(np.searchsorted(commits, seg.commit, "left"))
        else:
            seg.path, seg.row = None, 0

    def _add(self, commit: int, path: Path | None, table: pa.Table, row: int = 0) -> None:
        exact = table.column("content_hash").to_numpy().astype(np.uint64, copy=False)
        bands = table.column("bands").combine_chunks()
        keys = bands.flatten().to_numpy().astype(np.uint64, copy=False).reshape(-1, self.options.bands)
        seg = Segment(commit, self.mem.size, len(exact), path, row)
        self.mem.insert(keys, exact)
        self.segments.append(seg)

    def _rebuild(self, commit: int) -> pa.Table:
        """A commit's segment from its shards: signatures from `minhash` if compatible, else from text."""
        rec = self.store.commit(commit)
        same = rec.models.get("dedup", {}).get("index") == self.options.index_id()
        doc_ids: list[str] = []
        exacts, keys = [], []
        for shard in rec.shards:
            pf = pq.ParquetFile(self.store.root / shard.path)
            names = set(pf.schema_arrow.names)
            use_sig = same and {"minhash", "content_hash"} <= names
            cols = ["doc_id"] + (["content_hash", "minhash"] if use_sig else ["text"])
            if not use_sig and "language" in names:
                cols.append("language")
            for batch in pf.iter_batches(batch_size=4096, columns=cols):
                doc_ids.extend(batch.column("doc_id").to_pylist())
                if use_sig:
                    exact = batch.column("content_hash").to_numpy().astype(np.uint64)
                    sigs = signatures_from_column(batch.column("minhash"), self.options.num_perm)
                else:
                    if self._signer is None:
                        self._signer = Signer(self.options)
                    langs = batch.column("language").to_pylist() if "language" in cols else None
                    exact, sigs = self._signer.sign(batch.column("text").to_pylist(), langs)
                exacts.append(exact)
                keys.append(band_hashes(sigs, self.options.bands, self.options.rows))
        exact = np.concatenate(exacts) if exacts else np.zeros(0, np.uint64)
        k = np.concatenate(keys) if keys else np.zeros((0, self.options.bands), np.uint64)
        return segment_table(doc_ids, exact, k)

    # -- querying ---------------------------------------------------------------
    def query(self, keys: np.ndarray, exact: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with self._lock:
            return self.mem.query(keys, exact)

    def _segment_of(self, ordinal: int) -> Segment:
        bases = [s.base for s in self.segments]
        return self.segments[int(np.searchsorted(bases, ordinal, "right")) - 1]

    def locate(self, ordinal: int) -> tuple[str, int]:
        """(doc_id, commit) of an indexed document: one row group of its file is read (and cached)."""
        if ordinal == NO_MATCH:
            raise KeyError(ordinal)
        seg = self._segment_of(ordinal)
        if seg.path is None:
            if seg.doc_ids is None:
                seg.doc_ids = self._rebuild(seg.commit).column("doc_id").to_pylist()
            return seg.doc_ids[ordinal - seg.base], seg.commit
        try:
            pf = pq.ParquetFile(seg.path)
        except FileNotFoundError:
            self._relocate(seg)
            return self.locate(ordinal)
        row = seg.row + ordinal - seg.base
        start = 0
        for g in range(pf.metadata.num_row_groups):
            n = pf.metadata.row_group(g).num_rows
            if row < start + n:
                key = (str(seg.path), g)
                ids = self._doc_id_groups.get(key)
                if ids is None:
                    if len(self._doc_id_groups) >= 8:
                        self._doc_id_groups.pop(next(iter(self._doc_id_groups)))
                    ids = pf.read_row_group(g, columns=["doc_id"]).column("doc_id").to_pylist()
                    self._doc_id_groups[key] = ids
                return ids[row - start], seg.commit
            start += n
        raise KeyError(ordinal)

    # -- committing ---------------------------------------------------------------
    def remove_orphans(self) -> list[str]:
        """Delete segments no manifest vouches for (crashed attempts). Call under the commit lock."""
        removed = []
        committed = {n: None for n in self.store.commit_numbers()}
        base_upto, base_path = self._base()
        for p in self.dir.glob(f"{BASE_PREFIX}*.parquet"):
            if p != base_path:  # superseded by a newer base (a compaction crashed before cleaning up)
                p.unlink(missing_ok=True)
                removed.append(p.name)
        for n, by_key in self._on_disk().items():
            valid_key = self.store.commit(n).batch_key[:16] if n in committed and n > base_upto else None
            for key, path in by_key.items():
                if key != valid_key:
                    path.unlink(missing_ok=True)
                    removed.append(path.name)
        for tmp in self.dir.glob("*.tmp"):  # <segment>.<pid>.tmp of a dead writer
            pid = tmp.name.rsplit(".", 2)[-2]
            if pid.isdigit() and not pid_alive(int(pid)):
                tmp.unlink(missing_ok=True)
        return removed

    def merge_segments(self, at: int = MERGE_SEGMENTS_AT) -> bool:
        """Fold the committed segment files into one base file once there are `at` of them.

        Under the commit lock.  The base covers commits 1..upto without a gap; it is
        written (tmp, fsync, rename) before the files it replaces are deleted, and the
        loader prefers segment files, so a crash at any point leaves a loadable index.
        """
        on_disk = self._on_disk()
        base_upto, base_path = self._base()
        pending = []
        for n in self.store.commit_numbers():
            if n <= base_upto:
                continue
            path = on_disk.get(n, {}).get(self.store.commit(n).batch_key[:16])
            if path is None:
                break  # a gap (not rebuilt yet): the base must stay contiguous
            pending.append((n, path))
        if len(pending) < at:
            return False
        tables = []
        if base_path is not None:
            tables.append(pq.read_table(base_path))
        for n, path in pending:
            t = pq.read_table(path, columns=["doc_id", "content_hash", "bands"])
            tables.append(t.add_column(0, "commit", pa.array(np.full(t.num_rows, n, np.uint32))))
        merged = pa.concat_tables(tables).combine_chunks()
        upto = pending[-1][0]
        write_segment(self.dir / base_name(upto), merged, row_group_size=BASE_ROW_GROUP)
        for _, path in pending:
            path.unlink(missing_ok=True)
        if base_path is not None:
            base_path.unlink(missing_ok=True)
        self._doc_id_groups.clear()
        # Loaded segments now live in the base: point them there (rows in commit order).
        commits = merged.column("commit").to_numpy()
        for seg in self.segments:
            if seg.commit <= upto and seg.path is not None:
                seg.path, seg.row = self.dir / base_name(upto), int(np.searchsorted(commits, seg.commit, "left"))
        return True

    def write_commit_segment(self, commit: int, batch_key: str, table: pa.Table) -> Path:
        """Persist this batch's segment before its manifest (under the commit lock)."""
        path = self.dir / segment_name(commit, batch_key)
        write_segment(path, table)
        return path


# One index per (store, parameters) per process: a long-running process (the
# service) loads the index once and then only reads the segments of new commits.
_CACHE: dict[tuple[str, str, bool], DedupIndex] = {}


def open_index(store: CorpusStore, options: DedupOptions, writable: bool = True) -> DedupIndex:
    key = (str(store.root), f"{options.index_id()}/{options.index_partitions}/{options.index_actors}", writable)
    index = _CACHE.get(key)
    if index is not None and options.index_actors:
        import ray

        if not ray.is_initialized():  # its actors went with the Ray session that made them
            index = None
    if index is None or not index.dir.parent.parent.exists():
        index = DedupIndex(store, options, writable)
        _CACHE[key] = index
    # A commit number we loaded that no longer exists means the store was replaced: start over.
    if index.loaded_upto and index.loaded_upto not in store.commit_numbers():
        index = _CACHE[key] = DedupIndex(store, options, writable)
    return index
