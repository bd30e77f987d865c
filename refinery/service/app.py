"""The HTTP API (FastAPI): the routes, a thin layer over the service's parts (composition.py)
and its upload storage (uploads.py).

Contract: docs/api.md.  Every refusal is a 4xx whose JSON body has a
`detail` string saying why, and a refused request changes nothing (no batch
row, no file left under <store>/state/uploads).
"""

from __future__ import annotations

import asyncio
import json
import logging
import shutil
import sqlite3
import time
from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import Depends, FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, JSONResponse, Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException

from refinery import __version__
from refinery.errors import ConfigError, validation_summary
from refinery.pipeline_files import available, resolve
from refinery.service import storage_health
from refinery.service.auth import Principal
from refinery.service.composition import Service, Settings
from refinery.service.publisher import Publisher
from refinery.service.queue import STATES
from refinery.service.sources import SourceRefused
from refinery.service.uploads import check_upload_name, receive_upload
from refinery.store.stats import StoreStatsCache

__all__ = ["Settings", "create_app"]  # Settings: what create_app takes (service/composition.py)

log = logging.getLogger("refinery.service")

STATUS_PAGE = Path(__file__).with_name("status_page.html")


# -- request bodies --------------------------------------------------------------
class SubmitRequest(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True)
    source: str | list[str] = Field(description="path, glob or file:// URI under an input root (or a list of them)")
    pipeline: str = Field(min_length=1, max_length=200, description="pipeline name, see GET /v1/pipelines")
    priority: int = Field(0, ge=-1000, le=1000, description="higher runs first")
    labels: dict[str, str] = Field(default_factory=dict, description="free-form, stored with the commit")


def _bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        return None
    return token.strip()


def require(role: str):
    """Dependency: a valid bearer token whose role includes `role` (401 without, 403 too weak)."""

    def dep(request: Request) -> Principal:
        svc: Service = request.app.state.service
        token = _bearer(request)
        if token is None:
            raise HTTPException(401, "missing bearer token (Authorization: Bearer <token>)", {"WWW-Authenticate": "Bearer"})
        principal = svc.auth.authenticate(token)
        if principal is None:
            raise HTTPException(401, "invalid token", {"WWW-Authenticate": "Bearer"})
        if not svc.auth.allows(principal, role):
            raise HTTPException(403, f"role {principal.role!r} may not do this (needs {role!r})")
        return principal

    return dep


