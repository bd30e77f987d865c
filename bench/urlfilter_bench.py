"""URL filter: memory per entry and load time for millions of domains, lookups per second.

    .venv/bin/python bench/urlfilter_bench.py [--domains 3000000]

1. A synthetic domain list (--domains entries, random labels under real TLDs,
   gzip, one a line: UT1's format) is loaded by a fresh subprocess through the
   stage's own loader (validation included); reported: CPU-s, the structure's
   bytes per entry, and the process's peak RSS growth (all transient copies
   included) per entry and in total.  For scale, the same for a Python
   set of the same strings (--compare-set, off by default: it needs ~2x the memory).
2. Lookups: the web-en stage (shipped UT1 lists) judging real page URLs
   (../shared/data/warc/real_pages/manifest.csv, repeated) and the synthetic
   list's HashedSet answering random hashes; CPU time, median of 3 passes.
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import random
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench.common import REPO, shared, table  # noqa: E402

TLDS = ["com", "net", "org", "de", "fr", "ru", "info", "co.uk", "io", "xyz", "online", "site", "top", "cn", "br"]


def write_domains(path: Path, n: int, seed: int = 17) -> None:
    rng = random.Random(seed)
    letters = "abcdefghijklmnopqrstuvwxyz0123456789-"
    with gzip.open(path, "wt", encoding="utf-8", compresslevel=1) as f:
        for i in range(n):
            label = "".join(rng.choice(letters[:36]) for _ in range(rng.randint(5, 14)))
            sub = f"{rng.choice(['', 'www.', 'm.', 'cdn.', 'shop.'])}"
            f.write(f"{sub}{label}{i % 1000}.{rng.choice(TLDS)}\n")


CHILD = r"""
import json, resource, sys, time
sys.path.insert(0, sys.argv[1])
from pathlib import Path
from refinery.stages.url_filter import UrlFilterOptions, load_lists
import numpy as np
def rss():
    import os
    return int(open("/proc/self/statm").read().split()[1]) * os.sysconf("SC_PAGE_SIZE")
base = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
base_rss = rss()
t = time.process_time()
if sys.argv[3] == "hashed":
    opts = UrlFilterOptions.model_validate({"root": str(Path(sys.argv[2]).parent), "block": {"synthetic": {"domains": [Path(sys.argv[2]).name]}}})
    lists = load_lists(opts)
    n, nbytes = len(lists.block_domains), lists.block_domains.nbytes
else:
    import gzip
    s = set(line.strip() for line in gzip.open(sys.argv[2], "rt"))
    n, nbytes = len(s), None
cpu = time.process_time() - t
peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({"entries": n, "cpu_s": cpu, "structure_bytes": nbytes, "peak_rss_growth": peak - base, "rss_growth": rss() - base_rss}))
"""


def load_in_child(path: Path, mode: str) -> dict:
    out = subprocess.run([sys.executable, "-c", CHILD, str(REPO), str(path), mode], capture_output=True, text=True, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--domains", type=int, default=3_000_000)
    ap.add_argument("--compare-set", action="store_true")
    ap.add_argument("--passes", type=int, default=3)
    args = ap.parse_args()

    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "synthetic.domains.gz"
        write_domains(path, args.domains)
        r = load_in_child(path, "hashed")
        rows.append(("hashed set (url_filter)", r["entries"], round(r["cpu_s"], 1), round(r["structure_bytes"] / r["entries"], 1),
                     round(r["peak_rss_growth"] / r["entries"], 1), round(r["peak_rss_growth"] / 2**20), round(r["rss_growth"] / 2**20)))  # fmt: skip
        if args.compare_set:
            r = load_in_child(path, "set")
            rows.append(("Python set of str", r["entries"], round(r["cpu_s"], 1), "-",
                         round(r["peak_rss_growth"] / r["entries"], 1), round(r["peak_rss_growth"] / 2**20), round(r["rss_growth"] / 2**20)))  # fmt: skip
    print(f"Loading {args.domains:,} synthetic domains (fresh process each)")
    print(table(rows, ("structure", "entries", "load CPU-s", "bytes/entry (arrays)", "peak RSS bytes/entry", "peak RSS MiB", "RSS after load MiB")))

    import numpy as np

    from refinery.pipeline_files import resolve
    from refinery.stages.url_filter import UrlFilterStage
    from refinery.urlfilter.lists import HashedSet

    spec = resolve("web-en").stage("url_filter")
    t = time.process_time()
    stage = UrlFilterStage(spec.options)
    stage.setup()
    lists = stage.lists
    urls = [r["url"] for r in csv.DictReader(open(shared("warc", "real_pages", "manifest.csv"), encoding="utf-8"))]
    urls = (urls * (20_000 // len(urls) + 1))[:20_000]
    times = []
    for _ in range(args.passes):
        t = time.process_time()
        for i in range(0, len(urls), 64):
            stage.match(urls[i : i + 64])
        times.append(time.process_time() - t)
    per_url = statistics.median(times) / len(urls)
    rng = np.random.default_rng(0)
    keys = rng.integers(0, 2**63, args.domains, dtype=np.uint64)
    hs = HashedSet.build([(keys, 0)], 1)
    q = np.concatenate([keys[: 500_000], rng.integers(0, 2**63, 500_000, dtype=np.uint64)])
    rng.shuffle(q)
    ltimes = []
    for _ in range(args.passes):
        t = time.process_time()
        hs.lookup(q)
        ltimes.append(time.process_time() - t)
    print(f"\nweb-en lists: {lists.entries:,} entries in {len(spec.options.block)} categories, {lists.nbytes / lists.entries:.1f} bytes/entry")
    print(table([
        ("web-en url_filter.match, real page URLs (64 a batch)", len(urls), round(1 / per_url)),
        (f"HashedSet.lookup, {args.domains:,} entries, 1 M hashes", len(q), round(len(q) / statistics.median(ltimes))),
    ], ("lookup", "queries", "per CPU-s")))  # fmt: skip
    return 0


if __name__ == "__main__":
    sys.exit(main())
