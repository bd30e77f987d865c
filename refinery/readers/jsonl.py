"""JSONL reader (.jsonl, .jsonl.gz, .jsonl.zst) with an `html` or `text` field per line."""

from __future__ import annotations

from refinery.readers.records import error_row

import gzip
import io
import json
from datetime import datetime, timezone
from typing import IO, Iterator

import zstandard

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
    if value is None:
        return None
    if isinstance(value, (int, float)):
        return datetime.fromtimestamp(value, tz=timezone.utc)
    try:
        t = datetime.fromisoformat(str(value).replace("Z", "+00:00"))
    except ValueError:
        return None
    return t if t.tzinfo else t.replace(tzinfo=timezone.utc)


def parse_line(line: bytes | int, line_no: int) -> dict:
    """One line (or the length of a line too long to read) -> a record or an error row."""
    record_id = f"line:{line_no}"
    if isinstance(line, int) or len(line) > MAX_LINE_BYTES:
        n = line if isinstance(line, int) else len(line)
        return error_row(record_id, f"line {line_no}: {n} bytes, longer than {MAX_LINE_BYTES}")
    try:
        obj = json.loads(line.decode("utf-8"))
    except UnicodeDecodeError as err:
        return error_row(record_id, f"line {line_no}: invalid UTF-8 at byte {err.start}")
    except json.JSONDecodeError as err:
        return error_row(record_id, f"line {line_no}: invalid JSON: {err.msg}")
    if not isinstance(obj, dict):
        return error_row(record_id, f"line {line_no}: expected a JSON object")
    html, text = obj.get("html"), obj.get("text")
    if not isinstance(html, str) and not isinstance(text, str):
        return error_row(record_id, f"line {line_no}: no string 'html' or 'text' field")
    rid = obj.get("id")
    return {
        "record_id": str(rid) if rid is not None else record_id,
        "url": obj.get("url") if isinstance(obj.get("url"), str) else None,
        "fetch_time": _parse_time(obj.get("fetch_time") or obj.get("date")),
        "html": html.encode("utf-8") if isinstance(html, str) else None,
        "http_charset": "utf-8" if isinstance(html, str) else None,
        "text": text if not isinstance(html, str) else None,
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
                    continue
                yield parse_line(line, index)
    except Exception as err:  # noqa: BLE001
        yield error_row(f"line-error:{line_no}", f"unreadable after line {line_no}: {err}")

