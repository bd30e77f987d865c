"""The real service end to end: uvicorn subprocess, local Ray, real Prometheus, headless Chromium.

One service instance serves the whole module (starting Ray costs ~20 s on
2 cores); the tests run in file order and the first one checks the metrics
before any other batch adds to them.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
import sys
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import httpx
import pytest
import yaml

from refinery.sample import write_sample_warc
from refinery.store import CorpusStore
from conftest import shared
from service_util import (
    OPERATOR,
    READER,
    REPO,
    ServiceProcess,
    client,
    free_port,
    metric_sum,
    parse_metrics,
    wait_state,
)

pytestmark = pytest.mark.slow


S3_KEYS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_REGION": "us-east-1"}


def _start_s3():
    """An S3-compatible server on loopback (moto in server mode), or None when moto is absent."""
    try:
        from moto.server import ThreadedMotoServer
    except ImportError:
        return None, None
    port = free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    return server, f"http://127.0.0.1:{port}"


@pytest.fixture(scope="module")
def env(tmp_path_factory):
    base = tmp_path_factory.mktemp("svc")
    root = base / "inputs"
    root.mkdir()
    write_sample_warc(root / "sample")
    (root / "real").mkdir()
    s3, endpoint = _start_s3()
    extra = ["--concurrency", "3", "--inbox", str(base / "inbox"), "--inbox-pipeline", "web-en"]
    svc_env = {}
    if s3 is not None:
        extra += ["--object-store-root", "s3://crawl/2026"]
        svc_env = {**S3_KEYS, "REFINERY_S3_ENDPOINT": endpoint}
    svc = ServiceProcess(base / "store", [root], base / "service.log", extra, env=svc_env)
    try:
        svc.wait_ready()
        yield {"base": base, "root": root, "svc": svc, "store": base / "store", "s3": endpoint}
    finally:
        svc.stop()
        if s3 is not None:
            s3.stop()


def _commit_counters(store: Path) -> tuple[dict, int, int]:
    totals: dict = {}
    rows = docs_in = 0
    for rec in CorpusStore(store, create=False).commits():
        rows += rec.rows
        docs_in += rec.docs_in
        for stage, c in rec.counters.items():
            t = totals.setdefault(stage, {"in": 0, "out": 0, "dropped": {}})
            t["in"] += c["in"]
            t["out"] += c["out"]
            for reason, n in c["dropped"].items():
                t["dropped"][reason] = t["dropped"].get(reason, 0) + n
    return totals, rows, docs_in


def _start_prometheus(base: Path, service_port: int) -> tuple[subprocess.Popen, str]:
    """deploy/prometheus.yml, templated: the refinery job points at the test's port, scrape every second."""
    if shutil.which("prometheus") is None:
        pytest.fail("Debian's prometheus package is missing: run deploy/setup.sh --dev")
    cfg = yaml.safe_load((REPO / "deploy" / "prometheus.yml").read_text())
    cfg["global"]["scrape_interval"] = "1s"
    cfg["global"]["evaluation_interval"] = "1s"
    cfg["rule_files"] = [str(REPO / "deploy" / p) for p in cfg.get("rule_files", [])]
    cfg.pop("alerting", None)
    jobs = {j["job_name"]: j for j in cfg["scrape_configs"]}
    assert "refinery" in jobs and "ray" in jobs, "deploy/prometheus.yml must scrape the service and Ray"
    jobs["refinery"]["static_configs"] = [{"targets": [f"127.0.0.1:{service_port}"]}]
    jobs["refinery"]["scrape_interval"] = "1s"
    cfg["scrape_configs"] = [jobs["refinery"]]  # no Ray metrics endpoint to scrape in the test
    path = base / "prometheus.yml"
    path.write_text(yaml.safe_dump(cfg))
    port = free_port()
    log = (base / "prometheus.log").open("wb")
    proc = subprocess.Popen(
        ["prometheus", f"--config.file={path}", f"--storage.tsdb.path={base / 'tsdb'}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
    )
    return proc, f"http://127.0.0.1:{port}"


def _promql(url: str, query: str) -> float | None:
    r = httpx.get(url + "/api/v1/query", params={"query": query}, timeout=5).json()
    result = r["data"]["result"] if r.get("status") == "success" else []
    return float(result[0]["value"][1]) if result else None


def test_three_concurrent_batches_commit_and_metrics_match(env):
    svc = env["svc"]
    real = shared("warc", "dolma_wget", "sample-0001.warc.gz")
    shutil.copy(real, env["root"] / "real" / real.name)
    upload = shared("warc", "dolma_wget", "sample-0000.warc.gz")
    prom, prom_url = _start_prometheus(env["base"], svc.port)
    try:
        with client(svc.url) as c:
            def by_path(src):
                r = c.post("/v1/batches", json={"source": src, "pipeline": "web-en", "labels": {"test": "path"}})
                assert r.status_code == 202, r.text
                return r.json()

            def by_upload():
                r = c.post("/v1/batches/upload", params={"pipeline": "web-en", "filename": upload.name},
                           content=upload.read_bytes(), headers={"Content-Type": "application/octet-stream"})
                assert r.status_code == 202, r.text
                return r.json()

            with ThreadPoolExecutor(3) as pool:
                futs = [pool.submit(by_path, "sample/sample.warc.gz"), pool.submit(by_path, "real/*.warc.gz"),
                        pool.submit(by_upload)]
                submitted = [f.result() for f in futs]
            assert all(b["state"] == "queued" and len(b["id"]) == 32 for b in submitted)
            done = [wait_state(c, b["id"], ("committed", "failed", "cancelled")) for b in submitted]
            assert [b["state"] for b in done] == ["committed"] * 3, [b.get("error") for b in done]
            assert len({b["commit"] for b in done}) == 3

            store = CorpusStore(env["store"], create=False)
            assert len(store.commits()) == 3
            for b in done:
                rec = store.commit(b["commit"])
                assert rec.labels["refinery_batch_id"] == b["id"]
                assert b["counters"] == rec.counters
                assert b["progress"]["units_done"] == b["progress"]["units_total"] >= 1

            commits = c.get("/v1/commits", params={"since": 0}).json()
            assert [x["commit"] for x in commits["commits"]] == [1, 2, 3] and commits["latest"] == 3
            assert [x["commit"] for x in c.get("/v1/commits", params={"since": 2}).json()["commits"]] == [3]

            totals, rows, docs_in = _commit_counters(env["store"])
            m = parse_metrics(httpx.get(svc.url + "/metrics").text)
            for stage, t in totals.items():
                assert metric_sum(m, "refinery_stage_documents_in_total", stage=stage) == t["in"], stage
                assert metric_sum(m, "refinery_stage_documents_out_total", stage=stage) == t["out"], stage
                for reason, n in t["dropped"].items():
                    assert metric_sum(m, "refinery_stage_documents_dropped_total", stage=stage, reason=reason) == n
                assert metric_sum(m, "refinery_stage_documents_dropped_total", stage=stage) == sum(t["dropped"].values())
                assert metric_sum(m, "refinery_stage_duration_seconds_count", stage=stage) >= 3
            assert metric_sum(m, "refinery_committed_rows_total") == rows > 0
            assert metric_sum(m, "refinery_committed_input_documents_total") == docs_in
            assert metric_sum(m, "refinery_commits_total") == 3
            assert metric_sum(m, "refinery_committed_shards_total") == sum(len(r.shards) for r in store.commits())
            assert metric_sum(m, "refinery_batches", state="committed") == 3
            assert metric_sum(m, "refinery_queue_depth") == 0
            assert metric_sum(m, "refinery_batches_finished_total", state="committed") == 3
            assert metric_sum(m, "refinery_batch_duration_seconds_count") == 3
            assert metric_sum(m, "refinery_upload_bytes_total") == upload.stat().st_size
            assert 0 <= metric_sum(m, "refinery_seconds_since_last_commit") < 300
            assert metric_sum(m, "refinery_committed_documents_by_language_total", language="en") == rows

        # The same numbers through a real Prometheus server scraping with deploy/prometheus.yml.
        deadline = time.time() + 60
        got = None
        while time.time() < deadline:
            try:
                got = _promql(prom_url, 'sum(refinery_committed_rows_total{job="refinery"})')
            except httpx.HTTPError:
                got = None
            if got == rows:
                break
            time.sleep(0.5)
        assert got == rows, f"PromQL committed documents {got} != {rows}"
        assert _promql(prom_url, 'sum(refinery_stage_documents_in_total{stage="read"})') == totals["read"]["in"]
        rules = httpx.get(prom_url + "/api/v1/rules", timeout=5).json()["data"]["groups"]
        names = {r["name"] for g in rules for r in g["rules"]}
        assert {"RefineryNoCommit", "RefineryBatchFailureRate", "RefineryQueueGrowing"} <= names
    finally:
        prom.kill()
        prom.wait(10)


def test_resubmitting_a_committed_batch_commits_nothing_new(env):
    with client(env["svc"].url) as c:
        first = c.post("/v1/batches", json={"source": "sample/sample.warc.gz", "pipeline": "web-en"}).json()
        first = wait_state(c, first["id"], ("committed", "failed"))
        assert first["state"] == "committed", first.get("error")
        count = len(CorpusStore(env["store"], create=False).commits())
        r = c.post("/v1/batches", json={"source": "sample", "pipeline": "web-en"})  # same file, as a directory
        assert r.status_code == 202, r.text
        b = wait_state(c, r.json()["id"], ("committed", "failed"))
    assert b["state"] == "committed" and b["already_committed"] is True and b["commit"] == first["commit"]
    assert len(CorpusStore(env["store"], create=False).commits()) == count


def _chromium(args: list[str], url: str, profile: Path) -> subprocess.CompletedProcess:
    exe = shutil.which("chromium") or shutil.which("chromium-browser")
    if exe is None:
        pytest.fail("Debian's chromium package is missing: run deploy/setup.sh --dev")
    flags = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
             "--disable-background-networking", "--disable-component-update", "--disable-sync",
             f"--user-data-dir={profile}", "--window-size=1500,1000", "--hide-scrollbars",
             "--virtual-time-budget=6000"]
    return subprocess.run([exe, *flags, *args, url], capture_output=True, text=True, timeout=120)


