"""Publish a local corpus store to object storage (or another path) in commit-protocol order.

Object stores have no rename, so the local commit protocol (rename a data
directory, then rename the manifest into place) becomes: upload every file a
commit names, then upload its manifest last, commit by commit in number order.
A reader lists manifests only, so it sees a commit exactly when all its files
are there; an interrupted publish leaves unnamed objects, invisible, that the
next publish overwrites.

This one implementation serves `refinery store mirror` (manual repair),
`refinery run --publish` and the service's publisher.  It is catch-up and
idempotent: each call publishes every local commit the destination lacks, so
a crash anywhere (before the data, between data and manifest, after the
manifest) is repaired by the next call, and a manifest is never written twice
with different bytes.  Publishers of one store are serialised by an fcntl
lock on `<store>/state/publish.lock`, so two processes never interleave.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import pyarrow.fs as pafs

from refinery.corpus.fs import open_filesystem
from refinery.corpus.reader import Corpus
from refinery.crash_points import crash_point
from refinery.errors import ConfigError, RefineryError, StoreError
from refinery.store import CorpusStore
from refinery.store.corpus_store import file_lock
from refinery.store.manifest import manifest_name

_CHUNK = 8 << 20
CRASH_ENV = "REFINERY_CRASH_IN_PUBLISH"  # fault injection: exit after a commit's data, before its manifest


@dataclass
class PublishResult:
    """What one publish did: the commits it uploaded and the destination's latest commit afterwards."""

    published: list[int] = field(default_factory=list)
    latest: int = 0


def check_destination(uri: str, **storage_options: Any) -> None:
    """Fail early (before a batch runs) on a URI that cannot name a destination; no network access."""
    open_filesystem(uri, **storage_options)


def check_publish_option(uri: str) -> None:
    """`--publish URI` of `refinery run` and `refinery serve`: a bad URI fails at start, as a ConfigError
    naming the option, not after the first batch."""
    try:
        check_destination(uri)
    except RefineryError as err:
        raise ConfigError(f"--publish {uri}: {err}") from None


def publish_lock(store: CorpusStore):
    """One publisher per store at a time (processes and threads alike: flock is per open file)."""
    store.state_dir.mkdir(exist_ok=True)
    return file_lock(store.state_dir / "publish.lock")


def _upload(src: Path, fs: pafs.FileSystem, dst: str) -> str:
    """Copy one file; returns the sha256 of the bytes sent."""
    h = hashlib.sha256()
    with src.open("rb") as f, fs.open_output_stream(dst) as out:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            out.write(chunk)
    return h.hexdigest()


def _check_same_corpus(src: CorpusStore, dest: Corpus, have: int, local: list[int]) -> None:
    """Refuse to append to a destination that holds another store's commits (it would mix corpora)."""
    if have == 0:
        return
    if not local or have > local[-1]:
        raise StoreError(f"{dest.uri} has {have} commit(s) but {src.root} only {local[-1] if local else 0}: "
                         "the destination belongs to another store; publish to an empty prefix")
    theirs, ours = dest.commit(have).batch_key, src.commit(have).batch_key
    if theirs != ours:
        raise StoreError(f"{dest.uri}: commit {have} there is batch {theirs[:16]}, in {src.root} batch {ours[:16]}: "
                         "the destination belongs to another store; publish to an empty prefix")


def publish_store(
    store: CorpusStore | str | Path,
    dest_uri: str,
    on_commit: Callable[[int], None] | None = None,
    **storage_options: Any,
) -> PublishResult:
    """Upload the commits of `store` that `dest_uri` lacks, in number order, under the publish lock.

    Raises StoreError (bad or foreign destination, object store unreachable,
    a shard whose sha256 no longer matches its record); whatever was published
    before the error stays valid and the next call continues from there.
    """
    src = store if isinstance(store, CorpusStore) else CorpusStore(store, create=False)
    dest = Corpus(dest_uri, require_store=False, **storage_options)
    try:
        with publish_lock(src):
            return _publish_locked(src, dest, on_commit)
    except OSError as err:  # unreachable endpoint, missing bucket, denied: one line naming the destination
        raise StoreError(f"cannot publish to {dest_uri}: {err}") from err


def _publish_locked(src: CorpusStore, dest: Corpus, on_commit: Callable[[int], None] | None) -> PublishResult:
    fs, root = dest.fs, dest.root
    local = isinstance(fs, pafs.LocalFileSystem)
    result = PublishResult()
    if local:
        fs.create_dir(root + "/manifest", recursive=True)
    numbers = src.commit_numbers()
    have = dest.latest()
    _check_same_corpus(src, dest, have, numbers)
    result.latest = have
    for number in numbers:
        if number <= have:
            continue
        rec = src.commit(number)
        fs.create_dir(f"{root}/data/{number:08d}", recursive=True)
        for entry in rec.shards + rec.rejects:
            sent = _upload(src.root / entry.path, fs, f"{root}/{entry.path}")
            if sent != entry.sha256:
                raise StoreError(f"{src.root / entry.path}: sha256 differs from commit {number}'s record; not published")
        crash_point(CRASH_ENV)  # data objects in place, no manifest yet: invisible to readers
        final = f"{root}/manifest/{manifest_name(number)}"
        if local:  # a local file appears as soon as it is opened: write aside, then rename
            _upload(src.manifest_dir / manifest_name(number), fs, final + ".tmp")
            fs.move(final + ".tmp", final)
        else:  # an object appears atomically when its PUT completes
            _upload(src.manifest_dir / manifest_name(number), fs, final)
        result.published.append(number)
        result.latest = number
        if on_commit:
            on_commit(number)
    return result


def mirror_store(
    store: CorpusStore | str | Path,
    dest_uri: str,
    on_commit: Callable[[int], None] | None = None,
    **storage_options: Any,
) -> list[int]:
    """`publish_store`, returning only the numbers of the commits uploaded (the original API)."""
    return publish_store(store, dest_uri, on_commit, **storage_options).published
