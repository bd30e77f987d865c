"""The stage interface: a plain class mapping an Arrow record batch to an Arrow record batch.

A stage appends (or replaces) its own columns and says, per row, which of its
rules would drop the document (None = keep).  The runner, not the stage,
decides what happens to drops: filtered out in `run`, kept and labelled in
`annotate`.  New stages (dedup, perplexity, toxicity) slot in by subclassing
Stage and registering in `refinery.stages.STAGE_TYPES`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import pyarrow as pa

from refinery.strict import StrictModel


@dataclass
class StageResult:
    records: pa.RecordBatch
    reasons: list[str | None]  # rule that drops each row, None to keep
    details: list[str | None] | None = None  # free text for the rejects table (e.g. an error)
    # Values for reject rows only, by reject column (e.g. the extract prefilter's language guess):
    # they win over the batch's column of that name, and never reach shards.
    reject_columns: dict[str, list] | None = None
    counts: dict[str, int] | None = None  # events other than drops (pii: spans replaced per kind), summed per stage


class Stage(ABC):
    name: ClassVar[str]
    order: ClassVar[int]  # canonical position: pipelines must list stages in this order
    Options: ClassVar[type[StrictModel]]
    # Columns the stage adds to every row it sees (shards, rejects, annotate).
    fields: ClassVar[list[pa.Field]] = []
    # True when the keep/drop decision is made by the driver after all work units
    # (dedup): per-unit counters then carry only the stage's `in` and `seconds`.
    decided_by_driver: ClassVar[bool] = False
    # Columns only `refinery annotate` output carries (e.g. dedup's `dup_of`), filled by the driver.
    annotate_fields: ClassVar[list[pa.Field]] = []

    def __init__(self, options: Any) -> None:
        self.options = options

    def setup(self) -> None:
        """Load models. Called once per worker process, before the first batch."""

    def model_info(self) -> dict[str, Any]:
        """Name and version of every model used; recorded with each commit."""
        return {}

    @abstractmethod
    def process(self, records: pa.RecordBatch) -> StageResult:
        """Score every row of `records`; never raise for one bad document."""


def set_column(records: pa.RecordBatch, field: pa.Field, values: pa.Array | list) -> pa.RecordBatch:
    """Append `field` to `records`, or replace it when a column of that name exists."""
    array = values if isinstance(values, pa.Array) else pa.array(values, type=field.type)
    idx = records.schema.get_field_index(field.name)
    if idx >= 0:
        return records.set_column(idx, field, array)
    return records.append_column(field, array)


def languages(records: pa.RecordBatch) -> list[str | None]:
    """The `language` column as a list, or one None per row when langid did not run."""
    if "language" in records.schema.names:
        return records.column("language").to_pylist()
    return [None] * records.num_rows


def rows_by_language(texts: list[str | None], langs: list[str | None], models) -> dict[str, list[int]]:
    """Row indices of the documents with text in a language `models` has, grouped by language
    (one batched model call per language)."""
    by_lang: dict[str, list[int]] = {}
    for i, (text, lang) in enumerate(zip(texts, langs)):
        if text and lang in models:
            by_lang.setdefault(lang, []).append(i)
    return by_lang
