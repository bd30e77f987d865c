"""The quality_classifier stage and `refinery models build-quality`: behaviour, bad input, determinism."""

from __future__ import annotations

import dataclasses
import gzip
import json
from pathlib import Path

import pyarrow as pa
import pytest

from conftest import shared
from refinery.config import parse_pipeline
from refinery.counters import Counters
from refinery.errors import ConfigError, InputError
from refinery.build.quality import QualityBuildOptions, build_quality
from refinery.models.quality import QualityModel, bucket_of, threshold_for_fraction
from refinery.models.registry import DEFAULT_ROOT, read_manifest
from refinery.runner import PipelineRunner
from refinery.schema import INPUT_SCHEMA, REJECT_SCHEMA
from refinery.stages.quality_classifier import QualityClassifierOptions, QualityClassifierStage

PROSE = (
    "The European lobster is a species of clawed lobster from the eastern Atlantic Ocean, the Mediterranean Sea and "
    "parts of the Black Sea. It is closely related to the American lobster. It may grow to a length of 60 centimetres "
    "and a mass of 6 kilograms, and bears a conspicuous pair of claws."
)
NAV = "Home\nAbout us\nLogin\nSign up\nCart (0)\nPrivacy Policy\nTerms of Service\nCookie settings\nFollow us on Facebook\n© 2025 All rights reserved"


def stage(**opts) -> QualityClassifierStage:
    s = QualityClassifierStage(QualityClassifierOptions(**opts))
    s.setup()
    return s


def batch(texts, langs) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({"text": texts, "language": langs})


def test_bucket_and_fraction_arithmetic():
    pcts = [i / 100 for i in range(101)]  # a uniform calibration sample
    assert [bucket_of(s, pcts) for s in (0.0, 0.049, 0.05, 0.5, 0.949, 0.95, 1.0)] == [0, 0, 1, 10, 18, 19, 19]
    assert threshold_for_fraction(0.1, pcts) == pytest.approx(0.9)
    assert threshold_for_fraction(0.25, pcts) == pytest.approx(0.75)


def test_scores_buckets_and_unmodelled_language():
    s = stage()
    r = s.process(batch([PROSE, NAV, "Bonjour à tous, quelle belle journée.", None, "今天天气很好，我们去公园散步。"], ["en", "en", "fr", "en", "zh"]))
    score = r.records.column("quality_score").to_pylist()
    bucket = r.records.column("quality_bucket").to_pylist()
    assert r.reasons == [None] * 5  # score only by default
    assert score[0] > score[1] and bucket[0] > bucket[1]
    assert all(0 <= b <= 19 for b in (bucket[0], bucket[1], bucket[4]))
    assert score[2] is None and bucket[2] is None and score[3] is None  # no fr model; no text
    assert r.records.schema.field("quality_bucket").type == pa.int8()


def test_threshold_keep_top_fraction_and_min_bucket():
    texts, langs = [PROSE, NAV], ["en", "en"]
    low, high = stage().process(batch(texts, langs)).records.column("quality_score").to_pylist()[::-1]
    mid = (low + high) / 2
    assert stage(threshold=mid).process(batch(texts, langs)).reasons == [None, "low_quality"]
    m = QualityModel(DEFAULT_ROOT / "quality" / "en", "en")
    t10 = threshold_for_fraction(0.1, m.percentiles)
    r = stage(keep_top_fraction=0.1).process(batch(texts, langs))
    expected = [None if s >= t10 else "low_quality" for s in (high, low)]
    assert r.reasons == expected and r.reasons[1] == "low_quality"
    assert r.details[1] == f"quality_score={low:.4f}<{t10:.4f} (keep_top_fraction 0.1)"  # rule, value, threshold
    b = m.bucket(low)
    by_bucket = stage(min_bucket=b + 1).process(batch([NAV], ["en"]))
    assert by_bucket.reasons == ["low_quality_bucket"] and by_bucket.details == [f"quality_bucket={b}<{b + 1} (min_bucket)"]
    assert stage(min_bucket=b).process(batch([NAV], ["en"])).reasons == [None]


