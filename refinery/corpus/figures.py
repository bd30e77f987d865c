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
