"""Prometheus metrics, computed in the driver (the service process), never in Ray workers.

Stages run in Ray worker processes, whose prometheus objects the service
cannot see.  So nothing here is incremented inside a stage: document and drop
counters are fed from the per-unit counters each task returns to the driver
(`UnitResult.counters`; from dedup on, from the commit record), and everything about commits is read from the commit
records in the store (the only source of truth), so the committed figures are
right even across restarts of the service.

Label cardinality is bounded: `pipeline` (the configured pipeline names),
`stage` (the stage registry), `reason` (the rule names of those stages),
`state` (five batch states), `language` (at most the 176 lid.176 codes).
"""

from __future__ import annotations

import threading
import time
from collections import Counter as PyCounter
from pathlib import Path
from typing import Iterator

import pyarrow.parquet as pq
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily

from refinery.service.queue import STATES, BatchQueue
from refinery.store import CorpusStore

# The *_created series double the output for no dashboard use.
disable_created_metrics()

STAGE_LATENCY_BUCKETS = (0.01, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30, 60, 120, 300)
BATCH_DURATION_BUCKETS = (1, 5, 10, 30, 60, 120, 300, 600, 1800, 3600, 7200, 21600)


_SEGMENT_ROWS: dict[tuple[str, int], int] = {}  # (path, mtime_ns) -> rows, from Parquet footers
_COMMIT_KEYS: dict[tuple[str, int], str] = {}  # (store, commit) -> batch key; commits never change


def _rows(path: Path) -> int:
    """Rows of a Parquet file from its footer, cached by (path, mtime); the cache is bounded."""
    st = path.stat()
    key = (str(path), st.st_mtime_ns)
    if key not in _SEGMENT_ROWS:
        if len(_SEGMENT_ROWS) >= 4096:  # compacted-away segments would otherwise stay forever
            _SEGMENT_ROWS.clear()
        _SEGMENT_ROWS[key] = pq.ParquetFile(path).metadata.num_rows
    return _SEGMENT_ROWS[key]


def dedup_index_size(store: CorpusStore) -> dict[str, int]:
    """Entries in each dedup index of the store ({index id: entries}); {} while there is none.

    The dedup index (refinery/dedup/index.py) is kept as segment files
    `state/dedup/<index id>/seg-<commit:08d>-<batch key[:16]>.parquet`, one row per
    indexed document; a segment counts only if manifest/<commit>.json exists and
    names that batch key (the index's own validity rule).  Rows are read from the
    Parquet footers (cached), never the data.  The gauge `refinery_dedup_index_entries`
    is absent while this returns {}.
    """
    root = store.state_dir / "dedup"
    if not root.is_dir():
        return {}
    out: dict[str, int] = {}
    for index_dir in sorted(p for p in root.iterdir() if p.is_dir()):
        total, found = 0, False
        # Compaction folds commits 1..N into base-<N>.parquet and deletes their segments: count it.
        bases = sorted(index_dir.glob("base-*.parquet"))
        base_upto = 0
        if bases and bases[-1].name[len("base-"):-len(".parquet")].isdigit():
            try:
                total += _rows(bases[-1])
                base_upto, found = int(bases[-1].name[len("base-"):-len(".parquet")]), True
            except (OSError, ValueError):
                pass
        for seg in index_dir.glob("seg-*.parquet"):
            parts = seg.name[len("seg-"):-len(".parquet")].split("-", 1)
            if len(parts) != 2 or not parts[0].isdigit() or int(parts[0]) <= base_upto:
                continue
            ck = (str(store.root), int(parts[0]))
            if ck not in _COMMIT_KEYS:
                try:
                    _COMMIT_KEYS[ck] = store.commit(ck[1]).batch_key
                except Exception:  # noqa: BLE001 - no manifest (yet): not part of the index
                    continue
            if not parts[1] or not _COMMIT_KEYS[ck].startswith(parts[1]):
                continue
            try:
                total += _rows(seg)
            except (OSError, ValueError):
                continue
            found = True
        if found:
            out[index_dir.name] = total
    return out