def test_status_page_renders_charts_in_chromium(env, tmp_path):
    svc = env["svc"]
    with client(svc.url) as c:
        if not CorpusStore(env["store"], create=False).commits():
            r = c.post("/v1/batches", json={"source": "sample", "pipeline": "web-en"})
            wait_state(c, r.json()["id"], ("committed",))
            time.sleep(4)  # two samples of the throughput series
    dom = _chromium(["--dump-dom"], svc.url + "/", tmp_path / "profile-dom").stdout
    assert 'data-ready="1"' in dom, dom[:2000]
    for chart in ("throughput", "drops", "languages"):
        m = re.search(rf'id="{chart}" data-points="(\d+)"', dom)
        assert m and int(m.group(1)) > 0, f"chart {chart} is empty"
    assert "committed" in dom and "web-en" in dom
    shot = tmp_path / "status.png"
    _chromium([f"--screenshot={shot}"], svc.url + "/", tmp_path / "profile-shot")
    assert shot.exists() and shot.stat().st_size > 20_000
    print(f"status page screenshot: {shot}")


def test_cancel_running_batch_leaves_nothing(env):
    one = (env["root"] / "sample" / "sample.warc.gz").read_bytes()
    (env["root"] / "cancel-me.warc.gz").write_bytes(one * 4)  # gzip members concatenate: a valid, longer WARC
    before = len(CorpusStore(env["store"], create=False).commits())
    with client(env["svc"].url) as c:
        b = c.post("/v1/batches", json={"source": "cancel-me.warc.gz", "pipeline": "web-en"}).json()
        wait_state(c, b["id"], ("running",))
        r = c.post(f"/v1/batches/{b['id']}/cancel")
        assert r.status_code == 202, r.text
        done = wait_state(c, b["id"], ("cancelled", "committed", "failed"), timeout=60)
        assert done["state"] == "cancelled", done
        assert len(CorpusStore(env["store"], create=False).commits()) == before
        assert list((env["store"] / "staging").iterdir()) == []  # the attempt's staging is gone
        # cancelling again is a conflict; retry requeues it
        assert c.post(f"/v1/batches/{b['id']}/cancel").status_code == 409
        r = c.post(f"/v1/batches/{b['id']}/retry")
        assert r.status_code == 202 and r.json()["state"] in ("queued", "running")
        again = wait_state(c, b["id"], ("committed", "failed", "cancelled"))
        assert again["state"] == "committed" and again["attempts"] == 2
        assert c.post(f"/v1/batches/{b['id']}/retry").status_code == 409
    store = CorpusStore(env["store"], create=False)
    assert len(store.commits()) == before + 1
    assert [p for p in (env["store"] / "staging").iterdir()] == []


