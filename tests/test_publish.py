"""Publishing in the commit path: `refinery run --publish` and `refinery serve --publish` write the
object-store corpus that training jobs read with the same URI (`Corpus(uri)`).

Real components: the CLI and the service as subprocesses with local Ray, a moto S3 server on a
free loopback port, the reader.  Checks: the published corpus equals the local store (commits,
shard paths, rows, sha256, bytes); a crash between a commit's data and its manifest leaves
nothing visible and the next run publishes it exactly once; a publish failure says the batch IS
committed; an object store that goes down fails no batch, is counted in /metrics, and is caught
up in the background when it returns, picked up by a follow-mode reader that was already open.
"""

from __future__ import annotations

import hashlib
import logging
import shutil
import threading
import time

import httpx
import pyarrow.fs as pafs
import pytest

from corpus_helpers import S3_KEYS, add_commit, free_port, make_docs, moto_endpoint  # noqa: F401
from helpers import refinery
from refinery.corpus import Corpus, publish_store
from refinery.errors import StoreError
from refinery.sample import write_sample_warc
from refinery.store import CorpusStore
from service_util import ServiceProcess, client, metric_sum, parse_metrics, wait_state

ENV_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}

# A small pipeline (extraction + language ID) with small shards: several data objects per commit.
PIPELINE = """\
name: publish-test
execution:
  records_per_unit: 16
shards:
  target_bytes: 16384
  row_group_rows: 64
rejects:
  mode: all
stages:
  - extract: {}
  - langid:
      languages: [en]
      min_score: 0.5
"""


def _s3(endpoint: str) -> pafs.S3FileSystem:
    return pafs.S3FileSystem(endpoint_override=endpoint.removeprefix("http://"), scheme="http", region="us-east-1",
                             **S3_KEYS)


def _objects(fs: pafs.FileSystem, root: str) -> dict[str, tuple[int, object]]:
    """Every object under root: relative key -> (size, mtime)."""
    infos = fs.get_file_info(pafs.FileSelector(root, recursive=True, allow_not_found=True))
    return {i.path[len(root) + 1:]: (i.size, i.mtime) for i in infos if i.type == pafs.FileType.File}


def assert_same_corpus(published: Corpus, local: CorpusStore) -> None:
    """The reader at the published URI sees exactly the local store's commits, shards and bytes."""
    assert published.commit_numbers() == local.commit_numbers()
    for n in local.commit_numbers():
        assert published.commit(n).to_json() == local.commit(n).to_json()
    shards = published.shards()
    want = [(r.commit, s.path, s.rows, s.bytes, s.sha256) for r in local.commits() for s in r.shards]
    assert [(s.commit, s.path, s.rows, s.bytes, s.sha256) for s in shards] == want
    for s in shards:  # the bytes themselves, read back through the reader's filesystem
        with published.fs.open_input_stream(f"{published.root}/{s.path}") as f:
            assert hashlib.sha256(f.read()).hexdigest() == s.sha256
    ids = [v for b in published.iter_batches(columns=["doc_id"]) for v in b.column("doc_id").to_pylist()]
    assert ids == [v for b in Corpus(local.root).iter_batches(columns=["doc_id"]) for v in b.column("doc_id").to_pylist()]


