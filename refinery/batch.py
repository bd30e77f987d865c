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
from refinery.counters import Counters, in_pipeline_order
from refinery.crash_points import crash_point
from refinery.dedup.decisions import BatchDedup
from refinery.runner import PipelineRunner
from refinery.readers import InputFile, discover
from refinery.resume import FinishedUnits
from refinery.outputs import StreamingOutputs, docs_out, write_outputs
from refinery.store import CommitRecord, CorpusStore
from refinery.store.corpus_store import staged_stats
from refinery.store.shards import iter_parts

ProgressFn = Callable[[executor.UnitResult], None]


@dataclass
class BatchOutcome:
    record: CommitRecord
    already_committed: bool
    counters: Counters


def batch_key(config: PipelineConfig, files: list[InputFile], models: dict | None = None, limit: int | None = None) -> str:
    """Identity of a batch: same inputs (by content) under the same config and models = same batch.

    Models count: after `refinery models build-*` replaces a model, the same input
    is new work, not a re-run of a committed batch.  So does `--limit` (a trial run
    over the first N records is not the whole batch).
    """
    payload = {"config": config.config_hash(), "inputs": [[f.uri, f.digest] for f in files]}
    if models:
        payload["models"] = models
    if limit is not None:
        payload["limit"] = limit
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


def _merge(results: list[executor.UnitResult]) -> Counters:
    counters = Counters()
    for r in results:
        counters.merge(r.counters)
    return counters


def _pause_after(n_units: int) -> int | None:
    """Fault injection for tests: REFINERY_PAUSE_AFTER_UNIT_FRACTION=0.6 makes the driver stop
    (sleep) once more than that fraction of the units is finished and saved, so a test can kill
    the whole process tree at a known point."""
    frac = os.environ.get("REFINERY_PAUSE_AFTER_UNIT_FRACTION")
    if not frac:
        return None
    return min(n_units, int(float(frac) * n_units) + 1)


def _pause_forever() -> None:
    import time

    print("refinery: paused for fault injection (REFINERY_PAUSE_AFTER_UNIT_FRACTION)", flush=True)
    while True:
        time.sleep(60)


def _with_dedup(counters: Counters, dedup: BatchDedup | None, config: PipelineConfig) -> Counters:
    """Worker counters with the driver's dedup decisions, in pipeline order (counters.in_pipeline_order)."""
    return in_pipeline_order(counters, [s.name for s in config.stages], dedup.drop_counts() if dedup else None)


def run_batch(
    config: PipelineConfig,
    inputs: list[str],
    store: CorpusStore,
    address: str | None = None,
    on_plan: Callable[[int], None] | None = None,
    on_unit_done: ProgressFn | None = None,
    labels: dict | None = None,
    should_cancel: Callable[[], bool] | None = None,
    limit: int | None = None,
    on_status: Callable[[str], None] | None = None,
) -> BatchOutcome:
    """Process `inputs` and commit the accepted documents exactly once.

    `should_cancel` (the service's cancel hook) is checked between work units
    and once more before the commit; a cancelled run raises
    executor.BatchCancelled.  A failed or cancelled execution removes its
    staging directory (in a long-lived process gc() would not: its owner lives).
    """
    files = discover(inputs)
    runner = PipelineRunner(config, "run")
    key = batch_key(config, files, runner.model_info(), limit)
    existing = store.find_batch(key)
    if existing is not None:
        FinishedUnits(store.state_dir, key).discard()
        return BatchOutcome(existing, True, Counters.from_dict(existing.counters))
    store.gc()
    _start_ray(address, on_status)
    units = _planned(config, files, limit, on_status)
    if on_plan:
        on_plan(len(units))
    staging = store.new_staging(key)
    try:
        return _finish_batch(
            config, runner, files, key, units, store, staging, on_unit_done, labels, should_cancel, limit
        )
    except BaseException:
        # Any failure (a unit failed, cancel, disk full while writing shards, ...): this attempt's
        # files go now.  gc() would not remove them while this process lives (the service).
        shutil.rmtree(staging, ignore_errors=True)
        raise


def _start_ray(address: str | None, on_status: Callable[[str], None] | None) -> None:
    """Connect to Ray, saying so first: a local start takes seconds the operator should not stare at."""
    import ray

    if on_status is not None and not ray.is_initialized():
        on_status(f"connecting to the Ray cluster at {address}" if address else "starting local Ray")
    executor.ensure_ray(address)
    if on_status is not None:
        on_status("planning work units")


