"""The perplexity stage with the shipped models: hand-checked scores, buckets, pass-through, errors, acceptance."""

from __future__ import annotations

import json
import statistics

import pyarrow as pa
import pytest

from conftest import shared
from refinery.config import parse_pipeline
from refinery.errors import ConfigError
from refinery.models.lm import LanguageModel, read_corpus, shuffled, split_corpus
from refinery.models.registry import DEFAULT_ROOT, read_manifest
from refinery.models.textnorm import normalize
from refinery.stages.perplexity import PerplexityOptions, PerplexityStage

EN_WIKI = (
    "The European lobster is a species of clawed lobster from the eastern Atlantic Ocean, "
    "the Mediterranean Sea and parts of the Black Sea. It is closely related to the American lobster.\n"
    "It may grow to a length of 60 cm and a mass of 6 kilograms, and bears a conspicuous pair of claws."
)
NAV_JUNK = "Home | Login | Cart (0) | $$ BUY NOW $$ >>> click >>> 0x3F 9fA2 zz qq xj"


def stage(**opts) -> PerplexityStage:
    s = PerplexityStage(PerplexityOptions(**opts))
    s.setup()
    return s


def batch(texts, langs) -> pa.RecordBatch:
    return pa.RecordBatch.from_pydict({"text": texts, "language": langs})


def test_perplexity_is_cc_net_formula_hand_checked():
    """10 ** (-sum log10 p / tokens), tokens = pieces + one </s> per line, summed over lines."""
    m = LanguageModel(DEFAULT_ROOT / "lm" / "en", "en")
    lines = EN_WIKI.split("\n")
    logprob, tokens = 0.0, 0
    for line in lines:
        pieces = m.sp.encode(normalize(line), out_type=str)
        scores = [s for s, _, _ in m.lm.full_scores(" ".join(pieces), bos=True, eos=True)]
        assert len(scores) == len(pieces) + 1
        logprob += sum(scores)
        tokens += len(scores)
    assert m.perplexity(EN_WIKI) == round(10 ** (-logprob / tokens), 1)
    assert m.perplexity("") is None and m.perplexity("\n \n") is None


def test_stage_scores_buckets_and_passes_unmodelled_languages():
    s = stage(languages=["en", "zh"])
    result = s.process(
        batch(
            [EN_WIKI, NAV_JUNK, "L'astice europeo è una specie di aragosta.", "北京是中华人民共和国的首都。", None],
            ["en", "en", "it", "zh", "en"],
        )
    )
    ppl = result.records.column("perplexity").to_pylist()
    buckets = result.records.column("ppl_bucket").to_pylist()
    assert ppl[0] < ppl[1]  # Wikipedia prose beats navigation junk
    assert buckets[0] == "head" and buckets[1] == "tail"
    assert ppl[2] is None and buckets[2] is None  # Italian: no model, marked null, kept
    assert ppl[3] is not None and buckets[3] in ("head", "middle", "tail")
    assert ppl[4] is None and buckets[4] is None
    assert result.reasons == [None] * 5  # default keeps every bucket
    assert result.records.schema.field("perplexity").type == pa.float64()


def test_keep_buckets_and_max_perplexity_drop():
    s = stage(languages=["en"], keep_buckets=["head"])
    r = s.process(batch([EN_WIKI, NAV_JUNK, "buongiorno a tutti"], ["en", "en", "it"]))
    assert r.reasons == [None, "bucket_tail", None]
    s = stage(languages=["en"], max_perplexity=1.0)
    assert s.process(batch([EN_WIKI], ["en"])).reasons == ["max_perplexity"]


def test_model_info_records_versions():
    info = stage(languages=["en", "de"]).model_info()["perplexity"]
    assert set(info) == {"en", "de"}
    en = read_manifest(DEFAULT_ROOT / "lm" / "en", "lm", "en")
    assert info["en"]["version"] == en["version"] and info["en"]["sha256"]["kenlm"] == en["files"]["kenlm"]["sha256"]
    assert info["en"]["cutoffs"] == [en["calibration"]["head_cutoff"], en["calibration"]["tail_cutoff"]]


def test_missing_model_fails_at_config_load_naming_the_command(tmp_path):
    with pytest.raises(ConfigError) as e:
        parse_pipeline({"name": "x", "stages": [{"perplexity": {"languages": ["en", "it"]}}]}, "p.yaml")
    msg = str(e.value)
    assert "p.yaml: stages[0].perplexity" in msg and "refinery models build-lm --lang it" in msg
    with pytest.raises(ConfigError, match="does not exist"):
        parse_pipeline({"name": "x", "stages": [{"perplexity": {"models": str(tmp_path / "none")}}]})
    with pytest.raises(ConfigError, match="keep_buckets"):
        parse_pipeline({"name": "x", "stages": [{"perplexity": {"keep_buckets": ["best"]}}]})


# ---------------------------------------------------------------- acceptance (real data)


def _heldout(lang: str) -> list[str]:
    m = read_manifest(DEFAULT_ROOT / "lm" / lang, "lm", lang)
    paras = []
    for src in m["training_data"]:
        name = src["path"].split("lm_reference/", 1)[1]
        paras.extend(read_corpus(src["format"], shared("lm_reference", *name.split("/"))))
    return split_corpus(paras, m["split"]["heldout_percent"])[1]


@pytest.mark.parametrize("lang", ["en", "zh"])
def test_acceptance_shuffled_heldout_paragraphs_3x(lang):
    model = LanguageModel(DEFAULT_ROOT / "lm" / lang, lang)
    held = _heldout(lang)
    assert len(held) > 50
    real = statistics.median(model.perplexity(p) for p in held)
    shuf = statistics.median(model.perplexity(shuffled(p, lang, i)) for i, p in enumerate(held))
    assert shuf >= 3 * real, (lang, real, shuf)


def test_acceptance_article_bodies_head_beats_tail():
    truth = json.loads(shared("extraction", "article_benchmark", "ground-truth.json").read_text(encoding="utf-8"))
    from refinery.stages.langid import LangIdOptions, LangIdStage

    texts = [rec["articleBody"] for _, rec in sorted(truth.items())]
    lid = LangIdStage(LangIdOptions())
    lid.setup()
    langs, _ = lid.predict(texts)
    r = stage().process(batch(texts, langs))
    buckets = r.records.column("ppl_bucket").to_pylist()
    head, tail = buckets.count("head"), buckets.count("tail")
    assert head + buckets.count("middle") + tail >= 70
    assert head > tail, (head, tail)
