"""HTTP/2 (h2c prior knowledge) really reaches the filter in Kong's host."""

import time

import pytest

from kong_harness import e2e

pytestmark = pytest.mark.h2


def test_h2_requests_really_used_http2(kong):
    r = kong.h2_request("GET", "/healthz")
    assert r.status == 200, r
    e2e.expect_allowed(r)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if f"HTTP/2.0 GET {r.marker} 200" in kong.access_log():
            return
        time.sleep(0.1)
    raise AssertionError("access log has no HTTP/2 entry for the request:\n" + kong.access_log()[-2000:])


def test_h2_path_forwarded_normalized_or_refused(kong, tok):
    token = tok("payments:read")
    r = kong.h2_request("GET", "/payments/abc/../%31?a=%2F", token=token)
    if r.reached_upstream:
        up = e2e.expect_authenticated(r)
        assert up["path"] == "/payments/1?a=%2F", f"decided on /payments/1, upstream got {up['path']!r}"
    else:
        e2e.expect_denied(r, 400, "request_malformed", token=token)


def test_h2_server_block_without_filter_answers(kong):
    r = kong.h2_request("GET", "/payments/1", port=kong.plain_port)
    e2e.expect_allowed(r)
