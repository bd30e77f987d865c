"""Soak: run `refinery serve` for a given time under continuous submissions; print throughput and
resident memory (the service process, and the service plus its local Ray: raylet, GCS, workers)
over time.  Memory must stay flat after warm-up.

    PYTHONPATH=. .venv/bin/python bench/soak.py [--minutes 30] [--sample-s 60] [--pipeline web-en]

Every submission is a freshly generated WARC (pages assembled at random from the standard
library's docstrings plus a unique sentence per page), so no batch is a no-op re-run and the dedup
index keeps growing as it would in production.  The service runs in its own session (setsid);
every process of that session is counted (read from /proc, no psutil needed) and ended at the end.
"""

from __future__ import annotations

import argparse
import html
import os
import random
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from bench.proctree import session_pids
from refinery.sample import warc_record

REPO = Path(__file__).resolve().parents[1]
TOKEN = "soak-operator-token-0123456789"
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


def _pool() -> list[str]:
    """Paragraphs from the standard library's docstrings: real English prose, no download."""
    import importlib
    import pkgutil

    paras: list[str] = []
    for name in sorted(sys.stdlib_module_names):
        if name.startswith("_") or name in {"antigravity", "this", "idlelib", "tkinter", "turtledemo"}:
            continue
        try:
            mod = importlib.import_module(name)
        except Exception:  # noqa: BLE001 - optional modules missing here are skipped
            continue
        for obj in [mod, *[getattr(mod, a, None) for a in dir(mod)[:40]]]:
            doc = getattr(obj, "__doc__", None)
            if isinstance(doc, str):
                for p in doc.split("\n\n"):
                    p = " ".join(p.split())
                    if len(p) > 80 and p not in paras:
                        paras.append(p)
    del pkgutil
    return paras


def write_warc(path: Path, pool: list[str], rng: random.Random, pages: int, serial: int) -> None:
    with path.open("wb") as f:
        for i in range(pages):
            paras = rng.sample(pool, k=min(len(pool), rng.randint(4, 12)))
            paras.append(f"This is note {serial}.{i} of the soak run, written on {rng.random():.12f}.")
            body = "".join(f"<p>{html.escape(p)}</p>" for p in paras)
            page = (f"<!DOCTYPE html><html lang=en><head><meta charset=utf-8><title>Note {serial}.{i}</title></head>"
                    f"<body><nav><a href=/>Home</a> <a href=/docs>Docs</a></nav><main><article>"
                    f"<h1>Note {serial}.{i}</h1>{body}</article></main><footer>Copyright 2026</footer></body></html>")
            f.write(warc_record(f"http://soak.refinery.invalid/{serial}/{i}", page.encode(), i))


