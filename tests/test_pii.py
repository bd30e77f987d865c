"""PII stage: what it finds, what it must leave alone, and that nothing but the spans changes."""

from __future__ import annotations

import gzip
import json
import re

import pyarrow as pa
import pytest

from conftest import shared
from refinery.config import parse_pipeline
from refinery.counters import Counters
from refinery.errors import ConfigError
from refinery.pii.detect import find_pii
from refinery.runner import PipelineRunner
from refinery.pipeline_files import resolve
from refinery.schema import INPUT_SCHEMA
from refinery.stages.pii import DEFAULT_PLACEHOLDERS, PiiStage

REGIONS = ("US", "GB", "DE")


def kinds_of(text: str) -> list[tuple[str, str]]:
    return [(s.kind, text[s.start : s.end]) for s in find_pii(text, phone_regions=REGIONS)]


@pytest.mark.parametrize(
    "text, expected",
    [
        ("write to jane.roe+news@mail.example.co.uk today", ("email", "jane.roe+news@mail.example.co.uk")),
        ("Call +44 20 7946 0958 now", ("phone", "+44 20 7946 0958")),
        ("Tel. (610) 285-5000", ("phone", "(610) 285-5000")),
        ("Telefon: 030 12345678", ("phone", "030 12345678")),
        ("Büro: +49 (0)30 2093 1234.", ("phone", "+49 (0)30 2093 1234")),
        ("the resolver 8.8.8.8 answered", ("ip", "8.8.8.8")),
        ("reach 2001:4860:4860::8888 over v6", ("ip", "2001:4860:4860::8888")),
        ("card 4111 1111 1111 1111 expires", ("credit_card", "4111 1111 1111 1111")),
        ("Amex 3782 822463 10005 ok", ("credit_card", "3782 822463 10005")),
        ("IBAN: DE89 3704 0044 0532 0130 00 BIC: COBADEFFXXX", ("iban", "DE89 3704 0044 0532 0130 00")),
        ("pay GB82WEST12345698765432.", ("iban", "GB82WEST12345698765432")),
    ],
)
def test_finds_each_kind(text, expected):
    assert kinds_of(text) == [expected]


@pytest.mark.parametrize(
    "text",
    [
        "Released as version 1.9.7.1 and v2.0.0.16; see Section 7.8.2.1.",
        "Server: openresty/1.9.7.1",
        "4.1.1.1 Installing packages",
        "local hosts 192.168.0.2, 10.0.0.1, 127.0.0.1 and fe80::1 and ::1",
        "std::vector<int> a::b; x = 0x7fff; if (a:b:c) {}",
        "Einsendeschluss: 03.11.2019 (Poststempel), Termin 2024-03-12 um 11:53:40",
        "Price $1,234,567.89 or EUR 1.234.567",
        "ISBN 978-3-7828-1534-5 and 9783942795111, ISSN 0028-0836",
        "a Luhn-invalid card 4111 1111 1111 1112 and a bad IBAN DE89 3704 0044 0532 0130 01",
        "logo@2x.png and pkg@1.2.3 and @decorator",
        "pages 164/165, issue 35/2023, range 350 - 351, Oct 13 2025",
    ],
)
def test_leaves_versions_dates_prices_isbns_code(text):
    assert kinds_of(text) == []


def stage_with(**options) -> PiiStage:
    cfg = parse_pipeline({"name": "t", "stages": [{"pii": options}]})
    stage = PiiStage(cfg.stages[0].options)
    stage.setup()
    return stage


def text_batch(texts: list[str], language: str = "en") -> pa.RecordBatch:
    n = len(texts)
    data = {f.name: [None] * n for f in INPUT_SCHEMA}
    data.update(doc_id=[str(i) for i in range(n)], source_uri=["file:///x"] * n, record_id=[str(i) for i in range(n)], text=texts)
    batch = pa.RecordBatch.from_pydict(data, schema=INPUT_SCHEMA)
    return batch.append_column("language", pa.array([language] * n, pa.string()))


