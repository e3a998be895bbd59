"""Ambiguous requests are refused with 400 request_malformed (even with a
valid token), and never reach the upstream."""

import pytest

import harness as h


def test_two_authorization_headers(gw, tok):
    a, b = tok("payments:read"), tok("payments:read")
    r = gw.get("/payments/1", headers=[("Authorization", f"Bearer {a}"), ("Authorization", f"Bearer {b}")])
    h.expect_denied(r, 400, "request_malformed", token=a)
    h.expect_denied(r, 400, "request_malformed", token=b)


def test_two_authorization_headers_different_case(gw, tok):
    a = tok("payments:read")
    r = gw.get("/payments/1", headers=[("authorization", f"Bearer {a}"), ("AUTHORIZATION", f"Bearer {a}")])
    h.expect_denied(r, 400, "request_malformed", token=a)


BAD_PATHS = {
    "encoded_slash_upper": "/payments/a%2Fb",
    "encoded_slash_lower": "/payments/a%2fb",
    "encoded_backslash_lower": "/payments/a%5cb",
    "encoded_backslash_upper": "/payments/a%5Cb",
    "encoded_nul": "/payments/a%00b",
    "raw_backslash": "/payments/a\\b",
    "semicolon_in_segment": "/payments/1;jsessionid=x",
    "semicolon_segment": "/payments/;/1",
    "double_encoding_dot": "/payments/%252e%252e/admin",
    "double_encoding_slash": "/payments/a%252fb",
    "dotdot_encoded_slash": "/payments/..%2fadmin",
}


@pytest.mark.parametrize("case", list(BAD_PATHS))
def test_ambiguous_path(gw, tok, case):
    token = tok("payments:read admin", client_id="ops-bot")
    r = gw.get(BAD_PATHS[case], token=token)
    h.expect_denied(r, 400, "request_malformed", token=token)