def test_bad_options_and_missing_model_name_the_build_command():
    with pytest.raises(ConfigError) as e:
        parse_pipeline({"name": "x", "stages": [{"quality_classifier": {"languages": ["de"]}}]}, "p.yaml")
    assert "refinery models build-quality --lang de" in str(e.value)
    with pytest.raises(ConfigError, match="threshold or keep_top_fraction"):
        parse_pipeline({"name": "x", "stages": [{"quality_classifier": {"threshold": 0.5, "keep_top_fraction": 0.5}}]}, "p.yaml")
    with pytest.raises(ConfigError, match="min_bucket"):
        parse_pipeline({"name": "x", "stages": [{"quality_classifier": {"min_bucket": 20}}]}, "p.yaml")
    with pytest.raises(ConfigError, match="out of order"):
        parse_pipeline({"name": "x", "stages": [{"quality_classifier": {}}, {"toxicity": {}}]}, "p.yaml")


def test_model_info_changes_with_calibration():
    info = QualityClassifierStage(QualityClassifierOptions(languages=["en"])).model_info()["quality"]["en"]
    m = read_manifest(DEFAULT_ROOT / "quality" / "en", "quality", "en")
    assert info["version"] == m["version"] and info["sha256"] == m["files"]["fasttext"]["sha256"]
    assert len(info["calibration_sha256"]) == 64
    assert "stack" in m["files"] and info["stack_sha256"] == m["files"]["stack"]["sha256"]  # the second stage is recorded too
    # calibrated on WCXB pages, never on those of the held-out domains bench/quality_bench.py scores
    wcxb = [s for s in m["calibration"]["sources"] if s["format"].startswith("wcxb")]
    assert wcxb and all(s["heldout_dropped"] > 0 for s in wcxb)


def _input_batch(texts):
    n = len(texts)
    return pa.RecordBatch.from_pydict(
        {"doc_id": [f"d{i}" for i in range(n)], "url": [None] * n, "source_uri": ["mem"] * n,
         "record_id": [str(i) for i in range(n)], "fetch_time": [None] * n, "html": [None] * n,
         "http_charset": [None] * n, "text": texts, "read_error": [None] * n},
        schema=INPUT_SCHEMA,
    )  # fmt: skip


def test_scores_reach_shards_rejects_and_annotate():
    nav = "Home. About us. Login. Sign up. Cart. Privacy Policy. Terms of Service. Cookie settings. Follow us on Facebook."
    scores = stage().process(batch([PROSE, nav], ["en", "en"])).records.column("quality_score").to_pylist()
    cfg = parse_pipeline(
        {"name": "t", "stages": [{"langid": {"languages": ["en"]}},
                                 {"quality_classifier": {"languages": ["en"], "threshold": (scores[0] + scores[1]) / 2}}]}
    )  # fmt: skip
    out, rejects = PipelineRunner(cfg, "run").process(_input_batch([PROSE, nav]), Counters())
    assert out.column("doc_id").to_pylist() == ["d0"]
    assert out.column("quality_score")[0].as_py() == scores[0] and 0 <= out.column("quality_bucket")[0].as_py() <= 19
    assert rejects.schema == REJECT_SCHEMA
    rej = rejects.to_pylist()[0]
    assert rej["stage"] == "quality_classifier" and rej["reason"] == "low_quality" and rej["quality_score"] == scores[1]
    assert rej["quality_bucket"] is not None
    ann, _ = PipelineRunner(cfg, "annotate").process(_input_batch([PROSE, nav]), Counters())
    assert ann.column("verdict").to_pylist() == ["keep", "quality_classifier:low_quality"]
    assert ann.column("quality_score").to_pylist() == scores


# ---------------------------------------------------------------- building on a tiny real sample


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    """~100 Wikipedia chunks + 30 WCXB gold texts (positives) and 30 other WCXB pages through extract (negatives)."""
    tmp = tmp_path_factory.mktemp("quality")
    wiki = tmp / "wiki.jsonl"
    with gzip.open(shared("lm_reference", "enwiki", "enwiki_2015_sample.jsonl.gz"), "rt", encoding="utf-8") as f:
        rows = [json.loads(next(f)) for _ in range(30)]
    wiki.write_text("".join(json.dumps({"text": r["text"][:6000]}) + "\n" for r in rows), encoding="utf-8")
    gt = shared("extraction", "wcxb_dev", "ground_truth.jsonl.gz")
    with gzip.open(gt, "rt", encoding="utf-8") as f:
        recs = [json.loads(line) for _, line in zip(range(70), f)]
    for r in recs:
        r["html_path"] = str(gt.parent / r["html_path"])  # absolute: the subset file lives elsewhere
    pos, neg = tmp / "pos.jsonl.gz", tmp / "neg.jsonl.gz"
    with gzip.open(pos, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in recs[:40])
    with gzip.open(neg, "wt", encoding="utf-8") as f:
        f.writelines(json.dumps(r) + "\n" for r in recs[40:])
    return tmp, [f"jsonl:{wiki}", f"wcxb:{pos}"], [f"wcxb-pages:{neg}"]


