"""The base of every configuration block: pipeline YAML, stage options, mixture specs.

Its own module so that stages (which define their options on it) and `config`
(which reads the stage registry to validate a pipeline) never import each other.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class StrictModel(BaseModel):
    """Unknown keys are errors, values are not coerced, instances are frozen."""

    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)
