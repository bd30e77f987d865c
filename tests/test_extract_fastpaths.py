"""Fast paths of the extract stage (issue 8): the resiliparse extractor and the language prefilter."""

import pytest

from test_stages import ARTICLE, input_batch, make_stage
from refinery.config import ConfigError
from refinery.stages.extract import ExtractStage


def test_resiliparse_extracts_main_text_and_names_itself():
    stage = make_stage(ExtractStage, extractor="resiliparse")
    res = stage.process(input_batch([ARTICLE.encode()]))
    text = res.records.column("text")[0].as_py()
    assert res.reasons == [None]
    assert "harbour of the old town reopened" in text
    assert "Paragraph 5" in text
    assert "resiliparse" in stage.model_info() and "trafilatura" not in stage.model_info()


def test_resiliparse_outcomes_are_reasons_not_crashes():
    stage = make_stage(ExtractStage, extractor="resiliparse", max_html_bytes=10_000)
    big = ("<html><body>" + "<p>word</p>" * 1500 + "</body></html>").encode()
    res = stage.process(input_batch([big, b"\x00\xff\xfe garbage", b"<html><body></body></html>"]))
    assert res.reasons[0] == "too_large"
    assert res.reasons[1] in {"empty", "parse_error", None}
    assert res.reasons[2] == "empty"


def test_unknown_extractor_is_a_config_error():
    with pytest.raises(ConfigError, match="extractor"):
        make_stage(ExtractStage, extractor="boilerpipe")


GERMAN = (
    "<html><body><article>"
    + "".join(
        f"<p>Absatz {i}: Der Hafen der Altstadt wurde diese Woche nach zwei Jahren Reparaturarbeiten wieder "
        "eröffnet, und die Fischer, die in das Nachbardorf gezogen waren, kehren mit ihren Booten zurück.</p>"
        for i in range(6)
    )
    + "</article></body></html>"
)


def test_language_prefilter_drops_only_confident_other_languages():
    stage = make_stage(ExtractStage, prefilter_languages=["en"])
    res = stage.process(input_batch([ARTICLE.encode(), GERMAN.encode(), b"<html><body></body></html>"]))
    assert res.reasons[0] is None
    assert res.reasons[1] == "prefilter_language" and res.details[1].startswith("de ")
    assert res.reasons[2] == "empty"  # nothing to guess from: left to the extractor
    assert "extract_prefilter" in stage.model_info()
    plain = make_stage(ExtractStage)
    assert plain.process(input_batch([GERMAN.encode()])).reasons == [None]  # off by default


def test_prefilter_never_drops_what_langid_keeps_on_real_pages():
    """On real pages, every page web-en's prefilter and gate drop is one the full path (extract, langid, quality) drops too."""
    from conftest import shared
    from refinery.readers import discover, plan_units, read_unit
    from refinery.stages.langid import LangIdStage

    warc = shared("warc", "real_pages", "pages-004.warc.gz")
    batch = next(read_unit(plan_units(discover([str(warc)]), 10**6)[0], 10**6))
    from refinery.pipeline_files import resolve
    from refinery.stages.quality import QualityStage

    web_en = {s.name: s.options for s in resolve("web-en").stages}
    assert web_en["extract"].gate is not None  # web-en's own prefilter and gate are what is checked
    pre = make_stage(ExtractStage, **web_en["extract"].model_dump()).process(batch)
    full = make_stage(ExtractStage).process(batch)
    lid = make_stage(LangIdStage, languages=["en"]).process(full.records)
    quality = make_stage(QualityStage, **web_en["quality"].model_dump()).process(lid.records)
    kept_full = [a is None and b is None and c is None for a, b, c in zip(full.reasons, lid.reasons, quality.reasons)]
    dropped_pre = [r is not None and (r == "prefilter_language" or r.startswith("gate:")) for r in pre.reasons]
    assert sum(dropped_pre) > 10 and sum(kept_full) > 10
    assert not any(k and d for k, d in zip(kept_full, dropped_pre))


