"""URL/domain blocklists, run on the record's URL before extraction (a blocked page costs no trafilatura).

Lists are files named in the pipeline YAML, by category (UT1's format: one
domain or `host/path` a line), relative to `root` (`default`: the copies
shipped in refinery/models/default/urlfilter, refreshed by `refinery
urlfilter refresh`).  The sha256 of every file is part of the options, hence
of the config hash and of the batch key: a refreshed list is a new
configuration.  The lists are parsed when the pipeline is loaded (a malformed
line fails there, naming file and line) and once per worker process.

Optional word rules follow datatrove's URLFilter: a `hard` banned word among
the URL's words drops it, `soft` words drop it from `soft_threshold` on, and
`subwords` match anywhere in the URL with non-alphanumerics removed.
Reasons: `url:CATEGORY`, `url:banned_word`, `url:soft_banned_words`,
`url:banned_subword`; the detail names the matching entry.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import numpy as np
import pyarrow as pa
from pydantic import Field, computed_field, field_validator, model_validator

from refinery.strict import StrictModel
from refinery.models import file_sha256
from refinery.models.registry import DEFAULT_ROOT
from refinery.stages.base import Stage, StageResult
from refinery.urlfilter.lists import HashedSet, ListError, entry_hashes, iter_lines, key_hash
from refinery.urlfilter.normalise import host_suffixes, split_url, url_prefixes

DEFAULT_LISTS_ROOT = DEFAULT_ROOT / "urlfilter"
_CATEGORY = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_URL_WORDS = re.compile(r"\W+")  # datatrove's `normalized_space`
_NON_ALNUM = re.compile(r"[^a-z0-9]+")  # datatrove's subword normaliser


class ListFiles(StrictModel):
    domains: list[str] = Field(default_factory=list, description="domain list files (an entry matches its subdomains)")
    urls: list[str] = Field(default_factory=list, description="URL list files (host/path; matches the path and below)")


class WordRules(StrictModel):
    hard: str | None = Field(None, description="file of words: one among the URL's words drops it")
    soft: str | None = Field(None, description="file of words: soft_threshold of them drop the URL")
    soft_threshold: int = Field(2, ge=1)
    subwords: str | None = Field(None, description="file of strings matched anywhere in the URL (alphanumerics only)")


def lists_root(spec: str) -> Path:
    return DEFAULT_LISTS_ROOT if spec == "default" else Path(spec).expanduser()


class UrlFilterOptions(StrictModel):
    root: str = Field("default", description="directory the list paths are relative to; 'default': the shipped lists")
    block: dict[str, ListFiles] = Field(default_factory=dict, description="category -> list files; reason url:CATEGORY")
    allow: ListFiles = Field(ListFiles(), description="entries never dropped (override every block rule)")
    words: WordRules | None = None

    @field_validator("block")
    @classmethod
    def _names(cls, block: dict[str, ListFiles]) -> dict[str, ListFiles]:
        for name in block:
            if not _CATEGORY.match(name):
                raise ValueError(f"category {name!r}: use lowercase letters, digits, '_' and '-'")
        if len(block) > 64:
            raise ValueError("at most 64 categories")
        return block

    def files(self) -> list[str]:
        out = [p for spec in (*self.block.values(), self.allow) for p in (*spec.domains, *spec.urls)]
        if self.words:
            out += [p for p in (self.words.hard, self.words.soft, self.words.subwords) if p]
        return sorted(set(out))

    def path(self, name: str) -> Path:
        return lists_root(self.root) / name

    @computed_field  # in model_dump, so in the config hash: new list contents = new configuration
    @property
    def sha256(self) -> dict[str, str]:
        return {name: file_sha256(str(self.path(name))) for name in self.files()}

    @model_validator(mode="after")
    def _load(self) -> "UrlFilterOptions":
        """Every list is parsed now, so a missing file or a malformed line fails before any work starts."""
        for name in self.files():
            if not self.path(name).is_file():
                raise ValueError(f"list file {self.path(name)} not found (root: {self.root})")
        try:
            load_lists(self)
        except ListError as err:
            raise ValueError(str(err)) from None
        return self


class Lists:
    """Everything one configuration matches against, built once per process."""

    def __init__(self, opts: UrlFilterOptions) -> None:
        self.categories = list(opts.block)
        n = len(self.categories)
        self.block_domains = HashedSet.build(
            ((entry_hashes(opts.path(p), "domains"), i) for i, s in enumerate(opts.block.values()) for p in s.domains), n
        )
        self.block_urls = HashedSet.build(
            ((entry_hashes(opts.path(p), "urls"), i) for i, s in enumerate(opts.block.values()) for p in s.urls), n
        )
        self.allow_domains = HashedSet.build(((entry_hashes(opts.path(p), "domains"), 0) for p in opts.allow.domains), 1)
        self.allow_urls = HashedSet.build(((entry_hashes(opts.path(p), "urls"), 0) for p in opts.allow.urls), 1)
        w = opts.words
        self.hard = _words(opts.path(w.hard)) if w and w.hard else frozenset()
        self.soft = _words(opts.path(w.soft)) if w and w.soft else frozenset()
        self.soft_threshold = w.soft_threshold if w else 2
        subs = sorted(_words(opts.path(w.subwords), alnum=True), key=lambda s: (-len(s), s)) if w and w.subwords else []
        self.subwords = re.compile("|".join(re.escape(s) for s in subs)) if subs else None

    @property
    def entries(self) -> int:
        return len(self.block_domains) + len(self.block_urls)

    @property
    def nbytes(self) -> int:
        return sum(s.nbytes for s in (self.block_domains, self.block_urls, self.allow_domains, self.allow_urls))


def _words(path: Path, alnum: bool = False) -> frozenset[str]:
    out = set()
    for lineno, entry in iter_lines(path):
        word = entry.lower()
        if any(c.isspace() for c in word):
            raise ListError(f"{path}:{lineno}: one word a line, got {entry[:200]!r}")
        word = _NON_ALNUM.sub("", word) if alnum else word
        if word:
            out.add(word)
    return frozenset(out)


_LOADED: dict[tuple, Lists] = {}


def load_lists(opts: UrlFilterOptions) -> Lists:
    """The parsed lists of a configuration, once per process (keyed by root, options and file hashes)."""
    key = (str(lists_root(opts.root).resolve()), opts.model_dump_json())
    if key not in _LOADED:
        if len(_LOADED) >= 4:
            _LOADED.pop(next(iter(_LOADED)))
        _LOADED[key] = Lists(opts)
    return _LOADED[key]


def _first_bit(bits: int) -> int:
    return (bits & -bits).bit_length() - 1


class UrlFilterStage(Stage):
    name = "url_filter"
    order = 5  # before extract: dropped pages are never parsed
    Options = UrlFilterOptions
    fields: list[pa.Field] = []

    def setup(self) -> None:
        self.lists = load_lists(self.options)

    def model_info(self) -> dict[str, Any]:
        info: dict[str, Any] = {"root": self.options.root, "files": self.options.sha256}
        manifest = lists_root(self.options.root) / "ut1" / "manifest.json"
        if manifest.is_file():
            import json

            m = json.loads(manifest.read_text(encoding="utf-8"))
            info["ut1"] = {k: m.get(k) for k in ("source", "commit", "licence")}
        return {"url_filter": info}

    def match(self, urls: list[str | None]) -> list[tuple[str, str] | None]:
        """Per URL: (reason, detail) when a rule drops it, else None."""
        L = self.lists
        out: list[tuple[str, str] | None] = [None] * len(urls)
        rows, dom_keys, url_keys, dom_row, url_row = [], [], [], [], []
        for i, url in enumerate(urls):
            parts = split_url(url) if url else None
            if parts is None:
                continue
            host, path = parts
            rows.append((i, url))
            d = host_suffixes(host)
            u = url_prefixes(host, path)
            dom_keys += d
            url_keys += u
            dom_row += [i] * len(d)
            url_row += [i] * len(u)
        if not rows:
            return out
        dh = np.fromiter((key_hash(k) for k in dom_keys), np.uint64, len(dom_keys))
        uh = np.fromiter((key_hash(k) for k in url_keys), np.uint64, len(url_keys))
        allowed = set(np.asarray(dom_row)[L.allow_domains.lookup(dh) != 0].tolist())
        allowed |= set(np.asarray(url_row)[L.allow_urls.lookup(uh) != 0].tolist())
        hits: dict[int, list[tuple[int, str, str]]] = {}
        for kind, keys, row_of, bits in (
            ("domain", dom_keys, dom_row, L.block_domains.lookup(dh)),
            ("url", url_keys, url_row, L.block_urls.lookup(uh)),
        ):
            for j in np.flatnonzero(bits).tolist():
                hits.setdefault(row_of[j], []).append((int(bits[j]), kind, keys[j]))
        for i, url in rows:
            if i in allowed:
                continue
            if i in hits:
                # The first category in the YAML's order wins; within it the first matching key (most specific URL last).
                best = min(((_first_bit(b), kind, key) for b, kind, key in hits[i]), key=lambda t: t[0])
                out[i] = (f"url:{L.categories[best[0]]}", f"{best[1]} {best[2]}")
                continue
            out[i] = self._words(url)
        return out

    def _words(self, url: str) -> tuple[str, str] | None:
        L = self.lists
        if not (L.hard or L.soft or L.subwords):
            return None
        low = url.lower()
        words = set(_URL_WORDS.split(low))
        hard = sorted(words & L.hard)
        if hard:
            return "url:banned_word", hard[0]
        soft = sorted(words & L.soft)
        if len(soft) >= L.soft_threshold:
            return "url:soft_banned_words", " ".join(soft)
        if L.subwords is not None:
            m = L.subwords.search(_NON_ALNUM.sub("", low))
            if m:
                return "url:banned_subword", m.group(0)
        return None

    def process(self, records: pa.RecordBatch) -> StageResult:
        verdicts = self.match(records.column("url").to_pylist())
        reasons = [v[0] if v else None for v in verdicts]
        details = [v[1] if v else None for v in verdicts]
        return StageResult(records, reasons, details)
