"""Writing Parquet: per-unit part files in staging, then shards of a target size.

Shard boundaries depend only on the rows (their Arrow size), never on timing,
so a re-run of the same input writes byte-identical shards.
"""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from refinery.config import ShardConfig
from refinery.store.manifest import FileEntry

PART_COMPRESSION = {"compression": "zstd", "compression_level": 1}


class PartWriter:
    """Streams batches of one work unit to a staging Parquet file (opened lazily)."""

    def __init__(self, path: Path, schema: pa.Schema) -> None:
        self.path = path
        self.schema = schema
        self.rows = 0
        self._writer: pq.ParquetWriter | None = None

    def write(self, data: pa.RecordBatch | pa.Table) -> None:
        if data.num_rows == 0:
            return
        if self._writer is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._writer = pq.ParquetWriter(self.path, self.schema, **PART_COMPRESSION)
        table = data if isinstance(data, pa.Table) else pa.Table.from_batches([data])
        self._writer.write_table(table)
        self.rows += data.num_rows

    def close(self) -> str | None:
        if self._writer is None:
            return None
        self._writer.close()
        return str(self.path)


def iter_parts(paths: Iterable[str | None]) -> Iterator[pa.RecordBatch]:
    for p in paths:
        if p is None:
            continue
        yield from pq.ParquetFile(p).iter_batches(batch_size=4096)


def sha256_file(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
    return h.hexdigest()


def write_shards(
    batches: Iterable[pa.RecordBatch], schema: pa.Schema, out_dir: Path, prefix: str, cfg: ShardConfig, rel_to: Path
) -> list[FileEntry]:
    """Re-chunk `batches` into shards of about `cfg.target_bytes` (uncompressed Arrow size)."""
    out_dir.mkdir(parents=True, exist_ok=True)
    entries: list[FileEntry] = []
    writer: pq.ParquetWriter | None = None
    path: Path | None = None
    pending: list[pa.RecordBatch] = []
    pending_rows = shard_bytes = shard_rows = 0

    def flush_group() -> None:
        nonlocal pending, pending_rows
        if pending and writer is not None:
            writer.write_table(pa.Table.from_batches(pending, schema=schema), row_group_size=cfg.row_group_rows)
        pending, pending_rows = [], 0

    def close_shard() -> None:
        nonlocal writer, shard_bytes, shard_rows
        flush_group()
        if writer is not None and path is not None:
            writer.close()
            entries.append(
                FileEntry(str(path.relative_to(rel_to)), shard_rows, path.stat().st_size, sha256_file(path))
            )
        writer, shard_bytes, shard_rows = None, 0, 0

    for batch in batches:
        offset = 0
        while offset < batch.num_rows:
            if writer is None:
                path = out_dir / f"{prefix}-{len(entries):05d}.parquet"
                writer = pq.ParquetWriter(
                    path, schema, compression=cfg.compression, compression_level=cfg.compression_level
                )
            take = min(batch.num_rows - offset, cfg.row_group_rows - pending_rows)
            piece = batch.slice(offset, take)
            offset += take
            pending.append(piece)
            pending_rows += take
            shard_rows += take
            shard_bytes += piece.nbytes
            if pending_rows >= cfg.row_group_rows:
                flush_group()
            if shard_bytes >= cfg.target_bytes:
                close_shard()
    close_shard()
    return entries
