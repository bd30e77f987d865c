"""Parquet reader: a `html` (string or binary) or `text` column, optional `id`, `url`, `fetch_time`."""

from __future__ import annotations

from typing import Iterator

import pyarrow as pa
import pyarrow.parquet as pq

from refinery.readers.jsonl import unread_rows
from refinery.readers.records import error_row, short_reason, unicode_problem

ROWS_PER_READ = 1024


def count_records(path: str) -> int:
    try:
        return pq.ParquetFile(path).metadata.num_rows
    except Exception:  # noqa: BLE001 - reported by iter_records
        return 0


def _type_problem(schema: pa.Schema) -> str | None:
    """Why the content columns cannot be read as documents, or None: `html` must hold strings or
    bytes, `text` strings (a column of another type is a producer bug that no row escapes)."""
    allowed = {
        "html": (pa.types.is_string, pa.types.is_large_string, pa.types.is_binary, pa.types.is_large_binary,
                 pa.types.is_null),
        "text": (pa.types.is_string, pa.types.is_large_string, pa.types.is_null),
    }
    for name, checks in allowed.items():
        if name in schema.names:
            t = schema.field(name).type
            if not any(check(t) for check in checks):
                kinds = "string or binary" if name == "html" else "string"
                return f"column '{name}' is {t}, expected {kinds}"
    return None


def iter_records(path: str, start: int, count: int | None) -> Iterator[dict]:
    try:
        pf = pq.ParquetFile(path)
    except Exception as err:  # noqa: BLE001
        yield error_row("file", f"not a readable Parquet file: {short_reason(err)}")
        return
    names = set(pf.schema_arrow.names)
    if "html" not in names and "text" not in names:
        yield error_row("file", f"wrong schema: needs an 'html' or 'text' column, has {sorted(names)}")
        return
    end = pf.metadata.num_rows if count is None else min(start + count, pf.metadata.num_rows)
    if problem := _type_problem(pf.schema_arrow):
        for i in range(start, end):
            yield error_row(f"row:{i}", f"row {i}: {problem}")
        return
    wanted = [c for c in ("id", "url", "fetch_time", "html", "text") if c in names]
    index = 0
    try:
        for batch in pf.iter_batches(columns=wanted, batch_size=ROWS_PER_READ):
            first, index = index, index + batch.num_rows
            if index <= start:
                continue
            for i, row in enumerate(_rows(batch, first), start=first):
                if i >= end:
                    return
                if i >= start:
                    yield row
            if index >= end:
                return
    except Exception as err:  # noqa: BLE001 - the file broke mid-way (corrupt page, I/O error)
        first_unread = max(start, index)
        yield from unread_rows("row", first_unread, end if count is not None else None,
                               f"unreadable from row {first_unread}: {short_reason(err)}")


def _rows(batch: pa.RecordBatch, first: int) -> Iterator[dict]:
    """Records of `batch` (row `first` onwards); a row that cannot be converted (invalid UTF-8 in a
    string column, a timestamp out of range, ...) is that row's error row."""
    try:
        rows: list[dict] | None = batch.to_pylist()
    except Exception:  # noqa: BLE001 - find the bad rows one by one
        rows = None
    for j in range(batch.num_rows):
        i = first + j
        try:
            yield _row(rows[j] if rows is not None else batch.slice(j, 1).to_pylist()[0], i)
        except Exception as err:  # noqa: BLE001
            yield error_row(f"row:{i}", f"row {i}: {short_reason(err)}")


def _row(row: dict, i: int) -> dict:
    html, text = row.get("html"), row.get("text")
    if isinstance(html, str):
        try:
            html = html.encode("utf-8")
        except UnicodeEncodeError as err:
            return error_row(f"row:{i}", f"row {i}: 'html' is not valid Unicode (lone surrogate at character {err.start})")
    if html is None and not isinstance(text, str):
        return error_row(f"row:{i}", f"row {i}: both 'html' and 'text' are null")
    rid = str(row["id"]) if row.get("id") is not None else None
    url = row.get("url") if isinstance(row.get("url"), str) else None
    for name, value in (("id", rid), ("url", url)):
        if value is not None and (problem := unicode_problem(value, name)):
            return error_row(f"row:{i}", f"row {i}: {problem}")
    fetch_time = row.get("fetch_time")
    return {
        "record_id": rid if rid is not None else f"row:{i}",
        "url": url,
        "fetch_time": fetch_time if hasattr(fetch_time, "tzinfo") else None,
        "html": html,
        "http_charset": None,
        "text": text if html is None else None,
        "read_error": None,
    }
