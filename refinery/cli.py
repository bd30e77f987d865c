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
from refinery.errors import ConfigError, InputError, RefineryError, one_line


class Progress:
    """A tqdm bar over work units (so it has a total and an ETA), with documents and documents/s
    beside it; before the bar, a line for each slow step (Ray's start-up, planning)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar = None
        self.units_total = 0
        self.units_done = 0
        self.docs = 0
        self.started = time.perf_counter()

    def status(self, message: str) -> None:
        if self.enabled:
            print(f"refinery: {message} ({time.perf_counter() - self.started:.1f}s)", file=sys.stderr, flush=True)

    def plan(self, n_units: int) -> None:
        self.units_total = n_units
        self.t0 = time.perf_counter()
        if self.enabled:
            from tqdm import tqdm

            self.bar = tqdm(total=n_units, unit="unit", desc="refining", file=sys.stderr, dynamic_ncols=True)

    def unit_done(self, result) -> None:
        self.units_done += 1
        self.docs += result.docs_in
        if self.bar is not None:
            rate = self.docs / max(time.perf_counter() - self.t0, 1e-9)
            self.bar.set_postfix_str(f"docs {self.docs} ({rate:.1f}/s)", refresh=False)
            self.bar.update(1)

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
    from refinery.pipeline_files import resolve
    from refinery.store import CorpusStore

    config = resolve(args.pipeline)
    if args.publish:
        from refinery.corpus.mirror import check_publish_option

        check_publish_option(args.publish)
    store = CorpusStore(args.store)
    progress = Progress(not args.quiet)
    start = time.perf_counter()
    try:
        outcome = run_batch(
            config, args.inputs, store, args.address, progress.plan, progress.unit_done,
            limit=args.limit, on_status=progress.status,
        )
    finally:
        progress.close()
    elapsed = time.perf_counter() - start
    rec = outcome.record
    if outcome.already_committed:
        print(f"batch already committed as commit {rec.commit}" + ("" if args.publish else "; nothing to do"))
    else:
        print(Counters.from_dict(rec.counters).table())
        print(f"\n{rec.docs_in} documents in, {rec.docs_out} accepted, {elapsed:.1f}s ({rec.docs_in / elapsed:.1f} docs/s)")
    _print_record(rec)
    if args.publish:
        return _publish_after_run(store, args, rec.commit)
    return 0


def _publish_after_run(store, args, commit: int) -> int:
    """Publish every commit the destination lacks (this batch's, and any a crash left unpublished)."""
    from refinery.corpus.mirror import publish_store

    try:
        result = publish_store(store, args.publish, on_commit=lambda n: print(f"published commit {n} to {args.publish}", flush=True))
    except (RefineryError, OSError) as err:
        print(f"refinery: error: {err}\n"
              f"refinery: the batch IS committed locally as commit {commit} in {store.root}, but {args.publish} "
              f"does not have it yet; retry by re-running this command (nothing is processed again) or with "
              f"`refinery store mirror --store {store.root} --to {args.publish}`", file=sys.stderr)
        return 1
    if not result.published:
        print(f"{args.publish} already has every commit (latest {result.latest})")
    return 0


def cmd_annotate(args) -> int:
    from refinery.batch import annotate_batch
    from refinery.pipeline_files import resolve
    from refinery.store import CorpusStore

    config = resolve(args.pipeline)
    store = CorpusStore(args.store, create=False) if args.store else None
    progress = Progress(not args.quiet)
    try:
        rows, counters = annotate_batch(
            config, args.inputs, Path(args.out), store, args.address, progress.plan, progress.unit_done,
            limit=args.limit, on_status=progress.status,
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


def cmd_store_stats(args) -> int:
    from refinery.corpus.figures import mixture_figures, print_mixture, print_stats, stats_of

    figures = stats_of(args.store, args.commit, args.since)
    if args.mixture:
        from refinery.corpus.mixture import MixtureSpec

        figures["mixture"] = mixture_figures(args.store, args.mixture, args.commit, args.since)
    if args.json:
        print(json.dumps(figures, indent=2))
        return 0
    print_stats(args.store, figures)
    if args.mixture:
        print_mixture(args.mixture, figures["mixture"], MixtureSpec.load(args.mixture).share)
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
    from refinery.validate import cmd_pipelines as list_pipelines

    return list_pipelines(args)


def cmd_sample(args) -> int:
    from refinery.sample import write_sample_warc

    path, n = write_sample_warc(Path(args.out))
    print(f"wrote {n} pages to {path}")
    return 0


def _command_line(args) -> str:
    import shlex

    return "refinery " + shlex.join(args.argv)


def cmd_models_build_lm(args) -> int:
    from refinery.build.lm import LmBuildOptions, build_lm
    from refinery.models.registry import DEFAULT_ROOT, model_dir

    out = Path(args.out) if args.out else model_dir(DEFAULT_ROOT, "lm", args.lang)
    opts = LmBuildOptions(
        lang=args.lang, corpus=args.corpus, out=out, order=args.order, prune=args.prune,
        vocab_size=args.vocab_size, heldout_percent=args.heldout_percent, calibration=args.calibration,
        calibration_lines_per_doc=args.calibration_lines_per_doc, head_percentile=args.head_percentile,
        tail_percentile=args.tail_percentile, quantize_bits=args.quantize_bits, command=_command_line(args),
        eval_docs=args.eval_docs,
    )  # fmt: skip
    manifest = build_lm(opts)
    print(f"wrote {out} (version {manifest['version']})")
    return 0


def cmd_models_build_toxicity(args) -> int:
    from refinery.models.registry import DEFAULT_ROOT, model_dir
    from refinery.models.toxicity import ToxBuildOptions, build_toxicity

    out = Path(args.out) if args.out else model_dir(DEFAULT_ROOT, "toxicity", args.lang)
    opts = ToxBuildOptions(
        lang=args.lang, data=args.data, out=out, eval=args.eval, heldout_percent=args.heldout_percent,
        epoch=args.epoch, lr=args.lr, word_ngrams=args.word_ngrams, dim=args.dim, minn=args.minn, maxn=args.maxn, bucket=args.bucket,
        quantize=not args.no_quantize, command=_command_line(args),
        leave_one_source_out=args.leave_one_source_out, allow_research_data=args.allow_research_data,
        quantize_cutoff=args.quantize_cutoff, balance_rows=args.balance_sources, ensemble=args.ensemble,
    )  # fmt: skip
    manifest = build_toxicity(opts)
    print(f"wrote {out} (version {manifest['version']})")
    return 0


def cmd_models_build_extractor(args) -> int:
    from refinery.extractor.model import DEFAULT_DIR
    from refinery.build.extractor import build

    out = Path(args.out) if args.out else DEFAULT_DIR
    manifest = build(Path(args.wcxb), out, _command_line(args), Path(args.snippets) if args.snippets else None,
                     l2=args.l2, trees=args.trees, depth=args.depth, learning_rate=args.learning_rate,
                     snippet_weight=args.snippet_weight)
    print(f"wrote {out} (version {manifest['version']}, tune F1 {manifest['metrics']['tune_f1']})")
    return 0


def cmd_models_build_quality(args) -> int:
    from refinery.build.quality_cli import build_quality_command

    return build_quality_command(args, _command_line(args))


def cmd_models_ls(args) -> int:
    from refinery.models.registry import KINDS, available, model_root, read_manifest

    root = model_root(args.root)
    for kind in KINDS:
        for lang in available(root, kind):
            m = read_manifest(root / kind / lang, kind, lang)
            size = sum(f.get("bytes", 0) for f in m["files"].values())
            metrics = m.get("metrics", {})
            if kind == "lm":
                from refinery.models.lm_eval import unseen_summary

                cal = m.get("calibration", {})
                summary = f"heldout ppl {metrics.get('heldout_median_perplexity')} cutoffs {cal.get('head_cutoff')}/{cal.get('tail_cutoff')}{unseen_summary(m)}"
            elif kind == "quality":
                from refinery.build.quality_cli import ls_summary

                summary = ls_summary(m)
            else:
                from refinery.models.toxicity import metrics_summary

                summary = metrics_summary(m)
            print(f"{kind:<9} {lang:<4} {m['name']:<14} {m['version']}  {size / 1e6:6.2f} MB  {summary}")
    return 0


def _positive(value: str) -> int:
    try:
        n = int(value)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number, got {value!r}") from None
    if n < 1:
        raise argparse.ArgumentTypeError(f"must be at least 1, got {n}")
    return n


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="refinery", description="Refinery: continuous data cleaning for LLM pretraining")
    p.add_argument("--version", action="version", version=f"refinery {__version__}")
    sub = p.add_subparsers(dest="command", required=True)

    def common(sp, with_store_required: bool) -> None:
        sp.add_argument("--pipeline", "-p", required=True, help="pipeline file or name (e.g. web-en)")
        sp.add_argument("inputs", nargs="+", metavar="INPUT", help="WARC/JSONL/Parquet files or directories")
        sp.add_argument("--address", default=None, help="Ray cluster address (default: start local Ray)")
        sp.add_argument("--quiet", "-q", action="store_true", help="no progress bar")
        sp.add_argument("--limit", type=_positive, default=None, metavar="N",
                        help="trial run: only the first N input records (a different batch from the full one)")

    r = sub.add_parser("run", help="process a batch and commit the accepted documents")
    common(r, True)
    r.add_argument("--store", required=True, help="corpus store directory")
    r.add_argument("--publish", default=None, metavar="URI",
                   help="after the commit, publish the commits URI lacks (s3://bucket/prefix or a path; "
                        "endpoint: REFINERY_S3_ENDPOINT); the URI training jobs read with Corpus(URI)")
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
    stats = ssub.add_parser("stats", help="documents and tokens (whitespace words) per language, bucket and commit")
    stats.add_argument("--store", required=True, help="store path or object-store URI (s3://bucket/prefix)")
    stats.add_argument("--commit", type=int, default=None, help="snapshot: commits up to this one")
    stats.add_argument("--since", type=int, default=0, help="only commits after this one")
    stats.add_argument("--mixture", default=None, metavar="FILE",
                       help="also each group of this mixture spec: documents, tokens, natural vs target share")
    stats.add_argument("--json", action="store_true")
    stats.set_defaults(fn=cmd_store_stats)
    mirror = ssub.add_parser("mirror", help="publish a local store's new commits to object storage (shards first, manifest last)")
    mirror.add_argument("--store", required=True, help="local corpus store directory")
    mirror.add_argument("--to", required=True, help="destination URI, e.g. s3://bucket/corpus (endpoint: REFINERY_S3_ENDPOINT)")
    mirror.set_defaults(fn=cmd_store_mirror)
    gc = ssub.add_parser("gc", help="remove debris left by crashed runs")
    gc.add_argument("--store", required=True)
    gc.set_defaults(fn=cmd_store_gc)

    pl = sub.add_parser("pipelines", help="list the pipelines shipped with Refinery")
    pl.set_defaults(fn=cmd_pipelines)

    mo = sub.add_parser("models", help="build and list the perplexity and toxicity models")
    msub = mo.add_subparsers(dest="models_command", required=True)
    bl = msub.add_parser("build-lm", help="train a SentencePiece + KenLM perplexity model and calibrate buckets")
    bl.add_argument("--lang", required=True, help="language code (e.g. en)")
    bl.add_argument("--corpus", nargs="+", required=True, metavar="FILE",
                    help="reference text: FILE (one paragraph per line), wikitext:FILE, or udhr:NAME:FILE (one declaration of the UDHR paragraph table)")
    bl.add_argument("--out", default=None, help="model directory (default: the shipped refinery/models/default/lm/LANG)")
    bl.add_argument("--order", type=int, default=5, help="n-gram order")
    bl.add_argument("--prune", default="0 0 1", help="lmplz --prune thresholds per order")
    bl.add_argument("--vocab-size", type=int, default=8000, help="SentencePiece vocabulary size")
    bl.add_argument("--heldout-percent", type=int, default=10, help="paragraphs held out for metrics")
    bl.add_argument("--calibration", nargs="+", default=None, metavar="PATH",
                    help="documents for bucket cutoffs: .html(.gz) pages (extracted, langid-filtered), .txt, .jsonl")
    bl.add_argument("--calibration-lines-per-doc", type=int, default=1, help=".txt calibration lines per document")
    bl.add_argument("--eval-docs", nargs="+", default=None, metavar="PATH",
                    help="documents never trained nor calibrated on (article-benchmark .json, pages, .txt, .jsonl): metrics.unseen")
    bl.add_argument("--head-percentile", type=int, default=30)
    bl.add_argument("--tail-percentile", type=int, default=60)
    bl.add_argument("--quantize-bits", type=int, default=8, help="build_binary -q/-b bits")
    bl.set_defaults(fn=cmd_models_build_lm)
    bt = msub.add_parser("build-toxicity", help="train a fastText toxicity classifier and report held-out metrics")
    bt.add_argument("--lang", required=True)
    bt.add_argument("--data", nargs="+", required=True, metavar="FORMAT:FILE",
                    help="labelled rows: davidson:, olid:, cold:, jsonl: ({text, label}, .gz ok); all-clean prose: clean-lines:, clean-wikitext:, clean-jsonl:")
    bt.add_argument("--eval", nargs="+", default=None, metavar="FORMAT:FILE",
                    help="held-out evaluation files (default: a hash split of --data)")
    bt.add_argument("--out", default=None, help="model directory (default: refinery/models/default/toxicity/LANG)")
    bt.add_argument("--heldout-percent", type=int, default=10)
    bt.add_argument("--epoch", type=int, default=10)
    bt.add_argument("--lr", type=float, default=0.5)
    bt.add_argument("--word-ngrams", type=int, default=2)
    bt.add_argument("--dim", type=int, default=50)
    bt.add_argument("--minn", type=int, default=0, help="shortest character n-gram (0: no subwords)")
    bt.add_argument("--maxn", type=int, default=0, help="longest character n-gram")
    bt.add_argument("--bucket", type=int, default=200_000, help="fastText hash buckets for word n-grams")
    bt.add_argument("--no-quantize", action="store_true")
    bt.add_argument("--quantize-cutoff", type=int, default=100_000,
                    help="rows kept when quantising (pruned rows, then retrained); 0: keep every row")
    bt.add_argument("--balance-sources", type=int, default=0, metavar="N",
                    help="weigh labelled sources alike: per source and class at most N rows, at least N/4 (repeated); 0: every row once")
    bt.add_argument("--ensemble", choices=["alt-profanity-check"], default=None,
                    help="score as the mean log-odds of the fastText model and alt-profanity-check's linear model (English; shipped as arrays)")
    bt.add_argument("--leave-one-source-out", action="store_true",
                    help="also train one model per labelled --data source without it and record its ROC-AUC on that source")
    bt.add_argument("--allow-research-data", action="store_true",
                    help="train on evaluation-only sets (research-only licences): such a model must not be shipped")
    bt.set_defaults(fn=cmd_models_build_toxicity)
    be = msub.add_parser("build-extractor", help="train the main-content block classifier of `extract: {extractor: refinery}`")
    be.add_argument("--wcxb", required=True, help="WCXB dev folder (ground_truth.jsonl.gz, html/); split by domain")
    be.add_argument("--out", default=None, help="model directory (default: refinery/models/default/extractor)")
    be.add_argument("--l2", type=float, default=1e-4, help="L2 penalty of pass 1 (logistic regression)")
    be.add_argument("--trees", type=int, default=150, help="pass 2: number of boosted trees")
    be.add_argument("--depth", type=int, default=5, help="pass 2: maximum tree depth")
    be.add_argument("--learning-rate", type=float, default=0.1, help="pass 2: boosting learning rate")
    be.add_argument("--snippets", default=None,
                    help="trafilatura evaluation pages folder (evaldata.json, pages/): its train-split sites add "
                         "snippet-labelled blocks (multilingual); split by site, the test split is never used")
    be.add_argument("--snippet-weight", type=float, default=20.0, help="weight of one snippet-labelled block")
    be.set_defaults(fn=cmd_models_build_extractor)


    from refinery.build.quality_cli import add_build_quality_parser

    add_build_quality_parser(msub, cmd_models_build_quality)
    ml = msub.add_parser("ls", help="list models with versions and held-out metrics")
    ml.add_argument("--root", default=None, help="model root (default: the shipped models)")
    ml.set_defaults(fn=cmd_models_ls)

    sm = sub.add_parser("sample", help="write the sample crawl batch (a WARC of generated pages)")
    sm.add_argument("--out", default="sample", help="directory for sample.warc.gz")
    sm.set_defaults(fn=cmd_sample)

    from refinery.service.client import add_client_parsers
    from refinery.service.serve import add_serve_parser
    from refinery.validate import add_parsers as add_validate_parsers
    from refinery.report.cli import add_parsers as add_report_parsers

    add_validate_parsers(sub)
    add_report_parsers(sub)

    add_serve_parser(sub)
    add_client_parsers(sub)

    from refinery.decont.cli import add_decont_parser
    from refinery.urlfilter.cli import add_urlfilter_parser

    add_decont_parser(sub)
    add_urlfilter_parser(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    args = build_parser().parse_args(argv)
    args.argv = argv
    try:
        code = args.fn(args)
        sys.stdout.flush()  # inside the try: a reader that left (`| head`) is handled below
        return code
    except BrokenPipeError:
        # `refinery status --json | head`: the reader left; not an error of ours.  Point stdout at
        # /dev/null so the interpreter's final flush does not raise again.
        import os

        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
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
    except Exception as err:
        if not type(err).__name__.startswith("RayTaskError"):
            raise
        # A work unit failed inside Ray: its exception in one line, the remote traceback after it.
        import traceback

        print(f"refinery: error: a work unit failed: {one_line(err)}", file=sys.stderr)
        print("".join(traceback.format_exception(err)), file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
