"""`refinery validate PIPELINE...` and `refinery pipelines`: checking pipeline files without running them.

A config error found at submit time costs a failed batch; found here it costs nothing.  Every
file is checked (one bad file does not hide the others) and every error of a file is listed.
"""

from __future__ import annotations

from dataclasses import dataclass

from refinery.config import PipelineConfig
from refinery.errors import ConfigError


@dataclass
class Checked:
    spec: str  # as given: a path or a shipped name
    config: PipelineConfig | None
    errors: list[str]


def check(spec: str) -> Checked:
    """Load `spec` (path or name) and every model it names; collect its errors instead of raising."""
    from refinery.pipeline_files import resolve

    try:
        config = resolve(spec)
    except ConfigError as err:
        return Checked(spec, None, str(err).splitlines())
    return Checked(spec, config, [])


def summary(config: PipelineConfig) -> str:
    """One line per stage with the options that differ from the defaults (what the file decides)."""
    lines = []
    for s in config.stages:
        changed = s.options.model_dump(mode="json", exclude_defaults=True)
        lines.append(f"  {s.name:<11} {changed if changed else '(defaults)'}")
    return "\n".join(lines)


def cmd_validate(args) -> int:
    """Exit 0 when every file is valid, 2 when any is not (each error on its own line)."""
    bad = 0
    for spec in args.pipelines:
        result = check(spec)
        if result.errors:
            bad += 1
            print(f"INVALID {spec}: {len(result.errors)} error(s)")
            for line in result.errors:
                print(f"  {line}")
            continue
        cfg = result.config
        assert cfg is not None
        print(f"ok      {spec}: pipeline {cfg.name!r}, {len(cfg.stages)} stages, config_hash {cfg.config_hash()[:12]}")
        if args.verbose:
            print(summary(cfg))
    if len(args.pipelines) > 1:
        print(f"{len(args.pipelines) - bad} valid, {bad} invalid")
    return 2 if bad else 0


def cmd_pipelines(args) -> int:
    """List the shipped pipelines; an invalid file is listed with its first error, not fatal."""
    from refinery.pipeline_files import available

    bad = 0
    for name, path in available().items():
        result = check(str(path))
        if result.config is not None:
            print(f"{name:<20} {path}  stages={','.join(s.name for s in result.config.stages)}")
        else:
            bad += 1
            more = f" (+{len(result.errors) - 1} more: refinery validate {path})" if len(result.errors) > 1 else ""
            print(f"{name:<20} {path}  INVALID: {result.errors[0]}{more}")
    return 1 if bad else 0


def add_parsers(sub) -> None:
    v = sub.add_parser("validate", help="check pipeline files (every error at once), run nothing")
    v.add_argument("pipelines", nargs="+", metavar="PIPELINE", help="pipeline file or shipped name")
    v.add_argument("--verbose", "-v", action="store_true", help="also print each stage's non-default options")
    v.set_defaults(fn=cmd_validate)


