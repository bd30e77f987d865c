"""MinHash signatures per second on one core: refinery's vectorised Signer vs datasketch.

Same documents for every contender (the texts of ../shared/data/neardup, en and
zh), same normalisation and shingling (word 5-grams, character 5-grams for zh);
each timing covers normalise -> shingle -> hash -> signature, 128 permutations.

    PYTHONPATH=. python bench/dedup_signatures.py [--docs 2000]
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from bench.dedup_quality import DEFAULT_DATA  # noqa: E402
from refinery.dedup.minhash import normalise, shingles  # noqa: E402
from refinery.dedup.options import DedupOptions  # noqa: E402
from refinery.dedup.signatures import Signer  # noqa: E402


def load_docs(data: Path, limit: int) -> list[tuple[str, str]]:
    docs = []
    with gzip.open(data / "pairs.jsonl.gz", "rt", encoding="utf-8") as f:
        for line in f:
            p = json.loads(line)
            docs += [(p["text_a"], p["lang"]), (p["text_b"], p["lang"])]
    # interleave languages so every prefix has both
    en = [d for d in docs if d[1] == "en"]
    zh = [d for d in docs if d[1] == "zh"]
    mixed = [d for pair in zip(en, zh) for d in pair]
    return mixed[:limit]


def time_it(fn, docs) -> float:
    t = time.perf_counter()
    fn(docs)
    return time.perf_counter() - t


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--data", type=Path, default=DEFAULT_DATA)
    ap.add_argument("--docs", type=int, default=2000)
    args = ap.parse_args()
    from datasketch import MinHash

    options = DedupOptions()
    docs = load_docs(args.data, args.docs)
    mb = sum(len(t.encode()) for t, _ in docs) / 1e6
    signer = Signer(options)

    def ours(ds):
        for i in range(0, len(ds), 64):  # the stage sees batches of batch_rows documents
            chunk = ds[i : i + 64]
            signer.sign([t for t, _ in chunk], [lang for _, lang in chunk])

    def ds_shingles(text, lang):
        return [" ".join(s).encode("utf-8") for s in shingles(normalise(text), options.shingling(lang))]

    def ds_update(ds):
        for text, lang in ds:
            m = MinHash(num_perm=options.num_perm, seed=options.seed)
            for s in ds_shingles(text, lang):
                m.update(s)

    def ds_batch(ds):
        for text, lang in ds:
            m = MinHash(num_perm=options.num_perm, seed=options.seed)
            m.update_batch(ds_shingles(text, lang))

    rows = []
    for name, fn in (("refinery Signer (numpy, batched)", ours), ("datasketch MinHash.update (sha1)", ds_update),
                     ("datasketch MinHash.update_batch (sha1)", ds_batch)):
        fn(docs[:50])  # warm-up
        sec = min(time_it(fn, docs) for _ in range(2))
        rows.append((name, len(docs) / sec, mb / sec))
    base = rows[1][1]
    print(f"{len(docs)} documents ({mb:.1f} MB, en + zh), 128 permutations, one core\n")
    print("| implementation | docs/s | MB/s | vs MinHash.update |")
    print("|---|---|---|---|")
    for name, dps, mbs in rows:
        print(f"| {name} | {dps:,.0f} | {mbs:.2f} | {dps / base:.1f}x |")


if __name__ == "__main__":
    main()