# -- library -------------------------------------------------------------------------------
def test_publishers_of_one_store_never_interleave(tmp_path):
    """Concurrent publishers (threads here; flock is per open file, so processes alike) publish each commit once."""
    st = CorpusStore(tmp_path / "store")
    for i in range(4):
        add_commit(st, make_docs(f"p{i}", 30))
    dest = str(tmp_path / "published")
    results = []
    threads = [threading.Thread(target=lambda: results.append(publish_store(st, dest))) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    done = sorted(n for r in results for n in r.published)
    assert done == [1, 2, 3, 4] and all(r.latest == 4 for r in results)
    assert_same_corpus(Corpus(dest), st)
    assert (st.state_dir / "publish.lock").exists()


def test_publisher_touches_nothing_until_ray_is_up(tmp_path):
    """The service's publisher waits for `after` (Ray up): Ray's start-up adds environment variables,
    which must not happen while an S3 call reads the environment from another thread (SIGSEGV)."""
    from refinery.service.publisher import Publisher

    st = CorpusStore(tmp_path / "store")
    add_commit(st, make_docs("w", 10))
    dest = tmp_path / "published"
    ray_up = threading.Event()
    publisher = Publisher(st, str(dest), retry_seconds=0.1, poll_seconds=0.1, after=ray_up)
    publisher.start()
    try:
        time.sleep(1.5)
        assert publisher.published is None and publisher.errors == 0 and not dest.exists()
        ray_up.set()
        deadline = time.time() + 30
        while publisher.published != 1 and time.time() < deadline:
            time.sleep(0.1)
        assert publisher.published == 1
        assert_same_corpus(Corpus(str(dest)), st)
    finally:
        publisher.stop()


def test_publish_refuses_another_stores_destination(tmp_path):
    a, b = CorpusStore(tmp_path / "a"), CorpusStore(tmp_path / "b")
    add_commit(a, make_docs("a", 20))
    add_commit(b, make_docs("b", 20))
    add_commit(b, make_docs("b2", 20))
    dest = str(tmp_path / "published")
    assert publish_store(a, dest).published == [1]
    with pytest.raises(StoreError, match="belongs to another store"):
        publish_store(b, dest)
    add_commit(a, make_docs("a2", 20))
    add_commit(a, make_docs("a3", 20))
    with pytest.raises(StoreError, match="belongs to another store"):  # destination ahead of the store
        publish_store(CorpusStore(tmp_path / "empty"), dest)
    assert publish_store(a, dest).published == [2, 3]
    assert_same_corpus(Corpus(dest), a)


# -- refinery run --publish -------------------------------------------------------------------
def test_cli_run_publish_crash_failure_repair(tmp_path, moto_endpoint):  # noqa: F811
    """One Ray run: crash between data and manifest, failure message, repair, idempotent re-run, next batch."""
    (tmp_path / "in").mkdir()
    warc, _ = write_sample_warc(tmp_path / "in")
    pipe = tmp_path / "publish-test.yaml"
    pipe.write_text(PIPELINE)
    store = tmp_path / "store"
    uri = f"s3://refinery/cli-{time.time_ns()}"
    env = {**ENV_KEYS, "REFINERY_S3_ENDPOINT": moto_endpoint}
    fs, root = _s3(moto_endpoint), uri.removeprefix("s3://")
    run = ["run", "-q", "-p", str(pipe), str(warc), "--store", str(store), "--publish", uri]

    # 1. the batch commits locally, then the publisher dies after the data objects, before the manifest
    crashed = refinery(*run, check=False, REFINERY_CRASH_IN_PUBLISH="17", **env)
    assert crashed.returncode == 17, crashed.stderr[-2000:]
    local = CorpusStore(store, create=False)
    assert local.commit_numbers() == [1] and local.commit(1).shards
    left = _objects(fs, root)
    assert left and all(k.startswith("data/00000001/") for k in left)  # uploaded, but named by no manifest
    reader = Corpus(uri, endpoint_override=moto_endpoint, **S3_KEYS)
    assert reader.latest() == 0 and reader.files() == [] and list(reader.iter_batches()) == []

    # 2. the object store unreachable: non-zero exit, and the message says the batch IS committed
    closed = f"http://127.0.0.1:{free_port()}"
    failed = refinery(*run, check=False, **{**env, "REFINERY_S3_ENDPOINT": closed})
    assert failed.returncode == 1
    assert "IS committed locally as commit 1" in failed.stderr and "refinery store mirror" in failed.stderr
    assert "batch already committed as commit 1" in failed.stdout  # nothing was processed again

    # 3. re-running the same command repairs the publish: commit 1 exactly once, equal to the store
    repaired = refinery(*run, **env)
    assert "published commit 1 to" in repaired.stdout
    assert_same_corpus(reader, local)
    objects = _objects(fs, root)
    want = {e.path for e in local.commit(1).shards + local.commit(1).rejects} | {"manifest/00000001.json"}
    assert set(objects) == want  # no stray object: the crashed attempt's were overwritten in place

    # 4. again: nothing new is published, nothing is rewritten
    again = refinery(*run, **env)
    assert "already has every commit (latest 1)" in again.stdout and "published commit" not in again.stdout
    assert _objects(fs, root) == objects

    # 5. a new batch: processed, committed as 2 and published by the same run
    (tmp_path / "in2").mkdir()
    shutil.copy(warc, tmp_path / "in2" / "copy.warc.gz")  # another input URI: another batch
    second = refinery(*run[:4], str(tmp_path / "in2" / "copy.warc.gz"), *run[5:], **env)
    assert "published commit 2 to" in second.stdout
    assert_same_corpus(reader, CorpusStore(store, create=False))


def test_cli_publish_rejects_bad_uri_before_running(tmp_path):
    proc = refinery("run", "-q", "-p", "web-en", str(tmp_path), "--store", str(tmp_path / "s"),
                    "--publish", "s3://bucket/x?no_such_option=1", check=False)
    assert proc.returncode == 2 and "--publish" in proc.stderr and "unknown S3 option" in proc.stderr
    assert not (tmp_path / "s").exists()


# -- refinery serve --publish -----------------------------------------------------------------
def _start_moto(port: int):
    from moto.server import ThreadedMotoServer

    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server


def _wait(pred, timeout: float, what: str):
    deadline = time.time() + timeout
    while time.time() < deadline:
        value = pred()
        if value:
            return value
        time.sleep(0.2)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}")