def test_cli_client(env):
    svc = env["svc"]
    base = [sys.executable, "-m", "refinery.cli"]
    envv = {"PYTHONPATH": str(REPO), "PATH": "/usr/bin:/bin", "REFINERY_TOKEN": OPERATOR}

    def run(*args, token_env=True):
        e = dict(envv) if token_env else {k: v for k, v in envv.items() if k != "REFINERY_TOKEN"}
        return subprocess.run([*base, *args], capture_output=True, text=True, env=e, timeout=120, cwd=REPO)

    r = run("submit", "--server", svc.url, "--pipeline", "web-en", "sample/sample.warc.gz", "--wait")
    assert r.returncode == 0, r.stderr
    bid = re.search(r"submitted ([0-9a-f]{32})", r.stdout).group(1)
    assert "committed" in r.stdout
    r = run("status", bid, "--server", svc.url, "--token", READER, "--once", "--json")
    assert r.returncode == 0 and json.loads(r.stdout)["state"] == "committed"
    r = run("batches", "--server", svc.url, "--state", "committed")
    assert r.returncode == 0 and bid in r.stdout
    r = run("cancel", bid, "--server", svc.url)
    assert r.returncode == 1 and "409" in r.stderr and "committed" in r.stderr
    r = run("submit", "--server", svc.url, "--pipeline", "web-en", "x", token_env=False)
    assert r.returncode == 1 and "REFINERY_TOKEN" in r.stderr
    r = run("submit", "--server", svc.url, "--token", READER, "--pipeline", "web-en", "sample")
    assert r.returncode == 1 and "403" in r.stderr


