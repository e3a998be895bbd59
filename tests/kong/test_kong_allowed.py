"""Allowed calls in Kong's host: the upstream gets the request with the
verified identity headers (HTTP/1.1 and HTTP/2)."""

import pytest

import kong_harness as kh
from kong_harness import e2e


def _check_identity(up, sub="svc-42", client="billing-svc", scopes="payments:read payments:write", tenant="acme"):
    hd = up["headers"]
    assert hd.get("x-identity-subject") == [sub], up["raw_headers"]
    assert hd.get("x-identity-client-id") == [client], up["raw_headers"]
    assert hd.get("x-identity-issuer") == [e2e.ISSUER], up["raw_headers"]
    assert hd.get("x-identity-scopes") == [scopes], up["raw_headers"]
    assert hd.get("x-identity-tenant") == [tenant], up["raw_headers"]


def test_allowed_request_reaches_upstream_with_identity_headers(kong, tok):
    token = tok("payments:read payments:write", sub="svc-42", client_id="billing-svc", tenant="acme")
    up = e2e.expect_allowed(kong.get("/payments/123", token=token))
    assert up["method"] == "GET"
    assert up["path"] == "/payments/123"
    _check_identity(up)


@pytest.mark.h2
def test_h2_allowed_request_reaches_upstream_with_identity_headers(kong, tok):
    token = tok("payments:read payments:write", sub="svc-42", client_id="billing-svc", tenant="acme")
    r = kong.h2_request("GET", "/payments/123", token=token)
    assert r.status == 200, r
    up = e2e.expect_allowed(r)
    assert up["path"] == "/payments/123"
    _check_identity(up)


def test_token_forwarded_when_forward_token_true(kong, tok):
    token = tok("payments:read")
    up = e2e.expect_authenticated(kong.get("/payments/1", token=token))
    assert up["headers"].get("authorization") == [f"Bearer {token}"]


def test_token_removed_when_forward_token_false(hosts, tok):
    no_forward = hosts.get("no-forward", forward_token=False)
    token = tok("payments:read")
    up = e2e.expect_allowed(no_forward.get("/payments/1", token=token))
    assert not [l for l in up["raw_headers"] if token in l[1]], f"token reached the upstream: {up['raw_headers']}"
    # removed, or (this host cannot drop a request header) emptied in place
    assert up["headers"].get("authorization", [""]) == [""], up["raw_headers"]
    assert up["headers"].get("x-identity-subject") == ["svc-billing"]


@pytest.mark.parametrize("alg", ["RS256", "PS256", "ES256"])
def test_every_configured_algorithm_is_accepted(kong, keys, alg):
    token = e2e.mint(keys.for_alg(alg), e2e.claims("payments:read"), alg=alg)
    e2e.expect_authenticated(kong.get("/payments/1", token=token))


def test_partner_provider_token_is_accepted(kong, keys):
    token = e2e.mint(keys.partner_ec, e2e.claims("payments:read", iss=e2e.PARTNER_ISSUER, sub="partner-svc"), alg="ES256")
    up = e2e.expect_allowed(kong.get("/payments/1", token=token))
    assert up["headers"].get("x-identity-issuer") == [e2e.PARTNER_ISSUER]
    assert up["headers"].get("x-identity-subject") == ["partner-svc"]


def test_post_with_body_reaches_upstream(kong, tok):
    r = kong.request("POST", "/payments/7/refunds", token=tok("payments:write refunds:create"), body=b'{"amount":1}')
    up = e2e.expect_authenticated(r)
    assert up["method"] == "POST" and up["body"] == '{"amount":1}'


def test_public_route_needs_no_token_and_gets_no_identity_headers(kong):
    up = e2e.expect_allowed(kong.get("/healthz"))
    assert kh.identity_lines(up) == []


def test_public_route_with_token_gets_no_identity_headers(kong, tok):
    up = e2e.expect_allowed(kong.get("/healthz", token=tok("payments:read")))
    assert kh.identity_lines(up) == []


def test_admin_with_admin_scope_and_client(kong, tok):
    up = e2e.expect_authenticated(kong.get("/admin/users", token=tok("admin", client_id="ops-bot")))
    assert up["path"] == "/admin/users"


def test_default_action_allow_lets_unmatched_path_through(kong_allow):
    up = e2e.expect_allowed(kong_allow.get("/unmatched/path"))
    assert kh.identity_lines(up) == []
