"""Bad input: every malformed file of the shared WARC test sets plus generated garbage, in one batch.

Each bad file or record must come out as a clear per-file or per-record error (counters and
the rejects table, with a detail), the good records of the same batch must be committed, and
no worker may die or hang.  Large cases (a 50 MB page, a 10 MB JSONL line) are generated in
tmp_path at test time.
"""

from __future__ import annotations

import gzip
import json
import os
import random
import shutil
import threading
import time
import uuid
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from conftest import SHARED_DATA
from fault_util import worker_failures
from refinery import executor
from refinery.batch import run_batch
from refinery.errors import InputError
from refinery.pipeline_files import resolve
from refinery.readers import discover
from refinery.sample import write_sample_warc
from refinery.store import CorpusStore

pytestmark = pytest.mark.slow

WARCIO = SHARED_DATA / "warc" / "warcio_tests"
CLIPPED = SHARED_DATA / "warc" / "resiliparse_tests" / "clipped.warc.gz"
TEXT = ("The library opened a new reading room this spring. Readers can borrow books on Saturdays, "
        "and the staff will hold public readings every month. ") * 6
CHARSETS = ["iso-8859-1", "windows-1252", "iso-8859-2", "windows-1251", "koi8-r", "shift_jis", "euc-jp",
            "gb2312", "big5", "euc-kr", "utf-16", "iso-8859-7", "windows-1256"]
SAMPLES = {  # text each charset can encode
    "cyr": "Библиотека открыла новый читальный зал. Читатели могут брать книги по субботам. ",
    "ja": "図書館は新しい閲覧室を開きました。土曜日にも本を借りることができます。",
    "zh": "图书馆开设了新的阅览室。读者周六也可以借书。",
    "zh-tw": "圖書館開設了新的閱覽室。讀者週六也可以借書。",
    "ko": "도서관이 새 열람실을 열었습니다. 토요일에도 책을 빌릴 수 있습니다.",
    "el": "Η βιβλιοθήκη άνοιξε νέα αίθουσα ανάγνωσης. ",
    "ar": "افتتحت المكتبة قاعة قراءة جديدة. ",
    "latin": "Die Bibliothek hat ihre Öffnungszeiten erweitert: Leserinnen können auch samstags Bücher ausleihen. ",
}
SAMPLE_OF = {"windows-1251": "cyr", "koi8-r": "cyr", "shift_jis": "ja", "euc-jp": "ja", "gb2312": "zh",
             "big5": "zh-tw", "euc-kr": "ko", "iso-8859-7": "el", "windows-1256": "ar"}


def _page(body: str, charset_meta: str | None = None) -> str:
    meta = f'<meta charset="{charset_meta}">' if charset_meta else ""
    return f"<!DOCTYPE html><html><head>{meta}<title>t</title></head><body><article><p>{body}</p></article></body></html>"


def _http_record(url: str, payload: bytes, ctype: str, i: int) -> bytes:
    """One gzip member holding a WARC response record with the given HTTP Content-Type."""
    http = f"HTTP/1.1 200 OK\r\nContent-Type: {ctype}\r\nContent-Length: {len(payload)}\r\n\r\n".encode() + payload
    head = ("WARC/1.0\r\nWARC-Type: response\r\n"
            f"WARC-Record-ID: <urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'{i}:{url}')}>\r\n"
            f"WARC-Date: 2026-01-01T00:00:00Z\r\nWARC-Target-URI: {url}\r\n"
            f"Content-Type: application/http; msgtype=response\r\nContent-Length: {len(http)}\r\n\r\n").encode()
    return gzip.compress(head + http + b"\r\n\r\n", compresslevel=1, mtime=0)


