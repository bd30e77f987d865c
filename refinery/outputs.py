"""A crawl batch's outputs: its shards and reject files, written from the units' part files.

`BatchOutputs` is the one writer.  It takes the units in unit order: the kept rows of each
unit's part, minus the copies dedup decided (they become reject rows), go to shards of
`target_bytes`; each unit's rejects go to reject files, and the copies' rejects last.  Shard
boundaries depend only on the rows in that order (store/shards.ShardWriter), so the shards are
the same whether the units are taken as they finish (`StreamingOutputs`, the usual path) or all
at once after a late recheck under the commit lock changed the decisions (`write_outputs`).
"""

from __future__ import annotations

import shutil
from pathlib import Path

from refinery.config import PipelineConfig
from refinery.dedup.decisions import BatchDedup
from refinery.executor import UnitResult
from refinery.runner import PipelineRunner
from refinery.schema import REJECT_SCHEMA
from refinery.store import CorpusStore
from refinery.store.manifest import FileEntry
from refinery.store.shards import ShardWriter, iter_parts


class BatchOutputs:
    """Shards and reject files of one crawl batch, fed its units' results in unit order."""

    def __init__(self, config: PipelineConfig, runner: PipelineRunner, staging: Path, dedup: BatchDedup | None) -> None:
        out = staging / "out"
        self.shards = ShardWriter(runner.schema, out, "shard", config.shards, out)
        self.rejects = ShardWriter(REJECT_SCHEMA, out, "rejects", config.shards, out)
        # the copies' reject rows, written by the filter as the units pass (decided by then)
        self.copies = dedup.copy_filter(runner, staging / "parts" / "rejects-dedup.parquet") if dedup else None

    def write(self, result: UnitResult) -> None:
        """One unit's kept rows (minus copies) and rejects; its documents must be decided already."""
        kept = self.copies.part(result.kept_path) if self.copies is not None else iter_parts([result.kept_path])
        for batch in kept:
            self.shards.write(batch)
        for batch in iter_parts([result.rejects_path]):
            self.rejects.write(batch)

    def close(self) -> tuple[list[FileEntry], list[FileEntry]]:
        """(shard entries, reject entries), the copies' rejects after every unit's."""
        if self.copies is not None:
            for batch in iter_parts([self.copies.close()]):
                self.rejects.write(batch)
        return self.shards.close(), self.rejects.close()


def write_outputs(
    config: PipelineConfig, runner: PipelineRunner, results: list[UnitResult], staging: Path, dedup: BatchDedup | None
) -> tuple[list[FileEntry], list[FileEntry]]:
    """Every unit's outputs in one go, replacing any under `staging/out` (decisions all made)."""
    shutil.rmtree(staging / "out", ignore_errors=True)
    outputs = BatchOutputs(config, runner, staging, dedup)
    for result in results:
        outputs.write(result)
    return outputs.close()


def docs_out(results: list[UnitResult], dedup: BatchDedup | None) -> int:
    """Documents a batch commits: the units' kept rows less dedup's copies."""
    return sum(r.kept_rows for r in results) - (len(dedup.decisions.drops) if dedup else 0)


class StreamingOutputs:
    """Dedup decisions and shards made in unit order while later units still run.

    Results arrive in any order; each unit is taken as soon as every unit before it
    has been taken, so the driver's share of a batch (reading the signatures,
    deciding copies, writing shards) overlaps the execution instead of following it.
    The shards are the ones write_outputs() writes from the same parts: BatchOutputs
    writes both."""

    def __init__(self, config: PipelineConfig, runner: PipelineRunner, units, staging: Path, store: CorpusStore):
        self.config, self.runner, self.store, self.staging = config, runner, store, staging
        self.order = [u.index for u in units]
        self.taken = 0
        self.arrived: dict[int, UnitResult] = {}
        self.dedup: BatchDedup | None = None
        self.outputs: BatchOutputs | None = None

    def _start(self) -> BatchOutputs:
        """Open the dedup index and the writer at the first unit (the index loads while units run)."""
        self.dedup = BatchDedup.for_config(self.config, self.store, writable=True)
        if self.dedup is not None:
            self.dedup.begin()
        self.outputs = BatchOutputs(self.config, self.runner, self.staging, self.dedup)
        return self.outputs

    def unit_done(self, result: UnitResult) -> None:
        self.arrived[result.index] = result
        ready = []
        while self.taken + len(ready) < len(self.order) and self.order[self.taken + len(ready)] in self.arrived:
            ready.append(self.arrived.pop(self.order[self.taken + len(ready)]))
        if ready:
            self._take(ready)
            self.taken += len(ready)

    def _take(self, results: list[UnitResult]) -> None:
        """Decide the copies of every unit now ready at once (one index lookup), then write them."""
        outputs = self.outputs or self._start()
        if self.dedup is not None:
            self.dedup.add_parts([r.kept_path for r in results])
        for result in results:
            outputs.write(result)

    def close(self) -> tuple[list[FileEntry], list[FileEntry], BatchDedup | None]:
        """(shard entries, reject entries, dedup phase) once every unit was taken."""
        if self.taken != len(self.order):
            missing = self.order[self.taken]
            raise RuntimeError(f"work unit {missing} never reported; {len(self.order) - self.taken} units not written")
        outputs = self.outputs or self._start()
        if self.dedup is not None:
            self.dedup.finish()
        return (*outputs.close(), self.dedup)
