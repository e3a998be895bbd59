"""default_action for requests no rule matches: deny / authenticate / allow."""

import harness as h


def test_deny_unmatched_with_valid_token(gw, tok):
    token = tok("payments:read")
    h.expect_denied(gw.get("/unmatched", token=token), 403, "route_not_allowed", token=token)


def test_authenticate_unmatched_with_valid_token(gw_authenticate, tok):
    up = h.expect_allowed(gw_authenticate.get("/unmatched/x", token=tok(None, sub="anyone", client_id="c1")))
    assert up["headers"].get("x-identity-subject") == ["anyone"]
    assert up["headers"].get("x-identity-client-id") == ["c1"]


def test_authenticate_unmatched_with_partner_token(gw_authenticate, keys):
    token = h.mint(keys.partner_ec, h.claims(None, iss=h.PARTNER_ISSUER), alg="ES256")
    up = h.expect_allowed(gw_authenticate.get("/unmatched/x", token=token))
    assert up["headers"].get("x-identity-issuer") == [h.PARTNER_ISSUER]


def test_authenticate_unmatched_without_token(gw_authenticate):
    h.expect_denied(gw_authenticate.get("/unmatched/x"), 401, "token_missing")


def test_authenticate_unmatched_with_expired_token(gw_authenticate, tok):
    now = h.claims()["iat"]
    token = tok(None, iat=now - 900, exp=now - 300)
    h.expect_denied(gw_authenticate.get("/unmatched/x", token=token), 401, "token_expired", token=token)


def test_authenticate_still_enforces_rules(gw_authenticate, tok):
    token = tok("reports:read")
    h.expect_denied(gw_authenticate.get("/payments/1", token=token), 403, "insufficient_scope",
                    token=token, scope="payments:read")


def test_allow_unmatched_without_token(gw_allow):
    up = h.expect_allowed(gw_allow.get("/unmatched/x?q=1"))
    assert up["path"] == "/unmatched/x?q=1"
    for name in h.IDENTITY_HEADERS:
        assert name not in up["headers"], name


def test_allow_still_enforces_rules(gw_allow):
    h.expect_denied(gw_allow.get("/payments/1"), 401, "token_missing")
