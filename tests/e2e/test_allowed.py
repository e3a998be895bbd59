"""Allowed requests: identity headers, token forwarding, algorithms, scopes
claim forms, Bearer scheme case, public route."""

import pytest

import harness as h


def test_allowed_request_reaches_upstream_with_identity_headers(gw, tok):
    token = tok("payments:read payments:write", sub="svc-42", client_id="billing-svc", tenant="acme")
    up = h.expect_allowed(gw.get("/payments/123", token=token))
    hd = up["headers"]
    assert up["method"] == "GET"
    assert up["path"] == "/payments/123"
    assert hd.get("x-identity-subject") == ["svc-42"]
    assert hd.get("x-identity-client-id") == ["billing-svc"]
    assert hd.get("x-identity-issuer") == [h.ISSUER]
    assert hd.get("x-identity-scopes") == ["payments:read payments:write"]
    assert hd.get("x-identity-tenant") == ["acme"]


def test_token_forwarded_when_forward_token_true(gw, tok):
    token = tok("payments:read")
    up = h.expect_authenticated(gw.get("/payments/1", token=token))
    assert up["headers"].get("authorization") == [f"Bearer {token}"]


def test_token_removed_when_forward_token_false(gw_no_forward, tok):
    token = tok("payments:read")
    up = h.expect_allowed(gw_no_forward.get("/payments/1", token=token))
    assert "authorization" not in up["headers"]
    assert up["headers"].get("x-identity-subject") == ["svc-billing"]


def test_public_route_needs_no_token_and_gets_no_identity_headers(gw):
    up = h.expect_allowed(gw.get("/healthz"))
    for name in h.IDENTITY_HEADERS:
        assert name not in up["headers"], name


def test_public_route_with_token_gets_no_identity_headers(gw, tok):
    up = h.expect_allowed(gw.get("/healthz", token=tok("payments:read")))
    for name in h.IDENTITY_HEADERS:
        assert name not in up["headers"], name


@pytest.mark.parametrize("alg", h.ALGORITHMS)
def test_every_configured_algorithm_is_accepted(gw, keys, alg):
    token = h.mint(keys.for_alg(alg), h.claims("payments:read"), alg=alg)
    up = h.expect_allowed(gw.get("/payments/1", token=token))
    assert up["headers"].get("x-identity-subject") == ["svc-billing"]


def test_partner_provider_token_is_accepted(gw, keys):
    token = h.mint(keys.partner_ec, h.claims("payments:read", iss=h.PARTNER_ISSUER, sub="partner-svc"), alg="ES256")
    up = h.expect_allowed(gw.get("/payments/1", token=token))
    assert up["headers"].get("x-identity-issuer") == [h.PARTNER_ISSUER]
    assert up["headers"].get("x-identity-subject") == ["partner-svc"]


@pytest.mark.parametrize(
    "client_claims, expected",
    [
        ({"client_id": "a", "azp": "b", "cid": "c", "appid": "d"}, "a"),
        ({"azp": "b", "cid": "c", "appid": "d"}, "b"),
        ({"cid": "c", "appid": "d"}, "c"),
        ({"appid": "d"}, "d"),
    ],
    ids=["client_id", "azp", "cid", "appid"],
)
def test_client_id_from_first_present_claim(gw, tok, client_claims, expected):
    token = tok("payments:read", **{"client_id": ..., **client_claims})
    up = h.expect_allowed(gw.get("/payments/1", token=token))
    assert up["headers"].get("x-identity-client-id") == [expected]


def test_scopes_from_space_delimited_scope_string(gw, tok):
    up = h.expect_allowed(gw.get("/payments/1", token=tok("openid payments:read")))
    assert up["headers"].get("x-identity-scopes") == ["openid payments:read"]


def test_scopes_from_scp_array(gw, tok):
    token = tok(None, scp=["payments:read", "reports:read"])
    up = h.expect_allowed(gw.get("/payments/1", token=token))
    assert up["headers"].get("x-identity-scopes") == ["payments:read reports:read"]


@pytest.mark.parametrize("scheme", ["Bearer", "bearer", "BEARER", "bEaReR"])
def test_bearer_scheme_is_case_insensitive(gw, tok, scheme):
    token = tok("payments:read")
    h.expect_authenticated(gw.get("/payments/1", headers=[("Authorization", f"{scheme} {token}")]))


def test_audience_array_containing_configured_audience(gw, tok):
    token = tok("payments:read", aud=["other-api", h.AUDIENCE])
    h.expect_authenticated(gw.get("/payments/1", token=token))


def test_expired_within_clock_skew_is_accepted(gw, tok):
    now = h.claims()["iat"]
    token = tok("payments:read", iat=now - 600, exp=now - 20)
    h.expect_authenticated(gw.get("/payments/1", token=token))


def test_nbf_and_iat_within_clock_skew_are_accepted(gw, tok):
    now = h.claims()["iat"]
    token = tok("payments:read", iat=now + 20, nbf=now + 20, exp=now + 600)
    h.expect_authenticated(gw.get("/payments/1", token=token))


def test_lifetime_exactly_max_is_accepted(gw, tok):
    now = h.claims()["iat"]
    token = tok("payments:read", iat=now, exp=now + 3600)
    h.expect_authenticated(gw.get("/payments/1", token=token))


def test_tenant_header_absent_when_claim_absent(gw, tok):
    up = h.expect_authenticated(gw.get("/payments/1", token=tok("payments:read")))
    assert "x-identity-tenant" not in up["headers"]


def test_post_body_reaches_upstream(gw, tok):
    token = tok("payments:write refunds:create")
    up = h.expect_authenticated(gw.request("POST", "/payments/77/refunds", token=token, body=b'{"amount": 5}',
                                     headers=[("Content-Type", "application/json")]))
    assert up["method"] == "POST"
    assert up["body"] == '{"amount": 5}'