def assert_only_spans_changed(original: str, redacted: str, placeholders: dict[str, str]) -> int:
    """The redacted text is the original with some spans replaced by placeholders, nothing else.

    Checked without the detector: the pieces of the redacted text between placeholders must
    appear in the original in order, the first at its start and the last at its end, each
    replaced span non-empty, on one line, holding a digit or an @ (leftmost placement of each
    piece is the one that leaves the most room, so a failure means no placement exists)."""
    alternatives = "|".join(re.escape(p) for p in sorted(set(placeholders.values()), key=len, reverse=True))
    pieces = re.split(f"(?:{alternatives})", redacted)
    assert original.startswith(pieces[0]), "text before the first replaced span changed"
    if len(pieces) == 1:
        assert original == redacted
        return 0
    pos = len(pieces[0])
    for piece in pieces[1:-1]:
        at = original.find(piece, pos + 1)
        assert at > pos, f"text outside the replaced spans changed near {piece[:40]!r}"
        span = original[pos:at]
        assert "\n" not in span and re.search(r"[\d@]", span), span
        pos = at + len(piece)
    last = pieces[-1]
    assert original.endswith(last) and len(original) - len(last) > pos, "text after the last replaced span changed"
    span = original[pos : len(original) - len(last)]
    assert "\n" not in span and re.search(r"[\d@]", span), span
    return len(pieces) - 1


def test_stage_replaces_with_typed_placeholders_and_counts():
    stage = stage_with()
    text = "Mail info@example.org or call +44 20 7946 0958; IBAN DE89 3704 0044 0532 0130 00, v1.2.3.4 stays."
    result = stage.process(text_batch([text, "nothing here, version 2.0.0.1", None]))
    out = result.records.column("text").to_pylist()
    assert out[0] == "Mail <EMAIL_ADDRESS> or call <PHONE_NUMBER>; IBAN <IBAN>, v1.2.3.4 stays."
    assert out[1] == "nothing here, version 2.0.0.1" and out[2] is None
    assert result.records.column("pii_email").to_pylist() == [1, 0, 0]
    assert result.records.column("pii_phone").to_pylist() == [1, 0, 0]
    assert result.records.column("pii_iban").to_pylist() == [1, 0, 0]
    assert result.reasons == [None, None, None]
    assert result.counts == {"email": 1, "iban": 1, "phone": 1}


def test_configured_placeholders_kinds_and_density_drop():
    stage = stage_with(kinds=["email"], placeholders={"email": "[mail]"}, max_density=5.0)
    contacts = " ".join(f"a{i}@example.com" for i in range(10))
    result = stage.process(text_batch([contacts, "one mail b@example.com in a longer text " + "word " * 60 + " +44 20 7946 0958"]))
    assert result.reasons == ["pii_density", None]
    assert "email=10" in result.details[0]
    assert result.records.column("text").to_pylist()[1].startswith("one mail [mail] in")
    assert result.records.column("text").to_pylist()[1].endswith("+44 20 7946 0958")  # phone not enabled
    assert result.records.column("pii_phone").to_pylist() == [None, None]


def test_options_are_validated_and_hashed():
    base = {"name": "t", "stages": [{"pii": {}}]}
    with pytest.raises(ConfigError, match="phone_regions"):
        parse_pipeline({"name": "t", "stages": [{"pii": {"phone_regions": {"en": ["XX"]}}}]})
    with pytest.raises(ConfigError, match="placeholders"):
        parse_pipeline({"name": "t", "stages": [{"pii": {"placeholders": {"email": ""}}}]})
    with pytest.raises(ConfigError, match="kinds"):
        parse_pipeline({"name": "t", "stages": [{"pii": {"kinds": ["ssn"]}}]})
    h = parse_pipeline(base).config_hash()
    for change in ({"max_density": 3.0}, {"kinds": ["email"]}, {"placeholders": {"ip": "<IP>"}}, {"phone_regions": {"default": ["FR"]}}):
        assert parse_pipeline({"name": "t", "stages": [{"pii": change}]}).config_hash() != h, change
    with pytest.raises(ConfigError, match="out of order"):
        parse_pipeline({"name": "t", "stages": [{"dedup": {}}, {"pii": {}}]})


