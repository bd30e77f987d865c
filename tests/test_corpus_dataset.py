"""PyTorch feed (refinery.corpus.dataset): rank/worker split, packing, resume, follow; local FS and S3."""

from __future__ import annotations

import json
import warnings

import pytest

torch = pytest.importorskip("torch")
tokenizers = pytest.importorskip("tokenizers")

from corpus_helpers import Backend, add_commit, backend, make_docs, moto_endpoint  # noqa: E402,F401
from refinery.corpus import Corpus  # noqa: E402
from refinery.corpus.dataset import CorpusDataset, StatefulLoader  # noqa: E402
from refinery.store import CorpusStore  # noqa: E402

warnings.filterwarnings("ignore", message=".*worker processes in total.*")
DOCS1, DOCS2 = make_docs("c1", 150), make_docs("c2", 90)
DEBRIS = make_docs("debris", 30)
SNAPSHOT = DOCS1.column("doc_id").to_pylist() + DOCS2.column("doc_id").to_pylist()
EOT = "<|endoftext|>"


@pytest.fixture(scope="module")
def tokenizer():
    """A tiny word-level tokenizer trained in-process on the test corpus (nothing downloaded)."""
    from tokenizers import Tokenizer, models, pre_tokenizers, trainers

    tok = Tokenizer(models.WordLevel(unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Whitespace()
    texts = DOCS1.column("text").to_pylist() + DOCS2.column("text").to_pylist()
    tok.train_from_iterator(texts, trainers.WordLevelTrainer(special_tokens=["[UNK]", EOT]))
    return tok


@pytest.fixture
def store(tmp_path, backend: Backend):
    st = CorpusStore(tmp_path / "store")
    add_commit(st, DOCS1, row_group_rows=10)
    add_commit(st, DOCS2, row_group_rows=10)
    backend.put_debris(st, DEBRIS, 3)  # uncommitted: staging part, data/00000003 without manifest, .tmp manifest
    return st


def _corpus(store, backend) -> Corpus:
    return Corpus(backend.publish(store), **backend.options)


def test_two_ranks_three_workers_cover_snapshot_exactly(store, backend):
    corpus = _corpus(store, backend)
    per_rank = []
    for rank in (0, 1):
        ds = CorpusDataset(corpus, seed=7, rank=rank, world_size=2)
        per_rank.append([i for b in StatefulLoader(ds, batch_size=4, num_workers=3) for i in b["doc_id"]])
    seen = per_rank[0] + per_rank[1]
    assert len(seen) == len(set(seen)), "a document was delivered twice"
    assert sorted(seen) == sorted(SNAPSHOT), "documents missing or foreign (uncommitted) ones read"
    assert set(per_rank[0]).isdisjoint(per_rank[1]) and per_rank[0] and per_rank[1]
    assert seen != SNAPSHOT  # shuffled


def test_order_deterministic_by_seed_and_epoch(tmp_path):
    st = CorpusStore(tmp_path / "s")
    add_commit(st, DOCS1, row_group_rows=10)

    def order(seed: int, epoch: int) -> list[str]:
        ds = CorpusDataset(st.root, seed=seed, rank=0, world_size=1)
        ds.set_epoch(epoch)
        return [d["doc_id"] for d in ds]

    a = order(1, 0)
    assert a == order(1, 0) and sorted(a) == sorted(DOCS1.column("doc_id").to_pylist())
    assert a != order(2, 0) and a != order(1, 1)
    two = [d["doc_id"] for d in CorpusDataset(st.root, seed=1, rank=0, world_size=1, epochs=2)]
    assert two == a + order(1, 1)  # epochs chain in one stream, each in its own order


def test_endless_epochs_resume_across_epoch_boundary(tmp_path, tokenizer):
    st = CorpusStore(tmp_path / "s")
    add_commit(st, DOCS2, row_group_rows=10)

    def loader() -> StatefulLoader:
        ds = CorpusDataset(st.root, tokenizer, 32, seed=4, rank=0, world_size=1, epochs=None)
        return StatefulLoader(ds, batch_size=8, num_workers=2)

    def take(ld: StatefulLoader, n: int) -> list[torch.Tensor]:
        out = []
        for batch in ld:
            out.append(batch["input_ids"])
            if len(out) == n:
                return out
        return out

    full = take(loader(), 40)  # several passes over 90 documents
    first = loader()
    head = take(first, 23)
    resumed = loader()
    resumed.load_state_dict(first.state_dict())
    assert resumed.state_dict()["cursors"] and max(v[0] for v in first.state_dict()["cursors"].values()) >= 5
    assert torch.equal(torch.cat(head + take(resumed, 17)), torch.cat(full))


def test_packing_is_the_document_token_stream(tmp_path, tokenizer):
    st = CorpusStore(tmp_path / "s")
    add_commit(st, DOCS1, row_group_rows=10)
    docs = [d["text"] for d in CorpusDataset(st.root, seed=3, rank=0, world_size=1, columns=["text"])]
    eot = tokenizer.token_to_id(EOT)
    stream = [t for text in docs for t in tokenizer.encode(text, add_special_tokens=False).ids + [eot]]
    seqs = [s["input_ids"] for s in CorpusDataset(st.root, tokenizer, 16, seed=3, rank=0, world_size=1)]
    assert all(s.shape == (16,) and s.dtype == torch.long for s in seqs)
    assert torch.cat(seqs).tolist() == stream[: len(stream) // 16 * 16]


def test_resume_after_k_steps_equals_uninterrupted(store, backend, tokenizer):
    corpus = _corpus(store, backend)
    for rank, k in ((0, 5), (1, 5), (1, 13)):
        def make() -> tuple[CorpusDataset, StatefulLoader]:
            ds = CorpusDataset(corpus, tokenizer, 24, seed=11, rank=rank, world_size=2)
            return ds, StatefulLoader(ds, batch_size=3, num_workers=3)

        _, loader = make()
        full = [b["input_ids"] for b in loader]
        assert len(full) > 2 * k

        _, first = make()
        head = []
        for step, batch in enumerate(first):
            head.append(batch["input_ids"])
            if step + 1 == k:
                state = json.loads(json.dumps(first.state_dict()))  # checkpoints are plain JSON
                break
        _, resumed = make()
        resumed.load_state_dict(state)
        tail = [b["input_ids"] for b in resumed]
        assert torch.equal(torch.cat(head + tail), torch.cat(full)), f"rank {rank}: resumed stream differs"


def test_follow_reads_commit_made_during_iteration(store, backend):
    corpus = _corpus(store, backend)
    docs3 = make_docs("c3", 40)
    ds = CorpusDataset(corpus, follow=True, seed=5, rank=0, world_size=1, poll_interval=0.1, idle_timeout=4.0)
    seen: list[str] = []
    committed = False
    for batch in StatefulLoader(ds, batch_size=4, num_workers=3):
        seen += batch["doc_id"]
        if not committed:  # the refinery commits while the job is reading
            add_commit(store, docs3, row_group_rows=10)
            backend.put_debris(store, DEBRIS, 4)
            backend.publish(store)
            committed = True
    expected = SNAPSHOT + docs3.column("doc_id").to_pylist()
    assert len(seen) == len(set(seen)) and sorted(seen) == sorted(expected)
    state = ds.state_dict()
    assert state["follow"] and len(state["cursors"]) == 3


def test_state_checks(tmp_path, tokenizer):
    st = CorpusStore(tmp_path / "s")
    add_commit(st, DOCS1, row_group_rows=10)
    ds = CorpusDataset(st.root, tokenizer, 16, seed=1, rank=0, world_size=1)
    state = ds.state_dict()
    with pytest.raises(ValueError, match="seed"):
        CorpusDataset(st.root, tokenizer, 16, seed=2, rank=0, world_size=1).load_state_dict(state)
    add_commit(st, DOCS2)
    later = CorpusDataset(st.root, tokenizer, 16, seed=1, rank=0, world_size=1)
    assert later.commit == 2
    later.load_state_dict(state)
    assert later.commit == 1  # a resumed job keeps reading the snapshot it started on
    with pytest.raises(ValueError, match="seq_len"):
        CorpusDataset(st.root, tokenizer)


def test_example_pretrain_gpt_runs_and_resumes(tmp_path):
    import subprocess
    import sys
    from pathlib import Path

    repo = Path(__file__).resolve().parents[1]
    st = CorpusStore(tmp_path / "s")
    add_commit(st, DOCS1, row_group_rows=10)
    args = [sys.executable, str(repo / "examples" / "pretrain_gpt.py"), "--store", str(st.root), "--workers", "1",
            "--batch-size", "4", "--seq-len", "32", "--layers", "1", "--d-model", "32", "--heads", "2",
            "--vocab-size", "300", "--log-every", "1", "--warmup-steps", "1", "--out", str(tmp_path / "run"),
            "--checkpoint", str(tmp_path / "ck.pt"), "--device", "cpu"]
    first = subprocess.run(args + ["--steps", "3"], capture_output=True, text=True, timeout=180)
    assert first.returncode == 0, first.stderr[-2000:]
    summary = json.loads(first.stdout.strip().splitlines()[-1].removeprefix("summary "))
    assert summary["steps"] == 3 and summary["tokens_per_s"] > 0 and 0 <= summary["data_wait_frac"] < 1
    assert "data wait" in first.stdout
    args[args.index("--out") + 1] = str(tmp_path / "run2")
    tok = str(tmp_path / "run" / "tokenizer.json")
    second = subprocess.run(args + ["--steps", "5", "--resume", "--tokenizer", tok], capture_output=True, text=True, timeout=180)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resumed at step 3" in second.stdout
    assert json.loads(second.stdout.strip().splitlines()[-1].removeprefix("summary "))["steps"] == 5


def test_follow_mode_resume_neither_repeats_nor_skips(tmp_path):
    st = CorpusStore(tmp_path / "s")
    add_commit(st, DOCS1, row_group_rows=10)
    add_commit(st, DOCS2, row_group_rows=10)

    def loader() -> StatefulLoader:
        ds = CorpusDataset(st.root, follow=True, seed=2, rank=0, world_size=1, poll_interval=0.1, idle_timeout=1.0)
        return StatefulLoader(ds, batch_size=5, num_workers=2)

    first, head = loader(), []
    for batch in first:
        head += batch["doc_id"]
        if len(head) >= 60:
            break
    state = json.loads(json.dumps(first.state_dict()))
    add_commit(st, make_docs("c3", 30), row_group_rows=10)  # committed while the job was down
    resumed = loader()
    resumed.load_state_dict(state)
    tail = [i for b in resumed for i in b["doc_id"]]
    seen = head + tail
    assert len(seen) == len(set(seen))
    assert sorted(seen) == sorted(SNAPSHOT + make_docs("c3", 30).column("doc_id").to_pylist())


def test_endless_epochs_end_when_the_filter_keeps_nothing(tmp_path):
    st = CorpusStore(tmp_path / "s")
    add_commit(st, DOCS1, row_group_rows=10)
    ds = CorpusDataset(st.root, seed=1, rank=0, world_size=1, epochs=None, filter={"language": "xx"})
    assert list(ds) == []
    ds = CorpusDataset(st.root, seed=1, rank=0, world_size=1, epochs=None, filter={"toxicity": {"max": 0.05}})
    got = []
    for d in ds:
        got.append(d["doc_id"])
        if len(got) == 60:
            break
    assert len(got) == 60  # the few kept rows repeat, epoch after epoch
