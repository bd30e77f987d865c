"""The `refinery` command line: run, annotate, store inspection, sample data.

A thin layer: parse arguments, call the library, print.  Errors a user can
fix (bad config, bad path) print one line and exit 2.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path

from refinery import __version__
from refinery.errors import ConfigError, InputError, RefineryError


class Progress:
    """A tqdm bar counting documents (so its rate is documents/s), fed per finished work unit."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None
        self.units_total = 0
        self.units_done = 0

    def plan(self, n_units: int) -> None:
        self.units_total = n_units
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(unit="doc", desc="refining", file=sys.stderr, dynamic_ncols=True)

    def unit_done(self, result) -> None:
        self.units_done += 1
        if self.bar is not None:
            self.bar.set_postfix_str(f"units {self.units_done}/{self.units_total}", refresh=False)
            self.bar.update(result.docs_in)

    def close(self) -> None:
        if self.bar is not None:
            self.bar.close()


def _print_record(rec, file=sys.stdout) -> None:
    print(f"commit {rec.commit}  {rec.created_at}  pipeline={rec.pipeline}  docs in={rec.docs_in} out={rec.docs_out}", file=file)
    for s in rec.shards:
        print(f"  {s.path}  rows={s.rows}  bytes={s.bytes}  sha256={s.sha256[:16]}", file=file)
    if rec.rejects:
        print(f"  rejects: {len(rec.rejects)} file(s), {sum(r.rows for r in rec.rejects)} rows", file=file)


def cmd_run(args) -> int:
    from refinery.batch import run_batch
    from refinery.counters import Counters
    from refinery.pipelines import resolve
    from refinery.store import CorpusStore

    config = resolve(args.pipeline)
    store = CorpusStore(args.store)
    progress = Progress(not args.quiet)
    start = time.perf_counter()
    try:
        outcome = run_batch(config, args.inputs, store, args.address, progress.plan, progress.unit_done)
    finally:
        progress.close()
    elapsed = time.perf_counter() - start
    rec = outcome.record
    if outcome.already_committed:
        print(f"batch already committed as commit {rec.commit}; nothing to do")
    else:
        print(Counters.from_dict(rec.counters).table())
        print(f"\n{rec.docs_in} documents in, {rec.docs_out} accepted, {elapsed:.1f}s ({rec.docs_in / elapsed:.1f} docs/s)")
    _print_record(rec)
    return 0


def cmd_annotate(args) -> int:
    from refinery.batch import annotate_batch
    from refinery.pipelines import resolve
    from refinery.store import CorpusStore

    config = resolve(args.pipeline)
    store = CorpusStore(args.store, create=False) if args.store else None
    progress = Progress(not args.quiet)
    try:
        rows, counters = annotate_batch(
            config, args.inputs, Path(args.out), store, args.address, progress.plan, progress.unit_done
        )
    finally:
        progress.close()
    print(counters.table())
    print(f"\n{rows} documents annotated -> {args.out}")
    return 0


def cmd_store_ls(args) -> int:
    from refinery.store import CorpusStore

    store = CorpusStore(args.store, create=False)
    records = store.commits(since=args.since)
    if args.json:
        print(json.dumps([json.loads(r.to_json()) for r in records], indent=2))
        return 0
    if not records:
        print("no commits")
    for r in records:
        print(f"{r.commit:>6}  {r.created_at}  {r.pipeline:<18} shards={len(r.shards):<3} rows={r.rows:<8} in={r.docs_in}")
    return 0


def cmd_store_show(args) -> int:
    from refinery.counters import Counters
    from refinery.store import CorpusStore

    rec = CorpusStore(args.store, create=False).commit(args.commit)
    if args.json:
        print(rec.to_json())
        return 0
    _print_record(rec)
    print(f"  batch_key={rec.batch_key}\n  config_hash={rec.config_hash}")
    print(f"  models={json.dumps(rec.models, sort_keys=True)}")
    for i in rec.inputs:
        print(f"  input {i['uri']} ({i['size']} bytes)")
    print()
    print(Counters.from_dict(rec.counters).table())
    return 0


def cmd_store_files(args) -> int:
    from refinery.corpus import Corpus

    for f in Corpus(args.store).files(args.commit):  # local path or s3://... URI
        print(f)
    return 0


def cmd_store_mirror(args) -> int:
    from refinery.corpus import mirror_store

    done = mirror_store(args.store, args.to, on_commit=lambda n: print(f"mirrored commit {n}", flush=True))
    if not done:
        print("nothing to mirror: the destination has every commit")
    return 0


