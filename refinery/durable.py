"""Durable, atomic file placement: what the commit protocol relies on (docs/store.md).

A file becomes visible under its final name only complete (rename of a temporary), and both the
file's bytes and the directory entry are on disk before the caller goes on (fsync of the file,
then of the directory), so a crash or power loss leaves either the old state or the new one."""

from __future__ import annotations

import os
from pathlib import Path


def fsync_dir(path: Path) -> None:
    """Make a directory's entries (a rename into it) durable."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def replace_durably(tmp: Path, final: Path) -> None:
    """fsync `tmp`, rename it to `final` (replacing any file there), fsync the directory."""
    with open(tmp, "rb+") as f:
        os.fsync(f.fileno())
    os.replace(tmp, final)
    fsync_dir(final.parent)
