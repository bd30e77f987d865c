"""Reader API (refinery.corpus.Corpus): snapshots, projection, filters, follow mode, on local FS and S3."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import threading
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from corpus_helpers import Backend, add_commit, backend, make_docs, moto_endpoint  # noqa: F401
from refinery.corpus import Corpus
from refinery.errors import StoreError
from refinery.store import CorpusStore

DOCS1, DOCS2 = make_docs("c1", 120), make_docs("c2", 80)
DEBRIS = make_docs("debris", 30)


def _ids(batches) -> list[str]:
    return [i for b in batches for i in b.column("doc_id").to_pylist()]


@pytest.fixture
def store(tmp_path, backend: Backend):
    st = CorpusStore(tmp_path / "store")
    add_commit(st, DOCS1)
    add_commit(st, DOCS2)
    backend.put_debris(st, DEBRIS, 3)
    return st


def test_commits_files_and_snapshots(store, backend):
    corpus = Corpus(backend.publish(store), **backend.options)
    assert [r.commit for r in corpus.commits()] == [1, 2]
    assert corpus.latest() == 2
    assert corpus.commit(2).docs_out == 80
    files1, files = corpus.files(commit=1), corpus.files()
    assert files[: len(files1)] == files1 and len(files) > len(files1)
    assert not any("debris" in f or "staging" in f or "00000003" in f for f in files)
    if backend.kind == "local":  # the same list `refinery store files` prints
        assert files == [str(p) for p in store.shard_paths()]
    else:
        assert all(f.startswith("s3://refinery/") for f in files)
    assert _ids(corpus.iter_batches(commit=1)) == DOCS1.column("doc_id").to_pylist()
    assert _ids(corpus.iter_batches()) == DOCS1.column("doc_id").to_pylist() + DOCS2.column("doc_id").to_pylist()
    assert _ids(corpus.iter_batches(since=1)) == DOCS2.column("doc_id").to_pylist()
    with pytest.raises(StoreError, match="commit 3 does not exist"):
        list(corpus.iter_batches(commit=3))


def test_projection_and_filters(store, backend):
    corpus = Corpus(backend.publish(store), **backend.options)
    batches = list(corpus.iter_batches(columns=["doc_id", "toxicity"], batch_size=7))
    assert all(b.schema.names == ["doc_id", "toxicity"] and b.num_rows <= 7 for b in batches)
    both = pa.concat_tables([DOCS1, DOCS2])
    rows = both.to_pylist()

    def expect(pred) -> list[str]:
        return [r["doc_id"] for r in rows if pred(r)]

    got = _ids(corpus.iter_batches(columns=["doc_id"], filter={"language": "en", "toxicity": {"max": 0.5}}))
    assert got == expect(lambda r: r["language"] == "en" and r["toxicity"] <= 0.5 + 1e-6) and got
    got = _ids(corpus.iter_batches(columns=["doc_id"], filter={"ppl_bucket": ["head", "middle"], "q_words": {">=": 30}}))
    assert got == expect(lambda r: r["ppl_bucket"] in ("head", "middle") and r["q_words"] >= 30) and got
    expr = (pc.field("language") == "de") & (pc.field("perplexity") < 150)
    got = _ids(corpus.iter_batches(columns=["doc_id"], filter=expr))
    assert got == expect(lambda r: r["language"] == "de" and r["perplexity"] < 150) and got
    with pytest.raises(KeyError, match="no_such_column"):
        list(corpus.iter_batches(filter={"no_such_column": 1}))
    with pytest.raises(KeyError, match="nope"):
        list(corpus.iter_batches(columns=["doc_id", "nope"]))
    with pytest.raises(ValueError, match="unknown operator"):
        list(corpus.iter_batches(filter={"toxicity": {"<<": 1}}))


def test_follow_reads_new_commits_never_uncommitted(store, backend):
    corpus = Corpus(backend.publish(store), **backend.options)
    docs3 = make_docs("c3", 40)

    def refinery_commits_later() -> None:
        time.sleep(0.6)
        add_commit(store, docs3)
        backend.publish(store)

    seen: list[str] = []
    writer = threading.Thread(target=refinery_commits_later)
    writer.start()
    try:
        for batch in corpus.iter_batches(columns=["doc_id"], since=1, follow=True, poll_interval=0.1, idle_timeout=3.0):
            seen += batch.column("doc_id").to_pylist()
    finally:
        writer.join()
    assert seen == DOCS2.column("doc_id").to_pylist() + docs3.column("doc_id").to_pylist()
    assert Corpus(backend.uri(store), **backend.options).latest() == 3


def test_a_follower_stops_when_asked_while_it_waits(tmp_path):
    """`stop` ends a follower at once, whether it waits for a commit or for an unreachable store
    (a loader thread must not outlive its job by idle_timeout or max_outage)."""
    st = CorpusStore(tmp_path / "store")
    add_commit(st, DOCS1)
    corpus = Corpus(st.root)
    stop = threading.Event()
    seen: list[str] = []

    def follow() -> None:
        for batch in corpus.iter_batches(columns=["doc_id"], follow=True, poll_interval=5.0, stop=stop):
            seen.extend(batch.column("doc_id").to_pylist())

    t = threading.Thread(target=follow)
    t.start()
    deadline = time.monotonic() + 30
    while len(seen) < DOCS1.num_rows and time.monotonic() < deadline:
        time.sleep(0.05)
    assert len(seen) == DOCS1.num_rows
    time.sleep(0.3)  # now waiting for commit 2 (polls every 5 s, never times out)
    asked = time.monotonic()
    stop.set()
    t.join(10)
    assert not t.is_alive() and time.monotonic() - asked < 2
    assert seen == DOCS1.column("doc_id").to_pylist()

    def unreachable() -> int:
        raise OSError("connection refused")

    corpus.latest = unreachable  # the store goes away while the follower waits for a commit
    stop2 = threading.Event()
    answer: list = []
    t = threading.Thread(target=lambda: answer.append(corpus.wait_for_commit(1, 0.1, None, 300, stop2)))
    t.start()
    time.sleep(1.0)  # retrying with backoff, up to 300 s
    asked = time.monotonic()
    stop2.set()
    t.join(10)
    assert not t.is_alive() and time.monotonic() - asked < 2 and answer == [None]


def test_manifest_gap_and_bad_stores(tmp_path):
    st = CorpusStore(tmp_path / "s")
    add_commit(st, DOCS1)
    # commit 3's manifest visible before commit 2's (an out-of-order upload): wait for the gap
    (st.manifest_dir / "00000003.json").write_text((st.manifest_dir / "00000001.json").read_text())
    assert Corpus(st.root).commit_numbers() == [1]
    with pytest.raises(StoreError, match="not a corpus store"):
        Corpus(tmp_path / "missing")
    (st.manifest_dir / "00000002.json").write_text("{not json")
    with pytest.raises(StoreError, match="corrupt commit record"):
        Corpus(st.root).commits()


def test_cli_files_load_with_hf_datasets(tmp_path):
    pytest.importorskip("datasets")
    st = CorpusStore(tmp_path / "store")
    add_commit(st, DOCS1)
    add_commit(st, DOCS2)
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1]), "HF_DATASETS_OFFLINE": "1",
           "HF_HUB_OFFLINE": "1", "HF_HOME": str(tmp_path / "hf"), "HF_DATASETS_CACHE": str(tmp_path / "hf-cache")}
    listed = subprocess.run([sys.executable, "-m", "refinery.cli", "store", "files", "--store", str(st.root), "--commit", "1"],
                            capture_output=True, text=True, env=env, check=True).stdout.split()
    assert listed == Corpus(st.root).files(commit=1)
    code = (
        "import json, sys, datasets\n"
        "files = sys.argv[1:]\n"
        "ds = datasets.load_dataset('parquet', data_files=files, split='train', cache_dir=%r)\n"
        "print(json.dumps({'n': ds.num_rows, 'ids': list(ds['doc_id']), 'cols': ds.column_names}))\n" % str(tmp_path / "hf-cache")
    )
    out = subprocess.run([sys.executable, "-c", code, *listed], capture_output=True, text=True, env=env, timeout=120)
    assert out.returncode == 0, out.stderr[-2000:]
    got = json.loads(out.stdout.strip().splitlines()[-1])
    assert got["n"] == 120 and got["ids"] == DOCS1.column("doc_id").to_pylist()
    assert "text" in got["cols"] and "language" in got["cols"]


def test_cli_mirror_publishes_commits_in_protocol_order(tmp_path, capsys):
    from refinery.cli import main

    st = CorpusStore(tmp_path / "store")
    add_commit(st, DOCS1)
    dest = tmp_path / "mirror"
    assert main(["store", "mirror", "--store", str(st.root), "--to", str(dest)]) == 0
    add_commit(st, DOCS2)
    assert main(["store", "mirror", "--store", str(st.root), "--to", str(dest)]) == 0
    assert main(["store", "mirror", "--store", str(st.root), "--to", str(dest)]) == 0
    out = capsys.readouterr().out
    assert out.splitlines() == ["mirrored commit 1", "mirrored commit 2", "nothing to mirror: the destination has every commit"]
    mirrored = Corpus(dest)
    assert [r.to_json() for r in mirrored.commits()] == [r.to_json() for r in Corpus(st.root).commits()]
    assert _ids(mirrored.iter_batches(columns=["doc_id"])) == _ids(Corpus(st.root).iter_batches(columns=["doc_id"]))
    # a shard that no longer matches its commit record is refused, and its manifest not published
    add_commit(st, make_docs("c3", 10))
    shard = st.root / st.commit(3).shards[0].path
    shard.write_bytes(shard.read_bytes() + b"x")
    assert main(["store", "mirror", "--store", str(st.root), "--to", str(dest)]) == 1
    assert "sha256 differs" in capsys.readouterr().err
    assert Corpus(dest).latest() == 2


def test_s3_missing_bucket_is_a_clear_error(moto_endpoint, monkeypatch):
    from corpus_helpers import S3_KEYS

    with pytest.raises(StoreError, match="bucket 'no-such-bucket' does not exist"):
        Corpus("s3://no-such-bucket/store", endpoint_override=moto_endpoint, **S3_KEYS)
    empty = Corpus(f"s3://refinery/empty?endpoint_override={moto_endpoint}", **S3_KEYS)  # URI form of the option
    assert empty.latest() == 0 and empty.files() == []
    # the environment form the service and training jobs use
    monkeypatch.setenv("REFINERY_S3_ENDPOINT", moto_endpoint)
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    assert Corpus("s3://refinery/empty").latest() == 0


def test_followers_wait_out_an_unreachable_store_then_give_up(tmp_path):
    """patiently(): OSError is retried with backoff up to max_outage, then raised; other errors at once."""
    corpus = Corpus(CorpusStore(tmp_path / "s").root)
    calls: list[float] = []

    def flaky():
        calls.append(time.monotonic())
        if len(calls) < 3:
            raise OSError("connection refused")
        return 7

    assert corpus.patiently("listing", flaky, max_outage=30) == 7 and len(calls) == 3
    start = time.monotonic()
    with pytest.raises(OSError, match="still down"):
        corpus.patiently("listing", lambda: (_ for _ in ()).throw(OSError("still down")), max_outage=0.8)
    assert 0.8 <= time.monotonic() - start < 5
    with pytest.raises(ValueError):
        corpus.patiently("listing", lambda: int("x"), max_outage=30)  # not an outage: no retry
