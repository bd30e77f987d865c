"""Every refusal is a clear 4xx with a reason and leaves no state behind (one test per case).

The real FastAPI app runs in-process; its lifespan (scheduler, Ray) is not
started, since nothing here may reach it: refused requests must not even
queue a batch.
"""

from __future__ import annotations

import gzip
import os

import pytest
from fastapi.testclient import TestClient

from refinery.sample import write_sample_warc
from refinery.service.app import Settings, create_app
from service_util import OPERATOR, READER


@pytest.fixture
def svc(tmp_path):
    root = tmp_path / "inputs"
    root.mkdir()
    write_sample_warc(root)
    outside = tmp_path / "outside"
    outside.mkdir()
    write_sample_warc(outside)
    settings = Settings(
        store=str(tmp_path / "store"),
        input_roots=[str(root)],
        tokens={OPERATOR: "operator", READER: "reader"},
        max_body_bytes=4096,
        max_upload_bytes=64 * 1024,
    )
    app = create_app(settings)
    client = TestClient(app)  # not entered: no lifespan, so no scheduler and no Ray
    service = app.state.service
    yield {"client": client, "service": service, "root": root, "outside": outside, "tmp": tmp_path}
    service.queue.close()


def _auth(token=OPERATOR):
    return {"Authorization": f"Bearer {token}"}


def _assert_nothing_left(s) -> None:
    service = s["service"]
    assert service.queue.counts() == {k: 0 for k in service.queue.counts()}
    assert list(service.uploads.iterdir()) == []
    assert list(service.store.staging_dir.iterdir()) == []
    assert service.store.commit_numbers() == []


def _refused(r, status: int, *words: str) -> None:
    assert r.status_code == status, r.text
    detail = r.json()["detail"]
    assert isinstance(detail, str) and detail
    for w in words:
        assert w in detail, detail


def test_accepted_submission_is_queued(svc):
    """The control case: the same request with the right token and a confined path is accepted."""
    r = svc["client"].post("/v1/batches", json={"source": "sample.warc.gz", "pipeline": "web-en"}, headers=_auth())
    assert r.status_code == 202, r.text
    b = r.json()
    assert b["state"] == "queued" and b["inputs"] == [str((svc["root"] / "sample.warc.gz").resolve())]
    assert svc["service"].queue.counts()["queued"] == 1


def test_unauthenticated_refused(svc):
    c = svc["client"]
    r = c.post("/v1/batches", json={"source": "sample.warc.gz", "pipeline": "web-en"})
    _refused(r, 401, "bearer")
    assert r.headers["www-authenticate"] == "Bearer"
    _refused(c.get("/v1/batches"), 401)
    _refused(c.post("/v1/batches", json={"source": "sample.warc.gz", "pipeline": "web-en"},
                    headers=_auth("not-a-real-token-000000")), 401, "invalid token")
    _refused(c.get("/v1/commits", headers={"Authorization": "Basic abc"}), 401)
    _assert_nothing_left(svc)


def test_wrong_role_refused(svc):
    c = svc["client"]
    r = c.post("/v1/batches", json={"source": "sample.warc.gz", "pipeline": "web-en"}, headers=_auth(READER))
    _refused(r, 403, "reader", "operator")
    r = c.post("/v1/batches/upload", params={"pipeline": "web-en", "filename": "x.warc.gz"},
               content=(svc["root"] / "sample.warc.gz").read_bytes(), headers=_auth(READER))
    _refused(r, 403)
    _refused(c.post("/v1/batches/abc/cancel", headers=_auth(READER)), 403)
    _refused(c.post("/v1/batches/abc/retry", headers=_auth(READER)), 403)
    assert c.get("/v1/batches", headers=_auth(READER)).status_code == 200  # reading is allowed
    _assert_nothing_left(svc)


def test_dotdot_traversal_refused(svc):
    c = svc["client"]
    for src in ["../outside/sample.warc.gz", "sub/../../outside", f"{svc['root']}/../outside/sample.warc.gz",
                f"file://{svc['root']}/../outside/sample.warc.gz"]:
        r = c.post("/v1/batches", json={"source": src, "pipeline": "web-en"}, headers=_auth())
        _refused(r, 403, "..")
    _assert_nothing_left(svc)