def test_deep_nesting_costs_the_prefilter_linear_time_and_the_resiliparse_extractor_a_drop():
    """resiliparse's main-content pass takes minutes on 60,000 nested elements: the resiliparse
    extractor drops such a page; the prefilter's whole-page text (no main-content pass) stays fast."""
    import time

    from refinery.stages.html_depth import depth_estimate

    deep = ("<html><body>" + "<div>" * 100_000 + "x" + "</div>" * 100_000 + "</body></html>").encode()
    assert depth_estimate(deep, 3000) >= 100_000
    assert depth_estimate(b"<p>a<br>b<img src=x></p>" * 10, 5) == 1  # void elements do not nest
    stage = make_stage(ExtractStage, prefilter_languages=["en"])
    t = time.process_time()
    assert len(stage.prefilter([deep], [None])) == 1
    assert time.process_time() - t < 5
    rs = make_stage(ExtractStage, extractor="resiliparse")
    assert rs.extract_one(deep, None)[1] == "too_complex"


def _page(body: str) -> bytes:
    return f"<html><body><nav>Home About</nav>{body}<footer>Contact</footer></body></html>".encode()


def test_survival_gate_drops_pages_whose_whole_text_fails_and_names_the_rule():
    gate = {"min_words": 50, "min_stop_words": 5, "min_alpha_words_ratio": 0.35}
    stage = make_stage(ExtractStage, prefilter_languages=["en"], prefilter_min_score=0.99, gate=gate)
    short = _page("<p>Welcome to the shop of the town.</p>")
    no_stop = _page("<ul>" + "".join(f"<li>Blue widget model {i} steel frame</li>" for i in range(40)) + "</ul>")
    numbers = _page("<table>" + "".join(f"<tr><td>{i}</td><td>{i * 7}.{i}</td><td>{i * 3}%</td><td>x</td></tr>"
                                        for i in range(60)) + "</table><p>The table of the values and of the rates.</p>" * 2)
    res = stage.process(input_batch([ARTICLE.encode(), short, no_stop, numbers]))
    assert res.reasons == [None, "gate:min_words", "gate:stop_words", "gate:alpha_words"]
    assert res.details[1].startswith("page_words=") and "<50 (gate.min_words" in res.details[1]
    assert "en 0" in res.details[2] and "<5 (gate.min_stop_words" in res.details[2]
    assert res.details[3].startswith("page_alpha_words_ratio=")
    # the reject row keeps the page text the gate judged and the prefilter's language guess
    assert "Welcome to the shop" in res.records.column("text")[1].as_py()
    assert res.reject_columns["language"][1] == "en"
    off = make_stage(ExtractStage, prefilter_languages=["en"], prefilter_min_score=0.99)
    assert off.process(input_batch([short])).reasons == [None]  # no gate: trafilatura decides


def test_survival_gate_early_exit_decides_as_the_full_count():
    """The gate stops reading once a page has enough words and stop words; on real pages its verdict
    is the one the full token counts give."""
    from conftest import shared
    from refinery.readers import discover, plan_units, read_unit
    from refinery.stages import text_stats as ts
    from refinery.stages.survival_gate import GateOptions, SurvivalGate

    warc = shared("warc", "real_pages", "pages-002.warc.gz")
    batch = next(read_unit(plan_units(discover([str(warc)]), 10**6)[0], 10**6))
    from resiliparse.extract.html2text import extract_plain_text

    from refinery.stages.extract import decode_html
    from refinery.stages.quality import DEFAULT_STOP_WORDS

    pages = zip(batch.column("html").to_pylist(), batch.column("http_charset").to_pylist())
    texts = [extract_plain_text(decode_html(h, c), main_content=False, links=False, alt_texts=False, noscript=True)
             for h, c in pages if h]
    stop = set(DEFAULT_STOP_WORDS["en"])
    checked = 0
    for words_min, stop_min in ((50, 5), (400, 40), (3000, 200)):
        gate = SurvivalGate(GateOptions(min_words=words_min, min_stop_words=stop_min), ["en"])
        for text in texts:
            tokens = ts.words(text, False)
            n_words = sum(1 for w in tokens if not ts.is_symbol(w))
            n_stop = sum(1 for w in tokens if w.lower() in stop)
            expect = "gate:min_words" if n_words < words_min else "gate:stop_words" if n_stop < stop_min else None
            got = gate.check(text)
            assert (got[0] if got else None) == expect
            checked += expect is not None
    assert checked > 5  # the larger thresholds do drop pages, so both branches were exercised


def test_gate_needs_the_prefilter():
    with pytest.raises(ConfigError, match="gate needs prefilter_languages"):
        make_stage(ExtractStage, gate={"min_words": 10})
