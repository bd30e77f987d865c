"""Opening data files Refinery ships or is given (lists, evaluation sets) whatever their name says."""

from __future__ import annotations

import gzip
import io
from pathlib import Path


def open_maybe_gzip(path: Path) -> io.BufferedIOBase:
    """The file's bytes, gunzipped when it starts with the gzip magic (a name need not end in .gz).
    Raises OSError when the file cannot be opened: callers name the file in their own error."""
    raw = open(path, "rb")
    head = raw.read(2)
    raw.seek(0)
    return gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b" else raw
