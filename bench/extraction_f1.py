"""Extraction quality and speed, every extractor in one run, on pages never used to train or tune.

Sets (refinery/extractor/data.py): WCXB dev pages of the *test* domains (crc32(domain) % 10 >= 7;
the extractor model is trained on domains 0-5 and its threshold chosen on 6), per page type; the
article benchmark (articleBody gold), never trained or tuned on; the trafilatura evaluation pages
(boilerplate_snippets: keep / drop snippets, multilingual) of the *test* sites (crc32 of the host's last
two labels % 4 == 3; the model may train on 0-1 and chose its snippet weight on 2).

Per page, then averaged: token F1 (WCXB's word_f1: lowercase \\w+ tokens), `with` snippets kept,
`without` snippets leaked (whole-word token sequences); for the snippet pages also trafilatura's
accuracy (snippets right / all snippets).  Speed: pages per CPU-second of the whole quality pass
over all sets (same pages, same process, each page once), and the median of `--speed-repeats` more
passes over every k-th WCXB test page (`--speed-pages`, 150), each started with the extractor's memoised features cleared.

    REFINERY_SHARED_DATA=/work/shared/data PYTHONPATH=$PWD .venv/bin/python bench/extraction_f1.py
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import shared, table  # noqa: E402

import trafilatura  # noqa: E402

from refinery.extractor import data as D  # noqa: E402
from refinery.extractor.model import clear_caches  # noqa: E402
from refinery.pipeline_files import resolve  # noqa: E402
from refinery.stages.extract import ExtractStage, decode_html  # noqa: E402


def systems(pipeline: str, model: str) -> dict:
    options = resolve(pipeline).stage("extract").options
    web = ExtractStage(options.model_copy(update={"extractor": "trafilatura", "favor_precision": True, "prefilter_languages": []}))
    ours = ExtractStage(options.model_copy(update={"extractor": "refinery", "extractor_model": model, "prefilter_languages": []}))
    for s in (web, ours):
        s.setup()
    from resiliparse.extract.html2text import extract_plain_text

    def bare_resiliparse(raw: bytes) -> str:
        return extract_plain_text(decode_html(raw, None), main_content=True, alt_texts=False, links=False)

    return {
        "refinery (extractor: refinery)": lambda raw: ours.extract_one(raw, None)[0],
        "trafilatura defaults": lambda raw: trafilatura.extract(raw),
        "trafilatura favor_precision (web-en before)": lambda raw: web.extract_one(raw, None)[0],
        "resiliparse main_content": bare_resiliparse,
    }


def mean(xs: list[float]) -> float:
    return statistics.mean(xs) if xs else float("nan")


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pipeline", default="pipelines/web-en.yaml", help="extract bounds taken from this pipeline")
    ap.add_argument("--model", default="default", help="extractor model directory")
    ap.add_argument("--speed-repeats", type=int, default=3)
    ap.add_argument("--speed-pages", type=int, default=150, help="WCXB test pages (every k-th) in each timed pass")
    ap.add_argument("--only", default=None, help="run only systems whose name contains this")
    args = ap.parse_args()
    wcxb = D.wcxb_pages(shared("extraction", "wcxb_dev"), {"test"})
    article = D.article_pages(shared("extraction", "article_benchmark"))
    snippets = D.snippet_pages(shared("extraction", "boilerplate_snippets"), {"test"})  # the others may be trained on
    all_pages = wcxb + article + snippets
    types = sorted({p.page_type for p in wcxb})
    results: dict[str, dict] = {}
    for name, fn in systems(args.pipeline, args.model).items():
        if args.only and args.only not in name:
            continue
        start = time.process_time()
        outs = [fn(p.html) for p in all_pages]
        cpu = time.process_time() - start
        speeds = []
        timed = wcxb[:: max(1, len(wcxb) // args.speed_pages)]
        for _ in range(args.speed_repeats):
            clear_caches()  # each timed pass as cold as a fresh worker (no memoised features of these pages)
            t = time.process_time()
            for p in timed:
                fn(p.html)
            speeds.append(len(timed) / (time.process_time() - t))
        results[name] = {"outs": outs, "pages_per_cpu_s": len(all_pages) / cpu,
                         "median_wcxb_pages_per_cpu_s": statistics.median(speeds) if speeds else float("nan")}
        print(f"# {name}: {len(all_pages)} pages in {cpu:.1f} CPU-s", file=sys.stderr)

    rows = []
    for name, r in results.items():
        scored = []
        for page, out in zip(all_pages, r["outs"]):
            f1 = D.word_f1(out, page.gold)[2] if page.gold is not None else None
            kept, leaked = D.snippet_hits(out, page)
            scored.append((page, f1, kept, leaked))

        def agg(sel, label):
            pages = [s for s in scored if sel(s[0])]
            f1 = [s[1] for s in pages if s[1] is not None]
            kept = [sum(s[2]) / len(s[2]) for s in pages if s[2]]
            leaked = [sum(s[3]) / len(s[3]) for s in pages if s[3]]
            right = sum(sum(s[2]) + len(s[3]) - sum(s[3]) for s in pages)
            total = sum(len(s[2]) + len(s[3]) for s in pages)
            rows.append((name, label, len(pages), mean(f1), mean(kept), mean(leaked), right / total if total else float("nan")))

        agg(lambda p: p.source == "wcxb", "WCXB test domains, all")
        for t in types:
            agg(lambda p, t=t: p.source == "wcxb" and p.page_type == t, f"WCXB {t}")
        agg(lambda p: p.source == "article", "article benchmark")
        agg(lambda p: p.source == "snippets", "trafilatura eval pages, test sites")
    print(table(rows, ("system", "set", "pages", "token F1", "kept", "leaked", "snippet acc.")))
    print()
    print(table([(n, r["pages_per_cpu_s"], r["median_wcxb_pages_per_cpu_s"]) for n, r in results.items()],
                ("system", "pages/CPU-s (all sets)", f"pages/CPU-s (WCXB subset, median of {args.speed_repeats} cold passes)")))


if __name__ == "__main__":
    main()
