"""Read committed shards of a corpus store: the consumer side of the commit protocol.

Only files named by `manifest/NNNNNNNN.json` commit records are ever opened;
staging files, data directories of unfinished commits and `*.tmp` manifests
are invisible.  Commits are numbered 1, 2, 3, ... without gaps, so a reader
takes the contiguous prefix of the manifests it can list: on an object store
where a later manifest became visible before an earlier one, the later one
waits until the gap is filled (see docs/corpus.md, object-store protocol).
"""

from __future__ import annotations

import logging
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, Iterator, Sequence

import pyarrow as pa
import pyarrow.dataset as pads
import pyarrow.fs as pafs
import pyarrow.parquet as pq

from refinery.corpus.filters import Filter, check_columns, filter_columns, to_expression
from refinery.corpus.fs import display_uri, is_remote, open_filesystem
from refinery.errors import StoreError
from refinery.store.manifest import CommitRecord, manifest_name, parse_manifest_name

log = logging.getLogger(__name__)
# How long a following reader waits out an unreachable object store (restart, network blip)
# before it gives up: a training job would rather stall a few minutes than die.
MAX_OUTAGE_S = 300.0


class _Stopped(Exception):
    """A follower's `stop` event was set while it waited."""


def _sleep(seconds: float, stop: threading.Event | None) -> None:
    if stop is None:
        time.sleep(seconds)
    elif stop.wait(seconds):
        raise _Stopped
_PARQUET = pads.ParquetFileFormat()
_FRAGMENT_CACHE = 64  # parsed footers kept per process


@dataclass(frozen=True)
class Shard:
    """One committed Parquet shard."""

    commit: int
    path: str  # relative to the store root, as written in the manifest
    uri: str  # absolute local path or s3://bucket/key: what other tools open
    rows: int
    bytes: int
    sha256: str