async def _read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None:
        if not declared.isdigit():
            raise HTTPException(400, "malformed Content-Length")
        if int(declared) > limit:
            raise HTTPException(413, f"request body of {declared} bytes exceeds the limit of {limit} bytes")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise HTTPException(413, f"request body exceeds the limit of {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _publish_status(p: Publisher | None) -> dict | None:
    """Publishing state for the status page: no URI or error text (the endpoint is open)."""
    if p is None:
        return None
    return {"published_commit": p.published, "lag": p.lag(), "errors": p.errors, "ok": p.last_error is None,
            "last_success": p.last_success}


def create_app(settings: Settings) -> FastAPI:
    service = Service(settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI):
        service.start()
        try:
            yield
        finally:
            service.stop()

    app = FastAPI(
        title="Refinery",
        version=__version__,
        description="Batch submission, durable queue and metrics of the Refinery data-cleaning service. See docs/api.md.",
        lifespan=lifespan,
    )
    app.state.service = service
    reader = Depends(require("reader"))
    operator = Depends(require("operator"))
    corpus_stats = StoreStatsCache(service.store)  # per-language/bucket figures for the status page
    from refinery.service.reports import register as register_reports

    register_reports(app, service, reader)  # report, status-page batch detail, favicon

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        if 400 <= exc.status_code < 500:
            service.metrics.requests_refused.labels(str(exc.status_code)).inc()
        return JSONResponse({"detail": exc.detail}, exc.status_code, headers=getattr(exc, "headers", None))

    @app.exception_handler(OSError)
    @app.exception_handler(sqlite3.OperationalError)
    async def storage_error(request: Request, exc: Exception):
        known = storage_health.classify(exc)
        if known is None:
            return await internal_error(request, exc)
        status, reason = known
        log.error("%s %s: %s", request.method, request.url.path, reason)
        return JSONResponse({"detail": reason}, status)

    @app.exception_handler(Exception)
    async def internal_error(request: Request, exc: Exception):
        log.error("%s %s failed", request.method, request.url.path, exc_info=exc)
        return JSONResponse({"detail": f"internal error ({type(exc).__name__}); see the service log"}, 500)

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        service.metrics.requests_refused.labels("422").inc()
        return JSONResponse({"detail": validation_summary(exc.errors(), whole="body")}, 422)

    # -- open endpoints ----------------------------------------------------------
    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    def status_page() -> HTMLResponse:
        return HTMLResponse(STATUS_PAGE.read_text(encoding="utf-8"))

    @app.get("/healthz", tags=["health"], summary="Liveness: the process answers")
    def healthz() -> dict:
        return {"status": "ok", "version": __version__}

    @app.get("/readyz", tags=["health"], summary="Readiness: database, store, scheduler and Ray usable")
    def readyz() -> JSONResponse:
        checks = {
            "database": service.queue.ping(),
            **storage_health.check([service.store.state_dir, service.uploads], settings.min_free_bytes),
            "scheduler": service.scheduler.alive,
            "ray": service.scheduler.ray_ready.is_set(),
        }
        ok = all(checks.values())
        body = {"ready": ok, "checks": checks}
        if service.scheduler.ray_error:
            body["ray_error"] = service.scheduler.ray_error
        return JSONResponse(body, 200 if ok else 503)

    @app.get("/metrics", tags=["health"], summary="Prometheus metrics (text format)")
    def metrics() -> Response:
        return Response(generate_latest(service.metrics.registry), media_type=CONTENT_TYPE_LATEST)

    @app.get("/v1/overview", tags=["status"], summary="Aggregates for the status page (no paths, no labels)")
    def overview() -> dict:
        from refinery.service.reports import kept_fraction, redact_paths

        t = service.metrics.totals
        t.refresh()
        recent = []
        for b in service.queue.list(limit=15):
            end = b.finished_at or time.time()
            recent.append({
                "id": b.id, "state": b.state, "pipeline": b.pipeline, "origin": b.origin,
                "created_at": b.created_at, "seconds": round(end - b.started_at, 1) if b.started_at else None,
                "units_done": b.units_done, "units_total": b.units_total, "documents": b.docs_done,
                "commit": b.commit_id, "error": redact_paths(b.error),
                "kept_fraction": kept_fraction(b.counters) if b.state == "committed" else None,
            })
        return {
            "now": time.time(),
            "batches": service.queue.counts(),
            "running": service.scheduler.running_ids(),
            "throughput": [{"t": ts, "in": snap} for ts, snap in service.samples],
            "drops": dict(service.metrics.live_dropped_snapshot().most_common(12)),
            "languages": dict(t.languages.most_common(12)),
            "commits": sum(t.commits.values()),
            "committed_rows": sum(t.rows.values()),
            "last_commit_time": t.last_commit_time,
            "publish": _publish_status(service.publisher),
            "corpus_stats": corpus_stats.summary(),
            "recent": recent,
        }

    # -- reader ------------------------------------------------------------------
    @app.get("/v1/pipelines", tags=["pipelines"], dependencies=[reader])
    def pipelines() -> dict:
        out = []
        for name, path in available().items():
            try:
                cfg = resolve(str(path))
                out.append({"name": name, "description": cfg.description, "stages": [s.name for s in cfg.stages],
                            "config_hash": cfg.config_hash()})
            except ConfigError as err:
                out.append({"name": name, "error": str(err)})
        return {"pipelines": out}

    @app.get("/v1/batches", tags=["batches"], dependencies=[reader])
    def list_batches(
        state: str | None = Query(None, description="filter: " + ", ".join(STATES)),
        limit: int = Query(50, ge=1, le=500),
    ) -> dict:
        if state is not None and state not in STATES:
            raise HTTPException(422, f"unknown state {state!r} (known: {', '.join(STATES)})")
        return {"batches": [b.to_api() for b in service.queue.list(state, limit)], "counts": service.queue.counts()}

    @app.get("/v1/batches/{batch_id}", tags=["batches"], dependencies=[reader])
    def get_batch(batch_id: str) -> dict:
        b = service.queue.get(batch_id)
        if b is None:
            raise HTTPException(404, f"no batch {batch_id!r}")
        return b.to_api()

    @app.get("/v1/commits", tags=["commits"], dependencies=[reader])
    def commits(since: int = Query(0, ge=0, description="return commits with number > since"),
                limit: int = Query(100, ge=1, le=1000)) -> dict:
        numbers = [n for n in service.store.commit_numbers() if n > since][:limit]
        recs = [json.loads(service.store.commit(n).to_json()) for n in numbers]
        latest = service.store.commit_numbers()
        return {"commits": recs, "latest": latest[-1] if latest else 0}

    # -- operator ----------------------------------------------------------------
    @app.post("/v1/batches", status_code=202, tags=["batches"], dependencies=[operator],
              summary="Submit a batch by source (path, glob or file:// URI under an input root)",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/json": {"schema": SubmitRequest.model_json_schema()}}}})
    async def submit(request: Request) -> dict:
        raw = await _read_limited(request, settings.max_body_bytes)
        try:
            data = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as err:
            raise HTTPException(400, f"request body is not valid JSON: {err}") from None
        except RecursionError:
            raise HTTPException(400, "request body is nested too deeply") from None
        if not isinstance(data, dict):
            raise HTTPException(400, "request body must be a JSON object")
        try:
            req = SubmitRequest.model_validate(data)
        except ValidationError as err:
            raise HTTPException(422, validation_summary(err.errors(), whole="body")) from None
        # Globs, directory walks, object listings and the SQLite commit block: off the event loop,
        # on threads of their own (uploads write on the default pool, which this cannot exhaust).
        if not service.resolving.acquire(blocking=False):
            raise HTTPException(429, "too many submissions being resolved at once; retry shortly",
                                headers={"Retry-After": "1"})
        try:
            batch = await asyncio.get_running_loop().run_in_executor(service.resolve_pool, _submit, req)
        finally:
            service.resolving.release()
        service.scheduler.wake()
        return batch.to_api()

    def _submit(req: SubmitRequest):
        service.known_pipeline(req.pipeline)
        sources = [req.source] if isinstance(req.source, str) else req.source
        if not sources:
            raise HTTPException(422, "source: empty list")
        files: dict[str, None] = {}
        try:
            for s in sources:
                files.update(dict.fromkeys(service.resolver.resolve(s)))
        except SourceRefused as err:
            raise HTTPException(err.status, err.reason) from None
        service.check_queue_room()
        return service.queue.submit(req.source, sorted(files), req.pipeline, req.priority, req.labels)

    @app.post("/v1/batches/upload", status_code=202, tags=["batches"], dependencies=[operator],
              summary="Upload one WARC file (raw request body) and submit it as a batch",
              openapi_extra={"requestBody": {"required": True, "content": {
                  "application/octet-stream": {"schema": {"type": "string", "format": "binary"}}}}})
    async def upload(
        request: Request,
        pipeline: str = Query(..., description="pipeline name"),
        filename: str = Query(..., description="name ending in .warc or .warc.gz"),
        priority: int = Query(0, ge=-1000, le=1000),
    ) -> dict:
        check_upload_name(filename)
        service.known_pipeline(pipeline)
        service.check_queue_room()
        bid, final, total = await receive_upload(request, service.uploads, filename, settings.max_upload_bytes)
        try:
            batch = service.queue.submit(f"upload:{filename}", [str(final)], pipeline, priority,
                                         {"upload": filename}, origin="upload", batch_id=bid)
        except BaseException:
            shutil.rmtree(final.parent, ignore_errors=True)
            raise
        service.metrics.upload_bytes.inc(total)
        service.scheduler.wake()
        return batch.to_api()

    @app.post("/v1/batches/{batch_id}/cancel", status_code=202, tags=["batches"], dependencies=[operator])
    def cancel(batch_id: str) -> dict:
        before = service.queue.request_cancel(batch_id)
        if before is None:
            raise HTTPException(404, f"no batch {batch_id!r}")
        if before not in ("queued", "running"):
            raise HTTPException(409, f"batch is {before}; only queued or running batches can be cancelled")
        b = service.queue.get(batch_id)
        return b.to_api() if b else {}

    @app.post("/v1/batches/{batch_id}/retry", status_code=202, tags=["batches"], dependencies=[operator])
    def retry(batch_id: str) -> dict:
        before = service.queue.retry(batch_id)
        if before is None:
            raise HTTPException(404, f"no batch {batch_id!r}")
        if before not in ("failed", "cancelled"):
            raise HTTPException(409, f"batch is {before}; only failed or cancelled batches can be retried")
        service.scheduler.wake()
        b = service.queue.get(batch_id)
        return b.to_api() if b else {}

    return app
