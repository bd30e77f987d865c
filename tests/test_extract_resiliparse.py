"""The resiliparse extractor option of the extract stage (issue 8)."""

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
