"""The service's parts and how they connect: store, queue, scheduler, metrics, publisher, inbox.

`Service` owns them for the life of the process (the HTTP routes in app.py reach them through
it); `Settings` is what `refinery serve` passes in.
"""

from __future__ import annotations

import fcntl
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

from fastapi import HTTPException

from refinery.errors import ConfigError, RefineryError
from refinery.pipeline_files import available, resolve
from refinery.service.auth import TokenAuth
from refinery.service.inbox import InboxWatcher
from refinery.service.metrics import ServiceMetrics
from refinery.service.publisher import Publisher
from refinery.service.queue import BatchQueue
from refinery.service.scheduler import Scheduler
from refinery.service.sources import SourceResolver
from refinery.service.uploads import discard_unqueued_uploads, open_upload_dir
from refinery.store import CorpusStore

RESOLVE_THREADS = 4  # submissions resolving their sources at once (more wait; beyond twice that: 429)


@dataclass
class Settings:
    store: str
    input_roots: list[str]
    tokens: dict[str, str]
    address: str | None = None
    concurrency: int = 2
    max_body_bytes: int = 64 * 1024
    max_upload_bytes: int = 1 << 30
    max_queued: int = 100_000
    inbox: str | None = None
    inbox_pipeline: str = "web-en"
    inbox_poll_seconds: float = 2.0
    object_roots: list[str] = field(default_factory=list)
    sample_seconds: float = 2.0
    publish: str | None = None  # object-store URI (or path) training jobs read; see service/publisher.py
    publish_retry_seconds: float = 5.0
    min_free_bytes: int = 64 << 20  # /readyz is 503 below this much free space in the store


class Service:
    """Process-wide state shared by the routes."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.store = CorpusStore(settings.store)
        self._lockfile = open(self.store.state_dir / "service.lock", "a+")  # noqa: SIM115 - held for life
        try:
            fcntl.flock(self._lockfile, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            raise RefineryError(f"{self.store.root}: another refinery service is running on this store") from None
        self.uploads = open_upload_dir(self.store.state_dir)
        self.queue = BatchQueue(self.store.state_dir / "service.db")
        discard_unqueued_uploads(self.uploads, self.queue)
        self.auth = TokenAuth(settings.tokens)
        roots = list(settings.input_roots) + [str(self.uploads)]
        if settings.inbox:
            Path(settings.inbox).mkdir(parents=True, exist_ok=True)
            roots.append(settings.inbox)
        objects = None
        if settings.object_roots:
            from refinery.service.objects import ObjectSources

            objects = ObjectSources(settings.object_roots)
        self.resolver = SourceResolver(roots, objects)
        # Submissions resolve their sources here; each resolution is bounded in time (sources.py).
        self.resolve_pool = ThreadPoolExecutor(RESOLVE_THREADS, thread_name_prefix="refinery-resolve")
        self.resolving = threading.BoundedSemaphore(RESOLVE_THREADS * 2)
        self.metrics = ServiceMetrics(self.store, self.queue)
        self.scheduler = Scheduler(
            self.queue, self.store, self.metrics, self.resolver, settings.concurrency, settings.address,
        )
        self.publisher = (
            Publisher(self.store, settings.publish, settings.publish_retry_seconds, after=self.scheduler.ray_ready)
            if settings.publish
            else None
        )
        self.metrics.publisher = self.publisher
        self.scheduler.on_commit = self.publisher.wake if self.publisher else None
        self.inbox = (
            InboxWatcher(Path(settings.inbox), settings.inbox_pipeline, self.queue, self.resolver,
                         self.scheduler.wake, settings.inbox_poll_seconds)
            if settings.inbox
            else None
        )
        # (unix time, {stage: cumulative documents in}) samples for the status page's chart.
        self.samples: deque = deque(maxlen=300)
        self._stop = threading.Event()
        self._sampler = threading.Thread(target=self._sample_loop, name="refinery-sampler", daemon=True)

    def start(self) -> None:
        # Local Ray first, from this thread, while no other thread runs: its start-up adds
        # variables to the process environment, which must not happen while a thread reads it
        # from C (pyarrow's S3 does: SIGSEGV in getenv).  A cluster (--address) is reached from
        # the scheduler's thread instead (ray.init blocks for minutes while a cluster is down,
        # and the API must answer meanwhile); the publisher waits for Ray either way.
        if self.settings.address is None:
            self.scheduler.connect_ray()
        if self.publisher:
            self.publisher.start()  # catch-up first: commits made while the service was down
        self.scheduler.start()
        if self.inbox:
            self.inbox.start()
        self._sampler.start()

    def stop(self) -> None:
        self._stop.set()
        self.resolve_pool.shutdown(wait=False, cancel_futures=True)
        if self.inbox:
            self.inbox.stop()
        self.scheduler.stop()
        if self.publisher:
            self.publisher.stop()

    def _sample_loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self.metrics.live_snapshot()))
            self._stop.wait(self.settings.sample_seconds)

    def known_pipeline(self, name: str) -> None:
        names = available()
        if name not in names:
            raise HTTPException(422, f"unknown pipeline {name!r} (known: {', '.join(sorted(names)) or 'none'})")
        try:
            resolve(name)
        except ConfigError as err:
            raise HTTPException(422, f"pipeline {name!r} is invalid: {err}") from None

    def check_queue_room(self) -> None:
        if self.queue.counts()["queued"] >= self.settings.max_queued:
            raise HTTPException(429, f"queue full ({self.settings.max_queued} batches waiting); retry later")
