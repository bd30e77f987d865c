"""Ray execution: one task per work unit, models loaded once per worker process.

Each task runs the pipeline over its unit and streams the results to Parquet
part files in the staging area, returning only small metadata; the driver
never holds documents, so memory stays bounded whatever the batch size.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import ray

from refinery.config import PipelineConfig
from refinery.counters import Counters
from refinery.dedup.raw import RawCopies, unit_raw_keys
from refinery.local_ray import init_local_ray
from refinery.runner import PipelineRunner
from refinery.readers import InputFile, WorkUnit, plan_units, read_unit, scan_file
from refinery.schema import REJECT_SCHEMA
from refinery.store.shards import PartWriter

# Per worker process: built pipelines keyed by (config hash, mode, store).  Ray
# reuses worker processes across tasks, so models load once per process.
_RUNNERS: dict[tuple[str, str, str | None], PipelineRunner] = {}


class BatchCancelled(Exception):
    """Raised by execute() when its cancel hook answers True; outstanding tasks are cancelled."""


@dataclass
class UnitResult:
    index: int
    docs_in: int
    kept_rows: int
    kept_path: str | None
    reject_rows: int
    rejects_path: str | None
    counters: dict
    node_id: str | None = None  # the Ray node that ran the unit (None outside Ray)


def runner_for(config: PipelineConfig, mode: str) -> PipelineRunner:
    key = (config.config_hash(), mode)
    runner = _RUNNERS.get(key)
    if runner is None:
        runner = PipelineRunner(config, mode)
        runner.setup()
        _RUNNERS[key] = runner
    return runner


def process_unit(
    config: PipelineConfig,
    unit: WorkUnit,
    staging: str,
    mode: str,
    skip: dict[str, str] | None = None,
) -> UnitResult:
    """Run one work unit end to end; plain Python so tests can call it without Ray.

    `skip` maps doc_ids of raw-byte copies to their first copy (refinery/dedup/raw.py):
    those rows are dropped before any stage runs."""
    runner = runner_for(config, mode)
    counters = Counters()
    parts = Path(staging) / "parts"
    kept = PartWriter(parts / f"unit-{unit.index:06d}.parquet", runner.schema)
    rejects = PartWriter(parts / f"rejects-{unit.index:06d}.parquet", REJECT_SCHEMA)
    docs_in = 0
    for batch in read_unit(unit, config.execution.batch_rows):
        docs_in += batch.num_rows
        out, rej = runner.process(batch, counters, skip)
        kept.write(out)
        rejects.write(rej)
    node = ray.get_runtime_context().get_node_id() if ray.is_initialized() else None
    return UnitResult(
        unit.index, docs_in, kept.rows, kept.close(), rejects.rows, rejects.close(), counters.to_dict(), node
    )


_remote_process_unit = ray.remote(max_retries=3, retry_exceptions=False)(process_unit)
_remote_raw_keys = ray.remote(max_retries=3, retry_exceptions=False)(unit_raw_keys)
_remote_scan = ray.remote(max_retries=3, retry_exceptions=False)(scan_file)


class RawCopyGate:
    """Raw-byte copies (refinery/dedup/raw.py) found while the batch runs, not before it.

    A unit's skips depend on the raw keys of every unit up to it, so unit k may start once
    the hashing tasks of units 0..k have answered.  The hashing tasks are submitted ahead of
    the processing tasks (Ray runs them first: they are queued first), so the cores go from
    hashing straight to processing instead of waiting at a barrier for the whole batch."""

    def __init__(self, units: list[WorkUnit], limit: int) -> None:
        self.units = units
        self.limit = limit  # hashing tasks in flight at most
        self.pending: dict = {}  # ref -> position in units
        self.answers: dict[int, list[tuple[str, int]]] = {}
        self.submitted = 0
        self.ready = 0  # units[:ready] have their skips
        self.copies = RawCopies()

    def submit(self) -> None:
        while self.submitted < len(self.units) and len(self.pending) < self.limit:
            self.pending[_remote_raw_keys.remote(self.units[self.submitted])] = self.submitted
            self.submitted += 1

    def answered(self, ref) -> None:
        """Record a hashing task's answer and extend the prefix of units that may start."""
        self.answers[self.pending.pop(ref)] = ray.get(ref)
        while self.ready in self.answers:
            self.copies.add(self.units[self.ready].index, self.answers.pop(self.ready))
            self.ready += 1
        self.submit()

    def skips(self, unit: WorkUnit) -> dict[str, str] | None:
        return self.copies.skips.get(unit.index)


GCS_TASK_EVENTS = 10_000  # task events the local GCS keeps (see ensure_ray)


