"""Confining submitted sources to the configured input roots.

A source is a path, a glob, a `file://` URI, or (when object-store roots are
configured, see objects.py) an `s3://` URI.  It is refused when it
contains a `..` component, names a scheme the readers cannot open, or
resolves (following every symlink, including symlinks met inside a directory)
to a file outside every input root.  The result is the explicit list of
resolved files, which is what the queue stores and the scheduler runs, so a
later change of the tree cannot widen a batch.
"""

from __future__ import annotations

import glob
import os
from pathlib import Path
from urllib.parse import unquote, urlparse

from refinery.readers import detect_format

OBJECT_STORE_SCHEMES = ("s3", "gs", "gcs", "az", "abfs", "abfss")
MAX_FILES = 10_000


class SourceRefused(Exception):
    """A source the service will not read; `status` is the HTTP status to answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == r or path.is_relative_to(r) for r in roots)


def _strip_scheme(source: str) -> str:
    parsed = urlparse(source)
    if parsed.scheme == "" or (len(parsed.scheme) == 1 and source[1:3] == ":\\"):
        return source
    if parsed.scheme == "file":
        if parsed.netloc not in ("", "localhost"):
            raise SourceRefused(400, f"{source}: file:// URIs must name a local path")
        return unquote(parsed.path)
    if parsed.scheme in OBJECT_STORE_SCHEMES:
        raise SourceRefused(
            422, f"{source}: {parsed.scheme}:// sources are not enabled (serve --object-store-root s3://bucket/prefix; "
            "only s3:// is supported)"
        )
    raise SourceRefused(400, f"{source}: URL scheme {parsed.scheme!r} is not allowed (paths and file:// only)")


class SourceResolver:
    def __init__(self, roots: list[str | Path], objects=None) -> None:
        if not roots:
            raise ValueError("at least one input root is required")
        self.roots = [Path(r).expanduser().resolve() for r in roots]
        self.objects = objects  # refinery.service.objects.ObjectSources, when object-store roots are configured

    def resolve(self, source: str) -> list[str]:
        """Expand one source into absolute, confined input files (sorted)."""
        if not isinstance(source, str) or not source.strip():
            raise SourceRefused(400, "source must be a non-empty string")
        if "\x00" in source:
            raise SourceRefused(400, "source contains a NUL byte")
        if self.objects is not None and urlparse(source.strip()).scheme == "s3":
            return self.objects.resolve(source.strip())
        raw = _strip_scheme(source.strip())
        if ".." in Path(raw).parts:
            raise SourceRefused(403, f"{source}: '..' is not allowed in a source")
        candidates = [Path(raw)] if Path(raw).is_absolute() else [r / raw for r in self.roots]
        matched: list[Path] = []
        for cand in candidates:
            if glob.has_magic(str(cand)):
                matched.extend(Path(m) for m in sorted(glob.glob(str(cand), recursive=True)))
            elif os.path.lexists(cand):
                matched.append(cand)
            if matched:
                break
        if not matched:
            raise SourceRefused(422, f"{source}: no such file, directory or glob match under the input roots")
        files: dict[str, None] = {}
        for m in matched:
            self._collect(m, source, files)
        if not files:
            raise SourceRefused(422, f"{source}: no input files (WARC, JSONL, Parquet) found")
        return sorted(files)

    def _collect(self, path: Path, source: str, files: dict[str, None]) -> None:
        real = path.resolve()
        if not _inside(real, self.roots):
            raise SourceRefused(403, f"{source}: resolves outside the input roots (symlinks are followed)")
        if real.is_dir():
            for child in sorted(real.rglob("*")):
                if child.is_dir():
                    continue
                if detect_format(child) is None:
                    continue
                self._collect(child, source, files)
            return
        if not real.is_file():
            raise SourceRefused(422, f"{source}: {path.name} is not a regular file")
        if detect_format(real) is None:
            raise SourceRefused(422, f"{source}: {path.name}: unknown input format (expected WARC, JSONL or Parquet)")
        files[str(real)] = None
        if len(files) > MAX_FILES:
            raise SourceRefused(413, f"{source}: more than {MAX_FILES} files in one batch")

    def check(self, files: list[str]) -> None:
        """Re-check stored files just before running (the tree may have changed since submission)."""
        for f in files:
            if f.startswith("s3://"):
                if self.objects is None or not self.objects.inside(f):
                    raise SourceRefused(403, f"{f}: outside the object-store roots")
                continue
            real = Path(f).resolve()
            if not _inside(real, self.roots):
                raise SourceRefused(403, f"{f}: now resolves outside the input roots")
