"""The row shape readers yield, and the error row for records that cannot be read."""

from __future__ import annotations


def error_row(record_id: str, message: str, url: str | None = None) -> dict:
    """A record that could not be read: it flows through the pipeline as a `read` drop."""
    return {
        "record_id": record_id,
        "url": url,
        "fetch_time": None,
        "html": None,
        "http_charset": None,
        "text": None,
        "read_error": message,
    }
