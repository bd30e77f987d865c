"""The inbox: a folder whose new input files become batches.

Polling, not inotify: it works on every filesystem (NFS, bind mounts).  A
file is submitted once it has kept the same size and mtime over two polls
(so a file still being copied in is not picked up half-written); each
(path, size, mtime) is recorded in the queue database, so a restart does not
submit a file twice, while a file replaced by a new version is a new batch.
Names starting with `.` are ignored, which lets writers copy to `.name` and
rename.
"""

from __future__ import annotations

import logging
import threading
import uuid
from pathlib import Path

from refinery.readers import detect_format
from refinery.service.queue import BatchQueue
from refinery.service.sources import SourceRefused, SourceResolver

log = logging.getLogger("refinery.service")


class InboxWatcher:
    def __init__(
        self,
        folder: Path,
        pipeline: str,
        queue: BatchQueue,
        resolver: SourceResolver,
        on_submit=None,
        poll_seconds: float = 2.0,
        priority: int = 0,
    ) -> None:
        self.folder = Path(folder).resolve()
        self.pipeline = pipeline
        self.queue = queue
        self.resolver = resolver
        self.on_submit = on_submit
        self.poll_seconds = poll_seconds
        self.priority = priority
        self._seen: dict[str, tuple[int, int]] = {}
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, name="refinery-inbox", daemon=True)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(5)

    def poll_once(self) -> list[str]:
        """One scan; returns the ids of batches submitted."""
        submitted = []
        current: dict[str, tuple[int, int]] = {}
        for p in sorted(self.folder.iterdir()) if self.folder.is_dir() else []:
            if p.name.startswith(".") or not p.is_file() or detect_format(p) is None:
                continue
            st = p.stat()
            sig = (st.st_size, st.st_mtime_ns)
            current[str(p)] = sig
            if self._seen.get(str(p)) != sig:
                continue  # new or still changing: wait for a stable second look
            bid = uuid.uuid4().hex
            if not self.queue.inbox_claim(str(p), sig[0], sig[1], bid):
                continue
            try:
                files = self.resolver.resolve(str(p))
            except SourceRefused as err:
                log.error("inbox: %s refused: %s", p, err.reason)
                continue
            self.queue.submit(
                str(p), files, self.pipeline, self.priority, {"inbox": p.name}, origin="inbox", batch_id=bid
            )
            submitted.append(bid)
        self._seen = current
        if submitted and self.on_submit:
            self.on_submit()
        return submitted

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                self.poll_once()
            except Exception as err:  # noqa: BLE001 - the watcher must outlive a bad file
                log.error("inbox: scan failed: %s", err)
            self._stop.wait(self.poll_seconds)
