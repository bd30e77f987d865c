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
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from refinery.errors import ConfigError


class StrictModel(BaseModel):
    """Base for every config block: unknown keys are errors, values are not coerced."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


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


def _validation_message(source: str, prefix: str, err: ValidationError) -> str:
    lines = []
    for e in err.errors():
        key = _format_loc(prefix, tuple(e["loc"]))
        reason = e["msg"]
        if e["type"] == "extra_forbidden":
            reason = "unknown key"
        lines.append(f"{source}: {key}: {reason}")
    return "\n".join(lines)


def parse_pipeline(data: Any, source: str = "<memory>") -> PipelineConfig:
    """Validate a parsed YAML document into a PipelineConfig."""
    from refinery.stages import STAGE_TYPES

    if not isinstance(data, dict):
        raise ConfigError(f"{source}: top level must be a mapping, got {type(data).__name__}")
    data = dict(data)
    raw_stages = data.pop("stages", None)
    if not isinstance(raw_stages, list) or not raw_stages:
        raise ConfigError(f"{source}: stages: required, a non-empty list of single-key mappings")
    specs: list[StageSpec] = []
    seen: set[str] = set()
    for i, item in enumerate(raw_stages):
        where = f"stages[{i}]"
        if isinstance(item, str):
            item = {item: {}}
        if not isinstance(item, dict) or len(item) != 1:
            raise ConfigError(f"{source}: {where}: each stage must be a mapping with exactly one key (the stage name)")
        (name, options), = item.items()
        if name not in STAGE_TYPES:
            raise ConfigError(f"{source}: {where}.{name}: unknown stage (known: {', '.join(sorted(STAGE_TYPES))})")
        if name in seen:
            raise ConfigError(f"{source}: {where}.{name}: stage listed twice")
        seen.add(name)
        if options is None:
            options = {}
        if not isinstance(options, dict):
            raise ConfigError(f"{source}: {where}.{name}: options must be a mapping")
        try:
            parsed = STAGE_TYPES[name].Options.model_validate(options)
        except ValidationError as err:
            raise ConfigError(_validation_message(source, f"{where}.{name}", err)) from None
        specs.append(StageSpec(name=name, options=parsed))
    order = [STAGE_TYPES[s.name].order for s in specs]
    if order != sorted(order):
        raise ConfigError(
            f"{source}: stages: out of order; stages run as "
            + " -> ".join(sorted(STAGE_TYPES, key=lambda n: STAGE_TYPES[n].order))
        )
    try:
        return PipelineConfig.model_validate({**data, "stages": tuple(specs), "source": source})
    except ValidationError as err:
        raise ConfigError(_validation_message(source, "", err)) from None


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
