"""Evaluation-set files: JSONL (plain or gzip), one item a line: {"benchmark", "id", "text", "split"?}.

This is the format of ../shared/data/decontamination/decontam_texts.jsonl.gz;
other keys are ignored.  A line that is not a JSON object with string
`benchmark`, `id` and `text` is a SetError naming the file and line.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

from refinery.errors import ConfigError
from refinery.files import open_maybe_gzip

# What the shipped index records about each benchmark (from ../shared/data/decontamination/SOURCE.txt).
KNOWN_SETS: dict[str, dict[str, str]] = {
    "mmlu": {"source": "https://github.com/hendrycks/test data/{test,val,dev}/*.csv",
             "version": "b3e602987386c51b454172d21f376dc8e8661674 (2020-09-07)", "licence": "MIT"},
    "gsm8k": {"source": "https://github.com/openai/grade-school-math grade_school_math/data/test.jsonl",
              "version": "3101c7d5072418e28b9008a6636bde82a006892c", "licence": "MIT"},
    "truthfulqa": {"source": "TruthfulQA.csv via https://github.com/benedictflorance/truthfulqa_experiments",
                   "version": "6fdfd38288e86296582a584694df5cf43d1f634a", "licence": "Apache-2.0 (upstream sylinrl/TruthfulQA; the copy states none)"},
    "humaneval": {"source": "https://github.com/openai/human-eval data/HumanEval.jsonl.gz",
                  "version": "6d43fb980f9fee3c892a914eda09951f772ad10d", "licence": "MIT"},
    "bbh": {"source": "https://github.com/suzgunmirac/BIG-Bench-Hard bbh/*.json",
            "version": "9ee07bd481feebf959a6b59d61ea57bdcf30964d", "licence": "MIT (tasks from BIG-bench, Apache-2.0)"},
}  # fmt: skip


class SetError(ConfigError):
    """An evaluation-set file that cannot be used."""


@dataclass(frozen=True)
class Item:
    benchmark: str
    split: str
    id: str
    text: str

    @property
    def ref(self) -> str:
        """What `contaminated_by` says: benchmark:split:id (ids repeat across MMLU's splits)."""
        return f"{self.benchmark}:{self.split}:{self.id}" if self.split else f"{self.benchmark}:{self.id}"


def _open(path: Path):
    try:
        return open_maybe_gzip(path)
    except OSError as err:
        raise SetError(f"{path}: cannot read evaluation set: {err.strerror or err}") from None


def read_items(path: Path) -> Iterator[Item]:
    """Every item of one set file; a bad line is a SetError naming the file and the line."""
    lineno = 0
    with _open(path) as f:
        try:
            for lineno, raw in enumerate(f, 1):
                try:
                    line = raw.decode("utf-8")
                except UnicodeDecodeError as err:
                    raise SetError(f"{path}:{lineno}: not UTF-8 text ({err.reason})") from None
                if not line.strip():
                    continue
                try:
                    row = json.loads(line)
                except ValueError as err:
                    raise SetError(f"{path}:{lineno}: not JSON ({err})") from None
                if not isinstance(row, dict):
                    raise SetError(f"{path}:{lineno}: expected a JSON object, got {type(row).__name__}")
                for key in ("benchmark", "id", "text"):
                    if not isinstance(row.get(key), str) or (key != "text" and not row[key]):
                        raise SetError(f"{path}:{lineno}: {key!r} must be a non-empty string")
                split = row.get("split") or ""
                if not isinstance(split, str):
                    raise SetError(f"{path}:{lineno}: 'split' must be a string")
                yield Item(row["benchmark"], split, row["id"], row["text"])
        except (OSError, EOFError) as err:
            raise SetError(f"{path}:{lineno + 1}: unreadable ({err})") from None
