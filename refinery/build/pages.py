"""Real pages through Refinery's own extract and langid stages: the text the pipeline meets.

The model builds calibrate (and the quality classifier trains its negatives) on this text, so
what a model is fitted to is what it will score."""

from __future__ import annotations

from typing import Any

import pyarrow as pa

from refinery.schema import INPUT_SCHEMA
from refinery.stages.extract import ExtractOptions, ExtractStage
from refinery.stages.langid import LangIdOptions, LangIdStage


def extract_texts(
    pages: list[tuple[str, str | None, bytes]], lang: str, extract: dict[str, Any] | None = None, min_score: float | None = None
) -> list[tuple[int, str]]:
    """(index, text) of each (source uri, url, html) page the extract stage (with `extract`
    options) and the langid stage (keeping `lang`, above `min_score` if given) both keep."""
    n = len(pages)
    batch = pa.RecordBatch.from_pydict(
        {
            "doc_id": [str(i) for i in range(n)], "url": [p[1] for p in pages], "source_uri": [p[0] for p in pages],
            "record_id": [str(i) for i in range(n)], "fetch_time": [None] * n, "html": [p[2] for p in pages],
            "http_charset": [None] * n, "text": [None] * n, "read_error": [None] * n,
        },
        schema=INPUT_SCHEMA,
    )  # fmt: skip
    extract_stage = ExtractStage(ExtractOptions(**(extract or {})))
    extract_stage.setup()
    first = extract_stage.process(batch)
    langid = LangIdStage(LangIdOptions(languages=[lang], **({} if min_score is None else {"min_score": min_score})))
    langid.setup()
    second = langid.process(first.records)
    texts = second.records.column("text").to_pylist()
    return [(i, t) for i, (t, r1, r2) in enumerate(zip(texts, first.reasons, second.reasons)) if r1 is None and r2 is None and t]
