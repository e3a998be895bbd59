"""mode dry_run: decisions are made but every request goes through; identity
headers only for valid tokens."""

import harness as h


def test_dry_run_denied_request_reaches_upstream_without_identity(gw_dry_run):
    r = gw_dry_run.get("/payments/1")
    up = h.expect_allowed(r)
    for name in h.IDENTITY_HEADERS:
        assert name not in up["headers"], name
    assert "www-authenticate" not in r.headers


def test_dry_run_invalid_token_reaches_upstream_without_identity(gw_dry_run, tok):
    now = h.claims()["iat"]
    up = h.expect_allowed(gw_dry_run.get("/payments/1", token=tok("payments:read", iat=now - 900, exp=now - 300)))
    for name in h.IDENTITY_HEADERS:
        assert name not in up["headers"], name


def test_dry_run_insufficient_scope_reaches_upstream(gw_dry_run, tok):
    h.expect_allowed(gw_dry_run.request("POST", "/payments/1/refunds", token=tok("payments:write")))


def test_dry_run_valid_token_gets_identity_headers(gw_dry_run, tok):
    token = tok("payments:read", sub="dry-sub", tenant="t1")
    up = h.expect_allowed(gw_dry_run.get("/payments/1", token=token))
    assert up["headers"].get("x-identity-subject") == ["dry-sub"]
    assert up["headers"].get("x-identity-scopes") == ["payments:read"]
    assert up["headers"].get("x-identity-tenant") == ["t1"]
    assert up["headers"].get("authorization") == [f"Bearer {token}"]


def test_dry_run_unmatched_route_reaches_upstream(gw_dry_run):
    h.expect_allowed(gw_dry_run.get("/unmatched"))
