"""Mixtures (refinery.corpus.mixture / sampler): shares, repeat caps, worker split, resume, follow, bad specs."""

from __future__ import annotations

import json
import threading
import warnings
from collections import Counter, defaultdict

import pyarrow as pa
import pytest

from corpus_helpers import SCHEMA, Backend, add_commit, backend, make_docs, moto_endpoint, write_shards  # noqa: F401
from refinery.config import ShardConfig
from refinery.corpus import Corpus
from refinery.corpus.mixture import MixtureError, MixtureSpec
from refinery.store import CommitRecord, CorpusStore

warnings.filterwarnings("ignore", message=".*worker processes in total.*")

SPEC = {"groups": [
    {"name": "en-head", "weight": 5, "filter": {"language": "en", "ppl_bucket": "head"}},
    {"name": "de", "weight": 3, "filter": {"language": "de"}},
    {"name": "en-rest", "weight": 2, "filter": {"language": "en", "ppl_bucket": ["middle", "tail"]}},
]}
TARGET = {"en-head": 0.5, "de": 0.3, "en-rest": 0.2}


def _with_hosts(table: pa.Table, hosts: tuple[str, ...]) -> pa.Table:
    urls = [f"https://{hosts[i % len(hosts)]}/page/{i}" for i in range(table.num_rows)]
    return table.set_column(table.schema.get_field_index("url"), SCHEMA.field("url"), pa.array(urls, pa.string()))


@pytest.fixture(scope="module")
def big_store(tmp_path_factory):
    """Several commits, row groups of 500 rows: 100,000 draws read few row groups."""
    st = CorpusStore(tmp_path_factory.mktemp("mix") / "store")
    for c in range(3):
        add_commit(st, _with_hosts(make_docs(f"b{c}", 1200, seed=c), ("www.News.example", "blog.example")),
                   row_group_rows=500, target_bytes=1 << 20)
    return st


def test_shares_within_one_percent_over_100k_documents(big_store):
    stream = Corpus(big_store.root).mixture(SPEC, seed=3, columns=["doc_id"])
    counts, per_epoch = Counter(), Counter()
    for _, doc in zip(range(100_000), stream):
        counts[doc["group"]] += 1
        per_epoch[(doc["doc_id"], doc["group_epoch"])] += 1
    for name, share in TARGET.items():
        assert abs(counts[name] / 100_000 - share) <= 0.01, (name, counts)
    assert max(per_epoch.values()) == 1, "a document was drawn twice within one epoch of its group"
    again = Corpus(big_store.root).mixture(SPEC, seed=3, columns=["doc_id"])
    first = [d["doc_id"] for _, d in zip(range(2000), again)]
    assert first == [d["doc_id"] for _, d in zip(range(2000), Corpus(big_store.root).mixture(SPEC, seed=3, columns=["doc_id"]))]
    assert first != [d["doc_id"] for _, d in zip(range(2000), Corpus(big_store.root).mixture(SPEC, seed=4, columns=["doc_id"]))]


def test_token_shares_within_one_percent(big_store):
    spec = {**SPEC, "share": "tokens"}
    words = Counter()
    for _, doc in zip(range(30_000), Corpus(big_store.root).mixture(spec, seed=1, columns=["text"])):
        words[doc["group"]] += len(doc["text"].split())  # the documented count: whitespace words
    total = sum(words.values())
    for name, share in TARGET.items():
        assert abs(words[name] / total - share) <= 0.01, (name, words)


def test_repeat_cap_never_exceeded_and_dry_group_redistributed(big_store, caplog):
    spec = {"groups": [
        {"name": "de", "weight": 8, "max_epochs": 2, "filter": {"language": "de"}},
        {"name": "en", "weight": 2, "filter": {"language": "en"}},
    ]}
    n_de = sum(r.stats["by"]["language"]["de"]["documents"] for r in big_store.commits())
    stream = Corpus(big_store.root).mixture(spec, seed=0, columns=["doc_id"])
    draws = Counter()
    groups = []
    for _, doc in zip(range(4 * n_de), stream):
        draws[doc["doc_id"]] += 1
        groups.append(doc["group"])
    de_docs = {d for d, n in draws.items() if "de" == _lang(big_store, d)}
    assert len(de_docs) == n_de and all(draws[d] == 2 for d in de_docs), "cap: each de document exactly twice"
    assert groups.count("de") == 2 * n_de and stream.dry_groups == ["de"]
    assert groups[-n_de:] == ["en"] * n_de  # its share went to the other group
    assert "ran dry" in caplog.text
    # on_dry: wait, in a snapshot: the stream ends where the group runs dry
    waiting = Corpus(big_store.root).mixture({**spec, "on_dry": "wait"}, seed=0, columns=["doc_id"])
    got = [d["group"] for d in waiting]
    assert got.count("de") == 2 * n_de and len(got) < 2 * n_de / 0.8 + 2


