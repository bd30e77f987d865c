"""Toxicity: probability that a document is toxic, from the language's fastText classifier.

Document mode scores the whole text (newlines joined) and drops documents at or
above `threshold`.  Paragraph mode (`paragraphs: true`, as dolma does) scores
every paragraph, removes those at or above `paragraph_threshold` from the text,
then scores what remains; a document whose paragraphs were all toxic is dropped
as `all_paragraphs_toxic` and keeps the score of its original text (a one-line
toxic post is not left with a null score in rejects and `annotate`).  Documents in a language without a model pass with a
null `toxicity`.
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field, model_validator

from refinery.strict import StrictModel
from refinery.langcodes import LangCode
from refinery.models.registry import manifest_info, require_models, resolve_models
from refinery.models.textnorm import paragraphs
from refinery.stages.base import Stage, StageResult, languages, rows_by_language, set_column

TEXT_FIELD = pa.field("text", pa.string())
TOXICITY_FIELD = pa.field("toxicity", pa.float64())


class ToxicityOptions(StrictModel):
    models: str = Field("default", description="model root: 'default' (shipped) or a directory with toxicity/<lang>/")
    languages: list[LangCode] | None = Field(None, description="languages that must have a model; null: every model found")
    threshold: float | None = Field(0.5, ge=0.0, le=1.0, description="drop documents scoring at or above; null: score only")
    paragraphs: bool = Field(False, description="remove toxic paragraphs instead of judging only the whole document")
    paragraph_threshold: float | None = Field(None, ge=0.0, le=1.0, description="default: threshold (or 0.5)")
    min_paragraph_chars: int = Field(0, ge=0, description="shorter paragraphs are kept without scoring")

    @model_validator(mode="after")
    def _models_exist(self) -> "ToxicityOptions":
        """A missing model fails when the pipeline is loaded, before any work starts."""
        require_models("toxicity", self.models, self.languages)
        return self


class ToxicityStage(Stage):
    name = "toxicity"
    order = 60
    Options = ToxicityOptions
    fields = [TEXT_FIELD, TOXICITY_FIELD]

    def setup(self) -> None:
        from refinery.models.toxicity import ToxicityModel

        dirs = resolve_models("toxicity", self.options.models, self.options.languages)
        self.models = {lang: ToxicityModel(d, lang) for lang, d in dirs.items()}
        o = self.options
        self.par_threshold = o.paragraph_threshold if o.paragraph_threshold is not None else (o.threshold if o.threshold is not None else 0.5)

    def model_info(self) -> dict:
        dirs = resolve_models("toxicity", self.options.models, self.options.languages)
        return {"toxicity": {lang: manifest_info("toxicity", d, lang) for lang, d in sorted(dirs.items())}}

    def clean_paragraphs(self, model, text: str) -> tuple[str, int]:
        """Text without its toxic paragraphs, and how many were removed."""
        paras = paragraphs(text)
        scored = [i for i, p in enumerate(paras) if len(p) >= self.options.min_paragraph_chars]
        scores = model.scores([paras[i] for i in scored])
        toxic = {i for i, s in zip(scored, scores) if s >= self.par_threshold}
        return "\n".join(p for i, p in enumerate(paras) if i not in toxic), len(toxic)

    def process(self, records: pa.RecordBatch) -> StageResult:
        texts = records.column("text").to_pylist()
        langs = languages(records)
        out_texts = list(texts)
        scores: list[float | None] = [None] * len(texts)
        reasons: list[str | None] = [None] * len(texts)
        details: list[str | None] = [None] * len(texts)
        by_lang = rows_by_language(texts, langs, self.models)
        threshold = self.options.threshold
        for lang, rows in by_lang.items():
            model = self.models[lang]
            if self.options.paragraphs:
                for i in rows:
                    cleaned, removed = self.clean_paragraphs(model, out_texts[i])
                    if removed:
                        details[i] = f"{removed} toxic paragraph(s) removed"
                        out_texts[i] = cleaned
                        if not cleaned:
                            reasons[i] = "all_paragraphs_toxic"
                            details[i] += f", none left (paragraph toxicity>={self.par_threshold:g})"
            # Every document keeps a score: one whose every paragraph was removed is scored on
            # its original text, so its (high) score still reaches rejects and `annotate`.
            scored = [out_texts[i] or texts[i] for i in rows]
            for i, s in zip(rows, model.scores([t.replace("\n", " ") for t in scored])):
                scores[i] = round(s, 6)
                if reasons[i] is None and threshold is not None and s >= threshold:
                    reasons[i] = "toxic"
                    note = f"; {details[i]}" if details[i] else ""
                    details[i] = f"toxicity={round(s, 6):g}>={threshold:g} (threshold, {lang}){note}"
        records = set_column(records, TEXT_FIELD, pa.array(out_texts, type=pa.string()))
        records = set_column(records, TOXICITY_FIELD, pa.array(scores, type=pa.float64()))
        return StageResult(records, reasons, details)
