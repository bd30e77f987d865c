"""`refinery urlfilter refresh`: rebuild the UT1 lists shipped with the project.

The shipped copy (refinery/models/default/urlfilter/ut1/) holds, for each
chosen category, its `domains` and `urls` files gzip-compressed
(`CATEGORY.domains.gz`, `CATEGORY.urls.gz`; byte-identical on a re-run), the
UT1 licence (CC BY-SA 4.0, LICENSE.pdf) and upstream SOURCE.txt beside them,
and manifest.json naming the upstream commit, licence, each file's entry count
and sha256, and the command that rebuilt it.  Every line is validated with
the stage's own parser, so a malformed upstream line stops the refresh.
"""

from __future__ import annotations

import gzip
import hashlib
import json
import re
import shutil
from pathlib import Path

from refinery.urlfilter.lists import KINDS, ListError, entry_hashes

# The categories web-en blocks (docs/pipelines.md says why each).
DEFAULT_CATEGORIES = (
    "adult", "agressif", "cryptojacking", "dangerous_material", "ddos", "dialer",
    "malware", "phishing", "stalkerware", "warez",
)  # fmt: skip
ATTRIBUTION = (
    "UT1 blacklists, Universite Toulouse 1 Capitole (Fabrice Prigent), https://dsi.ut-capitole.fr/blacklists/ ; "
    "licence: Creative Commons Attribution-ShareAlike 4.0 International (LICENSE.pdf beside this file). "
    "Copied unmodified (gzip-compressed) from the mirror named in SOURCE.txt; share-alike applies to these files."
)


def _description(src: Path, category: str) -> str | None:
    usage = src / "global_usage"
    if not usage.is_file():
        return None
    text = usage.read_text(encoding="utf-8", errors="replace")
    m = re.search(rf"^NAME:\s*{re.escape(category)}\s*$(.*?)(?:^NAME:|\Z)", text, re.M | re.S)
    if not m:
        return None
    d = re.search(r"^DESC EN:\s*(.+)$", m.group(1), re.M)
    return d.group(1).strip() if d else None


def refresh(src: Path, out: Path, categories: list[str], command: str) -> dict:
    """Copy `categories` of the UT1 tree at `src` into `out`; returns the manifest written."""
    if not src.is_dir():
        raise ListError(f"{src}: not a directory (expected the UT1 tree: CATEGORY/domains, CATEGORY/urls)")
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("*.gz"):
        old.unlink()
    files: dict[str, dict] = {}
    described: dict[str, str | None] = {}
    for cat in categories:
        cdir = src / cat
        if not cdir.is_dir():
            raise ListError(f"{cdir}: no such UT1 category")
        described[cat] = _description(src, cat)
        for kind in KINDS:
            f = cdir / kind
            if not f.is_file():
                continue
            n = len(entry_hashes(f, kind))  # validates every line (errors name file and line)
            if n == 0:
                continue
            name = f"{cat}.{kind}.gz"
            data = f.read_bytes()
            with open(out / name, "wb") as fh, gzip.GzipFile(filename="", mode="wb", fileobj=fh, compresslevel=9, mtime=0) as gz:
                gz.write(data)
            files[name] = {
                "category": cat, "kind": kind, "entries": n,
                "sha256": hashlib.sha256((out / name).read_bytes()).hexdigest(),
                "upstream_sha256": hashlib.sha256(data).hexdigest(),
            }  # fmt: skip
    for extra in ("LICENSE.pdf", "SOURCE.txt"):
        if (src / extra).is_file():
            shutil.copyfile(src / extra, out / extra)
    source_text = (src / "SOURCE.txt").read_text(encoding="utf-8") if (src / "SOURCE.txt").is_file() else ""
    commit = re.search(r"commit ([0-9a-f]{40})", source_text)
    manifest = {
        "name": "ut1",
        "source": "https://github.com/olbat/ut1-blacklists (mirror of https://dsi.ut-capitole.fr/blacklists/)",
        "commit": commit.group(1) if commit else None,
        "licence": "CC BY-SA 4.0",
        "attribution": ATTRIBUTION,
        "command": command,
        "categories": {c: described[c] for c in categories},
        "files": files,
    }
    (out / "manifest.json").write_text(json.dumps(manifest, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "ATTRIBUTION.txt").write_text(ATTRIBUTION + "\n", encoding="utf-8")
    return manifest
