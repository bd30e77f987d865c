"""gc() against attempts starting beside it: a staging directory is never seen without its owner."""

from __future__ import annotations

import threading

import refinery.store.corpus_store as corpus_store
from refinery.store import CorpusStore


def test_gc_started_while_a_staging_dir_is_being_made_keeps_it(tmp_path, monkeypatch):
    """Another batch's gc() that starts between new_staging()'s mkdir and its owner file waits
    for the owner file, then keeps the live attempt's directory (a service running three batches
    at once lost one this way: FileNotFoundError on owner.json)."""
    store = CorpusStore(tmp_path / "store")
    removed: list[list[str]] = []
    racer: list[threading.Thread] = []
    original_mkdir = corpus_store.Path.mkdir

    def mkdir_then_race(self, *args, **kwargs):
        original_mkdir(self, *args, **kwargs)
        if self.parent == store.staging_dir and not racer:
            racer.append(threading.Thread(target=lambda: removed.append(store.gc())))
            racer[0].start()
            racer[0].join(0.5)  # unless something holds gc() back, it runs to the end here

    monkeypatch.setattr(corpus_store.Path, "mkdir", mkdir_then_race)
    staging = store.new_staging("a" * 64)
    racer[0].join(10)
    assert not racer[0].is_alive()
    assert removed == [[]], removed  # gc() ran, and removed nothing of the live attempt
    assert (staging / "owner.json").exists()
