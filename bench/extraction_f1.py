"""Extraction quality on the article benchmark: Refinery's extract stage vs bare trafilatura.

Token-level precision/recall/F1 of the extracted text against `articleBody`, per page
(multiset overlap of whitespace tokens, as in the benchmark's evaluate.py), averaged.

    .venv/bin/python bench/extraction_f1.py [--pipeline pipelines/web-en.yaml]
"""

from __future__ import annotations

import argparse
import gzip
import json
import statistics
import sys
import time
from collections import Counter
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import shared, table  # noqa: E402

import trafilatura  # noqa: E402

from refinery.pipelines import resolve  # noqa: E402
from refinery.stages.extract import ExtractStage  # noqa: E402


def prf(pred: str | None, truth: str) -> tuple[float, float, float]:
    p, t = Counter((pred or "").split()), Counter(truth.split())
    tp = sum((p & t).values())
    precision = tp / sum(p.values()) if p else 0.0
    recall = tp / sum(t.values()) if t else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pipeline", default="pipelines/web-en.yaml")
    args = ap.parse_args()
    base = shared("extraction", "article_benchmark")
    truth = json.loads((base / "ground-truth.json").read_text())
    pages = []
    for key, item in sorted(truth.items()):
        path = base / "html" / f"{key}.html.gz"
        if path.exists():
            pages.append((gzip.decompress(path.read_bytes()), item["articleBody"]))
    stage = ExtractStage(resolve(args.pipeline).stage("extract").options)
    stage.setup()
    systems = {
        "trafilatura.extract (defaults)": lambda raw: trafilatura.extract(raw),
        f"refinery extract ({Path(args.pipeline).stem})": lambda raw: stage.extract_one(raw, None)[0],
    }
    rows = []
    for name, fn in systems.items():
        start = time.process_time()
        scores = [prf(fn(raw), body) for raw, body in pages]
        cpu = time.process_time() - start
        rows.append((name, len(pages), statistics.mean(s[0] for s in scores), statistics.mean(s[1] for s in scores),
                     statistics.mean(s[2] for s in scores), statistics.median(s[2] for s in scores), len(pages) / cpu))
    print(table(rows, ("system", "pages", "precision", "recall", "F1 mean", "F1 median", "pages/CPU-s")))


if __name__ == "__main__":
    main()
