"""Valid tokens that a rule does not admit: 403 with
WWW-Authenticate error="insufficient_scope", scope="<rule's scopes>"."""

import harness as h


def test_read_rule_without_scope(gw, tok):
    token = tok("payments:write")
    h.expect_denied(gw.get("/payments/1", token=token), 403, "insufficient_scope", token=token, scope="payments:read")


def test_read_rule_with_no_scope_claim_at_all(gw, tok):
    token = tok(None)
    h.expect_denied(gw.get("/payments/1", token=token), 403, "insufficient_scope", token=token, scope="payments:read")


def test_refund_needs_all_scopes_has_one(gw, tok):
    token = tok("payments:write")
    r = gw.request("POST", "/payments/9/refunds", token=token)
    h.expect_denied(r, 403, "insufficient_scope", token=token, scope="payments:write refunds:create")


def test_refund_with_all_scopes_allowed(gw, tok):
    up = h.expect_authenticated(gw.request("POST", "/payments/9/refunds", token=tok("refunds:create payments:write")))
    assert up["path"] == "/payments/9/refunds"


def test_scope_match_is_exact_not_prefix(gw, tok):
    token = tok("payments:readonly payments")
    h.expect_denied(gw.get("/payments/1", token=token), 403, "insufficient_scope", token=token, scope="payments:read")


def test_admin_allowed_for_ops_bot_with_admin_scope(gw, tok):
    token = tok("admin", client_id="ops-bot")
    for method in ("GET", "DELETE", "PATCH"):
        up = h.expect_allowed(gw.request(method, "/admin/users/7", token=token))
        assert up["method"] == method
        assert up["headers"].get("x-identity-client-id") == ["ops-bot"]


def test_admin_any_scopes_missing(gw, tok):
    token = tok("payments:read", client_id="ops-bot")
    h.expect_denied(gw.get("/admin/x", token=token), 403, "insufficient_scope", token=token, scope="admin")


def test_admin_client_not_allowed(gw, tok):
    token = tok("admin", client_id="billing-svc")
    h.expect_denied(gw.get("/admin/x", token=token), 403, "client_not_allowed", token=token, scope="admin")


def test_admin_client_from_azp_not_allowed(gw, tok):
    token = tok("admin", client_id=..., azp="someone-else")
    h.expect_denied(gw.get("/admin/x", token=token), 403, "client_not_allowed", token=token)


def test_admin_provider_not_allowed(gw, keys):
    token = h.mint(
        keys.partner_ec,
        h.claims("admin", iss=h.PARTNER_ISSUER, client_id="ops-bot"),
        alg="ES256",
    )
    h.expect_denied(gw.get("/admin/x", token=token), 403, "provider_not_allowed", token=token, scope="admin")


def test_route_not_allowed_when_no_rule_matches(gw, tok):
    token = tok("payments:read admin", client_id="ops-bot")
    h.expect_denied(gw.get("/unknown/thing", token=token), 403, "route_not_allowed", token=token)
