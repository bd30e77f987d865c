"""Helpers for the fault tests: generated inputs, and the invariants every fault must leave intact.

After any fault and a restart the store must equal a clean run's (same doc_id sets, same shard
bytes), readers must see only committed files, and the dedup index must agree with the shards.
"""

from __future__ import annotations

from refinery.sample import warc_record

import html
import random
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq

from refinery.config import load_pipeline
from refinery.corpus import Corpus
from refinery.dedup.index import DedupIndex, _parse_segment_name
from refinery.sample import MODULES, _doc_paragraphs, sample_pages, write_sample_warc
from refinery.store import CorpusStore

REPO = Path(__file__).resolve().parents[1]


def _prose(p: str) -> bool:
    """A paragraph of words (not code): the quality filters keep pages made of these."""
    words = p.split()
    return sum(w.strip(".,;:()'\"").isalpha() for w in words) >= 0.9 * len(words) and "{" not in p


def write_varied_warc(path: Path, pages: int, seed: int, copies: list[tuple[str, str]] = ()) -> None:
    """`pages` deterministic pages from stdlib docstrings (each with a unique sentence), plus `copies`."""
    pool = [p for m in MODULES for p in _doc_paragraphs(m) if len(p) > 60 and _prose(p)]
    rng = random.Random(seed)
    with path.open("wb") as f:
        for i in range(pages):
            paras = rng.sample(pool, k=min(len(pool), rng.randint(3, 7)))
            paras.append(f"This is note {seed}.{i}, which was written for the fault tests of the refinery.")
            body = "".join(f"<p>{html.escape(p)}</p>" for p in paras)
            page = (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>Note {i}</title></head><body>"
                    f"<main><article><h1>Note {seed}.{i}</h1>{body}</article></main></body></html>")
            f.write(warc_record(f"http://faults.refinery.invalid/{seed}/{i}", page.encode(), i))
        for j, (url, page) in enumerate(copies):
            f.write(warc_record(url + f"?copy={j}", page.encode(), pages + j))


def make_world(root: Path) -> dict:
    """Batch A (the sample crawl) and batch B (many small units; some pages copy A's)."""
    root.mkdir(parents=True, exist_ok=True)
    a, _ = write_sample_warc(root / "a")
    (root / "b").mkdir()
    b = root / "b" / "b.warc.gz"
    write_varied_warc(b, 90, seed=11, copies=sample_pages()[:4])
    text = (REPO / "pipelines" / "web-en.yaml").read_text()
    text = text.replace("records_per_unit: 64", "records_per_unit: 8").replace("batch_rows: 32", "batch_rows: 8")
    assert "records_per_unit: 8" in text
    pipeline = root / "faults.yaml"
    pipeline.write_text(text.replace("name: web-en", "name: faults"))
    return {"a": str(a), "b": str(b), "pipeline": str(pipeline), "config": load_pipeline(str(pipeline))}


def shard_doc_ids(store: CorpusStore, n: int) -> list[str]:
    ids: list[str] = []
    for s in store.commit(n).shards:
        ids.extend(pq.read_table(store.root / s.path, columns=["doc_id"]).column("doc_id").to_pylist())
    return ids


def assert_readers_see_only(store_root: Path, commits: list[int]) -> None:
    """CorpusStore and the training reader list exactly the shards of `commits`, nothing staged."""
    store = CorpusStore(store_root, create=False)
    assert store.commit_numbers() == commits
    paths = store.shard_paths()
    assert all(p.parent.name in {f"{n:08d}" for n in commits} for p in paths)
    assert all(p.is_file() for p in paths)
    corpus = Corpus(store_root)
    assert corpus.commit_numbers() == commits
    assert sorted(Path(f).resolve() for f in corpus.files()) == sorted(paths)


def _counts(counters: dict) -> dict:
    return {stage: {k: v for k, v in c.items() if k != "seconds"} for stage, c in counters.items()}


def assert_same_store(store_root: Path, clean_root: Path) -> None:
    """Same commits, same doc_id sets, byte-identical shards and rejects."""
    got, want = CorpusStore(store_root, create=False), CorpusStore(clean_root, create=False)
    assert got.commit_numbers() == want.commit_numbers()
    for n in want.commit_numbers():
        g, w = got.commit(n), want.commit(n)
        assert g.batch_key == w.batch_key
        assert set(shard_doc_ids(got, n)) == set(shard_doc_ids(want, n))
        assert [(s.rows, s.sha256) for s in g.shards] == [(s.rows, s.sha256) for s in w.shards]
        assert [(s.rows, s.sha256) for s in g.rejects] == [(s.rows, s.sha256) for s in w.rejects]
        for s in g.shards + g.rejects:
            assert (store_root / s.path).stat().st_size == s.bytes
        assert _counts(g.counters) == _counts(w.counters)  # everything but the timings


def assert_index_agrees(store_root: Path, config, no_orphans: bool = False) -> None:
    """The persistent dedup index holds exactly the committed shards' documents, commit by commit.

    Read through a fresh (read-only) DedupIndex: every commit must load from its own segment
    (nothing rebuilt), and each segment's doc_ids and content hashes must equal its shards'.
    """
    store = CorpusStore(store_root, create=False)
    options = config.stage("dedup").options
    index = DedupIndex(store, options, writable=False)
    index.refresh()
    assert index.rebuilt == [], f"commits without a valid index segment: {index.rebuilt}"
    assert [s.commit for s in index.segments] == store.commit_numbers()
    for seg in index.segments:
        table = pq.read_table(seg.path, columns=["doc_id", "content_hash"]).slice(seg.row, seg.count)
        ids, hashes = [], []
        for s in store.commit(seg.commit).shards:
            t = pq.read_table(store.root / s.path, columns=["doc_id", "content_hash"])
            ids.extend(t.column("doc_id").to_pylist())
            hashes.append(t.column("content_hash").to_numpy())
        assert table.column("doc_id").to_pylist() == ids, f"commit {seg.commit}"
        want = np.concatenate(hashes) if hashes else np.zeros(0, np.uint64)
        assert np.array_equal(table.column("content_hash").to_numpy(), want), f"commit {seg.commit}"
    assert index.mem.size == sum(store.commit(n).rows for n in store.commit_numbers())
    if no_orphans:
        committed = {n: store.commit(n).batch_key[:16] for n in store.commit_numbers()}
        for p in index.dir.iterdir():
            parsed = _parse_segment_name(p.name)
            if parsed is not None:
                assert committed.get(parsed[0]) == parsed[1], f"orphan index segment {p.name}"
            else:
                assert p.name.startswith("base-") and p.suffix == ".parquet", f"debris in the index: {p.name}"


def worker_failures() -> int:
    """RAY_WORKER_FAILURE events the local raylet has logged in this process's Ray session."""
    import ray

    session = Path(ray._private.worker._global_node.get_session_dir_path())  # test-only: private API
    path = session / "logs" / "events" / "event_RAYLET.log"
    try:
        return path.read_text(errors="replace").count("RAY_WORKER_FAILURE")
    except FileNotFoundError:
        return 0
