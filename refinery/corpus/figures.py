"""`refinery store stats`: a store's documents and tokens per language, bucket and commit.

Reads commit records through `Corpus` (local path or object store); the figures come
from each manifest's `stats` (refinery/store/stats.py), or from the shards for
manifests written before that field existed.
"""

from __future__ import annotations

from typing import Any

import pyarrow.parquet as pq

from refinery.corpus.reader import Corpus
from refinery.store.stats import TOKEN_COUNT, store_stats


def stats_of(uri: str, commit: int | None = None, since: int = 0, **storage_options: Any) -> dict[str, Any]:
    corpus = Corpus(uri, **storage_options)
    open_shard = lambda path: pq.ParquetFile(corpus.fs.open_input_file(f"{corpus.root}/{path}"))  # noqa: E731
    return store_stats(corpus.commits(commit, since), open_shard)


def _share(part: int, whole: int) -> str:
    return f"{100 * part / whole:5.1f}%" if whole else "    -"


def print_stats(uri: str, figures: dict[str, Any]) -> None:
    docs, toks = figures["documents"], figures["tokens"]
    print(f"{uri}: {len(figures['commits'])} commit(s), {docs:,} documents, {toks:,} tokens, "
          f"{figures['bytes']:,} bytes of text")
    print(f"tokens = {TOKEN_COUNT}")
    for dim, table in figures["by"].items():
        print(f"\nby {dim}")
        print(f"  {'value':<20} {'documents':>12} {'share':>6} {'tokens':>14} {'share':>6} {'bytes':>14}")
        for key, row in sorted(table.items(), key=lambda kv: -kv[1]["tokens"]):
            print(f"  {key:<20} {row['documents']:>12,} {_share(row['documents'], docs)} {row['tokens']:>14,} "
                  f"{_share(row['tokens'], toks)} {row['bytes']:>14,}")
    print("\nby commit")
    print(f"  {'commit':>6}  {'created_at':<25} {'documents':>12} {'tokens':>14} {'bytes':>14}")
    for c in figures["commits"]:
        note = "  (measured: manifest has no stats)" if c["computed"] else ""
        print(f"  {c['commit']:>6}  {c['created_at']:<25} {c['documents']:>12,} {c['tokens']:>14,} {c['bytes']:>14,}{note}")


def mixture_figures(uri: str, spec_path: str, commit: int | None = None, since: int = 0,
                    **storage_options: Any) -> list[dict[str, Any]]:
    """Per group of a mixture spec: documents and tokens it matches, its natural and target share,
    and the upsampling factor (target / natural) — validates the spec against the store too."""
    from refinery.corpus.mixture import MixtureSpec
    from refinery.corpus.sampler import MixturePlan

    spec = MixtureSpec.load(spec_path)
    plan = MixturePlan(Corpus(uri, **storage_options), spec, 0, since=since, commit=commit, count_tokens=True)
    docs = [sum(len(plan.index(c)[g][0]) for c in range(since + 1, plan.start + 1)) for g in range(len(spec.groups))]
    toks = [sum(int(plan.index(c)[g][3].sum()) for c in range(since + 1, plan.start + 1)) for g in range(len(spec.groups))]
    size = toks if spec.share == "tokens" else docs
    out = []
    for g, d, t, n, target in zip(spec.groups, docs, toks, size, spec.shares):
        natural = n / sum(size) if sum(size) else 0.0
        out.append({"group": g.name, "documents": d, "tokens": t, "natural_share": natural, "target_share": target,
                    "upsampling": target / natural if natural else None, "max_epochs": g.max_epochs})
    return out


def print_mixture(spec_path: str, rows: list[dict[str, Any]], share: str) -> None:
    print(f"\nmixture {spec_path} (shares of {share})")
    print(f"  {'group':<20} {'documents':>10} {'tokens':>12} {'natural':>8} {'target':>8} {'upsampling':>10} {'max_epochs':>10}")
    for r in rows:
        up = f"{r['upsampling']:.2f}x" if r["upsampling"] is not None else "-"
        print(f"  {r['group']:<20} {r['documents']:>10,} {r['tokens']:>12,} {100 * r['natural_share']:>7.1f}% "
              f"{100 * r['target_share']:>7.1f}% {up:>10} {str(r['max_epochs'] or '-'):>10}")
