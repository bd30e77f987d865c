"""Resumable batches: CPU of a re-run after a kill -9, against a clean run (issue 19).

    nice -n 10 .venv/bin/python -m bench.resume [--fractions 0.55 0.9] [--pipeline web-en] [--input DIR...]

Input: every WARC of ../shared/data/warc/real_pages (~590 real pages), or of `--input`.  For each fraction F the
batch runs with REFINERY_PAUSE_AFTER_UNIT_FRACTION=F (the driver stops once more than F of the
units are finished and saved), its whole process tree is killed with SIGKILL, and the same
command runs again on the same store.  CPU is the whole process tree's (Ray workers included,
bench/proctree.py), Ray's start-up included on both sides.  The re-run's shards and rejects are
compared by sha256 with the clean run's.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench.common import REPO, shared, table
from bench.proctree import run_measured, session_pids


def _env(**extra) -> dict:
    return {**os.environ, "PYTHONPATH": str(REPO), **extra}


def _cmd(pipeline: str, inputs: list[str], store: Path) -> list[str]:
    return [sys.executable, "-m", "refinery.cli", "run", "-q", "--pipeline", pipeline, *inputs, "--store", str(store)]




def _killed_run(cmd: list[str], fraction: float, log: Path, timeout: float = 1800) -> None:
    """Run until the driver pauses after `fraction` of the units, then SIGKILL the whole tree."""
    with log.open("w") as out:
        proc = subprocess.Popen(cmd, env=_env(REFINERY_PAUSE_AFTER_UNIT_FRACTION=str(fraction)), stdout=out,
                                stderr=subprocess.STDOUT, start_new_session=True)  # fmt: skip
        deadline = time.time() + timeout
        while "paused for fault injection" not in log.read_text() and time.time() < deadline:
            if proc.poll() is not None:
                raise SystemExit(f"the run ended before pausing:\n{log.read_text()[-2000:]}")
            time.sleep(0.2)
        for pid in [proc.pid, *session_pids(proc.pid)]:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        proc.wait(30)
        time.sleep(1.0)


def _files(store: Path) -> tuple[list[str], list[str], dict]:
    [manifest] = sorted((store / "manifest").glob("*.json"))
    rec = json.loads(manifest.read_text())
    return [s["sha256"] for s in rec["shards"]], [s["sha256"] for s in rec["rejects"]], rec["execution"]


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pipeline", default="web-en")
    ap.add_argument("--fractions", nargs="+", type=float, default=[0.55, 0.9])
    ap.add_argument("--input", nargs="+", type=Path, default=None,
                    help="WARC files or folders (default: real_pages); e.g. add the WCXB pages packed by bench/wcxb_warcs.py")
    args = ap.parse_args()
    sources = args.input or [shared("warc", "real_pages")]
    inputs = sorted(str(f) for p in sources for f in ([p] if p.is_file() else p.glob("*.warc.gz")))
    with tempfile.TemporaryDirectory(prefix="bench-resume-") as tmp:
        work = Path(tmp)
        clean = run_measured(_cmd(args.pipeline, inputs, work / "clean"), env=_env(), log=work / "clean.log")
        assert clean.returncode == 0, (work / "clean.log").read_text()[-2000:]
        ref = _files(work / "clean")
        rows = [("clean run", "-", f"{ref[2]['units']}", "-", round(clean.cpu_s, 1), 1.0, "-")]
        for frac in args.fractions:
            store = work / f"killed-{frac}"
            _killed_run(_cmd(args.pipeline, inputs, store), frac, work / f"killed-{frac}.log")
            again = run_measured(_cmd(args.pipeline, inputs, store), env=_env(), log=work / f"rerun-{frac}.log")
            assert again.returncode == 0, (work / f"rerun-{frac}.log").read_text()[-2000:]
            shards, rejects, execution = _files(store)
            same = shards == ref[0] and rejects == ref[1]
            rows.append((f"re-run after kill -9 at >{frac:.0%}", execution.get("resumed_units", 0), execution["units"],
                         round(again.wall_s, 1), round(again.cpu_s, 1), round(again.cpu_s / clean.cpu_s, 3),
                         "yes" if same else "NO"))  # fmt: skip
        print(f"input: {len(inputs)} WARCs ({', '.join(str(p) for p in sources)}), pipeline {args.pipeline}, "
              f"clean run wall {clean.wall_s:.1f}s")
        print(table(rows, ("run", "units reused", "units", "wall s", "CPU s (tree)", "CPU / clean", "same shards+rejects")))


if __name__ == "__main__":
    main()
