"""Dedup end to end on local Ray: across commits and restarts, crash recovery, concurrency, annotate."""

from __future__ import annotations

import json
import os
import random
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest

from refinery.batch import annotate_batch, run_batch
from refinery.config import load_pipeline
from refinery.dedup import decisions as decisions_mod
from refinery.dedup.index import DedupIndex
from refinery.store import CorpusStore

pytestmark = pytest.mark.slow

REPO = Path(__file__).resolve().parents[1]
PIPELINE = """name: dedup-test
execution: {records_per_unit: 8, batch_rows: 4}
stages:
  - dedup: {}
"""


def _vocab(rng: random.Random, n: int = 3000) -> list[str]:
    """Letters only: normalisation maps digits to 0, so w1/w2 would be one word."""
    return ["".join(rng.choice("abcdefghijklmnopqrstuvwxyz") for _ in range(rng.randint(3, 9))) for _ in range(n)]


def _doc(rng: random.Random, words: list[str], n: int = 200) -> str:
    return " ".join(rng.choice(words) for _ in range(n)) + "."


def _edit(rng: random.Random, text: str, frac: float = 0.01) -> str:
    """A near-duplicate: a few words replaced (Jaccard of word 5-grams stays ~0.9)."""
    toks = text.split()
    for i in rng.sample(range(len(toks)), max(1, int(len(toks) * frac))):
        toks[i] = "edited"
    return " ".join(toks)


def _write(path: Path, texts: list[str]) -> str:
    with open(path, "w", encoding="utf-8") as f:
        for i, t in enumerate(texts):
            f.write(json.dumps({"url": f"https://example.com/{path.stem}/{i}", "text": t}) + "\n")
    return str(path)


@pytest.fixture(scope="module")
def world(tmp_path_factory):
    """Five batches.  b1 holds originals; b2 holds copies of b1 plus in-batch copies; b5 a copy of b1[0]."""
    root = tmp_path_factory.mktemp("dedup")
    rng = random.Random(42)
    words = _vocab(rng)
    originals = [_doc(rng, words) for _ in range(12)]
    fresh = [_doc(rng, words) for _ in range(30)]
    batches = {
        1: originals,
        # b2: unique, near copy of b1[1], unique, exact copy of b1[2] (reformatted), unique + its near copy
        2: [fresh[0], _edit(rng, originals[1]), fresh[1], originals[2].upper().replace(" ", "  "), fresh[2],
            _edit(rng, fresh[2]), fresh[3], fresh[4]],
        3: fresh[5:12],
        4: fresh[12:20],
        5: [fresh[20], _edit(rng, originals[0], 0.02), fresh[21]],
    }
    inputs = {n: _write(root / f"b{n}.jsonl", texts) for n, texts in batches.items()}
    pipe = root / "dedup.yaml"
    pipe.write_text(PIPELINE)
    return {"root": root, "inputs": inputs, "pipeline": str(pipe), "config": load_pipeline(pipe)}


def _committed(store: CorpusStore, commit: int) -> list[str]:
    rec = store.commit(commit)
    return [d for s in rec.shards for d in pq.read_table(store.root / s.path, columns=["doc_id"]).column("doc_id").to_pylist()]


def _rejects(store: CorpusStore, commit: int) -> list[dict]:
    rec = store.commit(commit)
    return [r for s in rec.rejects for r in pq.read_table(store.root / s.path).to_pylist()]


def _doc_ids(path: str) -> list[str]:
    from refinery.readers import discover, plan_units, read_unit

    files = discover([path])
    return [d for u in plan_units(files, 1000) for b in read_unit(u, 1000) for d in b.column("doc_id").to_pylist()]


def _cli(*args: str, env: dict | None = None) -> subprocess.CompletedProcess:
    full_env = dict(os.environ, PYTHONPATH=str(REPO), **(env or {}))
    return subprocess.run([sys.executable, "-m", "refinery.cli", *args], capture_output=True, text=True, env=full_env,
                          timeout=300)


