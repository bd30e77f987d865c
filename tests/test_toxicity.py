"""The toxicity stage with the shipped classifiers: hand-checked cases, paragraph removal, acceptance, e2e."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import shared
from refinery.config import parse_pipeline
from refinery.counters import Counters
from refinery.errors import ConfigError
from refinery.models.metrics import roc_auc
from refinery.models.registry import DEFAULT_ROOT, read_manifest
from refinery.models.toxicity import ToxicityModel, read_labelled
from refinery.runner import PipelineRunner
from refinery.schema import INPUT_SCHEMA, REJECT_SCHEMA
from refinery.stages.toxicity import ToxicityOptions, ToxicityStage

TOXIC_EN = "you are a stupid fucking idiot, shut up bitch"
CLEAN_EN = [
    "The committee will meet on Tuesday to discuss the annual budget report.",
    "Thank you for your help with the garden yesterday, the roses look lovely.",
]
TOXIC_ZH = "你这个傻逼，滚回你的老家去吧"
CLEAN_ZH = "今天天气很好，我们去公园散步。"


def stage(**opts) -> ToxicityStage:
    s = ToxicityStage(ToxicityOptions(**opts))
    s.setup()
    return s


def batch(texts, langs) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({"text": texts, "language": langs})


def test_hand_checked_scores():
    en = ToxicityModel(DEFAULT_ROOT / "toxicity" / "en", "en")
    toxic, *clean = en.scores([TOXIC_EN, *CLEAN_EN])
    assert toxic > 0.9 and all(c < 0.1 for c in clean)
    zh = ToxicityModel(DEFAULT_ROOT / "toxicity" / "zh", "zh")
    t, c = zh.scores([TOXIC_ZH, CLEAN_ZH])
    assert t > 0.9 and c < 0.1


def test_document_mode_threshold_and_unmodelled_language():
    s = stage(threshold=0.5)
    r = s.process(batch([TOXIC_EN, CLEAN_EN[0], "Bonjour à tous, quelle belle journée.", TOXIC_ZH, None], ["en", "en", "fr", "zh", "en"]))
    tox = r.records.column("toxicity").to_pylist()
    assert r.reasons == ["toxic", None, None, "toxic", None]
    assert tox[0] > 0.5 > tox[1] and tox[2] is None and tox[4] is None
    score_only = stage(threshold=None).process(batch([TOXIC_EN], ["en"]))
    assert score_only.reasons == [None] and score_only.records.column("toxicity")[0].as_py() > 0.5


def test_paragraph_mode_removes_toxic_paragraphs_only():
    s = stage(paragraphs=True, min_paragraph_chars=20)
    doc = "\n".join([CLEAN_EN[0], TOXIC_EN, CLEAN_EN[1], "ok"])
    r = s.process(batch([doc, TOXIC_EN], ["en", "en"]))
    text = r.records.column("text").to_pylist()
    assert text[0] == "\n".join([CLEAN_EN[0], CLEAN_EN[1], "ok"])  # short line kept unscored
    assert r.reasons == [None, "all_paragraphs_toxic"]
    assert r.details[0] == "1 toxic paragraph(s) removed"
    assert r.records.column("toxicity")[0].as_py() < 0.5
    # nothing left, yet the score stays (scored on the original text): rejects and annotate show it
    assert r.records.column("toxicity")[1].as_py() >= 0.5


def test_missing_model_and_model_info():
    with pytest.raises(ConfigError) as e:
        parse_pipeline({"name": "x", "stages": [{"toxicity": {"languages": ["de"]}}]}, "p.yaml")
    assert "refinery models build-toxicity --lang de" in str(e.value)
    info = ToxicityStage(ToxicityOptions(languages=["en"])).model_info()["toxicity"]
    m = read_manifest(DEFAULT_ROOT / "toxicity" / "en", "toxicity", "en")
    assert info == {"en": {"name": "toxicity-en", "version": m["version"], "sha256": {role: f["sha256"] for role, f in m["files"].items()}}}
    assert set(m["files"]) == {"fasttext", "profanity_linear"}  # the English default is the ensemble


def _input_batch(texts):
    n = len(texts)
    return pa.RecordBatch.from_pydict(
        {"doc_id": [f"d{i}" for i in range(n)], "url": [None] * n, "source_uri": ["mem"] * n,
         "record_id": [str(i) for i in range(n)], "fetch_time": [None] * n, "html": [None] * n,
         "http_charset": [None] * n, "text": texts, "read_error": [None] * n},
        schema=INPUT_SCHEMA,
    )  # fmt: skip


def test_scores_reach_shards_rejects_and_annotate():
    para = (
        "The European lobster is a species of clawed lobster from the eastern Atlantic Ocean, the Mediterranean "
        "Sea and parts of the Black Sea. It is closely related to the American lobster."
    )
    cfg = parse_pipeline(
        {"name": "t", "stages": [{"langid": {"languages": ["en"]}}, {"perplexity": {"languages": ["en"]}},
                                 {"toxicity": {"languages": ["en"], "threshold": 0.5}}]}
    )  # fmt: skip
    texts = [para, TOXIC_EN + ". " + TOXIC_EN]
    out, rejects = PipelineRunner(cfg, "run").process(_input_batch(texts), Counters())
    assert out.column("doc_id").to_pylist() == ["d0"]
    assert out.column("ppl_bucket")[0].as_py() in ("head", "middle") and out.column("toxicity")[0].as_py() < 0.5
    assert rejects.schema == REJECT_SCHEMA
    rej = rejects.to_pylist()[0]
    assert rej["stage"] == "toxicity" and rej["reason"] == "toxic" and rej["toxicity"] > 0.5 and rej["perplexity"] > 0
    ann, _ = PipelineRunner(cfg, "annotate").process(_input_batch(texts), Counters())
    assert ann.column("verdict").to_pylist() == ["keep", "toxicity:toxic"]
    assert {"perplexity", "ppl_bucket", "toxicity"} <= set(ann.schema.names)


# ---------------------------------------------------------------- acceptance (real data)


def test_english_sources_never_trained_on():
    """The --eval sets (research-only licences) were never trained on: the manifest's figures are
    the shipped model's, and together they stay at ROC-AUC >= 0.85 (per-source: bench/README.md)."""
    from refinery.models.toxicity import read_sources

    m = read_manifest(DEFAULT_ROOT / "toxicity" / "en", "toxicity", "en")
    names = {s["set"] for s in m["eval_data"]}
    assert names == {"ethos_en", "tweeteval_hate_en", "toxigen_seeds_en", "jigsaw_detox_en"}
    assert not names & {s["set"] for s in m["training_data"]}
    evals = read_sources([f"jsonl:{shared('toxicity', s['set'], s['path'].rsplit('/', 1)[-1])}" for s in m["eval_data"]])
    model = ToxicityModel(DEFAULT_ROOT / "toxicity" / "en", "en")
    rows = [r for s in evals for r in s.rows]
    assert len(rows) == m["metrics"]["heldout"]["rows"]
    assert roc_auc([y for _, y in rows], model.scores([t for t, _ in rows])) >= 0.85
    for s in evals:
        got = roc_auc([y for _, y in s.rows], model.scores([t for t, _ in s.rows]))
        # scores() clamps fastText's 1.00001 to 1.0, which adds ties: equal to 1e-3
        assert got == pytest.approx(m["metrics"]["heldout_by_source"][s.name]["roc_auc"], abs=1e-3)
    assert set(m["metrics"]["leave_one_source_out"]) >= {"davidson_en", "olid_en", "gab_hate_en", "mean_roc_auc"}