_DIR_BYTES_CACHE: dict[Path, tuple[float, int]] = {}


def _dir_bytes(path: Path, max_age: float = 30.0) -> int:
    """Bytes under `path`, recomputed at most every `max_age` seconds (a walk per scrape is wasteful)."""
    now = time.time()
    cached = _DIR_BYTES_CACHE.get(path)
    if cached and now - cached[0] < max_age:
        return cached[1]
    total = 0
    if path.is_dir():
        for p in path.rglob("*"):
            try:
                if p.is_file():
                    total += p.stat().st_size
            except OSError:  # removed while walking
                pass
    _DIR_BYTES_CACHE[path] = (now, total)
    return total


class CommitTotals:
    """Running totals over commit records, read incrementally (only new manifests each scrape)."""

    def __init__(self, store: CorpusStore) -> None:
        self.store = store
        self._lock = threading.Lock()
        self.last = 0
        self.commits: PyCounter = PyCounter()
        self.rows: PyCounter = PyCounter()
        self.shards: PyCounter = PyCounter()
        self.bytes: PyCounter = PyCounter()
        self.input_bytes: PyCounter = PyCounter()
        self.docs_in: PyCounter = PyCounter()
        self.languages: PyCounter = PyCounter()
        self.pipeline_languages: PyCounter = PyCounter()  # (pipeline, language) -> documents
        self.last_commit_time: float | None = None

    def refresh(self) -> None:
        with self._lock:
            for rec in self.store.commits(since=self.last):
                p = rec.pipeline
                self.commits[p] += 1
                self.rows[p] += rec.rows
                self.shards[p] += len(rec.shards)
                self.bytes[p] += sum(s.bytes for s in rec.shards)
                self.input_bytes[p] += sum(int(i.get("size", 0)) for i in rec.inputs)
                self.docs_in[p] += rec.docs_in
                for s in rec.shards:
                    counts = self._languages(self.store.root / s.path)
                    self.languages.update(counts)
                    self.pipeline_languages.update({(p, code): n for code, n in counts.items()})
                self.last = rec.commit
                mtime = (self.store.manifest_dir / f"{rec.commit:08d}.json").stat().st_mtime
                self.last_commit_time = max(self.last_commit_time or 0.0, mtime)

    @staticmethod
    def _languages(path: Path) -> PyCounter:
        try:
            if "language" not in pq.read_schema(path).names:
                return PyCounter()
            col = pq.read_table(path, columns=["language"]).column("language")
        except (OSError, ValueError):
            return PyCounter()
        return PyCounter(v if v else "unknown" for v in col.to_pylist())