def test_copies_dropped_within_and_across_batches_and_crash_rerun_matches_clean(world):
    cfg, inp = world["config"], world["inputs"]
    clean = CorpusStore(world["root"] / "clean")
    run_batch(cfg, [inp[1]], clean)
    out = run_batch(cfg, [inp[2]], clean)
    ids1, ids2 = _doc_ids(inp[1]), _doc_ids(inp[2])
    kept = _committed(clean, 2)
    assert kept == [ids2[0], ids2[2], ids2[4], ids2[6], ids2[7]]  # input order, first copy kept
    rejects = {r["doc_id"]: r for r in _rejects(clean, 2)}
    assert rejects[ids2[1]]["reason"] == "near" and rejects[ids2[1]]["dup_of"] == ids1[1]
    assert rejects[ids2[1]]["detail"].startswith("commit 00000001: ")
    assert rejects[ids2[3]]["reason"] == "exact" and rejects[ids2[3]]["dup_of"] == ids1[2]
    assert rejects[ids2[5]]["reason"] == "near" and rejects[ids2[5]]["dup_of"] == ids2[4]
    assert rejects[ids2[5]]["detail"].startswith("this batch: ") and rejects[ids2[5]]["stage"] == "dedup"
    assert out.record.counters["dedup"]["dropped"] == {"exact": 1, "near": 2}
    assert out.record.docs_out == 5

    # Same batches into a second store, killed after the index segment was written, before the manifest.
    crashed = CorpusStore(world["root"] / "crashed")
    run_batch(cfg, [inp[1]], crashed)
    proc = _cli("run", "-p", world["pipeline"], "--store", str(crashed.root), "--quiet", inp[2],
                env={"REFINERY_CRASH_AFTER_INDEX": "3"})
    assert proc.returncode == 3, proc.stderr[-2000:]
    seg_dir = next((crashed.state_dir / "dedup").iterdir())
    assert any(p.name.startswith("seg-00000002-") for p in seg_dir.iterdir())  # the index was touched
    assert crashed.commit_numbers() == [1]
    run_batch(cfg, [inp[2]], crashed)  # the re-run must not see its own documents as copies
    assert set(_committed(crashed, 2)) == set(kept)
    assert [s.sha256 for s in crashed.commit(2).shards] == [s.sha256 for s in clean.commit(2).shards]
    assert len([p for p in seg_dir.iterdir() if p.name.startswith("seg-00000002-")]) == 1


def test_batch1_copy_removed_in_batch5_after_restart_and_index_rebuild(world):
    cfg, inp = world["config"], world["inputs"]
    store = CorpusStore(world["root"] / "five")
    for n in (1, 2, 3, 4):
        run_batch(cfg, [inp[n]], store)
    # A fresh process (the CLI) commits batch 5: only the persistent index knows batch 1.
    proc = _cli("run", "-p", world["pipeline"], "--store", str(store.root), "--quiet", inp[5])
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert store.commit_numbers() == [1, 2, 3, 4, 5]
    ids1, ids5 = _doc_ids(inp[1]), _doc_ids(inp[5])
    assert _committed(store, 5) == [ids5[0], ids5[2]]
    (rej,) = _rejects(store, 5)
    assert (rej["doc_id"], rej["reason"], rej["dup_of"], rej["detail"].split(":")[0]) == (ids5[1], "near", ids1[0], "commit 00000001")

    # The index lost: rebuilt from the committed shards, it finds the same copy.
    shutil.rmtree(store.state_dir / "dedup")
    index = DedupIndex(store, cfg.stage("dedup").options)
    assert index.refresh() == 5 and index.rebuilt == [1, 2, 3, 4, 5]
    phase = decisions_mod.BatchDedup(cfg.stage("dedup").options, None, writable=False)
    phase.index = index
    total_kept = sum(store.commit(n).rows for n in range(1, 6))
    assert index.mem.size == total_kept

    # annotate against the store (read-only) and within the input: dup_of and verdict, nothing written.
    before = sorted(p.name for p in (store.state_dir / "dedup").rglob("*"))
    out = world["root"] / "annotated.parquet"
    copy = world["root"] / "z5.jsonl"  # batch 5 again, as another file
    shutil.copy(inp[5], copy)
    new = "a brand new document that nobody has committed yet, repeated inside the input " * 5
    twice = _write(world["root"] / "zz.jsonl", [new, new])
    rows, counters = annotate_batch(cfg, [str(copy), twice], out, CorpusStore(store.root, create=False))
    by_id = {r["doc_id"]: r for r in pq.read_table(out).to_pylist()}
    idsz, idsw = _doc_ids(str(copy)), _doc_ids(twice)
    assert rows == 5 and counters.to_dict()["dedup"]["dropped"] == {"exact": 3, "near": 1}
    assert (by_id[idsz[0]]["verdict"], by_id[idsz[0]]["dup_of"]) == ("dedup:exact", ids5[0])
    assert (by_id[idsz[1]]["verdict"], by_id[idsz[1]]["dup_of"]) == ("dedup:near", ids1[0])
    assert (by_id[idsz[2]]["verdict"], by_id[idsz[2]]["dup_of"]) == ("dedup:exact", ids5[2])
    assert (by_id[idsw[0]]["verdict"], by_id[idsw[0]]["dup_of"]) == ("keep", None)
    assert (by_id[idsw[1]]["verdict"], by_id[idsw[1]]["dup_of"]) == ("dedup:exact", idsw[0])
    assert sorted(p.name for p in (store.state_dir / "dedup").rglob("*")) == before
    assert store.commit_numbers() == [1, 2, 3, 4, 5]


