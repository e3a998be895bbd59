"""Client-supplied identity headers never reach the upstream (any letter case,
any route, any decision)."""

import pytest

import harness as h

FORGED = [
    ("X-Identity-Subject", "forged-subject"),
    ("x-identity-client-id", "forged-client"),
    ("X-IDENTITY-ISSUER", "https://forged.example"),
    ("x-Identity-Scopes", "admin payments:write"),
    ("X-Identity-Tenant", "forged-tenant"),
]


def _no_forged_values(up):
    for name, value in FORGED:
        got = up["headers"].get(name.lower(), [])
        assert value not in got, f"client-supplied {name} reached the upstream: {got}"


def test_forged_identity_headers_replaced_on_allowed_request(gw, tok):
    token = tok("payments:read", sub="real-sub", client_id="real-client", tenant="real-tenant")
    up = h.expect_allowed(gw.get("/payments/1", token=token, headers=FORGED))
    _no_forged_values(up)
    hd = up["headers"]
    assert hd.get("x-identity-subject") == ["real-sub"]
    assert hd.get("x-identity-client-id") == ["real-client"]
    assert hd.get("x-identity-issuer") == [h.ISSUER]
    assert hd.get("x-identity-scopes") == ["payments:read"]
    assert hd.get("x-identity-tenant") == ["real-tenant"]


def test_forged_header_stripped_when_claim_absent(gw, tok):
    # no tenant claim: the filter sets no tenant header, and must not pass the forged one
    up = h.expect_allowed(gw.get("/payments/1", token=tok("payments:read"), headers=FORGED))
    _no_forged_values(up)
    assert "x-identity-tenant" not in up["headers"]


def test_forged_identity_headers_stripped_on_public_route(gw):
    up = h.expect_allowed(gw.get("/healthz", headers=FORGED))
    for name in h.IDENTITY_HEADERS:
        assert name not in up["headers"], name


def test_duplicate_forged_identity_headers_stripped(gw, tok):
    forged = [("x-identity-subject", "one"), ("X-Identity-Subject", "two"), ("X-IDENTITY-SUBJECT", "three")]
    up = h.expect_allowed(gw.get("/payments/1", token=tok("payments:read", sub="real"), headers=forged))
    assert up["headers"].get("x-identity-subject") == ["real"]


def test_forged_identity_headers_stripped_on_unmatched_allowed_path(gw_allow):
    up = h.expect_allowed(gw_allow.get("/unmatched/path", headers=FORGED))
    for name in h.IDENTITY_HEADERS:
        assert name not in up["headers"], name


def test_forged_identity_headers_stripped_in_dry_run_denial(gw_dry_run):
    # dry_run lets a denied request through: the forged headers must still be gone
    up = h.expect_allowed(gw_dry_run.get("/payments/1", headers=FORGED))
    for name in h.IDENTITY_HEADERS:
        assert name not in up["headers"], name


@pytest.mark.parametrize("path", ["/payments/1", "/admin/x", "/nowhere"])
def test_denied_request_with_forged_headers_never_reaches_upstream(gw, path):
    # /nowhere matches no rule: 401 (no token) or 403 (route) are both a denial
    r = gw.get(path, headers=FORGED)
    assert r.status in (401, 403), r
    assert not r.reached_upstream
