"""Service overhead without Ray: submit latency over HTTP (in-process ASGI), queue claim rate,
/metrics and /v1/overview scrape time as the queue grows.  Prints a table.

    PYTHONPATH=. .venv/bin/python bench/service_queue.py [N]
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from fastapi.testclient import TestClient

from refinery.sample import write_sample_warc
from refinery.service.app import Settings, create_app

TOKEN = "bench-token-0123456789"


def main(n: int = 500) -> None:
    tmp = Path(tempfile.mkdtemp(prefix="refinery-bench-"))
    write_sample_warc(tmp / "in")
    app = create_app(Settings(store=str(tmp / "store"), input_roots=[str(tmp / "in")], tokens={TOKEN: "operator"}))
    c = TestClient(app)  # no lifespan: nothing runs the batches
    h = {"Authorization": f"Bearer {TOKEN}"}
    lat = []
    for i in range(n):
        t = time.perf_counter()
        r = c.post("/v1/batches", json={"source": "sample.warc.gz", "pipeline": "web-en", "priority": i % 5}, headers=h)
        lat.append(time.perf_counter() - t)
        assert r.status_code == 202
    q = app.state.service.queue
    t = time.perf_counter()
    scrape = []
    for _ in range(20):
        s = time.perf_counter()
        c.get("/metrics")
        scrape.append(time.perf_counter() - s)
    overview = []
    for _ in range(20):
        s = time.perf_counter()
        c.get("/v1/overview")
        overview.append(time.perf_counter() - s)
    t = time.perf_counter()
    claimed = 0
    while q.claim_next() is not None:
        claimed += 1
    claim_s = time.perf_counter() - t
    rows = [
        ("submit (HTTP, resolve, SQLite commit)", f"p50 {statistics.median(lat) * 1e3:.2f} ms", f"p95 {sorted(lat)[int(0.95 * n)] * 1e3:.2f} ms"),
        ("claim_next (priority order)", f"{claimed / claim_s:.0f} /s", f"{claimed} batches"),
        (f"GET /metrics with {n} batches", f"p50 {statistics.median(scrape) * 1e3:.2f} ms", ""),
        (f"GET /v1/overview with {n} batches", f"p50 {statistics.median(overview) * 1e3:.2f} ms", ""),
    ]
    w = max(len(r[0]) for r in rows)
    for r in rows:
        print(f"{r[0]:<{w}}  {r[1]:>16}  {r[2]}")


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 500)