def test_service_publishes_each_commit_and_rides_out_an_outage(tmp_path):
    pytest.importorskip("moto.server")
    port = free_port()
    endpoint = f"http://127.0.0.1:{port}"
    s3 = _start_moto(port)
    svc = None
    stop_following = threading.Event()
    try:
        pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", region="us-east-1",
                          allow_bucket_creation=True, **S3_KEYS).create_dir("refinery")
        uri = "s3://refinery/served"
        roots = tmp_path / "inputs"
        (roots / "a").mkdir(parents=True)
        warc, _ = write_sample_warc(roots / "a")
        (roots / "b").mkdir()
        shutil.copy(warc, roots / "b" / "sample.warc.gz")
        store = tmp_path / "store"
        svc = ServiceProcess(store, [roots], tmp_path / "service.log",
                             ["--publish", uri, "--publish-retry-seconds", "0.5", "--concurrency", "1"],
                             env={**ENV_KEYS, "REFINERY_S3_ENDPOINT": endpoint})
        reader = Corpus(uri, endpoint_override=endpoint, **S3_KEYS)  # the URI a training job is given
        seen: list[str] = []
        failed: list[BaseException] = []

        def read_following() -> None:  # must ride out the outage below, as a training job's loader would
            try:
                for b in reader.iter_batches(columns=["doc_id"], follow=True, poll_interval=0.3, idle_timeout=240,
                                             stop=stop_following):
                    seen.extend(b.column("doc_id").to_pylist())
            except BaseException as err:  # noqa: BLE001 - reported by the assertions below
                failed.append(err)

        follow = threading.Thread(target=read_following, daemon=True)
        follow.start()  # open before anything is committed: it must pick commit 1 up as it appears
        svc.wait_ready()
        with client(svc.url) as c:
            m = parse_metrics(c.get("/metrics").text)
            assert metric_sum(m, "refinery_publish_errors_total") == 0
            b1 = c.post("/v1/batches", json={"source": str(roots / "a"), "pipeline": "web-en"}).json()
            assert wait_state(c, b1["id"], ("committed", "failed"))["state"] == "committed"
            _wait(lambda: Corpus(uri, endpoint_override=endpoint, **S3_KEYS).latest() == 1, 30, "commit 1 published")
            local = CorpusStore(store, create=False)
            assert_same_corpus(Corpus(uri, endpoint_override=endpoint, **S3_KEYS), local)
            rows = sum(s.rows for s in local.commit(1).shards)
            assert rows > 0
            _wait(lambda: len(seen) >= rows, 30, "the follow-mode reader to read commit 1")
            assert sorted(seen) == sorted(v for b in Corpus(store).iter_batches(columns=["doc_id"])
                                          for v in b.column("doc_id").to_pylist())
            m = parse_metrics(c.get("/metrics").text)
            assert metric_sum(m, "refinery_published_commit") == 1 and metric_sum(m, "refinery_publish_lag_commits") == 0
            pub = c.get("/v1/overview").json()["publish"]
            assert pub["published_commit"] == 1 and pub["lag"] == 0 and pub["ok"]

            # the object store goes down: the next batch still commits locally, failures are counted
            s3.stop()
            b2 = c.post("/v1/batches", json={"source": str(roots / "b"), "pipeline": "web-en"})
            assert b2.status_code == 202, b2.text
            done = wait_state(c, b2.json()["id"], ("committed", "failed"))
            assert done["state"] == "committed" and done["commit"] == 2, done
            _wait(lambda: metric_sum(parse_metrics(c.get("/metrics").text), "refinery_publish_errors_total") >= 1,
                  30, "a counted publish failure")
            m = parse_metrics(c.get("/metrics").text)
            assert metric_sum(m, "refinery_published_commit") == 1 and metric_sum(m, "refinery_publish_lag_commits") == 1
            pub = c.get("/v1/overview").json()["publish"]
            assert pub["lag"] == 1 and not pub["ok"]
            assert c.get("/readyz").status_code == 200  # publishing is not readiness: batches go on

            # it comes back (same port, same buckets): the background retry catches up, no new batch needed
            s3 = _start_moto(port)
            _wait(lambda: metric_sum(parse_metrics(c.get("/metrics").text), "refinery_published_commit") == 2,
                  60, "the background retry to publish commit 2")
            assert c.get("/v1/overview").json()["publish"]["ok"]
        assert_same_corpus(Corpus(uri, endpoint_override=endpoint, **S3_KEYS), CorpusStore(store, create=False))
        # the follower polled through the outage and read commit 2 exactly once, nothing repeated
        every = [v for b in Corpus(store).iter_batches(columns=["doc_id"]) for v in b.column("doc_id").to_pylist()]
        _wait(lambda: len(seen) >= len(every) or failed, 60, "the follow-mode reader to read commit 2")
        assert not failed, failed
        assert sorted(seen) == sorted(every)
        assert "Traceback" not in (tmp_path / "service.log").read_text()
    finally:
        stop_following.set()  # the follower would otherwise poll the stopped server for minutes
        if svc is not None:
            svc.stop()
        s3.stop()


