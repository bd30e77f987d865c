"""Deduplication: exact (normalised-content hash) and near (MinHash LSH) against everything committed.

The stage itself runs inside the Ray workers and only *measures*: it adds each
document's `content_hash` and `minhash` signature and drops nothing.  The
decisions need a global, ordered view (first committed copy wins), so they are
made by the driver after the workers finish (refinery/dedup/decisions.py), against
the persistent index in the store's state and against earlier documents of
the same batch in input order.  Options, signatures and decisions live in the
dedup package; see docs/dedup.md.
"""

from __future__ import annotations

import pyarrow as pa

from refinery.dedup.options import DedupOptions
from refinery.dedup.signatures import CONTENT_HASH_FIELD, DUP_OF_FIELD, MINHASH_FIELD, Signer, signature_column
from refinery.stages.base import Stage, StageResult, set_column


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

    def process(self, records: pa.RecordBatch) -> StageResult:
        texts = records.column("text").to_pylist()
        langs = records.column("language").to_pylist() if "language" in records.schema.names else None
        exact, sigs = self.signer.sign(texts, langs)
        records = set_column(records, CONTENT_HASH_FIELD, pa.array(exact, pa.uint64()))
        records = set_column(records, MINHASH_FIELD, signature_column(sigs))
        return StageResult(records, [None] * records.num_rows)
