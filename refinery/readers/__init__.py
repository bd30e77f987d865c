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
from refinery.readers.records import error_row, short_reason, valid_text
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


MAX_BATCH_BYTES = 64 * 1024 * 1024  # content bytes (html + text) of one Arrow batch: bounds worker memory


def read_unit(unit: WorkUnit, batch_rows: int, max_batch_bytes: int = MAX_BATCH_BYTES) -> Iterator[pa.RecordBatch]:
    """Yield INPUT_SCHEMA batches for the documents of one unit.

    A batch ends at `batch_rows` rows or before its content would pass `max_batch_bytes`
    (a record may be up to the readers' 64 MiB guard: 32 of them in one batch would hold
    2 GiB and overflow Arrow's 32-bit offsets).  A record that still cannot become an
    Arrow row is replaced by its error row, so it never fails its unit."""
    rows: list[dict] = []
    held = 0
    uri = unit.file.uri
    records = unit.records()
    if unit.file.size == 0:  # reported, not silently nothing: an empty upload is usually a mistake
        records = iter([error_row("file", "empty file (0 bytes)")])
    for row in records:
        size = _content_bytes(row)
        if rows and held + size > max_batch_bytes:
            yield _to_batch(rows, uri)
            rows, held = [], 0
        try:
            row["source_uri"] = uri
            row["doc_id"] = doc_id(uri, row["record_id"])
        except Exception as err:  # noqa: BLE001 - e.g. a record id no encoder accepts
            row = _unconvertible(row, uri, err)
        rows.append(row)
        held += size
        if len(rows) >= batch_rows:
            yield _to_batch(rows, uri)
            rows, held = [], 0
    if rows:
        yield _to_batch(rows, uri)


def _content_bytes(row: dict) -> int:
    html, text = row.get("html"), row.get("text")
    return (len(html) if isinstance(html, (bytes, bytearray)) else 0) + (len(text) if isinstance(text, str) else 0)


def _to_batch(rows: list[dict], uri: str) -> pa.RecordBatch:
    try:
        return pa.RecordBatch.from_pylist(rows, schema=INPUT_SCHEMA)
    except Exception:  # noqa: BLE001 - find the rows Arrow refuses, one by one
        fixed = []
        for row in rows:
            try:
                pa.RecordBatch.from_pylist([row], schema=INPUT_SCHEMA)
                fixed.append(row)
            except Exception as err:  # noqa: BLE001
                fixed.append(_unconvertible(row, uri, err))
        return pa.RecordBatch.from_pylist(fixed, schema=INPUT_SCHEMA)


def _unconvertible(row: dict, uri: str, err: BaseException) -> dict:
    """The error row standing for a record whose fields Arrow cannot hold."""
    record_id = valid_text(str(row.get("record_id")))
    url = row.get("url")
    bad = error_row(record_id, f"unreadable record: {short_reason(err)}", url if isinstance(url, str) else None)
    bad["source_uri"] = uri
    bad["doc_id"] = doc_id(uri, bad["record_id"])
    return bad
