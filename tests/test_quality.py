"""Quality rules on hand-built texts: each case fails exactly the rule it was written for."""

import pyarrow as pa
import pytest

from refinery.config import parse_pipeline
from refinery.stages.quality import QualityStage

GOOD = (
    "The river runs through the old town and the bridges connect the two halves of the city.\n"
    "Every morning the market opens with fresh bread, fish and vegetables from the farms nearby.\n"
    "Visitors walk along the water to see the cathedral that was built with stone from the hills.\n"
    "In the evening the cafes fill with people who have finished work and want to talk with friends.\n"
    "The museum holds paintings of the harbour as it looked two hundred years ago, with tall ships.\n"
    "Local schools take children there so that they learn the history of the place where they live."
)


def stage(**quality) -> QualityStage:
    cfg = parse_pipeline({"name": "t", "stages": [{"quality": quality}]})
    return QualityStage(cfg.stages[0].options)


def verdict(text, lang="en", **quality):
    return stage(**quality).assess(text, lang)


def test_good_text_passes_every_rule():
    a = verdict(GOOD)
    assert a.reason is None, a.signals
    assert a.signals["q_words"] > 90
    assert a.signals["q_stop_words"] >= 10
    assert a.signals["q_c4_sentences"] == 6


@pytest.mark.parametrize(
    "text,rule",
    [
        ("Short text with the words of it.", "gopher_min_doc_words"),
        (GOOD + "\n" + "\n".join(["#tag #news #today"] * 40), "gopher_dup_line_frac"),
        ("\n".join("- " + line for line in GOOD.splitlines()), "gopher_bullet_lines"),
        (GOOD.replace("the ", "xx ").replace("with ", "yy ").replace("The ", "Zz ").replace("to ", "qq ").replace("of ", "zz ").replace("and ", "ww ").replace("that ", "vv "), "gopher_stop_words"),
        (GOOD + "\nLorem ipsum dolor sit amet, consectetur adipiscing elit, sed do eiusmod.", "c4_lorem_ipsum"),
        (GOOD + "\nfunction f() { return the value of x and y; }", "c4_curly_bracket"),
    ],
)
def test_rule_names_the_drop(text, rule):
    assert verdict(text).reason == rule


def test_repeated_ngrams_detected():
    text = " ".join(["buy the cheap shoes now and save money with the discount"] * 30)
    a = verdict(text)
    assert a.reason.startswith("gopher_top_") or a.reason.startswith("gopher_dup_")
    assert a.signals["q_dup_10gram_char_frac"] > 0.5


def test_symbol_ratio_and_alpha_words():
    text = GOOD + "\n" + " ".join(["#"] * 200)
    assert verdict(text, gopher_repetition=None).reason == "gopher_hash_ratio"
    numbers = GOOD + "\n" + " ".join(str(i) for i in range(400)) + "."
    assert verdict(numbers).reason == "gopher_alpha_words"


def test_c4_removes_policy_and_javascript_lines_and_fineweb_sees_the_result():
    text = GOOD + "\nThis site uses cookies to improve your experience with the site.\nPlease enable JavaScript in your browser to view the page."
    a = verdict(text)
    assert a.reason is None
    assert "cookies" not in a.text and "JavaScript" not in a.text
    assert a.signals["q_c4_lines_removed"] == 2


def test_fineweb_short_lines_and_punctuation():
    menu = "\n".join(f"{w.capitalize()} page" for w in GOOD.split()[:40]) + "\n" + GOOD
    assert verdict(menu, c4=None).reason in {"fineweb_short_lines", "fineweb_newline_ratio"}
    no_punct = GOOD.replace(".", "")
    assert verdict(no_punct, c4=None).reason == "fineweb_line_punct"