def test_inbox_file_becomes_a_committed_batch(env):
    inbox = env["base"] / "inbox"
    write_sample_warc(env["base"] / "staged")
    # writers copy under a dot name and rename, so a half-written file is never picked up
    shutil.copy(env["base"] / "staged" / "sample.warc.gz", inbox / ".incoming.warc.gz")
    (inbox / ".incoming.warc.gz").rename(inbox / "dropped.warc.gz")
    with client(env["svc"].url, READER) as c:
        deadline = time.time() + 30
        found = []
        while time.time() < deadline and not found:
            found = [b for b in c.get("/v1/batches").json()["batches"] if b["origin"] == "inbox"]
            time.sleep(0.5)
        assert len(found) == 1, "the inbox file did not become a batch"
        b = wait_state(c, found[0]["id"], ("committed", "failed", "cancelled"))
    assert b["state"] == "committed" and b["labels"] == {"inbox": "dropped.warc.gz"}
    assert b["inputs"] == [str((inbox / "dropped.warc.gz").resolve())]
    time.sleep(5)  # two more polls: the same file is not submitted again
    with client(env["svc"].url, READER) as c:
        assert len([x for x in c.get("/v1/batches").json()["batches"] if x["origin"] == "inbox"]) == 1


def test_object_store_source(env):
    if env["s3"] is None:
        pytest.skip("moto (dev extra) not installed: no S3-compatible server for this test")
    import pyarrow.fs as pafs

    from refinery.service.objects import filesystem_from_env

    assert filesystem_from_env({**S3_KEYS, "REFINERY_S3_ENDPOINT": env["s3"]}).get_file_info("crawl").type is not None
    fs = pafs.S3FileSystem(access_key="testing", secret_key="testing", region="us-east-1",
                           endpoint_override=env["s3"].split("//")[1], scheme="http", allow_bucket_creation=True)
    fs.create_dir("crawl")
    write_sample_warc(env["base"] / "s3src")
    data = (env["base"] / "s3src" / "sample.warc.gz").read_bytes()
    for key in ("crawl/2026/week48/sample.warc.gz", "crawl/private/sample.warc.gz"):
        with fs.open_output_stream(key) as f:
            f.write(data)
    before = len(CorpusStore(env["store"], create=False).commits())
    with client(env["svc"].url) as c:
        for src in ("s3://crawl/private/sample.warc.gz", "s3://crawl/2026/../private/sample.warc.gz",
                    "s3://other-bucket/x.warc.gz"):
            r = c.post("/v1/batches", json={"source": src, "pipeline": "web-en"})
            assert r.status_code == 403, r.text
        r = c.post("/v1/batches", json={"source": "s3://crawl/2026/nothing-here/*.warc.gz", "pipeline": "web-en"})
        assert r.status_code == 422, r.text
        r = c.post("/v1/batches", json={"source": "s3://crawl/2026/*/*.warc.gz", "pipeline": "web-en"})
        assert r.status_code == 202, r.text
        b = r.json()
        assert b["inputs"] == ["s3://crawl/2026/week48/sample.warc.gz"]
        done = wait_state(c, b["id"], ("committed", "failed", "cancelled"))
        assert done["state"] == "committed", done.get("error")
        # the same objects again: same batch key, no second commit
        r = c.post("/v1/batches", json={"source": "s3://crawl/2026/week48", "pipeline": "web-en"})
        again = wait_state(c, r.json()["id"], ("committed", "failed", "cancelled"))
        assert again["state"] == "committed" and again["already_committed"] and again["commit"] == done["commit"]
    assert len(CorpusStore(env["store"], create=False).commits()) == before + 1


