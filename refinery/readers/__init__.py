"""Input discovery, work-unit planning and record reading.

A work unit is a contiguous range of records in one file; units are what Ray
tasks process, so a batch of a few large files still keeps every core busy.
Units are planned by a cheap pre-scan that counts records; the last unit of a
file is open-ended so records past a corrupt point still get reported.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import pyarrow as pa
import xxhash

from refinery.errors import InputError
from refinery.readers import jsonl, parquet, warc
from refinery.readers.records import error_row
from refinery.schema import INPUT_SCHEMA

FORMATS = {
    ".warc": "warc",
    ".warc.gz": "warc",
    ".jsonl": "jsonl",
    ".jsonl.gz": "jsonl",
    ".jsonl.zst": "jsonl",
    ".parquet": "parquet",
}
_READERS = {"warc": warc, "jsonl": jsonl, "parquet": parquet}


@dataclass(frozen=True)
class InputFile:
    path: str  # absolute
    format: str
    size: int
    digest: str  # xxh3-128 of the bytes: identifies the batch for exactly-once commits

    @property
    def uri(self) -> str:
        return Path(self.path).as_uri()


@dataclass(frozen=True)
class WorkUnit:
    index: int
    file: InputFile
    start: int  # first record index (over all records of the file)
    count: int | None  # None: read to the end of the file
    offset: int | None = None  # byte offset of record `start`, where the format can seek (WARC)

    def records(self) -> Iterator[dict]:
        """The unit's raw records, read straight from `offset` when known."""
        reader = _READERS[self.file.format]
        if self.offset is not None:
            return reader.iter_records(self.file.path, self.start, self.count, offset=self.offset)
        return reader.iter_records(self.file.path, self.start, self.count)


def detect_format(path: Path) -> str | None:
    name = path.name.lower()
    for suffix in sorted(FORMATS, key=len, reverse=True):
        if name.endswith(suffix):
            return FORMATS[suffix]
    return None


def _digest(path: Path) -> str:
    h = xxhash.xxh3_128()
    with path.open("rb") as f:
        while chunk := f.read(4 << 20):
            h.update(chunk)
    return h.hexdigest()


def discover(paths: list[str]) -> list[InputFile]:
    """Expand files and directories into a sorted, de-duplicated list of inputs."""
    if not paths:
        raise InputError("no input given")
    found: dict[str, Path] = {}
    for raw in paths:
        p = Path(raw).expanduser()
        if not p.exists():
            raise InputError(f"{raw}: no such file or directory")
        if p.is_dir():
            for child in sorted(p.rglob("*")):
                if child.is_file() and detect_format(child):
                    found[str(child.resolve())] = child.resolve()
        else:
            if detect_format(p) is None:
                raise InputError(f"{raw}: unknown input format (expected {', '.join(sorted(FORMATS))})")
            found[str(p.resolve())] = p.resolve()
    if not found:
        raise InputError(f"{', '.join(paths)}: no input files ({', '.join(sorted(FORMATS))}) found")
    files = []
    for key in sorted(found):
        p = found[key]
        try:
            files.append(InputFile(str(p), detect_format(p) or "", p.stat().st_size, _digest(p)))
        except OSError as err:
            raise InputError(f"{p}: cannot read: {err.strerror or err}") from None
    return files


def unit_size(total_records: int, records_per_unit: int, min_units: int = 1, min_records_per_unit: int = 1) -> int:
    """Records per unit: `records_per_unit` at most, fewer for a small batch so that it still
    makes `min_units` units, but never fewer than `min_records_per_unit`."""
    if total_records <= 0:
        return records_per_unit
    wanted = -(-total_records // max(1, min_units))  # ceil
    return max(1, min(records_per_unit, max(min_records_per_unit, wanted)))


def scan_file(f: InputFile) -> tuple[int, list[int] | None]:
    """(records, per-record byte offsets or None) of one input file: what plan_units() needs."""
    reader = _READERS[f.format]
    if hasattr(reader, "scan"):
        return reader.scan(f.path)
    return reader.count_records(f.path), None


def plan_units(
    files: list[InputFile],
    records_per_unit: int,
    min_units: int = 1,
    min_records_per_unit: int = 1,
    scans: list[tuple[int, list[int] | None]] | None = None,
) -> list[WorkUnit]:
    """Cut the files into work units (record ranges) in input order; see unit_size().

    `scans`: scan_file() of each file when the caller already has them (the executor
    scans in Ray tasks)."""
    if scans is None:
        scans = [scan_file(f) for f in files]
    size = unit_size(sum(total for total, _ in scans), records_per_unit, min_units, min_records_per_unit)
    units: list[WorkUnit] = []
    for f, (total, offsets) in zip(files, scans):
        start = 0
        while True:
            offset = offsets[start] if offsets and start < len(offsets) else None
            remaining = total - start
            if remaining <= size:
                units.append(WorkUnit(len(units), f, start, None, offset))
                break
            units.append(WorkUnit(len(units), f, start, size, offset))
            start += size
    return units


def doc_id(source_uri: str, record_key: str) -> str:
    """Stable id: the same record of the same file always gets the same id."""
    return xxhash.xxh3_128(f"{source_uri}\x00{record_key}".encode()).hexdigest()


def read_unit(unit: WorkUnit, batch_rows: int) -> Iterator[pa.RecordBatch]:
    """Yield INPUT_SCHEMA batches for the documents of one unit."""
    rows: list[dict] = []
    uri = unit.file.uri
    records = unit.records()
    if unit.file.size == 0:  # reported, not silently nothing: an empty upload is usually a mistake
        records = iter([error_row("file", "empty file (0 bytes)")])
    for row in records:
        row["source_uri"] = uri
        row["doc_id"] = doc_id(uri, row["record_id"])
        rows.append(row)
        if len(rows) >= batch_rows:
            yield pa.RecordBatch.from_pylist(rows, schema=INPUT_SCHEMA)
            rows = []
    if rows:
        yield pa.RecordBatch.from_pylist(rows, schema=INPUT_SCHEMA)
