"""One normalisation for page URLs and list entries, so that they compare equal.

Case is folded everywhere (UT1 entries are compared case-insensitively), the
scheme, default ports, a leading `www.`, the fragment and a trailing slash are
dropped.  A URL entry `host/path` matches the page URL itself and every page
below it at a path-segment boundary (squidGuard's urllist semantics: UT1 lists
are written for it); a domain entry matches the host and all its subdomains.
"""

from __future__ import annotations

import re
from urllib.parse import urlsplit

_DEFAULT_PORTS = {"http": "80", "https": "443", "ftp": "21"}
_SCHEME = re.compile(r"^[a-z][a-z0-9+.-]*://")
HOST_RE = re.compile(r"^(?:[\w-]+\.)*[\w-]+$")  # letters (IDN too), digits, '_', '-', dot-separated


def normalise_host(host: str) -> str:
    host = host.strip().lower().rstrip(".")
    if host.startswith("www."):
        host = host[4:]
    return host


def split_url(url: str) -> tuple[str, str] | None:
    """(host[:port], path[?query]) normalised, or None when the URL has no usable host."""
    url = url.strip()
    if not url:
        return None
    low = url.lower()
    if not _SCHEME.match(low):
        low = "http://" + low.lstrip("/")
    try:
        parts = urlsplit(low)
        host = parts.hostname or ""
        port = parts.port
    except ValueError:
        return None
    host = normalise_host(host)
    if not host:
        return None
    if port is not None and str(port) != _DEFAULT_PORTS.get(parts.scheme):
        host = f"{host}:{port}"
    path = parts.path.rstrip("/")
    if parts.query:
        path = f"{path or ''}?{parts.query}"
    return host, path


def url_key(host: str, path: str) -> str:
    return host + path


def host_suffixes(host: str) -> list[str]:
    """`a.b.example.com` -> itself, `b.example.com`, `example.com`, `com` (a domain entry matches subdomains)."""
    name = host.split(":", 1)[0]
    labels = name.split(".")
    return [".".join(labels[i:]) for i in range(len(labels))]


def url_prefixes(host: str, path: str) -> list[str]:
    """Keys a URL entry may have to match this page: the whole URL and each path-segment prefix."""
    keys = [host]
    bare, _, query = path.partition("?")
    acc = ""
    for seg in bare.split("/")[1:]:
        acc += "/" + seg
        keys.append(host + acc)
    if query:
        keys.append(host + path)
    return keys
