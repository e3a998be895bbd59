"""The audit log (one JSON line per decision, through proxy_log) lands in
nginx's error log, never with the token."""

import json
import re
import time

from kong_harness import e2e


def audit_lines(n) -> list[dict]:
    out = []
    for line in n.log_text().splitlines():
        i = line.find('{"audit":"scopegate"')
        if i >= 0:
            # nginx appends ", client: ..., server: ..." after the message
            doc, _ = json.JSONDecoder().raw_decode(line[i:])
            out.append(doc)
    return out


def _wait(cond, timeout=3.0):
    deadline = time.monotonic() + timeout
    while not cond():
        if time.monotonic() > deadline:
            return False
        time.sleep(0.1)
    return True


def test_allowed_decision_audited(kong, tok):
    token = tok("payments:read", sub="svc-audit", jti="jti-kong-audit-1")
    e2e.expect_allowed(kong.get("/payments/9", token=token))
    assert _wait(lambda: any(a.get("jti") == "jti-kong-audit-1" for a in audit_lines(kong))), kong.log_text()[-3000:]
    a = next(a for a in audit_lines(kong) if a.get("jti") == "jti-kong-audit-1")
    assert (a["decision"], a["reason"], a["rule"], a["provider"], a["subject"]) == ("allow", "allowed", "read", "corp", "svc-audit")
    assert a["method"] == "GET" and a["path"] == "/payments/9"
    assert a["source"].startswith("127.0.0.1")
    assert token not in kong.log_text()


def test_denied_decision_audited(kong, tok):
    token = tok("payments:write", jti="jti-kong-audit-2")
    r = kong.get("/payments/9", token=token)
    e2e.expect_denied(r, 403, "insufficient_scope", token=token)
    assert _wait(lambda: any(a.get("jti") == "jti-kong-audit-2" for a in audit_lines(kong)))
    a = next(a for a in audit_lines(kong) if a.get("jti") == "jti-kong-audit-2")
    assert (a["decision"], a["reason"]) == ("deny", "insufficient_scope")
    assert token not in kong.log_text()


def test_audit_line_logged_at_info_level(kong):
    kong.get("/healthz")
    assert _wait(lambda: re.search(r'\[info\].*\{"audit":"scopegate"', kong.log_text()))
