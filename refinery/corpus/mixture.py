"""Mixture specs: named groups of committed documents, each a share of the training stream.

A spec (YAML file, dict or `MixtureSpec`) names groups by filters on committed
columns, gives each a weight and optionally a repeat cap:

    share: documents            # weights are shares of documents, or of `tokens` (whitespace words)
    overlap: refuse             # a document in two groups is an error; `first`: the first group takes it
    on_dry: redistribute        # a group with nothing left: share goes to the others; `wait`: stream waits
    groups:
      - name: en-head
        weight: 0.5
        max_epochs: 3           # at most 3 passes over this group (Nemotron-CC style upsampling)
        filter: {language: en, ppl_bucket: head}
      - name: de
        weight: 0.2
        filter: {language: de, commit: {min: 2}}
      - name: wiki
        weight: 0.3
        filter: {domain: [en.wikipedia.org, de.wikipedia.org]}

Filters use the reader's dict form (refinery/corpus/filters.py) over any column of
the committed shards (so `quality_bucket` works as soon as shards carry it), plus
two derived columns: `commit` (the commit number) and `domain` (the host of `url`,
lower-cased, without `www.`).  Validation errors name the group.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal, Mapping

import pyarrow.compute as pc
import yaml
from pydantic import Field, ValidationError

from refinery.strict import StrictModel
from refinery.corpus.filters import to_expression
from refinery.errors import ConfigError, validation_summary

DERIVED_COLUMNS = ("commit", "domain")


class MixtureError(ConfigError, ValueError):
    """A mixture spec is invalid, or does not fit the corpus: the message names the group."""


class GroupSpec(StrictModel):
    name: str = Field(min_length=1)
    weight: float
    filter: dict[str, Any] = Field(default_factory=dict, description="dict-form filter; empty: every document")
    max_epochs: int | None = Field(None, description="repeat cap: at most this many passes (None: no cap)")


class MixtureSpec(StrictModel):
    share: Literal["documents", "tokens"] = "documents"
    overlap: Literal["refuse", "first"] = "refuse"
    on_dry: Literal["redistribute", "wait"] = "redistribute"
    groups: tuple[GroupSpec, ...]

    # -- loading ---------------------------------------------------------------------
    @classmethod
    def load(cls, spec: "MixtureSpec | Mapping[str, Any] | str | Path") -> "MixtureSpec":
        """A spec from a MixtureSpec, a dict, or a YAML/JSON file path."""
        if isinstance(spec, MixtureSpec):
            return spec
        where = "mixture spec"
        if isinstance(spec, (str, Path)):
            where = str(spec)
            try:
                data = yaml.safe_load(Path(spec).read_text(encoding="utf-8"))
            except OSError as err:
                raise MixtureError(f"{where}: cannot read: {err}") from None
            except yaml.YAMLError as err:
                raise MixtureError(f"{where}: not valid YAML: {err}") from None
        else:
            data = spec
        return cls.from_dict(data, where)

    @classmethod
    def from_dict(cls, data: Any, where: str = "mixture spec") -> "MixtureSpec":
        if not isinstance(data, Mapping):
            raise MixtureError(f"{where}: must be a mapping with a `groups` list")
        groups = data.get("groups")
        if not isinstance(groups, (list, tuple)) or not groups:
            raise MixtureError(f"{where}: `groups` must be a non-empty list")
        names: list[str] = []
        for i, g in enumerate(groups):
            label = g.get("name") if isinstance(g, Mapping) else None
            label = repr(label) if isinstance(label, str) and label else f"#{i + 1}"
            if not isinstance(g, Mapping):
                raise MixtureError(f"{where}: group {label}: must be a mapping (name, weight, filter, max_epochs)")
            try:
                GroupSpec.model_validate(dict(g))
            except ValidationError as err:
                raise MixtureError(f"{where}: group {label}: {validation_summary(err.errors())}") from None
            w = g["weight"]
            if not (isinstance(w, (int, float)) and not isinstance(w, bool) and w > 0 and w == w and w != float("inf")):
                raise MixtureError(f"{where}: group {label}: weight must be a positive number (got {w!r})")
            cap = g.get("max_epochs")
            if cap is not None and cap < 1:
                raise MixtureError(f"{where}: group {label}: max_epochs must be >= 1 or null (got {cap!r})")
            try:
                to_expression(g.get("filter") or None)
            except (TypeError, ValueError) as err:
                raise MixtureError(f"{where}: group {label}: bad filter: {err}") from None
            if g["name"] in names:
                raise MixtureError(f"{where}: group {label}: the name is used twice")
            names.append(g["name"])
        body = {k: v for k, v in data.items() if k != "groups"}
        body["groups"] = tuple(GroupSpec.model_validate({**g, "weight": float(g["weight"])}) for g in groups)
        try:
            return cls.model_validate(body)
        except ValidationError as err:
            raise MixtureError(f"{where}: {validation_summary(err.errors())}") from None

    # -- derived -----------------------------------------------------------------------
    @property
    def names(self) -> list[str]:
        return [g.name for g in self.groups]

    @property
    def shares(self) -> list[float]:
        """Target shares: weights normalised to sum to 1."""
        total = sum(g.weight for g in self.groups)
        return [g.weight / total for g in self.groups]

    def columns(self) -> list[str]:
        """Every column the group filters use (derived ones included)."""
        return sorted({c for g in self.groups for c in g.filter})

    def expression(self, index: int) -> pc.Expression | None:
        return to_expression(self.groups[index].filter or None)

    def to_dict(self) -> dict[str, Any]:
        return json.loads(self.model_dump_json())

    def digest(self) -> str:
        """Identifies the spec in saved state: a resumed stream must use the same one."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True, default=str).encode()).hexdigest()[:16]
