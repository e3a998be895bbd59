"""A few behaviours over HTTP/2 (h2c prior knowledge, stdlib-only client in
h2client.py): the filter sees the same decisions on the HTTP/2 codec."""

import time

import harness as h


def test_h2_allowed_with_identity_headers(gw, tok):
    r = gw.h2_request("GET", "/payments/1", token=tok("payments:read", sub="h2-sub", tenant="t2"))
    up = h.expect_allowed(r)
    assert up["headers"].get("x-identity-subject") == ["h2-sub"]
    assert up["headers"].get("x-identity-tenant") == ["t2"]
    assert up["headers"].get("x-identity-scopes") == ["payments:read"]


def test_h2_no_token(gw):
    r = gw.h2_request("GET", "/payments/1")
    h.expect_denied(r, 401, "token_missing")


def test_h2_insufficient_scope(gw, tok):
    token = tok("payments:write")
    r = gw.h2_request("POST", "/payments/1/refunds", token=token, body=b"{}")
    h.expect_denied(r, 403, "insufficient_scope", token=token, scope="payments:write refunds:create")


def test_h2_forged_identity_headers_stripped(gw, tok):
    r = gw.h2_request("GET", "/payments/1", token=tok("payments:read", sub="real"),
                      headers=[("x-identity-subject", "forged"), ("x-identity-tenant", "forged")])
    up = h.expect_allowed(r)
    assert up["headers"].get("x-identity-subject") == ["real"]
    assert "x-identity-tenant" not in up["headers"]


def test_h2_path_normalized(gw, tok):
    up = h.expect_allowed(gw.h2_request("GET", "/payments/abc/../%31?a=%2F", token=tok("payments:read")))
    assert up["path"] == "/payments/1?a=%2F"


def test_h2_path_trick_denied(gw, tok):
    token = tok("payments:read", client_id="ops-bot")
    h.expect_denied(gw.h2_request("GET", "/payments/../admin/x", token=token), 403, "insufficient_scope", token=token)


def test_h2_two_authorization_headers(gw, tok):
    a = tok("payments:read")
    r = gw.h2_request("GET", "/payments/1", headers=[("authorization", f"Bearer {a}"), ("authorization", f"Bearer {a}")])
    h.expect_denied(r, 400, "request_malformed", token=a)


def test_h2_requests_really_used_http2(gw, tok):
    r = gw.h2_request("GET", "/healthz")
    h.expect_allowed(r)
    deadline = time.monotonic() + 3
    while time.monotonic() < deadline:
        if f"HTTP/2 GET {r.marker} 200" in gw.access_log():
            return
        time.sleep(0.1)
    raise AssertionError("access log has no HTTP/2 entry for the request:\n" + gw.access_log()[-2000:])
