"""The training feed: read committed corpus shards from local disk or object storage.

`Corpus` (reader API, no optional dependencies; `Corpus.mixture()` draws a
`MixtureSpec`: weighted groups, docs/corpus.md), `publish_store` /
`mirror_store` (publish a local store to object storage in commit-protocol
order) and, with the `refinery[torch]` extra, `CorpusDataset` /
`StatefulLoader` for PyTorch.
"""

from __future__ import annotations

from typing import Any

from refinery.corpus.filters import to_expression
from refinery.corpus.fs import open_filesystem
from refinery.corpus.mirror import PublishResult, mirror_store, publish_store
from refinery.corpus.mixture import MixtureError, MixtureSpec
from refinery.corpus.reader import Corpus, Shard

__all__ = ["Corpus", "Shard", "MixtureSpec", "MixtureError", "open_filesystem", "to_expression", "mirror_store", "publish_store", "PublishResult", "CorpusDataset", "StatefulLoader"]


def __getattr__(name: str) -> Any:  # torch is optional: import it only when asked for
    if name in ("CorpusDataset", "StatefulLoader"):
        from refinery.corpus import dataset

        return getattr(dataset, name)
    raise AttributeError(name)
