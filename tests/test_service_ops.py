"""Operator-facing service behaviour without Ray: lifecycle log lines, the status page's batch
detail and errors, the favicon, JSON logs (issue 19).  SIGTERM is in test_service_integration."""

from __future__ import annotations

import json
import logging

import pytest
from fastapi.testclient import TestClient

from refinery.sample import write_sample_warc
from refinery.service.app import Settings, create_app
from refinery.service.events import JsonFormatter
from service_util import OPERATOR, READER, parse_metrics


@pytest.fixture
def svc(tmp_path):
    root = tmp_path / "inputs"
    root.mkdir()
    write_sample_warc(root)
    settings = Settings(store=str(tmp_path / "store"), input_roots=[str(root)],
                        tokens={OPERATOR: "operator", READER: "reader"})  # fmt: skip
    app = create_app(settings)
    yield TestClient(app), app.state.service, root  # lifespan not entered: no scheduler thread, no Ray
    app.state.service.queue.close()


def _auth(token=OPERATOR):
    return {"Authorization": f"Bearer {token}"}


def test_failed_batch_error_in_log_status_page_and_cli_listing(svc, caplog, tmp_path):
    c, service, root = svc
    caplog.set_level(logging.INFO, logger="refinery.batch")
    r = c.post("/v1/batches", json={"source": str(root / "sample.warc.gz"), "pipeline": "web-en"}, headers=_auth())
    bid = r.json()["id"]
    (root / "sample.warc.gz").unlink()  # the input disappears before the batch runs
    batch = service.queue.claim_next()
    service.scheduler._run(batch)  # the scheduler's worker, called directly: no Ray needed to fail
    b = c.get(f"/v1/batches/{bid}", headers=_auth()).json()
    assert b["state"] == "failed" and b["error"]
    lines = [rec.getMessage() for rec in caplog.records if rec.name == "refinery.batch"]
    assert any(m.startswith(f"batch queued id={bid}") for m in lines), lines
    assert any(m.startswith(f"batch started id={bid}") for m in lines), lines
    failed = [rec for rec in caplog.records if rec.getMessage().startswith(f"batch failed id={bid}")]
    assert failed and failed[0].levelno == logging.ERROR and "error=" in failed[0].getMessage()
    recent = c.get("/v1/overview").json()["recent"]
    assert recent[0]["id"] == bid and recent[0]["error"] and str(root) not in recent[0]["error"]
    detail = c.get(f"/v1/status/batches/{bid}").json()
    assert detail["state"] == "failed" and detail["error"] == recent[0]["error"]
    page = c.get("/").text
    assert 'id="detail"' in page and "errline" in page and "@media (max-width: 1000px)" in page
    assert c.get(f"/v1/batches/{bid}/report", headers=_auth(READER)).status_code == 409  # not committed
    assert c.get(f"/v1/batches/{bid}/report").status_code == 401


def test_favicon_served_and_not_counted_as_refused(svc):
    c, _, _ = svc
    r = c.get("/favicon.ico")
    assert r.status_code == 200 and r.headers["content-type"].startswith("image/svg+xml")
    m = parse_metrics(c.get("/metrics").text)
    refused = sum(v for (name, _), v in m.items() if name == "refinery_http_requests_refused_total")
    assert refused == 0


def test_json_log_lines_carry_the_event_fields():
    record = logging.LogRecord("refinery.batch", logging.ERROR, __file__, 1, "batch failed id=abc error=x", None, None)
    record.event, record.batch_id, record.fields = "batch_failed", "abc", {"error": "x: y", "seconds": 1.5}
    out = json.loads(JsonFormatter().format(record))
    assert out["event"] == "batch_failed" and out["batch_id"] == "abc" and out["error"] == "x: y"
    assert out["level"] == "error" and out["message"].startswith("batch failed")


@pytest.mark.slow
def test_sigterm_exits_zero_without_traceback(tmp_path):
    """`docker stop`: SIGTERM while a batch runs ends the service with 0, the batch parked, no traceback."""
    import signal
    import time

    from conftest import shared
    from service_util import ServiceProcess, client, wait_state

    warcs = shared("warc", "dolma_wget")
    log = tmp_path / "service.log"
    s = ServiceProcess(tmp_path / "store", [warcs], log, extra=["--log-format", "json"])
    try:
        s.wait_ready()
        c = client(s.url)
        bid = c.post("/v1/batches", json={"source": str(warcs), "pipeline": "web-en"}).json()["id"]
        wait_state(c, bid, ("running", "committed"))
        time.sleep(1.0)
        s.proc.send_signal(signal.SIGTERM)
        rc = s.proc.wait(60)
    finally:
        s.stop()
    text = log.read_text()
    assert rc == 0, text[-3000:]
    assert "Traceback" not in text and "SIGTERM received" not in text, text[-3000:]
    events = [json.loads(line) for line in text.splitlines() if line.startswith("{")]
    mine = [e["event"] for e in events if e.get("batch_id") == bid]
    assert mine[:2] == ["batch_queued", "batch_started"], mine
    assert "batch_parked" in mine or "batch_committed" in mine, mine
