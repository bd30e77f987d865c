"""Corpus figures: each commit's manifest `stats`, `refinery store stats`, and the status page's table."""

from __future__ import annotations

import json

from corpus_helpers import add_commit, make_docs
from refinery.cli import main
from refinery.corpus import Corpus
from refinery.store import CorpusStore


def _expected(tables) -> dict:
    out = {"documents": 0, "tokens": 0, "by": {}}
    for t in tables:
        for text, lang in zip(t.column("text").to_pylist(), t.column("language").to_pylist()):
            words = len(text.split())  # the documented count
            out["documents"] += 1
            out["tokens"] += words
            row = out["by"].setdefault(lang, [0, 0])
            row[0] += 1
            row[1] += words
    return out


def test_manifest_stats_and_cli_including_an_old_manifest(tmp_path, capsys):
    st = CorpusStore(tmp_path / "store")
    a, b = make_docs("a", 130), make_docs("b", 70, seed=1)
    add_commit(st, a)
    add_commit(st, b)
    rec = st.commit(2)
    want = _expected([b])
    assert rec.stats["documents"] == 70 and rec.stats["tokens"] == want["tokens"]
    assert {k: [v["documents"], v["tokens"]] for k, v in rec.stats["by"]["language"].items()} == want["by"]
    assert sum(v["documents"] for v in rec.stats["by"]["ppl_bucket"].values()) == 70
    assert rec.stats["bytes"] == sum(len(t.encode()) for t in b.column("text").to_pylist())
    # a manifest written before `stats` existed stays readable, and is measured from its shards
    path = st.manifest_dir / "00000001.json"
    old = json.loads(path.read_text())
    del old["stats"]
    path.write_text(json.dumps(old, indent=2))
    assert st.commit(1).stats == {} and len(Corpus(st.root).files()) >= 2
    assert main(["store", "stats", "--store", str(st.root), "--json"]) == 0
    figures = json.loads(capsys.readouterr().out)
    both = _expected([a, b])
    assert figures["documents"] == 200 and figures["tokens"] == both["tokens"]
    assert {k: [v["documents"], v["tokens"]] for k, v in figures["by"]["language"].items()} == both["by"]
    assert [c["computed"] for c in figures["commits"]] == [True, False]
    assert figures["commits"][0]["tokens"] == _expected([a])["tokens"]
    assert main(["store", "stats", "--store", str(st.root), "--since", "1"]) == 0
    text = capsys.readouterr().out
    assert "by language" in text and "by commit" in text and "whitespace words" in text and "70 documents" in text
    spec = tmp_path / "mix.yaml"
    spec.write_text("share: tokens\ngroups:\n  - {name: de, weight: 1, filter: {language: de}}\n"
                    "  - {name: en, weight: 1, filter: {language: en}}\n")
    assert main(["store", "stats", "--store", str(st.root), "--mixture", str(spec), "--json"]) == 0
    rows = {r["group"]: r for r in json.loads(capsys.readouterr().out)["mixture"]}
    de = both["by"]["de"]
    assert rows["de"]["documents"] == de[0] and rows["de"]["tokens"] == de[1]
    assert abs(rows["de"]["natural_share"] - de[1] / both["tokens"]) < 1e-9 and rows["de"]["target_share"] == 0.5
    spec.write_text("groups: [{name: x, weight: 1, filter: {lang: en}}]\n")
    assert main(["store", "stats", "--store", str(st.root), "--mixture", str(spec)]) == 2
    assert "mixture group 'x'" in capsys.readouterr().err


def test_status_page_shows_corpus_figures(tmp_path):
    from fastapi.testclient import TestClient

    from refinery.service.app import Settings, create_app

    st = CorpusStore(tmp_path / "store")
    add_commit(st, make_docs("a", 40))
    app = create_app(Settings(store=str(st.root), input_roots=[str(tmp_path)], tokens={}))
    client = TestClient(app)  # not entered: no scheduler, no Ray
    try:
        cs = client.get("/v1/overview").json()["corpus_stats"]
        assert cs["documents"] == 40 and cs["commits"] == 1 and cs["by"]["language"]["en"]["documents"] == 30
        add_commit(st, make_docs("b", 10))
        assert client.get("/v1/overview").json()["corpus_stats"]["documents"] == 50  # new commits join
        assert 'id="corpus-stats"' in client.get("/").text
    finally:
        app.state.service.queue.close()
