"""Pack the WCXB dev pages (../shared/data/extraction/wcxb_dev, 1,497 real 2025 pages of 7 types) as
gzip WARCs, so benchmarks can run `refinery run` on unique real pages beyond news articles.

    PYTHONPATH=. .venv/bin/python bench/wcxb_warcs.py OUT_DIR [--per-file 300]

Deterministic: the same pages give byte-identical WARCs (record ids from index and URL).
"""

from __future__ import annotations

import argparse
import gzip
import json
from pathlib import Path

from bench.common import shared
from refinery.sample import warc_record


def pack(out: Path, per_file: int = 300) -> list[Path]:
    root = shared("extraction", "wcxb_dev")
    with gzip.open(root / "ground_truth.jsonl.gz", "rt", encoding="utf-8") as f:
        rows = [json.loads(line) for line in f]
    out.mkdir(parents=True, exist_ok=True)
    files = []
    for start in range(0, len(rows), per_file):
        path = out / f"wcxb-{start // per_file:03d}.warc.gz"
        with path.open("wb") as w:
            for i, row in enumerate(rows[start:start + per_file], start=start):
                # 5 pages have no URL; WARC readers (datatrove's) need one, and the kept sets are compared by URL
                url = row["url"] or f"https://wcxb-dev.invalid/{row['file_id']}"
                w.write(warc_record(url, gzip.decompress((root / row["html_path"]).read_bytes()), i, payload_type="text/html"))
        files.append(path)
    return files


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("out", type=Path)
    ap.add_argument("--per-file", type=int, default=300)
    args = ap.parse_args()
    files = pack(args.out, args.per_file)
    print(f"wrote {len(files)} WARC files to {args.out}")


if __name__ == "__main__":
    main()
