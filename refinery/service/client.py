"""The CLI client of the service: `refinery submit | batches | status | cancel | retry`.

Talks HTTP to `--server` (or REFINERY_SERVER) with the bearer token from
`--token` (or REFINERY_TOKEN).  Refusals print the server's reason.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path

import httpx

from refinery.errors import RefineryError

TERMINAL = ("committed", "failed", "cancelled")


class ClientError(RefineryError):
    pass


class Client:
    def __init__(self, server: str | None, token: str | None, timeout: float = 30.0) -> None:
        server = server or os.environ.get("REFINERY_SERVER") or "http://127.0.0.1:8080"
        token = token or os.environ.get("REFINERY_TOKEN")
        if not token:
            raise ClientError("no API token: pass --token or set REFINERY_TOKEN")
        self.http = httpx.Client(base_url=server.rstrip("/"), headers={"Authorization": f"Bearer {token}"}, timeout=timeout)

    def _call(self, method: str, path: str, **kw) -> dict:
        try:
            r = self.http.request(method, path, **kw)
        except httpx.HTTPError as err:
            raise ClientError(f"{self.http.base_url}: {err}") from None
        if r.status_code >= 400:
            try:
                detail = r.json().get("detail")
            except ValueError:
                detail = r.text[:300]
            raise ClientError(f"server refused ({r.status_code}): {detail}")
        return r.json()

    def submit(self, sources: list[str], pipeline: str, priority: int, labels: dict) -> dict:
        body = {"source": sources[0] if len(sources) == 1 else sources, "pipeline": pipeline,
                "priority": priority, "labels": labels}
        return self._call("POST", "/v1/batches", json=body)

    def upload(self, path: Path, pipeline: str, priority: int) -> dict:
        def chunks():
            with path.open("rb") as f:
                while chunk := f.read(1 << 20):
                    yield chunk

        params = {"pipeline": pipeline, "filename": path.name, "priority": priority}
        headers = {"Content-Type": "application/octet-stream", "Content-Length": str(path.stat().st_size)}
        return self._call("POST", "/v1/batches/upload", params=params, content=chunks(), headers=headers)

    def batches(self, state: str | None, limit: int) -> dict:
        params = {"limit": limit} | ({"state": state} if state else {})
        return self._call("GET", "/v1/batches", params=params)

    def batch(self, bid: str) -> dict:
        return self._call("GET", f"/v1/batches/{bid}")

    def cancel(self, bid: str) -> dict:
        return self._call("POST", f"/v1/batches/{bid}/cancel")

    def retry(self, bid: str) -> dict:
        return self._call("POST", f"/v1/batches/{bid}/retry")


def _line(b: dict) -> str:
    p = b["progress"]
    units = f"{p['units_done']}/{p['units_total']}" if p["units_total"] is not None else "-"
    commit = f"commit={b['commit']}" if b["commit"] is not None else ""
    return f"{b['id']}  {b['state']:<9}  {b['pipeline']:<16} units={units:<9} docs={p['documents_done']:<7} {commit}"


def cmd_submit(args) -> int:
    c = Client(args.server, args.token)
    labels = {}
    for item in args.label or []:
        k, sep, v = item.partition("=")
        if not sep:
            raise ClientError(f"--label {item!r}: expected KEY=VALUE")
        labels[k] = v
    if args.upload:
        b = c.upload(Path(args.upload), args.pipeline, args.priority)
    else:
        if not args.sources:
            raise ClientError("give at least one SOURCE (path or glob under the server's input roots) or --upload FILE")
        b = c.submit(args.sources, args.pipeline, args.priority, labels)
    print(json.dumps(b, indent=2) if args.json else f"submitted {b['id']} ({b['state']}, {len(b['inputs'])} file(s))")
    if args.wait:
        return _watch(c, b["id"], args.json)
    return 0


def cmd_batches(args) -> int:
    c = Client(args.server, args.token)
    out = c.batches(args.state, args.limit)
    if args.json:
        print(json.dumps(out, indent=2))
        return 0
    counts = out["counts"]
    print("  ".join(f"{k}={v}" for k, v in counts.items()))
    for b in out["batches"]:
        print(_line(b))
        if b.get("error") and b["state"] in ("failed", "cancelled"):
            print(f"    error: {_one_line(b['error'])}")
    return 0


def _one_line(text: str, limit: int = 300) -> str:
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


def _watch(c: Client, bid: str, as_json: bool) -> int:
    """Follow a batch to its end: a live bar on a terminal (one line per change otherwise), then
    the per-stage table of the commit (or the error)."""
    import sys

    live = not as_json and sys.stderr.isatty()
    bar = None
    last = None
    while True:
        b = c.batch(bid)
        p = b["progress"]
        if live:
            if bar is None and p["units_total"]:
                from tqdm import tqdm

                bar = tqdm(total=p["units_total"], unit="unit", desc=bid[:8], file=sys.stderr, dynamic_ncols=True)
            if bar is not None:
                bar.update(p["units_done"] - bar.n)
                bar.set_postfix_str(f"{b['state']}, docs {p['documents_done']}", refresh=True)
        elif not as_json:
            line = _line(b)
            if line != last:
                print(line, flush=True)
                last = line
        if b["state"] in TERMINAL:
            if bar is not None:
                bar.close()
            if as_json:
                print(json.dumps(b, indent=2))
            else:
                if live:
                    print(_line(b))
                if b.get("counters") and b["state"] == "committed":
                    from refinery.counters import Counters

                    print(Counters.from_dict(b["counters"]).table())
                if b.get("error"):
                    print(f"  error: {b['error']}")
            return 0 if b["state"] == "committed" else 1
        time.sleep(1.0)


def cmd_status(args) -> int:
    c = Client(args.server, args.token)
    if args.once:
        b = c.batch(args.id)
        print(json.dumps(b, indent=2) if args.json else _line(b))
        return 0
    return _watch(c, args.id, args.json)


def cmd_cancel(args) -> int:
    b = Client(args.server, args.token).cancel(args.id)
    print(f"{b['id']}: {b['state']}" + (" (cancel requested)" if b.get("cancel_requested") and b["state"] == "running" else ""))
    return 0


def cmd_retry(args) -> int:
    b = Client(args.server, args.token).retry(args.id)
    print(f"{b['id']}: {b['state']}")
    return 0


def add_client_parsers(sub) -> None:
    def common(sp):
        sp.add_argument("--server", default=None, help="service URL (default: $REFINERY_SERVER or http://127.0.0.1:8080)")
        sp.add_argument("--token", default=None, help="API token (default: $REFINERY_TOKEN)")
        sp.add_argument("--json", action="store_true", help="print the server's JSON")

    s = sub.add_parser("submit", help="submit a batch to a running service")
    common(s)
    s.add_argument("sources", nargs="*", metavar="SOURCE", help="path or glob under the server's input roots")
    s.add_argument("--pipeline", "-p", required=True, help="pipeline name (see GET /v1/pipelines)")
    s.add_argument("--priority", type=int, default=0, help="higher runs first")
    s.add_argument("--label", action="append", metavar="KEY=VALUE", help="label stored with the batch and its commit")
    s.add_argument("--upload", metavar="FILE", help="upload a local WARC file instead of naming a server path")
    s.add_argument("--wait", action="store_true", help="follow progress until the batch ends")
    s.set_defaults(fn=cmd_submit)

    b = sub.add_parser("batches", help="list batches on a running service")
    common(b)
    b.add_argument("--state", default=None, help="queued, running, committed, failed or cancelled")
    b.add_argument("--limit", type=int, default=50)
    b.set_defaults(fn=cmd_batches)

    st = sub.add_parser("status", help="show a batch, following its progress until it ends")
    common(st)
    st.add_argument("id")
    st.add_argument("--once", action="store_true", help="print the current state and return")
    st.set_defaults(fn=cmd_status)

    cn = sub.add_parser("cancel", help="cancel a queued or running batch")
    common(cn)
    cn.add_argument("id")
    cn.set_defaults(fn=cmd_cancel)

    rt = sub.add_parser("retry", help="requeue a failed or cancelled batch")
    common(rt)
    rt.add_argument("id")
    rt.set_defaults(fn=cmd_retry)
