"""The durable batch queue: one SQLite database (WAL) in <store>/state/service.db.

Why SQLite: the queue must survive `kill -9` of the service, and a single
file next to the corpus store needs no other server.  Every state change is
one transaction, so the database is always in a state a restart can resume:
`requeue_running()` at startup turns batches that were `running` when the
service died back into `queued`, and the re-run commits exactly once because
`run_batch` is idempotent per batch key (an already-committed batch returns
the existing commit).

States: queued -> running -> committed | failed | cancelled;
failed/cancelled -> queued again by retry.
"""

from __future__ import annotations

import json
import sqlite3
import threading
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

STATES = ("queued", "running", "committed", "failed", "cancelled")
TERMINAL = ("committed", "failed", "cancelled")

_SCHEMA = """
CREATE TABLE IF NOT EXISTS batches (
    seq INTEGER PRIMARY KEY AUTOINCREMENT,
    id TEXT UNIQUE NOT NULL,
    state TEXT NOT NULL,
    source TEXT NOT NULL,
    inputs TEXT NOT NULL,
    pipeline TEXT NOT NULL,
    priority INTEGER NOT NULL DEFAULT 0,
    labels TEXT NOT NULL DEFAULT '{}',
    origin TEXT NOT NULL DEFAULT 'api',
    created_at REAL NOT NULL,
    started_at REAL,
    finished_at REAL,
    attempts INTEGER NOT NULL DEFAULT 0,
    cancel_requested INTEGER NOT NULL DEFAULT 0,
    units_total INTEGER,
    units_done INTEGER NOT NULL DEFAULT 0,
    docs_done INTEGER NOT NULL DEFAULT 0,
    counters TEXT NOT NULL DEFAULT '{}',
    commit_id INTEGER,
    already_committed INTEGER NOT NULL DEFAULT 0,
    error TEXT
);
CREATE INDEX IF NOT EXISTS batches_claim ON batches(state, priority DESC, seq);
CREATE TABLE IF NOT EXISTS inbox_seen (
    path TEXT NOT NULL,
    size INTEGER NOT NULL,
    mtime_ns INTEGER NOT NULL,
    batch_id TEXT NOT NULL,
    PRIMARY KEY (path, size, mtime_ns)
);
"""


@dataclass
class QueuedBatch:
    """A submitted crawl batch as the queue holds it: its state, inputs and progress (one row)."""

    id: str
    state: str
    source: Any
    inputs: list[str]
    pipeline: str
    priority: int
    labels: dict[str, str]
    origin: str
    created_at: float
    started_at: float | None
    finished_at: float | None
    attempts: int
    cancel_requested: bool
    units_total: int | None
    units_done: int
    docs_done: int
    counters: dict = field(default_factory=dict)
    commit_id: int | None = None
    already_committed: bool = False
    error: str | None = None

    def to_api(self) -> dict[str, Any]:
        """The JSON shape of a batch in the HTTP API (docs/api.md)."""
        return {
            "id": self.id,
            "state": self.state,
            "source": self.source,
            "inputs": self.inputs,
            "pipeline": self.pipeline,
            "priority": self.priority,
            "labels": self.labels,
            "origin": self.origin,
            "created_at": self.created_at,
            "started_at": self.started_at,
            "finished_at": self.finished_at,
            "attempts": self.attempts,
            "cancel_requested": self.cancel_requested,
            "progress": {
                "units_total": self.units_total,
                "units_done": self.units_done,
                "documents_done": self.docs_done,
                "fraction": (self.units_done / self.units_total) if self.units_total else (1.0 if self.state == "committed" else 0.0),
            },
            "counters": self.counters,
            "commit": self.commit_id,
            "already_committed": self.already_committed,
            "error": self.error,
        }