def build_bad_inputs(d: Path) -> dict[str, str]:
    """Write the bad-input directory; returns {file name: what it is} for the report."""
    d.mkdir(parents=True)
    what: dict[str, str] = {}
    for p in sorted(WARCIO.iterdir()) if WARCIO.is_dir() else []:
        # Unsupported names (.arc, .arc.gz, .warc.gz.bad) are not inputs of a directory walk; their
        # bytes are also fed in under a WARC name, so their content is exercised too.
        shutil.copy(p, d / p.name)
        if p.name.endswith((".arc", ".arc.gz", ".bad")):
            stem = p.name.replace(".", "_")
            shutil.copy(p, d / f"renamed_{stem}.warc{'.gz' if p.name.endswith(('.gz', '.gz.bad')) else ''}")
    if CLIPPED.exists():
        shutil.copy(CLIPPED, d / "clipped.warc.gz")
    good, _ = write_sample_warc(d / "good")
    data = good.read_bytes()
    (d / "truncated.warc.gz").write_bytes(data[: len(data) // 2])
    (d / "not_gzip.warc.gz").write_bytes(b"this is a plain text file, not gzip and not WARC\n" * 20)
    rng = random.Random(3)
    recs = [_http_record("http://bad.invalid/binary", rng.randbytes(20000), "text/html", 0)]
    recs.append(_http_record("http://bad.invalid/deep", ("<div>" * 100_000 + "x" + "</div>" * 100_000).encode(),
                             "text/html", 1))
    recs.append(_http_record("http://bad.invalid/deep-narrow", ("<b>" * 5000 + TEXT + "</b>" * 5000).encode(),
                             "text/html", 2))
    for i, cs in enumerate(CHARSETS):
        body = SAMPLES[SAMPLE_OF.get(cs, "latin")]
        payload = _page(body * 4).encode(cs, errors="replace")
        wrong = "utf-8" if cs != "utf-8" else "iso-8859-1"
        recs.append(_http_record(f"http://bad.invalid/charset/{cs}", payload, f"text/html; charset={wrong}", 10 + i))
        recs.append(_http_record(f"http://bad.invalid/charset-meta/{cs}", _page(body * 4, "windows-1252").encode(cs, errors="replace"),
                                 "text/html; charset=bogus-charset", 40 + i))
    (d / "garbage_records.warc.gz").write_bytes(b"".join(recs))
    # A 50 MB single page (compresses to little: generation stays fast).
    big = _page(TEXT * (50 * 1024 * 1024 // len(TEXT) + 1)).encode()
    (d / "big_page.warc.gz").write_bytes(_http_record("http://bad.invalid/big", big, "text/html", 0))
    # JSONL: invalid UTF-8, invalid JSON, a non-object, no text field, a 10 MB line, a good line.
    lines = [b'{"id": "bad-utf8", "text": "caf\xe9 \xff\xfe"}', b'{"id": "bad-json", "text": ',
             b"[1, 2, 3]", b'{"id": "no-text", "title": "x"}',
             json.dumps({"id": "huge", "html": _page(TEXT * (10 * 1024 * 1024 // len(TEXT)))}).encode(),
             json.dumps({"id": "good", "text": TEXT}).encode()]
    (d / "mixed.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    (d / "broken.jsonl.gz").write_bytes(gzip.compress(b"\n".join(lines[-1:] * 3) + b"\n")[:-12])
    for name in ("empty.warc.gz", "empty.warc", "empty.jsonl", "empty.parquet"):
        (d / name).write_bytes(b"")
    (d / "empty_member.warc.gz").write_bytes(gzip.compress(b"", mtime=0))  # valid gzip, no WARC inside
    pq.write_table(pa.table({"body": ["x", "y"], "n": [1, 2]}), d / "wrong_schema.parquet")
    (d / "not_parquet.parquet").write_bytes(b"PAR1 garbage, not a parquet file")
    _red_team_inputs(d)
    what.update({p.name: "generated" for p in d.iterdir()})
    return what


RED_TEAM_LINES = {  # line number -> (raw JSON line, words its reject detail must contain)
    3: (b'{"text": ' + b"[" * 100_000 + b"]" * 100_000 + b"}", "nested too deeply"),
    10: (b'{"html": "\\udfff"}', "'html' is not valid Unicode"),
    20: (b'{"text": "a page", "fetch_time": 1e20}', "out of range"),
    30: (b'{"text": "a page", "fetch_time": NaN}', "'fetch_time' is nan"),
    40: (b'{"text": "hello \\ud800 world"}', "'text' is not valid Unicode"),
    50: (b'{"id": "\\ud800", "text": "x"}', "'id' is not valid Unicode"),
}
BIG_RECORDS = 32  # records just under the readers' 64 MiB guard: 2 GiB if one Arrow batch held them


def _red_team_inputs(d: Path) -> None:
    """The bad records of issue 13, each inside an otherwise good file."""
    lines = [json.dumps({"id": f"rt-{i}", "text": f"Record {i}. " + TEXT}).encode() for i in range(100)]
    for n, (raw, _) in RED_TEAM_LINES.items():
        lines[n] = raw
    (d / "red_team.jsonl").write_bytes(b"\n".join(lines) + b"\n")
    pq.write_table(pa.table({"id": ["a", "b", "c"], "html": pa.array([1, 2, 3], pa.int64())}), d / "int_html.parquet")
    pq.write_table(pa.table({"html": pa.array([["<p>x</p>"], ["y"]], pa.list_(pa.string()))}), d / "list_html.parquet")
    # One compressed body reused by every record (concatenated gzip members are one stream).
    from refinery.readers.warc import MAX_PAYLOAD_BYTES

    body = b"<html><body><p>" + b"x" * (MAX_PAYLOAD_BYTES - 1024) + b"</p></body></html>"
    http_head = f"HTTP/1.1 200 OK\r\nContent-Type: text/html\r\nContent-Length: {len(body)}\r\n\r\n".encode()
    body_member = gzip.compress(body, compresslevel=1, mtime=0)
    with (d / "big_records.warc.gz").open("wb") as f:
        for i in range(BIG_RECORDS):
            head = ("WARC/1.0\r\nWARC-Type: response\r\n"
                    f"WARC-Record-ID: <urn:uuid:{uuid.uuid5(uuid.NAMESPACE_URL, f'big-{i}')}>\r\n"
                    f"WARC-Date: 2026-01-01T00:00:00Z\r\nWARC-Target-URI: http://bad.invalid/big/{i}\r\n"
                    f"Content-Type: application/http; msgtype=response\r\n"
                    f"Content-Length: {len(http_head) + len(body)}\r\n\r\n").encode()
            f.write(gzip.compress(head + http_head, mtime=0) + body_member + gzip.compress(b"\r\n\r\n", mtime=0))


@pytest.fixture(scope="module")
def bad_batch(tmp_path_factory):
    root = tmp_path_factory.mktemp("bad")
    build_bad_inputs(root / "in")
    store = CorpusStore(root / "store")
    done: dict = {}
    executor.ensure_ray(None)
    failures_before = worker_failures()

    def run() -> None:
        try:
            done["out"] = run_batch(resolve("web-en"), [str(root / "in")], store)
        except BaseException as err:  # noqa: BLE001
            done["err"] = err

    t = threading.Thread(target=run, daemon=True)
    t.start()
    t.join(600)
    assert not t.is_alive(), "the bad-input batch hung"
    assert "err" not in done, repr(done.get("err"))
    out = done["out"]
    time.sleep(2)  # events reach the log within about a second
    assert worker_failures() == failures_before, "a Ray worker died during the bad-input batch (retried)"
    rejects = pa.concat_tables([pq.read_table(store.root / f.path) for f in out.record.rejects])
    kept = pa.concat_tables([pq.read_table(store.root / f.path, columns=["doc_id", "source_uri"])
                             for f in out.record.shards])
    return {"root": root, "store": store, "record": out.record, "rejects": rejects.to_pylist(),
            "kept": kept.to_pylist()}


def _html_responses(uri: str) -> int:
    """HTML 200 responses in a WARC (the only records a crawl batch takes; others are skipped)."""
    from fastwarc.warc import ArchiveIterator, WarcRecordType

    n = 0
    with open(uri.removeprefix("file://"), "rb") as f:
        for r in ArchiveIterator(f, record_types=WarcRecordType.response, parse_http=True):
            ctype = (r.http_headers.get("Content-Type") or "") if r.http_headers else ""
            n += "html" in ctype.lower() and r.http_headers.status_code == 200
    return n


def _by_file(rows: list[dict]) -> dict[str, list[dict]]:
    out: dict[str, list[dict]] = {}
    for r in rows:
        out.setdefault(os.path.basename(r["source_uri"]), []).append(r)
    return out


def test_every_record_accounted_for_and_good_ones_committed(bad_batch):
    rec = bad_batch["record"]
    for name, c in rec.counters.items():
        assert c["in"] == c["out"] + sum(c["dropped"].values()), name
    assert sum(f.rows for f in rec.rejects) == rec.docs_in - rec.docs_out
    assert rec.counters["read"]["dropped"]["read_error"] >= 10
    for r in bad_batch["rejects"]:
        assert r["reason"], r
        if r["stage"] in ("read", "extract") and r["reason"] not in ("empty",):
            assert r["detail"], r  # every error says what went wrong
    kept = {os.path.basename(r["source_uri"]) for r in bad_batch["kept"]}
    # The good files and the good records among bad ones are committed.
    assert "sample.warc.gz" in kept, kept
    mixed = [r for r in bad_batch["rejects"] + bad_batch["kept"] if r["source_uri"].endswith("mixed.jsonl")]
    assert len(mixed) == 6  # every line of the JSONL file: kept or rejected, none lost
    # Unsupported names in a directory are not inputs (docs/reliability.md).
    inputs = {os.path.basename(i["uri"]) for i in rec.inputs}
    if not WARCIO.is_dir():
        return
    assert "example.warc.gz" in {os.path.basename(r["source_uri"]) for r in bad_batch["rejects"]}
    assert not any(n.endswith((".arc", ".arc.gz", ".bad")) for n in inputs)
    assert "renamed_bad_arc.warc" in inputs and "renamed_example-bad_warc_gz_bad.warc.gz" in inputs


def test_each_bad_file_has_a_clear_error(bad_batch):
    rej = _by_file(bad_batch["rejects"])

    def details(name: str, stage: str = "read") -> list[str]:
        return [r["detail"] for r in rej.get(name, []) if r["stage"] == stage]

    for name in ("empty.warc.gz", "empty.warc", "empty.jsonl", "empty.parquet"):
        assert details(name) == ["empty file (0 bytes)"], (name, rej.get(name))
    assert any("truncated" in d or "corrupt" in d for d in details("truncated.warc.gz")), rej.get("truncated.warc.gz")
    assert details("not_gzip.warc.gz"), rej.get("not_gzip.warc.gz")
    assert details("empty_member.warc.gz") == ["no WARC record found: not a WARC file"]
    assert any("wrong schema" in d for d in details("wrong_schema.parquet"))
    assert any("not a readable Parquet" in d for d in details("not_parquet.parquet"))
    mixed = {r["record_id"]: r for r in rej["mixed.jsonl"]}
    assert "invalid UTF-8" in mixed["line:0"]["detail"]
    assert "invalid JSON" in mixed["line:1"]["detail"]
    assert "expected a JSON object" in mixed["line:2"]["detail"]
    assert "no string 'html' or 'text'" in mixed["line:3"]["detail"]
    assert (mixed["huge"]["stage"], mixed["huge"]["reason"]) == ("extract", "too_large")
    assert details("broken.jsonl.gz"), rej.get("broken.jsonl.gz")
    [big] = rej["big_page.warc.gz"]
    assert (big["stage"], big["reason"]) == ("extract", "too_large") and "bytes" in big["detail"]
    garbage = {r["url"]: r for r in rej["garbage_records.warc.gz"]}
    deep = garbage["http://bad.invalid/deep"]
    # web-en's survival gate may already see that the page has no text worth extracting
    assert (deep["stage"], deep["reason"]) in {("extract", "too_complex"), ("extract", "parse_error"),
                                               ("extract", "empty"), ("extract", "gate:min_words")}, deep
    # Pages whose HTTP header claims UTF-8 for other bytes are decoded by detection (the reject
    # rows keep the text: langid drops them from web-en, as non-English).
    for cs in CHARSETS:
        if cs == "windows-1251":  # detection takes it for a neighbour: first letters differ
            continue
        r = garbage[f"http://bad.invalid/charset/{cs}"]
        if r["reason"] == "exact_raw":  # same bytes and header as an earlier page: never extracted (issue 8)
            continue
        assert SAMPLES[SAMPLE_OF.get(cs, "latin")][:12] in (r["text"] or ""), (cs, r)
    # Every record of the garbage file is either kept or dropped with a reason: none lost.
    n_garbage = 3 + 2 * len(CHARSETS)
    kept_garbage = [r for r in bad_batch["kept"] if r["source_uri"].endswith("garbage_records.warc.gz")]
    assert len(kept_garbage) + len(rej["garbage_records.warc.gz"]) == n_garbage


def test_red_team_records_cost_only_themselves(bad_batch):
    """Issue 13: each bad record is one reject row with a plain reason; every other record of its
    file is committed or rejected (none lost), and the batch commits."""
    rej = _by_file(bad_batch["rejects"])
    kept = _by_file(bad_batch["kept"])
    rows = rej.get("red_team.jsonl", []) + kept.get("red_team.jsonl", [])
    assert len(rows) == 100 and len({r["doc_id"] for r in rows}) == 100
    read = {r["record_id"]: r for r in rej["red_team.jsonl"] if r["stage"] == "read"}
    assert set(read) == {"line:3", "line:10", "line:20", "line:30", "line:40", "line:50"}, sorted(read)
    for n, (_, words) in RED_TEAM_LINES.items():
        detail = read[f"line:{n}"]["detail"]
        assert words in detail and "\x1b" not in detail and "Traceback" not in detail, detail
    # The good lines go on through the pipeline (near-copies of mixed.jsonl's good line: dedup drops them).
    assert all(r["stage"] != "read" for r in rows if r["record_id"] not in read)
    for name, n in (("int_html.parquet", 3), ("list_html.parquet", 2)):
        details = [r["detail"] for r in rej[name]]
        assert len(details) == n and all("column 'html' is" in x for x in details), details
    big = rej["big_records.warc.gz"]
    # the records share one payload: raw-copy dedup drops all but the first before extraction
    assert len(big) == BIG_RECORDS and "too_large" in {r["reason"] for r in big}
    assert {r["reason"] for r in big} <= {"too_large", "exact_raw"}, {r["reason"] for r in big}


def test_warcio_files_each_report_or_commit(bad_batch):
    """Every file of warcio's test set that is an input either commits records or reports an error."""
    if not WARCIO.is_dir():
        pytest.skip(f"real test data not available: {WARCIO} (a fresh clone has no ../shared)")
    assert bad_batch["rejects"] and "renamed_bad_arc.warc" in _by_file(bad_batch["rejects"])
    rej, kept = _by_file(bad_batch["rejects"]), {os.path.basename(r["source_uri"]) for r in bad_batch["kept"]}
    for i in bad_batch["record"].inputs:
        name = os.path.basename(i["uri"])
        if name.startswith(("example", "post-test", "renamed_", "clipped")):
            assert name in kept or name in rej or not _html_responses(i["uri"]), f"{name}: neither committed nor reported"


def test_unsupported_file_named_explicitly_is_refused(bad_batch):
    if not WARCIO.is_dir():
        pytest.skip(f"real test data not available: {WARCIO} (a fresh clone has no ../shared)")
    with pytest.raises(InputError, match="unknown input format"):
        discover([str(bad_batch["root"] / "in" / "bad.arc")])
    with pytest.raises(InputError, match="unknown input format"):
        discover([str(bad_batch["root"] / "in" / "example-bad.warc.gz.bad")])


def test_task_error_is_one_plain_line(bad_batch):
    """A failed task's error, as a batch records it: the exception inside the task, no traceback."""
    import ray

    from refinery.errors import one_line

    @ray.remote(max_retries=0)
    def fails():
        raise TypeError("Cannot convert pyarrow.lib.ChunkedArray to pyarrow.lib.Array")

    with pytest.raises(ray.exceptions.RayTaskError) as err:
        ray.get(fails.remote())
    assert "\x1b[" in str(err.value) and "File " in str(err.value)  # what the batch error used to be
    assert one_line(err.value) == "TypeError: Cannot convert pyarrow.lib.ChunkedArray to pyarrow.lib.Array"
