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


def fsync_file(path: Path | str) -> None:
    """Make a file's bytes durable (one written and closed by someone else: a Parquet part)."""
    with open(path, "rb+") as f:
        os.fsync(f.fileno())


def replace_durably(tmp: Path, final: Path) -> None:
    """fsync `tmp`, rename it to `final` (replacing any file there), fsync the directory."""
    fsync_file(tmp)
    os.replace(tmp, final)
    fsync_dir(final.parent)


def write_text_durably(final: Path, text: str) -> None:
    """`text` as `final`, through `<final>.tmp` in the same directory (replace_durably)."""
    tmp = final.with_name(final.name + ".tmp")
    tmp.write_text(text, encoding="utf-8")
    replace_durably(tmp, final)


def move_durably(src: Path, dst: Path) -> None:
    """Rename a durable file to `dst` on the same filesystem, then fsync both directories (the new
    entry, and the old one's removal along with any directory created in it)."""
    os.rename(src, dst)
    fsync_dir(dst.parent)
    if src.parent != dst.parent:
        fsync_dir(src.parent)
