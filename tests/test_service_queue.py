"""The durable queue, tokens, source confinement and the inbox, without HTTP or Ray."""

from __future__ import annotations

import os
import time

import pytest

from refinery.errors import ConfigError
from refinery.sample import write_sample_warc
from refinery.service.auth import TokenAuth, load_tokens, parse_tokens
from refinery.service.inbox import InboxWatcher
from refinery.service.queue import BatchQueue
from refinery.service.sources import SourceRefused, SourceResolver


def test_priority_then_age_and_durable_across_reopen(tmp_path):
    q = BatchQueue(tmp_path / "q.db")
    low = q.submit("a", ["/a"], "web-en", priority=0)
    high = q.submit("b", ["/b"], "web-en", priority=9)
    low2 = q.submit("c", ["/c"], "web-en", priority=0)
    assert q.claim_next().id == high.id
    q.close()
    q = BatchQueue(tmp_path / "q.db")  # reopen: a restart
    assert q.get(high.id).state == "running" and q.get(high.id).attempts == 1
    assert q.requeue_running() == [high.id]
    assert [q.claim_next().id for _ in range(3)] == [high.id, low.id, low2.id]
    assert q.claim_next() is None
    assert q.get(high.id).attempts == 2
    assert q.counts()["running"] == 3


def test_cancel_and_retry_transitions(tmp_path):
    q = BatchQueue(tmp_path / "q.db")
    a = q.submit("a", ["/a"], "web-en")
    assert q.request_cancel(a.id) == "queued" and q.get(a.id).state == "cancelled"
    assert q.retry(a.id) == "cancelled" and q.get(a.id).state == "queued"
    q.claim_next()
    assert q.request_cancel(a.id) == "running" and q.get(a.id).cancel_requested
    assert q.get(a.id).state == "running"  # the scheduler's cancel hook ends it
    # a cancel requested before a crash still holds after the restart
    q.requeue_running()
    assert q.get(a.id).state == "cancelled"
    q.finish(a.id, "failed", error="boom")
    assert q.retry(a.id) == "failed" and q.get(a.id).state == "queued" and q.get(a.id).error is None
    assert q.request_cancel("missing") is None and q.retry("missing") is None
    b = q.submit("b", ["/b"], "web-en")
    q.claim_next()
    q.claim_next()
    q.finish(b.id, "committed", commit_id=3)
    assert q.retry(b.id) == "committed" and q.get(b.id).state == "committed"  # no-op: caller answers 409


def test_tokens_parse_roles_and_refuse_bad_entries(tmp_path):
    toks = parse_tokens("aaaaaaaaaaaaaaaa:operator, bbbbbbbbbbbbbbbb:reader", "env")
    auth = TokenAuth(toks)
    op, rd = auth.authenticate("aaaaaaaaaaaaaaaa"), auth.authenticate("bbbbbbbbbbbbbbbb")
    assert auth.allows(op, "operator") and auth.allows(op, "reader")
    assert auth.allows(rd, "reader") and not auth.allows(rd, "operator")
    assert auth.authenticate("aaaaaaaaaaaaaaab") is None and auth.authenticate("") is None
    for bad, word in [("short:reader", "too short"), ("cccccccccccccccc:admin", "unknown role"),
                      ("cccccccccccccccc", "token:role")]:
        with pytest.raises(ConfigError, match=word):
            parse_tokens(bad, "env")
    f = tmp_path / "tokens"
    f.write_text("# operators\ndddddddddddddddd:operator\n\neeeeeeeeeeeeeeee:reader  # ci\n")
    assert load_tokens(str(f), env={"REFINERY_TOKENS": "ffffffffffffffff:reader"}) == {
        "dddddddddddddddd": "operator", "eeeeeeeeeeeeeeee": "reader", "ffffffffffffffff": "reader"}
    with pytest.raises(ConfigError, match="cannot read"):
        load_tokens(str(tmp_path / "missing"), env={})


def test_sources_glob_dir_and_confinement(tmp_path):
    root = tmp_path / "root"
    (root / "a").mkdir(parents=True)
    write_sample_warc(root / "a")
    write_sample_warc(root / "b")
    (root / "b" / "notes.txt").write_text("ignored")
    r = SourceResolver([root])
    assert r.resolve("a/sample.warc.gz") == [str(root / "a" / "sample.warc.gz")]
    assert r.resolve("*/sample.warc.gz") == [str(root / "a" / "sample.warc.gz"), str(root / "b" / "sample.warc.gz")]
    assert r.resolve("b") == [str(root / "b" / "sample.warc.gz")]
    assert r.resolve(f"file://{root}/a") == [str(root / "a" / "sample.warc.gz")]
    with pytest.raises(SourceRefused) as e:
        r.resolve("b/notes.txt")
    assert e.value.status == 422
    # a stored batch is re-checked before it runs: a file swapped for an escaping link is refused
    os.replace(root / "a" / "sample.warc.gz", tmp_path / "moved.warc.gz")
    os.symlink(tmp_path / "moved.warc.gz", root / "a" / "sample.warc.gz")
    with pytest.raises(SourceRefused) as e:
        r.check([str(root / "a" / "sample.warc.gz")])
    assert e.value.status == 403


