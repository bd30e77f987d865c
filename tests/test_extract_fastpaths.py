"""Fast paths of the extract stage (issue 8): the resiliparse extractor and the language prefilter."""

import pytest

from test_stages import ARTICLE, input_batch, make_stage
from refinery.config import ConfigError
from refinery.stages.extract import ExtractStage


def test_resiliparse_extracts_main_text_and_names_itself():
    stage = make_stage(ExtractStage, extractor="resiliparse")
    res = stage.process(input_batch([ARTICLE.encode()]))
    text = res.batch.column("text")[0].as_py()
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
    """On real pages, every page the prefilter drops is one the full path (extract + langid) drops too."""
    from conftest import shared
    from refinery.readers import discover, plan_units, read_unit
    from refinery.stages.langid import LangIdStage

    warc = shared("warc", "real_pages", "pages-002.warc.gz")
    batch = next(read_unit(plan_units(discover([str(warc)]), 10**6)[0], 10**6))
    pre = make_stage(ExtractStage, prefilter_languages=["en"]).process(batch)
    full = make_stage(ExtractStage).process(batch)
    lid = make_stage(LangIdStage, languages=["en"]).process(full.batch)
    kept_full = [a is None and b is None for a, b in zip(full.reasons, lid.reasons)]
    dropped_pre = [r == "prefilter_language" for r in pre.reasons]
    assert sum(dropped_pre) > 10
    assert not any(k and d for k, d in zip(kept_full, dropped_pre))


def test_deep_nesting_skips_resiliparse_main_content():
    """resiliparse's main-content pass takes minutes on 60,000 nested elements: the prefilter
    makes no guess for such a page (the full extractor decides), the resiliparse extractor drops it."""
    import time

    from refinery.stages.html_depth import depth_estimate

    deep = ("<html><body>" + "<div>" * 100_000 + "x" + "</div>" * 100_000 + "</body></html>").encode()
    assert depth_estimate(deep, 3000) >= 100_000
    assert depth_estimate(b"<p>a<br>b<img src=x></p>" * 10, 5) == 1  # void elements do not nest
    stage = make_stage(ExtractStage)
    t = time.process_time()
    assert stage.prefilter([deep], [None]) == [None]
    assert time.process_time() - t < 5
    rs = make_stage(ExtractStage, extractor="resiliparse")
    assert rs.extract_one(deep, None)[1] == "too_complex"
