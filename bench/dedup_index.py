"""Resident memory per indexed document and lookup+insert rate: refinery's compact index vs datasketch MinHashLSH.

Each measurement runs in a fresh subprocess so resident-set growth is its own.
Workload: batches of 10,000 documents; each batch is first looked up (all
bands, exact layer too for refinery), then inserted -- what the dedup phase
does per committed batch.  Band keys come from random 128-slot signatures
(MinHash slots of distinct documents are uniformly distributed, so the index
cannot tell them from real ones); datasketch gets the same signatures as
MinHash objects with bands=18, rows=7.

    PYTHONPATH=. python bench/dedup_index.py [--sizes 1000000 10000000] [--datasketch-sizes 100000 1000000]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BATCH = 10_000
BANDS, ROWS, NUM_PERM = 18, 7, 128


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


def run_refinery(n: int) -> dict:
    import numpy as np

    from refinery.dedup.resident import PartitionedIndex
    from refinery.dedup.lsh import band_hashes

    from refinery.dedup.resident import _release_freed_memory

    rng = np.random.default_rng(0)
    index = PartitionedIndex(BANDS, 1)
    # Warm up numpy's code paths so the baseline holds the fixed costs, not the index.
    warm = band_hashes(rng.integers(0, 2**32, size=(BATCH, NUM_PERM), dtype=np.uint32), BANDS, ROWS)
    PartitionedIndex(BANDS, 1).query(warm, warm[:, 0])
    del warm
    _release_freed_memory()
    base = rss_bytes()
    spent = 0.0
    peak = base
    for start in range(0, n, BATCH):
        m = min(BATCH, n - start)
        sigs = rng.integers(0, 2**32, size=(m, NUM_PERM), dtype=np.uint32)
        exact = rng.integers(0, 2**63, size=m, dtype=np.uint64)
        keys = band_hashes(sigs, BANDS, ROWS)
        t = time.perf_counter()
        index.query(keys, exact)
        index.insert(keys, exact)
        spent += time.perf_counter() - t
        peak = max(peak, rss_bytes())
    # steady-state lookups against the full index
    sigs = rng.integers(0, 2**32, size=(BATCH, NUM_PERM), dtype=np.uint32)
    keys = band_hashes(sigs, BANDS, ROWS)
    exact = rng.integers(0, 2**63, size=BATCH, dtype=np.uint64)
    t = time.perf_counter()
    for _ in range(5):
        index.query(keys, exact)
    lookup = 5 * BATCH / (time.perf_counter() - t)
    del sigs, keys, exact
    _release_freed_memory()
    return {
        "impl": "refinery CompactIndex",
        "n": n,
        "rss_per_doc": (rss_bytes() - base) / n,
        "array_bytes_per_doc": index.nbytes / n,
        "peak_rss_per_doc": (peak - base) / n,
        "lookup_insert_per_s": n / spent,
        "lookup_per_s_full": lookup,
        "runs": len(index.parts[0].runs),
    }


def run_datasketch(n: int) -> dict:
    import numpy as np
    from datasketch import MinHash, MinHashLSH

    rng = np.random.default_rng(0)
    lsh = MinHashLSH(num_perm=NUM_PERM, params=(BANDS, ROWS))
    base = rss_bytes()
    spent = 0.0
    for start in range(0, n, BATCH):
        m = min(BATCH, n - start)
        sigs = rng.integers(0, 2**32, size=(m, NUM_PERM), dtype=np.uint32)
        mhs = [MinHash(num_perm=NUM_PERM, hashvalues=s, scheme="affine32") for s in sigs]
        t = time.perf_counter()
        for i, mh in enumerate(mhs):
            lsh.query(mh)
            lsh.insert(start + i, mh, check_duplication=False)
        spent += time.perf_counter() - t
        del mhs
    return {"impl": "datasketch MinHashLSH", "n": n, "rss_per_doc": (rss_bytes() - base) / n, "lookup_insert_per_s": n / spent}


def child(impl: str, n: int) -> dict:
    cmd = [sys.executable, __file__, "--child", impl, str(n)]
    env = dict(os.environ, PYTHONPATH=str(REPO))
    out = subprocess.run(cmd, capture_output=True, text=True, env=env, check=True)
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--sizes", type=int, nargs="*", default=[1_000_000, 10_000_000])
    ap.add_argument("--datasketch-sizes", type=int, nargs="*", default=[100_000, 1_000_000])
    ap.add_argument("--child", nargs=2, help=argparse.SUPPRESS)
    args = ap.parse_args()
    if args.child:
        impl, n = args.child[0], int(args.child[1])
        print(json.dumps(run_refinery(n) if impl == "refinery" else run_datasketch(n)))
        return
    rows = [child("refinery", n) for n in args.sizes] + [child("datasketch", n) for n in args.datasketch_sizes]
    print(f"bands={BANDS} rows={ROWS}, batches of {BATCH:,} looked up then inserted, one core\n")
    print("| index | documents | resident bytes/doc | peak during merges | lookup+insert docs/s | lookup docs/s (full index) |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        peak = f"{r['peak_rss_per_doc']:.0f}" if "peak_rss_per_doc" in r else "-"
        full = f"{r['lookup_per_s_full']:,.0f}" if "lookup_per_s_full" in r else "-"
        print(f"| {r['impl']} | {r['n']:,} | {r['rss_per_doc']:.0f} | {peak} | {r['lookup_insert_per_s']:,.0f} | {full} |")
    ds = [r for r in rows if r["impl"].startswith("datasketch")]
    if ds:
        per = ds[-1]["rss_per_doc"]
        print(f"\ndatasketch extrapolated to 10,000,000 documents: {per * 1e7 / 2**30:.1f} GiB resident")


if __name__ == "__main__":
    main()
