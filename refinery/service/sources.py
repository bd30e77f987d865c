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

import fnmatch
import glob
import os
import time
from pathlib import Path
from urllib.parse import unquote, urlparse

from refinery.readers import detect_format

OBJECT_STORE_SCHEMES = ("s3", "gs", "gcs", "az", "abfs", "abfss")
MAX_FILES = 10_000
MAX_ENTRIES = 200_000  # directory entries one source may make the resolver look at
MAX_SECONDS = 3.0  # wall time one source may take to expand


class SourceRefused(Exception):
    """A source the service will not read; `status` is the HTTP status to answer."""

    def __init__(self, status: int, reason: str) -> None:
        super().__init__(reason)
        self.status = status
        self.reason = reason


def _inside(path: Path, roots: list[Path]) -> bool:
    return any(path == r or path.is_relative_to(r) for r in roots)


def _dir_id(path: Path) -> tuple[int, int]:
    st = path.stat()
    return st.st_dev, st.st_ino


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


class _Budget:
    """Bounds on expanding one source: directory entries looked at, and wall time.

    A glob such as `/**/*.warc.gz` or a tree of symlinks could otherwise keep a
    request (and the thread it runs on) busy for minutes."""

    def __init__(self, source: str, max_entries: int, max_seconds: float) -> None:
        self.source = source
        self.max_entries = max_entries
        self.left = max_entries
        self.deadline = time.monotonic() + max_seconds
        self.max_seconds = max_seconds

    def tick(self) -> None:
        self.left -= 1
        if self.left < 0:
            raise SourceRefused(
                413, f"{self.source}: expanding it looks at more than {self.max_entries} directory entries; "
                "name a narrower directory or glob"
            )
        if self.left % 256 == 0 and time.monotonic() > self.deadline:
            raise SourceRefused(
                413, f"{self.source}: expanding it takes longer than {self.max_seconds:g} s; "
                "name a narrower directory or glob"
            )


