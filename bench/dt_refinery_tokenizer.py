"""Refinery's tokenizer as a datatrove WordTokenizer (imported inside bench/.venv-datatrove only).

A module of its own, importable by datatrove's worker processes (they unpickle the
pipeline): Refinery's text_stats.py is loaded by file path, so the datatrove venv
never imports Refinery's package and its dependencies.
"""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path

from datatrove.utils.word_tokenizers import WordTokenizer

_PATH = Path(__file__).resolve().parents[1] / "refinery" / "stages" / "text_stats.py"
if "refinery_text_stats" not in sys.modules:
    _spec = importlib.util.spec_from_file_location("refinery_text_stats", _PATH)
    _mod = importlib.util.module_from_spec(_spec)
    _spec.loader.exec_module(_mod)  # type: ignore[union-attr]
    sys.modules["refinery_text_stats"] = _mod
ts = sys.modules["refinery_text_stats"]


class RefineryTokenizer(WordTokenizer):
    def word_tokenize(self, text: str) -> list[str]:
        return ts.words(text, False)

    def sent_tokenize(self, text: str) -> list[str]:
        return ts.sentences(text)

    def span_tokenize(self, text: str) -> list[tuple[int, int]]:
        spans, pos = [], 0
        for s in ts.sentences(text):
            start = text.find(s, pos)
            spans.append((start, start + len(s)))
            pos = start + len(s)
        return spans
