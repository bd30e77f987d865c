"""Pipeline configuration as data: YAML files validated into typed models.

Every key is checked at load time so a typo in a threshold fails before any
work starts, with the file, the key path and the reason in one line.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, Field, ValidationError

from refinery.errors import ConfigError
from refinery.strict import StrictModel


class ExecutionConfig(StrictModel):
    records_per_unit: int = Field(128, ge=1, description="input records per Ray task")
    batch_rows: int = Field(64, ge=1, description="rows per Arrow batch inside a task")
    max_in_flight_per_cpu: int = Field(2, ge=1, description="bounds driver memory")
    min_units_per_cpu: int = Field(
        32, ge=1, description="small batches are cut into at least this many units per cluster CPU, so no worker "
        "idles while another finishes a long unit (unit costs vary 30x between pages)"
    )
    min_records_per_unit: int = Field(8, ge=1, description="floor for that cut (bounds per-task overhead)")


# Execution keys that only decide how work is cut into units, never what is written (shards are
# re-chunked by rows in input order): left out of the config hash, so they can be tuned without
# changing batch keys.
PLANNING_ONLY = {"min_units_per_cpu", "min_records_per_unit"}


class ShardConfig(StrictModel):
    target_bytes: int = Field(128 * 1024 * 1024, ge=1024, description="uncompressed Arrow bytes per shard")
    row_group_rows: int = Field(8192, ge=1)
    compression: Literal["zstd"] = "zstd"
    compression_level: int = Field(3, ge=1, le=22)


class RejectsConfig(StrictModel):
    mode: Literal["all", "sample", "none"] = "all"
    sample_rate: float = Field(0.05, gt=0.0, le=1.0)
    keep_text: bool = True


class StageSpec(StrictModel):
    """One stage as named in the YAML list, with its validated options."""

    name: str
    options: Any  # a stage-specific StrictModel instance


class PipelineConfig(StrictModel):
    name: str
    description: str = ""
    execution: ExecutionConfig = ExecutionConfig()
    shards: ShardConfig = ShardConfig()
    rejects: RejectsConfig = RejectsConfig()
    stages: tuple[StageSpec, ...]
    source: str = Field("<memory>", exclude=True)

    def config_hash(self) -> str:
        """Hash of everything that changes output; recorded with each commit."""
        payload = {
            "name": self.name,
            "execution": self.execution.model_dump(exclude=PLANNING_ONLY),
            "shards": self.shards.model_dump(),
            "rejects": self.rejects.model_dump(),
            "stages": [{s.name: s.options.model_dump(mode="json")} for s in self.stages],
        }
        blob = json.dumps(payload, sort_keys=True, separators=(",", ":")).encode()
        return hashlib.sha256(blob).hexdigest()

    def stage(self, name: str) -> StageSpec | None:
        return next((s for s in self.stages if s.name == name), None)


def _format_loc(prefix: str, loc: tuple[Any, ...]) -> str:
    parts = [prefix] if prefix else []
    for item in loc:
        if isinstance(item, int):
            parts[-1] = f"{parts[-1]}[{item}]" if parts else f"[{item}]"
        else:
            parts.append(str(item))
    return ".".join(parts)


def _model_fields(model: Any, loc: tuple[Any, ...]) -> list[str]:
    """Field names of the (nested) model at `loc`, for a did-you-mean hint on an unknown key."""
    import typing

    current = model
    for item in loc:
        if isinstance(item, int) or not (isinstance(current, type) and issubclass(current, BaseModel)):
            continue
        info = current.model_fields.get(str(item))
        if info is None:
            break
        nested = [a for a in (info.annotation, *typing.get_args(info.annotation))
                  if isinstance(a, type) and issubclass(a, BaseModel)]  # fmt: skip
        current = nested[0] if nested else None
    if isinstance(current, type) and issubclass(current, BaseModel):
        return [n for n, f in current.model_fields.items() if not f.exclude]
    return []


def _did_you_mean(word: str, choices: list[str]) -> str:
    import difflib

    close = difflib.get_close_matches(word, choices, n=1, cutoff=0.6)
    return f" (did you mean {close[0]!r}?)" if close else ""


def _validation_lines(source: str, prefix: str, err: ValidationError, model: Any = None) -> list[str]:
    lines = []
    for e in err.errors():
        loc = tuple(e["loc"])
        key = _format_loc(prefix, loc)
        reason = e["msg"].removeprefix("Value error, ")
        if e["type"] == "extra_forbidden":
            known = _model_fields(model, loc[:-1]) if model is not None else []
            reason = "unknown key" + _did_you_mean(str(loc[-1]), known)
            if known:
                reason += f"; known: {', '.join(known)}"
        elif e["type"] != "value_error" and "input" in e and not isinstance(e["input"], (dict, list, tuple)):
            reason += f" (got {e['input']!r})"
        lines.append(f"{source}: {key}: {reason}")
    return lines


def parse_pipeline(data: Any, source: str = "<memory>") -> PipelineConfig:
    """Validate a parsed YAML document into a PipelineConfig.

    Every problem of the file is reported at once (one line each, in the ConfigError's message):
    an operator fixes a file in one pass, not one error per run."""
    from refinery.stages import STAGE_TYPES

    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping, got {type(data).__name__}")
    errors: list[str] = []
    data = dict(data)
    raw_stages = data.pop("stages", None)
    top_fields = [n for n, f in PipelineConfig.model_fields.items() if not f.exclude]
    for key in data:
        if key not in top_fields:
            errors.append(f"{source}: {key}: unknown key{_did_you_mean(str(key), top_fields)}; known: {', '.join(top_fields)}")
    data = {k: v for k, v in data.items() if k in top_fields}
    specs: list[StageSpec] = []
    if not isinstance(raw_stages, list) or not raw_stages:
        errors.append(f"{source}: stages: required, a non-empty list of single-key mappings")
        raw_stages = []
    seen: set[str] = set()
    for i, item in enumerate(raw_stages):
        where = f"stages[{i}]"
        if isinstance(item, str):
            item = {item: {}}
        if not isinstance(item, dict) or len(item) != 1:
            errors.append(f"{source}: {where}: each stage must be a mapping with exactly one key (the stage name)")
            continue
        (name, options), = item.items()
        if name not in STAGE_TYPES:
            hint = _did_you_mean(str(name), sorted(STAGE_TYPES))
            errors.append(f"{source}: {where}.{name}: unknown stage{hint} (known: {', '.join(sorted(STAGE_TYPES))})")
            continue
        if name in seen:
            errors.append(f"{source}: {where}.{name}: stage listed twice")
            continue
        seen.add(name)
        if options is None:
            options = {}
        if not isinstance(options, dict):
            errors.append(f"{source}: {where}.{name}: options must be a mapping")
            continue
        options_model = STAGE_TYPES[name].Options
        try:
            parsed = options_model.model_validate(options)
        except ValidationError as err:
            errors.extend(_validation_lines(source, f"{where}.{name}", err, options_model))
            continue
        specs.append(StageSpec(name=name, options=parsed))
    order = [STAGE_TYPES[s.name].order for s in specs]
    if order != sorted(order):
        errors.append(
            f"{source}: stages: out of order; stages run as "
            + " -> ".join(sorted(STAGE_TYPES, key=lambda n: STAGE_TYPES[n].order))
        )
    try:
        config = PipelineConfig.model_validate({**data, "stages": tuple(specs) or (StageSpec(name="-", options=None),), "source": source})
    except ValidationError as err:
        errors.extend(_validation_lines(source, "", err, PipelineConfig))
        config = None
    if errors:
        raise ConfigError("\n".join(errors))
    assert config is not None
    return config


def load_pipeline(path: str | Path) -> PipelineConfig:
    """Load and validate `pipelines/NAME.yaml`; raises ConfigError naming file, key and reason."""
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"{path}: cannot read pipeline file: {err.strerror or err}") from None
    try:
        data = yaml.safe_load(text)
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: invalid YAML: {err}") from None
    return parse_pipeline(data, str(path))
