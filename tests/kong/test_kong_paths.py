"""Path tricks in Kong's host: equivalent spellings are matched as the filter
normalizes them; ambiguous ones are refused; nothing reaches /admin on the
upstream without the `admin` scope. nginx may refuse some targets itself
(a non-JSON 400): that is a denial too, as long as the upstream is untouched."""

import pytest

from kong_harness import e2e

# token with payments:read only (client ops-bot, provider corp): /admin/** lacks only the scope
TRICKS = {
    "plain": "/admin/x",
    "dotdot": "/payments/../admin/x",
    "dotdot_twice": "/payments/a/../../admin/x",
    "dot_prefix": "/./admin/x",
    "double_slash_prefix": "//admin/x",
    "encoded_dotdot": "/payments/%2e%2e/admin/x",
    "encoded_dotdot_upper": "/payments/%2E%2E/admin/x",
    "encoded_dot_mixed": "/payments/.%2e/admin/x",
    "encoded_slash": "/payments/..%2fadmin/x",
    "encoded_slash_upper": "/payments/..%2Fadmin/x",
    "encoded_admin_letters": "/%61dmin/x",
    "double_encoded_dots": "/payments/%252e%252e/admin/x",
    "double_encoded_slash": "/payments/..%252fadmin/x",
    "backslash": "/payments/..\\admin/x",
    "encoded_backslash": "/payments/..%5cadmin/x",
    "semicolon": "/payments/..;/admin/x",
    "nul": "/payments/%00/../admin/x",
    "above_root": "/../admin/x",
    "trailing_dot": "/admin./x",
    # nginx resolves these to /payments/1 before the filter sees `:path`, but
    # proxy_pass forwards the raw target: an upstream that does not resolve
    # dot segments (or decode %2F) routes them under /admin
    "admin_dotdot_to_payments": "/admin/x/../../payments/1",
    "admin_encoded_dotdot_to_payments": "/admin/%2e%2e/payments/1",
    "admin_encoded_slash_to_payments": "/admin/..%2fpayments/1",
    "admin_dot_to_payments": "/admin/./../payments/1",
}


def _admin_reached(echo, marker):
    r = echo.find(marker)
    return r is not None and "/admin" in r["path"].lower().replace("%2f", "/")


@pytest.mark.parametrize("proto", ["h1", pytest.param("h2", marks=pytest.mark.h2)])
@pytest.mark.parametrize("case", list(TRICKS))
def test_path_trick_cannot_reach_admin_with_read_token(kong, tok, echo, case, proto):
    token = tok("payments:read", client_id="ops-bot")
    path = TRICKS[case]
    if proto == "h2":
        r = kong.h2_request("GET", path, token=token)
    else:
        r = kong.raw_request("GET", path, token=token)
    assert not _admin_reached(echo, r.marker), f"{path!r} reached the upstream as {r.upstream and r.upstream['path']!r}"
    if r.reached_upstream:
        # allowed only when it normalizes away from /admin (e.g. "/admin./x"): then to a payments route
        assert r.status == 200, r
        assert r.upstream["path"].startswith("/payments/"), r.upstream["path"]
        return
    assert r.status in (400, 403, 404), r
    ctype = (r.headers.get("content-type") or "").split(";")[0]
    if ctype == "application/json":
        body = r.json()
        assert body["reason"] in ("insufficient_scope", "request_malformed", "route_not_allowed"), body


EQUIVALENT = {
    "dot_segment": ("/payments/./123", "/payments/123"),
    "double_slash": ("/payments//123", "/payments/123"),
    "dotdot_segment": ("/payments/abc/../123", "/payments/123"),
    "unreserved_percent_encoded": ("/payments/%31%32%33", "/payments/123"),
    "query_preserved": ("/payments/./123?a=1&b=%2F", "/payments/123?a=1&b=%2F"),
}


def _normalized_or_refused(r, normalized, token):
    """The upstream gets the path the decision was made on, or nothing (400)."""
    if r.reached_upstream:
        up = e2e.expect_authenticated(r)
        assert up["path"] == normalized, f"decided on {normalized!r}, upstream got {up['path']!r}"
    else:
        e2e.expect_denied(r, 400, "request_malformed", token=token)


@pytest.mark.parametrize("case", list(EQUIVALENT))
def test_equivalent_spelling_forwarded_normalized_or_refused(kong, tok, case):
    raw, normalized = EQUIVALENT[case]
    token = tok("payments:read")
    _normalized_or_refused(kong.raw_request("GET", raw, token=token), normalized, token)


def test_dotdot_into_admin_with_admin_token_forwarded_normalized_or_refused(kong, tok):
    token = tok("admin", client_id="ops-bot")
    _normalized_or_refused(kong.raw_request("GET", "/payments/../admin/x", token=token), "/admin/x", token)


BAD_PATHS = {
    "encoded_slash": "/payments/a%2Fb",
    "encoded_backslash": "/payments/a%5cb",
    "encoded_nul": "/payments/a%00b",
    "semicolon_in_segment": "/payments/1;jsessionid=x",
    "double_encoding_dot": "/payments/%252e%252e/admin",
    "double_encoding_slash": "/payments/a%252fb",
}


@pytest.mark.parametrize("case", list(BAD_PATHS))
def test_ambiguous_path_refused(kong, tok, case):
    token = tok("payments:read admin", client_id="ops-bot")
    r = kong.raw_request("GET", BAD_PATHS[case], token=token)
    if r.status == 400 and "text/html" in (r.headers.get("content-type") or ""):
        # refused by nginx itself before the filter ran (e.g. %00)
        assert not r.reached_upstream
        return
    e2e.expect_denied(r, 400, "request_malformed", token=token)