def test_web_en_enables_every_kind_with_typed_placeholders():
    spec = resolve("web-en").stage("pii")
    assert spec is not None
    assert set(spec.options.kinds) == {"email", "phone", "ip", "credit_card", "iban"}
    placeholders = {**DEFAULT_PLACEHOLDERS, **spec.options.placeholders}
    assert len(set(placeholders.values())) == 5 and all(p.startswith("<") for p in placeholders.values())


def test_annotate_and_rejects_name_the_pii_rule():
    cfg = parse_pipeline({"name": "t", "rejects": {"mode": "all"}, "stages": [{"pii": {"max_density": 5.0}}]})
    contacts = " ".join(f"a{i}@example.com" for i in range(10))
    calm = "call +44 20 7946 0958 about the harbour" + " and the boats" * 20
    batch = text_batch([contacts, calm]).drop_columns(["language"])
    counters = Counters()
    out, rejects = PipelineRunner(cfg, mode="annotate").process(batch, counters)
    assert out.column("verdict").to_pylist() == ["pii:pii_density", "keep"]
    assert out.column("pii_phone").to_pylist() == [0, 1]
    counters = Counters()
    out, rejects = PipelineRunner(cfg, mode="run").process(batch, counters)
    assert out.column("text").to_pylist() == [calm.replace("+44 20 7946 0958", "<PHONE_NUMBER>")]
    assert rejects.column("stage").to_pylist() == ["pii"] and rejects.column("reason").to_pylist() == ["pii_density"]
    c = counters.to_dict()["pii"]
    assert c["dropped"] == {"pii_density": 1} and c["events"] == {"email": 10, "phone": 1}
    assert Counters.from_dict(counters.to_dict()).to_dict() == counters.to_dict()


def _real_texts(limit: int) -> list[str]:
    texts = []
    with gzip.open(shared("extraction", "wcxb_dev", "ground_truth.jsonl.gz"), "rt") as f:
        for line in f:
            t = json.loads(line).get("main_content")
            if t:
                texts.append(t)
            if len(texts) >= limit:
                break
    gold = json.loads(shared("extraction", "article_benchmark", "ground-truth.json").read_text())
    texts += [v["articleBody"] for v in list(gold.values())[:100] if v.get("articleBody")]
    return texts


def test_real_pages_keep_every_non_pii_byte():
    stage = PiiStage(resolve("web-en").stage("pii").options)
    stage.setup()
    texts = _real_texts(400)
    out = stage.process(text_batch(texts)).records.column("text").to_pylist()
    replaced = sum(assert_only_spans_changed(a, b, stage.placeholders) for a, b in zip(texts, out))
    assert replaced > 20  # the set has real addresses and numbers: the check is not vacuous


def test_sample_batch_keeps_every_non_pii_byte():
    from refinery.sample import sample_pages
    from refinery.stages.extract import ExtractStage

    pages = sample_pages()
    cfg = parse_pipeline({"name": "t", "stages": [{"extract": {}}]})
    extract = ExtractStage(cfg.stages[0].options)
    extract.setup()
    data = {f.name: [None] * len(pages) for f in INPUT_SCHEMA}
    data.update(doc_id=[str(i) for i in range(len(pages))], source_uri=["file:///s"] * len(pages),
                record_id=[str(i) for i in range(len(pages))], url=[u for u, _ in pages], html=[h.encode() for _, h in pages])
    texts = [t for t in extract.process(pa.RecordBatch.from_pydict(data, schema=INPUT_SCHEMA)).records.column("text").to_pylist() if t]
    # The sample's pages, and the same pages with PII written into them.
    planted = [t.replace(". ", ". Write to ops@example.org or call +1 (212) 555-0123 from 203.0.113.7 or 8.8.4.4. ", 1) for t in texts]
    stage = PiiStage(resolve("web-en").stage("pii").options)
    stage.setup()
    for batch_texts, min_replaced in ((texts, 0), (planted, len(texts))):
        out = stage.process(text_batch(batch_texts)).records.column("text").to_pylist()
        replaced = sum(assert_only_spans_changed(a, b, stage.placeholders) for a, b in zip(batch_texts, out))
        assert replaced >= min_replaced


