"""Dedup building blocks without Ray: signatures, banding, the compact index, first-copy-wins."""

from __future__ import annotations

import functools
import gzip
import json

import numpy as np
import pytest

from refinery.config import parse_pipeline
from refinery.dedup.resident import NO_MATCH, PartitionedIndex
from refinery.dedup.lsh import band_hashes, candidate_probability
from refinery.dedup.minhash import MinHasher, Shingling, fmix64, normalise, shingle_hash32, shingles
from refinery.dedup.decisions import _FirstKept
from refinery.errors import ConfigError
from refinery.dedup.options import DedupOptions
from refinery.dedup.signatures import Signer

from conftest import shared

EN = "The Quick brown fox, born in 1999, jumps over the lazy dog; the quick brown fox then sleeps until noon."
ZH = "今天天气很好，我们去公园散步吧。然后一起吃午饭，下午再回家休息。"


@pytest.mark.parametrize("text,shingling", [(EN, Shingling("word", 5)), (ZH, Shingling("char", 5)),
                                            ("two words", Shingling("word", 5)), ("", Shingling("word", 5))])
def test_signatures_equal_datasketch(text, shingling):
    datasketch = pytest.importorskip("datasketch")
    ours = MinHasher(128, seed=1).signatures([text], [shingling])[0]
    ref = datasketch.MinHash(num_perm=128, seed=1, hashfunc=functools.partial(shingle_hash32, kind=shingling.kind))
    ref.update_batch(shingles(normalise(text), shingling))
    assert np.array_equal(ours, ref.hashvalues)


def test_jaccard_estimates_agree_with_datasketch():
    datasketch = pytest.importorskip("datasketch")
    a = EN * 3
    b = a.replace("lazy", "sleepy").replace("noon", "dusk")
    sig = MinHasher(128, 1).signatures([a, b], [Shingling()] * 2)
    ma = datasketch.MinHash(128, seed=1, hashvalues=sig[0], scheme="affine32")
    mb = datasketch.MinHash(128, seed=1, hashvalues=sig[1], scheme="affine32")
    sa, sb = set(shingles(normalise(a), Shingling())), set(shingles(normalise(b), Shingling()))
    true_j = len(sa & sb) / len(sa | sb)
    assert ma.jaccard(mb) == pytest.approx(float(np.mean(sig[0] == sig[1])))
    assert abs(ma.jaccard(mb) - true_j) < 0.2


def test_normalise_ignores_case_punctuation_digits_spacing():
    assert normalise("Hello,  WORLD!\n2024 “quotes”") == normalise("hello world 1999 quotes")
    assert normalise(None) == ""


def test_default_lsh_curve_meets_the_targets():
    o = DedupOptions()
    assert o.bands * o.rows <= o.num_perm
    assert candidate_probability(0.8, o.bands, o.rows) > 0.98
    assert candidate_probability(0.3, o.bands, o.rows) < 0.01


def test_bad_options_are_config_errors():
    with pytest.raises(ConfigError, match="exceeds num_perm"):
        parse_pipeline({"name": "x", "stages": [{"dedup": {"num_perm": 64, "bands": 10, "rows": 7}}]})
    with pytest.raises(ConfigError, match="unknown key"):
        parse_pipeline({"name": "x", "stages": [{"dedup": {"threshold": 0.8}}]})


@pytest.mark.parametrize("partitions,n_queries", [(1, 50), (3, 50), (1, 1500)])  # small and large query paths
def test_compact_index_returns_earliest_match_like_brute_force(partitions, n_queries):
    rng = np.random.default_rng(7)
    bands = 6
    index = PartitionedIndex(bands, partitions)
    stored_k, stored_e = [], []
    for size in (500, 120, 60, 900, 30):  # uneven batches force merges of runs
        k = rng.integers(0, 2**64, size=(size, bands), dtype=np.uint64)
        e = rng.integers(0, 2**64, size=size, dtype=np.uint64)
        if stored_k:  # plant copies of earlier documents (and of themselves: earliest must win)
            k[0] = stored_k[0][3]
            k[1, 2] = stored_k[-1][5, 2]
            e[2] = stored_e[0][9]
        index.insert(k, e)
        stored_k.append(k)
        stored_e.append(e)
    all_k, all_e = np.concatenate(stored_k), np.concatenate(stored_e)
    q = rng.integers(0, 2**64, size=(n_queries, bands), dtype=np.uint64)
    qe = rng.integers(0, 2**64, size=n_queries, dtype=np.uint64)
    q[0] = all_k[3]
    q[1, 4] = all_k[1000, 4]
    q[2, 0] = all_k[700, 0] ^ np.uint64(1)  # differs in the lowest bits only: beyond the 48 stored
    q[3, 5] = all_k[10, 5] ^ np.uint64(1 << 20)  # differs in stored low bits: no match
    qe[4] = all_e[9]
    q[-1] = all_k[1500]
    ex, near = index.query(q, qe)
    for i in range(n_queries):
        hits = np.flatnonzero(((all_k >> np.uint64(16)) == (q[i] >> np.uint64(16))).any(axis=1))
        assert near[i] == (hits.min() if hits.size else NO_MATCH)
        ehits = np.flatnonzero(all_e == qe[i])
        assert ex[i] == (ehits.min() if ehits.size else NO_MATCH)
    assert near[0] == 3 and ex[4] == 9 and near[3] == NO_MATCH