class ServiceMetrics:
    """Everything /metrics exports; one registry per service instance."""

    def __init__(self, store: CorpusStore, queue: BatchQueue) -> None:
        self.registry = CollectorRegistry()
        self.store = store
        self.queue = queue
        self.totals = CommitTotals(store)
        r = self.registry
        self.stage_in = Counter(
            "refinery_stage_documents_in", "Documents entering a stage (from per-unit counters)", ["pipeline", "stage"], registry=r
        )
        self.stage_out = Counter(
            "refinery_stage_documents_out", "Documents leaving a stage (kept)", ["pipeline", "stage"], registry=r
        )
        self.stage_dropped = Counter(
            "refinery_stage_documents_dropped", "Documents dropped by a stage, by rule", ["pipeline", "stage", "reason"], registry=r
        )
        self.stage_events = Counter(
            "refinery_stage_events", "Events a stage counts besides drops (pii: spans replaced, by kind)",
            ["pipeline", "stage", "event"], registry=r,
        )
        self.stage_latency = Histogram(
            "refinery_stage_duration_seconds",
            "Seconds a stage spent on one work unit",
            ["pipeline", "stage"],
            buckets=STAGE_LATENCY_BUCKETS,
            registry=r,
        )
        self.units = Counter("refinery_work_units", "Work units finished", ["pipeline"], registry=r)
        self.batches_finished = Counter(
            "refinery_batches_finished", "Batches that reached a final state", ["pipeline", "state"], registry=r
        )
        self.batch_duration = Histogram(
            "refinery_batch_duration_seconds",
            "Wall time of one batch run, claim to final state",
            ["pipeline", "state"],
            buckets=BATCH_DURATION_BUCKETS,
            registry=r,
        )
        self.upload_bytes = Counter("refinery_upload_bytes", "Bytes received by WARC upload", registry=r)
        self.requests_refused = Counter(
            "refinery_http_requests_refused", "Requests refused with a 4xx, by status", ["status"], registry=r
        )
        self._started = time.time()
        # Plain running totals for the status page (the prometheus objects above are for scraping).
        self.live_in: PyCounter = PyCounter()  # stage -> documents in
        self.live_dropped: PyCounter = PyCounter()  # "stage:reason" -> documents
        self._live_lock = threading.Lock()
        self.publisher = None  # refinery.service.publisher.Publisher when the service runs with --publish
        r.register(_StoreCollector(self))

    def unit_done(self, pipeline: str, counters: dict) -> None:
        """Feed one UnitResult.counters dict (driver side).

        The stages before the first one the driver decides (dedup) are counted as units finish.
        That stage and every later one are counted at commit time instead (`batch_committed`):
        a unit cannot know which of its documents dedup drops, and the commit record takes
        those out of the later stages' counts (counters.in_pipeline_order), so the metrics
        add up to the commit records."""
        self.units.labels(pipeline).inc()
        self._count_stages(pipeline, _split_at_driver_stage(counters)[0])

    def batch_committed(self, pipeline: str, record_counters: dict) -> None:
        """Count the driver-decided stage and the ones after it from a fresh commit record."""
        self._count_stages(pipeline, _split_at_driver_stage(record_counters)[1])

    def _count_stages(self, pipeline: str, counters: dict) -> None:
        for stage, c in counters.items():
            self.stage_in.labels(pipeline, stage).inc(c["in"])
            self.stage_out.labels(pipeline, stage).inc(c["out"])
            for reason, n in c["dropped"].items():
                self.stage_dropped.labels(pipeline, stage, reason).inc(n)
            for event, n in c.get("events", {}).items():
                self.stage_events.labels(pipeline, stage, event).inc(n)
            self.stage_latency.labels(pipeline, stage).observe(c["seconds"])
            with self._live_lock:
                self.live_in[stage] += c["in"]
                for reason, n in c["dropped"].items():
                    self.live_dropped[f"{stage}:{reason}"] += n

    def live_snapshot(self) -> dict[str, int]:
        with self._live_lock:
            return dict(self.live_in)

    def live_dropped_snapshot(self) -> PyCounter:
        with self._live_lock:
            return PyCounter(self.live_dropped)

    def batch_finished(self, pipeline: str, state: str, seconds: float) -> None:
        self.batches_finished.labels(pipeline, state).inc()
        self.batch_duration.labels(pipeline, state).observe(seconds)


def _split_at_driver_stage(counters: dict) -> tuple[dict, dict]:
    """(stages placed before the first driver-decided stage, that stage and all after it), by the
    stages' canonical order (a unit's counters may name dedup first: raw copies are counted there
    before any stage runs)."""
    from refinery.stages import STAGE_TYPES

    cut = min((cls.order for cls in STAGE_TYPES.values() if cls.decided_by_driver), default=None)

    def before(name: str) -> bool:
        cls = STAGE_TYPES.get(name)
        return cut is None or cls is None or cls.order < cut  # `read` (no stage class) comes first

    return ({n: c for n, c in counters.items() if before(n)},
            {n: c for n, c in counters.items() if not before(n)})


