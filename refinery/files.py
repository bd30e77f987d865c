"""Data files Refinery ships or is given (lists, evaluation sets, model-build inputs): naming them
as `FORMAT:FILE` and opening them whatever their name says."""

from __future__ import annotations

import gzip
import io
from pathlib import Path

from refinery.errors import InputError


def open_maybe_gzip(path: Path) -> io.BufferedIOBase:
    """The file's bytes, gunzipped when it starts with the gzip magic (a name need not end in .gz).
    Raises OSError when the file cannot be opened: callers name the file in their own error."""
    raw = open(path, "rb")
    head = raw.read(2)
    raw.seek(0)
    return gzip.GzipFile(fileobj=raw) if head == b"\x1f\x8b" else raw


def parse_format_spec(spec: str, formats: tuple[str, ...], option: str, default: str | None = None) -> tuple[str, str]:
    """`FORMAT:REST` with FORMAT one of `formats` as (FORMAT, REST): the model builds' inputs.

    A spec without one of those formats is (`default`, spec) when there is a default (a plain file
    name), else an InputError naming `option`.  Callers check the file itself (their own errors)."""
    fmt, sep, rest = spec.partition(":")
    if sep and fmt in formats:
        return fmt, rest
    if default is not None:
        return default, spec
    raise InputError(f"{option} {spec!r}: expected FORMAT:FILE with FORMAT one of {', '.join(formats)}")
