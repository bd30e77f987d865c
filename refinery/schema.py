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

# The quality stage's signals (refinery/stages/quality.py): one column per rule's measured value.
TOP_NS = (2, 3, 4)
DUP_NS = (5, 6, 7, 8, 9, 10)
_F64 = pa.float64()
_I32 = pa.int32()
QUALITY_SIGNAL_FIELDS: list[pa.Field] = (
    [
        pa.field("q_dup_para_frac", _F64),
        pa.field("q_dup_para_char_frac", _F64),
        pa.field("q_dup_line_frac", _F64),
        pa.field("q_dup_line_char_frac", _F64),
    ]
    + [pa.field(f"q_top_{n}gram_char_frac", _F64) for n in TOP_NS]
    + [pa.field(f"q_dup_{n}gram_char_frac", _F64) for n in DUP_NS]
    + [
        pa.field("q_words", _I32),
        pa.field("q_avg_word_length", _F64),
        pa.field("q_hash_ratio", _F64),
        pa.field("q_ellipsis_ratio", _F64),
        pa.field("q_bullet_lines_ratio", _F64),
        pa.field("q_end_ellipsis_lines_ratio", _F64),
        pa.field("q_alpha_words_ratio", _F64),
        pa.field("q_stop_words", _I32),
        pa.field("q_c4_sentences", _I32),
        pa.field("q_c4_lines_removed", _I32),
        pa.field("q_line_punct_ratio", _F64),
        pa.field("q_short_line_ratio", _F64),
        pa.field("q_char_dup_ratio", _F64),
        pa.field("q_newline_ratio", _F64),
    ]
)

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
    # The langid stage's score and the quality stage's signals, as in annotate output (null when
    # the stage had not run before the drop): the measured values behind `detail`.
    pa.field("language_score", pa.float32()),
    *QUALITY_SIGNAL_FIELDS,
]
# Reject columns copied from the batch when present (the scores above).
REJECT_SCORE_COLUMNS = ["perplexity", "ppl_bucket", "toxicity", "quality_score", "quality_bucket", "language_score"] + [
    f.name for f in QUALITY_SIGNAL_FIELDS
]
REJECT_SCHEMA = pa.schema(REJECT_FIELDS)

VERDICT_FIELD = pa.field("verdict", pa.string(), nullable=False)