class SourceResolver:
    """Expands sources into confined input files, without ever leaving the roots.

    The literal part of a source (up to its first glob component) is checked
    against the roots before anything is listed, so a source outside them is
    refused the same way whether it exists or not.  Globs are matched by a walk
    of our own rather than `glob.glob`: a symlink met in it is followed only
    when it resolves inside the roots (else the source is refused) and never
    back into a directory already on the walk's path (a loop), and the walk is
    bounded in entries and time (`_Budget`)."""

    def __init__(self, roots: list[str | Path], objects=None, max_entries: int = MAX_ENTRIES,
                 max_seconds: float = MAX_SECONDS) -> None:
        if not roots:
            raise ValueError("at least one input root is required")
        self.roots = [Path(r).expanduser().resolve() for r in roots]
        self.objects = objects  # refinery.service.objects.ObjectSources, when object-store roots are configured
        self.max_entries = max_entries
        self.max_seconds = max_seconds

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
        budget = _Budget(source, self.max_entries, self.max_seconds)
        if Path(raw).is_absolute():
            if not self._literal_prefix_inside(Path(raw)):
                raise SourceRefused(403, f"{source}: outside the input roots")
            candidates = [Path(raw)]
        else:
            candidates = [r / raw for r in self.roots]
        matched: list[Path] = []
        for cand in candidates:
            if glob.has_magic(str(cand)):
                matched.extend(sorted(self._glob(cand, source, budget)))
            elif os.path.lexists(cand):
                matched.append(cand)
            if matched:
                break
        if not matched:
            raise SourceRefused(422, f"{source}: no such file, directory or glob match under the input roots")
        files: dict[str, None] = {}
        for m in matched:
            self._collect(m, source, files, budget)
        if not files:
            raise SourceRefused(422, f"{source}: no input files (WARC, JSONL, Parquet) found")
        return sorted(files)

    def _literal_prefix_inside(self, path: Path) -> bool:
        """Whether the part of `path` before its first glob component lies inside a root,
        as written or once its symlinks are resolved."""
        literal: list[str] = []
        for part in path.parts:
            if glob.has_magic(part):
                break
            literal.append(part)
        prefix = Path(*literal)
        return _inside(prefix, self.roots) or _inside(Path(os.path.realpath(prefix)), self.roots)

    def _glob(self, pattern: Path, source: str, budget: _Budget) -> list[Path]:
        """Paths matching `pattern` (`*`, `?`, `[...]` within a name; `**`: any depth)."""
        parts = pattern.parts
        first = next(i for i, p in enumerate(parts) if glob.has_magic(p))
        base = Path(*parts[:first])
        if not base.is_dir():
            return []
        real = base.resolve()
        if not _inside(real, self.roots):
            raise SourceRefused(403, f"{source}: resolves outside the input roots (symlinks are followed)")
        out: list[Path] = []
        self._match(base, real, list(parts[first:]), frozenset({_dir_id(real)}), source, budget, out)
        return out

    def _match(self, shown: Path, real: Path, parts: list[str], on_path: frozenset, source: str,
               budget: _Budget, out: list[Path]) -> None:
        if not parts:
            out.append(shown)
            return
        head, rest = parts[0], parts[1:]
        if head == "**":
            self._match(shown, real, rest, on_path, source, budget, out)  # zero directories
            for name, sub_real in self._subdirs(real, on_path, source, budget):
                self._match(shown / name, sub_real, parts, on_path | {_dir_id(sub_real)}, source, budget, out)
            return
        if not glob.has_magic(head):
            child = shown / head
            if not os.path.lexists(child):
                return
            names = [head]
        else:
            names = [e.name for e in self._entries(real, budget) if fnmatch.fnmatchcase(e.name, head)
                     and (head.startswith(".") or not e.name.startswith("."))]
        for name in sorted(names):
            child_real = self._confined(real / name, source)
            if not rest:
                out.append(shown / name)
            elif child_real.is_dir() and _dir_id(child_real) not in on_path:
                self._match(shown / name, child_real, rest, on_path | {_dir_id(child_real)}, source, budget, out)

    def _entries(self, real: Path, budget: _Budget) -> list[os.DirEntry]:
        try:
            with os.scandir(real) as it:
                entries = []
                for e in it:
                    budget.tick()
                    entries.append(e)
                return entries
        except OSError:
            return []  # unreadable directory: nothing matches in it

    def _subdirs(self, real: Path, on_path: frozenset, source: str, budget: _Budget):
        """(name, resolved path) of the directories in `real`, symlinked ones included when they stay
        inside the roots; a directory already on the walk's path (a symlink loop) is left out."""
        for e in sorted(self._entries(real, budget), key=lambda e: e.name):
            if e.name.startswith("."):
                continue
            try:
                if not e.is_dir():
                    continue
            except OSError:
                continue
            sub = self._confined(Path(e.path), source) if e.is_symlink() else Path(e.path)
            if _dir_id(sub) not in on_path:
                yield e.name, sub

    def _confined(self, path: Path, source: str) -> Path:
        real = path.resolve()
        if not _inside(real, self.roots):
            raise SourceRefused(403, f"{source}: resolves outside the input roots (symlinks are followed)")
        return real

    def _collect(self, path: Path, source: str, files: dict[str, None], budget: _Budget,
                 on_path: frozenset = frozenset()) -> None:
        real = self._confined(path, source)
        if real.is_dir():
            on_path = on_path | {_dir_id(real)}
            for e in sorted(self._entries(real, budget), key=lambda e: e.name):
                child = Path(e.path)
                try:
                    is_dir = e.is_dir()
                except OSError:
                    continue
                if is_dir:
                    sub = self._confined(child, source)
                    if _dir_id(sub) not in on_path:  # a symlink back up the tree adds nothing
                        self._collect(sub, source, files, budget, on_path)
                    continue
                if detect_format(child) is None:
                    continue
                self._collect(child, source, files, budget, on_path)
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
