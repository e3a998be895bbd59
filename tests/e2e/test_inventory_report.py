"""The identity inventory end to end (CONTRACT §5.1, docs/report.md): a known
mix of machine identities through Envoy with two workers, the inventory on
(`interval_s` 10) and every decision audited, then `scopegate report` on
Envoy's log, every number checked.

The mix (tests/e2e/inventory_mix.py): registered identities with owners (one
whose registration expires in five days, one expired an hour ago, one
registered that never calls, a disabled one that never calls), an identity
registered for any provider calling through the partner provider, an
unregistered one (`unregistered: report`), tokens with scopes never used,
a scope the registry's ceiling drops, denials (insufficient_scope,
client_not_allowed, provider_not_allowed, identity_expired) and requests
without a verified identity (no token, a token living past max_lifetime_s,
no rule, a public route). Each request is a new connection, so both workers
decide some; each worker writes its own inventory lines, and the audit
lines of those requests say `inventoried`, so the report must count every
request exactly once.

    ENVOY_BIN=$(scripts/envoy-bin) SCOPEGATE_WASM=$PWD/target/wasm32-wasip1/release/scopegate.wasm \\
      .venv/bin/pytest -q -p no:cacheprovider tests/e2e/test_inventory_report.py

`SCOPEGATE_BIN` names the CLI (else `cargo build -p scopegate-cli`);
`SCOPEGATE_E2E_REPORT_TEXT=FILE` writes the text report there
(docs/report-e2e-example.txt was made so).
"""

from __future__ import annotations

import copy
import json
import os
import re
import shutil
import time

import pytest

import harness as h
import inventory_mix as mix
from inventory_mix import Call, Caller, Token

INTERVAL_S = 10
DAY = 86400


def registry_entries(now: int) -> list[dict]:
    return [
        {"client_id": "billing-batch", "provider": "corp", "owner": "payments-team@example.com",
         "description": "nightly billing export", "expires": h.rfc3339(now + 365 * DAY),
         "max_scopes": ["payments:read", "payments:write", "refunds:create", "statements:read"]},
        {"client_id": "ledger-sync", "provider": "corp", "owner": "finance@example.com"},
        {"client_id": "ops-bot", "provider": "corp", "owner": "sre@example.com",
         "expires": h.rfc3339(now + 5 * DAY + 3600)},
        {"client_id": "old-job", "provider": "corp", "owner": "legacy@example.com",
         "expires": h.rfc3339(now - 3600)},
        {"client_id": "dormant-exporter", "provider": "corp", "owner": "data@example.com"},
        {"client_id": "partner-app", "owner": "partner-ops@example.net"},
        {"client_id": "retired-job", "owner": "legacy@example.com", "status": "disabled",
         "expires": h.rfc3339(now - 10 * DAY)},
    ]


def filter_config(keys: h.KeySet, now: int) -> dict:
    cfg = h.base_filter_config(keys, audit_log="all", inventory={"interval_s": INTERVAL_S})
    cfg["rules"].append({"name": "exports", "methods": ["GET"], "path": "/exports/**", "scopes": ["exports:read"]})
    cfg["identities"] = {"registry": {"inline": registry_entries(now)}, "unregistered": "report"}
    return cfg


