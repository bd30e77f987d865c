"""Rejects that explain themselves and the run report, on a real-pages commit (issue 19)."""

from __future__ import annotations

import re
import shutil
import subprocess

import pyarrow.parquet as pq
import pytest

from conftest import shared
from refinery.batch import run_batch
from refinery.config import load_pipeline
from refinery.report import build_report, find_commit
from refinery.report.html import render_html
from refinery.report.text import render_text
from refinery.schema import QUALITY_SIGNAL_FIELDS
from refinery.store import CorpusStore

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def commit(tmp_path_factory):
    warc = shared("warc", "real_pages", "pages-001.warc.gz")
    store = CorpusStore(tmp_path_factory.mktemp("report") / "store")
    outcome = run_batch(load_pipeline("pipelines/web-en.yaml"), [str(warc)], store)
    return store, outcome.record


def _rejects(store: CorpusStore, rec) -> list[dict]:
    return [r for e in rec.rejects for r in pq.read_table(store.root / e.path).to_pylist()]


def test_every_reject_names_rule_value_and_threshold(commit):
    store, rec = commit
    rows = _rejects(store, rec)
    assert len(rows) == rec.docs_in - rec.docs_out > 0
    assert all(r["detail"] for r in rows), [r for r in rows if not r["detail"]][:3]
    stages = {r["stage"] for r in rows}
    assert {"extract", "quality"} <= stages, stages
    signals = {f.name for f in QUALITY_SIGNAL_FIELDS}
    for r in rows:
        if r["stage"] == "quality" and r["reason"] != "empty" and not r["reason"].startswith("c4_lorem"):
            m = re.match(r"(q_\w+)=([\d.e+-]+)([<>]=?)([\d.e+-]+)", r["detail"])
            if r["reason"] == "c4_curly_bracket":
                continue
            assert m, r["detail"]
            column, value = m.group(1), float(m.group(2))
            assert column in signals and r[column] == pytest.approx(value, rel=0.01, abs=1e-3), (r["detail"], r[column])
        if r["stage"] == "extract" and r["reason"] == "prefilter_language":
            assert r["language"] and r["language"] != "en" and r["language_score"] >= 0.7, r
            assert r["detail"].startswith(f"{r['language']} ") and ">=0.7 (prefilter_min_score)" in r["detail"]
        if r["stage"] == "extract" and r["reason"].startswith("gate:"):
            assert re.match(r"page_(words|stop_words|alpha_words_ratio)=", r["detail"]), r["detail"]
        if r["stage"] in ("langid", "quality", "perplexity", "toxicity"):
            assert r["language_score"] is not None, r  # the langid stage's score, as in annotate
        if r["stage"] == "perplexity":
            assert "perplexity=" in r["detail"] and "cutoff" in r["detail"]


def test_report_table_adds_up_and_equals_the_commit(commit):
    store, rec = commit
    report = build_report(store, find_commit(store, str(rec.commit)))
    assert find_commit(store, rec.batch_key[:12]).commit == rec.commit
    names = [row.stage for row in report.flow]
    assert names[0] == "read" and names.index("dedup") < names.index("perplexity")  # pipeline order
    for row in report.flow:
        assert row.docs_in == row.docs_out + sum(row.dropped.values()), row
    for prev, nxt in zip(report.flow, report.flow[1:]):
        assert prev.docs_out == nxt.docs_in, (prev, nxt)
    assert report.flow[0].docs_in == rec.docs_in and report.flow[-1].docs_out == rec.docs_out
    assert not report.partial
    assert sum(b.docs_in for b in report.by_language) == rec.docs_in  # every document has a row
    assert sum(b.kept for b in report.by_language) == rec.docs_out
    assert report.examples and all(1 <= len(v) <= 3 for v in report.examples.values())
    assert "stage" in render_text(report)


def test_report_html_renders_in_headless_chromium(commit, tmp_path):
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    if chromium is None:
        pytest.skip("chromium not installed")
    store, rec = commit
    page = tmp_path / "report.html"
    page.write_text(render_html(build_report(store, rec)), encoding="utf-8")
    dom = subprocess.run(
        [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--dump-dom", page.as_uri()],
        capture_output=True, text=True, timeout=120,
    ).stdout
    assert "<svg" in dom and 'class="kept"' in dom, dom[:500]  # at least one histogram, with bars
    flow = re.findall(r'<tr data-stage="([^"]+)"><td class="l">[^<]*</td><td class="in">(\d+)</td>'
                      r'<td class="dropped">(\d+)</td><td class="out">(\d+)</td>', dom)  # fmt: skip
    shown = {stage: (int(i), int(d), int(o)) for stage, i, d, o in flow}
    for stage, c in rec.counters.items():
        if stage != "dedup":
            assert shown[stage] == (c["in"], sum(c["dropped"].values()), c["out"]), stage
    assert re.search(rf'data-docs-in="{rec.docs_in}" data-docs-out="{rec.docs_out}"', dom)


def test_annotate_against_its_own_store_agrees_with_the_commit(commit, tmp_path):
    """Annotating the committed input against the store it went to: the committed documents are
    the kept copies (verdict keep), not copies of themselves; counters agree with the verdicts."""
    from collections import Counter

    from refinery.batch import annotate_batch

    store, rec = commit
    warc = shared("warc", "real_pages", "pages-001.warc.gz")
    out = tmp_path / "scores.parquet"
    rows, counters = annotate_batch(load_pipeline("pipelines/web-en.yaml"), [str(warc)], out, store)
    table = pq.read_table(out, columns=["doc_id", "verdict"]).to_pylist()
    kept_ids = {r["doc_id"] for e in rec.shards for r in pq.read_table(store.root / e.path, columns=["doc_id"]).to_pylist()}
    verdicts = {r["doc_id"]: r["verdict"] for r in table}
    assert all(verdicts[d] == "keep" for d in kept_ids), [verdicts[d] for d in kept_ids]
    by_stage = Counter(v.split(":")[0] for v in verdicts.values() if v != "keep")
    c = counters.to_dict()
    for stage, n in by_stage.items():
        assert sum(c[stage]["dropped"].values()) == n, (stage, c[stage], n)
    assert c["read"]["in"] == rows == len(table)
