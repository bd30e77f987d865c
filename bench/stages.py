"""Per-stage throughput on the real pages, next to the bare library call each stage wraps.

    PYTHONPATH=$PWD .venv/bin/python bench/stages.py [--repeat 3]

One process, one core (CPU time, so a loaded machine changes little).  Every stage
gets exactly the documents it gets in the pipeline (the survivors of the stages before
it, pipelines/web-en.yaml); the bare call gets the same inputs.  "overhead" is the
stage's CPU per document over the bare call's, minus one: Refinery's own layer
(decoding, bounds, Arrow conversion, rule bookkeeping).  Medians of --repeat runs.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import shared, table  # noqa: E402

import pyarrow as pa  # noqa: E402
import pyarrow.parquet as pq  # noqa: E402
import trafilatura  # noqa: E402

from refinery.pipeline_files import resolve  # noqa: E402
from refinery.readers import discover, plan_units, read_unit  # noqa: E402
from refinery.stages import STAGE_TYPES  # noqa: E402
from refinery.stages.langid import prepare  # noqa: E402


def cpu(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t = time.process_time()
        fn()
        times.append(time.process_time() - t)
    return statistics.median(times)


def keep(batch: pa.RecordBatch, reasons: list) -> pa.RecordBatch:
    return batch.filter(pa.array([r is None for r in reasons], type=pa.bool_()))


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--pipeline", default="pipelines/web-en.yaml")
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--batch-rows", type=int, default=32)
    args = ap.parse_args()
    cfg = resolve(args.pipeline)
    files = discover([str(shared("warc", "real_pages"))])
    units = plan_units(files, 10**9)
    warc_bytes = sum(Path(f.path).stat().st_size for f in files)

    def read_all() -> list[pa.RecordBatch]:
        return [b for u in units for b in read_unit(u, args.batch_rows)]

    batches = read_all()
    n_pages = sum(b.num_rows for b in batches)
    html_mb = sum(len(h) for b in batches for h in b.column("html").to_pylist() if h) / 1e6
    rows = []

    def bare_fastwarc():
        from fastwarc.warc import ArchiveIterator, WarcRecordType

        for f in files:
            with open(f.path, "rb") as fh:
                for rec in ArchiveIterator(fh, record_types=WarcRecordType.response, parse_http=True):
                    rec.reader.read()

    t_stage, t_bare = cpu(read_all, args.repeat), cpu(bare_fastwarc, args.repeat)
    rows.append(("read (WARC -> Arrow)", n_pages, n_pages / t_stage, html_mb / t_stage,
                 "fastwarc ArchiveIterator + read()", n_pages / t_bare, t_stage / t_bare - 1))

    stages = {s.name: STAGE_TYPES[s.name](s.options) for s in cfg.stages}
    for st in stages.values():
        st.setup()

    # extract
    ex = stages["extract"]
    opts = ex.options
    htmls = [h for b in batches for h in b.column("html").to_pylist()]
    out: list[pa.RecordBatch] = []

    def run_extract():
        out.clear()
        for b in batches:
            r = ex.process(b)
            out.append(keep(r.records, r.reasons))

    def bare_extract():
        for h in htmls:
            trafilatura.extract(h, favor_precision=opts.favor_precision, include_comments=opts.include_comments,
                                include_tables=opts.include_tables, deduplicate=False)

    t_stage, t_bare = cpu(run_extract, args.repeat), cpu(bare_extract, args.repeat)
    t_bare_extract = t_bare
    rows.append(("extract", n_pages, n_pages / t_stage, html_mb / t_stage, "trafilatura.extract(bytes)",
                 n_pages / t_bare, t_stage / t_bare - 1))
    extracted = out[:]

    # langid
    lid = stages["langid"]
    texts = [t for b in extracted for t in b.column("text").to_pylist()]
    n, mb = len(texts), sum(len(t.encode()) for t in texts) / 1e6
    lid_out: list[pa.RecordBatch] = []

    def run_lid():
        lid_out.clear()
        for b in extracted:
            r = lid.process(b)
            lid_out.append(keep(r.records, r.reasons))

    def bare_lid():
        lid.model.predict([t.replace("\n", " ") for t in texts], k=1)

    t_stage, t_bare = cpu(run_lid, args.repeat), cpu(bare_lid, args.repeat)
    rows.append(("langid", n, n / t_stage, mb / t_stage, "fastText predict(list, whole text)", n / t_bare,
                 t_stage / t_bare - 1))
    t_trunc = cpu(lambda: lid.model.predict([prepare(t, lid.options.max_chars) for t in texts], k=1), args.repeat)
    rows.append(("", "", "", "", f"fastText predict(first {lid.options.max_chars} chars)", n / t_trunc, t_stage / t_trunc - 1))
    kept_lid = lid_out[:]

    # quality (no single library call: its rules are Refinery's own code)
    q = stages["quality"]
    texts = [t for b in kept_lid for t in b.column("text").to_pylist()]
    n, mb = len(texts), sum(len(t.encode()) for t in texts) / 1e6
    q_out: list[pa.RecordBatch] = []

    def run_quality():
        q_out.clear()
        for b in kept_lid:
            r = q.process(b)
            q_out.append(keep(r.records, r.reasons))

    t_stage = cpu(run_quality, args.repeat)
    t_bare = cpu(lambda: [q.assess(t, "en") for t in texts], args.repeat)
    rows.append(("quality", n, n / t_stage, mb / t_stage, "QualityStage.assess per text (no Arrow)", n / t_bare,
                 t_stage / t_bare - 1))
    kept_q = q_out[:]

    # dedup signatures (the stage; the driver-side decision is measured in bench/dedup_index.py)
    dd = stages["dedup"]
    texts = [t for b in kept_q for t in b.column("text").to_pylist()]
    n, mb = len(texts), sum(len(t.encode()) for t in texts) / 1e6
    signed: list[pa.RecordBatch] = []

    def run_dedup():
        signed.clear()
        signed.extend(dd.process(b).records for b in kept_q)

    def bare_datasketch():
        from datasketch import MinHash

        for t in texts:
            words = t.split()
            m = MinHash(num_perm=dd.options.num_perm, seed=dd.options.seed)
            m.update_batch([" ".join(words[i : i + 5]).encode() for i in range(max(1, len(words) - 4))])

    t_stage, t_bare = cpu(run_dedup, args.repeat), cpu(bare_datasketch, args.repeat)
    rows.append(("dedup (signatures)", n, n / t_stage, mb / t_stage, "datasketch MinHash.update_batch", n / t_bare,
                 t_stage / t_bare - 1))

    # parquet
    table_ = pa.Table.from_batches(signed)
    mb = table_.nbytes / 1e6
    path = Path("/tmp") / f"refinery-stages-bench-{time.time_ns()}.parquet"
    t_bare = cpu(lambda: pq.write_table(table_, path, compression="zstd", compression_level=cfg.shards.compression_level),
                 args.repeat)
    path.unlink(missing_ok=True)
    rows.append(("parquet write", table_.num_rows, table_.num_rows / t_bare, mb / t_bare, "pyarrow write_table zstd",
                 table_.num_rows / t_bare, 0.0))

    # the whole pipeline in one process (PipelineRunner: every stage, rejects, Arrow), vs bare trafilatura on all pages
    from refinery.counters import Counters
    from refinery.runner import PipelineRunner

    runner = PipelineRunner(cfg, "run")
    runner.setup()
    t_pipe = cpu(lambda: [runner.process(b, Counters()) for b in batches], args.repeat)
    rows.append(("whole pipeline (one process)", n_pages, n_pages / t_pipe, html_mb / t_pipe,
                 "trafilatura.extract(bytes), all pages", n_pages / t_bare_extract, t_pipe / t_bare_extract - 1))

    print(f"{n_pages} pages, {warc_bytes / 1e6:.1f} MB WARC, {html_mb:.1f} MB HTML; CPU seconds, one core, "
          f"median of {args.repeat}")
    print(table(rows, ("stage", "docs", "docs/s/core", "MB/s/core", "bare library call", "bare docs/s/core",
                       "overhead")))


if __name__ == "__main__":
    main()
