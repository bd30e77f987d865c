"""Runs the configured stages over record batches: filtering in `run`, labelling in `annotate`.

This is the unit of work a Ray task executes; it knows nothing about Ray, so
stages and the runner are tested as plain Python.
"""

from __future__ import annotations

import time
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import xxhash

from refinery.config import PipelineConfig
from refinery.counters import Counters
from refinery.dedup.raw import RAW_REASON
from refinery.schema import INPUT_SCHEMA, PROVENANCE_COLUMNS, REJECT_SCHEMA, REJECT_SCORE_COLUMNS, VERDICT_FIELD
from refinery.stages import STAGE_TYPES, Stage

READ_STAGE = "read"


def output_schema(config: PipelineConfig, mode: str) -> pa.Schema:
    """Shard schema (run) or annotate schema: provenance, text, every stage's columns."""
    fields = [INPUT_SCHEMA.field(c) for c in PROVENANCE_COLUMNS] + [INPUT_SCHEMA.field("text")]
    names = {f.name for f in fields}
    for spec in config.stages:
        for f in STAGE_TYPES[spec.name].fields:
            if f.name not in names:
                fields.append(f)
                names.add(f.name)
    if mode == "annotate":
        for spec in config.stages:
            fields.extend(f for f in STAGE_TYPES[spec.name].annotate_fields if f.name not in names)
        fields.append(VERDICT_FIELD)
    return pa.schema(fields)


def _sampled(doc_id: str, rate: float) -> bool:
    return xxhash.xxh3_64_intdigest(doc_id.encode()) < rate * 2**64