def test_every_rule_can_be_switched_off():
    short = "Short text with the words of it."
    assert verdict(short, gopher_quality={"min_doc_words": None}, c4=None, fineweb=None).reason is None
    assert verdict(short, gopher_quality={"min_doc_words": 5}, c4=None, fineweb=None).reason is None
    assert verdict(short, gopher_quality=None, gopher_repetition=None, c4=None, fineweb=None).reason is None


ZH = (
    "北京是中国的首都，也是全国的政治和文化中心。这座城市有三千多年的历史，留下了许多古老的建筑。\n"
    "故宫位于城市的中心，是明清两代的皇家宫殿，现在是一座博物馆，每年有很多游客来这里参观。\n"
    "长城在北京的北部山区，人们可以在八达岭或者慕田峪登上城墙，看到连绵不断的山峰和美丽的风景。\n"
    "北京的饮食也很有名，烤鸭和炸酱面是很多人喜欢的食物，胡同里的小吃店常常排着长长的队伍。\n"
    "近年来城市发展很快，地铁线路不断增加，交通比以前方便了很多，但是空气质量仍然需要改善。\n"
    "大学和研究机构集中在城市的西北部，吸引了来自全国和世界各地的学生和学者在这里学习和工作。"
)


def test_chinese_uses_character_equivalents():
    a = verdict(ZH, lang="zh")
    assert a.reason is None, (a.reason, a.signals)
    assert a.signals["q_words"] > 200  # characters count as words
    assert verdict(ZH[:40], lang="zh").reason == "gopher_min_doc_words"
    # English thresholds applied to Chinese would drop it (one "word" per line):
    assert verdict(ZH, lang="zh", cjk={"languages": []}).reason is not None


def test_stage_process_adds_signal_columns():
    s = stage()
    batch = pa.RecordBatch.from_pydict({"text": [GOOD, "tiny", None], "language": ["en", "en", None]})
    res = s.process(batch)
    assert res.reasons[0] is None and res.reasons[1] is not None and res.reasons[2] == "empty"
    assert "q_words" in res.records.schema.names and "q_newline_ratio" in res.records.schema.names
    assert res.records.column("q_words").to_pylist()[0] > 50


def _top_reference(tokens, n, joiner):
    from collections import Counter

    if len(tokens) < n:
        return 0
    gram, count = Counter(joiner.join(tokens[i : i + n]) for i in range(len(tokens) - n + 1)).most_common(1)[0]
    return len(gram) * count if count > 1 else 0


def _dup_reference(tokens, n):
    seen, repeated, i = set(), 0, 0
    while i < len(tokens) - n + 1:
        gram = "".join(tokens[i : i + n])
        if gram in seen:
            repeated += len(gram)
            i += n
        else:
            seen.add(gram)
            i += 1
    return repeated


def test_ngram_measures_equal_their_definition_on_real_text():
    """Joined slices give exactly the per-position joins of the rules' definitions (Gopher's), on
    real page text and on tokens whose joins collide ('ab'+'c' == 'a'+'bc')."""
    import gzip
    import json

    from conftest import shared
    from refinery.stages import text_stats as ts

    base = shared("extraction", "wcxb_dev")
    with gzip.open(base / "ground_truth.jsonl.gz", "rt", encoding="utf-8") as fh:
        texts = [json.loads(line)["main_content"] or "" for _, line in zip(range(120), fh)]
    texts += ["ab c a bc ab c a bc " * 20, "x " * 300, "", "one two"]
    for text in texts:
        for cjk in (False, True):
            tokens = ts.words(text, cjk)
            joiner = "" if cjk else " "
            spaced, glued = ts.Joined(tokens, joiner), ts.Joined(tokens, "")
            for n in (2, 3, 4):
                assert ts.top_ngram_chars(tokens, n, joiner, spaced) == _top_reference(tokens, n, joiner)
            for n in range(5, 11):
                assert ts.duplicate_ngram_chars(tokens, n, glued) == _dup_reference(tokens, n)
                assert ts.duplicate_ngram_chars(tokens, n) == _dup_reference(tokens, n)
