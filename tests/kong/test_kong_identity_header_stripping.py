"""A caller can never supply an identity header (or a method-override header)
to the upstream, whatever the host does with header removals.

ngx_wasm_module "removes" a request header by zeroing its hash in nginx's
header list, and nginx's proxy module still sends it. So every check here
reads the header *lines* the upstream received (RawEcho keeps duplicates and
order). Two outcomes are correct: the request reaches the upstream and the
identity header lines are exactly the filter's, or the filter refuses the
request (400 request_malformed, upstream untouched)."""

import pytest

import kong_harness as kh
from kong_harness import e2e

FORGED = [
    ("X-Identity-Subject", "root"),
    ("x-identity-client-id", "forged-client"),
    ("X-IDENTITY-ISSUER", "https://forged.example"),
    ("x-Identity-Scopes", "admin payments:write"),
    ("X-Identity-Tenant", "forged-tenant"),
]
FORGED_VALUES = {v for _, v in FORGED} | {"one", "two", "three", "DELETE", "GET"}
OVERRIDES = ["X-HTTP-Method-Override", "X-Method-Override", "X-HTTP-Method"]


def _no_caller_header(r, expected_identity: list[tuple[str, str]]):
    """The request was refused as malformed, or the upstream got exactly the
    filter's identity header lines (lowercased names, in any order)."""
    if not r.reached_upstream:
        e2e.expect_denied(r, 400, "request_malformed")
        return None
    up = r.upstream
    assert r.status == 200, r
    got = [(k.lower(), v) for k, v in kh.identity_lines(up)]
    leaked = [(k, v) for k, v in up["raw_headers"] if v in FORGED_VALUES]
    assert not leaked, f"caller-supplied header reached the upstream: {leaked} (all lines: {up['raw_headers']})"
    assert sorted(got) == sorted(expected_identity), f"identity lines at the upstream: {got}"
    for name in OVERRIDES:
        assert name.lower() not in up["headers"], f"{name} reached the upstream: {up['raw_headers']}"
    return up


def _real(sub="svc-billing", client="billing-svc", scopes="payments:read", tenant=None):
    out = [
        ("x-identity-subject", sub),
        ("x-identity-client-id", client),
        ("x-identity-issuer", e2e.ISSUER),
        ("x-identity-scopes", scopes),
    ]
    if tenant:
        out.append(("x-identity-tenant", tenant))
    return out


def test_spoofed_subject_root_on_allowed_call(kong, tok):
    r = kong.get("/payments/1", token=tok("payments:read"), headers=[("x-identity-subject", "root")])
    _no_caller_header(r, _real())


def test_spoofed_subject_root_on_public_route(kong):
    r = kong.get("/healthz", headers=[("x-identity-subject", "root")])
    _no_caller_header(r, [])


def test_all_forged_identity_headers_on_allowed_call(kong, tok):
    token = tok("payments:read", sub="real-sub", client_id="real-client", tenant="real-tenant")
    r = kong.get("/payments/1", token=token, headers=FORGED)
    _no_caller_header(r, _real("real-sub", "real-client", tenant="real-tenant"))


def test_forged_header_stripped_when_claim_absent(kong, tok):
    # no tenant claim: the filter sets no tenant header; the forged one must not pass
    r = kong.get("/payments/1", token=tok("payments:read"), headers=[("X-Identity-Tenant", "forged-tenant")])
    _no_caller_header(r, _real())


def test_all_forged_identity_headers_on_public_route(kong):
    _no_caller_header(kong.get("/healthz", headers=FORGED), [])


@pytest.mark.parametrize("case", ["lower", "upper", "mixed"])
def test_spoofed_subject_any_letter_case(kong, tok, case):
    name = {"lower": "x-identity-subject", "upper": "X-IDENTITY-SUBJECT", "mixed": "X-Identity-Subject"}[case]
    r = kong.get("/payments/1", token=tok("payments:read"), headers=[(name, "root")])
    _no_caller_header(r, _real())


def test_duplicate_spoofed_subject_on_allowed_call(kong, tok):
    forged = [("x-identity-subject", "one"), ("X-Identity-Subject", "two"), ("X-IDENTITY-SUBJECT", "three")]
    r = kong.get("/payments/1", token=tok("payments:read", sub="real"), headers=forged)
    _no_caller_header(r, _real("real"))


def test_duplicate_spoofed_subject_on_public_route(kong):
    forged = [("x-identity-subject", "one"), ("X-Identity-Subject", "two")]
    _no_caller_header(kong.get("/healthz", headers=forged), [])


def test_spoofed_headers_on_default_allow_route(kong_allow):
    _no_caller_header(kong_allow.get("/unmatched/path", headers=FORGED), [])


@pytest.mark.parametrize("name", OVERRIDES)
def test_method_override_header_never_reaches_upstream(kong, tok, name):
    r = kong.get("/payments/1", token=tok("payments:read"), headers=[(name, "DELETE")])
    up = _no_caller_header(r, _real())
    if up is not None:
        assert up["method"] == "GET"


@pytest.mark.parametrize("path", ["/payments/1", "/admin/x", "/nowhere"])
def test_denied_request_with_forged_headers_never_reaches_upstream(kong, path):
    r = kong.get(path, headers=FORGED)
    assert r.status in (400, 401, 403), r
    assert not r.reached_upstream


@pytest.mark.h2
def test_h2_spoofed_subject_on_allowed_call(kong, tok):
    r = kong.h2_request("GET", "/payments/1", token=tok("payments:read", sub="real"),
                        headers=[("x-identity-subject", "root"), ("x-identity-tenant", "forged-tenant")])
    _no_caller_header(r, _real("real"))


@pytest.mark.h2
def test_h2_spoofed_subject_on_public_route(kong):
    r = kong.h2_request("GET", "/healthz", headers=[("x-identity-subject", "root")])
    _no_caller_header(r, [])


def test_forged_identity_headers_in_dry_run_denial(hosts):
    # dry_run lets a denied request through: the forged headers must still never arrive
    dry = hosts.get("dry-run", mode="dry_run")
    _no_caller_header(dry.get("/payments/1", headers=FORGED), [])