def _opts(tmp, pos, neg, out):
    return QualityBuildOptions(lang="en", positive=pos, negative=neg, out=tmp / out, heldout_domains_percent=30,
                               calibration=[pos[0]], epoch=2, lr=0.05, dim=8, cutoff=5_000, command="test")  # fmt: skip


def test_cli_build_on_tiny_real_sample_is_deterministic(tiny):
    from helpers import refinery

    tmp, pos, neg = tiny
    a = tmp / "root" / "quality" / "en"  # a model root's layout, for `models ls --root`
    proc = refinery("models", "build-quality", "--lang", "en", "--positive", *pos, "--negative", *neg,
                    "--calibration", pos[0], "--out", str(a), "--heldout-domains-percent", "30", "--epoch", "2", "--dim", "8",
                    "--cutoff", "5000", "--lr", "0.05")  # fmt: skip
    assert "wrote" in proc.stdout
    m = read_manifest(a, "quality", "en")
    assert m["kind"] == "quality" and m["split"]["train_negative"] > 0 and m["split"]["heldout_positive"] > 0
    assert len(m["calibration"]["percentiles"]) == 101 and len(m["calibration"]["bucket_edges"]) == 19
    assert 0.0 < m["metrics"]["heldout_main_vs_boilerplate"]["roc_auc"] <= 1.0
    assert any(s["class"] == "negative" and s["extract"] == {"favor_precision": True} for s in m["training_data"])
    assert all("licence" in s and "sha256" in s for s in m["training_data"])
    build_quality(_opts(tmp, pos, neg, "b"), log=lambda *a: None)
    assert (a / "en.ftz").read_bytes() == (tmp / "b" / "en.ftz").read_bytes()
    mb = read_manifest(tmp / "b", "quality", "en")
    assert mb["version"] == m["version"] and mb["calibration"] == m["calibration"]
    ls = refinery("models", "ls", "--root", str(tmp / "root")).stdout
    assert "quality" in ls and "quality-en" in ls and m["version"] in ls


def test_bad_training_input_names_the_file(tiny, tmp_path):
    _, pos, neg = tiny
    csv = tmp_path / "rows.csv"
    csv.write_text("text,label\nhello there,1\n", encoding="utf-8")
    with pytest.raises(InputError, match=str(csv)):
        build_quality(_opts(tmp_path, [f"jsonl:{csv}"], neg, "x"), log=lambda *a: None)
    notext = tmp_path / "notext.jsonl"
    notext.write_text(json.dumps({"body": "x" * 100}) + "\n", encoding="utf-8")
    with pytest.raises(InputError, match=f"{notext}.*'text'"):
        build_quality(_opts(tmp_path, [f"jsonl:{notext}"], neg, "x"), log=lambda *a: None)
    empty = tmp_path / "empty.txt"
    empty.write_text("\n\n", encoding="utf-8")
    with pytest.raises(InputError, match=f"--negative.*{empty}"):
        build_quality(_opts(tmp_path, pos, [f"lines:{empty}"], "x"), log=lambda *a: None)
    with pytest.raises(InputError, match="FORMAT:FILE"):
        build_quality(_opts(tmp_path, pos, [f"csv:{csv}"], "x"), log=lambda *a: None)
    html = tmp_path / "notes.txt"
    html.write_text("not a page", encoding="utf-8")
    with pytest.raises(InputError, match=str(html)):
        build_quality(_opts(tmp_path, pos, [f"pages:{html}"], "x"), log=lambda *a: None)
    assert not (tmp_path / "x" / "manifest.json").exists()


# ---------------------------------------------------------------- second stage: structure features, stacker


