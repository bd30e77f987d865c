#!/usr/bin/env python
"""Training-feed throughput: tokens/s the CorpusDataset + StatefulLoader deliver, no model.

    python bench/feed_bench.py --store STORE [--workers 0 2 4] [--s3] [--epochs 3]
    python bench/feed_bench.py --store STORE --mixture FILE [--workers 0 2] [--tokens N] [--rounds 5]

Reads the store's latest snapshot (local path, or with --s3 the same store
mirrored into a moto S3 server started here on a loopback port), packs it into
sequences with a BPE tokenizer trained on it, and prints a table.  Compare the
tokens/s with the model's consumption (examples/pretrain_gpt.py) to see
whether the loader keeps up.

With --mixture, each round draws --tokens packed tokens twice from the same store,
tokenizer and workers, once through the plain reader (epochs=None) and once
through the mixture spec, in alternating order; the table gives each round's
tokens/s and the mixture's cost per token relative to the plain reader
(median of the per-round ratios; target: at most +20%).
"""

from __future__ import annotations

import argparse
import logging
import socket
import sys
import time
import warnings
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
warnings.filterwarnings("ignore", message=".*worker processes in total.*")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--store", required=True)
    p.add_argument("--workers", type=int, nargs="+", default=[0, 2])
    p.add_argument("--s3", action="store_true", help="also read through a local moto S3 server")
    p.add_argument("--epochs", type=int, default=2)
    p.add_argument("--seq-len", type=int, default=1025)
    p.add_argument("--batch-size", type=int, default=16)
    p.add_argument("--mixture", default=None, help="mixture spec (YAML): compare its cost per token with the plain reader")
    p.add_argument("--tokens", type=int, default=1_000_000, help="--mixture: tokens drawn per run")
    p.add_argument("--rounds", type=int, default=5, help="--mixture: rounds (plain and mixture runs alternate)")
    args = p.parse_args()
    if args.mixture:
        return mixture_bench(args)

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from pretrain_gpt import train_tokenizer

    from refinery.corpus import Corpus, mirror_store
    from refinery.corpus.dataset import CorpusDataset, StatefulLoader

    targets = [("local", args.store, {})]
    server = None
    if args.s3:
        from moto.server import ThreadedMotoServer
        import pyarrow.fs as pafs

        logging.getLogger("werkzeug").setLevel(logging.ERROR)
        port = free_port()
        server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
        server.start()
        opts = {"endpoint_override": f"http://127.0.0.1:{port}", "access_key": "bench", "secret_key": "bench"}
        pafs.S3FileSystem(endpoint_override=f"127.0.0.1:{port}", scheme="http", region="us-east-1",
                          access_key="bench", secret_key="bench", allow_bucket_creation=True).create_dir("bench")
        t0 = time.perf_counter()
        mirror_store(args.store, "s3://bench/store", **opts)
        print(f"mirrored to moto S3 in {time.perf_counter() - t0:.2f}s")
        targets.append(("s3 (moto)", "s3://bench/store", opts))

    corpus = Corpus(args.store)
    tok = train_tokenizer(corpus, None, 8192, Path("/tmp") / f"feed-bench-{port if server else 0}" / "tokenizer.json")
    docs = sum(r.rows for r in corpus.commits())
    print(f"store {args.store}: {corpus.latest()} commit(s), {docs} documents, {len(corpus.files())} shard(s)\n")
    rows = []
    for name, uri, opts in targets:
        for workers in args.workers:
            ds = CorpusDataset(Corpus(uri, **opts), tok, args.seq_len, seed=0)
            loader = StatefulLoader(ds, batch_size=args.batch_size, num_workers=workers)
            tokens, t0 = 0, time.perf_counter()
            first = None
            for epoch in range(args.epochs):
                loader.set_epoch(epoch)
                for batch in loader:
                    if first is None:
                        first = time.perf_counter() - t0
                    tokens += batch["input_ids"].numel()
            dt = time.perf_counter() - t0
            rows.append((name, workers, tokens, dt, first or 0.0))
    print(f"{'backend':<10} {'workers':>7} {'tokens':>10} {'seconds':>8} {'tokens/s':>10} {'first batch s':>13}")
    for name, workers, tokens, dt, first in rows:
        print(f"{name:<10} {workers:>7} {tokens:>10,} {dt:>8.2f} {tokens / dt:>10,.0f} {first:>13.2f}")
    if server:
        server.stop()
    return 0


def _draw(ds, workers: int, batch_size: int, tokens: int) -> tuple[int, float]:
    from refinery.corpus.dataset import StatefulLoader

    got, t0 = 0, time.perf_counter()
    for batch in StatefulLoader(ds, batch_size=batch_size, num_workers=workers):
        got += batch["input_ids"].numel()
        if got >= tokens:
            break
    return got, time.perf_counter() - t0


def mixture_bench(args) -> int:
    """Plain reader vs mixture: same store, tokenizer, workers, tokens; alternating rounds, medians."""
    import statistics

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from pretrain_gpt import train_tokenizer

    from refinery.corpus import Corpus
    from refinery.corpus.dataset import CorpusDataset
    from refinery.corpus.mixture import MixtureSpec
    from refinery.store.stats import store_stats

    corpus = Corpus(args.store)
    spec = MixtureSpec.load(args.mixture)
    tok = train_tokenizer(corpus, None, 8192, Path("/tmp") / f"feed-bench-mix-{time.time_ns()}" / "tokenizer.json")
    figures = store_stats(corpus.commits())
    print(f"store {args.store}: {corpus.latest()} commit(s), {figures['documents']} documents, "
          f"{figures['tokens']:,} whitespace words; mixture {args.mixture}: "
          + ", ".join(f"{g.name} {w:.0%}" for g, w in zip(spec.groups, spec.shares)) + f" of {spec.share}\n")
    rows = []
    for workers in args.workers:
        for r in range(args.rounds):
            order = ("plain", "mixture") if r % 2 == 0 else ("mixture", "plain")
            res = {}
            for kind in order:
                mix = spec if kind == "mixture" else None
                t0 = time.perf_counter()
                ds = CorpusDataset(Corpus(args.store), tok, args.seq_len, seed=r, epochs=None, mixture=mix)
                setup = time.perf_counter() - t0
                got, dt = _draw(ds, workers, args.batch_size, args.tokens)
                res[kind] = (got, dt + setup, setup)
            rows.append((workers, r, res))
    print(f"{'workers':>7} {'round':>5} {'plain tok/s':>12} {'mixture tok/s':>14} {'mixture setup s':>15} {'cost/token':>10}")
    ratios: dict[int, list[float]] = {}
    for workers, r, res in rows:
        (pt, ps, _), (mt, ms, msetup) = res["plain"], res["mixture"]
        ratio = (ms / mt) / (ps / pt)
        ratios.setdefault(workers, []).append(ratio)
        print(f"{workers:>7} {r:>5} {pt / ps:>12,.0f} {mt / ms:>14,.0f} {msetup:>15.2f} {100 * (ratio - 1):>+9.1f}%")
    for workers, rs in ratios.items():
        print(f"workers={workers}: median mixture cost per token vs plain reader {100 * (statistics.median(rs) - 1):+.1f}% "
              f"({len(rs)} rounds, range {100 * (min(rs) - 1):+.1f}% .. {100 * (max(rs) - 1):+.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