def test_english_model_rarely_flags_news_paragraphs():
    """Clean prose never trained on: article-benchmark paragraphs (news, blogs)."""
    import json

    from refinery.models.textnorm import paragraphs

    truth = json.loads(shared("extraction", "article_benchmark", "ground-truth.json").read_text(encoding="utf-8"))
    paras = [p for rec in truth.values() for p in paragraphs(rec["articleBody"]) if len(p) >= 20]
    scores = ToxicityModel(DEFAULT_ROOT / "toxicity" / "en", "en").scores(paras)
    assert len(paras) > 1000
    assert sum(s >= 0.5 for s in scores) / len(paras) <= 0.01  # acceptance (issue 14): <= 1% at web-en's 0.5


def test_acceptance_chinese_cold_dev_roc_auc():
    dev = read_labelled("cold", shared("toxicity", "cold_zh", "dev.csv"))
    model = ToxicityModel(DEFAULT_ROOT / "toxicity" / "zh", "zh")
    assert roc_auc([y for _, y in dev], model.scores([t for t, _ in dev])) >= 0.80


@pytest.mark.slow
def test_refinery_run_on_real_pages_records_model_versions(tmp_path):
    from refinery.batch import run_batch
    from refinery.pipeline_files import resolve
    from refinery.store import CorpusStore

    warc = shared("warc", "real_pages", "pages-004.warc.gz")
    store = CorpusStore(tmp_path / "store")
    outcome = run_batch(resolve("web-en"), [str(warc)], store)
    rec = outcome.record
    assert rec.models["perplexity"]["en"]["version"] == read_manifest(DEFAULT_ROOT / "lm" / "en", "lm", "en")["version"]
    assert rec.models["toxicity"]["en"]["name"] == "toxicity-en"
    assert rec.counters["perplexity"]["in"] > 0 and rec.counters["toxicity"]["in"] > 0
    shard = pq.read_table(store.shard_paths(rec.commit)[0])
    assert set(shard.column("ppl_bucket").to_pylist()) <= {"head", "middle"}  # web-en drops the tail
    assert all(t is not None and t < 0.5 for t in shard.column("toxicity").to_pylist())