def test_absolute_path_outside_roots_refused(svc):
    r = svc["client"].post("/v1/batches", json={"source": str(svc["outside"] / "sample.warc.gz"), "pipeline": "web-en"},
                           headers=_auth())
    _refused(r, 403, "outside the input roots")
    _assert_nothing_left(svc)


def test_symlink_escape_refused(svc):
    root, outside = svc["root"], svc["outside"]
    os.symlink(outside / "sample.warc.gz", root / "link.warc.gz")  # a file link out of the root
    os.symlink(outside, root / "linkdir")  # a directory link out of the root
    (root / "nested").mkdir()
    os.symlink(outside / "sample.warc.gz", root / "nested" / "inner.warc.gz")  # met while walking a directory
    c = svc["client"]
    for src in ["link.warc.gz", "linkdir", "linkdir/sample.warc.gz", "nested", "*.warc.gz"]:
        r = c.post("/v1/batches", json={"source": src, "pipeline": "web-en"}, headers=_auth())
        _refused(r, 403, "outside the input roots")
    _assert_nothing_left(svc)


def test_url_schemes_refused(svc):
    c = svc["client"]
    for src, status in [("http://example.com/a.warc.gz", 400), ("ftp://host/a.warc", 400),
                        ("s3://bucket/a.warc.gz", 422), ("file://otherhost/x.warc", 400)]:
        r = c.post("/v1/batches", json={"source": src, "pipeline": "web-en"}, headers=_auth())
        _refused(r, status, src.split(":")[0])
    _assert_nothing_left(svc)


def test_oversize_json_body_refused(svc):
    body = {"source": "sample.warc.gz", "pipeline": "web-en", "labels": {"pad": "x" * 10_000}}
    r = svc["client"].post("/v1/batches", json=body, headers=_auth())
    _refused(r, 413, "limit")
    _assert_nothing_left(svc)


def test_oversize_upload_refused(svc):
    big = gzip.compress(b"WARC/1.0\r\n" + os.urandom(100_000), compresslevel=0)
    c = svc["client"]
    r = c.post("/v1/batches/upload", params={"pipeline": "web-en", "filename": "big.warc.gz"}, content=big,
               headers=_auth())
    _refused(r, 413, "limit")

    def chunks():  # no Content-Length: the limit is enforced while streaming
        for i in range(0, len(big), 8192):
            yield big[i:i + 8192]

    r = c.post("/v1/batches/upload", params={"pipeline": "web-en", "filename": "big.warc.gz"}, content=chunks(),
               headers=_auth())
    _refused(r, 413, "limit")
    _assert_nothing_left(svc)


def test_malformed_requests_refused(svc):
    c = svc["client"]
    h = _auth() | {"Content-Type": "application/json"}
    _refused(c.post("/v1/batches", content=b"{not json", headers=h), 400, "JSON")
    _refused(c.post("/v1/batches", content=b"[1, 2]", headers=h), 400, "object")
    _refused(c.post("/v1/batches", json={"pipeline": "web-en"}, headers=_auth()), 422, "source")
    _refused(c.post("/v1/batches", json={"source": 5, "pipeline": "web-en"}, headers=_auth()), 422, "source")
    _refused(c.post("/v1/batches", json={"source": "sample.warc.gz", "pipeline": "web-en", "bogus": 1},
                    headers=_auth()), 422, "bogus")
    _refused(c.post("/v1/batches", json={"source": "sample.warc.gz", "pipeline": "no-such-pipeline"},
                    headers=_auth()), 422, "unknown pipeline")
    _refused(c.post("/v1/batches", json={"source": "missing.warc.gz", "pipeline": "web-en"}, headers=_auth()),
             422, "no such file")
    _refused(c.post("/v1/batches", json={"source": "", "pipeline": "web-en"}, headers=_auth()), 400)
    _refused(c.get("/v1/batches", params={"state": "weird"}, headers=_auth()), 422, "state")
    _refused(c.get("/v1/commits", params={"since": -1}, headers=_auth()), 422)
    # uploads: bad name, not a WARC, empty
    warc = (svc["root"] / "sample.warc.gz").read_bytes()
    up = "/v1/batches/upload"
    _refused(c.post(up, params={"pipeline": "web-en", "filename": "../x.warc.gz"}, content=warc, headers=_auth()), 400)
    _refused(c.post(up, params={"pipeline": "web-en", "filename": "x.parquet"}, content=warc, headers=_auth()), 400)
    _refused(c.post(up, params={"pipeline": "web-en", "filename": "x.warc.gz"}, content=b"hello world",
                    headers=_auth()), 400, "not a WARC")
    _refused(c.post(up, params={"pipeline": "web-en", "filename": "x.warc.gz"}, content=gzip.compress(b"<html>"),
                    headers=_auth()), 400, "not a WARC")
    _refused(c.post(up, params={"pipeline": "web-en", "filename": "x.warc.gz"}, content=b"", headers=_auth()), 400)
    _refused(c.post(up, params={"filename": "x.warc.gz"}, content=warc, headers=_auth()), 422, "pipeline")
    _refused(c.get("/v1/batches/nope", headers=_auth()), 404)
    _refused(c.post("/v1/batches/nope/cancel", headers=_auth()), 404)
    _assert_nothing_left(svc)


