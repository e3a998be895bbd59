"""Rule matching: methods, {id} and * (exactly one segment), ** (zero or
more segments, last only), first match wins."""

import pytest

import harness as h


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_method_not_in_any_rule_is_route_not_allowed(gw, tok, method):
    token = tok("payments:read payments:write refunds:create")
    r = gw.request(method, "/payments/1/refunds", token=token)
    h.expect_denied(r, 403, "route_not_allowed", token=token)


def test_get_on_refund_path_is_decided_by_read_rule(gw, tok):
    # GET does not match the refund rule (POST only); /payments/** (read) matches
    token = tok("payments:write refunds:create")
    r = gw.get("/payments/1/refunds", token=token)
    h.expect_denied(r, 403, "insufficient_scope", token=token, scope="payments:read")


def test_head_allowed_by_read_rule(gw, tok):
    r = gw.request("HEAD", "/payments/1", token=tok("payments:read"))
    assert r.status == 200, r
    assert r.upstream and r.upstream["method"] == "HEAD"
    assert r.upstream["headers"].get("x-identity-subject") == ["svc-billing"]


def test_public_rule_respects_methods(gw, tok):
    token = tok("payments:read")
    h.expect_denied(gw.request("POST", "/healthz", token=token), 403, "route_not_allowed", token=token)


@pytest.mark.parametrize("path", ["/payments/refunds", "/payments/1/2/refunds", "/payments//refunds"])
def test_brace_param_matches_exactly_one_segment(gw, tok, path):
    token = tok("payments:write refunds:create")
    # POST on these: refund rule does not match; read rule is GET/HEAD only
    h.expect_denied(gw.request("POST", path, token=token), 403, "route_not_allowed", token=token)


def test_star_matches_one_segment(gw, tok):
    up = h.expect_authenticated(gw.get("/reports/q1/summary", token=tok("reports:read")))
    assert up["path"] == "/reports/q1/summary"


@pytest.mark.parametrize("path", ["/reports/summary", "/reports/a/b/summary"])
def test_star_does_not_match_zero_or_two_segments(gw, tok, path):
    token = tok("reports:read")
    h.expect_denied(gw.get(path, token=token), 403, "route_not_allowed", token=token)


@pytest.mark.parametrize("path", ["/payments", "/payments/1", "/payments/a/b/c"])
def test_double_star_matches_zero_or_more_segments(gw, tok, path):
    h.expect_authenticated(gw.get(path, token=tok("payments:read")))


@pytest.mark.parametrize("path", ["/paymentsX", "/payment", "/payments-v2/1"])
def test_double_star_prefix_is_segment_exact(gw, tok, path):
    token = tok("payments:read")
    h.expect_denied(gw.get(path, token=token), 403, "route_not_allowed", token=token)


def test_query_string_excluded_from_matching(gw, tok):
    up = h.expect_authenticated(gw.get("/reports/q1/summary?format=/admin/x", token=tok("reports:read")))
    assert up["path"] == "/reports/q1/summary?format=/admin/x"


def test_healthz_with_query_is_public(gw):
    up = h.expect_allowed(gw.get("/healthz?verbose=1"))
    assert up["path"] == "/healthz?verbose=1"
