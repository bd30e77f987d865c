"""url_filter: normalisation, list parsing errors, the real WARC acceptance, shipped lists, word rules."""

from __future__ import annotations

import csv
import gzip
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pyarrow as pa
import pytest

from conftest import shared
from refinery.config import parse_pipeline
from refinery.counters import Counters
from refinery.errors import ConfigError
from refinery.runner import PipelineRunner
from refinery.pipeline_files import resolve
from refinery.readers import discover, plan_units, read_unit
from refinery.stages.url_filter import UrlFilterOptions, UrlFilterStage
from refinery.urlfilter.lists import HashedSet, entry_hashes
from refinery.urlfilter.normalise import host_suffixes, split_url, url_prefixes


def _stage(tmp_path: Path, block: dict, **extra) -> UrlFilterStage:
    opts = UrlFilterOptions.model_validate({"root": str(tmp_path), "block": block, **extra})
    stage = UrlFilterStage(opts)
    stage.setup()
    return stage


def _write(path: Path, lines: list[str], gz: bool = False) -> str:
    data = ("\n".join(lines) + "\n").encode()
    path.write_bytes(gzip.compress(data) if gz else data)
    return path.name


def test_normalisation_case_ports_www_slash():
    assert split_url("HTTPS://WWW.Example.COM:443/A/b/?q=1#frag") == ("example.com", "/a/b?q=1")
    assert split_url("http://example.com:8080/x/") == ("example.com:8080", "/x")
    assert split_url("example.com/path") == ("example.com", "/path")
    assert split_url("not a url at all") is None or split_url("not a url at all")[0] == "not a url at all"
    assert split_url("") is None
    assert host_suffixes("a.b.example.com") == ["a.b.example.com", "b.example.com", "example.com", "com"]
    assert url_prefixes("example.com", "/a/b") == ["example.com", "example.com/a", "example.com/a/b"]


def test_domains_subdomains_urls_allowlist_and_category_order(tmp_path):
    _write(tmp_path / "evil.domains", ["# comment", "", "evil.example", "WWW.Bad.Example"])
    _write(tmp_path / "evil.urls.gz", ["good.example/private/area", "shop.example/x?id=3"], gz=True)
    _write(tmp_path / "other.domains", ["evil.example"])
    _write(tmp_path / "allow.domains", ["ok.evil.example"])
    stage = _stage(
        tmp_path,
        {"evil": {"domains": ["evil.domains"], "urls": ["evil.urls.gz"]}, "other": {"domains": ["other.domains"]}},
        allow={"domains": ["allow.domains"]},
    )
    got = stage.match([
        "http://evil.example/", "https://deep.sub.evil.example/page", "http://notevil.example/",
        "http://bad.example/anything", "http://www.good.example/Private/Area/", "http://good.example/private/area/more",
        "http://good.example/private/areas", "http://good.example/", "http://shop.example/x?id=3",
        "http://shop.example/x?id=4", "http://ok.evil.example/x", None, "",
    ])  # fmt: skip
    reasons = [g[0] if g else None for g in got]
    assert reasons == [
        "url:evil", "url:evil", None, "url:evil", "url:evil", "url:evil", None, None, "url:evil", None, None, None, None,
    ]
    assert got[1][1] == "domain evil.example" and got[4][1] == "url good.example/private/area"


