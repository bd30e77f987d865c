"""`refinery models build-quality`: arguments and the one-line `models ls` summary (kept out of cli.py)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from refinery.build.quality_data import FORMATS


def add_build_quality_parser(msub, fn) -> None:
    from refinery.build.quality import QualityBuildOptions as O

    d = O.__dataclass_fields__
    bq = msub.add_parser("build-quality", help="train a fastText document-quality classifier (DCLM recipe) and calibrate its buckets")
    bq.add_argument("--lang", required=True)
    bq.add_argument("--positive", nargs="+", required=True, metavar="FORMAT:FILE",
                    help=f"high-quality text: reference prose or gold main content; FORMAT one of {', '.join(FORMATS)}")
    bq.add_argument("--negative", nargs="+", required=True, metavar="FORMAT:FILE",
                    help="ordinary web text: pages:PATH / wcxb-pages:FILE (real pages through Refinery's extract + langid)")
    bq.add_argument("--calibration", nargs="+", default=None, metavar="PAGES",
                    help="real pages for the percentile buckets: .html(.gz) files/dirs or .warc(.gz) (extract + langid), or FORMAT:FILE")
    bq.add_argument("--eval", nargs="+", default=None, metavar="wcxb:FILE",
                    help="pages with gold main content: those of held-out domains are scored main content vs boilerplate")
    bq.add_argument("--out", default=None, help="model directory (default: refinery/models/default/quality/LANG)")
    bq.add_argument("--heldout-percent", type=int, default=d["heldout_percent"].default, help="rows without a domain held out (sha1 of text)")
    bq.add_argument("--heldout-domains-percent", type=int, default=d["heldout_domains_percent"].default, help="web domains held out whole (sha1 of domain)")
    bq.add_argument("--max-docs-per-input", type=int, default=d["max_docs_per_input"].default, help="training rows per input (0: all)")
    bq.add_argument("--epoch", type=int, default=d["epoch"].default)
    bq.add_argument("--lr", type=float, default=d["lr"].default)
    bq.add_argument("--word-ngrams", type=int, default=d["word_ngrams"].default)
    bq.add_argument("--dim", type=int, default=d["dim"].default)
    bq.add_argument("--min-count", type=int, default=d["min_count"].default)
    bq.add_argument("--bucket", type=int, default=d["bucket"].default, help="fastText hash buckets for word n-grams")
    bq.add_argument("--cutoff", type=int, default=d["cutoff"].default, help="quantisation: words and n-grams kept")
    bq.add_argument("--no-quantize", action="store_true")
    bq.add_argument("--stack", action="store_true",
                    help="second stage: logistic regression over the fastText score and document-structure features")
    bq.add_argument("--stack-l2", type=float, default=d["stack_l2"].default, help="--stack: L2 penalty on the standardised features")
    bq.set_defaults(fn=fn)


def build_quality_command(args, command: str) -> int:
    from refinery.build.quality import QualityBuildOptions, build_quality
    from refinery.models.registry import DEFAULT_ROOT, model_dir

    out = Path(args.out) if args.out else model_dir(DEFAULT_ROOT, "quality", args.lang)
    opts = QualityBuildOptions(
        lang=args.lang, positive=args.positive, negative=args.negative, out=out, calibration=args.calibration, eval=args.eval,
        heldout_percent=args.heldout_percent, heldout_domains_percent=args.heldout_domains_percent,
        max_docs_per_input=args.max_docs_per_input, epoch=args.epoch, lr=args.lr, word_ngrams=args.word_ngrams,
        dim=args.dim, min_count=args.min_count, bucket=args.bucket, cutoff=args.cutoff, quantize=not args.no_quantize,
        stack=args.stack, stack_l2=args.stack_l2, command=command,
    )  # fmt: skip
    manifest = build_quality(opts)
    print(f"wrote {out} (version {manifest['version']})")
    return 0


def ls_summary(m: dict[str, Any]) -> str:
    metrics = m.get("metrics", {})
    mvb = metrics.get("heldout_main_vs_boilerplate", {}).get("roc_auc")
    cal = m.get("calibration", {})
    return (f"heldout ROC-AUC {metrics.get('heldout', {}).get('roc_auc')} main-vs-boilerplate {mvb} "
            f"calibration {cal.get('documents')} docs")
