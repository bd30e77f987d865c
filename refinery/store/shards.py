"""Writing Parquet: per-unit part files in staging, then shards of a target size.

Shard boundaries depend only on the rows (their Arrow size), never on timing,
so a re-run of the same input writes byte-identical shards.
"""

from __future__ import annotations

from pathlib import Path
from typing import Iterable, Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from refinery.config import ShardConfig
from refinery.hashing import sha256_file
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


def iter_parts(
    paths: Iterable[str | None], columns: list[str] | None = None, batch_size: int = 4096
) -> Iterator[pa.RecordBatch]:
    for p in paths:
        if p is None:
            continue
        yield from pq.ParquetFile(p).iter_batches(batch_size=batch_size, columns=columns)


class ShardWriter:
    """Re-chunks the batches pushed into it into shards of about `cfg.target_bytes` (uncompressed
    Arrow size), with row groups of `cfg.row_group_rows`.

    Push-style so that a batch's shards can be written while later work units still run;
    the boundaries depend only on the rows pushed, in order."""

    def __init__(self, schema: pa.Schema, out_dir: Path, prefix: str, cfg: ShardConfig, rel_to: Path) -> None:
        self.schema, self.out_dir, self.prefix, self.cfg, self.rel_to = schema, out_dir, prefix, cfg, rel_to
        self.entries: list[FileEntry] = []
        self._writer: pq.ParquetWriter | None = None
        self._path: Path | None = None
        self._pending: list[pa.RecordBatch] = []
        self._pending_rows = self._shard_bytes = self._shard_rows = 0
        out_dir.mkdir(parents=True, exist_ok=True)

    def write(self, batch: pa.RecordBatch) -> None:
        cfg = self.cfg
        offset = 0
        while offset < batch.num_rows:
            if self._writer is None:
                self._path = self.out_dir / f"{self.prefix}-{len(self.entries):05d}.parquet"
                self._writer = pq.ParquetWriter(
                    self._path, self.schema, compression=cfg.compression, compression_level=cfg.compression_level
                )
            take = min(batch.num_rows - offset, cfg.row_group_rows - self._pending_rows)
            piece = batch.slice(offset, take)
            offset += take
            self._pending.append(piece)
            self._pending_rows += take
            self._shard_rows += take
            self._shard_bytes += piece.nbytes
            if self._pending_rows >= cfg.row_group_rows:
                self._flush_group()
            if self._shard_bytes >= cfg.target_bytes:
                self._close_shard()

    def close(self) -> list[FileEntry]:
        """Finish the last shard; the entries of every shard written, in order."""
        self._close_shard()
        return self.entries

    def _flush_group(self) -> None:
        if self._pending and self._writer is not None:
            table = pa.Table.from_batches(self._pending, schema=self.schema)
            self._writer.write_table(table, row_group_size=self.cfg.row_group_rows)
        self._pending, self._pending_rows = [], 0

    def _close_shard(self) -> None:
        self._flush_group()
        if self._writer is not None and self._path is not None:
            self._writer.close()
            path = self._path
            self.entries.append(
                FileEntry(str(path.relative_to(self.rel_to)), self._shard_rows, path.stat().st_size, sha256_file(path))
            )
        self._writer, self._shard_bytes, self._shard_rows = None, 0, 0
