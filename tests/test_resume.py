"""Resumable batches: after kill -9 of the whole process tree, a re-run redoes only the unfinished
units and commits exactly what a clean run commits (issue 19).  CPU figures: bench/resume.py."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pyarrow.parquet as pq
import pytest

from conftest import shared
from helpers import REPO, cli_env
from refinery.batch import run_batch
from refinery.pipeline_files import resolve
from refinery.store import CorpusStore
from service_util import session_pids

pytestmark = pytest.mark.slow
LIMIT = 48  # 6 units of 8 records on this machine's plan


def _no_seconds(counters: dict) -> dict:
    return {k: {**v, "seconds": None} for k, v in counters.items()}


def test_rerun_after_kill9_redoes_only_unfinished_units(tmp_path):
    warc = str(shared("warc", "real_pages", "pages-001.warc.gz"))
    config = resolve("web-en")
    clean = run_batch(config, [warc], CorpusStore(tmp_path / "clean"), limit=LIMIT).record

    store = tmp_path / "crashed"
    log = tmp_path / "killed.log"
    cmd = [sys.executable, "-m", "refinery.cli", "run", "-q", "-p", "web-en", "--limit", str(LIMIT), warc, "--store", str(store)]
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, cwd=REPO, env=cli_env(REFINERY_PAUSE_AFTER_UNIT_FRACTION="0.5"),
                                stdout=out, stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        deadline = time.time() + 300
        while "paused for fault injection" not in log.read_text():
            assert proc.poll() is None and time.time() < deadline, log.read_text()[-3000:]
            time.sleep(0.2)
        for pid in [proc.pid, *session_pids(proc.pid)]:  # the driver and its local Ray: the whole tree
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(30)
    [resume] = list((store / "state" / "resume").iterdir())
    n_units = json.loads((resume / "plan.json").read_text())["units"]
    saved = len(list(resume.glob("*.json"))) - 1  # minus plan.json
    assert saved > n_units / 2 and saved < n_units, (saved, n_units)
    assert not (store / "manifest").exists() or not list((store / "manifest").glob("*.json"))

    again = run_batch(config, [warc], CorpusStore(store), limit=LIMIT).record
    assert again.execution["resumed_units"] == saved  # only the unfinished units ran again
    assert again.execution["units"] == clean.execution["units"] == n_units
    assert [s.sha256 for s in again.shards] == [s.sha256 for s in clean.shards]
    assert [s.sha256 for s in again.rejects] == [s.sha256 for s in clean.rejects]
    assert _no_seconds(again.counters) == _no_seconds(clean.counters)
    assert (again.docs_in, again.docs_out, again.batch_key) == (clean.docs_in, clean.docs_out, clean.batch_key)
    assert not resume.exists()  # the commit removed the finished units
    rows = pq.read_table(store / again.rejects[0].path).num_rows
    assert rows == again.docs_in - again.docs_out