_LANG: dict[str, str] = {}


def _lang(store, doc_id: str) -> str:
    if not _LANG:
        for b in Corpus(store.root).iter_batches(columns=["doc_id", "language"]):
            _LANG.update(zip(b.column("doc_id").to_pylist(), b.column("language").to_pylist()))
    return _LANG[doc_id]


def test_domain_and_commit_range_filters(big_store):
    spec = {"groups": [
        {"name": "news-late", "weight": 1, "filter": {"domain": "news.example", "commit": {">=": 2}}},
        {"name": "blog", "weight": 1, "filter": {"domain": ["blog.example"]}},
    ]}
    seen = defaultdict(set)
    for _, doc in zip(range(3000), Corpus(big_store.root).mixture(spec, seed=0, columns=["doc_id", "url"])):
        seen[doc["group"]].add((doc["doc_id"][:2], doc["url"].split("/")[2]))
    assert {h for _, h in seen["news-late"]} == {"www.News.example"} and {c for c, _ in seen["news-late"]} == {"b1", "b2"}
    assert {h for _, h in seen["blog"]} == {"blog.example"} and {c for c, _ in seen["blog"]} == {"b0", "b1", "b2"}


def _commit_table(store: CorpusStore, table: pa.Table, rows: int = 50) -> None:
    """A commit whose shards carry columns beyond today's schema (e.g. quality_bucket)."""
    staging = store.new_staging(f"extra-{store.commit_numbers()}")
    out = staging / "out"
    shards = write_shards(table.to_batches(), table.schema, out, "shard",
                          ShardConfig(row_group_rows=rows, target_bytes=1 << 20, compression_level=1), out)
    store.commit_staged(staging, CommitRecord(0, f"extra-{len(store.commit_numbers())}", "", "t", "0", {}, [], [],
                                              [], {}, table.num_rows, table.num_rows), shards, [])


def test_generic_over_committed_columns_quality_bucket(tmp_path):
    st = CorpusStore(tmp_path / "s")
    docs = make_docs("q", 400)
    docs = docs.append_column("quality_bucket", pa.array([i % 20 for i in range(400)], pa.int8()))
    _commit_table(st, docs)
    spec = {"groups": [{"name": "top", "weight": 3, "filter": {"quality_bucket": {">=": 15}}},
                       {"name": "rest", "weight": 1, "filter": {"quality_bucket": {"<": 15}}}]}
    got = Counter()
    qb = dict(zip(docs.column("doc_id").to_pylist(), docs.column("quality_bucket").to_pylist()))
    for _, doc in zip(range(4000), Corpus(st.root).mixture(spec, seed=0, columns=["doc_id"])):
        got[doc["group"]] += 1
        assert (qb[doc["doc_id"]] >= 15) == (doc["group"] == "top")
    assert got == {"top": 3000, "rest": 1000}
    stats = st.commit(1).stats
    assert stats["by"]["quality_bucket"]["19"]["documents"] == 20 and stats["documents"] == 400


def test_follow_mode_commit_joins_and_shares_hold(tmp_path):
    st = CorpusStore(tmp_path / "s")
    for c in range(2):
        add_commit(st, make_docs(f"f{c}", 600, seed=c), row_group_rows=200, target_bytes=1 << 20)
    stream = Corpus(st.root).mixture(SPEC, seed=2, columns=["doc_id"], follow=True, poll_interval=0.0,
                                     idle_timeout=0.5)
    before = [next(stream) for _ in range(3000)]
    add_commit(st, make_docs("f2", 600, seed=2), row_group_rows=200, target_bytes=1 << 20)  # lands mid-stream
    after = [next(stream) for _ in range(10_000)]
    assert any(d["doc_id"].startswith("f2-") for d in after) and not any(d["doc_id"].startswith("f2-") for d in before)
    counts = Counter(d["group"] for d in after)
    for name, share in TARGET.items():
        assert abs(counts[name] / 10_000 - share) <= 0.02, (name, counts)
    # the new documents arrive within the current epoch of their group: before any second draw of them
    seen = Counter((d["doc_id"], d["group_epoch"]) for d in before + after)
    assert max(seen.values()) == 1
    # resume from state in follow mode: the same continuation
    state = json.loads(json.dumps(stream.state_dict()))
    tail = [next(stream)["doc_id"] for _ in range(500)]
    resumed = Corpus(st.root).mixture(SPEC, seed=2, columns=["doc_id"], follow=True, poll_interval=0.0, idle_timeout=0.5)
    resumed.load_state_dict(state)
    assert [next(resumed)["doc_id"] for _ in range(500)] == tail


