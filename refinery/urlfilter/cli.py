"""`refinery urlfilter refresh` and `refinery urlfilter check`."""

from __future__ import annotations

import shlex
from pathlib import Path

DEFAULT_SRC = "../shared/data/urlfilter/ut1"


def cmd_refresh(args) -> int:
    from refinery.stages.url_filter import DEFAULT_LISTS_ROOT
    from refinery.urlfilter.refresh import refresh

    out = Path(args.out) if args.out else DEFAULT_LISTS_ROOT / "ut1"
    m = refresh(Path(args.source), out, args.categories, "refinery " + shlex.join(args.argv))
    for name, f in m["files"].items():
        print(f"  {name:<32} {f['entries']:>8} entries")
    print(f"wrote {out} (UT1 commit {m['commit']}); pipelines hash the new files: their config hash changes")
    return 0


def cmd_check(args) -> int:
    from refinery.pipeline_files import resolve
    from refinery.stages.url_filter import UrlFilterStage

    spec = resolve(args.pipeline).stage("url_filter")
    if spec is None:
        print(f"pipeline {args.pipeline} has no url_filter stage")
        return 2
    stage = UrlFilterStage(spec.options)
    stage.setup()
    for url, v in zip(args.urls, stage.match(args.urls)):
        print(f"{url}  {'keep' if v is None else v[0] + '  (' + v[1] + ')'}")
    return 0


def add_urlfilter_parser(sub) -> None:
    from refinery.urlfilter.refresh import DEFAULT_CATEGORIES

    u = sub.add_parser("urlfilter", help="URL blocklists: refresh the shipped UT1 copy, check URLs")
    usub = u.add_subparsers(dest="urlfilter_command", required=True)
    r = usub.add_parser("refresh", help="copy UT1 categories (validated, gzip) into the shipped list directory")
    r.add_argument("--source", default=DEFAULT_SRC, help="UT1 tree: CATEGORY/domains, CATEGORY/urls (default: %(default)s)")
    r.add_argument("--categories", nargs="+", default=list(DEFAULT_CATEGORIES))
    r.add_argument("--out", default=None, help="default: refinery/models/default/urlfilter/ut1")
    r.set_defaults(fn=cmd_refresh)
    c = usub.add_parser("check", help="what a pipeline's url_filter says about URLs")
    c.add_argument("urls", nargs="+")
    c.add_argument("--pipeline", "-p", default="web-en")
    c.set_defaults(fn=cmd_check)