def test_compact_index_is_small():
    index = PartitionedIndex(18, 1)
    rng = np.random.default_rng(1)
    index.insert(rng.integers(0, 2**64, size=(20000, 18), dtype=np.uint64), rng.integers(0, 2**64, 20000, dtype=np.uint64))
    assert index.nbytes / 20000 <= 200


def test_first_copy_wins_and_only_kept_documents_count():
    # docs 0..4 in input order.  exact groups: 3 is an exact copy of 0.
    # band 0: 0,1 share;  band 1: 1,2 share (2 is near 1 only);  4 unique.
    exact = np.array([0, 1, 2, 0, 3], np.uint64)
    keys = fmix64(np.array([[0, 0], [0, 1], [1, 1], [2, 2], [3, 3]], np.uint64))  # band keys are hashes
    kept_by, kind = _FirstKept(True, True, 2).feed(exact, keys)
    assert kept_by.tolist() == [-1, 0, -1, 0, -1]  # 2 survives: its only match (1) was dropped
    assert kind.tolist() == [-1, 1, -1, 0, -1]  # kept_by counts kept documents: 2 is kept ordinal 1


def _walk_reference(exact, keys, use_exact, use_near):
    """The rule spelled out, quadratic: a copy names the earliest kept document it shares a key with."""
    kept, out = [], []
    for i in range(len(exact)):
        hit = next((k for k in kept if use_exact and exact[k] == exact[i]), None)
        how = 0
        if hit is None and use_near:
            hit, how = next((k for k in kept if (keys[k] == keys[i]).any()), None), 1
        out.append((-1, -1) if hit is None else (hit, how))
        if hit is None:
            kept.append(i)
    return out


@pytest.mark.parametrize("use_exact,use_near", [(True, True), (True, False), (False, True)])
def test_first_copy_wins_whatever_the_part_boundaries(use_exact, use_near):
    """Parts are decided as they finish: cutting the batch anywhere must decide the same."""
    rng = np.random.default_rng(7)
    n, bands = 300, 3
    exact = rng.integers(0, 120, n).astype(np.uint64)
    keys = fmix64(rng.integers(0, 200, (n, bands)).astype(np.uint64))  # band keys are hashes
    expected = _walk_reference(exact, keys, use_exact, use_near)
    for cuts in ([0, n], [0, 1, 2, 150, n], sorted({0, n, *rng.integers(1, n, 20).tolist()})):
        first = _FirstKept(use_exact, use_near, bands)
        got, kept_positions = [], []
        for a, b in zip(cuts, cuts[1:]):
            kept_by, kind = first.feed(exact[a:b], keys[a:b])
            for i, (k, how) in enumerate(zip(kept_by.tolist(), kind.tolist())):
                got.append((-1, -1) if k < 0 else (kept_positions[k], how))
                if k < 0:
                    kept_positions.append(a + i)
        assert got == expected, cuts


def test_rebuilt_signatures_equal_stage_signatures():
    signer = Signer(DedupOptions())
    exact, sigs = signer.sign([EN, ZH, None], ["en", "zh", None])
    exact2, sigs2 = signer.sign([EN.upper(), ZH, ""], ["en", "zh", "en"])
    assert np.array_equal(sigs, sigs2) and np.array_equal(exact, exact2)


def test_neardup_pairs_acceptance():
    """Recall >= 0.95 on duplicates with true Jaccard >= 0.8, FPR <= 0.01 on non-duplicates."""
    path = shared("neardup", "pairs.jsonl.gz")
    with gzip.open(path, "rt", encoding="utf-8") as f:
        pairs = [json.loads(line) for line in f]
    o = DedupOptions()
    signer = Signer(o)
    langs = [p["lang"] for p in pairs]
    ea, sa = signer.sign([p["text_a"] for p in pairs], langs)
    eb, sb = signer.sign([p["text_b"] for p in pairs], langs)
    hit = (ea == eb) | (band_hashes(sa, o.bands, o.rows) == band_hashes(sb, o.bands, o.rows)).any(axis=1)
    true_j = np.array([p.get("jaccard_w5", p.get("jaccard_c5")) for p in pairs])
    label = np.array([p["label"] for p in pairs])
    for lang in ("en", "zh"):
        mine = np.array(langs) == lang
        assert hit[mine & (label == 1) & (true_j >= 0.8)].mean() >= 0.95, lang
        assert hit[mine & (label == 0)].mean() <= 0.01, lang


