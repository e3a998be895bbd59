"""The filter's own path normalization (Envoy's is switched off): equivalent
spellings match the same rule, the upstream gets the normalized path, and
path tricks never reach a route the token's scopes do not cover."""

import pytest

import harness as h

EQUIVALENT = {
    "dot_segment": ("/payments/./123", "/payments/123"),
    "double_slash": ("/payments//123", "/payments/123"),
    "dotdot_segment": ("/payments/abc/../123", "/payments/123"),
    "unreserved_percent_encoded": ("/payments/%31%32%33", "/payments/123"),
    "query_preserved": ("/payments/./123?a=1&b=%2F", "/payments/123?a=1&b=%2F"),
    "query_untouched_when_normal": ("/payments/123?x=%2e%2e&y=a/../b", "/payments/123?x=%2e%2e&y=a/../b"),
}


@pytest.mark.parametrize("case", list(EQUIVALENT))
def test_equivalent_spelling_matched_and_forwarded_normalized(gw, tok, case):
    raw, normalized = EQUIVALENT[case]
    up = h.expect_authenticated(gw.get(raw, token=tok("payments:read")))
    assert up["path"] == normalized


def test_normalized_path_not_matching_any_rule(gw, tok):
    # /payments/../x normalizes to /x: no rule
    token = tok("payments:read")
    h.expect_denied(gw.get("/payments/../x", token=token), 403, "route_not_allowed", token=token)


def test_dotdot_never_climbs_above_root(gw, tok):
    up = h.expect_allowed(gw.get("/../../payments/1", token=tok("payments:read")))
    assert up["path"] == "/payments/1"


# A token with only payments:read (client ops-bot, provider corp, so only the
# scope is missing for the admin rule) must never reach /admin/...
TRICKS = {
    "plain": ("/admin/x", 403, "insufficient_scope"),
    "dotdot": ("/payments/../admin/x", 403, "insufficient_scope"),
    "encoded_dotdot": ("/payments/%2e%2e/admin/x", 403, "insufficient_scope"),
    "encoded_dotdot_upper": ("/payments/%2E%2E/admin/x", 403, "insufficient_scope"),
    "double_slash_prefix": ("//admin/x", 403, "insufficient_scope"),
    "dot_prefix": ("/./admin/x", 403, "insufficient_scope"),
    "case_differs": ("/Admin/x", 403, "route_not_allowed"),
    "dotdot_encoded_slash": ("/payments/..%2fadmin", 400, "request_malformed"),
    "dotdot_encoded_slash_upper": ("/payments/..%2Fadmin/x", 400, "request_malformed"),
}


@pytest.mark.parametrize("case", list(TRICKS))
def test_path_trick_cannot_reach_admin_with_read_token(gw, tok, case):
    path, status, reason = TRICKS[case]
    token = tok("payments:read", client_id="ops-bot")
    h.expect_denied(gw.get(path, token=token), status, reason, token=token)


def test_dotdot_into_admin_with_admin_token_is_forwarded_normalized(gw, tok):
    up = h.expect_allowed(gw.get("/payments/../admin/x", token=tok("admin", client_id="ops-bot")))
    assert up["path"] == "/admin/x"


def test_case_is_significant_for_literal_segments(gw, tok):
    token = tok("payments:read")
    h.expect_denied(gw.get("/Payments/1", token=token), 403, "route_not_allowed", token=token)
