"""Model building blocks: normalisation, metrics, the shipped models' manifests, the build commands."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from conftest import shared
from refinery.cli import main
from refinery.errors import InputError, ModelError
from refinery.models import file_sha256
from refinery.models.lm import Cutoffs, LanguageModel, is_heldout, parse_corpus_spec, percentiles, read_corpus, shuffled
from refinery.models.metrics import classification_report, roc_auc
from refinery.models.registry import (
    DEFAULT_ROOT, available, kenlm_tool, missing_model_message, read_manifest, resolve_models,
)  # fmt: skip
from refinery.models.textnorm import detokenize_wikitext, normalize
from refinery.models.toxicity import preprocess, read_labelled

LM_LANGS = {"en", "zh", "de", "fr", "es", "ru"}


def test_normalize_like_cc_net():
    assert normalize("  Héllo,  Wörld 2024！ “Ça” — fin… ") == 'hello, world 0000! "ca" - fin...'
    assert normalize("《战国无双3》，是") == '"战国无双0",是'
    assert normalize("") == ""


def test_detokenize_wikitext():
    line = "The game 's cost was US $ 1 @,@ 000 ( about <unk> ) , a well @-@ known fact ."
    assert detokenize_wikitext(line) == "The game's cost was US $1,000 (about), a well-known fact."


def test_roc_auc_hand_checked():
    # pairs (pos, neg): (0.35>0.1) (0.35<0.4) (0.8>0.1) (0.8>0.4) -> 3/4
    assert roc_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8]) == pytest.approx(0.75)
    assert roc_auc([0, 1], [0.5, 0.5]) == pytest.approx(0.5)  # a tie counts half
    rep = classification_report([0, 0, 1, 1], [0.1, 0.6, 0.7, 0.2], 0.5)
    assert (rep["precision"], rep["recall"]) == (0.5, 0.5)
    with pytest.raises(ValueError):
        roc_auc([1, 1], [0.2, 0.3])


def test_cutoffs_and_percentiles():
    c = Cutoffs(head=100.0, tail=200.0)
    assert [c.bucket(x) for x in (50, 100, 100.1, 200, 200.1)] == ["head", "head", "middle", "middle", "tail"]
    p = percentiles([float(x) for x in range(1, 102)])  # 1..101
    assert p[0] == 1 and p[30] == 31 and p[60] == 61 and p[100] == 101


def test_shuffle_keeps_the_material():
    text = "one two three four five six"
    s = shuffled(text, "en", 3)
    assert sorted(s.split()) == sorted(text.split()) and s != text
    zh = shuffled("我们今天去北京", "zh", 1)
    assert sorted(zh) == sorted("我们今天去北京")


def test_heldout_split_is_deterministic_and_case_insensitive():
    assert is_heldout("Some Paragraph.", 10) == is_heldout("some paragraph.", 10)
    words = "alpha beta gamma delta epsilon zeta eta theta iota kappa".split()
    paras = [f"{a} {b} {c} {d}" for a in words for b in words for c in words for d in words[:2]]
    share = sum(is_heldout(p, 10) for p in paras) / len(paras)
    assert 0.07 < share < 0.13


def test_toxicity_preprocess():
    assert preprocess("@bob You IDIOT!!! http://x.co/a", "en") == "_user_ you idiot ! ! ! _url_"
    assert preprocess("你是傻瓜 ok", "zh") == "你 是 傻 瓜 ok"


def test_shipped_models_manifests_and_size():
    assert LM_LANGS <= set(available(DEFAULT_ROOT, "lm"))
    assert {"en", "zh"} <= set(available(DEFAULT_ROOT, "toxicity"))
    total = sum(f.stat().st_size for f in DEFAULT_ROOT.rglob("*") if f.is_file())
    assert total <= 100_000_000, f"default models take {total} bytes"  # issue 14: 100 MB for all shipped models
    for kind in ("lm", "toxicity"):
        for lang in available(DEFAULT_ROOT, kind):
            d = DEFAULT_ROOT / kind / lang
            m = read_manifest(d, kind, lang)
            assert m["language"] == lang and m["command"].startswith(f"refinery models build-{'lm' if kind == 'lm' else 'toxicity'} --lang {lang}")
            for f in m["files"].values():
                assert file_sha256(str(d / f["path"])) == f["sha256"]
            for src in m["training_data"]:
                assert len(src["sha256"]) == 64 and src["licence"] and src["source"]
            assert m["metrics"]
            if kind == "lm":
                cal = m["calibration"]
                assert cal["head_cutoff"] < cal["tail_cutoff"] and cal["documents"] >= 30


def test_missing_model_is_a_clear_error(tmp_path):
    with pytest.raises(ModelError) as e:
        resolve_models("lm", "default", ["it"])
    assert "refinery models build-lm --lang it" in str(e.value)
    with pytest.raises(ModelError) as e:
        resolve_models("toxicity", str(tmp_path), None)
    assert "refinery models build-toxicity" in str(e.value)
    with pytest.raises(ModelError, match="does not exist"):
        resolve_models("lm", str(tmp_path / "nope"), None)
    assert "build-lm --lang xx" in missing_model_message("lm", "xx", tmp_path)


def test_corrupt_model_directory_is_reported(tmp_path):
    d = tmp_path / "lm" / "en"
    shutil.copytree(DEFAULT_ROOT / "lm" / "en", d)
    (d / "en.klm").unlink()
    with pytest.raises(ModelError, match="en.klm"):
        LanguageModel(d, "en")


def _need_kenlm():
    try:
        kenlm_tool("lmplz"), kenlm_tool("build_binary")
    except ModelError as err:
        pytest.skip(f"KenLM tools not built ({err}); deploy/setup.sh builds them")


def test_build_lm_command(tmp_path, capsys):
    _need_kenlm()
    corpus = shared("lm_reference", "text", "es_wiki_xquad.txt")
    out = tmp_path / "es"
    assert main(["models", "build-lm", "--lang", "es", "--corpus", str(corpus), "--vocab-size", "2000", "--heldout-percent", "20", "--out", str(out)]) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert m["training_data"][0]["sha256"] == file_sha256(str(corpus))
    assert m["command"] == f"refinery models build-lm --lang es --corpus {corpus} --vocab-size 2000 --heldout-percent 20 --out {out}"
    assert "CC BY-SA 4.0" in m["training_data"][0]["licence"]
    assert m["split"]["heldout_paragraphs"] > 5
    assert m["metrics"]["heldout_shuffled_median_perplexity"] > m["metrics"]["heldout_median_perplexity"]
    assert m["calibration"]["sample"].startswith("held-out")
    model = LanguageModel(out, "es")
    assert model.bucket(model.perplexity("El río Amazonas es el más largo de América del Sur.")) in ("head", "middle", "tail")


def test_build_lm_rejects_bad_input(tmp_path, capsys):
    assert main(["models", "build-lm", "--lang", "en", "--corpus", str(tmp_path / "missing.txt"), "--out", str(tmp_path / "o")]) == 2
    assert "corpus file" in capsys.readouterr().err


def test_build_toxicity_command(tmp_path):
    src = shared("toxicity", "davidson_en", "data", "labeled_data.csv")
    rows = read_labelled("davidson", src)[:4000]
    data = tmp_path / "rows.jsonl"
    data.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows))
    out = tmp_path / "tox"
    assert main(["models", "build-toxicity", "--lang", "en", "--data", f"jsonl:{data}", "--epoch", "5", "--no-quantize", "--out", str(out)]) == 0  # quantising takes ~1 min
    m = json.loads((out / "manifest.json").read_text())
    held = m["metrics"]["heldout"]
    assert held["rows"] == m["split"]["heldout_rows"] > 200
    assert held["rows"] + m["split"]["train_rows"] <= 4000
    assert held["roc_auc"] > 0.8 and 0 < held["precision"] <= 1
    assert m["training_data"][0]["sha256"] == file_sha256(str(data))


def test_models_ls(capsys):
    assert main(["models", "ls"]) == 0
    out = capsys.readouterr().out
    assert "lm-en" in out and "toxicity-zh" in out


def test_udhr_corpus_selects_one_declaration_by_exact_name(tmp_path):
    """French and French (Welche) share the code fr: the spec names the declaration, not the code."""
    table = tmp_path / "udhr.tsv"
    table.write_text(
        "iso6393\tbcp47\tname\tstage\tcode\tidx\ttext\n"
        "fra\tfr\tFrench\t4\t1\t0\tConsidérant que la reconnaissance de la dignité...\n"
        "fra\tfr\tFrench (Welche)\t4\t2\t0\tKonsidérang k'lè rknachans...\n"
        "fra\tfr\tFrench\t4\t1\t1\tConsidérant que la méconnaissance...\n"
        "deu\tde\tGerman\t4\t3\t0\tDa die Anerkennung...\n",
        encoding="utf-8",
    )
    fmt, path = parse_corpus_spec(f"udhr:French:{table}")
    assert (fmt, path) == ("udhr:French", table)
    assert read_corpus(fmt, path) == [
        "Considérant que la reconnaissance de la dignité...", "Considérant que la méconnaissance..."
    ]
    with pytest.raises(InputError, match="no declaration named 'Frisian'"):
        read_corpus(*parse_corpus_spec(f"udhr:Frisian:{table}"))
    with pytest.raises(InputError, match="expected udhr:NAME:FILE"):
        parse_corpus_spec(f"udhr:{table}")
    (tmp_path / "plain.tsv").write_text("a\tb\n1\t2\n", encoding="utf-8")
    with pytest.raises(InputError, match="not a UDHR paragraph table"):
        read_corpus(*parse_corpus_spec(f"udhr:French:{tmp_path / 'plain.tsv'}"))
