"""Documents/s of the whole pipeline with 1, 2, 4, ... Ray workers (num_cpus) on one machine.

    PYTHONPATH=$PWD .venv/bin/python bench/scaling.py --workers 1,2 --repeat 3          # this 2-core machine
    PYTHONPATH=$PWD .venv/bin/python bench/scaling.py --workers 1,2,4,8,16 --repeat 3   # the 16-core device machine

Each measurement is a fresh process: local Ray started with num_cpus=N, then
run_batch over the real pages into a fresh store.  The figure is documents (input
pages) per wall-second of run_batch (Ray start-up excluded, commit included).  Worker
counts alternate in mirrored rounds (1, 2 | 2, 1 | 1, 2 ...), so a machine that drifts
slower or faster during the run favours neither count; medians are reported with the
load average, efficiency is rate_N / (N x rate_1), and the speed-up is also given as the
median of each round's own ratio (paired).  Last line: JSON.

On a 2-CPU machine each round first measures the machine's own ceiling: bare
trafilatura.extract in one process alone, then in two side by side, then alone again
(2 x mean alone / pair; 2.0 when the two vCPUs are independent).  A VM whose vCPUs share physical cores cannot
scale past that, whatever Refinery does, so the speed-up is also shown relative to it.

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
    from refinery.pipeline_files import resolve
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


def ceiling_child(input_dir: str, pages: int) -> None:
    """Bare trafilatura.extract over the first `pages` HTML pages: the dominant work, no Refinery."""
    import trafilatura
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    htmls = []
    for path in sorted(Path(input_dir).glob("*.warc.gz")):
        with open(path, "rb") as f:
            for record in ArchiveIterator(f, record_types=WarcRecordType.response):
                htmls.append(record.reader.read())
                if len(htmls) >= pages:
                    break
        if len(htmls) >= pages:
            break
    start = time.perf_counter()
    for html in htmls:
        trafilatura.extract(html)
    print(json.dumps({"seconds": time.perf_counter() - start}))


def machine_ceiling(input_dir: str, pages: int, env: dict) -> float:
    """What two cores give for the dominant work right now: 2 x (one process alone) / (two at
    once, each the same work).  2.0 when the cores are independent; less when the VM's two
    vCPUs share a physical core or the host is busy, and no scheduler can beat it."""
    cmd = [sys.executable, __file__, "--ceiling-child", str(pages), "--input", input_dir]

    def timed(n: int) -> float:
        procs = [subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, text=True, cwd=REPO) for _ in range(n)]
        outs = [json.loads(p.communicate()[0].strip().splitlines()[-1])["seconds"] for p in procs]
        return statistics.mean(outs)

    time.sleep(2)  # let the previous run's Ray processes finish exiting
    before = timed(1)
    pair = timed(2)
    after = timed(1)  # alone, pair, alone: a host drifting within the measurement favours neither
    return (before + after) / pair


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--pipeline", default="pipelines/web-en.yaml")
    ap.add_argument("--records-per-unit", type=int, default=16, help="small units so 16 workers all get work")
    ap.add_argument("--input", default=None, help="default: ../shared/data/warc/real_pages")
    ap.add_argument("--quiet-foreign", type=float, default=0.1,
                    help="a round is quiet when foreign CPU-s / wall-s stays below this (fraction of one core)")
    ap.add_argument("--ceiling-pages", type=int, default=120,
                    help="pages of bare trafilatura per process for the per-round machine ceiling (0: skip)")
    ap.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    ap.add_argument("--ceiling-child", type=int, default=None, help=argparse.SUPPRESS)
    args = ap.parse_args()
    inputs = [args.input or str(shared("warc", "real_pages"))]
    if args.ceiling_child is not None:
        ceiling_child(inputs[0], args.ceiling_child)
        return
    if args.child is not None:
        child(args.child, inputs, args.pipeline, args.records_per_unit)
        return
    counts = [int(w) for w in args.workers.split(",")]
    rates: dict[int, list[float]] = {n: [] for n in counts}
    quiet_rates: dict[int, list[float]] = {n: [] for n in counts}
    loads = []
    env = dict(os.environ, PYTHONPATH=str(REPO))
    per_round: list[dict[int, float]] = []
    ceilings: list[float] = []
    for r in range(args.repeat):
        per_round.append({})
        if args.ceiling_pages and 2 in counts and os.cpu_count() == 2:
            ceilings.append(machine_ceiling(inputs[0], args.ceiling_pages, env))
            print(f"round {r}: machine ceiling for 2 processes of bare trafilatura: {ceilings[-1]:.2f}x", flush=True)
        for n in (counts if r % 2 == 0 else counts[::-1]):
            loads.append(os.getloadavg()[0])
            cmd = [sys.executable, __file__, "--child", str(n), "--pipeline", args.pipeline,
                   "--records-per-unit", str(args.records_per_unit), "--input", inputs[0]]
            res = subprocess.run(cmd, env=env, capture_output=True, text=True, cwd=REPO)
            line = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
            if res.returncode != 0 or not line:
                sys.exit(f"workers={n} failed:\n{res.stdout[-2000:]}\n{res.stderr[-4000:]}")
            m = json.loads(line[-1])
            rates[n].append(m["docs_per_s"])
            per_round[-1][n] = m["docs_per_s"]
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
    paired = {n: [rd[n] / rd[counts[0]] for rd in per_round] for n in counts[1:]}
    for n, ratios in paired.items():
        print(f"paired speed-up {n} vs {counts[0]} workers, per round: {', '.join(f'{x:.2f}' for x in ratios)}; "
              f"median {statistics.median(ratios):.3f}")
    if ceilings:
        print(f"machine ceiling (2 x bare trafilatura alone / side by side), per round: "
              f"{', '.join(f'{c:.2f}' for c in ceilings)}; median {statistics.median(ceilings):.3f}")
        if 2 in paired:
            rel = [p / c for p, c in zip(paired[2], ceilings)]
            print(f"paired speed-up / ceiling, per round: {', '.join(f'{x:.2f}' for x in rel)}; "
                  f"median {statistics.median(rel):.3f}")
    print(f"load average during runs: median {statistics.median(loads):.1f}, max {max(loads):.1f} on {os.cpu_count()} CPUs")
    print(json.dumps({**(every or {}), "quiet": quiet,
                      "machine_ceiling": round(statistics.median(ceilings), 3) if ceilings else None,
                      "paired_speedup": {str(n): round(statistics.median(v), 3) for n, v in paired.items()},
                      "load_median": round(statistics.median(loads), 2), "cpus": os.cpu_count()}))


if __name__ == "__main__":
    main()