def test_open_endpoints(svc):
    c = svc["client"]
    assert c.get("/healthz").json()["status"] == "ok"
    r = c.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["ray"] is False  # scheduler not started here
    m = c.get("/metrics").text
    assert "refinery_queue_depth 0.0" in m and 'refinery_batches{state="queued"} 0.0' in m
    assert "refinery_dedup_index_entries" not in m  # absent until a dedup index exists
    assert "<canvas id=\"throughput\"" in c.get("/").text
    assert "/v1/batches" in c.get("/openapi.json").json()["paths"]
    names = [p["name"] for p in c.get("/v1/pipelines", headers=_auth(READER)).json()["pipelines"]]
    assert "web-en" in names


def test_second_service_on_the_same_store_refused(svc):
    from refinery.errors import RefineryError

    settings = Settings(store=str(svc["tmp"] / "store"), input_roots=[str(svc["root"])], tokens={OPERATOR: "operator"})
    with pytest.raises(RefineryError, match="another refinery service"):
        create_app(settings)


def test_orphan_uploads_removed_at_start(tmp_path):
    """An upload stored but never queued (the service died in between) does not survive a restart."""
    orphan = tmp_path / "store" / "state" / "uploads" / ("ab" * 16)
    orphan.mkdir(parents=True)
    (orphan / "x.warc.gz").write_bytes(b"WARC/1.0\r\n")
    (orphan.parent / ".tmp-123").write_bytes(b"partial")
    app = create_app(Settings(store=str(tmp_path / "store"), input_roots=[str(tmp_path)], tokens={OPERATOR: "operator"}))
    assert list(app.state.service.uploads.iterdir()) == []


# -- issue 13: sources that could hang the write path; storage failures as JSON answers -----------
def test_symlink_loop_and_outside_globs_answer_fast_and_block_nothing(svc):
    import time
    from concurrent.futures import ThreadPoolExecutor

    loop = svc["root"] / "loopdir"
    loop.mkdir()
    os.symlink(".", loop / "a")
    os.symlink(".", loop / "b")
    c = svc["client"]

    def submit(source: str):
        t = time.monotonic()
        r = c.post("/v1/batches", json={"source": source, "pipeline": "web-en"}, headers=_auth())
        return r, time.monotonic() - t

    sources = ["loopdir/**/*.warc.gz"] * 4 + ["/usr/**/*.warc.gz", "/proc/**/*", "loopdir/a/b/a/**"]
    with ThreadPoolExecutor(len(sources)) as pool:
        answers = list(pool.map(submit, sources))
    for source, (r, took) in zip(sources, answers):
        assert 400 <= r.status_code < 500 and isinstance(r.json()["detail"], str), (source, r.text)
        assert took < 5, (source, took)
    assert answers[4][0].status_code == 403 and "outside the input roots" in answers[4][0].json()["detail"]
    r, took = submit("sample.warc.gz")
    assert r.status_code == 202 and took < 1, (r.text, took)


def test_outside_roots_is_403_whether_or_not_it_exists(svc):
    c = svc["client"]
    for src in [str(svc["outside"] / "sample.warc.gz"), str(svc["outside"] / "no-such.warc.gz"),
                "/etc/shadow", "/no/such/dir/*.warc.gz"]:
        _refused(c.post("/v1/batches", json={"source": src, "pipeline": "web-en"}, headers=_auth()), 403,
                 "outside the input roots")
    _assert_nothing_left(svc)


