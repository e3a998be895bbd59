"""The identity registry (CONTRACT §1.2) in Kong's host, inline: the owner
header and the effective scopes reach the upstream (exactly one line each),
identity_unregistered / identity_disabled / identity_expired /
scope_over_ceiling are answered as the contract says, and the audit line
carries `registered`, `owner` and `scopes_dropped`. The host cannot strip a
caller's header, so a caller-supplied owner header is a 400."""

import time
import uuid

import pytest

import kong_harness as kh
from kong_harness import e2e

OWNER = "payments-team@example.com"
OWNER_HEADER = "x-identity-owner"
HEADERS = e2e.IDENTITY_HEADERS + [OWNER_HEADER]


def registry_config(keys, unregistered: str) -> dict:
    now = int(time.time())
    cfg = kh.kong_filter_config(keys, audit_log="all")
    cfg["identity_headers"]["owner"] = OWNER_HEADER
    cfg["identities"] = {
        "registry": {"inline": [
            {"client_id": "billing-batch", "provider": "corp", "owner": OWNER,
             "expires": e2e.rfc3339(now + 365 * 86400), "max_scopes": ["payments:read"]},
            {"client_id": "ops-bot", "owner": "sre@example.com", "status": "disabled"},
            {"client_id": "old-job", "owner": "legacy@example.com", "expires": e2e.rfc3339(now - 3600)},
        ]},
        "unregistered": unregistered,
    }
    return cfg


@pytest.fixture(scope="module")
def kong_reg(hosts, keys):
    cfg = registry_config(keys, "deny")
    assert len(kh.nginx_quote(kh.filter_config_text(cfg))) <= kh.NGINX_MAX_TOKEN
    return hosts.get("registry-deny", config=cfg)


@pytest.fixture(scope="module")
def kong_reg_report(hosts, keys):
    return hosts.get("registry-report", config=registry_config(keys, "report"))


def token(keys, client, scope="payments:read", **over):
    return e2e.mint(keys.rsa, e2e.claims(scope, client_id=client, **over), alg="RS256")


def audit_for(n, jti, timeout=3.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = [doc for _, doc in e2e.audit_records(n.log_text()) if doc.get("jti") == jti]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, f"audit lines with jti {jti!r}: {found}"
            return found[0]
        time.sleep(0.1)


def identity(up) -> dict:
    lines = kh.identity_lines(up, HEADERS)
    names = [k.lower() for k, _ in lines]
    assert len(names) == len(set(names)), f"an identity header twice: {lines}"
    return {k.lower(): v for k, v in lines}


def test_kong_registered_identity_gets_owner_header(kong_reg, keys):
    up = e2e.expect_allowed(kong_reg.get("/payments/1", token=token(keys, "billing-batch")))
    got = identity(up)
    assert got[OWNER_HEADER] == OWNER, got
    assert got["x-identity-client-id"] == "billing-batch"
    assert got["x-identity-scopes"] == "payments:read"


def test_kong_scopes_beyond_ceiling_leave_the_effective_scopes(kong_reg, keys):
    t = token(keys, "billing-batch", "payments:read payments:write refunds:create")
    got = identity(e2e.expect_allowed(kong_reg.get("/payments/1", token=t)))
    assert got["x-identity-scopes"] == "payments:read", got
    assert got[OWNER_HEADER] == OWNER


def test_kong_refused_only_because_of_the_ceiling(kong_reg, keys):
    t = token(keys, "billing-batch", "payments:read payments:write refunds:create")
    r = kong_reg.request("POST", "/payments/9/refunds", token=t)
    e2e.expect_denied(r, 403, "scope_over_ceiling", token=t, scope="payments:write refunds:create")


def test_kong_unregistered_client_denied(kong_reg, keys):
    t = token(keys, "stranger")
    body = e2e.expect_denied(kong_reg.get("/payments/1", token=t), 403, "identity_unregistered", token=t)
    assert body["error"] == "access_denied"


def test_kong_unregistered_client_reported(kong_reg_report, keys):
    jti = "jti-kong-report-" + uuid.uuid4().hex
    up = e2e.expect_allowed(kong_reg_report.get("/payments/1", token=token(keys, "stranger", jti=jti)))
    got = identity(up)
    assert OWNER_HEADER not in got and got["x-identity-client-id"] == "stranger", got
    a = audit_for(kong_reg_report, jti)
    assert (a["decision"], a["reason"], a["registered"]) == ("allow", "allowed", False), a


def test_kong_disabled_identity_401(kong_reg, keys):
    t = token(keys, "ops-bot")
    e2e.expect_denied(kong_reg.get("/payments/1", token=t), 401, "identity_disabled", token=t)


def test_kong_expired_identity_401(kong_reg, keys):
    t = token(keys, "old-job")
    e2e.expect_denied(kong_reg.get("/payments/1", token=t), 401, "identity_expired", token=t)


def test_kong_audit_line_has_registry_fields(kong_reg, keys):
    jti = "jti-kong-over-" + uuid.uuid4().hex
    t = token(keys, "billing-batch", "payments:read payments:write", jti=jti)
    e2e.expect_allowed(kong_reg.get("/payments/1", token=t))
    a = audit_for(kong_reg, jti)
    assert (a["decision"], a["reason"], a["registered"], a["owner"]) == ("allow", "allowed", True, OWNER), a
    assert a["scopes_dropped"] == ["payments:write"], a
    assert a["scopes"] == ["payments:read"], a
    jti = "jti-kong-unreg-" + uuid.uuid4().hex
    kong_reg.get("/payments/1", token=token(keys, "stranger", jti=jti))
    a = audit_for(kong_reg, jti)
    assert (a["decision"], a["reason"], a["registered"]) == ("deny", "identity_unregistered", False), a
    assert t not in kong_reg.log_text()


def test_kong_caller_supplied_owner_header_is_400(kong_reg, keys):
    t = token(keys, "billing-batch")
    r = kong_reg.get("/payments/1", token=t, headers=[("X-Identity-Owner", "me")])
    e2e.expect_denied(r, 400, "request_malformed", token=t)
