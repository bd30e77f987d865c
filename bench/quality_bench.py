"""Quality-classifier evaluation on pages the shipped model never saw (called by models_bench.py).

    .venv/bin/python bench/quality_bench.py [--data ../shared/data]

Pages: WCXB dev pages of the domains the shipped `quality-en` build held out
(sha1(domain) % 100 < heldout_domains_percent, read from its manifest): no
page of those sites was trained on, and none was used to choose a setting
(settings were chosen on domains 50..64 of builds trained on 65..99,
bench/quality_validation.py) or to calibrate the buckets (the build drops
held-out domains from its WCXB calibration pages).

1. ROC-AUC of each page's gold main content over the same page's boilerplate
   (full-page text minus the gold lines), overall and per page type.
2. The pipeline's view: the pages through web-en's own extract, langid and
   quality_classifier stage options; per page type, the `quality_bucket`
   distribution and the share kept at web-en's threshold.
"""

from __future__ import annotations

import argparse
import collections
import statistics
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(Path(__file__).resolve().parent))

from common import SHARED_DATA  # noqa: E402
from refinery.build.quality import main_vs_boilerplate  # noqa: E402
from refinery.build.quality_data import extract_pages, is_heldout, read_docs  # noqa: E402
from refinery.models.quality import QualityModel  # noqa: E402
from refinery.models.registry import DEFAULT_ROOT  # noqa: E402


def table(rows: list[list], header: list[str]) -> str:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows)]
    fmt = "  ".join(f"{{:<{w}}}" for w in widths)
    return "\n".join([fmt.format(*header), "  ".join("-" * w for w in widths)] + [fmt.format(*map(str, r)) for r in rows])


def heldout_pages(data: Path, model: QualityModel):
    split = model.manifest["split"]
    gt = data / "extraction" / "wcxb_dev" / "ground_truth.jsonl.gz"
    docs = [d for d in read_docs("wcxb", gt, "en") if is_heldout(d, split["heldout_percent"], split["heldout_domains_percent"])]
    trained = {s["path"] for s in model.manifest["training_data"]}
    return gt, docs, trained


def bench_main_vs_boilerplate(model: QualityModel, docs) -> None:
    r = main_vs_boilerplate(model.scores, docs)
    rows = [[t, v["pages"], v["roc_auc"], "-"] for t, v in sorted(r["by_page_type"].items())]
    rows.append(["all", r["pages"], r["roc_auc"], ">= 0.95"])
    print("## Quality classifier: gold main content over the same page's boilerplate (held-out WCXB domains)\n")
    print(table(rows, ["page type", "pages", "ROC-AUC", "acceptance"]))


def bench_pipeline_buckets(model: QualityModel, docs) -> None:
    from refinery.pipeline_files import resolve
    from refinery.stages.quality_classifier import QualityClassifierStage

    cfg = resolve("web-en")
    ext = cfg.stage("extract").options
    settings = {k: getattr(ext, k) for k in ("favor_precision", "include_comments", "max_html_bytes", "max_tree_elements")}
    qc = QualityClassifierStage(cfg.stage("quality_classifier").options)
    qc.setup()
    threshold = qc.thresholds["en"]
    pages = [(d.page, None, Path(d.page).read_bytes(), d.page_type) for d in docs]
    extracted = extract_pages(pages, "en", settings)
    scores = model.scores([d.text for d in extracted])
    by_type: dict[str, list[float]] = collections.defaultdict(list)
    for d, s in zip(extracted, scores):
        by_type[d.page_type or "unknown"].append(s)
    rows = []
    for t, ss in sorted(by_type.items()) + [("all", scores)]:
        buckets = [model.bucket(s) for s in ss]
        hist = collections.Counter(min(b // 5, 3) for b in buckets)
        kept = sum(s >= threshold for s in ss) / len(ss) if threshold is not None else 1.0
        rows.append([t, len(ss), statistics.median(buckets), *(f"{hist[i] / len(ss):.0%}" for i in range(4)), f"{kept:.0%}"])
    print(f"\n## quality_bucket of the pipeline's extraction of the same pages (web-en extract + langid en; "
          f"threshold {threshold:.4f} = keep_top_fraction {cfg.stage('quality_classifier').options.keep_top_fraction})\n")
    print(f"{len(extracted)} of {len(docs)} held-out pages leave extract + langid as English\n")
    print(table(rows, ["page type", "docs", "median bucket", "buckets 0-4", "5-9", "10-14", "15-19", "kept"]))


def run(data: Path) -> None:
    model = QualityModel(DEFAULT_ROOT / "quality" / "en", "en")
    _, docs, _ = heldout_pages(data, model)
    bench_main_vs_boilerplate(model, docs)
    bench_pipeline_buckets(model, docs)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data", default=str(SHARED_DATA))
    args = ap.parse_args()
    run(Path(args.data))


if __name__ == "__main__":
    main()
