"""Language-ID accuracy through `refinery annotate` on real sentences (75 languages).

Writes the sentences as a JSONL batch (`text` field), runs the real CLI
(`refinery annotate`, local Ray) with an extract+langid pipeline that keeps
every language, and prints per-language accuracy and the macro average over
the languages lid.176 knows.

    .venv/bin/python bench/langid_accuracy.py [--per-language 500]
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from common import REPO, shared, table  # noqa: E402

import pyarrow.parquet as pq  # noqa: E402

from refinery.models import lid_model_path, load_fasttext  # noqa: E402

PIPELINE = """
name: langid-bench
execution: {records_per_unit: 4000, batch_rows: 512}
rejects: {mode: none}
stages:
  - extract: {}
  - langid: {languages: [], min_score: 0.0}
"""


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--per-language", type=int, default=500)
    args = ap.parse_args()
    folder = shared("langid", "sentences")
    known = {lab.removeprefix("__label__") for lab in load_fasttext(lid_model_path("lid.176.ftz")).get_labels()}
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        batch = tmp / "sentences.jsonl"
        truth = []
        with batch.open("w", encoding="utf-8") as f:
            for path in sorted(folder.glob("*.txt")):
                lines = [ln for ln in path.read_text(encoding="utf-8").splitlines() if ln.strip()]
                for ln in lines[: args.per_language]:
                    f.write(json.dumps({"text": ln}, ensure_ascii=False) + "\n")
                    truth.append(path.stem)
        (tmp / "p.yaml").write_text(PIPELINE)
        out = tmp / "annotated.parquet"
        subprocess.run(
            [sys.executable, "-m", "refinery.cli", "annotate", "-q", "--pipeline", str(tmp / "p.yaml"), str(batch), "--out", str(out)],
            check=True, cwd=REPO, stdout=subprocess.DEVNULL,
        )
        predicted = pq.read_table(out, columns=["language"]).column("language").to_pylist()
    assert len(predicted) == len(truth)
    per: dict[str, list[int]] = {}
    for t, p in zip(truth, predicted):
        per.setdefault(t, []).append(int(t == p))
    rows = [(lang, len(v), sum(v) / len(v), "yes" if lang in known else "no") for lang, v in sorted(per.items())]
    print(table(rows, ("language", "sentences", "accuracy", "in lid.176")))
    scored = [r[2] for r in rows if r[3] == "yes"]
    print(f"\nmacro accuracy over {len(scored)} languages lid.176 knows: {sum(scored) / len(scored):.3f}")
    print(json.dumps({"macro_accuracy": round(sum(scored) / len(scored), 4), "languages": len(scored)}))


if __name__ == "__main__":
    main()
