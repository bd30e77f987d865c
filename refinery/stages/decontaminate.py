"""Benchmark decontamination: documents sharing an n-gram with an evaluation item are dropped (or marked).

Runs on the extracted text, after langid and before quality (order 25), not
after dedup as first planned: in Refinery dedup only signs documents in the
workers (the driver decides after every stage ran), so running later saves no
lookups, while quality's C4 line rules delete the short lines an item's
options sit on and break its n-grams: planted items were caught 0.76 of the
time after web-en's quality stage, 0.998 before it (bench/README.md).  The index is either a directory built by `refinery
decont build` (`index: default` is the one shipped in
refinery/models/default/decont/benchmarks, built from
../shared/data/decontamination/) or built at load from `sets:` files and
cached by their content hash.  Either way its sha256s are in the options,
so in the config hash, and its manifest (sets, versions, licences) in the
commit's provenance.

A document is contaminated by an item when it contains at least
`min_coverage` of the item's n-grams (0.8 by default; 0 is the literal "any
shared n-gram" rule, which also drops every page quoting the Declaration of
Independence or a Churchill speech that an MMLU history item is built on).
`contaminated_by` names the item it covers most (`benchmark:split:id`, null
when clean); `action: drop` drops the document
as `contaminated:BENCHMARK`, `action: mark` keeps it with the column set.
"""

from __future__ import annotations

from collections import Counter

from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
from pydantic import Field, computed_field, model_validator

from refinery.strict import StrictModel
from refinery.decont.index import IndexParams, cached_index, doc_kind, load_index, read_manifest
from refinery.decont.sets import SetError, read_items
from refinery.decont.ngrams import fold
from refinery.errors import ModelError
from refinery.models import file_sha256
from refinery.models.registry import DEFAULT_ROOT
from refinery.stages.base import Stage, StageResult, languages, set_column

CONTAMINATED_FIELD = pa.field("contaminated_by", pa.string())
DEFAULT_INDEX = DEFAULT_ROOT / "decont" / "benchmarks"


def index_dir(spec: str) -> Path:
    return DEFAULT_INDEX if spec == "default" else Path(spec).expanduser()


class DecontaminateOptions(StrictModel):
    index: str | None = Field(None, description="index directory ('default': the shipped one); or give `sets`")
    sets: list[str] = Field(default_factory=list, description="evaluation-set JSONL files; index built at load, cached")
    n: int | None = Field(None, ge=3, le=64, description="words per n-gram (default 13; with `index`: the index's)")
    char_n: int | None = Field(None, ge=3, le=128, description="characters per n-gram for char_languages (default 13)")
    min_item_tokens: int | None = Field(None, ge=1, description="shorter items are not indexed (default 8)")
    char_languages: list[str] = Field(default_factory=lambda: ["zh", "ja"], description="languages n-grammed by character")
    action: Literal["drop", "mark"] = Field("drop", description="drop contaminated documents, or only mark them")
    min_matches: int = Field(1, ge=1, description="shared n-grams needed to call a document contaminated")
    min_coverage: float = Field(
        0.8, ge=0.0, le=1.0,
        description="fraction of an item's n-grams the document must contain (0: any shared n-gram); a page "
        "quoting the famous passage an item is built on (a speech, a constitution) is not a copy of the item",
    )

    def params(self) -> IndexParams:
        return IndexParams(self.n or 13, self.char_n or 13, self.min_item_tokens or 8, tuple(self.char_languages))

    @computed_field  # in model_dump, so in the config hash: a rebuilt index or changed set = new configuration
    @property
    def sha256(self) -> dict[str, str]:
        if self.index is not None:
            m = read_manifest(index_dir(self.index))
            return {role: f["sha256"] for role, f in sorted(m["files"].items())}
        return {p: file_sha256(p) for p in sorted(self.sets)}

    @model_validator(mode="after")
    def _check(self) -> "DecontaminateOptions":
        if (self.index is None) == (not self.sets):
            raise ValueError("give exactly one of `index` (a built index directory) and `sets` (evaluation-set files)")
        try:
            if self.index is not None:
                m = read_manifest(index_dir(self.index))
                p = m["params"]
                for key in ("n", "char_n", "min_item_tokens"):
                    mine = getattr(self, key)
                    if mine is not None and mine != p[key]:
                        raise ValueError(f"{key}={mine} but the index {index_dir(self.index)} was built with {key}={p[key]}; "
                                         "rebuild it with `refinery decont build` or drop the option")  # fmt: skip
                if list(self.char_languages) != p["char_languages"]:
                    raise ValueError(f"char_languages {self.char_languages} differ from the index's {p['char_languages']}")
            else:
                for path in self.sets:
                    for _ in read_items(Path(path)):  # every line validated now, before any work starts
                        pass
        except (ModelError, SetError) as err:
            raise ValueError(str(err)) from None
        return self


class DecontaminateStage(Stage):
    name = "decontaminate"
    order = 25  # after langid (its `language` picks word/char n-grams), before quality edits the text
    Options = DecontaminateOptions
    fields = [CONTAMINATED_FIELD]

    def setup(self) -> None:
        o = self.options
        if o.index is not None:
            self.index = load_index(index_dir(o.index))
        else:
            paths = [Path(p) for p in o.sets]
            self.index = cached_index(paths, [file_sha256(str(p)) for p in paths], o.params())

    def model_info(self) -> dict[str, Any]:
        o = self.options
        if o.index is None:
            return {"decontaminate": {"sets": o.sha256, "params": o.params().to_dict()}}
        m = read_manifest(index_dir(o.index))
        sets = {b: {k: s.get(k) for k in ("version", "licence", "items")} for b, s in m.get("sets", {}).items()}
        return {"decontaminate": {"index": m.get("version"), "params": m["params"], "sha256": o.sha256, "sets": sets}}

    def process(self, records: pa.RecordBatch) -> StageResult:
        texts = records.column("text").to_pylist()
        langs = languages(records)
        norm = [fold(t) for t in texts]
        kinds = [doc_kind(n, lang, self.index.params.char_languages) for n, lang in zip(norm, langs)]
        hits = self.index.query(norm, kinds)
        by: list[str | None] = [None] * len(texts)
        reasons: list[str | None] = [None] * len(texts)
        details: list[str | None] = [None] * len(texts)
        items, owned = self.index.items, self.index.item_grams
        o = self.options
        for i, counts in enumerate(hits):
            found = [(c / max(int(owned[r]), 1), c, r) for r, c in counts.items() if c >= o.min_matches]
            found = [f for f in found if f[0] >= o.min_coverage]
            if not found:
                continue
            found.sort(key=lambda f: (-f[0], -f[1], f[2]))  # the item the document covers most, then most grams
            by[i] = items[found[0][2]]
            details[i] = ", ".join(f"{items[r]} ({c}/{owned[r]} n-grams)" for _, c, r in found[:3]) + (
                f" +{len(found) - 3} more" if len(found) > 3 else ""
            )
            if self.options.action == "drop":
                reasons[i] = "contaminated:" + by[i].split(":", 1)[0]
        records = set_column(records, CONTAMINATED_FIELD, pa.array(by, pa.string()))
        # Marked documents are kept, so no drop counter sees them: count them as events
        # (`refinery_stage_events_total{stage="decontaminate", event="marked:BENCHMARK"}`).
        marked = Counter(f"marked:{b.split(':', 1)[0]}" for b in by if b) if self.options.action == "mark" else None
        return StageResult(records, reasons, details, counts=dict(sorted(marked.items())) if marked else None)
