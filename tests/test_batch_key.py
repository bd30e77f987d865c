"""The batch key decides what counts as a re-run: inputs, config and models."""

from refinery.batch import batch_key
from refinery.pipeline import PipelineRunner
from refinery.pipelines import resolve
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
