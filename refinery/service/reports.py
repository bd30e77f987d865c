"""Service routes for operators: a batch's run report, the status page's batch detail, the favicon.

Kept apart from app.py: the report is the same one `refinery report` prints (refinery/report),
built from the batch's commit in the service's store.
"""

from __future__ import annotations

import re
from typing import Literal

from fastapi import FastAPI, HTTPException, Query
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

# A small SVG "R" on the status page's panel colour: browsers ask for /favicon.ico on every page
# load, and a 404 there counted as a refused request in refinery_http_requests_refused_total.
FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" fill="#17212e"/>'
    '<text x="16" y="23" font-family="sans-serif" font-size="20" font-weight="bold" fill="#5ec28f" '
    'text-anchor="middle">R</text></svg>'
)
_PATH = re.compile(r"(?:(?<=\s)|(?<=^)|(?<=['\"(]))(?:s3://|file://)?/?(?:[^\s/'\":]+/)+(?=[^\s/'\":]+)")


def redact_paths(text: str | None, limit: int = 400) -> str | None:
    """An error for the open status page: directories dropped, file names kept (`…/x.warc.gz`)."""
    if not text:
        return text
    out = _PATH.sub("…/", text)
    return out if len(out) <= limit else out[: limit - 1] + "…"


def kept_fraction(counters: dict | None) -> float | None:
    if not counters or "read" not in counters:
        return None
    docs_in = counters["read"]["in"]
    last = list(counters.values())[-1]
    return round(last["out"] / docs_in, 4) if docs_in else None


def register(app: FastAPI, service, reader) -> None:
    """Add the routes to `app` (`reader`: the dependency that checks a reader token)."""

    @app.get("/favicon.ico", include_in_schema=False)
    def favicon() -> Response:
        return Response(FAVICON, media_type="image/svg+xml", headers={"Cache-Control": "max-age=86400"})

    @app.get("/v1/status/batches/{batch_id}", tags=["status"],
             summary="One batch for the status page: state, error (paths removed), stage counters, kept fraction")  # fmt: skip
    def status_batch(batch_id: str) -> dict:
        b = service.queue.get(batch_id)
        if b is None:
            raise HTTPException(404, f"no batch {batch_id!r}")
        from refinery.report.build import flow_rows

        counters = b.counters or {}
        return {
            "id": b.id, "state": b.state, "pipeline": b.pipeline, "origin": b.origin,
            "created_at": b.created_at, "started_at": b.started_at, "finished_at": b.finished_at,
            "attempts": b.attempts, "units_done": b.units_done, "units_total": b.units_total,
            "documents": b.docs_done, "commit": b.commit_id, "error": redact_paths(b.error),
            "kept_fraction": kept_fraction(counters) if b.state == "committed" else None,
            "stages": [{"stage": r.stage, "in": r.docs_in, "out": r.docs_out, "dropped": r.dropped}
                       for r in flow_rows(counters)] if counters else [],
        }  # fmt: skip

    @app.get("/v1/batches/{batch_id}/report", tags=["batches"], dependencies=[reader],
             summary="The run report of a committed batch (refinery report): JSON, text or HTML")  # fmt: skip
    def batch_report(
        batch_id: str,
        format: Literal["json", "text", "html"] = Query("json", description="json, text or html (with histograms)"),
        top: int = Query(20, ge=1, le=500),
        examples: int = Query(3, ge=0, le=50),
    ):
        b = service.queue.get(batch_id)
        if b is None:
            raise HTTPException(404, f"no batch {batch_id!r}")
        if b.commit_id is None:
            raise HTTPException(409, f"batch {batch_id} is {b.state}: a report exists once it has committed")
        from refinery.report.build import build_report
        from refinery.report.html import render_html
        from refinery.report.text import render_text

        report = build_report(service.store, service.store.commit(b.commit_id), top, examples)
        if format == "html":
            return HTMLResponse(render_html(report))
        if format == "text":
            return PlainTextResponse(render_text(report))
        return report.to_dict()
