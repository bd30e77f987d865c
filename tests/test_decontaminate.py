"""decontaminate: index build/load, planted items caught, clean pages not, options, errors, the shipped index."""

from __future__ import annotations

import json
import random
from pathlib import Path

import pyarrow as pa
import pytest
import zstandard

from conftest import shared
from refinery.config import parse_pipeline
from refinery.counters import Counters
from refinery.decont.index import IndexParams, build_index, items_from_files, load_index, save_index
from refinery.decont.sets import read_items
from refinery.errors import ConfigError
from refinery.runner import PipelineRunner
from refinery.pipeline_files import resolve
from refinery.schema import INPUT_SCHEMA
from refinery.stages.decontaminate import DEFAULT_INDEX, DecontaminateOptions, DecontaminateStage

ITEMS = [
    {"benchmark": "quiz", "split": "test", "id": "q1",
     "text": "Which planet in our solar system has the longest day measured in Earth hours?\nVenus\nMars\nJupiter\nMercury"},
    {"benchmark": "quiz", "split": "test", "id": "q2",
     "text": "A farmer plants 12 rows of corn with 35 stalks in each row; how many stalks does the farmer plant in total? 420"},
    {"benchmark": "quiz", "split": "dev", "id": "short", "text": "Sort these words: apple zebra mango kiwi lemon"},
    {"benchmark": "quiz", "split": "dev", "id": "tiny", "text": "not true is false"},
    {"benchmark": "zhq", "split": "test", "id": "z1", "text": "下列哪一个城市是中华人民共和国的首都并且位于华北平原的北部边缘"},
]  # fmt: skip
HOST = ("The weather was mild all week, and the market on the square sold apples, pears and bread.\n"
        "Local musicians played in the evening while children ran between the stalls.\n") * 3


def _sets(tmp_path: Path, rows=ITEMS) -> Path:
    p = tmp_path / "sets.jsonl"
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return p


def _built(tmp_path: Path) -> Path:
    index, stats = build_index(items_from_files([_sets(tmp_path)]), IndexParams())
    out = tmp_path / "index"
    save_index(index, stats, [{"path": "sets.jsonl"}], out, "test")
    return out


def _batch(texts, langs=None) -> pa.RecordBatch:
    n = len(texts)
    return pa.RecordBatch.from_pydict({"doc_id": [str(i) for i in range(n)], "text": texts,
                                       "language": langs or [None] * n})  # fmt: skip


def _stage(**opts) -> DecontaminateStage:
    stage = DecontaminateStage(DecontaminateOptions.model_validate(opts))
    stage.setup()
    return stage


def test_planted_items_caught_reformatted_clean_text_not(tmp_path):
    stage = _stage(index=str(_built(tmp_path)))
    q1, q2 = ITEMS[0]["text"], ITEMS[1]["text"]
    texts = [
        HOST + q1 + "\n" + HOST,  # verbatim, embedded
        HOST + q1.upper().replace("?", "").replace("\n", "   ") + HOST,  # case, punctuation, whitespace
        HOST + q2.replace(";", " -").replace(",", "") + HOST,
        HOST + "Quiz: sort these words -- Apple, zebra, mango, kiwi, lemon!" + HOST,  # short item, all 8 tokens
        HOST + "Which planet in our solar system has the longest day? Nobody knows." + HOST,  # 9 shared words < 13
        HOST + "not true is false",  # a too-short item is not indexed
        HOST,
        "北京是中华人民共和国的首都。下列哪一个城市是中华人民共和国的首都并且位于华北平原的北部边缘？",
    ]
    res = stage.process(_batch(texts, [None] * 7 + ["zh"]))
    by = res.records.column("contaminated_by").to_pylist()
    assert by == ["quiz:test:q1", "quiz:test:q1", "quiz:test:q2", "quiz:dev:short", None, None, None, "zhq:test:z1"]
    assert res.reasons[:4] == ["contaminated:quiz"] * 4 and res.reasons[4:7] == [None] * 3
    assert "quiz:test:q1 (" in res.details[0]


