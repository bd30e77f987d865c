"""Training data for the models: labelled toxicity files (formats, labels, bad input, licences),
leave-one-source-out metrics, and the JSONL corpus formats of build-lm."""

from __future__ import annotations

import gzip
import json

import pytest

from conftest import shared
from refinery.cli import main
from refinery.errors import InputError
from refinery.models.lm import parse_corpus_spec, read_corpus
from refinery.models.toxicity import read_labelled, source_name


def _jsonl(path, rows):
    path.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
    return path


def test_jsonl_string_labels_and_ambiguous_rows(tmp_path):
    """Stormfront-style hate/noHate and ToxiGen-style hate/neutral; relation/idk are dropped."""
    f = _jsonl(tmp_path / "s.jsonl", [
        {"text": "a hateful line", "label": "hate"}, {"text": "a calm line", "label": "noHate"},
        {"text": "needs context", "label": "relation"}, {"text": "skipped", "label": "idk/skip"},
        {"text": "neutral line", "label": "neutral"}, {"text": "toxic line", "label": 1}, {"text": "  ", "label": 0},
    ])  # fmt: skip
    assert read_labelled("jsonl", f) == [("a hateful line", 1), ("a calm line", 0), ("neutral line", 0), ("toxic line", 1)]
    gz = tmp_path / "s.jsonl.gz"
    gz.write_bytes(gzip.compress(f.read_bytes()))
    assert read_labelled("jsonl", gz) == read_labelled("jsonl", f)


