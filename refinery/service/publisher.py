"""The service's publisher: keeps the object-store corpus (`--publish URI`) caught up with the store.

A thin loop over `refinery.corpus.mirror.publish_store`.  It runs in its own
thread so an object store that is slow or down never fails or blocks a
batch: batches commit locally (the source of truth) and the publisher
catches up.  It publishes at startup, right after each commit (the scheduler
calls `wake()`), and while the destination lags it retries with a growing
delay (`retry_seconds` doubling up to 12 times that).  Between commits
it only lists the local manifest directory, so an idle service costs the
object store nothing.
"""

from __future__ import annotations

import logging
import threading
import time
from typing import Any

from refinery.corpus.mirror import publish_store
from refinery.service.loop import BackgroundLoop
from refinery.store import CorpusStore

log = logging.getLogger("refinery.service")


class Publisher(BackgroundLoop):
    """`wake()` after a commit publishes it now rather than at the next poll."""

    def __init__(
        self,
        store: CorpusStore,
        uri: str,
        retry_seconds: float = 5.0,
        poll_seconds: float = 5.0,
        storage_options: dict[str, Any] | None = None,
        after: threading.Event | None = None,
    ) -> None:
        super().__init__("refinery-publisher")
        # Publish only once this is set (the service passes "Ray is up"): Ray's start-up adds
        # environment variables, and S3 calls must not read the environment meanwhile.
        self.after = after
        self.store = store
        self.uri = uri
        self.retry_seconds = retry_seconds
        self.max_retry_seconds = 12 * retry_seconds
        self.poll_seconds = poll_seconds
        self.storage_options = storage_options or {}
        self.published: int | None = None  # destination's latest commit; None until first reached
        self.errors = 0
        self.last_error: str | None = None
        self.last_success: float | None = None
        self._delay = retry_seconds  # the next wait after a failure; doubles up to max_retry_seconds

    def local_latest(self) -> int:
        nums = self.store.commit_numbers()
        return nums[-1] if nums else 0

    def lag(self) -> int | None:
        """Commits the destination lacks (None until the destination has been reached once)."""
        if self.published is None:
            return None
        return max(0, self.local_latest() - self.published)

    def publish_once(self) -> bool:
        """One catch-up publish; True on success.  Failures are counted and logged, never raised."""
        try:
            result = publish_store(self.store, self.uri, **self.storage_options)
        except Exception as err:  # noqa: BLE001 - an unreachable or broken destination must not stop the service
            self.errors += 1
            self.last_error = str(err)
            log.error("publishing to %s failed (will retry; batches stay committed locally): %s", self.uri, err)
            return False
        self.published = result.latest
        self.last_error = None
        self.last_success = time.time()
        if result.published:
            log.info("published commit(s) %s to %s", result.published, self.uri)
        return True

    def _run_once(self) -> float | None:
        if self.after is not None and not self.after.is_set():
            return 0.5
        if self.published is None or self.local_latest() > self.published:
            if self.publish_once():
                self._delay = self.retry_seconds
                return None  # a commit may have landed meanwhile: check again at once
            wait = self._delay
            self._delay = min(self._delay * 2, self.max_retry_seconds)
            return wait
        return self.poll_seconds