def test_labels_file_holds_hashes_and_labels_only():
    """The shipped hand review names spans by salted hash: no address or number may leak into it."""
    from conftest import REPO

    lines = [ln for ln in (REPO / "bench" / "data" / "pii_labels.tsv").read_text(encoding="utf-8").splitlines() if not ln.startswith("#")]
    assert lines[0] == "key\tlabel\tnote" and len(lines) > 100
    for line in lines[1:]:
        key, label, note = line.split("\t")
        assert re.fullmatch(r"[0-9a-f]{20}", key), line
        assert label in {"email", "phone", "ip", "credit_card", "iban", "none"}, line
        assert "@" not in note and not re.search(r"\d{3}", note), line


def test_stage_events_reach_metrics_and_provenance(tmp_path):
    from refinery.service.metrics import ServiceMetrics
    from refinery.service.queue import BatchQueue
    from refinery.store import CorpusStore

    store = CorpusStore(tmp_path / "store")
    m = ServiceMetrics(store, BatchQueue(store.state_dir / "q.db"))
    m.unit_done("web-en", {"pii": {"in": 3, "out": 3, "dropped": {}, "seconds": 0.1, "events": {"email": 2, "phone": 1}}})
    samples = {(s.labels["stage"], s.labels["event"]): s.value
               for fam in m.registry.collect() if fam.name == "refinery_stage_events" for s in fam.samples
               if s.name.endswith("_total")}
    assert samples == {("pii", "email"): 2.0, ("pii", "phone"): 1.0}
    info = PipelineRunner(resolve("web-en")).model_info()
    assert re.fullmatch(r"\d+\.\d+\.\d+", info["pii"]["phonenumbers"])
    assert re.fullmatch(r"[0-9a-f]{64}", info["pii"]["rules_sha256"])


def test_real_warc_pages_through_extraction_keep_every_non_pii_byte():
    """Real crawled pages, extracted as a run would: with and without the pii stage, texts differ only in spans."""
    from refinery.readers import WorkUnit, discover, read_unit

    [f] = discover([str(shared("warc", "real_pages", "pages-001.warc.gz"))])
    plain = parse_pipeline({"name": "t", "stages": [{"extract": {}}]})
    extracted = [PipelineRunner(plain, "annotate").process(b, Counters())[0] for b in read_unit(WorkUnit(0, f, 0, 40, None), 40)]
    stage = PiiStage(resolve("web-en").stage("pii").options)
    stage.setup()
    before = [t for b in extracted for t in b.column("text").to_pylist()]
    after = [t for b in extracted for t in stage.process(b).records.column("text").to_pylist()]
    assert len(before) == len(after) and sum(1 for t in before if t) > 20
    for a, b in zip(before, after):
        if a is None:
            assert b is None
        else:
            assert_only_spans_changed(a, b, stage.placeholders)


