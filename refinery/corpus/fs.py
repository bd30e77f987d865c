"""Open a corpus store by local path or object-store URI, always as a `pyarrow.fs.FileSystem`.

Every read of the reader goes through the returned filesystem, so the local
disk and S3-compatible servers (MinIO, Ceph, moto, AWS) share one code path.

S3 settings, in order of precedence: keyword arguments, query parameters of
the URI (`s3://bucket/store?endpoint_override=http://host:9000`), then the
environment: `REFINERY_S3_ENDPOINT` (or the AWS SDK's `AWS_ENDPOINT_URL_S3` /
`AWS_ENDPOINT_URL`), `AWS_REGION` / `AWS_DEFAULT_REGION`, and credentials
from the usual AWS chain (`AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`, ...).
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlparse

import pyarrow.fs as pafs

from refinery.errors import StoreError

ENDPOINT_ENV = ("REFINERY_S3_ENDPOINT", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL")
# S3FileSystem keyword arguments accepted from a URI query string (all strings there).
_S3_QUERY_KEYS = {"endpoint_override", "region", "scheme", "access_key", "secret_key", "session_token",
                  "anonymous", "force_virtual_addressing", "connect_timeout", "request_timeout"}


def is_remote(uri: str) -> bool:
    scheme = urlparse(uri).scheme
    return len(scheme) > 1 and scheme != "file"  # one letter would be a Windows drive


def _split_endpoint(endpoint: str) -> tuple[str, str | None]:
    """'http://127.0.0.1:9000' -> ('127.0.0.1:9000', 'http'); a bare host:port keeps the default scheme."""
    if "://" in endpoint:
        p = urlparse(endpoint)
        return p.netloc, p.scheme
    return endpoint, None


def _coerce(key: str, value: str) -> Any:
    if key in ("anonymous", "force_virtual_addressing"):
        return value.lower() in ("1", "true", "yes")
    if key in ("connect_timeout", "request_timeout"):
        return float(value)
    return value


def s3_filesystem(options: dict[str, Any], bucket: str | None = None) -> pafs.S3FileSystem:
    """An S3FileSystem from explicit options plus the environment (see module docstring)."""
    opts = dict(options)
    endpoint = opts.pop("endpoint_override", None) or opts.pop("endpoint", None)
    if endpoint is None:
        endpoint = next((os.environ[k] for k in ENDPOINT_ENV if os.environ.get(k)), None)
    if endpoint:
        host, scheme = _split_endpoint(endpoint)
        opts["endpoint_override"] = host
        if scheme and "scheme" not in opts:
            opts["scheme"] = scheme
        # A custom endpoint has no region lookup: name one so the SDK does not ask AWS.
        opts.setdefault("region", os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or "us-east-1")
    elif bucket and "region" not in opts and not (os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION")):
        try:  # AWS itself: ask where the bucket lives rather than assume us-east-1
            opts["region"] = pafs.resolve_s3_region(bucket)
        except OSError:
            pass
    try:
        return pafs.S3FileSystem(**opts)
    except TypeError as err:
        raise StoreError(f"bad S3 option: {err}") from None


def open_filesystem(uri: str | os.PathLike, **storage_options: Any) -> tuple[pafs.FileSystem, str]:
    """(filesystem, root path inside it) for a store URI or local path."""
    text = os.fspath(uri)
    if not is_remote(text):
        if text.startswith("file://"):
            text = urlparse(text).path
        root = Path(text).expanduser().resolve()  # same spelling as CorpusStore.root
        return pafs.LocalFileSystem(), str(root)
    parsed = urlparse(text)
    query = dict(parse_qsl(parsed.query))
    root = (parsed.netloc + parsed.path).rstrip("/")
    if parsed.scheme in ("s3", "s3a"):
        opts = {k: _coerce(k, v) for k, v in query.items() if k in _S3_QUERY_KEYS}
        unknown = set(query) - _S3_QUERY_KEYS
        if unknown:
            raise StoreError(f"{text}: unknown S3 option(s) in URI: {', '.join(sorted(unknown))}")
        opts.update(storage_options)
        return s3_filesystem(opts, parsed.netloc), root
    if storage_options:
        raise StoreError(f"{text}: storage options are supported for s3:// URIs only")
    try:
        fs, path = pafs.FileSystem.from_uri(text)
    except (ValueError, OSError) as err:
        raise StoreError(f"{text}: cannot open: {err}") from None
    return fs, path.rstrip("/")


def display_uri(fs: pafs.FileSystem, path: str) -> str:
    """How a file is named to users and to other tools (absolute local path, or s3://bucket/key)."""
    if isinstance(fs, pafs.LocalFileSystem):
        return path
    return f"{fs.type_name}://{path}"
