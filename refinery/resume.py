"""Resumable batches: finished work units survive a crash, so a re-run redoes only the rest.

A batch of hours of crawl killed at 90% (a crash, `kill -9`, a deploy) should not redo every
unit.  Each finished unit's part files (kept rows, rejects) and its result are kept in
`<store>/state/resume/<batch key>/`, keyed by the unit's input range: file (uri and content
digest), first record, record count.  The batch key covers the config hash, the inputs and the
models, so a stored unit is reused only by the same batch under the same config.  Keying by range
rather than unit number means a re-run on a cluster of another size (another cut into units)
still reuses every unit whose range it plans again.

Why this commits byte-for-byte what a clean run commits: a unit's parts depend only on its
records and on the raw-copy skips of earlier records of the batch (refinery/dedup/raw.py), all
fixed by the input; dedup decisions and shards are made by the driver from the parts in unit
order, whether a part was just computed or restored.  The raw-byte hashing still covers every
unit (later units' skips need the earlier units' keys).

A unit is finished when its `<key>.json` exists: the part files are hard-linked (same
filesystem as the staging area) and fsynced before the JSON is written durably
(refinery/durable.py), so a power loss leaves no JSON naming a part that is not on disk.  The folder goes when the
batch commits (or is found committed); an abandoned one (a batch never re-run) is removed by
`refinery store gc` after RESUME_MAX_AGE_DAYS without a change.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time
from pathlib import Path

import xxhash

from refinery.durable import fsync_file, write_text_durably
from refinery.readers import WorkUnit

log = logging.getLogger("refinery.resume")
RESUME_DIR = "resume"
RESUME_MAX_AGE_DAYS = 7
VERSION = 1


def _link(src: str, dst: Path) -> None:
    dst.unlink(missing_ok=True)
    try:
        os.link(src, dst)
    except OSError:  # another filesystem (or no hard links): a copy does the same job
        shutil.copyfile(src, dst)


def unit_key(unit: WorkUnit) -> str:
    """The unit's input range: file (uri + content digest), first record, count (None: to the end)."""
    count = "end" if unit.count is None else str(unit.count)
    return xxhash.xxh3_128(f"{unit.file.uri}\0{unit.file.digest}\0{unit.start}\0{count}".encode()).hexdigest()


class FinishedUnits:
    """The finished units of one batch in `<store>/state/resume/<batch key>/`."""

    def __init__(self, state_dir: Path, batch_key: str) -> None:
        self.dir = Path(state_dir) / RESUME_DIR / batch_key
        self.saved = 0

    def begin(self, units: list[WorkUnit]) -> None:
        """Note the plan (for operators and tests: how many units, how many already finished)."""
        self.dir.mkdir(parents=True, exist_ok=True)
        write_text_durably(self.dir / "plan.json", json.dumps({"version": VERSION, "units": len(units), "started": time.time()}))

    def finished(self, units: list[WorkUnit], staging: Path):
        """{unit index: UnitResult} for the units stored finished, their files linked into `staging`."""
        from refinery.executor import UnitResult

        out: dict[int, UnitResult] = {}
        if not self.dir.is_dir():
            return out
        parts = staging / "parts"
        for unit in units:
            key = unit_key(unit)
            try:
                meta = json.loads((self.dir / f"{key}.json").read_text())
            except (OSError, ValueError):
                continue
            if meta.get("version") != VERSION:
                continue
            kept = rejects = None
            try:
                if meta["kept"]:
                    kept = parts / f"unit-{unit.index:06d}.parquet"
                    parts.mkdir(parents=True, exist_ok=True)
                    _link(str(self.dir / f"{key}.kept.parquet"), kept)
                if meta["rejects"]:
                    rejects = parts / f"rejects-{unit.index:06d}.parquet"
                    parts.mkdir(parents=True, exist_ok=True)
                    _link(str(self.dir / f"{key}.rejects.parquet"), rejects)
            except OSError:
                continue  # a file went missing: run the unit again
            out[unit.index] = UnitResult(
                unit.index, meta["docs_in"], meta["kept_rows"], str(kept) if kept else None,
                meta["reject_rows"], str(rejects) if rejects else None, meta["counters"], meta.get("node_id"),
            )  # fmt: skip
        return out

    def save(self, unit: WorkUnit, result) -> None:
        """Keep a unit that just finished (files first, then its JSON by rename).

        Best effort: a unit that cannot be kept (disk full) only costs its re-run after a crash;
        the batch goes on."""
        try:
            self._save(unit, result)
        except OSError as err:
            log.warning("cannot keep finished unit %d for resuming (%s); a re-run would redo it", unit.index, err)

    def _save(self, unit: WorkUnit, result) -> None:
        self.dir.mkdir(parents=True, exist_ok=True)
        key = unit_key(unit)
        for part, name in ((result.kept_path, f"{key}.kept.parquet"), (result.rejects_path, f"{key}.rejects.parquet")):
            if part:
                _link(part, self.dir / name)
                fsync_file(self.dir / name)  # on disk before the JSON that says the unit is finished
        meta = {
            "version": VERSION, "file": unit.file.uri, "start": unit.start, "count": unit.count,
            "docs_in": result.docs_in, "kept_rows": result.kept_rows, "reject_rows": result.reject_rows,
            "kept": bool(result.kept_path), "rejects": bool(result.rejects_path),
            "counters": result.counters, "node_id": result.node_id,
        }  # fmt: skip
        write_text_durably(self.dir / f"{key}.json", json.dumps(meta))
        self.saved += 1

    def discard(self) -> None:
        shutil.rmtree(self.dir, ignore_errors=True)


def stale_resume_dirs(state_dir: Path, max_age_days: float = RESUME_MAX_AGE_DAYS) -> list[Path]:
    """Resume folders untouched for `max_age_days` (batches never re-run)."""
    root = Path(state_dir) / RESUME_DIR
    if not root.is_dir():
        return []
    cutoff = time.time() - max_age_days * 86400
    out = []
    for d in root.iterdir():
        try:
            newest = max([p.stat().st_mtime for p in d.iterdir()] + [d.stat().st_mtime])
        except OSError:
            continue
        if newest < cutoff:
            out.append(d)
    return out