def test_service_catches_up_at_startup(tmp_path):
    """Commits made while the service was down (here: without Ray) are published when it starts."""
    st = CorpusStore(tmp_path / "store")
    add_commit(st, make_docs("s1", 40))
    add_commit(st, make_docs("s2", 40))
    dest = tmp_path / "published"  # a local path is a valid --publish URI too
    (tmp_path / "in").mkdir()
    svc = ServiceProcess(st.root, [tmp_path / "in"], tmp_path / "service.log", ["--publish", str(dest)])
    try:
        with client(svc.url) as c:  # publishing starts once Ray is up (Service.start starts Ray first)
            _wait(lambda: _get_metrics(c, svc), 60, "the service to answer")
            _wait(lambda: metric_sum(_get_metrics(c, svc), "refinery_published_commit") == 2, 60, "catch-up")
            m = _get_metrics(c, svc)
            assert metric_sum(m, "refinery_publish_lag_commits") == 0 and metric_sum(m, "refinery_publish_errors_total") == 0
    finally:
        svc.stop()
    assert_same_corpus(Corpus(dest), st)


def _get_metrics(c, svc) -> dict:
    if svc.proc.poll() is not None:
        raise AssertionError(f"service exited:\n{svc.log.read_text()[-3000:]}")
    try:
        return parse_metrics(c.get("/metrics").text)
    except httpx.HTTPError:  # not listening yet
        return {}
