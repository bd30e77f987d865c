"""`refinery report COMMIT|BATCH [--html FILE] [--json]`."""

from __future__ import annotations

import json
from pathlib import Path


def cmd_report(args) -> int:
    from refinery.report.build import build_report, find_commit
    from refinery.report.html import render_html
    from refinery.report.text import render_text
    from refinery.store import CorpusStore

    store = CorpusStore(args.store, create=False)
    report = build_report(store, find_commit(store, args.ref), top=args.top, examples_per_reason=args.examples)
    if args.json:
        print(json.dumps(report.to_dict(), indent=2, default=str))
    else:
        print(render_text(report))
    if args.html:
        out = Path(args.html)
        out.parent.mkdir(parents=True, exist_ok=True)
        out.write_text(render_html(report), encoding="utf-8")
        if not args.json:
            print(f"\nwrote {out}")
    return 0


def add_parsers(sub) -> None:
    r = sub.add_parser("report", help="what one commit did: stages, kept fraction by language/domain, rejects")
    r.add_argument("ref", metavar="COMMIT|BATCH", help="commit number, or batch key (a unique prefix of 8+ hex digits)")
    r.add_argument("--store", required=True, help="corpus store directory")
    r.add_argument("--html", default=None, metavar="FILE", help="also write an HTML page with histograms")
    r.add_argument("--json", action="store_true", help="print the report as JSON")
    r.add_argument("--top", type=int, default=20, help="languages and domains listed")
    r.add_argument("--examples", type=int, default=3, help="example rejects per reason")
    r.set_defaults(fn=cmd_report)