class PipelineRunner:
    def __init__(self, config: PipelineConfig, mode: str = "run") -> None:
        if mode not in ("run", "annotate"):
            raise ValueError(f"unknown mode {mode!r}")
        self.config = config
        self.mode = mode
        self.stages: list[Stage] = [STAGE_TYPES[s.name](s.options) for s in config.stages]
        self.schema = output_schema(config, mode)
        self._ready = False

    def setup(self) -> None:
        if not self._ready:
            for stage in self.stages:
                stage.setup()
            self._ready = True

    def model_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {}
        for stage in self.stages:
            info.update(stage.model_info())
        return info

    def reject_rows(
        self, records: pa.RecordBatch, mask: list[bool], stage: str, reasons, details, dup_of=None, extra: dict | None = None
    ) -> list[dict]:
        """Rows of the rejects table for the rows of `records` that `mask` drops, as the pipeline's
        `rejects` policy says (all, a sample, none); the driver's dedup decisions use it too."""
        policy = self.config.rejects
        if policy.mode == "none":
            return []
        cols = {name: records.column(name).to_pylist() for name in PROVENANCE_COLUMNS}
        langs = records.column("language").to_pylist() if "language" in records.schema.names else None
        texts = records.column("text").to_pylist() if policy.keep_text else None
        scores = {c: records.column(c).to_pylist() for c in REJECT_SCORE_COLUMNS if c in records.schema.names}
        rows = []
        for i, dropped in enumerate(mask):
            if not dropped:
                continue
            if policy.mode == "sample" and not _sampled(cols["doc_id"][i], policy.sample_rate):
                continue
            row = {c: cols[c][i] for c in PROVENANCE_COLUMNS}
            row.update(
                stage=stage,
                reason=reasons[i],
                detail=details[i] if details else None,
                dup_of=dup_of[i] if dup_of else None,
                language=langs[i] if langs else None,
                text=texts[i] if texts else None,
            )
            row.update({c: values[i] for c, values in scores.items()})
            if extra:
                row.update({c: values[i] for c, values in extra.items() if values[i] is not None})
            rows.append(row)
        return rows

    def _conform(self, records: pa.RecordBatch) -> pa.RecordBatch:
        arrays = []
        for f in self.schema:
            if f.name in records.schema.names:
                arrays.append(records.column(f.name).cast(f.type))
            else:
                arrays.append(pa.nulls(records.num_rows, f.type))
        return pa.RecordBatch.from_arrays(arrays, schema=self.schema)

    def process(
        self, records: pa.RecordBatch, counters: Counters, skip: dict[str, str] | None = None
    ) -> tuple[pa.RecordBatch, pa.Table]:
        """Return (output rows, reject rows) for one input batch, updating `counters`.

        `skip` (run mode): doc_id -> first copy for raw-byte duplicates, dropped as
        `dedup:exact_raw` before any stage (refinery/dedup/raw.py)."""
        self.setup()
        reject_rows: list[dict] = []
        verdict: list[str | None] = [None] * records.num_rows
        input_ids = records.column("doc_id").to_pylist()

        # Records the reader could not parse are drops of the pseudo-stage `read`.
        errors = records.column("read_error").to_pylist()
        c = counters.stage(READ_STAGE)
        c.docs_in += records.num_rows
        read_reasons = ["read_error" if e is not None else None for e in errors]
        records = self._apply(records, READ_STAGE, read_reasons, errors, c, reject_rows, verdict)
        if skip and self.mode == "run":
            records = self._skip_raw_copies(records, skip, counters, reject_rows)

        for stage in self.stages:
            c = counters.stage(stage.name)
            # annotate keeps every row; its counters count the documents no earlier rule dropped, so
            # they agree with the verdicts (in = out + dropped, next in = out) as in run mode
            c.docs_in += records.num_rows if self.mode == "run" else verdict.count(None)
            if records.num_rows == 0:
                continue
            start = time.perf_counter()
            result = stage.process(records)
            c.seconds += time.perf_counter() - start
            if result.counts:
                c.events.update(result.counts)
            records = self._apply(
                result.records, stage.name, result.reasons, result.details, c, reject_rows, verdict,
                result.reject_columns,
            )
        if self.mode == "annotate":
            records = records.append_column(VERDICT_FIELD, pa.array([v or "keep" for v in verdict], pa.string()))
        # Rejects in input order, not grouped by the stage that dropped them: then the reject
        # files, like the shards, do not depend on how the input was cut into units and batches.
        position = {d: i for i, d in enumerate(input_ids)}
        reject_rows.sort(key=lambda row: position.get(row["doc_id"], len(position)))
        rejects = pa.Table.from_pylist(reject_rows, schema=REJECT_SCHEMA)
        return self._conform(records), rejects

    def _skip_raw_copies(self, records: pa.RecordBatch, skip: dict[str, str], counters: Counters, reject_rows) -> pa.RecordBatch:
        firsts = [skip.get(d) for d in records.column("doc_id").to_pylist()]
        mask = [f is not None for f in firsts]
        n = sum(mask)
        if not n:
            return records
        c = counters.stage("dedup")
        c.docs_in += n
        c.dropped[RAW_REASON] += n
        reasons = [RAW_REASON if m else None for m in mask]
        details = ["this batch: same raw HTML bytes and charset as dup_of (dropped before extraction)" if m else None for m in mask]
        reject_rows.extend(self.reject_rows(records, mask, "dedup", reasons, details, firsts))
        return records.filter(pc.invert(pa.array(mask, pa.bool_())))

    def _apply(self, records, stage_name, reasons, details, c, reject_rows, verdict, extra=None) -> pa.RecordBatch:
        mask = [r is not None for r in reasons]
        if self.mode == "annotate":
            for i, r in enumerate(reasons):
                if verdict[i] is None:
                    if r is None:
                        c.docs_out += 1
                    else:
                        verdict[i] = f"{stage_name}:{r}"
                        c.dropped[r] += 1
            return records
        for r in reasons:
            if r is not None:
                c.dropped[r] += 1
        if any(mask):
            reject_rows.extend(self.reject_rows(records, mask, stage_name, reasons, details, None, extra))
            records = records.filter(pc.invert(pa.array(mask, pa.bool_())))
        c.docs_out += records.num_rows
        return records