def test_malformed_list_line_is_a_load_time_error_naming_file_and_line(tmp_path):
    _write(tmp_path / "d.txt", ["fine.example", "also.fine", "bad entry with spaces"])
    with pytest.raises(ConfigError, match=r"d\.txt:3: not a domain"):
        parse_pipeline({"name": "t", "stages": [{"url_filter": {"root": str(tmp_path), "block": {"x": {"domains": ["d.txt"]}}}}]})
    (tmp_path / "bin.txt").write_bytes(b"ok.example\n\xff\xfe.example\n")
    with pytest.raises(ConfigError, match=r"bin\.txt:2: not UTF-8"):
        parse_pipeline({"name": "t", "stages": [{"url_filter": {"root": str(tmp_path), "block": {"x": {"domains": ["bin.txt"]}}}}]})
    _write(tmp_path / "u.txt", ["example.com/a b"])
    with pytest.raises(ConfigError, match=r"u\.txt:1: a URL entry cannot contain whitespace"):
        parse_pipeline({"name": "t", "stages": [{"url_filter": {"root": str(tmp_path), "block": {"x": {"urls": ["u.txt"]}}}}]})
    with pytest.raises(ConfigError, match="not found"):
        parse_pipeline({"name": "t", "stages": [{"url_filter": {"root": str(tmp_path), "block": {"x": {"urls": ["missing"]}}}}]})


def test_list_contents_are_in_the_config_hash(tmp_path):
    _write(tmp_path / "d", ["a.example"])
    spec = {"name": "t", "stages": [{"url_filter": {"root": str(tmp_path), "block": {"x": {"domains": ["d"]}}}}, "extract"]}
    before = parse_pipeline(spec).config_hash()
    _write(tmp_path / "d", ["b.example"])
    from refinery.models import file_sha256

    file_sha256.cache_clear()
    assert parse_pipeline(spec).config_hash() != before


def test_word_rules_follow_datatrove_semantics(tmp_path):
    _write(tmp_path / "hard", ["porn"])
    _write(tmp_path / "soft", ["sex", "cam", "live"])
    _write(tmp_path / "sub", ["xxx"])
    stage = _stage(tmp_path, {}, words={"hard": "hard", "soft": "soft", "subwords": "sub", "soft_threshold": 2})
    got = stage.match([
        "http://a.example/porn-videos", "http://a.example/pornography", "http://a.example/live-cam",
        "http://a.example/live-music", "http://a.example/the-xxx-files", "http://a.example/boxxxing",
    ])  # fmt: skip
    assert [g[0] if g else None for g in got] == [
        "url:banned_word", None, "url:soft_banned_words", None, "url:banned_subword", "url:banned_subword",
    ]


def test_compact_structure_bytes_per_entry():
    rng = np.random.default_rng(0)
    h = rng.integers(0, 2**63, 300_000, dtype=np.uint64)
    s = HashedSet.build([(h[:150_000], 0), (h[100_000:], 1)], n_categories=3)
    assert len(s) == 300_000 and s.nbytes / len(s) <= 9  # 8-byte hash + 1 byte of category bits
    bits = s.lookup(h[[0, 120_000, 299_999]])
    assert bits.tolist() == [1, 3, 2]
    assert s.lookup(np.array([12345], np.uint64)).tolist() == [0]


def _real_batches(path: Path):
    files = discover([str(path)])
    for unit in plan_units(files, 10**6):
        yield from read_unit(unit, 64)