def cmd_store_gc(args) -> int:
    from refinery.store import CorpusStore

    for item in CorpusStore(args.store, create=False).gc():
        print(f"removed {item}")
    return 0


def cmd_pipelines(args) -> int:
    from refinery.pipelines import available, resolve

    for name, path in available().items():
        cfg = resolve(str(path))
        print(f"{name:<20} {path}  stages={','.join(s.name for s in cfg.stages)}")
    return 0


def cmd_sample(args) -> int:
    from refinery.sample import write_sample_warc

    path, n = write_sample_warc(Path(args.out))
    print(f"wrote {n} pages to {path}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="refinery", description="Refinery: continuous data cleaning for LLM pretraining")
    p.add_argument("--version", action="version", version=f"refinery {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp, with_store_required: bool) -> None:
        sp.add_argument("--pipeline", "-p", required=True, help="pipeline file or name (e.g. web-en)")
        sp.add_argument("inputs", nargs="+", metavar="INPUT", help="WARC/JSONL/Parquet files or directories")
        sp.add_argument("--address", default=None, help="Ray cluster address (default: start local Ray)")
        sp.add_argument("--quiet", "-q", action="store_true", help="no progress bar")

    r = sub.add_parser("run", help="process a batch and commit the accepted documents")
    common(r, True)
    r.add_argument("--store", required=True, help="corpus store directory")
    r.set_defaults(fn=cmd_run)

    a = sub.add_parser("annotate", help="score every document, filter nothing, commit nothing")
    common(a, False)
    a.add_argument("--out", required=True, help="output Parquet file")
    a.add_argument("--store", default=None, help="corpus store to check against (read-only)")
    a.set_defaults(fn=cmd_annotate)

    s = sub.add_parser("store", help="inspect a corpus store")
    ssub = s.add_subparsers(dest="store_command", required=True)
    ls = ssub.add_parser("ls", help="list commits")
    ls.add_argument("--store", required=True)
    ls.add_argument("--since", type=int, default=0)
    ls.add_argument("--json", action="store_true")
    ls.set_defaults(fn=cmd_store_ls)
    show = ssub.add_parser("show", help="show one commit")
    show.add_argument("commit", type=int)
    show.add_argument("--store", required=True)
    show.add_argument("--json", action="store_true")
    show.set_defaults(fn=cmd_store_show)
    files = ssub.add_parser("files", help="list committed shard files (for datasets.load_dataset)")
    files.add_argument("--store", required=True, help="store path or object-store URI (s3://bucket/prefix)")
    files.add_argument("--commit", type=int, default=None, help="snapshot: shards up to this commit")
    files.set_defaults(fn=cmd_store_files)
    mirror = ssub.add_parser("mirror", help="publish a local store's new commits to object storage (shards first, manifest last)")
    mirror.add_argument("--store", required=True, help="local corpus store directory")
    mirror.add_argument("--to", required=True, help="destination URI, e.g. s3://bucket/corpus (endpoint: REFINERY_S3_ENDPOINT)")
    mirror.set_defaults(fn=cmd_store_mirror)
    gc = ssub.add_parser("gc", help="remove debris left by crashed runs")
    gc.add_argument("--store", required=True)
    gc.set_defaults(fn=cmd_store_gc)

    pl = sub.add_parser("pipelines", help="list the pipelines shipped with Refinery")
    pl.set_defaults(fn=cmd_pipelines)

    sm = sub.add_parser("sample", help="write the sample crawl batch (a WARC of generated pages)")
    sm.add_argument("--out", default="sample", help="directory for sample.warc.gz")
    sm.set_defaults(fn=cmd_sample)

    from refinery.service.client import add_client_parsers
    from refinery.service.serve import add_serve_parser

    add_serve_parser(sub)
    add_client_parsers(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.fn(args)
    except (ConfigError, InputError) as err:
        print(f"refinery: error: {err}", file=sys.stderr)
        return 2
    except RefineryError as err:
        print(f"refinery: error: {err}", file=sys.stderr)
        return 1
    except OSError as err:  # disk full, permission denied, ...: say what failed, no traceback
        print(f"refinery: error: {err}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        print("refinery: interrupted; nothing was committed for the running batch", file=sys.stderr)
        return 130


if __name__ == "__main__":
    sys.exit(main())