def callers() -> list[Caller]:
    read, refund = ("GET", "/payments/{}"), ("POST", "/payments/{}/refunds")
    return [
        # Registered, a ceiling that drops `admin`; every scope it keeps is used.
        Caller("corp", "billing-batch",
               [Token("payments:read payments:write refunds:create admin", 3600, age_s=120),
                Token("payments:read payments:write refunds:create", 1800)],
               [Call("GET", "/payments/1", 200, "allowed", "read", 6),
                Call("POST", "/payments/7/refunds", 200, "allowed", "refund", 2),
                Call("GET", "/reports/q1/summary", 403, "insufficient_scope", "reports", 2),
                # no rule: refused before the token is verified, no identity
                Call("GET", "/nothing/here", 403, "route_not_allowed", None, 1)],
               granted=["payments:read", "payments:write", "refunds:create"],
               exercised=["payments:read", "payments:write", "refunds:create"]),
        # Registered, over-granted (one scope no rule requires at all).
        Caller("corp", "ledger-sync",
               [Token("payments:read payments:write refunds:create reports:read ledger:sync", 600)],
               [Call("GET", "/payments/2", 200, "allowed", "read", 5),
                Call("GET", "/admin/stats", 403, "client_not_allowed", "admin", 2)],
               granted=["ledger:sync", "payments:read", "payments:write", "refunds:create", "reports:read"],
               exercised=["payments:read"], alg="ES256"),
        # Registered, expiring in five days; `any_scopes` exercised.
        Caller("corp", "ops-bot", [Token("admin payments:read", 300)],
               [Call("GET", "/admin/stats", 200, "allowed", "admin", 3)],
               granted=["admin", "payments:read"], exercised=["admin"], alg="EdDSA"),
        # Registration expired an hour ago: 401 identity_expired, still an identity.
        Caller("corp", "old-job", [Token("payments:read", 600)],
               [Call("GET", "/payments/4", 401, "identity_expired", "read", 2)],
               granted=["payments:read"], exercised=[]),
        # Registered for any provider, calling through the partner provider
        # (no max_lifetime_s there: a two-hour token passes).
        Caller("partner", "partner-app", [Token("payments:read reports:read", 7200, age_s=60)],
               [Call("GET", "/payments/3", 200, "allowed", "read", 4),
                Call("GET", "/reports/2026/summary", 200, "allowed", "reports", 1),
                Call("POST", "/payments/3/refunds", 403, "insufficient_scope", "refund", 1),
                Call("GET", "/admin/stats", 403, "provider_not_allowed", "admin", 1)],
               granted=["payments:read", "reports:read"], exercised=["payments:read", "reports:read"]),
        # Not registered (`unregistered: report`): let through, reported.
        Caller("corp", "shadow-cron", [Token("payments:read payments:write", 1800)],
               [Call("GET", "/payments/9", 200, "allowed", "read", 3),
                Call("POST", "/payments/9/refunds", 403, "insufficient_scope", "refund", 1)],
               granted=["payments:read", "payments:write"], exercised=["payments:read"]),
        # Past corp's max_lifetime_s (3600): refused before it has an identity.
        Caller("corp", "long-lived-svc", [Token("payments:read", 7200)],
               [Call("GET", "/payments/5", 401, "lifetime_too_long", "read", 1)]),
        # No token.
        Caller(None, None, [],
               [Call("GET", "/healthz", 200, "public_route", "health", 2),
                Call("GET", "/payments/6", 401, "token_missing", "read", 2)]),
    ]


_THREAD = re.compile(r"^\[[^\]]+\]\[(\d+)\]")


@pytest.fixture(scope="module")
def run(prerequisites, keys, echo, tmp_path_factory):
    """Envoy with 2 workers, the mix sent, every inventory line flushed; the
    log copied once all of it is there. What the tests need, in a dict."""
    now = int(time.time())
    cfg = filter_config(keys, now)
    gw = h.Envoy("inventory-report", cfg, echo, concurrency=2).start()
    try:
        mixture = callers()
        issuers = {p["name"]: p["issuer"] for p in cfg["providers"]}
        for c in mixture:
            c.mint(keys, issuers)
        started = int(time.time())
        sent = mix.send_all(gw, mixture)
        expected = mix.identities_of(mixture)
        mix.wait_for_inventory(gw, sum(e["requests"] for e in expected.values()), timeout=INTERVAL_S + 20)
        # The audit lines are written as each request is decided, before the
        # inventory: once the inventory adds up, give the last batch of the
        # log a moment to reach the file.
        time.sleep(0.5)
        work = tmp_path_factory.mktemp("inventory-report")
        shutil.copy(gw.log_path, work / "envoy.log")
        with open(work / "scopegate.json", "w") as f:
            json.dump(cfg, f, indent=2)
        with open(work / "registry.json", "w") as f:
            json.dump({"identities": registry_entries(now)}, f, indent=2)
        yield {
            "gw": gw, "cfg": cfg, "callers": mixture, "sent": sent, "expected": expected,
            "dir": str(work), "log": (work / "envoy.log").read_text(errors="replace"),
            "started": started, "config_now": now, "now": int(time.time()),
        }
    finally:
        gw.cleanup()