def test_follow_wait_policy_waits_for_a_refill(tmp_path):
    st = CorpusStore(tmp_path / "s")
    add_commit(st, make_docs("w0", 100), row_group_rows=50)
    spec = {"on_dry": "wait", "groups": [{"name": "de", "weight": 1, "max_epochs": 1, "filter": {"language": "de"}},
                                         {"name": "en", "weight": 1, "filter": {"language": "en"}}]}
    stream = Corpus(st.root).mixture(spec, seed=0, columns=["doc_id"], follow=True, poll_interval=0.02,
                                     idle_timeout=1.0)
    # de (25 documents, one pass) runs dry after 25 de + 24 en: the stream waits; a commit refills it
    refill = threading.Timer(0.3, lambda: add_commit(st, make_docs("w1", 100), row_group_rows=50))
    refill.start()
    got = list(stream)  # ... and it ends on the idle timeout once de is dry again
    refill.join()
    groups = Counter(d["group"] for d in got)
    de = [d["doc_id"] for d in got if d["group"] == "de"]
    assert groups["de"] == 50 and len(set(de)) == 50 and {i[:2] for i in de} == {"w0", "w1"}
    assert abs(groups["en"] - groups["de"]) <= 1 and stream.dry_groups == ["de"]
    assert [d["group"] for d in got[:49]].count("en") == 24  # nothing drawn while de was dry


def test_bad_specs_are_clear_errors_naming_the_group(big_store, tmp_path):
    corpus = Corpus(big_store.root)

    def err(spec) -> str:
        with pytest.raises(MixtureError) as e:
            corpus.mixture(spec, seed=0)
        return str(e.value)

    one = lambda **g: {"groups": [{"name": "ok", "weight": 1, "filter": {"language": "en"}}, {"name": "bad", **g}]}  # noqa: E731
    msg = err(one(weight=1, filter={"qualty_bucket": 3}))
    assert "'bad'" in msg and "qualty_bucket" in msg and "language" in msg
    assert "'bad'" in err(one(weight=0, filter={"language": "de"})) and "positive" in err(one(weight=-1))
    assert "'bad'" in err(one(weight="much"))
    msg = err(one(weight=1, filter={"ppl_bucket": "head"}))
    assert "'ok'" in msg and "'bad'" in msg and "overlap" in msg
    assert "'bad'" in err(one(weight=1, filter={"language": "xx"})) and "match no document" in err(one(weight=1, filter={"language": "xx"}))
    assert "'bad'" in err(one(weight=1, filter={"language": {"~": 1}}))
    assert "'bad'" in err(one(weight=1, max_epochs=0, filter={"language": "de"}))
    assert "'bad'" in err(one(weight=1, filtr={"language": "de"}))
    assert "used twice" in err({"groups": [{"name": "a", "weight": 1}, {"name": "a", "weight": 1}]})
    assert "groups" in err({"groups": []})
    assert "on_dry" in err({**one(weight=1, filter={"language": "de"}), "on_dry": "later"})
    # overlap: first takes the first match instead
    first = corpus.mixture({"overlap": "first", "groups": [{"name": "head", "weight": 1, "filter": {"ppl_bucket": "head"}},
                                                           {"name": "all", "weight": 1}]}, seed=0, columns=["doc_id"])
    assert {d["group"] for _, d in zip(range(100), first)} == {"head", "all"}
    path = tmp_path / "mix.yaml"
    path.write_text("groups:\n  - name: de\n    weight: 1\n    filter: {language: de}\n")
    assert MixtureSpec.load(path).names == ["de"]
    path.write_text("groups: [\n")
    with pytest.raises(MixtureError, match="not valid YAML"):
        MixtureSpec.load(path)


def test_mixture_reads_committed_shards_only_local_and_s3(tmp_path, backend: Backend):
    st = CorpusStore(tmp_path / "s")
    add_commit(st, make_docs("m1", 200), row_group_rows=20)
    add_commit(st, make_docs("m2", 120, seed=1), row_group_rows=20)
    backend.put_debris(st, make_docs("debris", 30), 3)  # uncommitted files must never be drawn
    corpus = Corpus(backend.publish(st), **backend.options)
    got = [d for _, d in zip(range(2000), corpus.mixture(SPEC, seed=0, columns=["doc_id"]))]
    assert not any(d["doc_id"].startswith("debris") for d in got)
    counts = Counter(d["group"] for d in got)
    assert all(abs(counts[n] / 2000 - share) <= 0.01 for n, share in TARGET.items()), counts


# -- the PyTorch dataset: the same spec over ranks x DataLoader workers -------------------------
torch = pytest.importorskip("torch")
from refinery.corpus.dataset import CorpusDataset, StatefulLoader  # noqa: E402


