"""Whether the store can take writes, and what to answer when a write fails for lack of room.

A full or read-only store is the operator's problem, not the client's: the API
answers 507 (full) or 503 (not writable) with a JSON body saying which, and
`/readyz` reports it before any batch fails on it.
"""

from __future__ import annotations

import errno
import os
import sqlite3
import uuid
from pathlib import Path

FULL_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EFBIG}
READ_ONLY_ERRNOS = {errno.EROFS, errno.EACCES, errno.EPERM}


def classify(exc: BaseException) -> tuple[int, str] | None:
    """(HTTP status, reason) for a storage failure, or None when `exc` is not one."""
    if isinstance(exc, OSError) and exc.errno in FULL_ERRNOS:
        return 507, f"the store is full ({os.strerror(exc.errno)}): free space or add capacity, then retry"
    if isinstance(exc, OSError) and exc.errno in READ_ONLY_ERRNOS:
        return 503, f"the store is not writable ({os.strerror(exc.errno)}): retry once it is"
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        if "full" in text:
            return 507, f"the store is full (queue database: {exc}): free space, then retry"
        if "readonly" in text or "read-only" in text:
            return 503, f"the store is not writable (queue database: {exc}): retry once it is"
    return None


def check(dirs: list[Path], min_free_bytes: int) -> dict[str, bool]:
    """`store_writable`: a file can be created and written in each of `dirs` (the store's own
    folders the service writes to); `store_has_room`: at least `min_free_bytes` free in each for
    unprivileged writers (statvfs f_bavail)."""
    writable = all(_can_write(d) for d in dirs)
    try:
        room = all(os.statvfs(d).f_bavail * os.statvfs(d).f_frsize >= min_free_bytes for d in dirs)
    except OSError:
        room = False
    return {"store_writable": writable, "store_has_room": room}


def _can_write(root: Path) -> bool:
    probe = root / f".readyz-{uuid.uuid4().hex}"
    try:
        with probe.open("wb") as f:
            f.write(b"x")
            f.flush()
            os.fsync(f.fileno())
        return True
    except OSError:
        return False
    finally:
        try:
            probe.unlink()
        except OSError:
            pass