class _StoreCollector:
    """Metrics read at scrape time from the queue database and the commit records."""

    def __init__(self, m: ServiceMetrics) -> None:
        self.m = m

    def describe(self):  # no eager collect at registration
        return []

    def collect(self):
        m = self.m
        counts = m.queue.counts()
        g = GaugeMetricFamily("refinery_batches", "Batches in the queue database, by state", labels=["state"])
        for s in STATES:
            g.add_metric([s], counts.get(s, 0))
        yield g
        yield GaugeMetricFamily("refinery_queue_depth", "Batches waiting to run", value=counts.get("queued", 0))

        t = m.totals
        t.refresh()
        specs = [
            ("refinery_commits", "Commits in the corpus store", t.commits),
            ("refinery_committed_rows", "Documents (rows) in committed shards", t.rows),
            ("refinery_committed_shards", "Shard files committed", t.shards),
            ("refinery_committed_bytes", "Bytes of committed shard files", t.bytes),
            ("refinery_committed_input_bytes", "Bytes of input files of committed batches", t.input_bytes),
            ("refinery_committed_input_documents", "Input documents of committed batches", t.docs_in),
        ]
        for name, doc, values in specs:
            c = CounterMetricFamily(name, doc, labels=["pipeline"])
            for pipeline, v in sorted(values.items()):
                c.add_metric([pipeline], v)
            yield c
        by_pipeline = CounterMetricFamily(
            "refinery_committed_language_documents", "Committed documents by pipeline and detected language",
            labels=["pipeline", "language"],
        )
        for (pipeline, code), v in sorted(t.pipeline_languages.items()):
            by_pipeline.add_metric([pipeline, code], v)
        yield by_pipeline
        lang = CounterMetricFamily(
            "refinery_committed_documents_by_language",
            "DEPRECATED (removed in the next release): use refinery_committed_language_documents_total, "
            "which has the pipeline label",
            labels=["language"],
        )
        for code, v in sorted(t.languages.items()):
            lang.add_metric([code], v)
        yield lang
        if t.last_commit_time is not None:
            yield GaugeMetricFamily(
                "refinery_last_commit_timestamp_seconds", "Unix time of the newest commit", value=t.last_commit_time
            )
            yield GaugeMetricFamily(
                "refinery_seconds_since_last_commit",
                "DEPRECATED (removed in the next release): use time() - refinery_last_commit_timestamp_seconds",
                value=max(0.0, time.time() - t.last_commit_time),
            )
        sizes = dedup_index_size(m.store)
        if sizes:
            g = GaugeMetricFamily("refinery_dedup_index_entries", "Documents in the dedup index", labels=["index"])
            for index_id, n in sorted(sizes.items()):
                g.add_metric([index_id], n)
            yield g
        yield GaugeMetricFamily(
            "refinery_state_bytes", "Bytes under <store>/state (queue database, uploads, dedup index)", value=_dir_bytes(m.store.state_dir)
        )
        yield GaugeMetricFamily("refinery_start_time_seconds", "Unix time the service started", value=m._started)
        yield build_info()
        yield from _publish_metrics(m.publisher)


def build_info() -> GaugeMetricFamily:
    """`refinery_build_info{version, python, ray} 1`: which build a scrape target runs."""
    import platform

    from refinery import __version__
    from refinery.models import package_version

    g = GaugeMetricFamily("refinery_build_info", "Always 1; the labels say which build runs",
                          labels=["version", "python", "ray"])  # fmt: skip
    g.add_metric([__version__, platform.python_version(), package_version("ray") or "unknown"], 1)
    return g


def _publish_metrics(p) -> Iterator:
    """Publishing to the --publish URI (absent without it): how far the destination is, and failures."""
    if p is None:
        return
    yield CounterMetricFamily("refinery_publish_errors", "Failed attempts to publish commits to the --publish URI",
                              value=p.errors)
    if p.published is not None:  # unknown until the destination was reached once
        yield GaugeMetricFamily("refinery_published_commit", "Newest commit visible at the --publish URI",
                                value=p.published)
        yield GaugeMetricFamily("refinery_publish_lag_commits", "Local commits not yet visible at the --publish URI",
                                value=p.lag() or 0)