def test_structure_features_tell_a_menu_from_prose():
    from refinery.models.quality_features import NAMES, features

    prose = dict(zip(NAMES, features(PROSE, "en")))
    menu = dict(zip(NAMES, features(NAV + "\nHome\nHome", "en")))
    assert prose["short_lines"] == 0.0 and menu["short_lines"] == 1.0
    assert prose["punct_lines"] == 1.0 and menu["punct_lines"] == 1 / 12  # "Cart (0)" ends in ")"
    assert prose["link_like_lines"] == 0.0 and menu["link_like_lines"] == 11 / 12
    assert menu["repeated_lines"] == pytest.approx(3 / 12)  # "Home" three times among 12 lines
    assert prose["function_words"] > 0.3 > menu["function_words"]
    assert menu["title_case_words"] > 0.5 > prose["title_case_words"]
    assert features("", "en") == [0.0] * len(NAMES)
    bullets = dict(zip(NAMES, features("- one thing\n- another thing\n3. a third\nplain line", "en")))
    assert bullets["bullet_lines"] == 0.75


def test_stacker_round_trip_and_bad_files(tmp_path):
    from refinery.errors import ModelError
    from refinery.models.quality_stack import FIRST, Stacker, fit_stacker, stack_row

    texts = [PROSE, PROSE.replace(".", ""), NAV, NAV.replace("\n", " ")] * 5
    rows = [stack_row(p, t, "en") for p, t in zip([0.9, 0.7, 0.2, 0.4] * 5, texts)]
    st = fit_stacker(rows, [1, 1, 0, 0] * 5, l2=0.1)
    path = tmp_path / "en.stack.json"
    path.write_text(st.to_json(), encoding="utf-8")
    loaded = Stacker.load(path)
    assert loaded.names[0] == FIRST and len(loaded.weights) == len(loaded.names) + 1
    s = loaded.scores([0.9, 0.2], [PROSE, NAV], "en")
    assert s[0] > s[1] and all(0.0 <= x <= 1.0 for x in s)
    obj = json.loads(path.read_text(encoding="utf-8"))
    path.write_text(json.dumps(obj | {"names": obj["names"][:-1]}), encoding="utf-8")
    with pytest.raises(ModelError, match="rebuild"):
        Stacker.load(path)
    path.write_text("not json", encoding="utf-8")
    with pytest.raises(ModelError, match="not a quality stacker"):
        Stacker.load(path)


def test_stacked_build_is_deterministic_and_scores_as_built(tiny):
    tmp, pos, neg = tiny
    a, b = (dataclasses.replace(_opts(tmp, pos, neg, name), stack=True, stack_l2=0.3) for name in ("sa", "sb"))
    ma = build_quality(a, log=lambda *x: None)
    build_quality(b, log=lambda *x: None)
    for f in ("en.ftz", "en.stack.json", "manifest.json"):
        assert (a.out / f).read_bytes() == (b.out / f).read_bytes(), f
    assert ma["files"]["stack"]["path"] == "en.stack.json" and ma["params"]["stack_l2"] == 0.3
    m = QualityModel(a.out, "en")
    assert m.stacker is not None and m.info["stack_sha256"] == ma["files"]["stack"]["sha256"]
    # the recorded percentiles are of the stacked score: re-scoring the calibration rows reproduces them
    from refinery.models.quality import percentiles, score_texts
    from refinery.build.quality_data import read_docs

    cal = read_docs("jsonl", Path(pos[0].partition(":")[2]), "en")
    assert percentiles(m.scores([d.text for d in cal])) == ma["calibration"]["percentiles"]
    assert m.scores([PROSE, NAV]) != score_texts(m.model, None, [PROSE, NAV], "en")  # not fastText's P(hq) alone


def test_calibration_leaves_out_heldout_wcxb_domains(tiny):
    from refinery.build.quality import read_calibration
    from refinery.build.quality_data import is_heldout, read_docs

    _, _, neg = tiny
    path = Path(neg[0].partition(":")[2])
    docs, sources = read_calibration([neg[0]], "en", 10, 30)
    everything = read_docs("wcxb-pages", path, "en")
    assert docs and all(not is_heldout(d, 10, 30) for d in docs)
    assert sources[0]["heldout_dropped"] == sum(is_heldout(d, 10, 30) for d in everything) > 0
    assert len(docs) + sources[0]["heldout_dropped"] == len(everything)