# Dates, times, date-times, year runs and version numbers in the shapes pages print them: libphonenumber
# takes many for valid national numbers (`2020 06 16 02` is ten digits), so none may be redacted in any
# language's regions.  The Chinese and Japanese forms reach the matcher with their 年/月/日 blanked.
DATE_TIME_SHAPES = [
    "时间：2020年06月16日 02:31 来源",
    "2020年02月07日 14:28",
    "发布时间：2025-03-01 12:30",
    "2025/03/01 12:30:45",
    "2025年3月1日",
    "2023年12月25日 14時30分",
    "2020年6月16日10时30分",
    "令和5年3月1日",
    "입력: 2007년 06월 11일 18:05:16",
    "更新于 2019.12.31 23:59",
    "2020-06-16 02:30:15",
    "2024-03-12T11:53:40Z",
    "Posted 2020-06-16 02:30 by",
    "on 03/01/2025 12:30",
    "01.03.2025 12:30 Uhr",
    "16 06 2020 10 30",
    "2025 03 01 12 30",
    "Mar 1, 2025 12:30 PM",
    "Einsendeschluss: 03.11.2019 (Poststempel)",
    "วันที่ 11 กันยายน 2552 เวลา 15.30 - 16.30 น.",
    "เวลา 09.00 - 12.00 น.",
    "ประกาศเมื่อ 20/03/2558 เปิดอ่าน",
    "14:30-16:30 2025",
    "1998-2005",
    "1998–2005 2006",
    "2011 2012 2013 2014",
    "1990–2005 and 2006–2010",
    "20250301 1230",
    "version 10.2.3.4567",
    "v 2.3.4567890",
    "Knob & Tube Wiring: 1800s–1930s",
    "<function fun_num at 0x1035a2840>",
    "4K (3840x2160) 1 item",
    "NM360 20*2000*80000 5500 NM400",
]
ALL_REGIONS = {
    "en": ["US", "GB", "CA", "AU", "IE", "NZ", "IN"], "de": ["DE", "AT", "CH"], "fr": ["FR", "BE", "CH", "CA"],
    "zh": ["CN", "TW", "HK"], "ja": ["JP"], "ko": ["KR"], "ru": ["RU"], "pl": ["PL"], "pt": ["PT", "BR"],
    "th": ["TH"], "vi": ["VN"], "cs": ["CZ"], "tr": ["TR"], "many": ["CN", "JP", "KR", "TH", "VN", "IR", "IL", "SA", "EG",
    "SE", "NO", "FI", "DK", "ES", "IT", "NL", "MX", "AR", "ID", "MY", "GR", "HU", "RO", "UA"],
}


@pytest.mark.parametrize("text", DATE_TIME_SHAPES)
def test_dates_times_years_are_no_phone_numbers_in_any_region(text):
    for lang, regions in ALL_REGIONS.items():
        found = [text[s.start : s.end] for s in find_pii(text, ("phone",), regions)]
        assert found == [], (lang, found)


# Real formats, one or more per region, that must still be found (national ones with their region).
PHONE_FORMATS = [
    ("Call +44 20 7946 0958 now", ["US"], "+44 20 7946 0958"),
    ("Tel. (610) 285-5000", ["US"], "(610) 285-5000"),
    ("call 1-800-555-0199 today", ["US"], "1-800-555-0199"),
    ("call (610) 285-5000 x123 now", ["US"], "(610) 285-5000"),  # the extension is outside the digit run searched
    ("phone 020 7946 0958", ["GB"], "020 7946 0958"),
    ("Telefon: 030 12345678", ["DE"], "030 12345678"),
    ("Tel. 089 / 12 34 56", ["DE"], "089 / 12 34 56"),
    ("Tel.: +43 1 479 15 23", ["AT"], "+43 1 479 15 23"),
    ("Tél. : 01 23 45 67 89", ["FR"], "01 23 45 67 89"),
    ("tél 06.12.34.56.78", ["FR"], "06.12.34.56.78"),
    ("电话：010-62345678", ["CN"], "010-62345678"),
    ("电话：021-56692669 传真", ["CN"], "021-56692669"),
    ("手机 13917985004 联系", ["CN"], "13917985004"),
    ("TEL：0512-55111066", ["CN"], "0512-55111066"),
    ("電話 03-1234-5678", ["JP"], "03-1234-5678"),
    ("전화 02-312-3456", ["KR"], "02-312-3456"),
    ("телефон: +7 495 123-45-67", ["RU"], "+7 495 123-45-67"),
    ("тел. 8 (495) 123-45-67", ["RU"], "8 (495) 123-45-67"),
    ("tel. 22 123 45 67", ["PL"], "22 123 45 67"),
    ("tel: 601 234 567", ["CZ"], "601 234 567"),
    ("Tel +90 212 123 45 67", ["TR"], "+90 212 123 45 67"),
    ("โทรศัพท์ : 02 997 2222 ต่อ", ["TH"], "02 997 2222"),
    ("โทร. 085-8661948 รับซื้อ", ["TH"], "085-8661948"),
    ("Tel: 0911 234 567", ["VN"], "0911 234 567"),
    ("Tel. 0800 123 4567 (Mo-Fr 9.00-16.00)", ["GB"], "0800 123 4567"),
    ("Büro: +49 (0)30 2093 1234, Termin 2024-03-12 um 11:53", ["DE"], "+49 (0)30 2093 1234"),
]


