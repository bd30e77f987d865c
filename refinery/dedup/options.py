"""The `dedup` stage's options: what decides signatures and band keys (`index_id`) and what is switched.

In the dedup package, not the stage module, because the driver's decisions
(phase), the persistent index and the stage all read them.
"""

from __future__ import annotations

import hashlib
import json
from typing import Literal

from pydantic import Field, model_validator

from refinery.dedup.minhash import NORMALISATION_VERSION, Shingling
from refinery.langcodes import LangCode
from refinery.strict import StrictModel


class ShingleOptions(StrictModel):
    kind: Literal["word", "char"] = "word"
    size: int = Field(5, ge=1, le=32)


def _cjk_defaults() -> dict[str, ShingleOptions]:
    return {lang: ShingleOptions(kind="char", size=5) for lang in ("zh", "ja", "th")}


class DedupOptions(StrictModel):
    exact: bool = Field(True, description="drop documents whose normalised text was seen before")
    near: bool = Field(True, description="drop MinHash LSH near-duplicates")
    num_perm: int = Field(128, ge=8, le=1024, description="MinHash permutations")
    bands: int = Field(18, ge=1, description="LSH bands; bands*rows <= num_perm")
    rows: int = Field(7, ge=1, description="signature slots per band")
    seed: int = Field(1, ge=0, description="permutation seed (datasketch's default is 1)")
    shingle: ShingleOptions = ShingleOptions()
    languages: dict[LangCode, ShingleOptions] = Field(
        default_factory=_cjk_defaults, description="per-language shingling (by the langid `language` column)"
    )
    index_partitions: int = Field(1, ge=1, description="band-range partitions of the resident index")
    index_actors: bool = Field(False, description="host each partition in its own Ray actor (else in the driver)")

    @model_validator(mode="after")
    def _check_bands(self) -> "DedupOptions":
        if self.bands * self.rows > self.num_perm:
            raise ValueError(f"bands*rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}")
        return self

    def index_id(self) -> str:
        """Identity of everything that changes signatures or band keys (not the exact/near switches)."""
        payload = {
            "num_perm": self.num_perm,
            "bands": self.bands,
            "rows": self.rows,
            "seed": self.seed,
            "shingle": self.shingle.model_dump(),
            "languages": {k: v.model_dump() for k, v in sorted(self.languages.items())},
            "normalisation": NORMALISATION_VERSION,
        }
        return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()[:16]

    def shingling(self, language: str | None) -> Shingling:
        opt = self.languages.get(language or "", self.shingle)
        return Shingling(opt.kind, opt.size)