def test_mark_keeps_documents_and_coverage_threshold(tmp_path):
    idx = str(_built(tmp_path))
    half = HOST + " ".join(ITEMS[0]["text"].split()[:14]) + HOST  # 2 of the item's 5 13-grams
    marked = _stage(index=idx, action="mark").process(_batch([half, HOST + ITEMS[0]["text"]]))
    assert marked.reasons == [None, None]
    assert marked.records.column("contaminated_by").to_pylist() == [None, "quiz:test:q1"]
    assert marked.counts == {"marked:quiz": 1}  # counted for the metrics, though nothing is dropped
    literal = _stage(index=idx, min_coverage=0.0).process(_batch([half]))
    assert literal.reasons == ["contaminated:quiz"]


def test_build_is_deterministic_and_holds_no_item_text(tmp_path):
    a, b = tmp_path / "a", tmp_path / "b"
    a.mkdir()
    b.mkdir()
    files = [sorted(p.read_bytes() for p in _built(d).iterdir()) for d in (a, b)]
    assert files[0] == files[1]
    blob = b"".join(zstandard.ZstdDecompressor().decompress(p.read_bytes()) for p in (a / "index").glob("*.zst"))
    for item in ITEMS:
        for word in ("planet", "farmer", "zebra"):
            assert word.encode() not in blob
    m = json.loads((a / "index" / "manifest.json").read_text())
    assert m["sets"]["quiz"]["skipped_short"] == 1 and m["sets"]["quiz"]["indexed_short"] == 1


def test_sets_option_builds_at_load_and_caches(tmp_path, monkeypatch):
    monkeypatch.setenv("REFINERY_CACHE_DIR", str(tmp_path / "cache"))
    sets = _sets(tmp_path)
    s1 = _stage(sets=[str(sets)])
    cached = list((tmp_path / "cache" / "decont").iterdir())
    assert len(cached) == 1 and (cached[0] / "manifest.json").is_file()
    s2 = _stage(sets=[str(sets)])
    assert list((tmp_path / "cache" / "decont").iterdir()) == cached
    assert s1.process(_batch([HOST + ITEMS[1]["text"]])).reasons == s2.process(_batch([HOST + ITEMS[1]["text"]])).reasons == ["contaminated:quiz"]


def test_malformed_set_file_is_a_load_time_error_naming_file_and_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps(ITEMS[0]) + "\n" + '{"benchmark": "x", "id": "2"}\n', encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.jsonl:2: 'text' must be a non-empty string|bad\.jsonl:2: 'text'"):
        parse_pipeline({"name": "t", "stages": [{"decontaminate": {"sets": [str(p)]}}]})
    p.write_text(json.dumps(ITEMS[0]) + "\n\n{not json\n", encoding="utf-8")
    with pytest.raises(ConfigError, match=r"bad\.jsonl:3: not JSON"):
        parse_pipeline({"name": "t", "stages": [{"decontaminate": {"sets": [str(p)]}}]})
    with pytest.raises(ConfigError, match="exactly one of"):
        parse_pipeline({"name": "t", "stages": [{"decontaminate": {}}]})
    with pytest.raises(ConfigError, match="n=8 but the index"):
        parse_pipeline({"name": "t", "stages": [{"decontaminate": {"index": "default", "n": 8}}]})


def test_runner_drops_into_rejects_and_annotate_marks(tmp_path):
    cfg = parse_pipeline({"name": "t", "stages": ["extract", {"decontaminate": {"index": str(_built(tmp_path))}}]})
    rows = [{"doc_id": "a", "url": "u", "source_uri": "s", "record_id": "1", "text": HOST + ITEMS[0]["text"]},
            {"doc_id": "b", "url": "u", "source_uri": "s", "record_id": "2", "text": HOST}]
    batch = pa.RecordBatch.from_pylist(rows, schema=INPUT_SCHEMA)
    counters = Counters()
    out, rejects = PipelineRunner(cfg, "run").process(batch, counters)
    assert out.column("doc_id").to_pylist() == ["b"] and out.column("contaminated_by").to_pylist() == [None]
    rej = rejects.to_pylist()
    assert [(r["stage"], r["reason"]) for r in rej] == [("decontaminate", "contaminated:quiz")]
    assert counters.stage("decontaminate").dropped == {"contaminated:quiz": 1}
    ann, _ = PipelineRunner(cfg, "annotate").process(batch, Counters())
    assert ann.column("verdict").to_pylist() == ["decontaminate:contaminated:quiz", "keep"]
    assert ann.column("contaminated_by").to_pylist() == ["quiz:test:q1", None]


