"""Batch lifecycle log lines: queued, started, progress, committed, failed, cancelled.

One logger (`refinery.batch`), one line per event, always with the batch id: an operator
greps a batch's whole life, or ships the lines to a log store.  `refinery serve --log-format
json` turns every log line of the process (uvicorn's included) into one JSON object per line,
the event's fields as keys.
"""

from __future__ import annotations

import json
import logging
import time

log = logging.getLogger("refinery.batch")

# Progress lines: at most one per batch this often (every unit of a 1,000-unit batch is noise).
PROGRESS_EVERY_SECONDS = 10.0


def event(name: str, batch_id: str, level: int = logging.INFO, **fields) -> None:
    """Log `batch <name> id=<batch_id> k=v ...`; the fields travel as `extra` for the JSON format."""
    text = " ".join(f"{k}={_value(v)}" for k, v in fields.items() if v is not None)
    log.log(level, f"batch {name} id={batch_id}" + (f" {text}" if text else ""),
            extra={"event": f"batch_{name}", "batch_id": batch_id, "fields": fields})  # fmt: skip


def _value(v) -> str:
    s = str(v)
    return json.dumps(s) if (" " in s or "=" in s or not s) else s


class Throttle:
    """True at most once per `seconds` (the first call included)."""

    def __init__(self, seconds: float = PROGRESS_EVERY_SECONDS) -> None:
        self.seconds = seconds
        self.last = 0.0

    def __call__(self) -> bool:
        now = time.monotonic()
        if now - self.last >= self.seconds:
            self.last = now
            return True
        return False


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time, level, logger, message, and a batch event's fields."""

    def format(self, record: logging.LogRecord) -> str:
        out = {
            "time": self.formatTime(record, "%Y-%m-%dT%H:%M:%S") + f".{int(record.msecs):03d}Z",
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        if hasattr(record, "event"):
            out["event"] = record.event
            out["batch_id"] = record.batch_id
            out.update({k: v for k, v in record.fields.items() if v is not None and k not in out})
        if record.exc_info:
            out["exception"] = self.formatException(record.exc_info)
        return json.dumps(out, default=str)


def configure(fmt: str, level: int = logging.INFO) -> dict | None:
    """Set up the root logger; for `json` also return a uvicorn log_config that uses it."""
    import time as _time

    handler = logging.StreamHandler()
    if fmt == "json":
        formatter: logging.Formatter = JsonFormatter()
        formatter.converter = _time.gmtime
    else:
        formatter = logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s")
    handler.setFormatter(formatter)
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    if fmt != "json":
        return None
    # uvicorn installs its own handlers unless told otherwise: route its loggers to the root's.
    return {
        "version": 1,
        "disable_existing_loggers": False,
        "loggers": {name: {"handlers": [], "propagate": True} for name in ("uvicorn", "uvicorn.error", "uvicorn.access")},
    }
