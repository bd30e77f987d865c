"""End to end on real WARC files through the real CLI, local Ray and the corpus store."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pyarrow.parquet as pq
import pytest

from conftest import shared
from helpers import REPO, cli_env, refinery
from refinery.pipeline_files import resolve
from refinery.store import CorpusStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def warc_inputs():
    base = shared("warc")
    return [
        str(base / "dolma_wget"),
        str(base / "resiliparse_tests" / "warcfile.warc.gz"),
        str(base / "whirlwind_cc" / "whirlwind.warc.gz"),
    ]


@pytest.fixture(scope="module")
def clean_run(tmp_path_factory, warc_inputs):
    store = tmp_path_factory.mktemp("clean") / "store"
    out = refinery("run", "-q", "--pipeline", "pipelines/web-multilingual.yaml", *warc_inputs, "--store", str(store))
    return store, out


def test_counts_add_up(clean_run):
    store_path, out = clean_run
    store = CorpusStore(store_path, create=False)
    [rec] = store.commits()
    stages = list(rec.counters)
    config = resolve("pipelines/web-multilingual.yaml")
    assert stages == ["read", *[s.name for s in config.stages]]  # pipeline order, dedup in its place
    for name, c in rec.counters.items():
        assert c["in"] == c["out"] + sum(c["dropped"].values()), name
    raw = rec.counters["dedup"]["dropped"].get("exact_raw", 0)  # raw-byte copies go from read to dedup
    for prev, nxt in zip(stages, stages[1:]):
        assert rec.counters[prev]["out"] - (raw if prev == "read" else 0) == rec.counters[nxt]["in"] - (
            raw if nxt == "dedup" else 0
        )
    assert rec.counters["read"]["in"] == rec.docs_in > 50
    assert rec.counters[stages[-1]]["out"] == rec.docs_out == rec.rows > 0
    dropped = sum(sum(c["dropped"].values()) for c in rec.counters.values())
    rejects = sum(f.rows for f in rec.rejects)
    assert rejects == dropped == rec.docs_in - rec.docs_out
    shard = pq.read_table(store_path / rec.shards[0].path)
    for col in ("doc_id", "url", "source_uri", "record_id", "fetch_time", "text", "language", "language_score", "q_words"):
        assert col in shard.column_names
    assert shard.num_rows == rec.shards[0].rows
    rej = pq.read_table(store_path / rec.rejects[0].path)
    assert set(rej.column("stage").to_pylist()) <= set(stages)
    assert all(r for r in rej.column("reason").to_pylist())
    assert "stage" in out.stdout and "accepted" in out.stdout


def test_rerun_is_byte_identical_and_idempotent(clean_run, tmp_path, warc_inputs):
    store_path, _ = clean_run
    first = CorpusStore(store_path, create=False).commits()[0]
    again = refinery("run", "-q", "--pipeline", "pipelines/web-multilingual.yaml", *warc_inputs, "--store", str(store_path))
    assert "already committed as commit 1" in again.stdout
    assert len(CorpusStore(store_path).commits()) == 1
    # A clean run elsewhere, with the work cut into units differently (as on a cluster of another
    # size): the same batch key and byte-identical shards.
    text = (REPO / "pipelines" / "web-multilingual.yaml").read_text(encoding="utf-8")
    assert "  records_per_unit: 64\n" in text
    recut = tmp_path / "web-multilingual.yaml"
    recut.write_text(text.replace("  records_per_unit: 64\n", "  records_per_unit: 64\n  min_units_per_cpu: 1\n"
                                  "  min_records_per_unit: 3\n"), encoding="utf-8")
    assert resolve(str(recut)).config_hash() == resolve("pipelines/web-multilingual.yaml").config_hash()
    other = tmp_path / "store2"
    refinery("run", "-q", "--pipeline", str(recut), *warc_inputs, "--store", str(other))
    second = CorpusStore(other, create=False).commits()[0]
    assert second.batch_key == first.batch_key and second.execution["units"] != first.execution["units"]
    assert [(s.rows, s.sha256) for s in first.shards] == [(s.rows, s.sha256) for s in second.shards]
    assert [(s.rows, s.sha256) for s in first.rejects] == [(s.rows, s.sha256) for s in second.rejects]
    for s in second.shards:
        assert (other / s.path).read_bytes() == (store_path / s.path).read_bytes()


def test_store_lists_only_committed_shards(clean_run):
    store_path, _ = clean_run
    store = CorpusStore(store_path)
    debris = store.new_staging("f" * 64)
    (debris / "out").mkdir()
    (debris / "out" / "shard-00000.parquet").write_bytes(b"PAR1 not committed")
    (store.data_dir / "00000099").mkdir()
    (store.data_dir / "00000099" / "shard-00000.parquet").write_bytes(b"orphan")
    listed = store.shard_paths()
    assert listed and all("00000001" in str(p) for p in listed)
    ls = refinery("store", "ls", "--store", str(store_path))
    assert ls.stdout.count("web-multilingual") == 1
    files = refinery("store", "files", "--store", str(store_path))
    assert [Path(p) for p in files.stdout.split()] == listed
    show = refinery("store", "show", "1", "--store", str(store_path))
    assert "batch_key=" in show.stdout and "langid" in show.stdout
    os.rename(debris / "owner.json", debris / "owner.gone")  # an attempt whose process is gone
    removed = store.gc()
    assert "data/00000099" in removed and not debris.exists()


def _run_and_kill(store: Path, inputs: list[str], when) -> int:
    """Start `refinery run` in its own process group and SIGKILL the whole group when `when()`."""
    proc = subprocess.Popen(
        [sys.executable, "-m", "refinery.cli", "run", "-q", "--pipeline", "pipelines/web-multilingual.yaml", *inputs, "--store", str(store)],
        env=cli_env(),
        cwd=REPO,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    deadline = time.time() + 300
    while time.time() < deadline and proc.poll() is None and not when():
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    return proc.returncode


def test_killed_midrun_leaves_nothing_visible_and_rerun_commits_once(clean_run, tmp_path, warc_inputs):
    clean = CorpusStore(clean_run[0], create=False).commits()[0]
    store_path = tmp_path / "store"
    # Kill during extraction: as soon as the first part file appears in staging.
    _run_and_kill(store_path, warc_inputs, lambda: any(store_path.glob("staging/*/parts/unit-*.parquet")))
    store = CorpusStore(store_path)
    assert store.commits() == [] and store.shard_paths() == []
    # Crash between writing shards and committing.
    crashed = refinery(
        "run", "-q", "--pipeline", "pipelines/web-multilingual.yaml", *warc_inputs, "--store", str(store_path),
        check=False, REFINERY_CRASH_BEFORE_COMMIT="3",
    )
    assert crashed.returncode == 3
    assert store.commits() == [] and any(store_path.glob("staging/*/out/shard-*.parquet"))
    refinery("run", "-q", "--pipeline", "pipelines/web-multilingual.yaml", *warc_inputs, "--store", str(store_path))
    [rec] = store.commits()
    assert [s.sha256 for s in rec.shards] == [s.sha256 for s in clean.shards]
    assert not any(store_path.glob("staging/*"))
