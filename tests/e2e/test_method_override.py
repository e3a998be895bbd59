"""Method-override headers are stripped before the upstream and never change
the method the decision is made on."""

import pytest

import harness as h

OVERRIDES = ["X-HTTP-Method-Override", "X-Method-Override", "X-HTTP-Method"]


@pytest.mark.parametrize("name", OVERRIDES + [n.lower() for n in OVERRIDES] + [n.upper() for n in OVERRIDES])
def test_override_header_stripped_on_allowed_request(gw, tok, name):
    up = h.expect_allowed(gw.get("/payments/1", token=tok("payments:read"), headers=[(name, "DELETE")]))
    assert up["method"] == "GET"
    for n in OVERRIDES:
        assert n.lower() not in up["headers"], n


def test_all_override_headers_stripped_together(gw, tok):
    hdrs = [(n, "POST") for n in OVERRIDES]
    up = h.expect_allowed(gw.get("/payments/1", token=tok("payments:read"), headers=hdrs))
    for n in OVERRIDES:
        assert n.lower() not in up["headers"], n


@pytest.mark.parametrize("name", OVERRIDES)
def test_decision_uses_real_method_not_override(gw, tok, name):
    # POST /payments/1 matches no rule (read is GET/HEAD); claiming GET must not help
    token = tok("payments:read")
    r = gw.request("POST", "/payments/1", token=token, headers=[(name, "GET")])
    h.expect_denied(r, 403, "route_not_allowed", token=token)


@pytest.mark.parametrize("name", OVERRIDES)
def test_override_cannot_escalate_to_refund(gw, tok, name):
    # a GET that claims to be POST is decided as GET (read rule): allowed with
    # payments:read and forwarded as a plain GET
    up = h.expect_allowed(gw.get("/payments/1/refunds", token=tok("payments:read"), headers=[(name, "POST")]))
    assert up["method"] == "GET"
    assert name.lower() not in up["headers"]


def test_override_header_stripped_on_public_route(gw):
    up = h.expect_allowed(gw.get("/healthz", headers=[("X-HTTP-Method-Override", "DELETE")]))
    assert "x-http-method-override" not in up["headers"]
