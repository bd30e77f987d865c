#!/usr/bin/env python
"""Training-feed throughput: tokens/s the CorpusDataset + StatefulLoader deliver, no model.

    python bench/feed_bench.py --store STORE [--workers 0 2 4] [--s3] [--epochs 3]

Reads the store's latest snapshot (local path, or with --s3 the same store
mirrored into a moto S3 server started here on a loopback port), packs it into
sequences with a BPE tokenizer trained on it, and prints a table.  Compare the
tokens/s with the model's consumption (examples/pretrain_gpt.py) to see
whether the loader keeps up.
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
    args = p.parse_args()

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


if __name__ == "__main__":
    sys.exit(main())
