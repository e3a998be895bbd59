"""Every kind of denial in Kong's host: status, WWW-Authenticate, JSON body
with the reason code, token never echoed, upstream untouched (HTTP/1.1 and
HTTP/2)."""

import time

import pytest

import kong_harness as kh
from kong_harness import e2e

PATH = "/payments/1"


def _send(kong, proto, method, path, token=None, headers=None, body=None):
    if proto == "h2":
        return kong.h2_request(method, path, token=token, headers=headers, body=body)
    return kong.request(method, path, token=token, headers=headers, body=body)


PROTOS = ["h1", pytest.param("h2", marks=pytest.mark.h2)]


@pytest.mark.parametrize("proto", PROTOS)
def test_missing_token_401(kong, proto):
    e2e.expect_denied(_send(kong, proto, "GET", PATH), 401, "token_missing")


@pytest.mark.parametrize("proto", PROTOS)
@pytest.mark.parametrize("token", ["not-a-jwt", "a.b", "a.b.c.d", "eyJhbGciOiJSUzI1NiJ9.%%%.sig"])
def test_malformed_token_401(kong, proto, token):
    e2e.expect_denied(_send(kong, proto, "GET", PATH, token=token), 401, "token_malformed", token=token)


@pytest.mark.parametrize("proto", PROTOS)
def test_expired_token_401(kong, keys, proto):
    now = int(time.time())
    token = e2e.mint(keys.rsa, e2e.claims("payments:read", iat=now - 1000, exp=now - 500), alg="RS256")
    e2e.expect_denied(_send(kong, proto, "GET", PATH, token=token), 401, "token_expired", token=token)


@pytest.mark.parametrize("proto", PROTOS)
def test_bad_signature_401(kong, keys, proto):
    # same kid as the trusted RSA key, signed by a key nobody trusts
    token = e2e.mint(keys.rogue_rsa, e2e.claims("payments:read"), alg="RS256")
    e2e.expect_denied(_send(kong, proto, "GET", PATH, token=token), 401, "signature_invalid", token=token)


def test_tampered_payload_401(kong, keys, tok):
    token = tok("payments:read")
    h, _, s = token.split(".")
    forged = e2e.mint(None, e2e.claims("payments:read admin"), header=h, signature=s)
    e2e.expect_denied(kong.get(PATH, token=forged), 401, "signature_invalid", token=forged)


@pytest.mark.parametrize("proto", PROTOS)
def test_wrong_audience_401(kong, keys, proto):
    token = e2e.mint(keys.rsa, e2e.claims("payments:read", aud="other-api"), alg="RS256")
    e2e.expect_denied(_send(kong, proto, "GET", PATH, token=token), 401, "audience_mismatch", token=token)


def test_unknown_issuer_401(kong, keys):
    token = e2e.mint(keys.rsa, e2e.claims("payments:read", iss="https://evil.example.com"), alg="RS256")
    e2e.expect_denied(kong.get(PATH, token=token), 401, "issuer_unknown", token=token)


def test_alg_none_401(kong):
    token = e2e.mint(None, e2e.claims("payments:read"), header={"alg": "none", "typ": "JWT"})
    e2e.expect_denied(kong.get(PATH, token=token), 401, "unsupported_algorithm", token=token)


@pytest.mark.parametrize("proto", PROTOS)
def test_insufficient_scope_403(kong, tok, proto):
    token = tok("payments:write")
    r = _send(kong, proto, "POST", "/payments/1/refunds", token=token, body=b"{}")
    e2e.expect_denied(r, 403, "insufficient_scope", token=token, scope="payments:write refunds:create")


@pytest.mark.parametrize("proto", PROTOS)
def test_client_not_allowed_403(kong, tok, proto):
    token = tok("admin", client_id="billing-svc")
    e2e.expect_denied(_send(kong, proto, "GET", "/admin/x", token=token), 403, "client_not_allowed", token=token)


def test_provider_not_allowed_403(kong, keys):
    token = e2e.mint(keys.partner_ec, e2e.claims("admin", iss=e2e.PARTNER_ISSUER, client_id="ops-bot"), alg="ES256")
    e2e.expect_denied(kong.get("/admin/x", token=token), 403, "provider_not_allowed", token=token)


@pytest.mark.parametrize("proto", PROTOS)
def test_route_not_allowed_default_deny_403(kong, tok, proto):
    token = tok("payments:read")
    e2e.expect_denied(_send(kong, proto, "GET", "/nowhere", token=token), 403, "route_not_allowed", token=token)


def test_method_not_in_rule_403(kong, tok):
    token = tok("payments:read")
    e2e.expect_denied(kong.request("DELETE", "/payments/1", token=token), 403, "route_not_allowed", token=token)


@pytest.mark.parametrize("proto", PROTOS)
def test_two_authorization_headers_400(kong, tok, proto):
    a, b = tok("payments:read"), tok("payments:read")
    hdrs = [("authorization", f"Bearer {a}"), ("Authorization" if proto == "h1" else "authorization", f"Bearer {b}")]
    r = _send(kong, proto, "GET", PATH, headers=hdrs)
    assert r.status == 400 and not r.reached_upstream, r
    if "text/html" in (r.headers.get("content-type") or ""):
        # nginx (>= 1.23) refuses a second Authorization header itself, before
        # any module runs: the filter never sees the request
        assert kong.wait_log(r"client sent duplicate header line: \"[Aa]uthorization"), kh.tail(kong.log_text())
        return
    e2e.expect_denied(r, 400, "request_malformed", token=a)
    e2e.expect_denied(r, 400, "request_malformed", token=b)


def test_denials_keep_the_workers_alive(kong, tok):
    # after all of the above (same session-scoped nginx): no worker died
    assert kong.dead_worker_lines() == []
    assert len(kong.worker_pids()) == 2
