"""Learned document quality: the language's fastText classifier score and its percentile bucket.

`quality_score` is P(high quality) from a classifier trained DCLM-style
(reference prose against Refinery's own extractions of real pages);
`quality_bucket` (0-19) is the 5%-wide percentile bin of that score among the
calibration documents recorded in the model's manifest (Nemotron-CC's 20
buckets), so a bucket means the same share of real pages whatever the score
scale.  A document is dropped below `threshold` (or below the score that keeps
the calibration sample's top `keep_top_fraction`) or below `min_bucket`.
Documents in a language without a model pass with nulls.
"""

from __future__ import annotations

import pyarrow as pa
from pydantic import Field, model_validator

from refinery.strict import StrictModel
from refinery.models.registry import read_manifest, require_models, resolve_models
from refinery.stages.base import Stage, StageResult, languages, rows_by_language, set_column

SCORE_FIELD = pa.field("quality_score", pa.float64())
BUCKET_FIELD = pa.field("quality_bucket", pa.int8())


class QualityClassifierOptions(StrictModel):
    models: str = Field("default", description="model root: 'default' (shipped) or a directory with quality/<lang>/")
    languages: list[str] | None = Field(None, description="languages that must have a model; null: every model found")
    threshold: float | None = Field(None, ge=0.0, le=1.0, description="drop documents scoring below; null: no score threshold")
    keep_top_fraction: float | None = Field(
        None, gt=0.0, le=1.0, description="threshold = the score keeping this top share of the model's calibration documents"
    )
    min_bucket: int | None = Field(None, ge=0, le=19, description="drop documents in a lower bucket; null: none")

    @model_validator(mode="after")
    def _check(self) -> "QualityClassifierOptions":
        """One way to set the threshold; a missing model fails when the pipeline is loaded."""
        if self.threshold is not None and self.keep_top_fraction is not None:
            raise ValueError("set threshold or keep_top_fraction, not both")
        require_models("quality", self.models, self.languages)
        return self


class QualityClassifierStage(Stage):
    name = "quality_classifier"
    order = 70  # after toxicity: scores the text toxicity's paragraph mode leaves
    Options = QualityClassifierOptions
    fields = [SCORE_FIELD, BUCKET_FIELD]

    def setup(self) -> None:
        from refinery.models.quality import QualityModel, threshold_for_fraction

        dirs = resolve_models("quality", self.options.models, self.options.languages)
        self.models = {lang: QualityModel(d, lang) for lang, d in dirs.items()}
        o = self.options
        self.thresholds: dict[str, float | None] = {}
        for lang, m in self.models.items():
            if o.keep_top_fraction is not None:
                self.thresholds[lang] = threshold_for_fraction(o.keep_top_fraction, m.percentiles)
            else:
                self.thresholds[lang] = o.threshold

    def model_info(self) -> dict:
        from refinery.models.quality import model_info

        dirs = resolve_models("quality", self.options.models, self.options.languages)
        return {"quality": {lang: model_info(read_manifest(d, "quality", lang)) for lang, d in sorted(dirs.items())}}

    def process(self, records: pa.RecordBatch) -> StageResult:
        texts = records.column("text").to_pylist()
        langs = languages(records)
        scores: list[float | None] = [None] * len(texts)
        buckets: list[int | None] = [None] * len(texts)
        reasons: list[str | None] = [None] * len(texts)
        details: list[str | None] = [None] * len(texts)
        by_lang = rows_by_language(texts, langs, self.models)
        min_bucket = self.options.min_bucket
        for lang, rows in by_lang.items():
            model = self.models[lang]
            threshold = self.thresholds[lang]
            for i, s in zip(rows, model.scores([texts[i] for i in rows])):
                scores[i] = s
                buckets[i] = model.bucket(s)
                if threshold is not None and s < threshold:
                    reasons[i] = "low_quality"
                    details[i] = f"quality_score={s:.4f}<{threshold:.4f} ({self._threshold_name})"
                elif min_bucket is not None and buckets[i] < min_bucket:
                    reasons[i] = "low_quality_bucket"
                    details[i] = f"quality_bucket={buckets[i]}<{min_bucket} (min_bucket)"
        records = set_column(records, SCORE_FIELD, pa.array(scores, type=pa.float64()))
        records = set_column(records, BUCKET_FIELD, pa.array(buckets, type=pa.int8()))
        return StageResult(records, reasons, details)

    @property
    def _threshold_name(self) -> str:
        o = self.options
        return f"keep_top_fraction {o.keep_top_fraction:g}" if o.keep_top_fraction is not None else "threshold"