class Corpus:
    """A committed-only view of a corpus store on local disk or S3-compatible storage.

    `storage_options` go to `pyarrow.fs.S3FileSystem` (endpoint_override, region,
    access_key, secret_key, scheme, ...); see refinery/corpus/fs.py.  The object
    is picklable: each process opens its own filesystem on first use.
    """

    def __init__(self, uri: str | os.PathLike, *, require_store: bool = True, **storage_options: Any) -> None:
        self.uri = os.fspath(uri)
        self.storage_options = storage_options
        self._require_store = require_store
        self._fs: pafs.FileSystem | None = None
        self._root = ""
        self._pid = -1
        self._records: dict[int, CommitRecord] = {}  # committed records never change
        self._fragments: dict[str, pads.ParquetFileFragment] = {}
        self._fragments_pid = os.getpid()
        self._open()

    def __getstate__(self) -> dict[str, Any]:
        return {"uri": self.uri, "storage_options": self.storage_options, "_records": self._records,
                "_require_store": self._require_store}

    def __setstate__(self, state: dict[str, Any]) -> None:
        self.__dict__.update(state)
        self._fs, self._root, self._pid = None, "", -1
        self._fragments, self._fragments_pid = {}, os.getpid()

    def _open(self) -> None:
        self._fs, self._root = open_filesystem(self.uri, **self.storage_options)
        self._pid = os.getpid()
        if not self._require_store:
            return
        if not is_remote(self.uri):
            info = self._fs.get_file_info(self._root + "/manifest")
            if info.type != pafs.FileType.Directory:
                raise StoreError(f"{self.uri}: not a corpus store (no manifest/ directory)")
        else:  # an object store has no directories: a store with no commit yet is just empty, but its bucket exists
            bucket = self._root.split("/", 1)[0]
            try:
                missing = self._fs.get_file_info(bucket).type == pafs.FileType.NotFound
            except OSError as err:
                raise StoreError(f"{self.uri}: cannot reach the object store: {err}") from None
            if missing:
                raise StoreError(f"{self.uri}: bucket {bucket!r} does not exist")

    @property
    def fs(self) -> pafs.FileSystem:
        if self._fs is None or self._pid != os.getpid():  # never share an S3 client across fork()
            self._open()
        assert self._fs is not None
        return self._fs

    @property
    def root(self) -> str:
        self.fs  # noqa: B018 - opens lazily
        return self._root

    def __repr__(self) -> str:
        return f"Corpus({self.uri!r})"

    # -- commits ---------------------------------------------------------------
    def commit_numbers(self) -> list[int]:
        """Visible commits: 1..N where every manifest up to N exists (re-listed on each call)."""
        selector = pafs.FileSelector(self.root + "/manifest", allow_not_found=True)
        listed = {parse_manifest_name(i.base_name) for i in self.fs.get_file_info(selector)}
        listed.discard(None)
        n = 0
        while n + 1 in listed:
            n += 1
        return list(range(1, n + 1))

    def latest(self) -> int:
        """The newest visible commit number (0 for a store without commits)."""
        nums = self.commit_numbers()
        return nums[-1] if nums else 0

    def commit(self, number: int) -> CommitRecord:
        rec = self._records.get(number)
        if rec is not None:
            return rec
        path = f"{self.root}/manifest/{manifest_name(number)}"
        try:
            with self.fs.open_input_stream(path) as f:
                text = f.read().decode("utf-8")
        except FileNotFoundError:
            raise StoreError(f"commit {number} does not exist in {self.uri}") from None
        try:
            rec = CommitRecord.from_json(text)
        except (ValueError, TypeError, KeyError) as err:
            raise StoreError(f"{display_uri(self.fs, path)}: corrupt commit record: {err}") from None
        if rec.commit != number:
            raise StoreError(f"{display_uri(self.fs, path)}: record says commit {rec.commit}")
        self._records[number] = rec
        return rec

    def resolve_commit(self, commit: int | None) -> int:
        """The commit a read pins: `commit`, or the latest visible one when None (StoreError past it)."""
        latest = self.latest()
        if commit is None:
            return latest
        if commit < 0 or commit > latest:
            raise StoreError(f"{self.uri}: commit {commit} does not exist (latest visible commit is {latest})")
        return commit

    def commits(self, commit: int | None = None, since: int = 0) -> list[CommitRecord]:
        """Commit records `since` < n <= `commit` (default: the latest visible)."""
        upto = self.resolve_commit(commit)
        return [self.commit(n) for n in range(since + 1, upto + 1)]

    # -- files -----------------------------------------------------------------
    def shards(self, commit: int | None = None, since: int = 0) -> list[Shard]:
        """Shards of the snapshot at `commit` (commits `since`+1 .. `commit`), in commit order."""
        out = []
        for rec in self.commits(commit, since):
            for s in rec.shards:
                full = f"{self.root}/{s.path}"
                out.append(Shard(rec.commit, s.path, display_uri(self.fs, full), s.rows, s.bytes, s.sha256))
        return out

    def files(self, commit: int | None = None) -> list[str]:
        """Shard files of a snapshot, for `datasets.load_dataset("parquet", data_files=...)`."""
        return [s.uri for s in self.shards(commit)]

    def _fs_path(self, shard: Shard) -> str:
        return f"{self.root}/{shard.path}"

    def parquet_file(self, shard: Shard) -> pq.ParquetFile:
        return pq.ParquetFile(self.fs.open_input_file(self._fs_path(shard)))

    def schema(self, commit: int | None = None) -> pa.Schema:
        """The Arrow schema of the snapshot's first shard (all shards of one pipeline share it)."""
        shards = self.shards(commit)
        if not shards:
            raise StoreError(f"{self.uri}: no shards in the snapshot")
        return self.parquet_file(shards[0]).schema_arrow

    def fragment(self, shard: Shard) -> pads.ParquetFileFragment:
        """The shard's Parquet fragment with its footer parsed once (a GET per shard, not per row group)."""
        key = self._fs_path(shard)
        frag = self._fragments.get(key)
        if frag is None or self._fragments_pid != os.getpid():
            if self._fragments_pid != os.getpid():
                self._fragments, self._fragments_pid = {}, os.getpid()
            frag = _PARQUET.make_fragment(key, filesystem=self.fs, file_size=shard.bytes)
            frag.ensure_complete_metadata()
            if len(self._fragments) >= _FRAGMENT_CACHE:
                self._fragments.pop(next(iter(self._fragments)))
            self._fragments[key] = frag
        return frag

    def num_row_groups(self, shard: Shard) -> int:
        return self.fragment(shard).num_row_groups

    def read_row_group(
        self, shard: Shard, index: int, columns: Sequence[str] | None = None, filter: Filter = None
    ) -> pa.Table:
        """One row group, projected and filtered (filter columns need not be projected)."""
        fragment = self.fragment(shard).subset(row_group_ids=[index])
        try:
            return fragment.to_table(
                columns=list(columns) if columns is not None else None, filter=to_expression(filter)
            )
        except pa.ArrowInvalid as err:
            raise KeyError(f"{shard.uri}: cannot apply columns/filter: {err}") from None

    # -- mixtures ------------------------------------------------------------------
    def mixture(self, spec: Any, seed: int = 0, **options: Any):
        """Documents drawn as the mixture `spec` says (a YAML path, dict or MixtureSpec): an iterator
        of dicts (the columns, `group`, `group_epoch`) with state_dict()/load_state_dict().
        Options: columns, commit, since, follow, rank, world_size, poll_interval, idle_timeout,
        stop (refinery/corpus/sampler.py MixtureStream; method in docs/corpus.md)."""
        from refinery.corpus.sampler import MixtureStream

        return MixtureStream(self, spec, seed=seed, **options)

    # -- batches -----------------------------------------------------------------
    def iter_batches(
        self,
        columns: Sequence[str] | None = None,
        filter: Filter = None,
        commit: int | None = None,
        *,
        since: int = 0,
        batch_size: int | None = None,
        follow: bool = False,
        poll_interval: float = 5.0,
        idle_timeout: float | None = None,
        max_outage: float = MAX_OUTAGE_S,
        stop: threading.Event | None = None,
    ) -> Iterator[pa.RecordBatch]:
        """Record batches of commits `since`+1 .. `commit` (default: latest when called).

        `follow=True` keeps going after that snapshot: it polls the manifests every
        `poll_interval` seconds and reads each new commit as it appears, until
        `idle_timeout` seconds pass without one (None: forever).  A follower also waits
        out an unreachable store for up to `max_outage` seconds, resuming at the row
        group it was reading (nothing repeated, nothing skipped).  Setting `stop` (an
        Event) ends a follower that is waiting, for a new commit or for the store, at
        once: a loader thread can be shut down without waiting for `idle_timeout`.
        """
        if follow and commit is not None:
            raise ValueError("follow=True reads past any pinned commit: give since=, not commit=")
        upto = self.resolve_commit(commit)
        self._check(columns, filter, upto)
        done = since

        def call(what: str, fn):
            return self.patiently(what, fn, max_outage, stop) if follow else fn()

        try:
            while True:
                for shard in call("reading commit records", lambda: self.shards(upto, since=done)):
                    for i in range(call(f"reading {shard.path}", lambda: self.num_row_groups(shard))):
                        table = call(f"reading {shard.path}", lambda: self.read_row_group(shard, i, columns, filter))
                        yield from table.to_batches(max_chunksize=batch_size)
                done = upto
                if not follow:
                    return
                nxt = self.wait_for_commit(done, poll_interval, idle_timeout, max_outage, stop)
                if nxt is None:
                    return
                upto = nxt
        except _Stopped:
            return

    def _check(self, columns: Sequence[str] | None, filter: Filter, upto: int) -> None:
        names = list(columns or []) + filter_columns(filter)
        if names and upto > 0 and self.shards(upto):
            check_columns(names, self.schema(upto), "iter_batches")

    def patiently(self, what: str, fn, max_outage: float = MAX_OUTAGE_S, stop: threading.Event | None = None):
        """`fn()`, retried with backoff while it raises OSError (the store unreachable), for up
        to `max_outage` seconds; then the error propagates.  Used by the follow modes only:
        a snapshot read fails at once, as a bad path or a damaged store should.  (With
        `stop`, a retry wait ends as soon as it is set; iter_batches then returns.)"""
        first, delay = None, 0.5
        while True:
            try:
                return fn()
            except OSError as err:
                now = time.monotonic()
                first = now if first is None else first
                if now - first >= max_outage:
                    raise
                log.warning("%s: %s failed (%s); retrying for up to %.0f s", self.uri, what, err,
                            max_outage - (now - first))
                _sleep(min(delay, max(0.0, max_outage - (now - first))), stop)
                delay = min(delay * 2, 10.0)

    def wait_for_commit(
        self,
        after: int,
        poll_interval: float = 5.0,
        timeout: float | None = None,
        max_outage: float = MAX_OUTAGE_S,
        stop: threading.Event | None = None,
    ) -> int | None:
        """Poll until a commit newer than `after` is visible; its number, or None on timeout
        or once `stop` is set.  An unreachable store is waited out for up to `max_outage`
        seconds (see patiently())."""
        deadline = None if timeout is None else time.monotonic() + timeout
        try:
            while True:
                latest = self.patiently("listing commits", self.latest, max_outage, stop)
                if latest > after:
                    return latest
                if deadline is not None and time.monotonic() >= deadline:
                    return None
                wait = poll_interval if deadline is None else min(poll_interval, max(0.0, deadline - time.monotonic()))
                _sleep(wait, stop)
        except _Stopped:
            return None
