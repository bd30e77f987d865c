"""Finding pipeline files by path or by name (`web-en` -> pipelines/web-en.yaml)."""

from __future__ import annotations

import os
from pathlib import Path

from refinery.config import PipelineConfig, load_pipeline
from refinery.errors import ConfigError


def pipeline_dirs() -> list[Path]:
    dirs = []
    if env := os.environ.get("REFINERY_PIPELINES_DIR"):
        dirs.append(Path(env))
    dirs.append(Path(__file__).resolve().parent.parent / "pipelines")
    return dirs


def available() -> dict[str, Path]:
    found: dict[str, Path] = {}
    for d in pipeline_dirs():
        if d.is_dir():
            for p in sorted(d.glob("*.yaml")):
                found.setdefault(p.stem, p)
    return found


def resolve(spec: str) -> PipelineConfig:
    path = Path(spec)
    if path.suffix in (".yaml", ".yml") and not path.exists() and path.stem in available():
        # `--pipeline pipelines/web-en.yaml` typed outside the checkout: the shipped name works anywhere
        raise ConfigError(
            f"{spec}: no such file here ({Path.cwd()}); the shipped pipeline of that name is "
            f"`--pipeline {path.stem}` ({available()[path.stem]})"
        )
    if path.suffix in (".yaml", ".yml") or path.exists():
        return load_pipeline(path)
    named = available()
    if spec in named:
        return load_pipeline(named[spec])
    raise ConfigError(f"{spec}: no such pipeline file or name (known: {', '.join(sorted(named)) or 'none'})")