def test_inbox_submits_each_stable_file_once(tmp_path):
    inbox = tmp_path / "inbox"
    inbox.mkdir()
    q = BatchQueue(tmp_path / "q.db")
    resolver = SourceResolver([inbox])
    w = InboxWatcher(inbox, "web-en", q, resolver)
    write_sample_warc(inbox)
    (inbox / ".partial.warc.gz").write_bytes(b"being copied")
    assert w.poll_once() == []  # first sight: wait for a stable second look
    ids = w.poll_once()
    assert len(ids) == 1
    b = q.get(ids[0])
    assert b.origin == "inbox" and b.pipeline == "web-en" and b.inputs == [str(inbox / "sample.warc.gz")]
    assert w.poll_once() == []
    w2 = InboxWatcher(inbox, "web-en", q, resolver)  # a restarted service
    assert w2.poll_once() == [] and w2.poll_once() == []
    time.sleep(0.01)
    (inbox / "sample.warc.gz").write_bytes((inbox / "sample.warc.gz").read_bytes() + b"")
    os.utime(inbox / "sample.warc.gz", ns=(time.time_ns(), time.time_ns()))  # a new version of the file
    w2.poll_once()
    assert len(w2.poll_once()) == 1
    assert q.counts()["queued"] == 2


def test_scheduler_records_a_failure_and_retry_requeues(tmp_path):
    """A batch whose input vanished fails with the reason; nothing is staged or committed."""
    from refinery.service.metrics import ServiceMetrics
    from refinery.service.scheduler import Scheduler
    from refinery.store import CorpusStore

    root = tmp_path / "in"
    write_sample_warc(root)
    store = CorpusStore(tmp_path / "store")
    q = BatchQueue(store.state_dir / "service.db")
    resolver = SourceResolver([root])
    metrics = ServiceMetrics(store, q)
    sched = Scheduler(q, store, metrics, resolver)  # not started: _run is called directly, no Ray needed
    b = q.submit("sample.warc.gz", resolver.resolve("sample.warc.gz"), "web-en")
    (root / "sample.warc.gz").unlink()
    claimed = q.claim_next()
    sched._run(claimed)
    failed = q.get(b.id)
    assert failed.state == "failed" and "no such file" in failed.error
    assert list(store.staging_dir.iterdir()) == [] and store.commit_numbers() == []
    text = metrics.registry.get_sample_value("refinery_batches_finished_total", {"pipeline": "web-en", "state": "failed"})
    assert text == 1.0
    assert q.retry(b.id) == "failed" and q.get(b.id).state == "queued"


def test_dedup_index_gauge_counts_vouched_segments_only(tmp_path):
    """Absent without an index; counts rows of segments whose commit exists with that batch key."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from refinery.service.metrics import ServiceMetrics, dedup_index_size
    from refinery.store import CommitRecord, CorpusStore

    store = CorpusStore(tmp_path / "store")
    q = BatchQueue(store.state_dir / "q.db")
    m = ServiceMetrics(store, q)
    assert dedup_index_size(store) == {}
    assert m.registry.get_sample_value("refinery_dedup_index_entries", {"index": "abc"}) is None
    key = "f" * 64
    rec = CommitRecord(0, key, "", "web-en", "h", {}, [], [], [], {}, 0, 0)
    committed = store.commit_staged(store.new_staging(key), rec, [], [])
    seg_dir = store.state_dir / "dedup" / "abc"
    seg_dir.mkdir(parents=True)
    table = pa.table({"doc_id": [str(i) for i in range(5)]})
    pq.write_table(table, seg_dir / f"seg-{committed.commit:08d}-{key[:16]}.parquet")
    pq.write_table(table, seg_dir / f"seg-00000002-{'e' * 16}.parquet")  # no manifest vouches for it
    pq.write_table(table, seg_dir / f"seg-{committed.commit:08d}-{'d' * 16}.parquet")  # wrong batch key
    assert dedup_index_size(store) == {"abc": 5}
    assert m.registry.get_sample_value("refinery_dedup_index_entries", {"index": "abc"}) == 5


def test_dedup_index_gauge_counts_the_compacted_base(tmp_path):
    """After compaction (base-<N>.parquet holds commits 1..N, their segments deleted) the gauge
    still counts every indexed document: found by the soak (bench/soak.py), where it fell to the
    rows of the segments written since the last compaction."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from refinery.service.metrics import dedup_index_size
    from refinery.store import CommitRecord, CorpusStore

    store = CorpusStore(tmp_path / "store")
    keys = ["a" * 64, "b" * 64]
    for key in keys:
        rec = CommitRecord(0, key, "", "web-en", "h", {}, [], [], [], {}, 0, 0)
        store.commit_staged(store.new_staging(key), rec, [], [])
    seg_dir = store.state_dir / "dedup" / "abc"
    seg_dir.mkdir(parents=True)
    pq.write_table(pa.table({"commit": [1] * 7, "doc_id": [str(i) for i in range(7)]}), seg_dir / "base-00000001.parquet")
    pq.write_table(pa.table({"doc_id": ["x", "y"]}), seg_dir / f"seg-00000002-{keys[1][:16]}.parquet")
    pq.write_table(pa.table({"doc_id": ["z"]}), seg_dir / f"seg-00000001-{keys[0][:16]}.parquet")  # folded into the base
    assert dedup_index_size(store) == {"abc": 9}
