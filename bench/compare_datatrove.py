"""Refinery vs datatrove on the same WARC files and the same work (issue 8).

    PYTHONPATH=$PWD .venv/bin/python bench/compare_datatrove.py [--copies 3] [--runs 3]

Input (`--input`): the 5 WARC files of ../shared/data/warc/real_pages/ (574 pages), or `wcxb`: the
1,497 WCXB dev pages of 7 page types packed as WARCs (bench/wcxb_warcs.py), or a directory of
WARC files; plus `--copies` byte copies of each file under other file names.  Both systems then drop the copies as
duplicates: Refinery's dedup as exact duplicates, datatrove's MinHash because identical
texts have identical signatures.

Work, both sides: trafilatura 2.3.1 extraction (favor_precision), lid.176 English >= 0.65
(Refinery: with web-en's language prefilter and survival gate before trafilatura),
Gopher repetition + Gopher quality + C4 + FineWeb quality rules, MinHash dedup
(5-gram words, 112 permutations in 14 bands x 8 rows), Parquet output.  datatrove runs in
its own virtual environment (bench/.venv-datatrove, created on first use from PyPI with
pinned versions); see bench/datatrove_pipeline.py for the two offline adjustments
(tokenizer, lid model path).

Speed is documents (input pages) per CPU-second of the whole process tree (Ray
workers, datatrove's worker processes and extractor sandboxes included), i.e. documents/s
per core; wall-clock documents/s is shown too.  Runs alternate (R, D, R, D, ...) and
medians are reported; datatrove is first measured in each candidate (tasks, workers)
configuration and the fastest is used.  The kept sets are compared by URL.

The headline is the cold CLI run (`refinery run`: Ray's daemons, worker start-up and model
loading included, ~12 CPU-s here).  `--warm` adds the figure the always-on service pays per
batch: Ray and the models already up, CPU of the whole process tree during the batch only
(bench/scaling.py's measurement).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, shared, table  # noqa: E402
from proctree import TreeUsage, run_measured  # noqa: E402

import pyarrow.parquet as pq  # noqa: E402
import yaml  # noqa: E402

OUT = REPO / "bench" / "out" / "compare"
DT_VENV = REPO / "bench" / ".venv-datatrove"
# lxml_html_clean: jusText (under trafilatura) imports lxml.html.clean, a separate package since lxml 5.2;
# pip does not always pull it in when trafilatura is re-pinned over datatrove's own choice.
DT_PACKAGES = ["datatrove[processing,io]==0.10.1", "trafilatura==2.3.1", "lxml==6.1.3", "lxml_html_clean==0.4.6",
               "aiohttp==3.14.5"]


def ensure_datatrove_venv() -> Path:
    py = DT_VENV / "bin" / "python"
    marker = DT_VENV / ".installed"
    if not marker.exists() or marker.read_text() != "\n".join(DT_PACKAGES):
        if not py.exists():
            subprocess.run(["python3", "-m", "venv", str(DT_VENV)], check=True)
        # trafilatura is pinned to Refinery's version (datatrove asks for <1.12; its call is compatible)
        subprocess.run([str(py), "-m", "pip", "install", "-q", DT_PACKAGES[0], "aiohttp==3.14.5"], check=True)
        subprocess.run([str(py), "-m", "pip", "install", "-q", *DT_PACKAGES[1:4]], check=True)
        marker.write_text("\n".join(DT_PACKAGES))
    # datatrove's extractor sandbox restarts a worker that fails to import, forever: check first.
    subprocess.run([str(py), "-c", "import datatrove, trafilatura; trafilatura.extract('<html><p>x</p></html>')"], check=True)
    return py


def build_input(copies: int, source: str) -> Path:
    """The pages of `source` (real_pages, wcxb, or a directory of WARC files) plus `copies` byte
    copies of each WARC file under other names."""
    dst = OUT / "warc"
    if dst.exists():
        shutil.rmtree(dst)
    dst.mkdir(parents=True)
    if source == "real_pages":
        src = shared("warc", "real_pages")
    elif source == "wcxb":  # the 1,497 WCXB dev pages (7 page types), packed as WARCs
        from wcxb_warcs import pack

        src = OUT / "wcxb-warc"
        if not src.exists():
            pack(src)
    else:
        src = Path(source)
        if not any(src.glob("*.warc.gz")):
            sys.exit(f"--input {source}: no *.warc.gz files there")
    for f in sorted(src.glob("*.warc.gz")):
        shutil.copyfile(f, dst / f.name)
        for c in range(copies):
            shutil.copyfile(f, dst / f"copy{c + 1}-{f.name}")
    return dst


def count_pages(warc_dir: Path) -> int:
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    n = 0
    for f in warc_dir.glob("*.warc.gz"):
        with open(f, "rb") as fh:
            n += sum(1 for _ in ArchiveIterator(fh, record_types=WarcRecordType.response))
    return n


def refinery_pipeline() -> Path:
    spec = yaml.safe_load((REPO / "pipelines" / "web-en.yaml").read_text())
    spec["name"] = "compare-web-en"
    # exactly datatrove's work: no model-based stages (perplexity, toxicity) even if web-en gains them
    spec["stages"] = [st for st in spec["stages"] if next(iter(st)) in ("extract", "langid", "quality", "dedup")]
    for stage in spec["stages"]:
        if "extract" in stage:  # web-en's own prefilter and survival gate; trafilatura as datatrove's
            stage["extract"] = dict(stage["extract"] or {}, extractor="trafilatura")
        if "dedup" in stage:
            stage["dedup"].update(num_perm=112, bands=14, rows=8)
    path = OUT / "compare-web-en.yaml"
    path.write_text(yaml.safe_dump(spec, sort_keys=False))
    return path


def run_refinery(warc: Path, pipeline: Path, i: int) -> tuple[TreeUsage, set[str]]:
    store = OUT / "refinery-store"
    if store.exists():
        shutil.rmtree(store)
    env = dict(os.environ, PYTHONPATH=str(REPO))
    cmd = [sys.executable, "-m", "refinery.cli", "run", "-q", "--pipeline", str(pipeline), "--store", str(store), str(warc)]
    usage = run_measured(cmd, env=env, log=OUT / f"refinery-{i}.log")
    if usage.returncode != 0:
        sys.exit(f"refinery failed, see {OUT / f'refinery-{i}.log'}")
    urls: set[str] = set()
    for p in sorted((store / "data").rglob("shard-*.parquet")):
        urls.update(u for u in pq.read_table(p, columns=["url"]).column("url").to_pylist())
    return usage, urls


def run_refinery_warm(warc: Path, pipeline: Path) -> dict:
    """Refinery as the service runs it: Ray and the models already up (bench/scaling.py's child:
    local Ray on every CPU, one warm-up batch), CPU of the whole process tree during one batch."""
    records_per_unit = yaml.safe_load(pipeline.read_text())["execution"]["records_per_unit"]
    cmd = [sys.executable, str(REPO / "bench" / "scaling.py"), "--child", str(os.cpu_count() or 1),
           "--pipeline", str(pipeline), "--records-per-unit", str(records_per_unit), "--input", str(warc)]
    res = subprocess.run(cmd, env=dict(os.environ, PYTHONPATH=str(REPO)), capture_output=True, text=True, cwd=REPO)
    lines = [ln for ln in res.stdout.splitlines() if ln.startswith("{")]
    if res.returncode != 0 or not lines:
        sys.exit(f"warm refinery run failed:\n{res.stderr[-3000:]}")
    return json.loads(lines[-1])


def run_datatrove(py: Path, warc: Path, tasks: int, workers: int, i: int) -> tuple[TreeUsage, set[str]]:
    work = OUT / "datatrove-work"
    lid = _lid_path()
    # bench/ on the path: datatrove's worker processes import dt_refinery_tokenizer
    env = dict(os.environ, HF_HOME=str(OUT / "hf-home"), HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO / "bench"))
    cmd = [str(py), str(REPO / "bench" / "datatrove_pipeline.py"), str(warc), str(work),
           "--tasks", str(tasks), "--workers", str(workers), "--lid", lid]
    log = OUT / f"datatrove-{tasks}t{workers}w-{i}.log"
    usage = run_measured(cmd, env=env, log=log)
    if usage.returncode != 0:
        sys.exit(f"datatrove failed, see {log}")
    urls: set[str] = set()
    for p in sorted((work / "output").rglob("*.parquet")):
        meta = pq.read_table(p, columns=["metadata"]).column("metadata").to_pylist()
        urls.update(m["url"] for m in meta)
    return usage, urls


def _lid_path() -> str:
    from refinery.models import BUNDLED_LID, lid_model_path

    return str(lid_model_path(BUNDLED_LID))


def main() -> None:
    global OUT
    ap = argparse.ArgumentParser()
    ap.add_argument("--copies", type=int, default=3, help="extra copies of each WARC file")
    ap.add_argument("--input", default="real_pages",
                    help="real_pages (default), wcxb (the WCXB dev pages packed as WARCs) or a directory of .warc.gz")
    ap.add_argument("--runs", type=int, default=3, help="alternating runs per system")
    ap.add_argument("--warm", action="store_true",
                    help="also measure Refinery warm (Ray and models up, as in the service): one more row")
    ap.add_argument("--out", default=str(OUT), help="work directory (inputs, stores, logs)")
    ap.add_argument("--dt-configs", default="1x1,5x2,20x2",
                    help="datatrove tasks x workers to try; the fastest (docs per CPU-s) is used")
    args = ap.parse_args()
    OUT = Path(args.out)
    OUT.mkdir(parents=True, exist_ok=True)
    py = ensure_datatrove_venv()
    warc = build_input(args.copies, args.input)
    pages = count_pages(warc)
    pipeline = refinery_pipeline()
    load0 = os.getloadavg()
    print(f"input: {pages} pages in {len(list(warc.glob('*.warc.gz')))} WARC files; load average {load0[0]:.1f}", flush=True)

    # datatrove's fastest configuration on this input
    configs = [tuple(int(x) for x in c.split("x")) for c in args.dt_configs.split(",")]
    probe = []
    for t, w in configs if len(configs) > 1 else []:
        try:
            u, _ = run_datatrove(py, warc, t, w, 0)
        except SystemExit as err:
            print(f"datatrove probe tasks={t} workers={w} failed: {err}", flush=True)
            continue
        probe.append(((t, w), pages / u.cpu_s, u))
        print(f"datatrove probe tasks={t} workers={w}: {pages / u.cpu_s:.2f} docs per CPU-s, "
              f"{pages / u.wall_s:.2f} docs/s wall", flush=True)
    (best_t, best_w), _, _ = max(probe, key=lambda p: p[1]) if probe else (configs[0], 0, None)

    r_runs: list[TreeUsage] = []
    d_runs: list[TreeUsage] = []
    warm_runs: list[dict] = []
    r_urls: set[str] = set()
    d_urls: set[str] = set()
    loads = [load0[0]]
    for i in range(args.runs):
        u, r_urls = run_refinery(warc, pipeline, i)
        r_runs.append(u)
        print(f"run {i}: refinery {pages / u.cpu_s:.2f} docs/CPU-s ({u.wall_s:.0f}s wall, {len(r_urls)} kept)", flush=True)
        if args.warm:
            w = run_refinery_warm(warc, pipeline)
            warm_runs.append(w)
            print(f"run {i}: refinery warm {w['docs'] / w['own_cpu_s']:.2f} docs/CPU-s ({w['wall_s']:.0f}s wall)", flush=True)
        u, d_urls = run_datatrove(py, warc, best_t, best_w, i + 1)
        d_runs.append(u)
        print(f"run {i}: datatrove {pages / u.cpu_s:.2f} docs/CPU-s ({u.wall_s:.0f}s wall, {len(d_urls)} kept)", flush=True)
        loads.append(os.getloadavg()[0])

    def med(runs: list[TreeUsage], f) -> float:
        return statistics.median(f(u) for u in runs)

    r_rate = med(r_runs, lambda u: pages / u.cpu_s)
    d_rate = med(d_runs, lambda u: pages / u.cpu_s)
    both = len(r_urls & d_urls)
    union = len(r_urls | d_urls)
    overlap = both / union if union else 1.0
    rows = [
        ("refinery", r_rate, med(r_runs, lambda u: pages / u.wall_s), med(r_runs, lambda u: u.cpu_s),
         med(r_runs, lambda u: u.peak_rss_mb), len(r_urls)),
        (f"datatrove ({best_t} tasks, {best_w} workers)", d_rate, med(d_runs, lambda u: pages / u.wall_s),
         med(d_runs, lambda u: u.cpu_s), med(d_runs, lambda u: u.peak_rss_mb), len(d_urls)),
    ]
    warm_rate = statistics.median(w["docs"] / w["own_cpu_s"] for w in warm_runs) if warm_runs else None
    if warm_rate is not None:
        rows.insert(1, ("refinery, warm (as the service)", warm_rate,
                        statistics.median(w["docs_per_s"] for w in warm_runs),
                        statistics.median(w["own_cpu_s"] for w in warm_runs), "-", "-"))  # not measured there
    print()
    print(table(rows, ("system", "docs/s per core", "docs/s wall", "CPU s", "peak RSS MB", "kept")))
    print(f"\nratio (refinery / datatrove, per core): {r_rate / d_rate:.2f}x"
          + (f"; warm: {warm_rate / d_rate:.2f}x" if warm_rate is not None else ""))
    print(f"kept overlap (Jaccard of URL sets): {overlap:.4f}; only refinery {len(r_urls - d_urls)}, "
          f"only datatrove {len(d_urls - r_urls)}; load average during runs: median {statistics.median(loads):.1f}")
    (OUT / "only_refinery.txt").write_text("\n".join(sorted(r_urls - d_urls)))
    (OUT / "only_datatrove.txt").write_text("\n".join(sorted(d_urls - r_urls)))
    print(json.dumps({
        "input": args.input,
        "copies": args.copies,
        "refinery_peak_rss_mb": round(med(r_runs, lambda u: u.peak_rss_mb), 1),
        "datatrove_peak_rss_mb": round(med(d_runs, lambda u: u.peak_rss_mb), 1),
        "refinery_docs_per_s": round(r_rate, 3),
        "datatrove_docs_per_s": round(d_rate, 3),
        "ratio": round(r_rate / d_rate, 3),
        "kept_overlap": round(overlap, 4),
        "pages": pages,
        "datatrove_config": {"tasks": best_t, "workers": best_w},
        **({"refinery_warm_docs_per_s": round(warm_rate, 3), "warm_ratio": round(warm_rate / d_rate, 3)}
           if warm_rate is not None else {}),
    }))


if __name__ == "__main__":
    main()
