"""Deduplication: exact (normalised-content hash) and near (MinHash LSH) against everything committed.

The stage itself runs inside the Ray workers and only *measures*: it adds each
document's `content_hash` and `minhash` signature and drops nothing.  The
decisions need a global, ordered view (first committed copy wins), so they are
made by the driver after the workers finish (refinery/dedup/phase.py), against
the persistent index in the store's state and against earlier documents of
the same batch in input order.  See docs/dedup.md.
"""

from __future__ import annotations

import hashlib
import json
import re
from typing import Literal

import numpy as np
import pyarrow as pa
from pydantic import Field, model_validator

from refinery.config import StrictModel
from refinery.langcodes import LangCode
from refinery.dedup.minhash import NORMALISATION_VERSION, MinHasher, Shingling, exact_hash, normalise
from refinery.dedup.minhash import shingle_hashes, token_hashes
from refinery.stages.base import Stage, StageResult, set_column

CONTENT_HASH_FIELD = pa.field("content_hash", pa.uint64())
MINHASH_FIELD = pa.field("minhash", pa.list_(pa.uint32()))
DUP_OF_FIELD = pa.field("dup_of", pa.string())


class ShingleOptions(StrictModel):
    kind: Literal["word", "char"] = "word"
    size: int = Field(5, ge=1, le=32)


def _cjk_defaults() -> dict[str, ShingleOptions]:
    return {lang: ShingleOptions(kind="char", size=5) for lang in ("zh", "ja", "th")}


class DedupOptions(StrictModel):
    exact: bool = Field(True, description="drop documents whose normalised text was seen before")
    near: bool = Field(True, description="drop MinHash LSH near-duplicates")
    num_perm: int = Field(128, ge=8, le=1024, description="MinHash permutations")
    bands: int = Field(18, ge=1, description="LSH bands; bands*rows <= num_perm")
    rows: int = Field(7, ge=1, description="signature slots per band")
    seed: int = Field(1, ge=0, description="permutation seed (datasketch's default is 1)")
    shingle: ShingleOptions = ShingleOptions()
    languages: dict[LangCode, ShingleOptions] = Field(
        default_factory=_cjk_defaults, description="per-language shingling (by the langid `language` column)"
    )
    index_partitions: int = Field(1, ge=1, description="band-range partitions of the resident index")
    index_actors: bool = Field(False, description="host each partition in its own Ray actor (else in the driver)")

    @model_validator(mode="after")
    def _check_bands(self) -> "DedupOptions":
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands*rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self

    def index_id(self) -> str:
        """Identity of everything that changes signatures or band keys (not the exact/near switches)."""
        payload = {
            "num_perm": self.num_perm,
            "bands": self.bands,
            "rows": self.rows,
            "seed": self.seed,
            "shingle": self.shingle.model_dump(),
            "languages": {k: v.model_dump() for k, v in sorted(self.languages.items())},
            "normalisation": NORMALISATION_VERSION,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def shingling(self, language: str | None) -> Shingling:
        opt = self.languages.get(language or "", self.shingle)
        return Shingling(opt.kind, opt.size)


_HAN = re.compile(r"[\u3400-\u9fff\uf900-\ufaff]")
_KANA = re.compile(r"[\u3040-\u30ff]")
_THAI = re.compile(r"[\u0e00-\u0e7f]")


def script_language(normalised: str) -> str | None:
    """zh / ja / th when those scripts dominate a text without a `language` (no langid stage).

    Looks at the first 2,000 characters: enough to tell scripts apart, cheap.
    """
    head = normalised[:2000].replace(" ", "")
    if not head:
        return None
    han, kana, thai = (len(r.findall(head)) for r in (_HAN, _KANA, _THAI))
    if thai > 0.3 * len(head):
        return "th"
    if han + kana > 0.3 * len(head):
        return "ja" if kana > 0.1 * (han + kana) else "zh"
    return None


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


class DedupStage(Stage):
    name = "dedup"
    order = 40
    Options = DedupOptions
    fields = [CONTENT_HASH_FIELD, MINHASH_FIELD]
    annotate_fields = [DUP_OF_FIELD]
    decided_by_driver = True

    def setup(self) -> None:
        self.signer = Signer(self.options)

    def model_info(self) -> dict:
        from refinery.models import package_version  # metadata only: importing datasketch costs ~1 CPU-s

        o = self.options
        return {
            "dedup": {
                "minhash": f"datasketch {package_version('datasketch')}-compatible affine32, seed={o.seed}, num_perm={o.num_perm}",
                "lsh": f"bands={o.bands} rows={o.rows}",
                "index": o.index_id(),
            }
        }

    def process(self, batch: pa.RecordBatch) -> StageResult:
        texts = batch.column("text").to_pylist()
        langs = batch.column("language").to_pylist() if "language" in batch.schema.names else None
        exact, sigs = self.signer.sign(texts, langs)
        batch = set_column(batch, CONTENT_HASH_FIELD, pa.array(exact, pa.uint64()))
        batch = set_column(batch, MINHASH_FIELD, signature_column(sigs))
        return StageResult(batch, [None] * batch.num_rows)
