"""WARC reader (fastwarc): HTML responses only, corrupt records reported, not fatal."""

from __future__ import annotations

import gzip
import zlib
from typing import Iterator

from fastwarc.warc import ArchiveIterator, WarcRecordType

from refinery.readers.records import error_row, short_reason

_HTML_TYPES = ("text/html", "application/xhtml+xml")
MAX_PAYLOAD_BYTES = 64 * 1024 * 1024  # memory guard: a larger record is reported, never read whole


def _iterator(f, parse_http: bool) -> ArchiveIterator:
    return ArchiveIterator(f, record_types=WarcRecordType.any_type, parse_http=parse_http)


def scan(path: str) -> tuple[int, list[int] | None]:
    """(number of records, byte offset of each record or None).

    Offsets let a work unit seek straight to its first record instead of parsing every
    record before it (for small units that doubled the cost of reading).  They are kept only
    when every record starts at a place a reader can start from: a gzip member (the usual
    record-at-a-time .warc.gz) or `WARC/` in an uncompressed file; a file gzipped as one
    stream gets None and is read from the start."""
    offsets: list[int] = []
    try:
        with open(path, "rb") as f:
            for record in _iterator(f, parse_http=False):
                offsets.append(record.stream_pos)
    except Exception:  # noqa: BLE001 - the reading task reports the error per record
        pass
    return len(offsets), (offsets if _seekable(path, offsets) else None)


def _seekable(path: str, offsets: list[int]) -> bool:
    if not offsets:
        return False
    try:
        with open(path, "rb") as f:
            magic = f.read(2)
            expected = b"\x1f\x8b" if magic == b"\x1f\x8b" else b"WARC/"
            for pos in offsets:
                f.seek(pos)
                if f.read(len(expected)) != expected:
                    return False
    except OSError:
        return False
    return True


def count_records(path: str) -> int:
    return scan(path)[0]


def _is_html(record) -> bool:
    ctype = (record.http_headers.get("Content-Type") or "").lower() if record.http_headers else ""
    if ctype:
        return any(t in ctype for t in _HTML_TYPES)
    return False


def iter_records(path: str, start: int, count: int | None, offset: int | None = None) -> Iterator[dict]:
    """Records start .. start+count-1; `offset` (from scan()) is the byte offset of record `start`."""
    end = None if count is None else start + count
    first = start if offset is not None else 0
    index = first - 1
    try:
        with open(path, "rb") as f:
            if offset is not None:
                f.seek(offset)
            for index, record in enumerate(_iterator(f, parse_http=True), start=first):
                if index < start:
                    continue
                if end is not None and index >= end:
                    return
                record_id, url = f"offset:{record.stream_pos}", None
                try:
                    if record.record_type != WarcRecordType.response:
                        continue
                    record_id = record.record_id or record_id
                    url = record.headers.get("WARC-Target-URI")
                    if not record.is_http:
                        continue
                    if record.http_headers is None or not _is_html(record):
                        continue
                    status = record.http_headers.status_code
                    if status is not None and status != 200:
                        continue
                    payload = record.reader.read(MAX_PAYLOAD_BYTES + 1)
                    if len(payload) > MAX_PAYLOAD_BYTES:
                        yield error_row(record_id, f"payload over {MAX_PAYLOAD_BYTES} bytes", url)
                        continue
                    yield {
                        "record_id": record_id,
                        "url": url.strip("<>") if url else None,
                        "fetch_time": record.record_date,
                        "html": payload,
                        "http_charset": record.http_charset,
                        "text": None,
                        "read_error": None,
                    }
                except Exception as err:  # noqa: BLE001 - one record's failure costs only that record
                    yield error_row(record_id, f"corrupt record: {short_reason(err)}", url)
    except Exception as err:  # noqa: BLE001 - a broken stream ends the file, reported once
        yield error_row(f"offset-error:{index + 1}", f"unreadable WARC after record {index + 1}: {short_reason(err)}")
        return
    if count is None and start == 0 and index == -1:
        # Not one record parsed in a non-empty file: not a WARC (ARC, HTML, binary, ...).
        yield error_row("file", "no WARC record found: not a WARC file")
        return
    if count is None and (problem := gzip_problem(path)):
        # fastwarc stops quietly at a truncated member: the last unit reports it.
        yield error_row(f"offset-error:{index + 1}", f"truncated or corrupt WARC after record {index + 1}: {problem}")


def gzip_problem(path: str) -> str | None:
    """Why a .gz file does not decompress to its end, or None when it does."""
    if not path.endswith(".gz"):
        return None
    try:
        with gzip.open(path, "rb") as f:
            while f.read(1 << 22):
                pass
    except (OSError, EOFError, zlib.error) as err:
        return str(err)
    return None

