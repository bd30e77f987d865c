"""The always-on scheduler: claims queued batches and runs them on Ray, a few at a time.

One background thread polls the queue; each claimed batch runs in its own
worker thread calling `refinery.batch.run_batch` (Ray does the parallel work;
the threads only wait on it).  At most `concurrency` batches run at once, in
priority order.  Memory stays bounded whatever the queue length: the queue is
in SQLite, and a running batch holds only per-unit metadata.

Exactly once: a batch is `running` in the database before any work starts,
and becomes `committed` only after the store commit; if the service dies in
between, startup requeues it and run_batch's batch key finds the existing
commit (or there is none and the batch is re-run and committed once).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
import traceback
from contextlib import contextmanager
from typing import Callable

from refinery import executor
from refinery.batch import run_batch
from refinery.counters import Counters
from refinery.errors import RefineryError, one_line
from refinery.pipeline_files import resolve
from refinery.service.events import Throttle, event
from refinery.service.loop import BackgroundLoop
from refinery.service.metrics import ServiceMetrics
from refinery.service.queue import QueuedBatch, BatchQueue
from refinery.service.sources import SourceRefused, SourceResolver
from refinery.store import CorpusStore

log = logging.getLogger("refinery.service")


class Scheduler(BackgroundLoop):
    """`wake()` on submit/retry starts a new batch without waiting for the next poll."""

    def __init__(
        self,
        queue: BatchQueue,
        store: CorpusStore,
        metrics: ServiceMetrics,
        resolver: SourceResolver,
        concurrency: int = 2,
        address: str | None = None,
        poll_seconds: float = 0.5,
        on_commit: Callable[[], None] | None = None,
    ) -> None:
        super().__init__("refinery-scheduler")
        self.queue = queue
        self.store = store
        self.metrics = metrics
        self.resolver = resolver
        self.concurrency = max(1, concurrency)
        self.address = address
        self.poll_seconds = poll_seconds
        self.on_commit = on_commit  # the publisher's wake(): publish each commit right after it is made
        self.ray_ready = threading.Event()
        self.ray_error: str | None = None
        self._running: dict[str, threading.Thread] = {}
        self._lock = threading.Lock()

    # -- lifecycle ---------------------------------------------------------------
    def start(self) -> None:
        requeued = self.queue.requeue_running()
        if requeued:
            log.warning("requeued %d batch(es) that were running when the service stopped: %s", len(requeued), requeued)
        super().start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop claiming batches.  A batch still running stays `running` in the queue (its units'
        work is not committed) and is requeued when the service starts again: logged as parked.
        Its thread sees the stop at its next cancel check (every 0.5 s while units run) and is
        waited for: a thread still inside Ray when the process exits races Ray's own shutdown,
        and Ray then ends the process with status 1 (`docker stop` read as a crash)."""
        with self._lock:
            alive = {b: t for b, t in self._running.items() if t.is_alive()}
        for bid in alive:
            event("parked", bid, reason="service stopping; requeued at the next start")
        super().stop(timeout)
        deadline = time.monotonic() + timeout
        for thread in alive.values():
            thread.join(max(0.0, deadline - time.monotonic()))

    def running_ids(self) -> list[str]:
        with self._lock:
            return list(self._running)

    # -- loop --------------------------------------------------------------------
    def connect_ray(self) -> bool:
        """One attempt to start (local) or reach (cluster) Ray; True when it is up.

        The service makes the first attempt itself, before any of its threads starts
        (Service.start): starting Ray adds variables to the process environment, and
        adding one while another thread reads the environment from C (the AWS SDK under
        pyarrow's S3 does) can crash the process in getenv."""
        if self.ray_ready.is_set():
            return True
        try:
            with _keep_sigterm_handler():
                executor.ensure_ray(self.address)
        except Exception as err:  # noqa: BLE001 - reported by /readyz, retried every 5 s
            self.ray_error = f"cannot start or reach Ray: {err}"
            log.error(self.ray_error)
            return False
        self.ray_error = None
        self.ray_ready.set()
        return True

    def _run_once(self) -> float | None:
        if not self.connect_ray():
            self._stop.wait(5)  # only stop cuts this short, not wake
            return None
        with self._lock:
            for bid in [b for b, t in self._running.items() if not t.is_alive()]:
                del self._running[bid]
            free = self.concurrency - len(self._running)
        while free > 0 and not self._stop.is_set():
            batch = self.queue.claim_next()
            if batch is None:
                break
            t = threading.Thread(target=self._run, args=(batch,), name=f"batch-{batch.id[:8]}", daemon=True)
            with self._lock:
                self._running[batch.id] = t
            t.start()
            free -= 1
        return self.poll_seconds

    def _log_end(self, bid: str, state: str, units_done: int, seconds: float) -> None:
        """The `batch failed` / `batch cancelled` line, with the error as stored on the batch."""
        if state == "committed":
            return
        b = self.queue.get(bid)
        if b is None or b.state not in ("failed", "cancelled"):
            return
        if b.state == "failed":
            event("failed", bid, logging.ERROR, error=b.error, seconds=round(seconds, 1))
        else:
            event("cancelled", bid, units_done=units_done, seconds=round(seconds, 1))

    def _localize(self, uri: str) -> str:
        """Object-store inputs are downloaded into <store>/state/fetched first (readers read files)."""
        if not uri.startswith("s3://"):
            return uri
        try:
            return self.resolver.objects.fetch(uri, self.store.state_dir / "fetched")
        except OSError as err:
            raise RefineryError(f"{uri}: cannot fetch: {err}") from None

    def _run(self, batch: QueuedBatch) -> None:
        start = time.time()
        state = "failed"
        done = {"units": 0, "docs": 0}
        merged = Counters()  # this batch's finished units so far (progress, and the counters of a failed batch)
        pipeline = batch.pipeline
        last_write = [0.0]

        planned = {"units": 0}
        progress_due = Throttle()
        event("started", batch.id, pipeline=pipeline, attempt=batch.attempts, inputs=len(batch.inputs))

        def on_plan(n: int) -> None:
            planned["units"] = n
            self.queue.set_plan(batch.id, n)
            event("planned", batch.id, units=n)
            progress_due()  # the first progress line comes one period after the plan

        def on_unit_done(result: executor.UnitResult) -> None:
            done["units"] += 1
            done["docs"] += result.docs_in
            if progress_due() and done["units"] < planned["units"]:
                event("progress", batch.id, units_done=done["units"], units_total=planned["units"], documents=done["docs"])
            merged.merge(result.counters)
            self.metrics.unit_done(pipeline, result.counters)
            now = time.time()
            if now - last_write[0] > 0.2:  # bound database writes on batches of tiny units
                last_write[0] = now
                self.queue.set_progress(batch.id, done["units"], done["docs"], merged.to_dict())

        def should_cancel() -> bool:
            """An operator's cancel, or the service stopping (then the batch is parked, not cancelled)."""
            return self._stop.is_set() or self.queue.cancel_requested(batch.id)

        try:
            self.resolver.check(batch.inputs)
            config = resolve(batch.pipeline)
            inputs = [self._localize(u) for u in batch.inputs]
            outcome = run_batch(
                config,
                inputs,
                self.store,
                self.address,
                on_plan=on_plan,
                on_unit_done=on_unit_done,
                labels={**batch.labels, "refinery_batch_id": batch.id},
                should_cancel=should_cancel,
            )
            self.queue.set_progress(batch.id, done["units"], done["docs"], merged.to_dict())
            if not outcome.already_committed:
                self.metrics.batch_committed(pipeline, outcome.record.counters)
            state = "committed"
            self.queue.finish(
                batch.id,
                "committed",
                commit_id=outcome.record.commit,
                counters=outcome.record.counters,
                already_committed=outcome.already_committed,
            )
            rec = outcome.record
            event("committed", batch.id, commit=rec.commit, docs_in=rec.docs_in, docs_out=rec.docs_out,
                  kept_fraction=round(rec.docs_out / rec.docs_in, 4) if rec.docs_in else None,
                  already_committed=outcome.already_committed, seconds=round(time.time() - start, 1))  # fmt: skip
            if self.on_commit is not None:
                self.on_commit()
        except executor.BatchCancelled:
            if self._stop.is_set():  # the service is stopping: parked (stays `running`, requeued at the next start)
                state = "parked"
                return
            state = "cancelled"
            self.queue.finish(batch.id, "cancelled", counters=merged.to_dict(), error="cancelled while running")
        except (RefineryError, SourceRefused) as err:
            self.queue.finish(batch.id, "failed", counters=merged.to_dict(), error=str(err))
        except Exception as err:  # noqa: BLE001 - any failure is recorded on the batch, the service lives on
            if self._stop.is_set():
                # The service is stopping and Ray went down under the batch (it shuts down at exit):
                # not the batch's failure.  It stays `running` (parked, logged by stop()) and is
                # requeued at the next start.
                state = "parked"
                return
            log.error("batch %s failed:\n%s", batch.id, traceback.format_exc())
            self.queue.finish(batch.id, "failed", counters=merged.to_dict(), error=one_line(err))
        finally:
            if state != "parked":
                self._log_end(batch.id, state, done["units"], time.time() - start)
                self.metrics.batch_finished(pipeline, state, time.time() - start)
            self._wake.set()


@contextmanager
def _keep_sigterm_handler():
    """Keep the SIGTERM handler in place across ray.init(), which installs one that calls
    sys.exit(15) wherever the main thread is: under uvicorn that would cut the graceful shutdown
    short with a traceback (`docker stop` read as a crash).  The previous handler (uvicorn's:
    finish requests, run the lifespan shutdown) is put back."""
    main = threading.current_thread() is threading.main_thread()
    previous = signal.getsignal(signal.SIGTERM) if main else None
    try:
        yield
    finally:
        if main and previous is not None and signal.getsignal(signal.SIGTERM) is not previous:
            signal.signal(signal.SIGTERM, previous)
