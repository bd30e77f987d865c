"""Near-duplicate detection quality on ../shared/data/neardup at the pipeline defaults.

pairs.jsonl.gz: labelled pairs with their true word-5-shingle Jaccard; a pair is
"detected" when the two documents share their normalised content hash or any
LSH band (exactly what the dedup stage + index decide).  clusters.jsonl.gz:
planted clusters; pairwise recall inside clusters and false merges across them.

    PYTHONPATH=. python bench/dedup_quality.py [--data DIR]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from collections import defaultdict
from itertools import combinations
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from refinery.dedup.lsh import band_hashes  # noqa: E402
from refinery.dedup.options import DedupOptions  # noqa: E402
from refinery.dedup.signatures import Signer  # noqa: E402

import os  # noqa: E402

_REPO = Path(__file__).resolve().parents[1]
_CANDIDATES = [Path(os.environ.get("REFINERY_SHARED_DATA", _REPO.parent / "shared" / "data")), _REPO.parents[1] / "shared" / "data"]
DEFAULT_DATA = next((c / "neardup" for c in _CANDIDATES if (c / "neardup").exists()), _CANDIDATES[0] / "neardup")


def load(path: Path) -> list[dict]:
    with gzip.open(path, "rt", encoding="utf-8") as f:
        return [json.loads(line) for line in f]


def true_j(pair: dict) -> float:
    """The label's Jaccard: word 5-grams (en) or character 5-grams (zh)."""
    return pair.get("jaccard_w5", pair.get("jaccard_c5"))


def keys_for(signer: Signer, texts: list[str], langs: list[str]):
    exact, sigs = signer.sign(texts, langs)
    o = signer.options
    return exact, band_hashes(sigs, o.bands, o.rows)


def detected(exact_a, keys_a, exact_b, keys_b) -> np.ndarray:
    return (exact_a == exact_b) | (keys_a == keys_b).any(axis=1)


def evaluate_pairs(pairs: list[dict], options: DedupOptions) -> dict:
    signer = Signer(options)
    langs = [p["lang"] for p in pairs]
    ea, ka = keys_for(signer, [p["text_a"] for p in pairs], langs)
    eb, kb = keys_for(signer, [p["text_b"] for p in pairs], langs)
    hit = detected(ea, ka, eb, kb)
    rows = defaultdict(lambda: [0, 0])
    for p, h in zip(pairs, hit):
        for key in ((p["lang"], p["label"], p["kind"]), ("all", p["label"], "*")):
            rows[key][0] += 1
            rows[key][1] += int(h)
    dup_hi = [h for p, h in zip(pairs, hit) if p["label"] == 1 and true_j(p) >= 0.8]
    dup_all = [h for p, h in zip(pairs, hit) if p["label"] == 1]
    non = [h for p, h in zip(pairs, hit) if p["label"] == 0]
    by_lang = {}
    for lang in sorted({p["lang"] for p in pairs}):
        hi = [h for p, h in zip(pairs, hit) if p["lang"] == lang and p["label"] == 1 and true_j(p) >= 0.8]
        nn = [h for p, h in zip(pairs, hit) if p["lang"] == lang and p["label"] == 0]
        by_lang[lang] = (float(np.mean(hi)), len(hi), float(np.mean(nn)), len(nn))
    return {
        "rows": dict(rows),
        "recall_j08": float(np.mean(dup_hi)),
        "n_j08": len(dup_hi),
        "recall_all_dups": float(np.mean(dup_all)),
        "fpr": float(np.mean(non)),
        "n_non": len(non),
        "by_lang": by_lang,
    }


def evaluate_clusters(docs: list[dict], options: DedupOptions) -> dict:
    signer = Signer(options)
    exact, keys = keys_for(signer, [d["text"] for d in docs], [d["lang"] for d in docs])
    by_cluster = defaultdict(list)
    for i, d in enumerate(docs):
        by_cluster[d["cluster_id"]].append(i)
    per_kind = defaultdict(lambda: [0, 0])  # (lang, variant kind) -> [pairs, detected] against the original
    for members in by_cluster.values():
        origs = [i for i in members if docs[i]["kind"] == "orig"]
        for o in origs:
            for v in members:
                if v != o and docs[v]["kind"] != "orig":
                    hit = detected(exact[o : o + 1], keys[o : o + 1], exact[v : v + 1], keys[v : v + 1])[0]
                    per_kind[(docs[v]["lang"], docs[v]["kind"])][0] += 1
                    per_kind[(docs[v]["lang"], docs[v]["kind"])][1] += int(hit)
    tp = fn = 0
    for members in by_cluster.values():
        for i, j in combinations(members, 2):
            if detected(exact[i : i + 1], keys[i : i + 1], exact[j : j + 1], keys[j : j + 1])[0]:
                tp += 1
            else:
                fn += 1
    # False merges: any band shared across different clusters.
    fp = 0
    cluster = [d["cluster_id"] for d in docs]
    seen: dict[tuple[int, int], int] = {}
    for b in range(keys.shape[1]):
        groups = defaultdict(list)
        for i, k in enumerate(keys[:, b].tolist()):
            groups[k].append(i)
        for g in groups.values():
            for i, j in combinations(g, 2):
                if cluster[i] != cluster[j]:
                    seen[(i, j)] = 1
    fp = len(seen)
    n = len(docs)
    cross_pairs = n * (n - 1) // 2 - (tp + fn)
    return {"per_kind": dict(per_kind), "pairs_in_clusters": tp + fn, "recall": tp / max(1, tp + fn), "false_merges": fp, "cross_pairs": cross_pairs}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    args = ap.parse_args()
    options = DedupOptions()
    t = time.perf_counter()
    res = evaluate_pairs(load(args.data / "pairs.jsonl.gz"), options)
    print(f"## pairs.jsonl.gz  (num_perm={options.num_perm} bands={options.bands} rows={options.rows}; "
          f"zh: char 5-grams, en: word 5-grams)\n")
    print("| lang | label | kind | pairs | detected as duplicate |")
    print("|---|---|---|---|---|")
    for (lang, label, kind), (n, h) in sorted(res["rows"].items(), key=lambda kv: (kv[0][0] == "all", kv[0])):
        print(f"| {lang} | {label} | {kind} | {n} | {h / n:.3f} |")
    print(f"\nrecall on duplicates with true Jaccard >= 0.8: {res['recall_j08']:.4f} (n={res['n_j08']})")
    print(f"recall on all labelled duplicates: {res['recall_all_dups']:.4f}")
    print(f"false-positive rate on non-duplicates: {res['fpr']:.4f} (n={res['n_non']})")
    for lang, (r, nr, f, nf) in res["by_lang"].items():
        print(f"  {lang}: recall(J>=0.8) {r:.4f} (n={nr})  FPR {f:.4f} (n={nf})")
    c = evaluate_clusters(load(args.data / "clusters.jsonl.gz"), options)
    print(f"\n## clusters.jsonl.gz\n\npairwise recall inside planted clusters: {c['recall']:.4f} "
          f"({c['pairs_in_clusters']} pairs); false merges across clusters: {c['false_merges']} "
          f"of {c['cross_pairs']} pairs\n")
    print("| lang | variant kind | variant-original pairs | detected |")
    print("|---|---|---|---|")
    for (lang, kind), (n, h) in sorted(c["per_kind"].items()):
        print(f"| {lang} | {kind} | {n} | {h / n:.3f} |")
    print(f"\n({time.perf_counter() - t:.1f}s)")


if __name__ == "__main__":
    main()
