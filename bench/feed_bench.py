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
through the mixture spec and once through "natural" (the spec's groups at the
store's own proportions: the same content as the plain reader, so it isolates
the mixture's machinery), in rotating order; the table gives each round's
tokens/s and the cost per token relative to the plain reader (median of the
per-round ratios; target: at most +20%).
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
    p.add_argument("--cache-mib", type=float, default=None,
                   help="--mixture: the reader's row-group cache (default 64 MiB); smaller than the store emulates a large one")
    p.add_argument("--documents", action="store_true",
                   help="--mixture: documents without a tokenizer; --tokens counts whitespace words")
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
        # packed: tokens; --documents: whitespace words of the documents (the store stats' count)
        got += batch["input_ids"].numel() if "input_ids" in batch else sum(len(t.split()) for t in batch["text"])
        if got >= tokens:
            break
    return got, time.perf_counter() - t0


def natural_spec(corpus, spec):
    """The spec's groups with weights set to their share of the store (caps dropped): the same
    documents as the plain reader in about the same proportions, so the comparison isolates the
    mixture's own machinery from the content it selects."""
    from refinery.corpus.mixture import MixtureSpec
    from refinery.corpus.sampler import MixturePlan

    plan = MixturePlan(corpus, spec, 0, count_tokens=spec.share == "tokens")
    size = [sum(int(plan.index(c)[gi][3].sum()) if spec.share == "tokens" else len(plan.index(c)[gi][0])
                for c in range(1, plan.start + 1)) for gi in range(len(spec.groups))]
    body = spec.to_dict()
    body["groups"] = [{**g, "weight": float(n), "max_epochs": None} for g, n in zip(body["groups"], size)]
    return MixtureSpec.from_dict(body)


def mixture_bench(args) -> int:
    """Plain reader vs mixture: same store, tokenizer, workers, tokens; rotating order, medians."""
    import statistics

    sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "examples"))
    from pretrain_gpt import train_tokenizer

    from refinery.corpus import Corpus
    from refinery.corpus.dataset import CorpusDataset
    from refinery.corpus.mixture import MixtureSpec
    from refinery.store.stats import store_stats

    if args.cache_mib is not None:
        from refinery.corpus import sampler

        sampler.CACHE_BYTES = int(args.cache_mib * (1 << 20))  # inherited by forked loader workers
    corpus = Corpus(args.store)
    spec = MixtureSpec.load(args.mixture)
    natural = natural_spec(corpus, spec)
    tok = None if args.documents else train_tokenizer(corpus, None, 8192, Path("/tmp") / f"feed-bench-mix-{time.time_ns()}" / "tokenizer.json")
    figures = store_stats(corpus.commits())
    describe = lambda sp: ", ".join(f"{g.name} {w:.1%}" for g, w in zip(sp.groups, sp.shares))  # noqa: E731
    print(f"store {args.store}: {corpus.latest()} commit(s), {figures['documents']} documents, "
          f"{figures['tokens']:,} whitespace words")
    print(f"mixture  {args.mixture} ({spec.share}): {describe(spec)}")
    print(f"natural  the same groups at the store's own proportions: {describe(natural)}\n")
    kinds = {"plain": None, "mixture": spec, "natural": natural}
    rows = []
    for workers in args.workers:
        for r in range(args.rounds):
            names = list(kinds)
            order = names[r % 3:] + names[:r % 3]  # each kind runs first, second and third in turn
            res = {}
            for kind in order:
                t0 = time.perf_counter()
                ds = CorpusDataset(Corpus(args.store), tok, args.seq_len if tok else None, seed=r, epochs=None,
                                   mixture=kinds[kind], columns=["doc_id", "text"])
                setup = time.perf_counter() - t0
                got, dt = _draw(ds, workers, args.batch_size, args.tokens)
                res[kind] = (got, dt, setup)
            rows.append((workers, r, res))
    unit = "words" if args.documents else "tokens"
    print(f"{unit}/s exclude the dataset's setup (the mixture's index), shown apart; cost = seconds per {unit[:-1]} "
          f"relative to the plain reader in the same round" + (" (documents, no tokenizer)" if args.documents else ""))
    print(f"{'workers':>7} {'round':>5} {'plain tok/s':>12} {'mixture tok/s':>14} {'natural tok/s':>14} "
          f"{'setup s (mix/nat)':>18} {'mixture cost':>12} {'natural cost':>12}")
    ratios: dict[tuple[int, str], list[float]] = {}
    for workers, r, res in rows:
        pt, ps, _ = res["plain"]
        line = f"{workers:>7} {r:>5} {pt / ps:>12,.0f}"
        costs = ""
        for kind in ("mixture", "natural"):
            t, sec, _ = res[kind]
            line += f" {t / sec:>14,.0f}"
            ratio = (sec / t) / (ps / pt)
            ratios.setdefault((workers, kind), []).append(ratio)
            costs += f" {100 * (ratio - 1):>+11.1f}%"
        line += f" {res['mixture'][2]:>8.2f} / {res['natural'][2]:<7.2f}" + costs
        print(line)
    print()
    for (workers, kind), rs in ratios.items():
        print(f"workers={workers} {kind:<8}: median cost per token vs the plain reader {100 * (statistics.median(rs) - 1):+.1f}% "
              f"({len(rs)} rounds, range {100 * (min(rs) - 1):+.1f}% .. {100 * (max(rs) - 1):+.1f}%)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
