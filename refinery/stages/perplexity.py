"""Per-document perplexity under the document's language model, bucketed head/middle/tail (cc_net).

The model for each language is a SentencePiece + KenLM model built by
`refinery models build-lm`; its manifest carries the bucket cutoffs calibrated
at build time.  Documents in a language without a model are not scored and
always pass: `perplexity` and `ppl_bucket` are null for them (documented in
docs/schema.md), so they can never be mistaken for a bucket.
"""

from __future__ import annotations

from typing import Literal

import pyarrow as pa
from pydantic import Field, model_validator

from refinery.strict import StrictModel
from refinery.langcodes import LangCode
from refinery.errors import ModelError
from refinery.models.registry import manifest_info, require_models, resolve_models
from refinery.stages.base import Stage, StageResult, languages, set_column

PERPLEXITY_FIELD = pa.field("perplexity", pa.float64())
BUCKET_FIELD = pa.field("ppl_bucket", pa.string())
Bucket = Literal["head", "middle", "tail"]


class PerplexityOptions(StrictModel):
    models: str = Field("default", description="model root: 'default' (shipped) or a directory with lm/<lang>/")
    languages: list[LangCode] | None = Field(
        None, description="languages that must have a model (startup error otherwise); null: every model found"
    )
    keep_buckets: list[Bucket] = Field(default_factory=lambda: ["head", "middle", "tail"], min_length=1)
    max_perplexity: float | None = Field(None, gt=0, description="drop scored documents above this perplexity")

    @model_validator(mode="after")
    def _models_exist(self) -> "PerplexityOptions":
        """A missing model fails when the pipeline is loaded, before any work starts."""
        require_models("lm", self.models, self.languages)
        return self


def _bucket_detail(ppl: float, bucket: str, cutoffs, keep: list[str]) -> str:
    """`perplexity=912.3>612.0 (tail cutoff of en); keep_buckets [head, middle]`."""
    if bucket == "tail":
        where = f">{cutoffs.tail:g} (tail cutoff)"
    elif bucket == "head":
        where = f"<={cutoffs.head:g} (head cutoff)"
    else:
        where = f" in ({cutoffs.head:g}, {cutoffs.tail:g}] (middle)"
    return f"perplexity={ppl:g}{where}; bucket {bucket} not in keep_buckets {keep}"


class PerplexityStage(Stage):
    name = "perplexity"
    order = 50
    Options = PerplexityOptions
    fields = [PERPLEXITY_FIELD, BUCKET_FIELD]

    def setup(self) -> None:
        from refinery.models.lm import LanguageModel

        dirs = resolve_models("lm", self.options.models, self.options.languages)
        self.models = {lang: LanguageModel(d, lang) for lang, d in dirs.items()}
        for m in self.models.values():
            if m.cutoffs is None:
                raise ModelError(f"perplexity model {m.directory} has no calibrated cutoffs; rebuild it with build-lm")
        self.keep = set(self.options.keep_buckets)

    def model_info(self) -> dict:
        dirs = resolve_models("lm", self.options.models, self.options.languages)
        return {"perplexity": {lang: manifest_info("lm", d, lang) for lang, d in sorted(dirs.items())}}

    def process(self, records: pa.RecordBatch) -> StageResult:
        texts = records.column("text").to_pylist()
        langs = languages(records)
        ppls: list[float | None] = []
        buckets: list[str | None] = []
        reasons: list[str | None] = []
        details: list[str | None] = []
        max_ppl = self.options.max_perplexity
        for text, lang in zip(texts, langs):
            model = self.models.get(lang) if lang else None
            ppl = model.perplexity(text) if model is not None else None
            bucket = model.bucket(ppl) if model is not None else None
            ppls.append(ppl)
            buckets.append(bucket)
            if bucket is not None and bucket not in self.keep:
                reasons.append(f"bucket_{bucket}")
                details.append(_bucket_detail(ppl, bucket, model.cutoffs, sorted(self.keep)))
            elif ppl is not None and max_ppl is not None and ppl > max_ppl:
                reasons.append("max_perplexity")
                details.append(f"perplexity={ppl:g}>{max_ppl:g} (max_perplexity, {lang})")
            else:
                reasons.append(None)
                details.append(None)
        records = set_column(records, PERPLEXITY_FIELD, pa.array(ppls, type=pa.float64()))
        records = set_column(records, BUCKET_FIELD, pa.array(buckets, type=pa.string()))
        return StageResult(records, reasons, details)
