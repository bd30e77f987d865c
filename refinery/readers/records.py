"""The row shape readers yield, and the error row for records that cannot be read.

A record that cannot be read becomes one error row (a `read` reject with a
short, plain reason) and the next record is read: one bad record never costs
the rest of its work unit or its batch.
"""

from __future__ import annotations

MAX_REASON_CHARS = 300


def error_row(record_id: str, message: str, url: str | None = None) -> dict:
    """A record that could not be read: it flows through the pipeline as a `read` drop."""
    return {
        "record_id": valid_text(record_id),
        "url": valid_text(url) if url is not None else None,
        "fetch_time": None,
        "html": None,
        "http_charset": None,
        "text": None,
        "read_error": valid_text(message)[:MAX_REASON_CHARS],
    }


def valid_text(value: str) -> str:
    """`value` with lone surrogates (which no UTF-8 encoder accepts) written as `\\udXXX` escapes."""
    try:
        value.encode("utf-8")
        return value
    except UnicodeEncodeError:
        return value.encode("utf-8", "backslashreplace").decode("utf-8")


def unicode_problem(value: str, field: str) -> str | None:
    """Why `value` cannot be stored as UTF-8 text (a lone surrogate), or None."""
    try:
        value.encode("utf-8")
    except UnicodeEncodeError as err:
        return f"'{field}' is not valid Unicode (lone surrogate at character {err.start})"
    return None


def short_reason(err: BaseException) -> str:
    """One plain line for an exception raised while reading one record."""
    if isinstance(err, RecursionError):
        return "nested too deeply"
    if isinstance(err, MemoryError):
        return "too large to read"
    text = str(err).strip().splitlines()[0] if str(err).strip() else ""
    return f"{type(err).__name__}: {text}" if text else type(err).__name__