def base_args(run) -> list[str]:
    return ["--config", "scopegate.json", "--registry", "registry.json", "--now", h.rfc3339(run["now"]), "envoy.log"]


@pytest.fixture(scope="module")
def rep(run) -> dict:
    return mix.report_json(base_args(run), run["dir"])


def test_every_request_was_answered_as_the_mix_says(run):
    wrong = [(c.client_id, call.method, call.path, call.status, status)
             for c, call, status in run["sent"] if status != call.status]
    assert not wrong, wrong
    total = mix.totals(run["callers"])["requests"]
    assert len(run["sent"]) == total == 39


def test_both_workers_decided_and_wrote_inventory_lines(run):
    audit_threads = {_THREAD.match(line).group(1) for line, _ in h.audit_records(run["log"])}
    inventory_threads = {_THREAD.match(line).group(1) for line, _ in mix.inventory_records(run["log"])}
    assert len(audit_threads) == 2, audit_threads
    assert inventory_threads == audit_threads
    # An identity both workers saw has a line from each: the report adds them.
    by_identity: dict = {}
    for line, doc in mix.inventory_records(run["log"]):
        by_identity.setdefault((doc["provider"], doc["client_id"]), set()).add(_THREAD.match(line).group(1))
    assert any(len(t) == 2 for t in by_identity.values()), by_identity


def test_inventory_lines_alone_count_each_verified_request_once(run):
    sums = mix.inventory_sums(run["log"])
    assert set(sums) == set(run["expected"])
    for key, exp in run["expected"].items():
        got = sums[key]
        assert (got["requests"], got["allowed"], got["denied"], got["rules"]) == (
            exp["requests"], exp["allowed"], exp["denied"], exp["rules"]), (key, got, exp)
    assert sum(s["requests"] for s in sums.values()) == 33
    # Every inventory line is one identity in one worker's 10 s window.
    for _, doc in mix.inventory_records(run["log"]):
        assert not doc.get("overflow") and not doc.get("truncated"), doc
        assert mix.instant(doc["window_end"]) - mix.instant(doc["window_start"]) >= INTERVAL_S, doc
    # The audit lines: those of verified requests say `inventoried`, the others do not.
    audits = [doc for _, doc in h.audit_records(run["log"])]
    assert len(audits) == 39
    assert sum(1 for a in audits if a.get("inventoried")) == 33
    for a in audits:
        assert bool(a.get("inventoried")) == (a["client_id"] is not None), a


def test_report_identities(run, rep):
    entries = {e["client_id"]: e for e in registry_entries(run["config_now"])}
    got = {(i["provider"], i["client_id"]): i for i in rep["identities"]}
    assert list(got) == sorted(run["expected"])  # sorted by provider, then client id
    lo, hi = run["started"], run["now"]
    for key, exp in run["expected"].items():
        i = got[key]
        client = key[1]
        for member in ("requests", "allowed", "denied", "rules", "scopes_granted", "scopes_exercised",
                       "scopes_unused", "max_token_lifetime_s"):
            assert i[member] == exp[member], (key, member, i[member], exp[member])
        assert i["subject"] == client
        assert i["registered"] is (client in entries), i
        assert i["owner"] == (entries[client]["owner"] if client in entries else None), i
        assert i["exercised_complete"] is True
        first, last = mix.instant(i["first_seen"]), mix.instant(i["last_seen"])
        assert lo <= first <= last <= hi, (i["first_seen"], i["last_seen"], lo, hi)
        assert sum(i["activity"]) == i["requests"]
        assert len(i["activity"]) == rep["timeline"]["buckets"]
    # Token ages: iat set back 120 s (billing-batch) and 60 s (partner-app).
    age = {k: got[k]["max_token_age_s"] for k in got}
    elapsed = hi - lo + 2
    assert 120 <= age[("corp", "billing-batch")] <= 120 + elapsed, age
    assert 60 <= age[("partner", "partner-app")] <= 60 + elapsed, age
    for k in (("corp", "ledger-sync"), ("corp", "ops-bot"), ("corp", "old-job"), ("corp", "shadow-cron")):
        assert 0 <= age[k] <= elapsed, age