@pytest.fixture(scope="module")
def small_store(tmp_path_factory):
    st = CorpusStore(tmp_path_factory.mktemp("mixds") / "store")
    add_commit(st, make_docs("s1", 240, seed=1), row_group_rows=20)
    add_commit(st, make_docs("s2", 180, seed=2), row_group_rows=20)
    return st


CAPPED = {"groups": [
    {"name": "en-head", "weight": 5, "max_epochs": 3, "filter": {"language": "en", "ppl_bucket": "head"}},
    {"name": "de", "weight": 3, "max_epochs": 2, "filter": {"language": "de"}},
    {"name": "en-rest", "weight": 2, "max_epochs": 1, "filter": {"language": "en", "ppl_bucket": ["middle", "tail"]}},
]}


def test_two_ranks_three_workers_never_draw_a_document_twice_per_group_epoch(small_store):
    draws = []
    for rank in (0, 1):
        ds = CorpusDataset(small_store.root, mixture=CAPPED, seed=7, rank=rank, world_size=2, columns=["doc_id"])
        for b in StatefulLoader(ds, batch_size=8, num_workers=3):
            draws += list(zip(b["doc_id"], b["group"], b["group_epoch"].tolist()))
    per_epoch = Counter((d, e) for d, _, e in draws)
    assert max(per_epoch.values()) == 1, "a document was drawn twice within an epoch of its group"
    caps = {g["name"]: g["max_epochs"] for g in CAPPED["groups"]}
    per_doc = Counter(d for d, _, _ in draws)
    group_of = {d: g for d, g, _ in draws}
    assert len(per_doc) == 420, "every document of every group was drawn"  # all 420 documents are in a group
    assert all(per_doc[d] == caps[group_of[d]] for d in per_doc), "repeat cap exceeded or not reached"


def test_shares_hold_over_the_union_of_two_ranks_and_three_workers(small_store):
    counts = Counter()
    for rank in (0, 1):
        ds = CorpusDataset(small_store.root, mixture=SPEC, seed=1, rank=rank, world_size=2, columns=["doc_id"])
        for _, b in zip(range(300), StatefulLoader(ds, batch_size=10, num_workers=3)):
            counts.update(b["group"])
    assert sum(counts.values()) == 6000
    for name, share in TARGET.items():
        assert abs(counts[name] / 6000 - share) <= 0.01, (name, counts)


def test_dataset_resume_exact_across_ranks_and_workers(small_store):
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    texts = [t for b in Corpus(small_store.root).iter_batches(columns=["text"]) for t in b.column("text").to_pylist()]
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=["[UNK]", "<|endoftext|>"]))
    spec = {**SPEC, "share": "tokens"}
    n = 24
    for rank, k in ((0, 7), (1, 11)):
        def make() -> StatefulLoader:
            ds = CorpusDataset(small_store.root, tok, 33, mixture=spec, seed=5, rank=rank, world_size=2)
            return StatefulLoader(ds, batch_size=3, num_workers=3)

        full = [b["input_ids"] for _, b in zip(range(n), make())]
        head, first = [], make()
        for step, batch in enumerate(first):
            head.append(batch["input_ids"])
            if step + 1 == k:
                state = json.loads(json.dumps(first.state_dict()))  # checkpoints are plain JSON
                break
        resumed = make()
        resumed.load_state_dict(state)
        tail = [b["input_ids"] for _, b in zip(range(n - k), resumed)]
        assert torch.equal(torch.cat(head + tail), torch.cat(full)), f"rank {rank}: resumed stream differs"
    other = CorpusDataset(small_store.root, tok, 33, mixture=CAPPED, seed=5, rank=1, world_size=2)
    with pytest.raises(ValueError, match="mixture"):
        StatefulLoader(other, batch_size=3, num_workers=3).load_state_dict(state)


def test_dataset_follow_mode_new_commit_joins_across_workers(tmp_path):
    st = CorpusStore(tmp_path / "s")
    add_commit(st, make_docs("d1", 200), row_group_rows=20)
    ds = CorpusDataset(st.root, mixture=SPEC, seed=0, follow=True, rank=0, world_size=1, columns=["doc_id"],
                       poll_interval=0.05, idle_timeout=5.0)
    seen, committed = [], False
    for step, b in enumerate(StatefulLoader(ds, batch_size=10, num_workers=2)):
        seen += list(zip(b["doc_id"], b["group_epoch"].tolist()))
        if not committed:
            add_commit(st, make_docs("d2", 200, seed=1), row_group_rows=20)
            committed = True
        if any(d.startswith("d2-") for d, _ in seen[-10:]) and step > 50:
            break
    assert any(d.startswith("d2-") for d, _ in seen), "the new commit never joined"
    assert max(Counter(seen).values()) == 1
    state = ds.state_dict()
    assert state["mixture"] and state["mixture_start"] == 1 and 2 in {v[0] for v in state["cursors"].values()}