def _commit_by_hand(store, texts, key="k" * 64, models=None):
    """A commit made without the dedup stage: shards hold doc_id and text only."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    from refinery.store import CommitRecord, FileEntry
    from refinery.hashing import sha256_file

    staging = store.new_staging(key)
    out = staging / "out"
    out.mkdir()
    path = out / "shard-00000.parquet"
    pq.write_table(pa.table({"doc_id": [f"d{i}" for i in range(len(texts))], "text": texts}), path)
    entry = FileEntry(str(path.relative_to(out)), len(texts), path.stat().st_size, sha256_file(path))
    record = CommitRecord(0, key, "", "hand", "h", models or {}, [], [], [], {}, len(texts), len(texts))
    return store.commit_staged(staging, record, [entry], [])


def test_index_rebuilds_from_text_for_commits_made_without_dedup(tmp_path):
    from refinery.dedup.index import DedupIndex
    from refinery.store import CorpusStore

    store = CorpusStore(tmp_path / "store")
    other = "An entirely different page about gardening and the care of tomato plants in summer. " * 4
    import random

    rng = random.Random(3)
    long = " ".join("".join(rng.choice("abcdefghij") for _ in range(6)) for _ in range(300))
    _commit_by_hand(store, [other, long])
    o = DedupOptions()
    index = DedupIndex(store, o)
    assert index.refresh() == 1 and index.rebuilt == [1]
    assert len(list(index.dir.glob("seg-00000001-*.parquet"))) == 1  # written back for next time
    near_copy = long.replace(long.split()[150], "changed", 1)
    exact, sigs = Signer(o).sign([near_copy, "nothing like it at all " * 20], None)
    ex, near = index.query(band_hashes(sigs, o.bands, o.rows), exact)
    assert near[0] == 1 and near[1] == NO_MATCH and ex[0] == NO_MATCH
    assert index.locate(1) == ("d1", 1)
    # A second process finds the written-back segment and does not rebuild.
    again = DedupIndex(store, o)
    assert again.refresh() == 1 and again.rebuilt == []
    # An orphan segment (no manifest for commit 2) is ignored, then removed.
    orphan = index.dir / "seg-00000002-ffffffffffffffff.parquet"
    orphan.write_bytes(b"junk")
    assert DedupIndex(store, o).refresh() == 1
    assert index.remove_orphans() == [orphan.name] and not orphan.exists()


def test_without_language_column_cjk_scripts_get_character_shingles():
    from refinery.scripts import script_language

    assert script_language(normalise(ZH)) == "zh"
    assert script_language(normalise("これはテストです。日本語の文章をここに書きます。")) == "ja"
    assert script_language(normalise("ภาษาไทยไม่มีการเว้นวรรคระหว่างคำ")) == "th"
    assert script_language(normalise(EN)) is None
    signer = Signer(DedupOptions())
    _, with_lang = signer.sign([ZH], ["zh"])
    _, without = signer.sign([ZH], None)
    assert np.array_equal(with_lang, without)


def test_compaction_folds_segments_into_a_base_that_loads_the_same(tmp_path):
    from refinery.dedup.index import DedupIndex, segment_name, segment_table, write_segment
    from refinery.store import CorpusStore

    store = CorpusStore(tmp_path / "store")
    o = DedupOptions()
    signer = Signer(o)
    texts = [f"document number {'x' * (i + 1)} " * 30 for i in range(8)]
    index = DedupIndex(store, o)
    for i, text in enumerate(texts):  # eight commits, each with its segment, as run_batch does
        key = f"{i:02d}" * 32
        exact, sigs = signer.sign([text], None)
        rec = _commit_by_hand(store, [text], key=key, models={"dedup": {"index": o.index_id()}})
        write_segment(index.dir / segment_name(rec.commit, key), segment_table([f"c{rec.commit}"], exact,
                      band_hashes(sigs, o.bands, o.rows)))
    index.refresh()
    other = DedupIndex(store, o)  # another process that loaded the segment files before compaction
    other.refresh()
    before = [index.locate(i) for i in range(8)]
    assert not index.merge_segments(at=9) and index.merge_segments(at=8)
    assert other.locate(3) == ("c4", 4)  # its file is gone: found in the base
    assert [p.name for p in index.dir.iterdir()] == ["base-00000008.parquet"]
    assert [index.locate(i) for i in range(8)] == before == [(f"c{n}", n) for n in range(1, 9)]
    fresh = DedupIndex(store, o)  # another process: loads the base, rebuilds nothing
    assert fresh.refresh() == 8 and fresh.rebuilt == []
    exact, sigs = signer.sign([texts[5]], None)
    ex, near = fresh.query(band_hashes(sigs, o.bands, o.rows), exact)
    assert ex[0] == 5 and fresh.locate(5) == ("c6", 6)
