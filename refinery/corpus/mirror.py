"""Publish a local corpus store to object storage (or another path) in commit-protocol order.

Object stores have no rename, so the local commit protocol (rename a data
directory, then rename the manifest into place) becomes: upload every file a
commit names, then upload its manifest last, commit by commit in number order.
A reader lists manifests only, so it sees a commit exactly when all its files
are there; an interrupted mirror leaves unnamed objects, invisible, that the
next mirror overwrites.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Any, Callable

import pyarrow.fs as pafs

from refinery.corpus.reader import Corpus
from refinery.errors import StoreError
from refinery.store import CorpusStore
from refinery.store.manifest import manifest_name

_CHUNK = 8 << 20


def _upload(src: Path, fs: pafs.FileSystem, dst: str) -> str:
    """Copy one file; returns the sha256 of the bytes sent."""
    h = hashlib.sha256()
    with src.open("rb") as f, fs.open_output_stream(dst) as out:
        while chunk := f.read(_CHUNK):
            h.update(chunk)
            out.write(chunk)
    return h.hexdigest()


def mirror_store(
    store: CorpusStore | str | Path,
    dest_uri: str,
    on_commit: Callable[[int], None] | None = None,
    **storage_options: Any,
) -> list[int]:
    """Upload the commits of `store` that `dest_uri` lacks; returns their numbers."""
    src = store if isinstance(store, CorpusStore) else CorpusStore(store, create=False)
    dest = Corpus(dest_uri, require_store=False, **storage_options)
    fs, root = dest.fs, dest.root
    local = isinstance(fs, pafs.LocalFileSystem)
    if local:
        fs.create_dir(root + "/manifest", recursive=True)
    have = dest.latest()
    done = []
    for number in src.commit_numbers():
        if number <= have:
            continue
        rec = src.commit(number)
        fs.create_dir(f"{root}/data/{number:08d}", recursive=True)
        for entry in rec.shards + rec.rejects:
            sent = _upload(src.root / entry.path, fs, f"{root}/{entry.path}")
            if sent != entry.sha256:
                raise StoreError(f"{src.root / entry.path}: sha256 differs from commit {number}'s record; not mirrored")
        final = f"{root}/manifest/{manifest_name(number)}"
        if local:  # a local file appears as soon as it is opened: write aside, then rename
            _upload(src.manifest_dir / manifest_name(number), fs, final + ".tmp")
            fs.move(final + ".tmp", final)
        else:  # an object appears atomically when its PUT completes
            _upload(src.manifest_dir / manifest_name(number), fs, final)
        done.append(number)
        if on_commit:
            on_commit(number)
    return done
