"""Commit records: the only thing that makes shards visible.

`manifest/00000042.json` exists if and only if commit 42 happened; it lists
every shard with row count and checksum.  Files not named by a manifest do not
exist as far as readers are concerned.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from typing import Any


@dataclass(frozen=True)
class FileEntry:
    path: str  # relative to the store root
    rows: int
    bytes: int
    sha256: str


@dataclass
class CommitRecord:
    commit: int
    batch_key: str
    created_at: str
    pipeline: str
    config_hash: str
    models: dict[str, Any]
    inputs: list[dict[str, Any]]
    shards: list[FileEntry]
    rejects: list[FileEntry]
    counters: dict[str, Any]
    docs_in: int
    docs_out: int
    labels: dict[str, Any] = field(default_factory=dict)
    execution: dict[str, Any] = field(default_factory=dict)  # units and the Ray nodes that ran them
    # documents/tokens/bytes per language and bucket (refinery/store/stats.py); {} in older manifests
    stats: dict[str, Any] = field(default_factory=dict)

    @property
    def rows(self) -> int:
        return sum(s.rows for s in self.shards)

    def to_json(self) -> str:
        # Insertion order is meaningful (stages in pipeline order) and deterministic.
        return json.dumps(asdict(self), indent=2, default=str)

    @classmethod
    def from_json(cls, text: str) -> "CommitRecord":
        data = json.loads(text)
        data["shards"] = [FileEntry(**s) for s in data["shards"]]
        data["rejects"] = [FileEntry(**s) for s in data["rejects"]]
        return cls(**data)


def manifest_name(commit: int) -> str:
    return f"{commit:08d}.json"


def parse_manifest_name(name: str) -> int | None:
    stem, dot, ext = name.partition(".")
    if ext != "json" or not stem.isdigit() or len(stem) != 8:
        return None
    return int(stem)
