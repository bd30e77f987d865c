"""The corpus store: staging area, atomic commits, and a committed-only view.

Layout under the store root:

    manifest/00000001.json   commit records (the only source of truth)
    data/00000001/shard-00000.parquet, rejects-00000.parquet
    staging/<attempt>/       work in progress, never read by readers
    state/                   service and index state (SQLite, dedup index)
    .lock                    serialises commits (fcntl)

A commit: (1) under the lock, check the batch key is not committed yet;
(2) move the finished files from staging to data/<N>/ (one rename);
(3) write manifest/<N>.json.tmp, fsync, rename to manifest/<N>.json, fsync
the directory.  A crash before (3) leaves files no manifest names: invisible,
and removed by `gc()`.  A crash after (3) is a finished commit, and the
re-run finds its batch key and does nothing.
"""

from __future__ import annotations

import fcntl
import json
import os
import shutil
import socket
import time
import uuid
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Iterator

from refinery.crash_points import crash_point
from refinery.durable import fsync_dir, write_text_durably
from refinery.errors import StoreError
from refinery.store.manifest import CommitRecord, FileEntry, manifest_name, parse_manifest_name
from refinery.store.stats import shard_stats


@contextmanager
def file_lock(path: Path) -> Iterator[None]:
    """An exclusive fcntl lock on `path` (created if missing): processes and threads alike."""
    with open(path, "a+") as f:
        fcntl.flock(f, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(f, fcntl.LOCK_UN)


def pid_alive(pid: int) -> bool:
    """Whether a process of this host is still running (staging and lock owners)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


class CorpusStore:
    def __init__(self, root: str | Path, create: bool = True) -> None:
        self.root = Path(root).expanduser().resolve()
        if not self.root.exists():
            if not create:
                raise StoreError(f"{root}: no corpus store here")
            self.root.mkdir(parents=True)
        elif not self.root.is_dir():
            raise StoreError(f"{root}: not a directory")
        self.manifest_dir = self.root / "manifest"
        self.data_dir = self.root / "data"
        self.staging_dir = self.root / "staging"
        self.state_dir = self.root / "state"
        self._batch_keys: dict[int, tuple[tuple, str]] = {}  # commit -> (manifest identity, batch key)
        if create:
            for d in (self.manifest_dir, self.data_dir, self.staging_dir, self.state_dir):
                d.mkdir(exist_ok=True)
        elif not self.manifest_dir.is_dir():
            raise StoreError(f"{root}: not a corpus store (no manifest/ directory)")

    # -- reading ---------------------------------------------------------------
    def commit_numbers(self) -> list[int]:
        if not self.manifest_dir.exists():
            return []
        nums = (parse_manifest_name(p.name) for p in self.manifest_dir.iterdir())
        return sorted(n for n in nums if n is not None)

    def commit(self, number: int) -> CommitRecord:
        path = self.manifest_dir / manifest_name(number)
        try:
            return CommitRecord.from_json(path.read_text(encoding="utf-8"))
        except FileNotFoundError:
            raise StoreError(f"commit {number} does not exist in {self.root}") from None
        except (ValueError, TypeError, KeyError) as err:
            raise StoreError(f"{path}: corrupt commit record: {err}") from None

    def commits(self, since: int = 0) -> list[CommitRecord]:
        return [self.commit(n) for n in self.commit_numbers() if n > since]

    def find_batch(self, batch_key: str) -> CommitRecord | None:
        """The commit of this batch, if any.

        Called twice per batch (before running, and under the commit lock), so the batch
        key of each manifest is cached, keyed by commit number and the file's identity
        (inode, mtime, size: a manifest is written once, by rename, and never changed; a
        store replaced under the same path has new files, even where the file system reuses
        an inode).  A lookup then reads only manifests it has not seen, so its cost follows
        the commits made since the last one, not the size of the store (docs/reliability.md,
        Soak); a hit is read back."""
        if not self.manifest_dir.exists():
            return None
        entries = []
        with os.scandir(self.manifest_dir) as it:
            for e in it:
                if (n := parse_manifest_name(e.name)) is not None:
                    st = e.stat()
                    entries.append((n, (st.st_ino, st.st_mtime_ns, st.st_size)))
        for n, ident in sorted(entries, reverse=True):
            cached = self._batch_keys.get(n)
            if cached is not None and cached[0] == ident and cached[1] != batch_key:
                continue  # seen, and another batch's
            rec = self.commit(n)  # not seen yet, or a cached hit: read (back) from disk
            self._batch_keys[n] = (ident, rec.batch_key)
            if rec.batch_key == batch_key:
                return rec
        return None

    def shard_paths(self, commit: int | None = None) -> list[Path]:
        """Absolute paths of committed shards (all commits, or up to and including `commit`)."""
        out = []
        for n in self.commit_numbers():
            if commit is not None and n > commit:
                break
            out.extend(self.root / s.path for s in self.commit(n).shards)
        return out

    # -- writing ---------------------------------------------------------------
    def lock(self):
        """Serialises commits and gc() of this store."""
        return file_lock(self.root / ".lock")

    def new_staging(self, batch_key: str) -> Path:
        """A private staging directory for one attempt at one batch.

        Made under the store's lock: gc() (another batch starting, in this process or another)
        removes a staging directory without an owner, so it must never see one between the
        mkdir and the owner file."""
        path = self.staging_dir / f"{batch_key[:16]}-{uuid.uuid4().hex[:12]}"
        owner = {"pid": os.getpid(), "host": socket.gethostname(), "started": time.time()}
        with self.lock():
            path.mkdir(parents=True)
            (path / "owner.json").write_text(json.dumps(owner))
        return path

    def gc(self) -> list[str]:
        """Remove debris of dead attempts: staging dirs of dead processes, unreferenced data dirs."""
        removed: list[str] = []
        host = socket.gethostname()
        with self.lock():
            for d in self.staging_dir.iterdir() if self.staging_dir.exists() else []:
                try:
                    owner = json.loads((d / "owner.json").read_text())
                except (OSError, ValueError):
                    owner = {}
                if owner.get("host") == host and pid_alive(int(owner.get("pid", -1))):
                    continue
                if owner.get("host") not in (None, host):
                    continue  # another machine's attempt: it cleans up after itself
                shutil.rmtree(d, ignore_errors=True)
                removed.append(str(d.relative_to(self.root)))
            committed = {f"{n:08d}" for n in self.commit_numbers()}
            for d in self.data_dir.iterdir() if self.data_dir.exists() else []:
                if d.name not in committed:
                    shutil.rmtree(d, ignore_errors=True)
                    removed.append(str(d.relative_to(self.root)))
            for tmp in self.manifest_dir.glob("*.tmp"):
                tmp.unlink(missing_ok=True)
                removed.append(str(tmp.relative_to(self.root)))
            from refinery.resume import stale_resume_dirs  # finished units of batches never re-run

            for d in stale_resume_dirs(self.state_dir):
                shutil.rmtree(d, ignore_errors=True)
                removed.append(str(d.relative_to(self.root)))
        return removed

    def commit_staged(
        self, staging: Path, record: CommitRecord, shard_files: list[FileEntry], reject_files: list[FileEntry]
    ) -> CommitRecord:
        """Atomically publish the files under `staging/out` as the next commit.

        Returns the existing record instead if the batch was committed meanwhile
        (a concurrent or earlier run of the same batch): exactly once.  A caller
        with work to do under the lock before publishing (the batch driver's dedup
        recheck and index segment) uses committing() and publish() itself.
        """
        record.stats = staged_stats(staging, shard_files)
        with self.committing(record.batch_key) as slot:
            committed = slot.existing if slot.existing is not None else slot.publish(staging, record, shard_files, reject_files)
        shutil.rmtree(staging, ignore_errors=True)
        return committed

    @contextmanager
    def committing(self, batch_key: str) -> Iterator["CommitSlot"]:
        """Under the store's lock: the batch's commit if it exists, else the next commit's number.

        Everything done inside, up to CommitSlot.publish(), sees no other commit land."""
        with self.lock():
            existing = self.find_batch(batch_key)
            numbers = self.commit_numbers()
            yield CommitSlot(self, existing, (numbers[-1] if numbers else 0) + 1)


def staged_stats(staging: Path, shard_files: list[FileEntry]) -> dict:
    """The figures of the shards under `staging/out` a commit record carries (store/stats.py)."""
    return shard_stats(staging / "out" / Path(f.path).name for f in shard_files)


@dataclass
class CommitSlot:
    """A commit about to be made, inside CorpusStore.committing()."""

    store: CorpusStore
    existing: CommitRecord | None  # the batch's earlier commit: nothing to publish
    number: int  # the number publish() gives the commit

    def publish(
        self, staging: Path, record: CommitRecord, shard_files: list[FileEntry], reject_files: list[FileEntry]
    ) -> CommitRecord:
        """Move `staging/out` to data/<number>/, then write the manifest (the commit exists once it does).

        `record.stats` must describe `shard_files` (staged_stats)."""
        assert self.existing is None, "the batch is committed already"
        store, number = self.store, self.number
        out = staging / "out"
        target = store.data_dir / f"{number:08d}"
        if target.exists():  # left by a crash between the rename and the manifest write
            shutil.rmtree(target)
        out.mkdir(exist_ok=True)
        os.rename(out, target)
        fsync_dir(store.data_dir)
        crash_point("REFINERY_CRASH_IN_COMMIT")  # data/<N>/ in place, no manifest yet
        prefix = f"data/{number:08d}/"
        record.commit = number
        record.created_at = datetime.now(timezone.utc).isoformat(timespec="seconds")
        record.shards = [FileEntry(prefix + Path(f.path).name, f.rows, f.bytes, f.sha256) for f in shard_files]
        record.rejects = [FileEntry(prefix + Path(f.path).name, f.rows, f.bytes, f.sha256) for f in reject_files]
        write_text_durably(store.manifest_dir / manifest_name(number), record.to_json())
        return record

