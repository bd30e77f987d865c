"""Content hashes and MinHash signatures of texts, and their Arrow columns.

One signer serves the stage (in the workers), the driver's raw-copy gate and
the index rebuild, so every path computes the same signature for a text.
"""

from __future__ import annotations

import numpy as np
import pyarrow as pa

from refinery.dedup.minhash import MinHasher, exact_hash, normalise, shingle_hashes, token_hashes
from refinery.dedup.options import DedupOptions
from refinery.scripts import script_language

CONTENT_HASH_FIELD = pa.field("content_hash", pa.uint64())
MINHASH_FIELD = pa.field("minhash", pa.list_(pa.uint32()))
DUP_OF_FIELD = pa.field("dup_of", pa.string())


class Signer:
    """Content hashes and signatures for texts, per the options (shared by stage, driver and rebuild)."""

    def __init__(self, options: DedupOptions) -> None:
        self.options = options
        self.hasher = MinHasher(options.num_perm, options.seed)

    def sign(self, texts: list[str | None], languages: list[str | None] | None) -> tuple[np.ndarray, np.ndarray]:
        langs = languages or [None] * len(texts)
        exact = np.empty(len(texts), np.uint64)
        per_doc = []
        for i, (text, lang) in enumerate(zip(texts, langs)):
            norm = normalise(text)
            exact[i] = exact_hash(norm)
            sh = self.options.shingling(lang if lang is not None else script_language(norm))
            per_doc.append(shingle_hashes(token_hashes(norm, sh.kind), sh.size))
        return exact, self.hasher.signatures_from_hashes(per_doc)


def signature_column(signatures: np.ndarray) -> pa.Array:
    n, k = signatures.shape
    offsets = pa.array(np.arange(0, (n + 1) * k, k, dtype=np.int32))
    return pa.ListArray.from_arrays(offsets, pa.array(signatures.reshape(-1), pa.uint32()))


def signatures_from_column(column: pa.Array | pa.ChunkedArray, num_perm: int) -> np.ndarray:
    if isinstance(column, pa.ChunkedArray):
        column = column.combine_chunks()
    values = column.flatten().to_numpy(zero_copy_only=False)
    return values.astype(np.uint32, copy=False).reshape(-1, num_perm)