def session_rss(sid: int) -> tuple[int, int, int]:
    """(RSS of the session leader, RSS of every process in the session, process count) in bytes."""
    leader = total = n = 0
    for d in Path("/proc").iterdir():
        if not d.name.isdigit():
            continue
        try:
            fields = (d / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[3]) != sid:
            continue
        rss = int(fields[21]) * PAGE_SIZE
        total += rss
        n += 1
        if int(d.name) == sid:
            leader = rss
    return leader, total, n


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--minutes", type=float, default=30)
    ap.add_argument("--sample-s", type=float, default=60, help="seconds between memory samples")
    ap.add_argument("--pages", type=int, default=60, help="pages per submitted WARC")
    ap.add_argument("--pipeline", default="web-en")
    ap.add_argument("--backlog", type=int, default=2, help="keep this many batches queued")
    ap.add_argument("--workdir", default=None)
    ap.add_argument("--publish", default=None,
                    help="serve with --publish URI (a path or s3://...); the table gains the publish lag")
    args = ap.parse_args()

    work = Path(args.workdir or tempfile.mkdtemp(prefix="refinery-soak-"))
    inputs = work / "inputs"
    inputs.mkdir(parents=True, exist_ok=True)
    pool = _pool()
    rng = random.Random(7)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    log = (work / "service.log").open("ab")
    cmd = [sys.executable, "-m", "refinery.cli", "serve", "--store", str(work / "store"), "--input-root", str(inputs),
           "--host", "127.0.0.1", "--port", str(port), "--log-level", "warning", "--concurrency", "1"]
    if args.publish:
        cmd += ["--publish", args.publish]
    env = {**os.environ, "PYTHONPATH": str(REPO), "REFINERY_TOKENS": f"{TOKEN}:operator"}
    proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    sid = proc.pid
    c = httpx.Client(base_url=url, headers={"Authorization": f"Bearer {TOKEN}"}, timeout=30)
    print(f"soak: {args.minutes} min, pipeline {args.pipeline}, {args.pages} pages/batch, work dir {work}", flush=True)
    try:
        deadline = time.time() + 180
        while time.time() < deadline:
            try:
                if c.get("/readyz").status_code == 200:
                    break
            except httpx.HTTPError:
                pass
            if proc.poll() is not None:
                sys.exit(f"service exited {proc.returncode}; see {work / 'service.log'}")
            time.sleep(0.5)
        start = time.time()
        end = start + args.minutes * 60
        serial = 0
        pending: set[str] = set()
        committed = failed = docs = 0
        rows = []
        next_sample = start
        hdr = f"{'min':>6} {'batches':>8} {'failed':>6} {'docs':>8} {'docs/s':>7} {'svc RSS MiB':>11} {'all RSS MiB':>11} {'procs':>5}"
        if args.publish:
            hdr += f" {'published':>9} {'lag':>4} {'pub errors':>10}"
        print(hdr, flush=True)
        while time.time() < end:
            for bid in list(pending):
                b = c.get(f"/v1/batches/{bid}").json()
                if b["state"] in ("committed", "failed", "cancelled"):
                    pending.discard(bid)
                    if b["state"] == "committed":
                        committed += 1
                        docs += (b.get("counters") or {}).get("read", {}).get("in", 0)
                    else:
                        failed += 1
                        print(f"  batch {bid} {b['state']}: {b.get('error')}", flush=True)
            while len(pending) < args.backlog + 1:
                serial += 1
                name = f"soak-{serial:06d}.warc.gz"
                write_warc(inputs / name, pool, rng, args.pages, serial)
                r = c.post("/v1/batches", json={"source": name, "pipeline": args.pipeline})
                if r.status_code != 202:
                    sys.exit(f"submit refused: {r.status_code} {r.text}")
                pending.add(r.json()["id"])
            now = time.time()
            if now >= next_sample:
                svc, total, n = session_rss(sid)
                mins = (now - start) / 60
                rate = docs / max(now - start, 1e-9)
                rows.append((mins, committed, failed, docs, rate, svc, total, n))
                line = f"{mins:6.1f} {committed:8d} {failed:6d} {docs:8d} {rate:7.1f} {svc / 2**20:11.1f} {total / 2**20:11.1f} {n:5d}"
                if args.publish:
                    pub = c.get("/v1/overview").json().get("publish") or {}
                    line += f" {pub.get('published_commit')!s:>9} {pub.get('lag')!s:>4} {pub.get('errors')!s:>10}"
                print(line, flush=True)
                next_sample += args.sample_s
            if proc.poll() is not None:
                sys.exit(f"service died ({proc.returncode}); see {work / 'service.log'}")
            time.sleep(0.5)
        _summary(rows)
    finally:
        c.close()
        for pid in [proc.pid] + [p for p in session_pids(sid)]:
            try:
                os.kill(pid, signal.SIGTERM if pid == proc.pid else signal.SIGKILL)
            except ProcessLookupError:
                pass
        try:
            proc.wait(20)
        except subprocess.TimeoutExpired:
            proc.kill()
        for pid in session_pids(sid):
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass




def _summary(rows: list[tuple]) -> None:
    """RSS at the first sample at or after 5 minutes vs the last sample."""
    if not rows:
        return
    after5 = next((r for r in rows if r[0] >= 5), rows[0])
    last = rows[-1]
    for label, i in (("service process", 5), ("service + Ray", 6)):
        a, b = after5[i] / 2**20, last[i] / 2**20
        print(f"{label}: RSS at {after5[0]:.1f} min {a:.1f} MiB, at {last[0]:.1f} min {b:.1f} MiB, "
              f"change {100 * (b - a) / a:+.1f}%", flush=True)
    print(f"throughput: {last[3]} docs in {last[1]} batches ({last[2]} failed), {last[4]:.1f} docs/s", flush=True)


if __name__ == "__main__":
    main()
