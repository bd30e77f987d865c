"""Raw-byte copies are dropped before extraction without changing the kept set (issue 8)."""

from __future__ import annotations

import shutil

import pyarrow.parquet as pq
import pytest

from conftest import shared
from refinery.batch import run_batch
from refinery.config import load_pipeline, parse_pipeline
from refinery.dedup.raw import RawCopies
from refinery.store import CorpusStore

pytestmark = pytest.mark.slow


def test_raw_copies_keep_the_first_copy_in_input_order():
    copies = RawCopies()
    for index, keys in [(0, [("a", 1), ("b", 2)]), (1, [("c", 2), ("d", 3), ("e", 1)]), (2, [("f", 3)])]:
        copies.add(index, keys)
    assert copies.skips == {1: {"c": "b", "e": "a"}, 2: {"f": "d"}}


def _kept(store: CorpusStore) -> list[str]:
    urls = []
    for p in store.shard_paths():
        urls += pq.read_table(p, columns=["url"]).column("url").to_pylist()
    return sorted(urls)


def test_copies_are_skipped_before_extraction_and_kept_set_is_unchanged(tmp_path):
    src = shared("warc", "real_pages", "pages-003.warc.gz")
    one, two = tmp_path / "one", tmp_path / "two"
    one.mkdir()
    two.mkdir()
    shutil.copyfile(src, one / "a.warc.gz")
    shutil.copyfile(src, two / "a.warc.gz")
    shutil.copyfile(src, two / "b-copy.warc.gz")
    config = load_pipeline("pipelines/web-en.yaml")
    alone = run_batch(config, [str(one)], CorpusStore(tmp_path / "s1"))
    store2 = CorpusStore(tmp_path / "s2")
    doubled = run_batch(config, [str(two)], store2)
    assert _kept(CorpusStore(tmp_path / "s1")) == _kept(store2)
    dd = doubled.counters.stage("dedup")
    ex = doubled.counters.stage("extract")
    n_pages = alone.counters.stage("read").docs_in
    assert dd.dropped["exact_raw"] == n_pages  # every page of the copy, none of the original
    assert ex.docs_in == alone.counters.stage("extract").docs_in  # trafilatura never saw the copies
    rows = [r for p in sorted((tmp_path / "s2" / "data").rglob("rejects-*.parquet")) for r in pq.read_table(p).to_pylist()]
    raw = [r for r in rows if r["reason"] == "exact_raw"]
    assert len(raw) == n_pages and all(r["stage"] == "dedup" and r["dup_of"] for r in raw)
    assert all("b-copy" in r["source_uri"] for r in raw)


def test_no_raw_skip_without_exact_dedup(tmp_path):
    src = shared("warc", "real_pages", "pages-003.warc.gz")
    shutil.copyfile(src, tmp_path / "a.warc.gz")
    shutil.copyfile(src, tmp_path / "b.warc.gz")
    config = parse_pipeline({"name": "t", "stages": [{"extract": {}}, {"dedup": {"exact": False}}]})
    out = run_batch(config, [str(tmp_path)], CorpusStore(tmp_path / "s"))
    assert "exact_raw" not in out.counters.stage("dedup").dropped
