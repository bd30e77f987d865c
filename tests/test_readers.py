"""Readers: every format, stable ids, work-unit planning, and corrupt records that lose nothing else."""

import gzip
import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import zstandard

from conftest import shared
from refinery.errors import InputError
from refinery.readers import discover, doc_id, plan_units, read_unit, unit_size
from refinery.sample import write_sample_warc


def read_all(paths, per_unit=1000):
    rows = []
    for unit in plan_units(discover([str(p) for p in paths]), per_unit):
        for batch in read_unit(unit, 7):
            rows.extend(batch.to_pylist())
    return rows


def test_jsonl_all_compressions_and_corrupt_lines(tmp_path):
    lines = [
        json.dumps({"id": "a", "url": "http://x/a", "html": "<p>hello</p>", "fetch_time": "2024-05-01T10:00:00Z"}).encode(),
        b"{not json",
        json.dumps({"text": "plain text doc"}).encode(),
        b'{"text": "bad \xff utf8"}',
        json.dumps({"title": "no text field"}).encode(),
        json.dumps({"id": 7, "text": "last one survives"}).encode(),
    ]
    blob = b"\n".join(lines) + b"\n"
    (tmp_path / "a.jsonl").write_bytes(blob)
    (tmp_path / "b.jsonl.gz").write_bytes(gzip.compress(blob))
    (tmp_path / "c.jsonl.zst").write_bytes(zstandard.ZstdCompressor().compress(blob))
    for name in ("a.jsonl", "b.jsonl.gz", "c.jsonl.zst"):
        rows = read_all([tmp_path / name])
        assert len(rows) == 6
        ok = [r for r in rows if r["read_error"] is None]
        assert [r["record_id"] for r in ok] == ["a", "line:2", "7"]
        assert ok[0]["html"] == b"<p>hello</p>" and ok[0]["url"] == "http://x/a"
        assert ok[0]["fetch_time"].year == 2024
        assert ok[1]["text"] == "plain text doc" and ok[1]["html"] is None
        errors = [r["read_error"] for r in rows if r["read_error"]]
        assert any("invalid JSON" in e for e in errors)
        assert any("invalid UTF-8" in e for e in errors)
        assert any("no string 'html' or 'text'" in e for e in errors)


def test_parquet_input_and_wrong_schema(tmp_path):
    pq.write_table(pa.table({"id": ["x", "y"], "text": ["one", "two"], "url": ["u1", None]}), tmp_path / "ok.parquet")
    pq.write_table(pa.table({"body": ["nope"]}), tmp_path / "bad.parquet")
    rows = read_all([tmp_path / "ok.parquet"])
    assert [r["record_id"] for r in rows] == ["x", "y"] and rows[0]["text"] == "one"
    bad = read_all([tmp_path / "bad.parquet"])
    assert len(bad) == 1 and "wrong schema" in bad[0]["read_error"]


def test_doc_ids_are_stable_and_distinct(tmp_path):
    path, n = write_sample_warc(tmp_path)
    first = read_all([path])
    second = read_all([path], per_unit=5)  # different unit split, same ids and order
    assert [r["doc_id"] for r in first] == [r["doc_id"] for r in second]
    assert len({r["doc_id"] for r in first}) == len(first) == n
    assert first[0]["doc_id"] == doc_id(path.resolve().as_uri(), first[0]["record_id"])


def test_units_split_files_so_cores_stay_busy():
    warc = shared("warc", "real_pages", "pages-000.warc.gz")
    files = discover([str(warc)])
    units = plan_units(files, 50)
    assert len(units) >= 3
    rows = []
    for u in units:
        for b in read_unit(u, 64):
            rows.extend(b.column("record_id").to_pylist())
    assert len(rows) == len(set(rows)) > 100


def test_small_batches_are_cut_finer_down_to_a_floor():
    assert unit_size(10_000, 64, min_units=64, min_records_per_unit=8) == 64  # large batch: the maximum
    assert unit_size(574, 64, min_units=64, min_records_per_unit=8) == 9  # ceil(574 / 64)
    assert unit_size(100, 64, min_units=64, min_records_per_unit=8) == 8  # the floor
    assert unit_size(100, 4, min_units=64, min_records_per_unit=8) == 4  # never above the maximum
    assert unit_size(0, 64, min_units=64, min_records_per_unit=8) == 64
    warc = shared("warc", "real_pages", "pages-000.warc.gz")
    files = discover([str(warc)])
    coarse, fine = plan_units(files, 64), plan_units(files, 64, min_units=20, min_records_per_unit=4)
    assert len(coarse) == 3 and len(fine) == 20
    ids = lambda units: [r for u in units for b in read_unit(u, 64) for r in b.column("record_id").to_pylist()]  # noqa: E731
    assert ids(fine) == ids(coarse)  # the same records in the same order, whatever the cut


def test_units_seek_to_their_first_record_when_the_file_allows(tmp_path):
    """Per-record gzip members and plain WARCs get byte offsets; a WARC gzipped as one stream
    cannot be entered mid-way, gets none, and is read from the start: the same records either way."""
    import dataclasses
    import gzip

    from refinery.readers import warc

    members = shared("warc", "real_pages", "pages-000.warc.gz")
    plain = tmp_path / "plain.warc"
    plain.write_bytes(gzip.decompress(members.read_bytes()))  # all members, one plain file
    one_stream = tmp_path / "one-stream.warc.gz"
    one_stream.write_bytes(gzip.compress(plain.read_bytes()))
    for path, seekable in ((members, True), (plain, True), (one_stream, False)):
        total, offsets = warc.scan(str(path))
        assert total == 156 and (offsets is not None) == seekable, path
        units = plan_units(discover([str(path)]), 10)
        assert all((u.offset is not None) == seekable for u in units)
        rows = lambda us: [(r["record_id"], r["read_error"], r["html"]) for u in us for r in u.records()]  # noqa: E731
        assert rows(units) == rows([dataclasses.replace(u, offset=None) for u in units])
        assert len(rows(units)) > 100


def test_warc_keeps_only_html_responses_and_survives_truncation(tmp_path):
    real = shared("warc", "dolma_wget", "sample-0000.warc.gz")
    rows = read_all([real])
    assert rows and all(r["html"] for r in rows if r["read_error"] is None)
    clipped = shared("warc", "resiliparse_tests", "clipped.warc.gz")
    rows = read_all([clipped])
    assert all(r["read_error"] or r["html"] is not None for r in rows)
    # A truncated copy of a good file: records before the cut survive, the cut is reported.
    data = (shared("warc", "real_pages", "pages-002.warc.gz")).read_bytes()
    cut = tmp_path / "cut.warc.gz"
    cut.write_bytes(data[: len(data) // 2])
    rows = read_all([cut])
    good = [r for r in rows if r["read_error"] is None]
    assert len(good) > 20
    assert "truncated" in rows[-1]["read_error"]


def test_bad_paths_are_clear_errors(tmp_path):
    with pytest.raises(InputError, match="no such file"):
        discover([str(tmp_path / "missing.warc.gz")])
    (tmp_path / "notes.txt").write_text("x")
    with pytest.raises(InputError, match="unknown input format"):
        discover([str(tmp_path / "notes.txt")])
    with pytest.raises(InputError, match="no input files"):
        discover([str(tmp_path)])
