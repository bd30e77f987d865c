"""Parquet reader: a `html` (string or binary) or `text` column, optional `id`, `url`, `fetch_time`."""

from __future__ import annotations

from refinery.readers.records import error_row

from typing import Iterator

import pyarrow.parquet as pq


def count_records(path: str) -> int:
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # noqa: BLE001 - reported by iter_records
        return 0


def iter_records(path: str, start: int, count: int | None) -> Iterator[dict]:
    try:
        pf = pq.ParquetFile(path)
    except Exception as err:  # noqa: BLE001
        yield error_row("file", f"not a readable Parquet file: {err}")
        return
    names = set(pf.schema_arrow.names)
    if "html" not in names and "text" not in names:
        yield error_row("file", f"wrong schema: needs an 'html' or 'text' column, has {sorted(names)}")
        return
    wanted = [c for c in ("id", "url", "fetch_time", "html", "text") if c in names]
    end = None if count is None else start + count
    index = 0
    try:
        for batch in pf.iter_batches(columns=wanted, batch_size=1024):
            for row in batch.to_pylist():
                i = index
                index += 1
                if i < start:
                    continue
                if end is not None and i >= end:
                    return
                yield _row(row, i)
    except Exception as err:  # noqa: BLE001
        yield error_row(f"row-error:{index}", f"unreadable after row {index}: {err}")


def _row(row: dict, i: int) -> dict:
    html, text = row.get("html"), row.get("text")
    if isinstance(html, str):
        html = html.encode("utf-8")
    if html is None and not isinstance(text, str):
        return error_row(f"row:{i}", f"row {i}: both 'html' and 'text' are null")
    fetch_time = row.get("fetch_time")
    return {
        "record_id": str(row["id"]) if row.get("id") is not None else f"row:{i}",
        "url": row.get("url") if isinstance(row.get("url"), str) else None,
        "fetch_time": fetch_time if hasattr(fetch_time, "tzinfo") else None,
        "html": html,
        "http_charset": None,
        "text": text if html is None else None,
        "read_error": None,
    }