def test_shipped_index_manifest_and_web_en():
    spec = resolve("web-en").stage("decontaminate")
    assert spec is not None and spec.options.index == "default"
    m = json.loads((DEFAULT_INDEX / "manifest.json").read_text())
    assert {"mmlu", "gsm8k", "truthfulqa", "humaneval", "bbh"} <= set(m["sets"])
    for s in m["sets"].values():
        assert s["version"] != "unknown" and s["licence"] and not s["licence"].startswith("unknown")
    assert m["params"]["n"] == 13 and "never the items' text" in m["contains"]
    info = DecontaminateStage(spec.options).model_info()["decontaminate"]
    assert info["index"] == m["version"] and "mmlu" in info["sets"]


def test_shipped_index_catches_real_items_and_spares_real_pages():
    """A sample of the real benchmark items planted in real page text; the same pages alone are clean."""
    items = list(read_items(shared("decontamination", "decontam_texts.jsonl.gz")))[::97]
    gt = shared("extraction", "wcxb_dev", "ground_truth.jsonl.gz")
    import gzip

    rows = (json.loads(ln) for ln in gzip.open(gt, "rt", encoding="utf-8"))
    pages = [r["main_content"] for r in rows if r.get("main_content")][:300]
    stage = _stage(index="default", action="mark")
    clean = [t for i in range(0, len(pages), 64) for t in stage.process(_batch(pages[i : i + 64])).records.column("contaminated_by").to_pylist()]
    assert clean == [None] * len(pages)
    rng = random.Random(3)
    docs = []
    for k, it in enumerate(items):
        text = (it.text, it.text.upper(), it.text.replace("\n", "  ").replace("?", ""))[k % 3]
        paras = pages[k % len(pages)].split("\n")
        at = rng.randrange(len(paras) + 1)
        docs.append("\n".join(paras[:at] + [text] + paras[at:]))
    got = [t for i in range(0, len(docs), 64) for t in stage.process(_batch(docs[i : i + 64])).records.column("contaminated_by").to_pylist()]
    caught = sum(g is not None and g.split(":")[0] == it.benchmark for g, it in zip(got, items))
    assert caught / len(items) >= 0.99, (caught, len(items))


def test_both_stages_counted_in_service_metrics(tmp_path):
    """Per-unit counters of a run with url_filter and decontaminate reach /metrics by stage and reason."""
    from prometheus_client import generate_latest

    from refinery.service.metrics import ServiceMetrics
    from refinery.service.queue import BatchQueue
    from refinery.store import CorpusStore

    (tmp_path / "lists").mkdir()
    (tmp_path / "lists" / "d").write_text("blocked.example\n")
    cfg = parse_pipeline({"name": "t", "stages": [
        {"url_filter": {"root": str(tmp_path / "lists"), "block": {"spam": {"domains": ["d"]}}}},
        "extract", {"decontaminate": {"index": str(_built(tmp_path))}},
    ]})  # fmt: skip
    rows = [{"doc_id": "a", "url": "http://x.blocked.example/", "source_uri": "s", "record_id": "1", "text": HOST},
            {"doc_id": "b", "url": "http://fine.example/", "source_uri": "s", "record_id": "2", "text": HOST + ITEMS[1]["text"]},
            {"doc_id": "c", "url": "http://fine.example/2", "source_uri": "s", "record_id": "3", "text": HOST}]
    counters = Counters()
    PipelineRunner(cfg, "run").process(pa.RecordBatch.from_pylist(rows, schema=INPUT_SCHEMA), counters)
    store = CorpusStore(tmp_path / "store")
    m = ServiceMetrics(store, BatchQueue(store.state_dir / "q.db"))
    m.unit_done("t", counters.to_dict())
    text = generate_latest(m.registry).decode()
    assert 'refinery_stage_documents_dropped_total{pipeline="t",reason="url:spam",stage="url_filter"} 1.0' in text
    assert 'refinery_stage_documents_dropped_total{pipeline="t",reason="contaminated:quiz",stage="decontaminate"} 1.0' in text
    assert 'refinery_stage_documents_in_total{pipeline="t",stage="extract"} 2.0' in text
