"""One crawl batch end to end: discover inputs, run on Ray, write shards, commit once.

The library entry points behind `refinery run` and `refinery annotate`; the
CLI and the service are thin layers over these two functions.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
from collections import Counter
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pyarrow.parquet as pq

from refinery import executor
from refinery.config import PipelineConfig
from refinery.counters import Counters
from refinery.pipeline import PipelineRunner
from refinery.readers import InputFile, discover, plan_units
from refinery.schema import REJECT_SCHEMA
from refinery.store import CommitRecord, CorpusStore
from refinery.store.shards import iter_parts, write_shards

ProgressFn = Callable[[executor.UnitResult], None]


@dataclass
class BatchOutcome:
    record: CommitRecord
    already_committed: bool
    counters: Counters


def batch_key(config: PipelineConfig, files: list[InputFile]) -> str:
    """Identity of a batch: same inputs (by content) under the same config = same batch."""
    payload = {"config": config.config_hash(), "inputs": [[f.uri, f.digest] for f in files]}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _merge(results: list[executor.UnitResult]) -> Counters:
    counters = Counters()
    for r in results:
        counters.merge(r.counters)
    return counters


def run_batch(
    config: PipelineConfig,
    inputs: list[str],
    store: CorpusStore,
    address: str | None = None,
    on_plan: Callable[[int], None] | None = None,
    on_unit_done: ProgressFn | None = None,
    labels: dict | None = None,
) -> BatchOutcome:
    """Process `inputs` and commit the accepted documents exactly once."""
    files = discover(inputs)
    key = batch_key(config, files)
    existing = store.find_batch(key)
    if existing is not None:
        return BatchOutcome(existing, True, Counters.from_dict(existing.counters))
    store.gc()
    units = plan_units(files, config.execution.records_per_unit)
    if on_plan:
        on_plan(len(units))
    executor.ensure_ray(address)
    staging = store.new_staging(key)
    results = executor.execute(config, units, staging, "run", str(store.root), on_unit_done)
    counters = _merge(results)
    runner = PipelineRunner(config, "run")
    out = staging / "out"
    shards = write_shards(
        iter_parts(r.kept_path for r in results), runner.schema, out, "shard", config.shards, out
    )
    rejects = write_shards(
        iter_parts(r.rejects_path for r in results), REJECT_SCHEMA, out, "rejects", config.shards, out
    )
    shutil.rmtree(staging / "parts", ignore_errors=True)
    if os.environ.get("REFINERY_CRASH_BEFORE_COMMIT"):  # fault-injection hook for tests
        os._exit(int(os.environ["REFINERY_CRASH_BEFORE_COMMIT"]))
    record = CommitRecord(
        commit=0,
        batch_key=key,
        created_at="",
        pipeline=config.name,
        config_hash=config.config_hash(),
        models=runner.model_info(),
        inputs=[{"uri": f.uri, "size": f.size, "xxh3_128": f.digest} for f in files],
        shards=[],
        rejects=[],
        counters=counters.to_dict(),
        docs_in=sum(r.docs_in for r in results),
        docs_out=sum(r.kept_rows for r in results),
        labels=labels or {},
        execution={"units": len(results), "nodes": dict(Counter(r.node_id for r in results if r.node_id))},
    )
    committed = store.commit_staged(staging, record, shards, rejects)
    return BatchOutcome(committed, committed is not record, counters)


def annotate_batch(
    config: PipelineConfig,
    inputs: list[str],
    out_path: Path,
    store: CorpusStore | None = None,
    address: str | None = None,
    on_plan: Callable[[int], None] | None = None,
    on_unit_done: ProgressFn | None = None,
) -> tuple[int, Counters]:
    """Score every document with every stage; write one row per document to `out_path`.

    Nothing is filtered and nothing is committed; a store, if given, is only read.
    """
    files = discover(inputs)
    units = plan_units(files, config.execution.records_per_unit)
    if on_plan:
        on_plan(len(units))
    executor.ensure_ray(address)
    out_path = out_path.expanduser().resolve()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    work = out_path.parent / f".{out_path.name}.parts"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        store_root = str(store.root) if store else None
        results = executor.execute(config, units, work, "annotate", store_root, on_unit_done)
        schema = PipelineRunner(config, "annotate").schema
        tmp = out_path.parent / f".{out_path.name}.tmp"
        rows = 0
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for batch in iter_parts(r.kept_path for r in results):
                writer.write_batch(batch)
                rows += batch.num_rows
        os.replace(tmp, out_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows, _merge(results)