def test_concurrent_batches_do_not_both_keep_a_pair(world, monkeypatch):
    """Batch X decides while batch Y, holding a copy of one of X's documents, commits first."""
    cfg = world["config"]
    rng = random.Random(7)
    words = _vocab(rng)
    a, b, c = (_doc(rng, words) for _ in range(3))
    x = _write(world["root"] / "x.jsonl", [a, b])
    y = _write(world["root"] / "y.jsonl", [c, _edit(rng, b)])
    store = CorpusStore(world["root"] / "concurrent")
    real_finish = decisions_mod.BatchDedup.finish
    calls = []

    def decide_then_let_y_commit(self):
        result = real_finish(self)
        if not calls:
            calls.append(1)
            run_batch(cfg, [y], store)  # commits as 1 while X holds its decisions
        return result

    monkeypatch.setattr(decisions_mod.BatchDedup, "finish", decide_then_let_y_commit)
    out_x = run_batch(cfg, [x], store)
    assert out_x.record.commit == 2
    assert _committed(store, 1) == _doc_ids(y)
    assert _committed(store, 2) == _doc_ids(x)[:1]  # X's copy of Y's document dropped under the lock
    (rej,) = _rejects(store, 2)
    assert rej["dup_of"] == _doc_ids(y)[1] and rej["detail"].startswith("commit 00000001: ")
    assert out_x.record.counters["dedup"]["dropped"] == {"near": 1}
    index = DedupIndex(store, cfg.stage("dedup").options, writable=False)
    index.refresh()
    assert index.rebuilt == [] and index.mem.size == 3
    assert np.array_equal([s.count for s in index.segments], [2, 1])


def test_index_partitions_on_ray_actors_answer_like_the_local_index(world):
    cfg = world["config"]
    store = CorpusStore(world["root"] / "actors")
    run_batch(cfg, [world["inputs"][1]], store)
    local = DedupIndex(store, cfg.stage("dedup").options, writable=False)
    remote_opts = cfg.stage("dedup").options.model_copy(update={"index_partitions": 3, "index_actors": True})
    remote = DedupIndex(store, remote_opts, writable=False)
    assert local.refresh() == remote.refresh() == 1
    assert remote.mem.actors and len(remote.mem.parts) == 3
    seg = pq.read_table(next((store.state_dir / "dedup").rglob("seg-*.parquet")))
    keys = np.asarray(seg.column("bands").combine_chunks().flatten()).reshape(-1, remote_opts.bands)
    exact = seg.column("content_hash").to_numpy()
    for a, b in zip(local.query(keys, exact), remote.query(keys, exact)):
        assert np.array_equal(a, b)
    assert np.array_equal(local.query(keys, exact)[1], np.arange(len(exact)))  # each finds itself
    assert remote.mem.nbytes == local.mem.nbytes


def test_streamed_outputs_equal_one_pass_outputs_whatever_the_arrival_order(world, tmp_path):
    """Units are taken in unit order as they finish: any arrival order gives the shards a single
    pass over all parts after the execution writes (same bytes), copies decided the same."""
    from refinery.outputs import StreamingOutputs, write_outputs
    from refinery.executor import process_unit
    from refinery.runner import PipelineRunner
    from refinery.readers import discover, plan_units

    cfg = world["config"]
    files = discover([world["inputs"][1], world["inputs"][2], world["inputs"][5]])
    units = plan_units(files, 2)  # 12 units of <= 2 documents: copies span units
    staging = tmp_path / "staging"
    results = [process_unit(cfg, u, str(staging), "run") for u in units]
    runner = PipelineRunner(cfg, "run")

    reference = decisions_mod.BatchDedup.for_config(cfg, CorpusStore(tmp_path / "ref"), writable=True)
    reference.decide([r.kept_path for r in results])
    ref_shards, ref_rejects = write_outputs(cfg, runner, results, tmp_path / "one-pass", reference)
    assert reference.drop_counts() == {"exact": 1, "near": 3}  # b2[1], b2[3] of b1; b2[5] of b2[4]; b5[1] of b1[0]

    for order in (list(range(len(results))), list(reversed(range(len(results)))), [3, 0, 7, 1, 11, 2, 5, 4, 10, 6, 9, 8]):
        streaming = StreamingOutputs(cfg, runner, units, tmp_path / f"s{order[0]}", CorpusStore(tmp_path / f"st{order[0]}"))
        for i in order:
            streaming.unit_done(results[i])
        shards, rejects, dedup = streaming.close()
        assert [(e.rows, e.sha256) for e in shards] == [(e.rows, e.sha256) for e in ref_shards]
        assert [(e.rows, e.sha256) for e in rejects] == [(e.rows, e.sha256) for e in ref_rejects]
        assert dedup.decisions.drops == reference.decisions.drops
        assert dedup.segment().equals(reference.segment())


def test_streamed_outputs_refuse_a_missing_unit(world, tmp_path):
    from refinery.outputs import StreamingOutputs
    from refinery.executor import process_unit
    from refinery.runner import PipelineRunner
    from refinery.readers import discover, plan_units

    cfg = world["config"]
    units = plan_units(discover([world["inputs"][3]]), 3)
    results = [process_unit(cfg, u, str(tmp_path / "staging"), "run") for u in units]
    streaming = StreamingOutputs(cfg, PipelineRunner(cfg, "run"), units, tmp_path / "s", CorpusStore(tmp_path / "st"))
    for r in results[1:]:
        streaming.unit_done(r)
    with pytest.raises(RuntimeError, match="work unit 0 never reported"):
        streaming.close()
