"""`refinery run --address` against a real two-node Ray cluster started on this machine.

The nodes are started with `ray start ... --block` in their own process groups,
so the test tears down exactly its own cluster (never `ray stop`, which would
kill every Ray on the machine).
"""

from __future__ import annotations

import os
import signal
import socket
import shutil
import subprocess
import tempfile
import sys
import time
from pathlib import Path

import pytest

from conftest import shared
from helpers import cli_env, refinery
from refinery.store import CorpusStore

pytestmark = pytest.mark.slow
RAY = str(Path(sys.executable).parent / "ray")
# A loopback-only test cluster: Ray's token auth would need the token shared between nodes.
CLUSTER_ENV = {"RAY_AUTH_MODE": "disabled"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_node(log: Path, *args: str) -> subprocess.Popen:
    ports = [
        "--ray-client-server-port", str(free_port()),
        "--dashboard-agent-listen-port", str(free_port()),
        "--dashboard-agent-grpc-port", str(free_port()),
        "--metrics-export-port", str(free_port()),
        "--runtime-env-agent-port", str(free_port()),
    ]
    return subprocess.Popen(
        [RAY, "start", "--block", "--num-cpus", "1", *ports, *args],
        env=cli_env(**CLUSTER_ENV),
        stdout=log.open("wb"),
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )


def stop_node(proc: subprocess.Popen) -> None:
    for sig in (signal.SIGTERM, signal.SIGKILL):
        try:
            os.killpg(proc.pid, sig)
        except ProcessLookupError:
            return
        try:
            proc.wait(timeout=20)
            return
        except subprocess.TimeoutExpired:
            continue


def wait_for_nodes(address: str, n: int, logs: list[Path], timeout: float = 180) -> None:
    code = (
        "import ray, sys; ray.init(address=sys.argv[1], logging_level='ERROR');"
        "print(sum(1 for x in ray.nodes() if x['Alive']))"
    )
    deadline = time.time() + timeout
    while time.time() < deadline:
        try:
            out = subprocess.run(
                [sys.executable, "-c", code, address], capture_output=True, text=True, env=cli_env(**CLUSTER_ENV), timeout=60
            )
        except subprocess.TimeoutExpired:
            continue
        if out.returncode == 0 and out.stdout.strip().isdigit() and int(out.stdout.strip()) >= n:
            return
        time.sleep(2)
    tails = "\n".join(p.read_text(errors="replace")[-3000:] for p in logs if p.exists())
    raise AssertionError(f"cluster at {address} did not reach {n} nodes:\n{tails}")


def test_run_on_two_node_cluster(tmp_path):
    # Ray's socket paths must stay under 107 bytes: pytest's tmp_path is too deep.
    ray_tmp = Path(tempfile.mkdtemp(prefix="rt", dir="/tmp"))
    # Enough work (156 real pages, ~20 units) that the second node's worker, which starts later
    # (it unpacks the shipped package first), still finds units left to run.
    inputs = [str(shared("warc", "real_pages", "pages-000.warc.gz"))]
    port = free_port()
    address = f"127.0.0.1:{port}"
    head = start_node(tmp_path / "head.log", "--head", "--port", str(port), "--node-ip-address", "127.0.0.1", "--include-dashboard=false",
                      "--temp-dir", str(ray_tmp))
    worker = None
    try:
        wait_for_nodes(address, 1, logs=[tmp_path / "head.log"])  # a slow head makes the worker give up
        worker = start_node(tmp_path / "worker.log", "--address", address, "--node-ip-address", "127.0.0.1")
        wait_for_nodes(address, 2, logs=[tmp_path / "head.log", tmp_path / "worker.log"])
        store = tmp_path / "store"
        refinery("run", "-q", "--pipeline", "pipelines/web-multilingual.yaml", *inputs, "--store", str(store),
                 "--address", address, **CLUSTER_ENV)
        [rec] = CorpusStore(store, create=False).commits()
        assert rec.docs_out > 0
        assert len(rec.execution["nodes"]) == 2, rec.execution  # both nodes ran work units
    finally:
        if worker is not None:
            stop_node(worker)
        stop_node(head)
        shutil.rmtree(ray_tmp, ignore_errors=True)