def test_directory_symlink_inside_roots_is_followed_once(svc):
    from refinery.service.sources import SourceResolver

    root = svc["root"]
    (root / "real").mkdir()
    os.replace(root / "sample.warc.gz", root / "real" / "sample.warc.gz")
    os.symlink(root / "real", root / "alias")  # inside the roots: followed
    os.symlink("..", root / "real" / "up")  # back up the tree: a loop, not followed again
    resolver = SourceResolver([root])
    want = [str(root / "real" / "sample.warc.gz")]
    assert resolver.resolve("alias") == want
    assert resolver.resolve("**/*.warc.gz") == want
    assert resolver.resolve(".") == want


def test_expansion_is_bounded(tmp_path):
    from refinery.service.sources import SourceRefused, SourceResolver

    for i in range(60):
        (tmp_path / f"d{i}").mkdir()
    with pytest.raises(SourceRefused) as err:
        SourceResolver([tmp_path], max_entries=50).resolve("**/*.warc.gz")
    assert err.value.status == 413 and "directory entries" in err.value.reason
    with pytest.raises(SourceRefused) as err:
        SourceResolver([tmp_path], max_entries=50).resolve(".")
    assert err.value.status == 413


def test_deeply_nested_body_is_400_json(svc):
    body = b'{"source": ' + b"[" * 30_000 + b"]" * 30_000 + b"}"
    assert len(body) < 64 * 1024
    c = svc["client"]
    h = _auth() | {"Content-Type": "application/json"}
    svc["service"].settings.max_body_bytes = 64 * 1024
    _refused(c.post("/v1/batches", content=body, headers=h), 400, "nested too deeply")
    _assert_nothing_left(svc)


def _small_tmpfs(path, size: str = "4m") -> None:
    import subprocess

    path.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={size}", "tmpfs", str(path)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a size-limited tmpfs here: {r.stderr.strip()}")


def test_full_and_read_only_store_answer_507_503_and_readyz_sees_it(tmp_path):
    import subprocess

    mnt = tmp_path / "mnt"
    _small_tmpfs(mnt)
    try:
        root = tmp_path / "inputs"
        root.mkdir()
        warc, _ = write_sample_warc(root)
        app = create_app(Settings(store=str(mnt / "store"), input_roots=[str(root)],
                                  tokens={OPERATOR: "operator"}, min_free_bytes=1 << 20))
        c = TestClient(app)
        checks = c.get("/readyz").json()["checks"]
        assert checks["store_writable"] and checks["store_has_room"], checks
        with (mnt / "filler").open("wb") as f:  # fill the file system
            try:
                while True:
                    f.write(b"\0" * 65536)
                    f.flush()
            except OSError:
                pass
        up = {"pipeline": "web-en", "filename": "x.warc.gz"}
        r = c.post("/v1/batches/upload", params=up, content=warc.read_bytes(), headers=_auth())
        assert r.status_code == 507 and "full" in r.json()["detail"], r.text
        r = c.get("/readyz")
        assert r.status_code == 503 and r.json()["checks"]["store_has_room"] is False, r.text
        assert list(app.state.service.uploads.iterdir()) == []
        r = c.post("/v1/batches", json={"source": "sample.warc.gz", "pipeline": "web-en"}, headers=_auth())
        assert r.status_code in (202, 507), r.text  # the queue database may still have a free page
        (mnt / "filler").unlink()
        # Read-only: a read-only file system over the uploads folder (open files keep the store's
        # own mount from being remounted read-only).
        uploads = app.state.service.uploads
        subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(uploads)], check=True)
        try:
            r = c.post("/v1/batches/upload", params=up, content=warc.read_bytes(), headers=_auth())
            assert r.status_code == 503 and "not writable" in r.json()["detail"], r.text
            r = c.get("/readyz")
            assert r.status_code == 503 and r.json()["checks"]["store_writable"] is False, r.text
        finally:
            subprocess.run(["umount", "-l", str(uploads)], capture_output=True)
        app.state.service.queue.close()
    finally:
        subprocess.run(["umount", "-l", str(mnt)], capture_output=True)
