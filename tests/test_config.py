from pathlib import Path

import pytest

from refinery.config import load_pipeline, parse_pipeline
from refinery.errors import ConfigError
from refinery.pipeline_files import available, resolve

REPO = Path(__file__).resolve().parents[1]


def test_shipped_pipelines_load():
    names = available()
    assert {"web-en", "web-multilingual"} <= set(names)
    for path in names.values():
        cfg = load_pipeline(path)
        # url_filter, when configured, runs on the URL before extraction; extract comes next
        assert [s.name for s in cfg.stages if s.name != "url_filter"][0] == "extract"
    multi = resolve("web-multilingual")
    langs = set(multi.stage("langid").options.languages)
    assert {"en", "zh", "de", "fr", "es", "ru", "ja"} <= langs


def test_unknown_key_names_file_key_and_reason(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nstages:\n  - extract: {}\n  - langid:\n      min_scor: 0.5\n")
    with pytest.raises(ConfigError) as e:
        load_pipeline(p)
    msg = str(e.value)
    assert str(p) in msg and "stages[1].langid.min_scor" in msg and "unknown key" in msg


def test_bad_value_rejected(tmp_path):
    p = tmp_path / "bad.yaml"
    p.write_text("name: x\nstages:\n  - langid:\n      min_score: high\n")
    with pytest.raises(ConfigError) as e:
        load_pipeline(p)
    assert "stages[0].langid.min_score" in str(e.value)


def test_nested_unknown_key_and_top_level(tmp_path):
    with pytest.raises(ConfigError, match=r"stages\[0\]\.quality\.gopher_quality\.min_doc_wordz: unknown key"):
        parse_pipeline({"name": "x", "stages": [{"quality": {"gopher_quality": {"min_doc_wordz": 3}}}]}, "f.yaml")
    with pytest.raises(ConfigError, match=r"f.yaml: shardz: unknown key"):
        parse_pipeline({"name": "x", "shardz": {}, "stages": ["extract"]}, "f.yaml")
    with pytest.raises(ConfigError, match="unknown stage"):
        parse_pipeline({"name": "x", "stages": ["extrakt"]}, "f.yaml")
    with pytest.raises(ConfigError, match="out of order"):
        parse_pipeline({"name": "x", "stages": ["quality", "extract"]}, "f.yaml")


def test_config_hash_changes_with_thresholds():
    a = parse_pipeline({"name": "x", "stages": [{"langid": {"min_score": 0.5}}]})
    b = parse_pipeline({"name": "x", "stages": [{"langid": {"min_score": 0.6}}]})
    assert a.config_hash() != b.config_hash()
    assert a.config_hash() == parse_pipeline({"name": "x", "stages": [{"langid": {"min_score": 0.5}}]}).config_hash()
