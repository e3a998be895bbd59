"""Every decision visible (issue 8): exact counters after a known mix of
requests, the same in Prometheus form, identity and reason in the access log
through filter state, and the audit log — one JSON line per decision, with
the contract's fields, never the token, unbreakable by hostile claims."""

from __future__ import annotations

import json
import re
import time

import pytest

import harness as h

REASONS = [
    "allowed", "public_route", "token_missing", "token_malformed", "request_malformed",
    "unsupported_algorithm", "issuer_unknown", "key_not_found", "signature_invalid",
    "token_expired", "token_not_yet_valid", "token_issued_in_future", "lifetime_too_long",
    "audience_mismatch", "claim_missing", "insufficient_scope", "client_not_allowed",
    "provider_not_allowed", "route_not_allowed", "jwks_unavailable",
]


@pytest.fixture(scope="module")
def gw_audit(gateways) -> h.Envoy:
    """A gateway of its own (fresh counters) with every decision audited."""
    return gateways.get("audit-all", audit_log="all")


def audit_lines(gw: h.Envoy) -> list[dict]:
    out = []
    for line in gw.log_text().splitlines():
        i = line.find('{"audit":"scopegate"')
        if i >= 0:
            out.append(json.loads(line[i:]))
    return out


def wait_for(cond, timeout=3.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(0.1)
    return cond()


def test_counts_after_a_known_mix_are_exact(gw_audit, tok):
    now = h.claims()["iat"]
    mix = {
        "allowed": [lambda: gw_audit.get("/payments/1", token=tok("payments:read"))] * 3,
        "public_route": [lambda: gw_audit.get("/healthz")] * 2,
        "token_missing": [lambda: gw_audit.get("/payments/1")] * 2,
        "token_malformed": [lambda: gw_audit.get("/payments/1", token="a.b")],
        "token_expired": [lambda: gw_audit.get("/payments/1", token=tok("payments:read", iat=now - 900, exp=now - 300))],
        "insufficient_scope": [lambda: gw_audit.request("POST", "/payments/1/refunds", token=tok("payments:read"))] * 2,
        "request_malformed": [lambda: gw_audit.get("/payments/a%2fb")],
        "route_not_allowed": [lambda: gw_audit.get("/nowhere", token=tok("payments:read"))],
    }
    for calls in mix.values():
        for call in calls:
            call()
    want = {r: len(mix.get(r, [])) for r in REASONS}
    stats = gw_audit.stats()
    got = {r: next((v for k, v in stats.items() if k.endswith(f"scopegate.requests.{r}")), None) for r in REASONS}
    assert got == want
    _, prom = gw_audit._admin_get("/stats/prometheus")
    for r, n in want.items():
        m = re.search(rf"^scopegate_requests_{r}(\{{[^}}]*\}})? (\d+)$", prom, re.M)
        assert m and int(m.group(2)) == n, f"prometheus scopegate_requests_{r}: {m and m.group(0)}"


def test_access_log_shows_identity_and_reason_per_request(gw_audit, tok):
    ok = gw_audit.get("/payments/7", token=tok("payments:read", sub="svc-log", client_id="log-client"))
    denied = gw_audit.request("POST", "/payments/7/refunds", token=tok("payments:read", sub="svc-log2"))
    missing = gw_audit.get("/payments/7")

    def line(marker):
        return next((l for l in gw_audit.access_log().splitlines() if f" {marker} " in l), None)

    assert wait_for(lambda: all(line(r.marker) for r in (ok, denied, missing)))
    assert "decision=allow reason=allowed rule=read subject=svc-log client_id=log-client" in line(ok.marker)
    assert f"issuer={h.ISSUER} scopes=payments:read" in line(ok.marker)
    assert "decision=deny reason=insufficient_scope rule=refund subject=svc-log2" in line(denied.marker)
    assert "decision=deny reason=token_missing rule=read subject=- " in line(missing.marker)
    # The default form is the seven properties: no record.
    assert "s.decision=- s.reason=- s.rule=- s.subject=-" in line(ok.marker)


def test_the_struct_form_sets_one_record_the_access_log_reads_field_by_field(gateways, tok):
    """`request_properties_form: "struct"`: the facts as one property
    `scopegate` (filter state wasm.scopegate, a google.protobuf.Struct declared
    at configuration), each field read with %CEL(filter_state['wasm.scopegate'].<fact>)%;
    a fact without a value is absent; the seven separate properties are not set."""
    gw = gateways.get("props-struct", request_properties_form="struct")
    ok = gw.get("/payments/7", token=tok("payments:read", sub="svc-rec", client_id="rec-client"))
    missing = gw.get("/payments/7")

    def line(marker):
        return next((l for l in gw.access_log().splitlines() if f" {marker} " in l), None)

    assert wait_for(lambda: all(line(r.marker) for r in (ok, missing)))
    assert ("s.decision=allow s.reason=allowed s.rule=read s.subject=svc-rec s.client_id=rec-client"
            f" s.issuer={h.ISSUER} s.scopes=payments:read") in line(ok.marker)
    assert "s.decision=deny s.reason=token_missing s.rule=read s.subject=- s.client_id=- s.issuer=- s.scopes=-" \
        in line(missing.marker)
    assert "decision=- reason=- rule=- subject=-" in line(ok.marker)


def test_audit_line_per_decision_has_the_fields_and_never_the_token(gw_audit, tok):
    token = tok("payments:read", sub="svc-audit", jti="jti-audit-1")
    gw_audit.get("/payments/9?access_token=secret-in-query", token=token)
    assert wait_for(lambda: any(a.get("jti") == "jti-audit-1" for a in audit_lines(gw_audit)))
    a = next(a for a in audit_lines(gw_audit) if a.get("jti") == "jti-audit-1")
    for field in ("time", "decision", "reason", "rule", "provider", "subject", "client_id", "scopes", "jti", "method", "path", "source"):
        assert field in a, field
    assert (a["decision"], a["reason"], a["rule"], a["provider"], a["subject"]) == ("allow", "allowed", "read", "corp", "svc-audit")
    assert a["scopes"] == ["payments:read"] and a["method"] == "GET" and a["path"] == "/payments/9"
    assert a["source"].startswith("127.0.0.1")
    assert re.match(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$", a["time"])
    log = gw_audit.log_text()
    header, payload, signature = token.split(".")
    assert token not in log and signature not in log and payload not in log
    assert "secret-in-query" not in log, "the query string is never logged"


def test_a_hostile_claim_cannot_forge_or_split_audit_lines(gw_audit, tok):
    evil = 'x"}\n{"audit":"scopegate","decision":"allow","reason":"allowed","jti":"forged'
    before = len(audit_lines(gw_audit))
    gw_audit.get("/payments/1", token=tok("payments:read", jti=evil))
    assert wait_for(lambda: len(audit_lines(gw_audit)) == before + 1)
    assert not any(a.get("jti") == "forged" for a in audit_lines(gw_audit))
    assert any(a.get("jti") == evil for a in audit_lines(gw_audit)), "the claim is kept, escaped"


def test_denied_only_audit_is_the_default(gw, tok):
    gw.get("/payments/1", token=tok("payments:read", jti="jti-default-allow"))
    gw.get("/payments/1", token=tok("orders:read", jti="jti-default-deny"))
    assert wait_for(lambda: any(a.get("jti") == "jti-default-deny" for a in audit_lines(gw)))
    assert not any(a.get("jti") == "jti-default-allow" for a in audit_lines(gw))


def test_dry_run_counts_denials_it_lets_through(gw_dry_run, tok):
    before = gw_dry_run.scopegate_counter("requests.insufficient_scope") or 0
    r = gw_dry_run.request("POST", "/payments/1/refunds", token=tok("payments:read"))
    h.expect_allowed(r)
    assert gw_dry_run.scopegate_counter("requests.insufficient_scope") == before + 1


def test_request_properties_can_be_narrowed_or_turned_off(gateways, tok):
    """`request_properties` picks the access-log facts Scopegate sets (each is a
    host call per request); the decision, counters and headers stay the same."""
    some = gateways.get("props-some", request_properties=["decision", "reason"])
    none = gateways.get("props-none", request_properties=[])
    t = tok("payments:read", sub="svc-props", client_id="props-client")
    r_some, r_none = some.get("/payments/7", token=t), none.get("/payments/7", token=t)
    d_some, d_none = some.get("/payments/7"), none.get("/payments/7")
    for r in (r_some, r_none):
        assert r.status == 200 and r.upstream_headers("x-identity-subject") == ["svc-props"]
    for r in (d_some, d_none):
        assert r.status == 401

    def line(gw, marker):
        return next((l for l in gw.access_log().splitlines() if f" {marker} " in l), None)

    assert wait_for(lambda: all(line(some, r.marker) for r in (r_some, d_some)))
    assert wait_for(lambda: all(line(none, r.marker) for r in (r_none, d_none)))
    assert "decision=allow reason=allowed rule=- subject=- client_id=-" in line(some, r_some.marker)
    assert "decision=deny reason=token_missing rule=- " in line(some, d_some.marker)
    assert "decision=- reason=- rule=- subject=- client_id=-" in line(none, r_none.marker)
    assert none.scopegate_counter("requests.allowed") >= 1
