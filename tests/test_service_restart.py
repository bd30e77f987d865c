"""kill -9 of the service during a batch, restart: every batch is committed exactly once."""

from __future__ import annotations

import sqlite3
import time

import pytest

from refinery.sample import write_sample_warc
from refinery.store import CorpusStore
from service_util import ServiceProcess, client, wait_state

pytestmark = pytest.mark.slow


def test_kill9_during_batch_then_restart_commits_each_batch_once(tmp_path):
    root = tmp_path / "inputs"
    root.mkdir()
    # A batch long enough to be killed mid-way: the generated sample six times over (a WARC.gz
    # is a series of gzip members, so concatenation is a valid file); no shared data needed.
    write_sample_warc(root / "small")
    one = (root / "small" / "sample.warc.gz").read_bytes()
    (root / "big.warc.gz").write_bytes(one * 6)
    store_dir = tmp_path / "store"
    log = tmp_path / "service.log"

    svc = ServiceProcess(store_dir, [root], log, ["--concurrency", "1"])
    try:
        svc.wait_ready()
        with client(svc.url) as c:
            a = c.post("/v1/batches", json={"source": "big.warc.gz", "pipeline": "web-en", "priority": 5}).json()
            b = c.post("/v1/batches", json={"source": "small", "pipeline": "web-en"}).json()
            deadline = time.time() + 60
            while time.time() < deadline:
                cur = c.get(f"/v1/batches/{a['id']}").json()
                if cur["state"] == "running" and cur["progress"]["units_total"]:
                    break
                time.sleep(0.1)
            assert cur["state"] == "running", cur
            time.sleep(1.0)  # tasks are in flight on Ray
            assert c.get(f"/v1/batches/{b['id']}").json()["state"] == "queued"  # concurrency 1
    finally:
        svc.kill9()
    store = CorpusStore(store_dir, create=False)
    assert store.commit_numbers() == [], "the big batch committed before the kill: the test proves nothing"
    assert any((store_dir / "staging").iterdir()), "the killed attempt left its staging directory"

    # Restart on the same store: the running batch is requeued and both commit once.
    svc = ServiceProcess(store_dir, [root], log, ["--concurrency", "1"])
    try:
        svc.wait_ready()
        with client(svc.url) as c:
            da = wait_state(c, a["id"], ("committed", "failed", "cancelled"))
            db = wait_state(c, b["id"], ("committed", "failed", "cancelled"))
    finally:
        svc.stop()
    assert da["state"] == db["state"] == "committed", (da.get("error"), db.get("error"))
    assert da["attempts"] == 2 and da["already_committed"] is False
    recs = store.commits()
    assert len(recs) == 2 and {r.labels["refinery_batch_id"] for r in recs} == {a["id"], b["id"]}
    assert len({r.batch_key for r in recs}) == 2
    assert list((store_dir / "staging").iterdir()) == []  # the dead attempt's debris was collected

    # The other crash window: the commit happened but the service died before recording it.
    # Simulate it by marking the committed batch running again, then restart once more.
    with sqlite3.connect(store_dir / "state" / "service.db") as db_conn:
        db_conn.execute("UPDATE batches SET state='running', commit_id=NULL WHERE id=?", (b["id"],))
    svc = ServiceProcess(store_dir, [root], log, ["--concurrency", "1"])
    try:
        svc.wait_ready()
        with client(svc.url) as c:
            again = wait_state(c, b["id"], ("committed", "failed", "cancelled"))
    finally:
        svc.stop()
    assert again["state"] == "committed" and again["already_committed"] is True
    assert again["commit"] == db["commit"]
    assert len(store.commits()) == 2


def test_service_killed_at_random_point_then_inside_commit_equals_clean_run(tmp_path):
    """Life 1: SIGKILL at a random moment of a running batch.  Life 2: the process dies inside the
    store commit (data/ renamed, no manifest).  Life 3: the batch commits once, equal to a clean
    `refinery run` of the same input; readers see only it and the dedup index agrees."""
    import random

    from fault_util import assert_index_agrees, assert_readers_see_only, assert_same_store
    from helpers import refinery
    from refinery.pipeline_files import resolve

    seed = random.randrange(1 << 30)
    delay = random.Random(seed).uniform(0.0, 3.0)
    root = tmp_path / "inputs"
    root.mkdir()
    write_sample_warc(root / "small")
    one = (root / "small" / "sample.warc.gz").read_bytes()
    (root / "big.warc.gz").write_bytes(one * 2)
    store_dir, log = tmp_path / "store", tmp_path / "service.log"

    svc = ServiceProcess(store_dir, [root], log, ["--concurrency", "1"])
    try:
        svc.wait_ready()
        with client(svc.url) as c:
            a = c.post("/v1/batches", json={"source": "big.warc.gz", "pipeline": "web-en"}).json()
            wait_state(c, a["id"], ("running",), timeout=60)
            time.sleep(delay)
    finally:
        svc.kill9()
    store = CorpusStore(store_dir, create=False)
    if store.commit_numbers():
        # The random moment fell after the commit: life 2 would find the batch committed, never reach
        # the store commit and so never die in it (it would run until the wait below timed out).
        # Skip it; life 3 still proves the batch is committed exactly once.
        print(f"seed {seed}: killed after the commit")
    else:
        svc = ServiceProcess(store_dir, [root], log, ["--concurrency", "1"], env={"REFINERY_CRASH_IN_COMMIT": "3"})
        try:
            svc.proc.wait(180)
        finally:
            crashed_rc = svc.proc.returncode
            svc.kill9()
        assert crashed_rc == 3, f"seed {seed}: the service did not die in the commit ({crashed_rc})"
        assert (store_dir / "data" / "00000001").is_dir() and store.commit_numbers() == []
        assert_readers_see_only(store_dir, [])

    svc = ServiceProcess(store_dir, [root], log, ["--concurrency", "1"])
    try:
        svc.wait_ready()
        with client(svc.url) as c:
            done = wait_state(c, a["id"], ("committed", "failed", "cancelled"))
    finally:
        svc.stop()
    assert done["state"] == "committed", (seed, done.get("error"))
    clean = tmp_path / "clean"
    refinery("run", "-q", "--pipeline", "web-en", str(root / "big.warc.gz"), "--store", str(clean))
    assert_readers_see_only(store_dir, [1])
    assert_same_store(store_dir, clean)
    assert_index_agrees(store_dir, resolve("web-en"), no_orphans=True)
    assert list((store_dir / "staging").iterdir()) == []
    assert sorted(d.name for d in (store_dir / "data").iterdir()) == ["00000001"]
