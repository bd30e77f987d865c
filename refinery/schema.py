"""The column contract shared by readers, stages, shards, rejects and annotate output.

Training jobs and dashboards are written against these names: change them only
together with docs/schema.md.
"""

from __future__ import annotations

import pyarrow as pa

TIMESTAMP = pa.timestamp("us", tz="UTC")

# What every reader emits.  `html` is null for plain-text inputs, `text` is
# null for HTML inputs until the extract stage fills it.
INPUT_FIELDS: list[pa.Field] = [
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("url", pa.string()),
    pa.field("source_uri", pa.string(), nullable=False),
    pa.field("record_id", pa.string(), nullable=False),
    pa.field("fetch_time", TIMESTAMP),
    pa.field("html", pa.binary()),
    pa.field("http_charset", pa.string()),
    pa.field("text", pa.string()),
    pa.field("read_error", pa.string()),
]
INPUT_SCHEMA = pa.schema(INPUT_FIELDS)

PROVENANCE_COLUMNS = ["doc_id", "url", "source_uri", "record_id", "fetch_time"]

# Columns that exist only while a document moves through the pipeline.
TRANSIENT_COLUMNS = {"html", "http_charset", "read_error"}

REJECT_FIELDS: list[pa.Field] = [
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("url", pa.string()),
    pa.field("source_uri", pa.string(), nullable=False),
    pa.field("record_id", pa.string(), nullable=False),
    pa.field("fetch_time", TIMESTAMP),
    pa.field("stage", pa.string(), nullable=False),
    pa.field("reason", pa.string(), nullable=False),
    pa.field("detail", pa.string()),
    pa.field("dup_of", pa.string()),
    pa.field("language", pa.string()),
    pa.field("text", pa.string()),
    # Model scores, when the stages that compute them ran before the drop (null otherwise).
    pa.field("perplexity", pa.float64()),
    pa.field("ppl_bucket", pa.string()),
    pa.field("toxicity", pa.float64()),
    pa.field("quality_score", pa.float64()),
    pa.field("quality_bucket", pa.int8()),
]
# Reject columns copied from the batch when present (the scores above).
REJECT_SCORE_COLUMNS = ["perplexity", "ppl_bucket", "toxicity", "quality_score", "quality_bucket"]
REJECT_SCHEMA = pa.schema(REJECT_FIELDS)

VERDICT_FIELD = pa.field("verdict", pa.string(), nullable=False)
