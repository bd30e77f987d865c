"""Refinery's own extractor (issue 15): block structure, the shipped model, bounds, determinism."""

from __future__ import annotations

import pytest

from conftest import shared
from test_stages import ARTICLE, input_batch, make_stage
from refinery.errors import ModelError
from refinery.extractor import data as D
from refinery.extractor.blocks import TooComplex, segment
from refinery.extractor.model import DEFAULT_DIR, MODEL_FILE, ExtractorModel, load_extractor
from refinery.build.extractor import label_blocks, label_snippet_blocks
from refinery.stages.extract import ExtractStage

STRUCTURED = """<html><head><title>t</title><style>p{}</style></head><body>
<nav><ul><li><a href="/">Home</a></li><li><a href="/a">About</a></li></ul></nav>
<article><h1>Fixing the harbour</h1><p>First line<br>second line of the <b>same</b> paragraph.</p>
<ul><li>one item</li><li>two item</li></ul>
<table><tr><th>name</th><th>size</th></tr><tr><td>boat</td><td>12</td></tr></table>
<pre>def f(x):
    return x</pre><script>var x = "never text";</script></article></body></html>"""


def page_blocks(html: str, max_elements: int | None = None):
    return segment(html, max_elements).blocks


def test_blocks_keep_headings_lists_tables_code_and_line_breaks():
    assert segment(STRUCTURED).title == "t"
    texts = [b.text for b in page_blocks(STRUCTURED)]
    assert texts[:2] == ["Home", "About"]
    assert "Fixing the harbour" in texts
    assert "First line\nsecond line of the same paragraph." in texts
    assert "one item" in texts and "two item" in texts
    assert "name | size" in texts and "boat | 12" in texts
    assert "def f(x):\n    return x" in texts
    assert not any("never text" in t for t in texts)
    heading = next(b for b in page_blocks(STRUCTURED) if b.text == "Fixing the harbour")
    assert heading.heading == 1
    home = page_blocks(STRUCTURED)[0]
    assert home.link_chars == home.chars  # all link text


def test_labels_need_gold_context_for_short_blocks():
    blocks = page_blocks(STRUCTURED)
    gold = "Fixing the harbour\n\nFirst line second line of the same paragraph.\n\none item\ntwo item\nAbout the boat"
    y = dict(zip((b.text for b in blocks), label_blocks(blocks, gold)))
    assert y["Fixing the harbour"] == 1 and y["one item"] == 1
    assert y["About"] == 0  # occurs in the gold, but not next to its neighbours' words
    assert y["boat | 12"] == 0


def test_snippet_labels_are_partial_and_drop_contradictions():
    blocks = page_blocks(STRUCTURED)
    page = D.Page("snippets", "p", b"", None, with_=["second line of the same", "two item"],
                  without=["Home", "same paragraph"])
    y, labelled = label_snippet_blocks(blocks, page)
    by_text = {b.text: (yy, ll) for b, yy, ll in zip(blocks, y, labelled)}
    assert by_text["two item"] == (1, 1) and by_text["Home"] == (0, 1)
    assert by_text["First line\nsecond line of the same paragraph."][1] == 0  # a keep and a drop snippet: unlabelled
    assert by_text["About"][1] == 0 and by_text["one item"][1] == 0  # no snippet: unlabelled


def test_snippet_pages_split_by_site():
    base = shared("extraction", "boilerplate_snippets")
    parts = {part: D.snippet_pages(base, {part}) for part in ("train", "tune", "test")}
    sites = {part: {p.domain for p in pages} for part, pages in parts.items()}
    assert all(sites.values()) and not (sites["train"] & sites["test"]) and not (sites["tune"] & sites["test"])
    assert sum(len(v) for v in parts.values()) == len(D.snippet_pages(base))


def test_shipped_model_extracts_main_text_and_names_itself():
    stage = make_stage(ExtractStage, extractor="refinery")
    res = stage.process(input_batch([ARTICLE.encode()]))
    text = res.records.column("text")[0].as_py()
    assert res.reasons == [None]
    assert "harbour of the old town reopened" in text
    info = stage.model_info()["refinery_extractor"]
    assert len(info["sha256"]) == 64 and "trafilatura" not in stage.model_info()


def test_outcomes_are_reasons_not_crashes():
    stage = make_stage(ExtractStage, extractor="refinery", max_html_bytes=10_000, max_tree_elements=200)
    big = ("<html><body>" + "<p>word</p>" * 1500 + "</body></html>").encode()
    deep = ("<div>" * 300 + "x" + "</div>" * 300).encode()
    res = stage.process(input_batch([big, b"\x00\xff\xfe garbage", b"<html><body></body></html>", deep]))
    assert res.reasons[0] == "too_large"
    assert res.reasons[1] in {"empty", None}
    assert res.reasons[2] == "empty"
    assert res.reasons[3] == "too_complex"
    with pytest.raises(TooComplex):
        page_blocks(deep.decode(), 200)


