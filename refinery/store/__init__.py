"""Corpus store: Parquet shards made visible only by atomic, numbered commit records."""

from refinery.store.corpus_store import CorpusStore
from refinery.store.manifest import CommitRecord, FileEntry

__all__ = ["CorpusStore", "CommitRecord", "FileEntry"]
