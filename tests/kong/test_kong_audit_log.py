"""The audit log (one JSON line per decision, through proxy_log) lands in
nginx's error log, never with the token."""

import re

from kong_harness import e2e


def audit_lines(n) -> list[dict]:
    # nginx appends ", client: ..., server: ..." after the message
    return [doc for _, doc in e2e.audit_records(n.log_text())]


def test_allowed_decision_audited(kong, tok):
    token = tok("payments:read", sub="svc-audit", jti="jti-kong-audit-1")
    e2e.expect_allowed(kong.get("/payments/9", token=token))
    assert e2e.wait_until(lambda: any(a.get("jti") == "jti-kong-audit-1" for a in audit_lines(kong)), 3.0), kong.log_text()[-3000:]
    a = next(a for a in audit_lines(kong) if a.get("jti") == "jti-kong-audit-1")
    assert (a["decision"], a["reason"], a["rule"], a["provider"], a["subject"]) == ("allow", "allowed", "read", "corp", "svc-audit")
    assert a["method"] == "GET" and a["path"] == "/payments/9"
    assert a["source"].startswith("127.0.0.1")
    assert token not in kong.log_text()


def test_denied_decision_audited(kong, tok):
    token = tok("payments:write", jti="jti-kong-audit-2")
    r = kong.get("/payments/9", token=token)
    e2e.expect_denied(r, 403, "insufficient_scope", token=token)
    assert e2e.wait_until(lambda: any(a.get("jti") == "jti-kong-audit-2" for a in audit_lines(kong)), 3.0)
    a = next(a for a in audit_lines(kong) if a.get("jti") == "jti-kong-audit-2")
    assert (a["decision"], a["reason"]) == ("deny", "insufficient_scope")
    assert token not in kong.log_text()


def test_audit_line_logged_at_info_level(kong):
    kong.get("/healthz")
    assert e2e.wait_until(lambda: re.search(r'\[info\].*\{"audit":"scopegate"', kong.log_text()), 3.0)
