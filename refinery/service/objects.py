"""Object-store sources (`s3://bucket/prefix...`): confined to configured roots, fetched before a run.

The readers work on local files, so an object-store batch is resolved at
submission into the list of matching object URIs (stored with the batch),
and the scheduler downloads them, streamed, into
`<store>/state/fetched/<bucket>/<key>` just before running.  The local path
depends only on the object's name, so the batch key (path + content digest)
is the same when the same objects are submitted again: exactly-once holds.
The fetched copies are a cache; delete the folder while no batch runs.

Connection settings come from the environment: `REFINERY_S3_ENDPOINT` (or
`AWS_ENDPOINT_URL`, e.g. `http://minio:9000`), `AWS_ACCESS_KEY_ID`,
`AWS_SECRET_ACCESS_KEY`, `AWS_REGION` (default us-east-1).
"""

from __future__ import annotations

import fnmatch
import glob
import os
import uuid
from pathlib import Path, PurePosixPath
from urllib.parse import urlparse

import pyarrow.fs as pafs

from refinery.readers import detect_format

SCHEMES = ("s3",)


def _split(uri: str) -> tuple[str, str]:
    parsed = urlparse(uri)
    return parsed.netloc, parsed.path.lstrip("/")


def filesystem_from_env(env: dict | None = None) -> pafs.S3FileSystem:
    env = os.environ if env is None else env
    kwargs: dict = {"region": env.get("AWS_REGION", "us-east-1")}
    endpoint = env.get("REFINERY_S3_ENDPOINT") or env.get("AWS_ENDPOINT_URL")
    if endpoint:
        p = urlparse(endpoint)
        kwargs["endpoint_override"] = p.netloc or p.path
        kwargs["scheme"] = p.scheme or "https"
    if env.get("AWS_ACCESS_KEY_ID"):
        kwargs["access_key"] = env["AWS_ACCESS_KEY_ID"]
        kwargs["secret_key"] = env.get("AWS_SECRET_ACCESS_KEY", "")
    return pafs.S3FileSystem(**kwargs)


class ObjectSources:
    def __init__(self, roots: list[str], fs: pafs.FileSystem | None = None) -> None:
        self.roots = []
        for r in roots:
            parsed = urlparse(r)
            if parsed.scheme not in SCHEMES or not parsed.netloc:
                raise ValueError(f"object-store root {r!r}: expected s3://bucket[/prefix]")
            bucket, prefix = _split(r)
            if ".." in PurePosixPath(prefix).parts:
                raise ValueError(f"object-store root {r!r}: '..' not allowed")
            self.roots.append((bucket, prefix.rstrip("/")))
        self._fs = fs

    @property
    def fs(self) -> pafs.FileSystem:
        if self._fs is None:
            self._fs = filesystem_from_env()
        return self._fs

    def inside(self, uri: str) -> bool:
        bucket, key = _split(uri)
        if ".." in PurePosixPath(key).parts:
            return False
        for rb, rp in self.roots:
            if bucket == rb and (not rp or key == rp or key.startswith(rp + "/")):
                return True
        return False

    def resolve(self, uri: str) -> list[str]:
        """Matching object URIs (sorted); raises ValueError(status, reason) style via SourceRefused."""
        from refinery.service.sources import SourceRefused

        bucket, key = _split(uri)
        if ".." in PurePosixPath(key).parts:
            raise SourceRefused(403, f"{uri}: '..' is not allowed in a source")
        if not self.roots:
            raise SourceRefused(422, f"{uri}: no object-store roots configured (serve --object-store-root)")
        magic = glob.has_magic(key)
        base = key
        if magic:
            parts = PurePosixPath(key).parts
            fixed = []
            for part in parts:
                if glob.has_magic(part):
                    break
                fixed.append(part)
            base = "/".join(fixed)
        if not self.inside(f"s3://{bucket}/{base}") and not (magic and any(
                rb == bucket and rp.startswith(base) for rb, rp in self.roots)):
            raise SourceRefused(403, f"{uri}: outside the object-store roots")
        try:
            if magic:
                infos = self.fs.get_file_info(pafs.FileSelector(f"{bucket}/{base}".rstrip("/"), recursive=True,
                                                                allow_not_found=True))
                infos = [i for i in infos if i.type == pafs.FileType.File
                         and fnmatch.fnmatchcase(i.path[len(bucket) + 1:], key)]
            else:
                info = self.fs.get_file_info(f"{bucket}/{key}")
                if info.type == pafs.FileType.File:
                    infos = [info]
                elif info.type == pafs.FileType.Directory:
                    infos = [i for i in self.fs.get_file_info(pafs.FileSelector(f"{bucket}/{key}", recursive=True))
                             if i.type == pafs.FileType.File]
                else:
                    infos = []
        except OSError as err:
            raise SourceRefused(422, f"{uri}: cannot list: {err}") from None
        out = []
        for i in infos:
            obj = f"s3://{i.path}"
            if detect_format(Path(i.path)) is None:
                if not magic and i.path == f"{bucket}/{key}":
                    raise SourceRefused(422, f"{uri}: unknown input format (expected WARC, JSONL or Parquet)")
                continue
            if not self.inside(obj):
                raise SourceRefused(403, f"{obj}: outside the object-store roots")
            out.append(obj)
        if not out:
            raise SourceRefused(422, f"{uri}: no input objects (WARC, JSONL, Parquet) found")
        return sorted(out)

    def fetch(self, uri: str, cache: Path) -> str:
        """Download one object (streamed) to cache/<bucket>/<key>; returns the local path."""
        bucket, key = _split(uri)
        local = (cache / bucket / key).resolve()
        if not local.is_relative_to(cache.resolve()):
            raise ValueError(f"{uri}: resolves outside the fetch cache")
        local.parent.mkdir(parents=True, exist_ok=True)
        tmp = local.parent / f".{local.name}.{uuid.uuid4().hex[:8]}.part"
        try:
            with self.fs.open_input_stream(f"{bucket}/{key}") as src, tmp.open("wb") as dst:
                while chunk := src.read(4 << 20):
                    dst.write(chunk)
            os.replace(tmp, local)
        finally:
            tmp.unlink(missing_ok=True)
        return str(local)
