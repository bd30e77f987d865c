"""Stage registry: the YAML stage name -> the class that implements it."""

from __future__ import annotations

from refinery.stages.base import Stage, StageResult
from refinery.stages.decontaminate import DecontaminateStage
from refinery.stages.dedup import DedupStage
from refinery.stages.extract import ExtractStage
from refinery.stages.langid import LangIdStage
from refinery.stages.perplexity import PerplexityStage
from refinery.stages.pii import PiiStage
from refinery.stages.quality import QualityStage
from refinery.stages.quality_classifier import QualityClassifierStage
from refinery.stages.toxicity import ToxicityStage
from refinery.stages.url_filter import UrlFilterStage

STAGE_TYPES: dict[str, type[Stage]] = {
    cls.name: cls
    for cls in (ExtractStage, LangIdStage, QualityStage, DedupStage, PerplexityStage, ToxicityStage)
    + (UrlFilterStage, DecontaminateStage, QualityClassifierStage)
}
STAGE_TYPES[PiiStage.name] = PiiStage

__all__ = ["STAGE_TYPES", "Stage", "StageResult"]