def _row_to_queued_batch(row: sqlite3.Row) -> QueuedBatch:
    return QueuedBatch(
        id=row["id"],
        state=row["state"],
        source=json.loads(row["source"]),
        inputs=json.loads(row["inputs"]),
        pipeline=row["pipeline"],
        priority=row["priority"],
        labels=json.loads(row["labels"]),
        origin=row["origin"],
        created_at=row["created_at"],
        started_at=row["started_at"],
        finished_at=row["finished_at"],
        attempts=row["attempts"],
        cancel_requested=bool(row["cancel_requested"]),
        units_total=row["units_total"],
        units_done=row["units_done"],
        docs_done=row["docs_done"],
        counters=json.loads(row["counters"]),
        commit_id=row["commit_id"],
        already_committed=bool(row["already_committed"]),
        error=row["error"],
    )


class BatchQueue:
    """Thread-safe access to the queue database (one connection, one lock)."""

    def __init__(self, path: Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(str(self.path), check_same_thread=False, isolation_level=None, timeout=30)
        self._db.row_factory = sqlite3.Row
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        self._db.executescript(_SCHEMA)

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def _tx(self, fn):
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                out = fn(self._db)
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
            self._db.execute("COMMIT")
            return out

    # -- writes ------------------------------------------------------------------
    def submit(
        self,
        source: Any,
        inputs: list[str],
        pipeline: str,
        priority: int = 0,
        labels: dict[str, str] | None = None,
        origin: str = "api",
        batch_id: str | None = None,
    ) -> QueuedBatch:
        bid = batch_id or uuid.uuid4().hex
        now = time.time()

        def fn(db):
            db.execute(
                "INSERT INTO batches (id, state, source, inputs, pipeline, priority, labels, origin, created_at)"
                " VALUES (?, 'queued', ?, ?, ?, ?, ?, ?, ?)",
                (bid, json.dumps(source), json.dumps(inputs), pipeline, priority, json.dumps(labels or {}), origin, now),
            )
            # read back in the same transaction: the scheduler may claim it the moment we commit
            return _row_to_queued_batch(db.execute("SELECT * FROM batches WHERE id=?", (bid,)).fetchone())

        batch = self._tx(fn)
        from refinery.service.events import event

        event("queued", bid, pipeline=pipeline, origin=origin, priority=priority, inputs=len(inputs))
        return batch

    def claim_next(self) -> QueuedBatch | None:
        """Atomically move the most urgent queued batch to running (priority, then age)."""

        def fn(db):
            row = db.execute(
                "SELECT id FROM batches WHERE state='queued' ORDER BY priority DESC, seq LIMIT 1"
            ).fetchone()
            if row is None:
                return None
            db.execute(
                "UPDATE batches SET state='running', started_at=?, finished_at=NULL, attempts=attempts+1,"
                " units_total=NULL, units_done=0, docs_done=0, counters='{}', error=NULL WHERE id=?",
                (time.time(), row["id"]),
            )
            return row["id"]

        bid = self._tx(fn)
        return self.get(bid) if bid else None

    def set_plan(self, bid: str, units_total: int) -> None:
        self._tx(lambda db: db.execute("UPDATE batches SET units_total=? WHERE id=?", (units_total, bid)))

    def set_progress(self, bid: str, units_done: int, docs_done: int, counters: dict) -> None:
        self._tx(
            lambda db: db.execute(
                "UPDATE batches SET units_done=?, docs_done=?, counters=? WHERE id=? AND state='running'",
                (units_done, docs_done, json.dumps(counters), bid),
            )
        )

    def finish(
        self,
        bid: str,
        state: str,
        commit_id: int | None = None,
        counters: dict | None = None,
        error: str | None = None,
        already_committed: bool = False,
    ) -> None:
        assert state in TERMINAL

        def fn(db):
            sets = "state=?, finished_at=?, commit_id=?, error=?, already_committed=?"
            args: list[Any] = [state, time.time(), commit_id, error, int(already_committed)]
            if counters is not None:
                sets += ", counters=?"
                args.append(json.dumps(counters))
            db.execute(f"UPDATE batches SET {sets} WHERE id=?", (*args, bid))

        self._tx(fn)

    def request_cancel(self, bid: str) -> str | None:
        """Cancel a queued batch now, flag a running one; returns the state before, None if unknown."""

        def fn(db):
            row = db.execute("SELECT state FROM batches WHERE id=?", (bid,)).fetchone()
            if row is None:
                return None
            if row["state"] == "queued":
                db.execute(
                    "UPDATE batches SET state='cancelled', finished_at=?, error='cancelled while queued' WHERE id=?",
                    (time.time(), bid),
                )
            elif row["state"] == "running":
                db.execute("UPDATE batches SET cancel_requested=1 WHERE id=?", (bid,))
            return row["state"]

        before = self._tx(fn)
        if before in ("queued", "running"):
            from refinery.service.events import event

            event("cancelled" if before == "queued" else "cancel_requested", bid, was=before)
        return before

    def retry(self, bid: str) -> str | None:
        """Requeue a failed or cancelled batch; returns the state before, None if unknown."""

        def fn(db):
            row = db.execute("SELECT state FROM batches WHERE id=?", (bid,)).fetchone()
            if row is None:
                return None
            if row["state"] in ("failed", "cancelled"):
                db.execute(
                    "UPDATE batches SET state='queued', cancel_requested=0, finished_at=NULL, error=NULL WHERE id=?",
                    (bid,),
                )
            return row["state"]

        before = self._tx(fn)
        if before in ("failed", "cancelled"):
            from refinery.service.events import event

            event("queued", bid, retry_of=before)
        return before

    def requeue_running(self) -> list[str]:
        """At startup: what was running when the service died goes back to the queue."""

        def fn(db):
            ids = [r["id"] for r in db.execute("SELECT id FROM batches WHERE state='running'")]
            db.execute(
                "UPDATE batches SET state='queued', error='requeued after service restart' WHERE state='running'"
            )
            # A cancel requested before the crash still holds: honour it now.
            db.execute(
                "UPDATE batches SET state='cancelled', finished_at=?, error='cancelled' "
                "WHERE state='queued' AND cancel_requested=1",
                (time.time(),),
            )
            return ids

        return self._tx(fn)

    def inbox_claim(self, path: str, size: int, mtime_ns: int, batch_id: str) -> bool:
        """Record an inbox file as seen; False if this exact file version was already submitted."""

        def fn(db):
            cur = db.execute(
                "INSERT OR IGNORE INTO inbox_seen (path, size, mtime_ns, batch_id) VALUES (?, ?, ?, ?)",
                (path, size, mtime_ns, batch_id),
            )
            return cur.rowcount == 1

        return self._tx(fn)

    # -- reads -------------------------------------------------------------------
    def get(self, bid: str) -> QueuedBatch | None:
        with self._lock:
            row = self._db.execute("SELECT * FROM batches WHERE id=?", (bid,)).fetchone()
        return _row_to_queued_batch(row) if row else None

    def cancel_requested(self, bid: str) -> bool:
        with self._lock:
            row = self._db.execute("SELECT cancel_requested FROM batches WHERE id=?", (bid,)).fetchone()
        return bool(row and row[0])

    def list(self, state: str | None = None, limit: int = 100, before_seq: int | None = None) -> list[QueuedBatch]:
        """Newest first; `limit` is bounded by the caller so a response never grows with the queue."""
        sql = "SELECT * FROM batches"
        cond, args = [], []
        if state:
            cond.append("state=?")
            args.append(state)
        if before_seq:
            cond.append("seq<?")
            args.append(before_seq)
        if cond:
            sql += " WHERE " + " AND ".join(cond)
        sql += " ORDER BY seq DESC LIMIT ?"
        args.append(limit)
        with self._lock:
            rows = self._db.execute(sql, args).fetchall()
        return [_row_to_queued_batch(r) for r in rows]

    def counts(self) -> dict[str, int]:
        with self._lock:
            rows = self._db.execute("SELECT state, COUNT(*) AS n FROM batches GROUP BY state").fetchall()
        out = {s: 0 for s in STATES}
        out.update({r["state"]: r["n"] for r in rows})
        return out

    def ping(self) -> bool:
        with self._lock:
            return self._db.execute("SELECT 1").fetchone()[0] == 1