@pytest.mark.parametrize("text, regions, number", PHONE_FORMATS)
def test_real_phone_formats_are_still_found(text, regions, number):
    assert [text[s.start : s.end] for s in find_pii(text, ("phone",), regions)] == [number]


def test_more_languages_have_phone_regions():
    from refinery.stages.pii import DEFAULT_PHONE_REGIONS

    for lang, region in (("th", "TH"), ("vi", "VN"), ("tr", "TR"), ("cs", "CZ"), ("sv", "SE"), ("ar", "EG")):
        assert region in DEFAULT_PHONE_REGIONS[lang]
    stage = stage_with()
    assert stage.regions("th") == ("TH", "US", "GB") and stage.regions("xx") == ("US", "GB")


# Shapes added after the fresh-2 rows were read (bench/README.md): ranges, citations, decimals,
# quantities, ISBNs and versions that reached the matcher as valid national numbers.
@pytest.mark.parametrize(
    "text",
    [
        "FCK (2009-2010) og FCN (2011-2012). Den",
        "Alain de Lille ( 1128 – 1202/1203) was a theologian",
        "William Kent(1685 – 1745)、查尔斯",
        "Toxicology）,48 (2010) 658–667》资料",
        "国际标准书号 3-937975-00-4Creer",
        "ISBN-13 978-4-02-213028-0 に",
        "truth (DDC 2.40.60-2.42.63). Third",
        "broadcasts on 97.6-96.7-102.8 FM",
        "aproximadamente 1 160 000 000 millas cuadradas, 734 000 000 millas",
        "both Chrome 144.0.7559.133 and Edge 144.0.3719.104 on Windows 11",
    ],
)
def test_ranges_citations_quantities_isbns_versions_are_no_phone_numbers(text):
    for lang, regions in ALL_REGIONS.items():
        found = [text[s.start : s.end] for s in find_pii(text, ("phone",), regions)]
        assert found == [], (lang, found)


def test_a_four_group_number_passing_the_isbn_check_is_still_a_number():
    # 044 826 76 75 has a valid ISBN-10 check digit: only hyphenated groups are read as an ISBN.
    text = "Tel.: 044 826 76 75 | Mo-Fr 10-18:30"
    assert [text[s.start : s.end] for s in find_pii(text, ("phone",), ("CH",))] == ["044 826 76 75"]


@pytest.mark.parametrize(
    "text, lang, number",
    [
        ("Тэлефоны: 8(0176) 74-96-83, або", "be", "8(0176) 74-96-83"),
        ("Գովազդի համար զանգահարել 099 999 409 «", "hy", "099 999 409"),
        ("Loko mi lava swikhongelo Prayerline: 060 498 8089.", "ts", "060 498 8089"),
        ("pacientu pieteikšana – tālr. 64202543, mob.", "lv", "64202543"),
    ],
)
def test_numbers_of_the_regions_added_for_more_languages(text, lang, number):
    stage = stage_with()
    assert [text[s.start : s.end] for s in find_pii(text, ("phone",), stage.regions(lang))] == [number]
