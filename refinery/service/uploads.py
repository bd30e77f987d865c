"""Upload storage: WARC files sent in a request body, kept under `<store>/state/uploads/<batch id>/`.

A body is streamed to a `.tmp-*` file (bounded, fsynced), checked to be a WARC, then moved
durably into a directory named after the batch it becomes; a refused or failed upload leaves
nothing behind, and the service removes at start what a crash left (temporary files, stored
uploads never queued).
"""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import uuid
import zlib
from pathlib import Path

from fastapi import HTTPException, Request

from refinery.durable import move_durably
from refinery.readers import detect_format

UPLOAD_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,200}$")
UPLOAD_FORMATS = ("warc",)


def open_upload_dir(state_dir: Path) -> Path:
    """The uploads directory, without the temporary files of uploads cut short by a crash."""
    uploads = state_dir / "uploads"
    uploads.mkdir(exist_ok=True)
    for leftover in uploads.glob(".tmp-*"):
        leftover.unlink(missing_ok=True)
    return uploads


def discard_unqueued_uploads(uploads: Path, queue) -> None:
    """Remove uploads stored while the service died before queueing them."""
    for d in uploads.iterdir():
        if d.is_dir() and queue.get(d.name) is None:
            shutil.rmtree(d, ignore_errors=True)


def check_upload_name(filename: str) -> None:
    if not UPLOAD_NAME.match(filename) or detect_format(Path(filename)) not in UPLOAD_FORMATS:
        raise HTTPException(400, f"filename {filename!r}: expected a plain name ending in .warc or .warc.gz")


async def receive_upload(request: Request, uploads: Path, filename: str, limit: int) -> tuple[str, Path, int]:
    """Store the request body as `uploads/<batch id>/<filename>`: (batch id, path, bytes).

    Refuses (413) a body over `limit` bytes, (400) an empty one or one that is not a WARC."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise HTTPException(413, f"upload of {declared} bytes exceeds the limit of {limit} bytes")
    tmp = uploads / f".tmp-{uuid.uuid4().hex}"
    total = 0
    try:
        with tmp.open("wb") as f:
            async for chunk in request.stream():
                total += len(chunk)
                if total > limit:
                    raise HTTPException(413, f"upload exceeds the limit of {limit} bytes")
                await asyncio.to_thread(f.write, chunk)  # disk writes off the event loop
            f.flush()
            await asyncio.to_thread(os.fsync, f.fileno())
        if total == 0:
            raise HTTPException(400, "empty upload")
        if not looks_like_warc(tmp):
            raise HTTPException(400, f"{filename}: not a WARC file (no WARC/ header)")
        bid = uuid.uuid4().hex
        final_dir = uploads / bid
        final_dir.mkdir()
        final = final_dir / filename
        await asyncio.to_thread(move_durably, tmp, final)
    except BaseException:
        tmp.unlink(missing_ok=True)
        raise
    return bid, final, total


def looks_like_warc(path: Path) -> bool:
    with path.open("rb") as f:
        head = f.read(64 * 1024)
    if head[:2] == b"\x1f\x8b":
        try:
            head = zlib.decompressobj(16 + zlib.MAX_WBITS).decompress(head, 16)
        except zlib.error:
            return False
    return head.startswith(b"WARC/")
