"""Helpers for the service tests: start the real service (uvicorn subprocess), talk to it, clean up.

The service runs in its own session (setsid) so a test can kill -9 it with
its local Ray, and every process left in that session is ended afterwards.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[1]
OPERATOR = "op-token-0123456789abcdef"
READER = "rd-token-0123456789abcdef"
TOKENS = f"{OPERATOR}:operator,{READER}:reader"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def session_pids(sid: int) -> list[int]:
    pids = []
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            stat = (d / "stat").read_text()
        except OSError:
            continue
        fields = stat.rsplit(")", 1)[1].split()
        if int(fields[3]) == sid and int(d.name) != os.getpid():
            pids.append(int(d.name))
    return pids


class ServiceProcess:
    """`refinery serve` as a subprocess on a free loopback port."""

    def __init__(self, store: Path, roots: list[Path], log: Path, extra: list[str] | None = None,
                 env: dict | None = None) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cmd = [sys.executable, "-m", "refinery.cli", "serve", "--store", str(store), "--host", "127.0.0.1",
               "--port", str(self.port), "--log-level", "warning"]
        for r in roots:
            cmd += ["--input-root", str(r)]
        cmd += extra or []
        full_env = {**os.environ, "PYTHONPATH": str(REPO), "REFINERY_TOKENS": TOKENS, **(env or {})}
        self.log = log
        self._logf = log.open("ab")
        self.proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=self._logf, stderr=subprocess.STDOUT,
                                     start_new_session=True)
        self.sid = self.proc.pid

    def wait_ready(self, timeout: float = 120) -> None:
        deadline = time.time() + timeout
        while time.time() < deadline:
            if self.proc.poll() is not None:
                raise AssertionError(f"service exited with {self.proc.returncode}:\n{self.log.read_text()[-3000:]}")
            try:
                if httpx.get(self.url + "/readyz", timeout=2).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            time.sleep(0.3)
        raise AssertionError(f"service not ready after {timeout}s:\n{self.log.read_text()[-3000:]}")

    def kill9(self) -> None:
        """SIGKILL the service and everything in its session (its local Ray included)."""
        for pid in [self.proc.pid] + session_pids(self.sid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        self.proc.wait(10)
        self._reap()

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            try:
                self.proc.wait(20)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait(10)
        self._reap()

    def _reap(self) -> None:
        deadline = time.time() + 10
        while (left := session_pids(self.sid)) and time.time() < deadline:
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except ProcessLookupError:
                    pass
            time.sleep(0.2)
        self._logf.close()


def client(url: str, token: str | None = OPERATOR) -> httpx.Client:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    return httpx.Client(base_url=url, headers=headers, timeout=30)


def wait_state(c: httpx.Client, bid: str, states: tuple[str, ...], timeout: float = 180) -> dict:
    deadline = time.time() + timeout
    b = {}
    while time.time() < deadline:
        b = c.get(f"/v1/batches/{bid}").json()
        if b["state"] in states:
            return b
        time.sleep(0.2)
    raise AssertionError(f"batch {bid} did not reach {states} in {timeout}s: {b}")


def parse_metrics(text: str) -> dict[tuple[str, frozenset], float]:
    """Prometheus text format -> {(name, labels): value} (no escapes needed for our label values)."""
    out = {}
    for line in text.splitlines():
        if not line or line.startswith("#"):
            continue
        head, value = line.rsplit(" ", 1)
        if "{" in head:
            name, rest = head.split("{", 1)
            labels = frozenset(tuple(kv.split("=", 1)) for kv in rest.rstrip("}").split(",") if kv)
            labels = frozenset((k, v.strip('"')) for k, v in labels)
        else:
            name, labels = head, frozenset()
        out[(name, labels)] = float(value)
    return out


def metric_sum(metrics: dict, name: str, **match: str) -> float:
    return sum(v for (n, labels), v in metrics.items()
               if n == name and all((k, val) in labels for k, val in match.items()))


def _socket_inodes(pid: int) -> set[str]:
    inodes = set()
    try:
        for fd in Path(f"/proc/{pid}/fd").iterdir():
            try:
                link = os.readlink(fd)
            except OSError:
                continue
            if link.startswith("socket:["):
                inodes.add(link[8:-1])
    except OSError:
        pass
    return inodes


def _proc_net_address(hex_addr: str) -> str:
    """'0100007F:1F90' -> '127.0.0.1'; IPv6 addresses as /proc/net/tcp6 prints them, decoded."""
    import ipaddress

    host = hex_addr.split(":")[0]
    raw = bytes.fromhex(host)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    words = b"".join(raw[i:i + 4][::-1] for i in range(0, 16, 4))
    return str(ipaddress.IPv6Address(words))


def listening_addresses(pids: list[int]) -> list[tuple[int, str, str]]:
    """(pid, protocol, local address) of every listening TCP socket and bound UDP socket of `pids`."""
    owner = {inode: pid for pid in pids for inode in _socket_inodes(pid)}
    found = []
    for proto, listen_state in (("tcp", "0A"), ("tcp6", "0A"), ("udp", "07"), ("udp6", "07")):
        try:
            lines = Path(f"/proc/net/{proto}").read_text().splitlines()[1:]
        except OSError:
            continue
        for line in lines:
            f = line.split()
            local, state, inode = f[1], f[3], f[9]
            if state == listen_state and inode in owner:
                found.append((owner[inode], proto, _proc_net_address(local)))
    return found


def environ_of(pid: int) -> dict[str, str]:
    try:
        raw = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return {}
    return dict(kv.split("=", 1) for kv in raw.decode(errors="replace").split("\0") if "=" in kv)