def test_real_pages_dropped_exactly_when_listed_and_never_extracted(tmp_path):
    """A list built from some real hosts and URLs of the WARC: those pages drop with their category, no other."""
    warc = shared("warc", "real_pages", "pages-000.warc.gz")
    manifest = shared("warc", "real_pages", "manifest.csv")
    urls = [r["url"] for r in csv.DictReader(open(manifest, encoding="utf-8")) if r["warc_file"] == warc.name]
    hosts = sorted({urlsplit(u).hostname.lower().removeprefix("www.") for u in urls})
    listed_hosts = hosts[::7]
    # Registrable parents of some hosts (subdomain rule) and exact page URLs of others.
    parents = sorted({".".join(h.split(".")[-2:]) for h in hosts[3::11]} - {"co.uk", "com.au"})
    listed_urls = [u for u in urls[5::13] if urlsplit(u).hostname.lower().removeprefix("www.") not in listed_hosts]
    _write(tmp_path / "hosts", listed_hosts)
    _write(tmp_path / "parents", parents)
    _write(tmp_path / "pages", [u.split("://", 1)[1] for u in listed_urls])

    def expected(u: str) -> str | None:
        host = urlsplit(u).hostname.lower().removeprefix("www.")
        if host in listed_hosts:
            return "url:hosts"
        if any(host == p or host.endswith("." + p) for p in parents):
            return "url:parents"
        norm = lambda x: x.split("://", 1)[1].lower().removeprefix("www.").split("#")[0].rstrip("/")  # noqa: E731
        if any(norm(u) == norm(v) or norm(u).startswith(norm(v) + "/") for v in listed_urls):
            return "url:pages"
        return None

    cfg = parse_pipeline({"name": "t", "stages": [
        {"url_filter": {"root": str(tmp_path), "block": {
            "hosts": {"domains": ["hosts"]}, "parents": {"domains": ["parents"]}, "pages": {"urls": ["pages"]}}}},
        {"extract": {"extractor": "resiliparse"}},
    ]})  # fmt: skip
    runner = PipelineRunner(cfg, "run")
    counters = Counters()
    rejects, seen = [], []
    for batch in _real_batches(warc):
        seen += batch.column("url").to_pylist()
        _, rej = runner.process(batch, counters)
        rejects += rej.to_pylist()
    want = {u: expected(u) for u in seen}
    got = {r["url"]: r["reason"] for r in rejects if r["stage"] == "url_filter"}
    assert got == {u: r for u, r in want.items() if r}
    assert {"url:hosts", "url:parents", "url:pages"} <= set(got.values())
    uf, ex, read = counters.stage("url_filter"), counters.stage("extract"), counters.stage("read")
    assert sum(uf.dropped.values()) == len(got) > 0
    assert ex.docs_in == read.docs_out - len(got)  # dropped pages never reached extraction


def test_shipped_web_en_lists_block_phishing_malware_adult_and_annotate_labels(tmp_path):
    cfg = resolve("web-en")
    spec = cfg.stage("url_filter")
    assert {"adult", "phishing", "malware"} <= set(spec.options.block)
    stage = UrlFilterStage(spec.options)
    stage.setup()
    got = stage.match(["http://0001-5cf.pages.dev/awards", "https://020sextoy.com/sk/item", "https://sub.cryptoloot.pro/",
                       "https://en.wikipedia.org/wiki/Phishing"])
    assert [g[0] if g else None for g in got] == ["url:phishing", "url:adult", "url:cryptojacking", None]
    assert stage.model_info()["url_filter"]["ut1"]["licence"] == "CC BY-SA 4.0"
    # annotate keeps the page and labels it with the stage and category
    mini = parse_pipeline({"name": "t", "stages": [{"url_filter": spec.options.model_dump(exclude={"sha256"})}]})
    runner = PipelineRunner(mini, "annotate")
    batch = pa.RecordBatch.from_pylist(
        [{"doc_id": "a", "url": "http://0001-5cf.pages.dev/awards", "source_uri": "s", "record_id": "1", "text": "x"},
         {"doc_id": "b", "url": "https://example.org/", "source_uri": "s", "record_id": "2", "text": "y"}],
        schema=pa.schema([f for f in __import__("refinery.schema", fromlist=["INPUT_SCHEMA"]).INPUT_SCHEMA]),
    )
    out, _ = runner.process(batch, Counters())
    assert out.column("verdict").to_pylist() == ["url_filter:url:phishing", "keep"]


def test_entry_hashes_of_shipped_files_match_manifest_counts():
    from refinery.stages.url_filter import DEFAULT_LISTS_ROOT
    import json

    m = json.loads((DEFAULT_LISTS_ROOT / "ut1" / "manifest.json").read_text())
    assert (DEFAULT_LISTS_ROOT / "ut1" / "LICENSE.pdf").is_file() and "CC BY-SA" in m["licence"]
    for name, f in m["files"].items():
        assert len(entry_hashes(DEFAULT_LISTS_ROOT / "ut1" / name, f["kind"])) == f["entries"]