def test_ray_listens_on_loopback_only_and_holds_no_secret(env):
    """Every process of the service's tree listens on loopback only; no Ray process has a token
    or an object-store key in its environment (they would let anyone on the host attach a driver)."""
    import ipaddress

    from service_util import environ_of, listening_addresses, session_pids

    svc = env["svc"]
    pids = [svc.proc.pid] + session_pids(svc.sid)
    cmdlines = {p: Path(f"/proc/{p}/cmdline").read_bytes().replace(b"\0", b" ") for p in pids
                if Path(f"/proc/{p}/cmdline").exists()}
    assert any(b"raylet" in c for c in cmdlines.values()) and any(b"gcs_server" in c for c in cmdlines.values())
    listening = listening_addresses(pids)
    assert len(listening) >= 5, listening  # the HTTP port, GCS, raylet, workers, agents
    exposed = [(cmdlines.get(p), proto, addr) for p, proto, addr in listening
               if not ipaddress.ip_address(addr).is_loopback
               and not (isinstance(ipaddress.ip_address(addr), ipaddress.IPv6Address)
                        and (ipaddress.ip_address(addr).ipv4_mapped or ipaddress.ip_address(addr)).is_loopback)]
    assert exposed == []
    for pid in pids:
        if pid == svc.proc.pid:
            continue  # the service itself holds its tokens: it checks them
        environ = environ_of(pid)
        assert "REFINERY_TOKENS" not in environ, cmdlines.get(pid)
        assert not any(OPERATOR in v or READER in v for v in environ.values()), cmdlines.get(pid)
        assert not {"AWS_SECRET_ACCESS_KEY", "AWS_ACCESS_KEY_ID"} & set(environ), cmdlines.get(pid)
        if b"raylet" in cmdlines.get(pid, b""):
            assert environ.get("RAY_AUTH_MODE") == "token" and environ.get("RAY_AUTH_TOKEN_PATH")
