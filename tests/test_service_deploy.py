"""deploy/ and docs/api.md stay consistent with the metrics the service exports."""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml

from refinery.service.metrics import ServiceMetrics
from refinery.service.publisher import Publisher
from refinery.service.queue import BatchQueue
from refinery.store import CorpusStore

REPO = Path(__file__).resolve().parents[1]
DEPLOY = REPO / "deploy"


def _exported_families(tmp_path) -> set[str]:
    store = CorpusStore(tmp_path / "store")
    m = ServiceMetrics(store, BatchQueue(store.state_dir / "q.db"))
    m.unit_done("web-en", {"extract": {"in": 2, "out": 1, "dropped": {"empty": 1}, "seconds": 0.1}})
    m.batch_finished("web-en", "committed", 1.0)
    m.upload_bytes.inc(1)
    m.requests_refused.labels("401").inc()
    m.publisher = Publisher(store, str(tmp_path / "published"))  # as with --publish, once it reached the URI
    m.publisher.publish_once()
    names = set()
    for fam in m.registry.collect():
        names.add(fam.name + "_total" if fam.type == "counter" else fam.name)
    return names


def test_docs_list_every_metric(tmp_path):
    doc = (REPO / "docs" / "api.md").read_text()
    documented = set(re.findall(r"`(refinery_[a-z_]+)`", doc))
    exported = _exported_families(tmp_path)
    # families that appear only once data exists
    exported |= {"refinery_last_commit_timestamp_seconds", "refinery_seconds_since_last_commit",
                 "refinery_dedup_index_entries"}
    assert exported <= documented, f"undocumented: {sorted(exported - documented)}"
    for name in exported:
        assert re.fullmatch(r"refinery_[a-z_]+", name)


def test_dashboard_and_alerts_use_exported_metrics(tmp_path):
    exported = _exported_families(tmp_path) | {"refinery_last_commit_timestamp_seconds",
                                               "refinery_seconds_since_last_commit", "refinery_dedup_index_entries"}
    histo = {"refinery_stage_duration_seconds", "refinery_batch_duration_seconds"}
    valid = exported | {h + s for h in histo for s in ("_bucket", "_count", "_sum")}
    dash = json.loads((DEPLOY / "grafana" / "refinery-dashboard.json").read_text())
    panels = dash["panels"]
    exprs = [t["expr"] for p in panels for t in p.get("targets", [])]  # a row panel has no targets
    charted = " ".join(exprs)
    rules = yaml.safe_load((DEPLOY / "alerts.yml").read_text())
    exprs += [r["expr"] for g in rules["groups"] for r in g["rules"]]
    titles = " ".join(p["title"].lower() for p in panels)
    for word in ("throughput", "drop", "language", "queue", "batch latency", "index", "publish"):
        assert word in titles
    # the Publishing row: published vs latest commit, lag, error rate
    assert any(p["type"] == "row" and p["title"] == "Publishing" for p in panels)
    for name in ("refinery_published_commit", "refinery_commits_total", "refinery_publish_lag_commits",
                 "rate(refinery_publish_errors_total["):
        assert name in charted, f"no dashboard panel charts {name}"
    # Grafana needs unique panel ids; overlapping gridPos boxes render on top of each other
    assert len({p["id"] for p in panels}) == len(panels)
    boxes = [(p["gridPos"]["x"], p["gridPos"]["y"], p["gridPos"]["w"], p["gridPos"]["h"]) for p in panels]
    for i, (x, y, w, h) in enumerate(boxes):
        assert x + w <= 24, panels[i]["title"]
        for x2, y2, w2, h2 in boxes[i + 1:]:
            assert x + w <= x2 or x2 + w2 <= x or y + h <= y2 or y2 + h2 <= y, f"{panels[i]['title']} overlaps"
    for e in exprs:
        for name in re.findall(r"\b(refinery_[a-z_]+)", e):
            assert name in valid, f"{name} in {e!r} is not exported"


def test_promtool_accepts_config_and_rules():
    promtool = shutil.which("promtool")
    if promtool is None:
        pytest.fail("promtool (Debian's prometheus package) missing: run deploy/setup.sh --dev")
    for args in (["check", "config", str(DEPLOY / "prometheus.yml")], ["check", "rules", str(DEPLOY / "alerts.yml")]):
        r = subprocess.run([promtool, *args], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr


def test_compose_file_validates():
    exe = shutil.which("docker-compose")
    if exe is None:
        pytest.skip("Debian's docker-compose package not installed (optional: only validates the file)")
    env = {**os.environ, "REFINERY_TOKENS": "x" * 16 + ":operator", "GRAFANA_ADMIN_PASSWORD": "x",
           "MINIO_ROOT_PASSWORD": "xxxxxxxx"}
    r = subprocess.run([exe, "-f", str(REPO / "docker-compose.yml"), "config"], capture_output=True, text=True,
                       env=env, timeout=60, cwd=REPO)
    assert r.returncode == 0, r.stderr
    cfg = yaml.safe_load(r.stdout)
    assert {"ray-head", "ray-worker-1", "ray-worker-2", "refinery", "prometheus", "grafana", "minio"} <= set(cfg["services"])
    services = cfg["services"]
    # the service is a Ray driver on a Ray node of its own (issue 19), not a bare client of ray-head:6379
    command = " ".join(services["refinery"]["command"])
    assert "ray start --address=ray-head:6379 --num-cpus=0" in command and "--address auto" in command
    # the image's HEALTHCHECK probes :8080, which Ray nodes do not serve: each Ray node overrides it
    for name in ("ray-head", "ray-worker-1", "ray-worker-2"):
        test = services[name]["healthcheck"]["test"]
        assert test == ["NONE"] or test[:3] == ["CMD", "ray", "status"], (name, test)
