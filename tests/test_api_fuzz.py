"""Fuzz the HTTP API from its own OpenAPI document (schemathesis): no request may get a 5xx.

The real service runs as a subprocess (uvicorn, scheduler, local Ray) with an operator token, so
requests reach every route past authentication.  Examples per operation are bounded to keep the
test to a minute or two; a failure prints a curl line that reproduces it.
"""

from __future__ import annotations

import pytest

schemathesis = pytest.importorskip("schemathesis")
from hypothesis import HealthCheck, given, settings  # noqa: E402

from refinery.sample import write_sample_warc  # noqa: E402
from service_util import OPERATOR, ServiceProcess  # noqa: E402

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def service(tmp_path_factory):
    root = tmp_path_factory.mktemp("fuzz")
    write_sample_warc(root / "in")
    svc = ServiceProcess(root / "store", [root / "in"], root / "service.log",
                         ["--max-upload-bytes", "100000", "--concurrency", "1"])
    try:
        svc.wait_ready()
        yield svc
    finally:
        svc.stop()


def test_no_server_error(service):
    """Every operation of /openapi.json, bounded examples each; every 5xx is collected, then reported."""
    api = schemathesis.openapi.from_url(service.url + "/openapi.json")
    headers = {"Authorization": f"Bearer {OPERATOR}"}
    failures: list[str] = []
    operations = calls = 0
    for result in api.get_all_operations():
        op = result.ok()
        operations += 1

        @given(op.as_strategy())
        @settings(max_examples=25, deadline=None, suppress_health_check=list(HealthCheck), database=None)
        def run(case):
            nonlocal calls
            for h in (headers, {}):  # as the operator, and with no token at all
                resp = case.call(base_url=service.url, headers=h)
                calls += 1
                if resp.status_code >= 500:
                    failures.append(f"{resp.status_code} {case.method} {case.formatted_path} "
                                    f"query={case.query} body={str(case.body)[:200]}: {resp.text[:300]}")

        run()
    assert operations >= 10 and calls >= 10 * operations, (operations, calls)
    assert not failures, "\n".join(failures[:20]) + f"\nservice log: {service.log}"