def test_model_round_trips_and_bad_model_is_a_clear_error(tmp_path):
    model = load_extractor()
    blob = (DEFAULT_DIR / MODEL_FILE).read_text()
    assert ExtractorModel.from_json(blob).to_json() == blob
    (tmp_path / MODEL_FILE).write_text('{"format": "something else"}')
    with pytest.raises(ModelError, match="build-extractor"):
        load_extractor(tmp_path / "nowhere")
    with pytest.raises(ModelError, match="unreadable extractor model"):
        load_extractor(tmp_path)
    assert model.extract(STRUCTURED) == model.extract(STRUCTURED)


def test_real_article_pages_never_trained_on():
    """The article benchmark is never used to train or tune: the shipped model must do well on it."""
    pages = D.article_pages(shared("extraction", "article_benchmark"))[:12]
    stage = make_stage(ExtractStage, extractor="refinery")
    f1 = [D.word_f1(stage.extract_one(p.html, None)[0], p.gold)[2] for p in pages]
    assert sum(f1) / len(f1) > 0.85, f1


def test_missing_extractor_model_is_a_config_error(tmp_path):
    from refinery.config import ConfigError

    with pytest.raises(ConfigError, match="build-extractor"):
        make_stage(ExtractStage, extractor="refinery", extractor_model=str(tmp_path))


def test_processing_instructions_are_skipped_not_fatal():
    """A real page of the trafilatura evaluation set has `<?php ... ?>` in its body: lexbor makes it a
    node without a tag, which the walk must pass over."""
    html = "<html><body><div><?php wp_get_archives('type=monthly'); ?><p>Archive text stays.</p></div></body></html>"
    assert [b.text for b in page_blocks(html)] == ["Archive text stays."]


def test_deep_dom_needs_no_recursion():
    deep = "<div>" * 5000 + "<p>deep text</p>" + "</div>" * 5000
    assert [b.text for b in page_blocks(deep)] == ["deep text"]
    assert isinstance(load_extractor().extract(deep), str)


def test_pass2_trees_score_as_scikit_learn_does_and_learn_what_a_linear_pass_cannot():
    """Pass 2's numpy tree walk equals HistGradientBoostingClassifier's own probabilities (before and
    after the JSON round trip), and fits XOR of two features, which no logistic regression separates."""
    import json

    import numpy as np
    from sklearn.ensemble import HistGradientBoostingClassifier

    from refinery.models.logistic import fit_logistic, sigmoid
    from refinery.extractor.trees import Trees, from_sklearn

    rng = np.random.default_rng(0)
    a, b = rng.integers(0, 2, 400), rng.integers(0, 2, 400)
    Z = np.column_stack([np.ones(400), a - 0.5 + rng.normal(0, 0.1, 400), b - 0.5, rng.normal(0, 1, 400)])
    y = (a ^ b).astype(float)
    g = HistGradientBoostingClassifier(max_iter=30, max_depth=3, random_state=0, early_stopping=False).fit(Z, y)
    trees = from_sklearn(g)
    again = Trees.from_doc(json.loads(json.dumps(trees.to_doc())), Z.shape[1])
    expected = g.predict_proba(Z)[:, 1]
    assert np.abs(sigmoid(trees.logit(Z)) - expected).max() < 1e-12
    assert np.abs(sigmoid(again.logit(Z)) - expected).max() < 1e-5  # leaf values kept to 6 digits
    assert ((sigmoid(trees.logit(Z)) >= 0.5) == y).mean() == 1.0
    acc_lr = ((sigmoid(Z @ fit_logistic(Z, y, np.ones(400), np.zeros(4))) >= 0.5) == y).mean()
    assert acc_lr < 0.8
    assert trees.logit(np.zeros((0, 4))).shape == (0,)


def test_tree_arrays_out_of_bounds_are_a_clear_error():
    from refinery.extractor.trees import Trees

    doc = {"n_trees": 1, "nodes_per_tree": 3, "depth": 1, "base": 0.0, "feature": [7, 0, 0],
           "threshold": [0.5, None, None], "left": [1, 1, 2], "right": [2, 1, 2], "value": [0, -1, 1]}
    assert Trees.from_doc(doc, 8).logit(__import__("numpy").zeros((2, 8))).tolist() == [-1.0, -1.0]
    with pytest.raises(ValueError, match="outside"):
        Trees.from_doc(doc, 4)
    with pytest.raises(ValueError, match="nodes"):
        Trees.from_doc({**doc, "value": [0, 1]}, 8)
