"""False drops of the language prefilter and the survival gate on every real page set (issue 18).

    PYTHONPATH=$PWD .venv/bin/python bench/survival_gate.py [--pipeline pipelines/web-en.yaml] [--list]

For every page of warc/real_pages, the WCXB dev pages, the article benchmark and the
trafilatura evaluation pages (boilerplate_snippets): the *ungated* verdict (the pipeline's
extract stage with no prefilter and no gate, i.e. trafilatura on every page, then its langid and
quality stages: the per-document rules datatrove's FineWeb recipe also runs), and the gated
verdict of the pipeline's own prefilter + gate.  A false drop is a page the ungated path keeps
and the prefilter or the gate drops; a gated page that survives gets the same trafilatura call as
ungated, so one trafilatura pass gives both verdicts.  Also printed: how many trafilatura calls
the gate saves, its drops by reason, and CPU per page of prefilter+gate against trafilatura.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import shared, table  # noqa: E402

import pyarrow as pa  # noqa: E402

from refinery.pipeline_files import resolve  # noqa: E402
from refinery.stages import STAGE_TYPES  # noqa: E402


def page_sets() -> dict[str, list[tuple[str, bytes, str | None]]]:
    """set name -> [(page id, html bytes, HTTP charset)]; sets whose data is absent are left out."""
    from refinery.extractor import data as D
    from refinery.readers import discover, plan_units, read_unit

    sets: dict[str, list[tuple[str, bytes, str | None]]] = {}
    try:
        pages = []
        for unit in plan_units(discover([str(shared("warc", "real_pages"))]), 10**9):
            for b in read_unit(unit, 64):
                for url, html, cs in zip(b.column("url").to_pylist(), b.column("html").to_pylist(),
                                         b.column("http_charset").to_pylist()):
                    if html:
                        pages.append((url, html, cs))
        sets["real_pages"] = pages
    except SystemExit as err:
        print(err, file=sys.stderr)
    loaders = {
        "wcxb_dev": lambda: [(f"{p.id} {p.page_type} {p.domain}", p.html, None)
                             for p in D.wcxb_pages(shared("extraction", "wcxb_dev"))],
        "article_benchmark": lambda: [(p.id, p.html, None) for p in D.article_pages(shared("extraction", "article_benchmark"))],
        "trafilatura_eval": lambda: [(p.id, p.html, None)
                                     for p in D.snippet_pages(shared("extraction", "boilerplate_snippets"))],
    }
    for name, load in loaders.items():
        try:
            sets[name] = load()
        except SystemExit as err:
            print(err, file=sys.stderr)
    return sets


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--pipeline", default="pipelines/web-en.yaml")
    ap.add_argument("--list", action="store_true", help="print every false drop")
    args = ap.parse_args()
    cfg = resolve(args.pipeline)
    by_name = {s.name: s for s in cfg.stages}
    ex_opts = by_name["extract"].options
    if not ex_opts.prefilter_languages:
        sys.exit(f"{args.pipeline}: its extract stage has no prefilter_languages, so nothing to measure")
    gated = STAGE_TYPES["extract"](ex_opts.model_copy(update={"extractor": "trafilatura"}))
    ungated = STAGE_TYPES["extract"](ex_opts.model_copy(update={"extractor": "trafilatura", "prefilter_languages": [], "gate": None}))
    later = [STAGE_TYPES[n](by_name[n].options) for n in ("langid", "quality") if n in by_name]
    for st in (gated, ungated, *later):
        st.setup()

    rows, false_drops = [], []
    for set_name, pages in page_sets().items():
        reasons: Counter[str] = Counter()
        kept = dropped_kept = 0
        t_gate = t_extract = 0.0
        for pid, html, cs in pages:
            t = time.process_time()
            drop = gated.prefilter([html], [cs])[0]
            t_gate += time.process_time() - t
            t = time.process_time()
            res = ungated.process(pa.RecordBatch.from_pylist(
                [{"html": html, "http_charset": cs, "text": None}],
                schema=pa.schema([("html", pa.binary()), ("http_charset", pa.string()), ("text", pa.string())])))
            t_extract += time.process_time() - t
            batch, ok = res.records, res.reasons[0] is None
            for st in later:
                if not ok:
                    break
                r = st.process(batch)
                batch, ok = r.records, r.reasons[0] is None
            kept += ok
            if drop is not None:
                reasons[drop[0]] += 1
                if ok:
                    dropped_kept += 1
                    false_drops.append((set_name, pid, drop[0], drop[1]))
        n = len(pages)
        lang = reasons.pop("prefilter_language", 0)
        gate = sum(reasons.values())
        rows.append((set_name, n, kept, n - lang, n - lang - gate, f"{gate / max(1, n - lang):.1%}",
                     dropped_kept, f"{dropped_kept / max(1, kept):.2%}",
                     " ".join(f"{k.removeprefix('gate:')} {v}" for k, v in sorted(reasons.items())) or "-",
                     1000 * t_gate / max(1, n), 1000 * t_extract / max(1, n)))
    print(f"pipeline {args.pipeline}: prefilter_min_score {ex_opts.prefilter_min_score:g}, gate "
          f"{ex_opts.gate.model_dump() if ex_opts.gate else None}")
    print(table(rows, ("set", "pages", "kept ungated", "extracted after language", "extracted after gate",
                       "gate saves", "false drops", "of kept", "gate drops by rule", "prefilter+gate ms/page",
                       "ungated extract ms/page")))
    if args.list or len(false_drops) <= 20:
        for set_name, pid, reason, detail in false_drops:
            print(f"false drop: {set_name} {pid}: {reason} ({detail})")


if __name__ == "__main__":
    main()
