"""The English toxicity ensemble: alt-profanity-check's linear member, source balancing, training order."""

from __future__ import annotations

import json
import math
import warnings

import pytest

from conftest import shared
from refinery.cli import main
from refinery.models.profanity_linear import LinearProfanityModel, export
from refinery.models.registry import DEFAULT_ROOT, read_manifest
from refinery.models.toxicity import ToxicityModel, _p_toxic, _write_fasttext_file, balance, mean_log_odds, preprocess, read_labelled

EDGE_CASES = ["", "the and of", "YOU ARE A STUPID IDIOT!!!", "Ünïcödé naïve café idiot", "a" * 5000, "fuck fuck fuck fuck", "42 1.5.3 2024-01-02"]


def _real_texts() -> list[str]:
    rows = read_labelled("davidson", shared("toxicity", "davidson_en", "data", "labeled_data.csv"))
    truth = json.loads(shared("extraction", "article_benchmark", "ground-truth.json").read_text(encoding="utf-8"))
    paras = [p for rec in list(truth.values())[:20] for p in rec["articleBody"].split("\n") if p.strip()]
    return [t for t, _ in rows[:400]] + paras + EDGE_CASES


def test_linear_member_scores_exactly_as_the_package(tmp_path):
    profanity_check = pytest.importorskip("profanity_check", reason="alt-profanity-check not installed (dev extra)")
    path = tmp_path / "apc.npz"
    info = export(path)
    assert info["package"] == "alt-profanity-check" and info["vocabulary"] > 10_000 and info["folds"] >= 2
    export(tmp_path / "again.npz")
    assert path.read_bytes() == (tmp_path / "again.npz").read_bytes()  # byte-identical rebuild
    texts = _real_texts()
    ours = LinearProfanityModel(path).scores(texts)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # scikit-learn's version notice about the package's pickle
        theirs = profanity_check.predict_prob(texts)
    assert max(abs(a - b) for a, b in zip(ours, theirs)) < 1e-9
    assert ours[texts.index("YOU ARE A STUPID IDIOT!!!")] > 0.9 and ours[texts.index("")] < 0.5


def test_shipped_ensemble_combines_its_members():
    d = DEFAULT_ROOT / "toxicity" / "en"
    m = read_manifest(d, "toxicity", "en")
    assert m["ensemble"]["package"] == "alt-profanity-check" and "MIT" in m["ensemble"]["licence_note"]
    model = ToxicityModel(d, "en")
    texts = _real_texts()[390:420]
    ft = _p_toxic(model.model, [preprocess(t, "en") for t in texts])
    lin = LinearProfanityModel(d / m["files"]["profanity_linear"]["path"]).scores(texts)
    assert model.scores(texts) == pytest.approx([min(1.0, max(0.0, p)) for p in mean_log_odds(ft, lin)], abs=1e-12)
    loso = m["metrics"]["leave_one_source_out"]
    assert "not a left-out one" in loso["model"] and set(loso["fasttext_member_roc_auc"]) >= {"olid_en", "gab_hate_en", "mean_roc_auc"}


def test_mean_log_odds():
    assert mean_log_odds([0.5, 0.9, 0.2], [0.5, 0.1, 0.2]) == pytest.approx([0.5, 0.5, 0.2])
    a, b = mean_log_odds([0.7], [0.99])[0], mean_log_odds([0.7], [0.999])[0]
    assert 0.7 < a < b < 0.99
    assert all(0 < p < 1 and not math.isnan(p) for p in mean_log_odds([0.0, 1.0, 1.0], [0.0, 1.0, 0.0]))


def test_balance_caps_large_and_repeats_small_classes():
    big = [(f"toxic {i}", 1) for i in range(50)] + [(f"clean {i}", 0) for i in range(2)]
    small = [(f"other {i}", 1) for i in range(5)]
    out = balance([("big", big), ("small", small)], cap=20)
    assert sum(1 for r in out if r[0].startswith("toxic")) == 20  # sampled down to the cap
    assert sum(1 for r in out if r[0].startswith("clean")) == 5  # 2 rows repeated up to cap // 4
    assert sum(1 for r in out if r[0].startswith("other")) == 5  # already at cap // 4: once each
    assert {r for r in out if r[0].startswith("clean")} == set(big[50:])
    assert sorted(balance([("big", big[::-1]), ("small", small)], cap=20)) == sorted(out)  # input order is irrelevant


def test_training_file_order_is_a_hash_order(tmp_path):
    rows = [(f"row number {i}", i % 2) for i in range(200)] + [("repeated row", 1)] * 3
    a, b = tmp_path / "a.txt", tmp_path / "b.txt"
    _write_fasttext_file(a, rows, "en")
    _write_fasttext_file(b, rows[::-1], "en")
    lines = a.read_text().splitlines()
    assert a.read_text() == b.read_text() and len(lines) == 203
    labels = [ln.split()[0] for ln in lines]
    assert labels[:100].count("__label__toxic") not in (0, 100)  # sources and classes interleaved, not in input order
    assert lines.count("__label__toxic repeated row") == 3


def _rows_file(tmp_path, name, fmt, path, n):
    rows = read_labelled(fmt, path)[:n]
    out = tmp_path / f"{name}.jsonl"
    out.write_text("".join(json.dumps({"text": t, "label": y}) + "\n" for t, y in rows), encoding="utf-8")
    return out


def test_build_toxicity_with_ensemble_and_balance(tmp_path, capsys):
    pytest.importorskip("profanity_check", reason="alt-profanity-check not installed (dev extra)")
    a = _rows_file(tmp_path, "davidson_part", "davidson", shared("toxicity", "davidson_en", "data", "labeled_data.csv"), 3000)
    b = shared("toxicity", "convabuse_en", "convabuse.jsonl.gz")
    out = tmp_path / "tox"
    args = ["models", "build-toxicity", "--lang", "en", "--data", f"jsonl:{a}", f"jsonl:{b}", "--epoch", "3", "--no-quantize",
            "--balance-sources", "1000", "--ensemble", "alt-profanity-check", "--leave-one-source-out", "--out", str(out)]  # fmt: skip
    assert main(args) == 0
    m = json.loads((out / "manifest.json").read_text())
    assert set(m["files"]) == {"fasttext", "profanity_linear"} and (out / "profanity_linear.npz").is_file()
    assert m["params"]["balance_rows"] == 1000 and "1000 rows" in m["split"]["balance"]
    # per source and class at most 1000 rows, at least 250: davidson 2 classes, convabuse 2 classes, minus held-out rows
    assert m["split"]["train_rows"] <= 4000
    loso = m["metrics"]["leave_one_source_out"]
    assert {"davidson_part", "convabuse_en", "mean_roc_auc", "fasttext_member_roc_auc"} <= set(loso)
    assert 0.5 < loso["convabuse_en"]["roc_auc"] <= 1
    model = ToxicityModel(out, "en")
    toxic, clean = model.scores(["you are a stupid fucking idiot", "The committee meets on Tuesday to discuss the budget."])
    assert toxic > 0.5 > clean
    capsys.readouterr()
    zh = ["models", "build-toxicity", "--lang", "zh", "--data", f"cold:{shared('toxicity', 'cold_zh', 'dev.csv')}",
          "--ensemble", "alt-profanity-check", "--out", str(tmp_path / "zh")]  # fmt: skip
    assert main(zh) == 2
    assert "English model" in capsys.readouterr().err
