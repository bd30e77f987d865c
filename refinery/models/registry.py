"""Where models live, their manifests, and the external KenLM tools.

Layout of a model root (the shipped one is `refinery/models/default/`):

    lm/<lang>/manifest.json, <lang>.sp.model, <lang>.klm
    toxicity/<lang>/manifest.json, <lang>.ftz
    quality/<lang>/manifest.json, <lang>.ftz

The manifest is the contract: name, language, version, the exact command that
rebuilt it, sha256 of the training data and of every model file, metrics,
and the data's licence and attribution.
"""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

from refinery.errors import ModelError

PACKAGE_DIR = Path(__file__).resolve().parent
DEFAULT_ROOT = PACKAGE_DIR / "default"
REPO_ROOT = PACKAGE_DIR.parents[1]
KINDS = ("lm", "toxicity", "quality")
MANIFEST = "manifest.json"
BUILD_HINT = {
    "lm": "refinery models build-lm --lang {lang} --corpus FILE... --out {dir}",
    "toxicity": "refinery models build-toxicity --lang {lang} --data FORMAT:FILE... --out {dir}",
    "quality": "refinery models build-quality --lang {lang} --positive FORMAT:FILE... --negative FORMAT:FILE... --out {dir}",
}
DEFAULT_RECIPE = "deploy/build-default-models.sh"


def model_root(spec: str | None) -> Path:
    """`None` or 'default' is the shipped model root; anything else is a directory."""
    if spec in (None, "default"):
        return DEFAULT_ROOT
    return Path(spec).expanduser()


def model_dir(root: Path, kind: str, lang: str) -> Path:
    return root / kind / lang


def missing_model_message(kind: str, lang: str, directory: Path) -> str:
    hint = BUILD_HINT[kind].format(lang=lang, dir=directory)
    return (
        f"no {kind} model for language {lang!r} in {directory}; build it with `{hint}` "
        f"(the shipped defaults are rebuilt by {DEFAULT_RECIPE})"
    )


def read_manifest(directory: Path, kind: str, lang: str) -> dict[str, Any]:
    path = directory / MANIFEST
    if not path.is_file():
        raise ModelError(missing_model_message(kind, lang, directory))
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as err:
        raise ModelError(f"{path}: unreadable model manifest ({err}); rebuild the model") from err
    for key in ("name", "language", "version", "files"):
        if key not in manifest:
            raise ModelError(f"{path}: manifest lacks {key!r}; rebuild the model")
    for entry in manifest["files"].values():
        name = entry["path"]
        if not (directory / name).is_file():
            raise ModelError(f"{directory / name} named by {path} is missing; " + missing_model_message(kind, lang, directory))
    return manifest


def available(root: Path, kind: str) -> list[str]:
    """Languages that have a model of `kind` under `root` (those with a manifest)."""
    base = root / kind
    if not base.is_dir():
        return []
    return sorted(p.name for p in base.iterdir() if (p / MANIFEST).is_file())


def write_manifest(directory: Path, manifest: dict[str, Any]) -> Path:
    path = directory / MANIFEST
    path.write_text(json.dumps(manifest, indent=2, ensure_ascii=False, sort_keys=False) + "\n", encoding="utf-8")
    return path


def kenlm_tool(name: str) -> str:
    """Path of `lmplz` or `build_binary`: $REFINERY_KENLM_BIN, then .tools/kenlm/bin, then PATH."""
    candidates = []
    if os.environ.get("REFINERY_KENLM_BIN"):
        candidates.append(Path(os.environ["REFINERY_KENLM_BIN"]) / name)
    candidates.append(REPO_ROOT / ".tools" / "kenlm" / "bin" / name)
    for c in candidates:
        if c.is_file() and os.access(c, os.X_OK):
            return str(c)
    found = shutil.which(name)
    if found:
        return found
    raise ModelError(
        f"KenLM's {name} not found (looked in $REFINERY_KENLM_BIN, {REPO_ROOT / '.tools/kenlm/bin'}, PATH); "
        "build it with deploy/build-kenlm.sh (deploy/setup.sh runs it)"
    )


def data_provenance(path: Path) -> dict[str, Any]:
    """sha256 of a data file plus the licence/attribution files found beside or above it."""
    from refinery.models import file_sha256

    info: dict[str, Any] = {"path": str(path), "bytes": path.stat().st_size, "sha256": file_sha256(str(path))}
    for parent in list(path.resolve().parents)[:4]:
        source = parent / "SOURCE.txt"
        if source.is_file() and "source" not in info:
            info["source"] = source.read_text(encoding="utf-8", errors="replace").strip()
        for lic in sorted(parent.glob("LICEN[SC]E*")):
            if lic.is_file() and "licence_file" not in info:
                text = lic.read_text(encoding="utf-8", errors="replace").strip()
                info["licence_file"] = {"name": lic.name, "first_line": text.splitlines()[0] if text else ""}
        if "source" in info:
            break
    licence_lines = [
        ln.strip() for ln in info.get("source", "").splitlines()
        if "licen" in ln.lower() and not ln.lstrip().lower().startswith("paths:")
    ]
    info["licence"] = " / ".join(licence_lines) or "unknown: no SOURCE.txt licence line found"
    return info


def require_models(kind: str, root_spec: str | None, languages: list[str] | None) -> None:
    """resolve_models for a stage's options validator: a missing model fails when the pipeline is
    loaded, before any work starts, as the ValueError pydantic reports under the stage's key."""
    try:
        resolve_models(kind, root_spec, languages)
    except ModelError as err:
        raise ValueError(str(err)) from None


def resolve_models(kind: str, root_spec: str | None, languages: list[str] | None) -> dict[str, Path]:
    """{lang: model directory} for a stage: the listed languages (each must exist) or all found.

    Raises ModelError naming the command that builds a missing model; never
    returns a partial set silently.
    """
    root = model_root(root_spec)
    if not root.is_dir():
        raise ModelError(f"model root {root} does not exist; build models into it with `refinery models`")
    found = available(root, kind)
    wanted = list(languages) if languages is not None else found
    if not wanted:
        raise ModelError(missing_model_message(kind, "<lang>", model_dir(root, kind, "<lang>")))
    for lang in wanted:
        if lang not in found:
            raise ModelError(missing_model_message(kind, lang, model_dir(root, kind, lang)))
    return {lang: model_dir(root, kind, lang) for lang in wanted}


def manifest_info(kind: str, directory: Path, lang: str) -> dict[str, Any]:
    """What a commit records about one model: name, version, sha256 of its files."""
    m = read_manifest(directory, kind, lang)
    info: dict[str, Any] = {
        "name": m["name"],
        "version": m["version"],
        "sha256": {role: f["sha256"] for role, f in m["files"].items()},
    }
    if kind == "lm" and "calibration" in m:
        info["cutoffs"] = [m["calibration"]["head_cutoff"], m["calibration"]["tail_cutoff"]]
    return info