def _planned(
    config: PipelineConfig, files: list[InputFile], limit: int | None, on_status: Callable[[str], None] | None = None
) -> list:
    units, records = executor.plan_with_records(config, files)
    if limit is not None:
        from refinery.trial import limit_units

        units = limit_units(units, limit)
        records = min(records, limit)
    if on_status is not None:
        on_status(f"planned {len(units)} work units over {records} input records ({len(files)} file(s))")
    return units


def _finish_batch(
    config, runner, files, key, units, store, staging, on_unit_done, labels, should_cancel, limit=None
) -> BatchOutcome:
    """Execute, deduplicate, write shards and commit (run_batch's body, inside its cleanup)."""
    dedup_spec = config.stage("dedup")
    raw_copies = dedup_spec is not None and dedup_spec.options.exact
    outputs = StreamingOutputs(config, runner, units, staging, store)
    finished = FinishedUnits(store.state_dir, key)  # refinery/resume.py
    reuse = finished.finished(units, staging)
    finished.begin(units)
    by_index = {u.index: u for u in units}
    pause_after = _pause_after(len(units))

    def unit_done(result: executor.UnitResult) -> None:
        if result.index not in reuse:
            finished.save(by_index[result.index], result)  # before anything else: it survives a crash now
            if pause_after is not None and finished.saved >= pause_after:
                _pause_forever()
        if on_unit_done:  # progress first: taking the unit may take a moment
            on_unit_done(result)
        outputs.unit_done(result)

    results = executor.execute(
        config, units, staging, "run", unit_done, should_cancel, raw_copies=raw_copies, reuse=reuse
    )
    counters = _merge(results)
    shards, rejects, dedup = outputs.close()
    if dedup is None:
        shutil.rmtree(staging / "parts", ignore_errors=True)
    if should_cancel is not None and should_cancel():  # last check before the commit
        raise executor.BatchCancelled("batch cancelled")
    crash_point("REFINERY_CRASH_BEFORE_COMMIT")
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
        counters=_with_dedup(counters, dedup, config).to_dict(),
        docs_in=sum(r.docs_in for r in results),
        docs_out=docs_out(results, dedup),
        labels=labels or {},
        execution={"units": len(results), "nodes": dict(Counter(r.node_id for r in results if r.node_id))}
        | ({"resumed_units": len(reuse)} if reuse else {})
        | ({"limit": limit} if limit is not None else {}),
    )
    record.stats = staged_stats(staging, shards)  # before the lock: it reads every shard
    with store.committing(key) as slot:
        committed = slot.existing
        if committed is None:
            if dedup is not None:
                if dedup.recheck():  # under the lock: commits made meanwhile may hold copies of ours
                    shards, rejects = write_outputs(config, runner, results, staging, dedup)
                    record.counters = _with_dedup(counters, dedup, config).to_dict()
                    record.docs_out = docs_out(results, dedup)
                    record.stats = staged_stats(staging, shards)
                dedup.write_segment(slot.number, key)
                crash_point("REFINERY_CRASH_AFTER_INDEX")
            committed = slot.publish(staging, record, shards, rejects)
    shutil.rmtree(staging, ignore_errors=True)
    finished.discard()
    return BatchOutcome(committed, committed is not record, Counters.from_dict(committed.counters))


def annotate_batch(
    config: PipelineConfig,
    inputs: list[str],
    out_path: Path,
    store: CorpusStore | None = None,
    address: str | None = None,
    on_plan: Callable[[int], None] | None = None,
    on_unit_done: ProgressFn | None = None,
    limit: int | None = None,
    on_status: Callable[[str], None] | None = None,
) -> tuple[int, Counters]:
    """Score every document with every stage; write one row per document to `out_path`.

    Nothing is filtered and nothing is committed; a store, if given, is only read.
    """
    files = discover(inputs)
    _start_ray(address, on_status)
    units = _planned(config, files, limit, on_status)
    if on_plan:
        on_plan(len(units))
    out_path = out_path.expanduser().resolve()
    out_path.parent.mkdir(parents=True, exist_ok=True)
    work = out_path.parent / f".{out_path.name}.parts"
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir()
    try:
        results = executor.execute(config, units, work, "annotate", on_unit_done)
        schema = PipelineRunner(config, "annotate").schema
        parts = [r.kept_path for r in results]
        batches = iter_parts(parts)
        dedup = BatchDedup.for_config(config, store, writable=False)
        if dedup is not None:
            dedup.decide(parts, only_keep_verdict=True)
            batches = dedup.annotate_parts(parts)
        tmp = out_path.parent / f".{out_path.name}.tmp"
        rows = 0
        with pq.ParquetWriter(tmp, schema, compression="zstd") as writer:
            for batch in batches:
                writer.write_batch(batch)
                rows += batch.num_rows
        os.replace(tmp, out_path)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return rows, _with_dedup(_merge(results), dedup, config)
