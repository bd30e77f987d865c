"""`refinery validate`, range and language-code checks, every error at once (issue 19)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from helpers import REPO, cli_env, refinery
from refinery.config import parse_pipeline
from refinery.counters import Counters, in_pipeline_order
from refinery.errors import ConfigError
from refinery.langcodes import LID176_LABELS, suggest

BAD = """name: bad
stage:
  - extract: {}
stages:
  - extract: {prefilter_languages: [english]}
  - langid:
      languages: [german]
      min_scor: 0.5
  - quality:
      gopher_quality: {min_doc_words: -5}
      fineweb: {line_punct_thr: 1.5}
"""


def test_validate_reports_every_error_at_once(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text(BAD)
    out = refinery("validate", str(bad), "web-en", check=False)
    assert out.returncode == 2
    text = out.stdout
    assert "INVALID" in text and "ok      web-en" in text and "1 valid, 1 invalid" in text
    for expected in (
        "stage: unknown key (did you mean 'stages'?)",
        "stages[0].extract.prefilter_languages[0]: 'english' is not a language code lid.176 outputs (did you mean 'en'?)",
        "stages[1].langid.languages[0]: 'german' is not a language code lid.176 outputs (did you mean 'de'?)",
        "stages[1].langid.min_scor: unknown key (did you mean 'min_score'?)",
        "stages[2].quality.gopher_quality.min_doc_words: Input should be greater than or equal to 0 (got -5)",
        "stages[2].quality.fineweb.line_punct_thr: Input should be less than or equal to 1 (got 1.5)",
    ):
        assert expected in text, (expected, text)


def test_typo_of_stages_is_named():
    with pytest.raises(ConfigError) as e:
        parse_pipeline({"name": "x", "stage": ["extract"]}, "f.yaml")
    assert "f.yaml: stage: unknown key (did you mean 'stages'?)" in str(e.value)
    assert "f.yaml: stages: required" in str(e.value)


def test_language_codes_are_lid176_labels():
    from refinery.models import BUNDLED_LID, lid_model_path, load_fasttext

    model = load_fasttext(lid_model_path(BUNDLED_LID))
    assert {lab.removeprefix("__label__") for lab in model.get_labels()} == set(LID176_LABELS)
    assert (suggest("German"), suggest("en-US"), suggest("eng"), suggest("xx-qq")) == ("de", "en", "en", None)
    for opts in ({"langid": {"thresholds": {"fr": 1.5}}}, {"dedup": {"languages": {"thai": {"kind": "char"}}}}):
        with pytest.raises(ConfigError):
            parse_pipeline({"name": "x", "stages": [opts]})


def test_pipelines_lists_an_invalid_file_and_goes_on(tmp_path):
    (tmp_path / "aaa-broken.yaml").write_text("name: broken\nstages: [extrakt]\n")
    out = refinery("pipelines", check=False, REFINERY_PIPELINES_DIR=str(tmp_path))
    assert out.returncode == 1
    assert "aaa-broken" in out.stdout and "INVALID" in out.stdout and "did you mean 'extract'" in out.stdout
    assert "web-en " in out.stdout and "stages=extract,langid" in out.stdout


def test_shipped_path_outside_checkout_suggests_the_name(tmp_path):
    proc = subprocess.run(
        [sys.executable, "-m", "refinery.cli", "validate", "pipelines/web-en.yaml"],
        capture_output=True, text=True, env=cli_env(), cwd=tmp_path, timeout=120,
    )
    assert proc.returncode == 2 and "`--pipeline web-en`" in proc.stdout, proc.stdout + proc.stderr
    assert (REPO / "pipelines" / "web-en.yaml").exists()


def test_counters_in_pipeline_order_add_up():
    """Dedup's drops passed perplexity in the workers: in its place, later stages lose them."""
    workers = Counters.from_dict({
        "read": {"in": 10, "out": 10, "dropped": {}, "seconds": 0},
        "dedup": {"in": 2, "out": 0, "dropped": {"exact_raw": 2}, "seconds": 0.1},
        "extract": {"in": 8, "out": 7, "dropped": {"empty": 1}, "seconds": 1},
        "quality": {"in": 7, "out": 6, "dropped": {"gopher_stop_words": 1}, "seconds": 1},
        "perplexity": {"in": 6, "out": 5, "dropped": {"bucket_tail": 1}, "seconds": 1},
    })  # fmt: skip
    c = in_pipeline_order(workers, ["extract", "quality", "dedup", "perplexity"], {"near": 2}).to_dict()
    assert list(c) == ["read", "extract", "quality", "dedup", "perplexity"]
    assert c["dedup"] == {"in": 8, "out": 4, "dropped": {"exact_raw": 2, "near": 2}, "seconds": 0.1}
    assert (c["perplexity"]["in"], c["perplexity"]["out"]) == (4, 3)
    for name, s in c.items():
        assert s["in"] == s["out"] + sum(s["dropped"].values()), name


def test_limit_cuts_units_to_the_first_records():
    from refinery.readers import InputFile, WorkUnit
    from refinery.trial import limit_units

    f = InputFile(path="/nonexistent.jsonl", format="jsonl", size=1, digest="d")
    units = [WorkUnit(0, f, 0, 4), WorkUnit(1, f, 4, 4), WorkUnit(2, f, 8, 4)]
    cut = limit_units(units, 6)
    assert [(u.index, u.start, u.count) for u in cut] == [(0, 0, 4), (1, 4, 2)]


def test_output_into_a_closed_pipe_ends_quietly():
    """`refinery ... | head`: the reader leaves; no BrokenPipeError traceback, exit 0."""
    env = {k: v for k, v in cli_env().items() if k != "PYTHONUNBUFFERED"}  # buffered, as in a shell pipe
    proc = subprocess.Popen([sys.executable, "-m", "refinery.cli", "validate", "-v", "web-en", "web-multilingual"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, env=env, cwd=REPO)  # fmt: skip
    proc.stdout.close()  # before the command writes anything
    err = proc.stderr.read().decode()
    assert proc.wait(120) == 0, err
    assert "BrokenPipe" not in err and "Traceback" not in err, err