def ensure_ray(address: str | None) -> None:
    """Start local Ray (default: loopback only, token-authenticated, see local_ray) or join a
    cluster at `address`."""
    if ray.is_initialized():
        return
    os.environ.setdefault("RAY_ACCEL_ENV_VAR_OVERRIDE_ON_ZERO", "0")
    kwargs: dict = {"ignore_reinit_error": True, "logging_level": "ERROR", "log_to_driver": True}
    if not address:
        # Local workers inherit the driver's environment.  No job runtime_env here on purpose:
        # a non-default one makes Ray start a second set of workers next to the ones it
        # prestarts (about 2 CPU-s and 2 s of wall time per run on a 2-core machine).
        os.environ.setdefault("PYTHONWARNINGS", "ignore")
        # Ray's GCS keeps the events of the last 100,000 tasks by default: for an always-on
        # service cutting every batch into dozens of tasks that is ~400 MB of GCS memory after a
        # few hours.  The last 10,000 tasks are plenty for `ray list tasks` on recent batches.
        # The GCS reads this at start, from the environment the driver gives it; a cluster sets
        # it on `ray start`.
        os.environ.setdefault("RAY_task_events_max_num_task_in_gcs", str(GCS_TASK_EVENTS))
        init_local_ray(include_dashboard=False, **kwargs)
        return
    # Workers must import this package: on a cluster it may not be installed, so ship it.
    import refinery

    runtime_env = {"env_vars": {"PYTHONWARNINGS": "ignore"}, "py_modules": [str(Path(refinery.__file__).parent)]}
    ray.init(address=address, runtime_env=runtime_env, **kwargs)


def cluster_cpus() -> int:
    return max(1, int(ray.cluster_resources().get("CPU", 1) or 1))


def plan(config: PipelineConfig, files: list[InputFile]) -> list[WorkUnit]:
    """Work units for the connected Ray cluster: small batches are cut finer (ExecutionConfig).

    Files are scanned (records counted, offsets found) in Ray tasks, one per file, when
    there are several: a batch of many WARC files is not scanned one by one in the driver."""
    return plan_with_records(config, files)[0]


def plan_with_records(config: PipelineConfig, files: list[InputFile]) -> tuple[list[WorkUnit], int]:
    """plan(), and the number of input records the units cover (known from the scans)."""
    e = config.execution
    scans = ray.get([_remote_scan.remote(f) for f in files]) if len(files) > 1 else [scan_file(f) for f in files]
    units = plan_units(files, e.records_per_unit, e.min_units_per_cpu * cluster_cpus(), e.min_records_per_unit, scans)
    return units, sum(total for total, _ in scans)


def _cancel_all(refs: list) -> None:
    """Force-cancel tasks and wait until they are gone (ray.cancel is asynchronous), so no
    worker writes into a staging directory after the caller has removed it."""
    if not ray.is_initialized():  # Ray already shut down (the process is exiting): nothing runs
        return
    for ref in refs:
        ray.cancel(ref, force=True)
    if refs:
        ray.wait(refs, num_returns=len(refs), timeout=60)


def execute(
    config: PipelineConfig,
    units: list[WorkUnit],
    staging: Path,
    mode: str,
    on_unit_done: Callable[[UnitResult], None] | None = None,
    should_cancel: Callable[[], bool] | None = None,
    raw_copies: bool = False,
    reuse: dict[int, UnitResult] | None = None,
) -> list[UnitResult]:
    """Run all units on Ray with a bounded number in flight; results in unit order.

    `raw_copies`: drop raw-byte copies before any stage runs (RawCopyGate).
    `reuse`: results of units finished by an earlier attempt (refinery/resume.py), by unit
    index: those units are not run again; they reach `on_unit_done` first.
    `on_unit_done` sees each result as it arrives (any order).  `should_cancel` is
    polled between results (at least every half second): when it answers True
    BatchCancelled is raised.  On any exception (cancel, a failed unit) the
    outstanding tasks are force-cancelled and waited for first; the caller
    discards the staging directory.
    """
    cpus = cluster_cpus()
    limit = max(2, cpus * config.execution.max_in_flight_per_cpu)
    config_ref = ray.put(config)
    gate = RawCopyGate(units, max(64, 8 * limit)) if raw_copies else None
    pending: dict = {}
    results: dict[int, UnitResult] = {}
    reuse = reuse or {}
    position = {u.index: i for i, u in enumerate(units)}
    for u in units:
        if u.index in reuse:
            results[u.index] = reuse[u.index]
            if on_unit_done:
                on_unit_done(reuse[u.index])
    queue = [u for u in units if u.index not in reuse]
    if not queue:
        gate = None  # nothing left to run: no skips needed
    if gate is not None:
        gate.submit()
    try:
        while queue or pending:
            # with the gate, a unit starts once the hashing tasks of all units up to it have answered
            while queue and len(pending) < limit and (gate is None or position[queue[0].index] < gate.ready):
                unit = queue.pop(0)
                skip = gate.skips(unit) if gate is not None else None
                ref = _remote_process_unit.remote(config_ref, unit, str(staging), mode, skip)
                pending[ref] = unit
            if should_cancel is not None and should_cancel():
                raise BatchCancelled("batch cancelled")
            waiting = list(pending) + (list(gate.pending) if gate is not None else [])
            done, _ = ray.wait(waiting, num_returns=1, timeout=0.5 if should_cancel else None)
            for ref in done:
                if gate is not None and ref in gate.pending:
                    gate.answered(ref)
                    continue
                pending.pop(ref)
                result: UnitResult = ray.get(ref)
                results[result.index] = result
                if on_unit_done:
                    on_unit_done(result)
    except BaseException:
        _cancel_all(list(pending) + (list(gate.pending) if gate is not None else []))
        raise
    return [results[u.index] for u in units]
