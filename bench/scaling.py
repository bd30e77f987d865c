"""Documents/s of the whole pipeline with 1, 2, 4, ... Ray workers (num_cpus) on one machine.

    PYTHONPATH=$PWD .venv/bin/python bench/scaling.py --workers 1,2 --repeat 3          # this 2-core machine
    PYTHONPATH=$PWD .venv/bin/python bench/scaling.py --workers 1,2,4,8,16 --repeat 3   # the 16-core device machine

Each measurement is a fresh process: local Ray started with num_cpus=N, then
run_batch over the real pages into a fresh store.  The figure is documents (input
pages) per wall-second of run_batch (Ray start-up excluded, commit included).  Worker
counts alternate (1, 2, 1, 2, ...), medians are reported with the load average,
and efficiency is rate_N / (N x rate_1).  Last line: JSON.

This machine is shared, so each run also reports the *foreign* CPU-seconds spent
during its timed window: busy CPU time of the whole machine (/proc/stat) minus that
of the run's own process tree (driver, Ray daemons, workers).  A second worker only
scales if the second core is free; rounds where other processes took more than
--quiet-foreign of a core on average are listed but summarised separately
("quiet rounds"), so noise is visible instead of averaged in.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, shared, table  # noqa: E402
from proctree import _sample, _tree  # noqa: E402


def machine_busy_s() -> float:
    """Busy CPU-seconds of the whole machine since boot (all but idle and iowait)."""
    fields = [int(x) for x in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def tree_cpu_s() -> float:
    """CPU-seconds of this process and all its descendants (Ray daemons and workers)."""
    return sum(s[0] for pid in _tree(os.getpid()) if (s := _sample(pid)))


def child(workers: int, inputs: list[str], pipeline: str, records_per_unit: int) -> None:
    import ray

    from refinery.batch import run_batch
    from refinery.pipelines import resolve
    from refinery.store import CorpusStore

    config = resolve(pipeline)
    config = config.model_copy(update={"execution": config.execution.model_copy(update={"records_per_unit": records_per_unit})})
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    os.environ.setdefault("PYTHONWARNINGS", "ignore")  # as refinery.executor.ensure_ray: no job runtime_env
    ray.init(num_cpus=workers, include_dashboard=False, logging_level="ERROR")
    # warm the worker processes (imports, models) so the figure is steady-state throughput
    with tempfile.TemporaryDirectory() as tmp:
        warm_in = Path(tmp) / "warm"
        warm_in.mkdir()
        shutil.copyfile(sorted(Path(inputs[0]).glob("*.warc.gz"))[0], warm_in / "w.warc.gz")
        run_batch(config, [str(warm_in)], CorpusStore(Path(tmp) / "warm-store"))
        busy0, own0 = machine_busy_s(), tree_cpu_s()
        start = time.perf_counter()
        out = run_batch(config, inputs, CorpusStore(Path(tmp) / "store"))
        wall = time.perf_counter() - start
        busy, own = machine_busy_s() - busy0, tree_cpu_s() - own0
    docs = out.counters.stage("read").docs_in
    print(json.dumps({"workers": workers, "docs": docs, "wall_s": wall, "docs_per_s": docs / wall,
                      "own_cpu_s": own, "foreign_cpu_s": max(0.0, busy - own)}))
    ray.shutdown()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pipeline", default="pipelines/web-en.yaml")
    ap.add_argument("--records-per-unit", type=int, default=16, help="small units so 16 workers all get work")
    ap.add_argument("--input", default=None, help="default: ../shared/data/warc/real_pages")
    ap.add_argument("--quiet-foreign", type=float, default=0.1,
                    help="a round is quiet when foreign CPU-s / wall-s stays below this (fraction of one core)")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    inputs = [args.input or str(shared("warc", "real_pages"))]
    if args.child is not None:
        child(args.child, inputs, args.pipeline, args.records_per_unit)
        return
    counts = [int(w) for w in args.workers.split(",")]
    rates: dict[int, list[float]] = {n: [] for n in counts}
    quiet_rates: dict[int, list[float]] = {n: [] for n in counts}
    loads = []
    env = dict(os.environ, PYTHONPATH=str(REPO))
    for r in range(args.repeat):
        for n in counts:
            loads.append(os.getloadavg()[0])
            cmd = [sys.executable, __file__, "--child", str(n), "--pipeline", args.pipeline,
                   "--records-per-unit", str(args.records_per_unit), "--input", inputs[0]]
            res = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
            line = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
            if res.returncode != 0 or not line:
                sys.exit(f"workers={n} failed:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")
            m = json.loads(line[-1])
            rates[n].append(m["docs_per_s"])
            foreign = m["foreign_cpu_s"] / m["wall_s"]
            quiet = foreign < args.quiet_foreign
            if quiet:
                quiet_rates[n].append(m["docs_per_s"])
            print(f"round {r}: {n} workers {m['docs_per_s']:.2f} docs/s ({m['docs']} docs, {m['wall_s']:.1f}s, "
                  f"own {m['own_cpu_s']:.1f} CPU-s), foreign {m['foreign_cpu_s']:.1f} CPU-s "
                  f"({foreign:.2f} of a core){'' if quiet else ' NOT QUIET'}, load {loads[-1]:.1f}", flush=True)

    def summary(label: str, per_n: dict[int, list[float]]) -> dict | None:
        if any(not v for v in per_n.values()):
            print(f"{label}: no round for every worker count")
            return None
        med = {n: statistics.median(v) for n, v in per_n.items()}
        base = med[counts[0]] / counts[0]
        rows = [(n, len(per_n[n]), med[n], med[n] / n, med[n] / med[counts[0]], med[n] / (n * base)) for n in counts]
        print(f"\n{label}:")
        print(table(rows, ("workers", "runs", "docs/s", "docs/s per worker", f"speed-up vs {counts[0]}", "efficiency")))
        return {"docs_per_s": {str(n): round(med[n], 3) for n in counts},
                "speedup": {str(n): round(med[n] / med[counts[0]], 3) for n in counts}}

    every = summary("all rounds (medians)", rates)
    quiet = summary(f"quiet rounds (foreign CPU < {args.quiet_foreign} of a core; medians)", quiet_rates)
    print(f"load average during runs: median {statistics.median(loads):.1f}, max {max(loads):.1f} on {os.cpu_count()} CPUs")
    print(json.dumps({**(every or {}), "quiet": quiet,
                      "load_median": round(statistics.median(loads), 2), "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