def test_report_summary(run, rep):
    s = rep["summary"]
    t = mix.totals(run["callers"])
    assert (s["identities"], s["with_owner"], s["with_owner_share"]) == (6, 5, 0.833)
    assert (s["with_unused_scopes"], s["with_unused_scopes_share"]) == (4, 0.667)
    assert (s["dormant"], s["expiring"], s["unregistered"]) == (1, 2, 1)
    assert (s["requests"], s["allowed"]) == (t["requests"], t["allowed"]) == (39, 26)
    assert s["denied"] == t["denied"] == {
        "client_not_allowed": 2, "identity_expired": 2, "insufficient_scope": 4, "lifetime_too_long": 1,
        "provider_not_allowed": 1, "route_not_allowed": 1, "token_missing": 2}
    assert s["without_identity"] == mix.without_identity(run["callers"]) == {
        "requests": 6, "allowed": 2, "denied": {"lifetime_too_long": 1, "route_not_allowed": 1, "token_missing": 2}}
    assert s["overflow"] == {"lines": 0, "identities_max": 0, "requests": 0, "allowed": 0, "denied": {}}
    inventory_lines = len(mix.inventory_records(run["log"]))
    lines = s["lines"]
    assert lines["inventory"] == inventory_lines >= 6
    assert (lines["audit"], lines["audit_inventoried"]) == (6, 33)
    assert (lines["overflow"], lines["malformed"], lines["before_since"], lines["oversized"]) == (0, 0, 0, 0)
    assert lines["read"] == len(run["log"].splitlines())
    assert lines["skipped"] == lines["read"] - inventory_lines - 39
    assert run["started"] <= mix.instant(s["first_seen"]) <= mix.instant(s["last_seen"]) <= run["now"]
    # The time axis holds every identity's requests.
    assert sum(rep["timeline"]["requests"]) == 33
    assert rep["report"] == {
        "format": 1, "now": h.rfc3339(run["now"]), "since": None, "unused_days": 30, "expiry_warning_days": 14,
        "config": True, "registry": True, "inputs": ["envoy.log"]}


def test_report_findings(run, rep):
    f = rep["findings"]
    owners = {e["client_id"]: e["owner"] for e in registry_entries(run["config_now"])}
    assert f["least_privilege"] == [
        {"provider": "corp", "client_id": "ledger-sync", "owner": owners["ledger-sync"],
         "scopes_unused": ["ledger:sync", "payments:write", "refunds:create", "reports:read"],
         "request_scopes": ["payments:read"], "exercised_complete": True},
        {"provider": "corp", "client_id": "old-job", "owner": owners["old-job"],
         "scopes_unused": ["payments:read"], "request_scopes": [], "exercised_complete": True},
        {"provider": "corp", "client_id": "ops-bot", "owner": owners["ops-bot"],
         "scopes_unused": ["payments:read"], "request_scopes": ["admin"], "exercised_complete": True},
        {"provider": "corp", "client_id": "shadow-cron", "owner": None,
         "scopes_unused": ["payments:write"], "request_scopes": ["payments:read"], "exercised_complete": True},
    ]
    # Never seen: the registered identity that never called (the disabled one is not listed).
    assert f["dormant"] == [{"provider": "corp", "client_id": "dormant-exporter", "owner": "data@example.com",
                             "last_seen": None, "days_since_seen": None}]
    now = run["config_now"]
    assert f["expiring"] == [
        {"provider": "corp", "client_id": "old-job", "owner": "legacy@example.com",
         "expires": h.rfc3339(now - 3600), "expired": True, "days_left": -1},
        {"provider": "corp", "client_id": "ops-bot", "owner": "sre@example.com",
         "expires": h.rfc3339(now + 5 * DAY + 3600), "expired": False, "days_left": 5},
    ]
    shadow = next(i for i in rep["identities"] if i["client_id"] == "shadow-cron")
    assert f["unregistered"] == [{"provider": "corp", "client_id": "shadow-cron", "requests": 4,
                                  "last_seen": shadow["last_seen"]}]
    # The filter holds corp to max_lifetime_s: no token seen lives longer.
    assert f["long_lived_tokens"] == []
    assert f["unused_rules"] == ["exports"]
    assert f["unrequired_scopes"] == [
        {"scope": "ledger:sync", "identities": 1, "registry_entries": 0},
        {"scope": "statements:read", "identities": 0, "registry_entries": 1},
    ]


