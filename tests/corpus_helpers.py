"""Corpus stores for the training-feed tests: real Parquet shards, real commits.

Rows follow the pipeline's output schema (provenance, text, language, q_*)
plus the perplexity/toxicity columns, written by the store's own shard writer
and published with CorpusStore.commit_staged, so tests read exactly what a
refinery run commits, without starting Ray for each store.
"""

from __future__ import annotations

import random
import socket
import time
from datetime import datetime, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq

from refinery.config import ShardConfig
from refinery.store import CommitRecord, CorpusStore
from refinery.store.shards import ShardWriter

def write_shards(batches, schema: pa.Schema, out_dir: Path, prefix: str, cfg: ShardConfig, rel_to: Path):
    """Every record batch of `batches` as shards of `cfg`, through the store's ShardWriter."""
    writer = ShardWriter(schema, out_dir, prefix, cfg, rel_to)
    for records in batches:
        writer.write(records)
    return writer.close()


SCHEMA = pa.schema([
    pa.field("doc_id", pa.string(), nullable=False),
    pa.field("url", pa.string()),
    pa.field("source_uri", pa.string(), nullable=False),
    pa.field("record_id", pa.string(), nullable=False),
    pa.field("fetch_time", pa.timestamp("us", tz="UTC")),
    pa.field("text", pa.string()),
    pa.field("language", pa.string()),
    pa.field("language_score", pa.float32()),
    pa.field("q_words", pa.int32()),
    pa.field("q_alpha_words_ratio", pa.float64()),
    pa.field("ppl_bucket", pa.string()),
    pa.field("perplexity", pa.float64()),
    pa.field("toxicity", pa.float32()),
])

WORDS = ("the river data model token shard commit reader worker epoch seed packed sequence language "
         "quality filter corpus store manifest object storage training feed resume cursor batch").split()


def make_docs(prefix: str, n: int, seed: int = 0) -> pa.Table:
    rnd = random.Random(f"{prefix}:{seed}")
    rows = []
    for i in range(n):
        words = [rnd.choice(WORDS) for _ in range(rnd.randint(5, 60))]
        rows.append({
            "doc_id": f"{prefix}-{i:05d}",
            "url": f"http://example.invalid/{prefix}/{i}",
            "source_uri": f"crawl/{prefix}.warc.gz",
            "record_id": f"<urn:uuid:{prefix}-{i}>",
            "fetch_time": datetime(2026, 1, 1, tzinfo=timezone.utc),
            "text": f"{prefix} document {i}. " + " ".join(words) + ".",
            "language": "en" if i % 4 else "de",
            "language_score": 0.9,
            "q_words": len(words) + 3,
            "q_alpha_words_ratio": 1.0,
            "ppl_bucket": ("head", "middle", "tail")[i % 3],
            "perplexity": 100.0 + i,
            "toxicity": (i % 10) / 10,
        })
    return pa.Table.from_pylist(rows, schema=SCHEMA)


def add_commit(store: CorpusStore, table: pa.Table, row_group_rows: int = 16, target_bytes: int = 8192,
               key: str | None = None) -> CommitRecord:
    """Commit `table` as one batch through the store's real staging -> commit path."""
    key = key or f"test-{time.time_ns()}"
    staging = store.new_staging(key)
    out = staging / "out"
    cfg = ShardConfig(row_group_rows=row_group_rows, target_bytes=target_bytes, compression_level=1)
    shards = write_shards(table.to_batches(max_chunksize=50), SCHEMA, out, "shard", cfg, out)
    record = CommitRecord(commit=0, batch_key=key, created_at="", pipeline="test", config_hash="0" * 16,
                          models={}, inputs=[], shards=[], rejects=[], counters={},
                          docs_in=table.num_rows, docs_out=table.num_rows)
    return store.commit_staged(staging, record, shards, [])


def leave_uncommitted(root: Path, table: pa.Table, number: int) -> list[Path]:
    """Debris a reader must never see: a staging part file and a data dir with no manifest."""
    paths = [root / "staging" / "attempt-x" / "out" / "shard-00000.parquet",
             root / "data" / f"{number:08d}" / "shard-00000.parquet"]
    for p in paths:
        p.parent.mkdir(parents=True, exist_ok=True)
        pq.write_table(table, p)
    (root / "manifest" / f"{number:08d}.json.tmp").write_text("{}")
    return paths


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- one test body, two storage backends ------------------------------------------------
import logging  # noqa: E402
import uuid  # noqa: E402

import pytest  # noqa: E402

S3_KEYS = {"access_key": "testing", "secret_key": "testing"}


class Backend:
    """Where a test's readers find the store: the local root itself, or a moto S3 bucket fed by mirror_store."""

    def __init__(self, kind: str, endpoint: str | None = None) -> None:
        self.kind = kind
        self.endpoint = endpoint
        self.prefix = f"store-{uuid.uuid4().hex[:8]}"

    @property
    def options(self) -> dict:
        return {} if self.kind == "local" else {"endpoint_override": self.endpoint, **S3_KEYS}

    def uri(self, store: CorpusStore) -> str:
        return str(store.root) if self.kind == "local" else f"s3://refinery/{self.prefix}"

    def publish(self, store: CorpusStore) -> str:
        """Make the store's commits visible to readers (S3: upload, shards first, manifest last)."""
        if self.kind == "s3":
            from refinery.corpus import mirror_store

            mirror_store(store, self.uri(store), **self.options)
        return self.uri(store)

    def put_debris(self, store: CorpusStore, table: pa.Table, number: int) -> None:
        """Uncommitted files where readers could stumble on them (and on S3 too)."""
        paths = leave_uncommitted(store.root, table, number)
        if self.kind == "s3":
            from refinery.corpus.fs import open_filesystem

            fs, root = open_filesystem(self.uri(store), **self.options)
            for p in paths + [store.root / "manifest" / f"{number:08d}.json.tmp"]:
                rel = p.relative_to(store.root).as_posix()
                with fs.open_output_stream(f"{root}/{rel}") as out:
                    out.write(p.read_bytes())


@pytest.fixture(scope="module")
def moto_endpoint():
    moto_server = pytest.importorskip("moto.server")
    logging.getLogger("werkzeug").setLevel(logging.ERROR)
    port = free_port()
    server = moto_server.ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    import pyarrow.fs as pafs

    pafs.S3FileSystem(endpoint_override=endpoint.removeprefix("http://"), scheme="http", region="us-east-1",
                      allow_bucket_creation=True, **S3_KEYS).create_dir("refinery")
    yield endpoint
    server.stop()


@pytest.fixture(params=["local", "s3"])
def backend(request) -> Backend:
    if request.param == "local":
        return Backend("local")
    return Backend("s3", request.getfixturevalue("moto_endpoint"))