def test_bad_training_files_name_the_file(tmp_path, capsys):
    unknown = _jsonl(tmp_path / "unknown.jsonl", [{"text": "x", "label": "maybe"}, {"text": "y", "label": 0}])
    with pytest.raises(InputError, match=r"unknown\.jsonl: line 1: label 'maybe'"):
        read_labelled("jsonl", unknown)
    one_class = _jsonl(tmp_path / "all_clean.jsonl", [{"text": f"row {i}", "label": 0} for i in range(5)])
    with pytest.raises(InputError, match=r"all_clean\.jsonl: no toxic rows"):
        read_labelled("jsonl", one_class)
    csv_as_jsonl = tmp_path / "tweets.csv"
    csv_as_jsonl.write_text("count,class,tweet\n3,1,hello\n3,2,bye\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"tweets\.csv: line 1 is not a JSON object"):
        read_labelled("jsonl", csv_as_jsonl)
    with pytest.raises(InputError, match=r"tweets\.csv: not a olid file \(needs columns 'tweet' and 'subtask_a'"):
        read_labelled("olid", csv_as_jsonl)
    assert read_labelled("davidson", csv_as_jsonl) == [("hello", 1), ("bye", 0)]
    # through the command: exit 2 and the file named, nothing written
    out = tmp_path / "model"
    assert main(["models", "build-toxicity", "--lang", "en", "--data", f"jsonl:{one_class}", "--out", str(out)]) == 2
    assert "all_clean.jsonl: no toxic rows" in capsys.readouterr().err and not out.exists()


def test_evaluation_only_sets_are_refused_as_training_data(tmp_path, capsys):
    f = shared("toxicity", "toxigen_seeds_en", "toxigen_seeds.jsonl")
    assert source_name(f) == "toxigen_seeds_en"
    assert main(["models", "build-toxicity", "--lang", "en", "--data", f"jsonl:{f}", "--out", str(tmp_path / "m")]) == 2
    err = capsys.readouterr().err
    assert "evaluation-only data may not be trained on" in err and "research use only" in err


def test_leave_one_source_out_metrics(tmp_path):
    """Each labelled source is scored by a model trained without it; --eval texts never trained on."""
    a = shared("toxicity", "davidson_en", "data", "labeled_data.csv")
    b = shared("toxicity", "convabuse_en", "convabuse.jsonl.gz")
    ev = shared("toxicity", "ethos_en", "ethos_binary.jsonl")
    small = _jsonl(tmp_path / "davidson_part.jsonl", [{"text": t, "label": y} for t, y in read_labelled("davidson", a)[:3000]])
    out = tmp_path / "tox"
    assert main(["models", "build-toxicity", "--lang", "en", "--data", f"jsonl:{small}", f"jsonl:{b}", "--eval", f"jsonl:{ev}",
                 "--epoch", "3", "--no-quantize", "--leave-one-source-out", "--out", str(out)]) == 0  # fmt: skip
    m = json.loads((out / "manifest.json").read_text())
    loso = m["metrics"]["leave_one_source_out"]
    assert set(loso) == {"model", "davidson_part", "convabuse_en", "mean_roc_auc"}
    assert loso["davidson_part"]["rows"] == 3000 and loso["convabuse_en"]["rows"] == 4174
    assert loso["davidson_part"]["train_rows"] < 4174 + 1  # trained on convabuse only
    assert 0.5 < loso["convabuse_en"]["roc_auc"] <= 1
    assert m["metrics"]["heldout"]["rows"] == 997
    conv = next(s for s in m["training_data"] if s["set"] == "convabuse_en")
    assert "CC BY 4.0" in conv["licence_note"] and "Cercas Curry" in conv["licence_note"]


def test_jsonl_and_gutenberg_corpus_formats(tmp_path):
    wiki = tmp_path / "wiki.jsonl.gz"
    wiki.write_bytes(gzip.compress((json.dumps({"title": "A", "text": "The first paragraph has enough words in it.\nHistory.\nA second paragraph also has words."}) + "\n").encode()))
    assert read_corpus(*parse_corpus_spec(f"jsonl:{wiki}")) == ["The first paragraph has enough words in it.", "A second paragraph also has words."]
    books = _jsonl(tmp_path / "books.jsonl", [
        {"language": "English", "text": "It was the best of times,\nit was the worst of times.\n\nCHAPTER I\n\nA new paragraph starts here, wrapped\nover two lines."},
        {"language": "French", "text": "Longtemps, je me suis couché de bonne heure, oui vraiment."},
    ])  # fmt: skip
    assert read_corpus(*parse_corpus_spec(f"gutenberg:{books}")) == [
        "It was the best of times, it was the worst of times.", "A new paragraph starts here, wrapped over two lines."
    ]
    bad = tmp_path / "bad.jsonl"
    bad.write_text("not json\n", encoding="utf-8")
    with pytest.raises(InputError, match=r"bad\.jsonl: line 1 is not a JSON object with a 'text' field"):
        read_corpus(*parse_corpus_spec(f"jsonl:{bad}"))


def test_build_lm_eval_docs_and_models_ls(tmp_path, capsys):
    """--eval-docs: documents never trained on, real vs shuffled and buckets, shown by models ls."""
    from test_models import _need_kenlm

    _need_kenlm()
    corpus = shared("lm_reference", "text", "es_wiki_xquad.txt")
    docs = tmp_path / "unseen.txt"
    docs.write_text("\n".join(shared("langid", "sentences", "es.txt").read_text(encoding="utf-8").splitlines()[:60]) + "\n", encoding="utf-8")
    out = tmp_path / "lm" / "es"
    assert main(["models", "build-lm", "--lang", "es", "--corpus", str(corpus), "--vocab-size", "2000", "--heldout-percent", "20",
                 "--eval-docs", str(docs), "--out", str(out)]) == 0  # fmt: skip
    u = json.loads((out / "manifest.json").read_text())["metrics"]["unseen"]
    assert u["documents"] == 60 and sum(u["buckets"].values()) == 60
    assert u["shuffled_median_perplexity"] > u["median_perplexity"] and u["shuffled_over_real"] > 1
    capsys.readouterr()
    assert main(["models", "ls", "--root", str(tmp_path)]) == 0
    assert "unseen docs 60: shuffled/real" in capsys.readouterr().out
    bad = tmp_path / "truth.json"
    bad.write_text("[1, 2]", encoding="utf-8")
    assert main(["models", "build-lm", "--lang", "es", "--corpus", str(corpus), "--eval-docs", str(bad), "--out", str(tmp_path / "o")]) == 2
    assert "truth.json: expected a JSON object" in capsys.readouterr().err