def test_a_tightened_max_lifetime_finds_the_long_lived_tokens(run):
    """The same logs judged against a configuration that now holds corp to
    15 minutes and partner to an hour: the tokens seen under the old one
    that live longer are listed."""
    cfg = copy.deepcopy(run["cfg"])
    corp, partner = cfg["providers"]
    corp["max_lifetime_s"], partner["max_lifetime_s"] = 900, 3600
    with open(os.path.join(run["dir"], "tightened.json"), "w") as f:
        json.dump(cfg, f)
    args = ["--config", "tightened.json", "--now", h.rfc3339(run["now"]), "envoy.log"]
    rep = mix.report_json(args, run["dir"])
    assert rep["findings"]["long_lived_tokens"] == [
        {"provider": "corp", "client_id": "billing-batch", "max_token_lifetime_s": 3600, "max_lifetime_s": 900},
        {"provider": "corp", "client_id": "shadow-cron", "max_token_lifetime_s": 1800, "max_lifetime_s": 900},
        {"provider": "partner", "client_id": "partner-app", "max_token_lifetime_s": 7200, "max_lifetime_s": 3600},
    ]
    # The configuration's inline registry stands in for --registry.
    assert rep["report"]["registry"] is True
    assert rep["summary"]["dormant"] == 1 and rep["summary"]["expiring"] == 2


def test_audit_lines_alone_give_the_same_counts(run, rep):
    """Without the inventory lines (and without `inventoried`), the audit
    lines say the same of every identity: the inventory and the audit log
    agree request for request."""
    audit_only = []
    for line, doc in h.audit_records(run["log"]):
        doc.pop("inventoried", None)
        audit_only.append(json.dumps(doc, separators=(",", ":")))
    with open(os.path.join(run["dir"], "audit-only.log"), "w") as f:
        f.write("\n".join(audit_only) + "\n")
    other = mix.report_json(["--config", "scopegate.json", "--registry", "registry.json",
                             "--now", h.rfc3339(run["now"]), "audit-only.log"], run["dir"])
    keep = ("provider", "client_id", "owner", "registered", "requests", "allowed", "denied", "rules",
            "scopes_granted", "scopes_exercised", "scopes_unused")
    assert [{k: i[k] for k in keep} for i in other["identities"]] == [{k: i[k] for k in keep} for i in rep["identities"]]
    assert other["findings"]["least_privilege"] == rep["findings"]["least_privilege"]
    assert other["summary"]["lines"]["audit"] == 39


def test_text_and_html_reports(run, rep):
    text = mix.report(base_args(run), run["dir"]).stdout.decode()
    for c in ("billing-batch", "ledger-sync", "ops-bot", "old-job", "partner-app", "shadow-cron", "dormant-exporter"):
        assert c in text, c
    if os.environ.get("SCOPEGATE_E2E_REPORT_TEXT"):
        with open(os.environ["SCOPEGATE_E2E_REPORT_TEXT"], "w") as f:
            f.write(text)
    mix.report([*base_args(run), "--format", "html", "-o", "report.html"], run["dir"])
    page = open(os.path.join(run["dir"], "report.html"), encoding="utf-8").read()
    assert page.lstrip().lower().startswith("<!doctype html")
    for c in ("billing-batch", "partner-app", "shadow-cron", "dormant-exporter"):
        assert c in page, c
    # The JSON report is the same bytes whatever is asked twice.
    again = mix.report_json(base_args(run), run["dir"])
    assert again == rep
