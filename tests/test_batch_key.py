"""The batch key decides what counts as a re-run: inputs, config and models."""

from refinery.batch import batch_key
from refinery.runner import PipelineRunner
from refinery.pipeline_files import resolve
from refinery.readers import discover
from refinery.sample import write_sample_warc


def test_batch_key_covers_inputs_config_and_models(tmp_path):
    path, _ = write_sample_warc(tmp_path / "a")
    files = discover([str(path)])
    en, multi = resolve("web-en"), resolve("web-multilingual")
    models = PipelineRunner(en, "run").model_info()
    assert "langid" in models and models["langid"]["sha256"]
    key = batch_key(en, files, models)
    assert key == batch_key(en, discover([str(path)]), PipelineRunner(en, "run").model_info())
    assert key != batch_key(multi, files, models)
    rebuilt = {**models, "langid": {**models["langid"], "sha256": "0" * 64}}
    assert key != batch_key(en, files, rebuilt)
    other, _ = write_sample_warc(tmp_path / "b")  # same bytes, another file: another batch
    assert key != batch_key(en, discover([str(other)]), models)


def test_find_batch_reads_each_manifest_once_and_notices_a_replaced_store(tmp_path, monkeypatch):
    """find_batch runs twice per batch: it must not re-read every manifest every time (a 24/7
    service's store grows without end), yet a store replaced under the same path is seen."""
    import shutil

    from corpus_helpers import add_commit, make_docs
    from refinery.store import CorpusStore

    store = CorpusStore(tmp_path / "store")
    for i in range(5):
        add_commit(store, make_docs(f"d{i}", 3), key=f"key-{i}")
    reads = []
    real = CorpusStore.commit
    monkeypatch.setattr(CorpusStore, "commit", lambda self, n: reads.append(n) or real(self, n))
    assert store.find_batch("key-2").commit == 3
    assert store.find_batch("missing") is None
    reads.clear()
    add_commit(store, make_docs("d5", 3), key="key-5")
    reads.clear()
    assert store.find_batch("missing") is None and reads == [6]  # only the new manifest
    assert store.find_batch("key-0").commit == 1 and reads == [6, 1]  # a hit is read back from disk
    # the store is replaced under the same path: same commit numbers, other batches
    shutil.rmtree(store.root)
    fresh = CorpusStore(store.root)
    add_commit(fresh, make_docs("e0", 3), key="other-0")
    add_commit(fresh, make_docs("e1", 3), key="key-0")
    assert store.find_batch("key-0").commit == 2
    assert store.find_batch("key-3") is None
