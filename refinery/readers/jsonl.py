"""JSONL reader (.jsonl, .jsonl.gz, .jsonl.zst) with an `html` or `text` field per line."""

from __future__ import annotations

import gzip
import io
import json
import math
from datetime import datetime, timezone
from typing import IO, Iterator

import zstandard

from refinery.readers.records import error_row, short_reason, unicode_problem

MAX_LINE_BYTES = 64 * 1024 * 1024  # memory guard: a longer line is skipped unread, reported


def _lines(f: IO[bytes]) -> Iterator[bytes | int]:
    """Lines of at most MAX_LINE_BYTES; a longer one yields its length instead, never held whole."""
    while True:
        line = f.readline(MAX_LINE_BYTES + 1)
        if not line:
            return
        if len(line) > MAX_LINE_BYTES and not line.endswith(b"\n"):
            n = len(line)
            while chunk := f.readline(1 << 20):
                n += len(chunk)
                if chunk.endswith(b"\n"):
                    break
            yield n
        else:
            yield line


def _open(path: str) -> IO[bytes]:
    raw = open(path, "rb")
    if path.endswith(".gz"):
        return gzip.GzipFile(fileobj=raw)  # type: ignore[return-value]
    if path.endswith(".zst"):
        return io.BufferedReader(zstandard.ZstdDecompressor().stream_reader(raw, closefd=True))
    return raw


def count_records(path: str) -> int:
    n = 0
    try:
        with _open(path) as f:
            for _ in _lines(f):
                n += 1
    except Exception:  # noqa: BLE001 - reported by iter_records
        pass
    return n


def _parse_time(value) -> datetime | None:
    """A fetch time from epoch seconds or ISO 8601; an unparsable string is no time (None), a
    number no calendar can hold (1e20, NaN) is an error."""
    if value is None:
        return None
    if isinstance(value, bool):
        raise ValueError(f"'fetch_time' must be a number or an ISO 8601 string, not {value}")
    if isinstance(value, (int, float)):
        if isinstance(value, float) and not math.isfinite(value):
            raise ValueError(f"'fetch_time' is {value}")
        try:
            return datetime.fromtimestamp(value, tz=timezone.utc)
        except (OverflowError, OSError, ValueError):
            raise ValueError(f"'fetch_time' {value} is out of range") from None
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def parse_line(line: bytes | int, line_no: int) -> dict:
    """One line (or the length of a line too long to read) -> a record or an error row.

    Any failure inside the line (deep nesting, lone surrogates, an impossible time)
    is that line's error row: the next line is read as usual."""
    record_id = f"line:{line_no}"
    if isinstance(line, int) or len(line) > MAX_LINE_BYTES:
        n = line if isinstance(line, int) else len(line)
        return error_row(record_id, f"line {line_no}: {n} bytes, longer than {MAX_LINE_BYTES}")
    try:
        return _record(line, line_no, record_id)
    except UnicodeDecodeError as err:
        return error_row(record_id, f"line {line_no}: invalid UTF-8 at byte {err.start}")
    except json.JSONDecodeError as err:
        return error_row(record_id, f"line {line_no}: invalid JSON: {err.msg}")
    except Exception as err:  # noqa: BLE001 - whatever one line does, it costs only that line
        return error_row(record_id, f"line {line_no}: {short_reason(err)}")


def _record(line: bytes, line_no: int, record_id: str) -> dict:
    obj = json.loads(line.decode("utf-8"))
    if not isinstance(obj, dict):
        return error_row(record_id, f"line {line_no}: expected a JSON object")
    html, text = obj.get("html"), obj.get("text")
    if not isinstance(html, str) and not isinstance(text, str):
        return error_row(record_id, f"line {line_no}: no string 'html' or 'text' field")
    rid = obj.get("id")
    url = obj.get("url") if isinstance(obj.get("url"), str) else None
    rid = str(rid) if rid is not None else None
    html_bytes = None
    if isinstance(html, str):
        try:
            html_bytes = html.encode("utf-8")
        except UnicodeEncodeError as err:
            return error_row(record_id, f"line {line_no}: 'html' is not valid Unicode (lone surrogate at "
                                        f"character {err.start})")
    for name, value in (("text", None if html_bytes is not None else text), ("url", url), ("id", rid)):
        if value is not None and (problem := unicode_problem(value, name)):
            return error_row(record_id, f"line {line_no}: {problem}")
    return {
        "record_id": rid if rid is not None else record_id,
        "url": url,
        "fetch_time": _parse_time(obj.get("fetch_time") or obj.get("date")),
        "html": html_bytes,
        "http_charset": "utf-8" if html_bytes is not None else None,
        "text": text if html_bytes is None else None,
        "read_error": None,
    }


def iter_records(path: str, start: int, count: int | None) -> Iterator[dict]:
    end = None if count is None else start + count
    line_no = start
    try:
        with _open(path) as f:
            for index, line in enumerate(_lines(f)):
                if index < start:
                    continue
                if end is not None and index >= end:
                    return
                line_no = index
                if isinstance(line, bytes) and not line.strip():
                    line_no = index + 1
                    continue
                yield parse_line(line, index)
                line_no = index + 1
    except Exception as err:  # noqa: BLE001 - the stream itself broke (corrupt gzip/zstd, I/O error)
        yield from unread_rows("line", line_no, end, f"unreadable from line {line_no}: {short_reason(err)}")


def unread_rows(kind: str, first: int, end: int | None, reason: str) -> Iterator[dict]:
    """Error rows for records a unit planned but could not read: one per record when the unit's
    end is known (so its count still adds up), else one for the rest of the file."""
    if end is None or end <= first:
        yield error_row(f"{kind}-error:{first}", reason)
        return
    missing = end - first
    for i in range(first, end):
        yield error_row(f"{kind}:{i}", f"{reason} ({missing} records of this unit not read)")
