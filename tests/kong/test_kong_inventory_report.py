"""The identity inventory end to end in Kong's host (CONTRACT §5.1,
docs/report.md): a small known mix through nginx with two workers, the
inventory on (`interval_s` 10) and every decision audited, then
`scopegate report` on nginx's error log (where the host writes both kinds of
line, each under nginx's 2 KiB cut), every number checked. The registry is
the configuration's inline one (no `--registry`). The Envoy version, with a
larger mix, is tests/e2e/test_inventory_report.py.

    KONG_NGINX_BIN=$(scripts/kong-host | tail -n 1) \\
      SCOPEGATE_WASM=$PWD/target/wasm32-wasip1/release/scopegate.wasm \\
      .venv/bin/pytest -q -p no:cacheprovider tests/kong/test_kong_inventory_report.py
"""

from __future__ import annotations

import json
import re
import shutil
import time

import pytest

import kong_harness as kh
from kong_harness import e2e

import inventory_mix as mix  # tests/e2e/inventory_mix.py
from inventory_mix import Call, Caller, Token

INTERVAL_S = 10
OWNERS = {"billing-batch": "payments-team@example.com", "ledger-sync": "finance@example.com",
          "dormant-exporter": "data@example.com"}


def filter_config(keys) -> dict:
    cfg = kh.kong_filter_config(keys, audit_log="all", inventory={"interval_s": INTERVAL_S})
    cfg["identities"] = {"registry": {"inline": [
        {"client_id": "billing-batch", "provider": "corp", "owner": OWNERS["billing-batch"],
         "max_scopes": ["payments:read", "payments:write", "refunds:create"]},
        {"client_id": "ledger-sync", "provider": "corp", "owner": OWNERS["ledger-sync"]},
        {"client_id": "dormant-exporter", "owner": OWNERS["dormant-exporter"]},
    ]}, "unregistered": "report"}
    return cfg


def callers() -> list[Caller]:
    return [
        Caller("corp", "billing-batch", [Token("payments:read payments:write refunds:create admin", 3600)],
               [Call("GET", "/payments/1", 200, "allowed", "read", 4),
                Call("POST", "/payments/7/refunds", 200, "allowed", "refund", 1),
                Call("GET", "/reports/q1/summary", 403, "insufficient_scope", "reports", 1)],
               granted=["payments:read", "payments:write", "refunds:create"],
               exercised=["payments:read", "payments:write", "refunds:create"]),
        Caller("corp", "ledger-sync", [Token("payments:read reports:read", 600)],
               [Call("GET", "/payments/2", 200, "allowed", "read", 3),
                Call("GET", "/admin/stats", 403, "client_not_allowed", "admin", 1)],
               granted=["payments:read", "reports:read"], exercised=["payments:read"], alg="ES256"),
        Caller("partner", "partner-app", [Token("payments:read", 7200)],
               [Call("GET", "/payments/3", 200, "allowed", "read", 2)],
               granted=["payments:read"], exercised=["payments:read"]),
        Caller(None, None, [], [Call("GET", "/payments/6", 401, "token_missing", "read", 1)]),
    ]


_PID = re.compile(r"\[\w+\] (\d+)#")


@pytest.fixture(scope="module")
def run(hosts, keys, tmp_path_factory):
    cfg = filter_config(keys)
    assert len(kh.nginx_quote(kh.filter_config_text(cfg))) <= kh.NGINX_MAX_TOKEN
    n = hosts.get("inventory-report", config=cfg)
    mixture = callers()
    issuers = {p["name"]: p["issuer"] for p in cfg["providers"]}
    for c in mixture:
        c.mint(keys, issuers)
    started = int(time.time())
    sent = mix.send_all(n, mixture)
    expected = mix.identities_of(mixture)
    mix.wait_for_inventory(n, sum(e["requests"] for e in expected.values()), timeout=INTERVAL_S + 20)
    time.sleep(0.5)
    work = tmp_path_factory.mktemp("kong-inventory-report")
    shutil.copy(n.log_path, work / "error.log")
    with open(work / "scopegate.json", "w") as f:
        json.dump(cfg, f)
    return {"n": n, "callers": mixture, "sent": sent, "expected": expected, "dir": str(work),
            "log": (work / "error.log").read_text(errors="replace"), "started": started, "now": int(time.time())}


def probes(run) -> int:
    """The harness's readiness probes (GET /__kong_ready, no rule: refused
    before any token) are in the log too: one without an identity each."""
    found = [doc for _, doc in e2e.audit_records(run["log"]) if doc["path"] == "/__kong_ready"]
    assert found and all((a["reason"], a["client_id"]) == ("route_not_allowed", None) for a in found), found
    return len(found)


@pytest.fixture(scope="module")
def rep(run) -> dict:
    return mix.report_json(["--config", "scopegate.json", "--now", e2e.rfc3339(run["now"]), "error.log"], run["dir"])


def test_every_request_was_answered_as_the_mix_says(run):
    wrong = [(c.client_id, call.method, call.path, call.status, status)
             for c, call, status in run["sent"] if status != call.status]
    assert not wrong, wrong
    assert len(run["sent"]) == 13
    assert not run["n"].dead_worker_lines()


def test_inventory_lines_fit_a_log_line_and_count_each_request_once(run):
    records = mix.inventory_records(run["log"])
    assert records
    for line, doc in records:
        assert len(line.encode()) < 2048, line  # nginx cuts error-log lines at 2 KiB
        assert _PID.search(line), line
    sums = mix.inventory_sums(run["log"])
    assert set(sums) == set(run["expected"])
    for key, exp in run["expected"].items():
        got = sums[key]
        assert (got["requests"], got["allowed"], got["denied"], got["rules"]) == (
            exp["requests"], exp["allowed"], exp["denied"], exp["rules"]), (key, got, exp)
    audits = kh.audit_lines(run["n"])
    assert len(audits) == 13 + probes(run)
    assert sum(1 for a in audits if a.get("inventoried")) == 12
    # Each worker writes the lines of the requests it decided (nginx may
    # hand every connection to one worker: either is fine).
    per_worker: dict[str, int] = {}
    for line, doc in records:
        pid = _PID.search(line).group(1)
        per_worker[pid] = per_worker.get(pid, 0) + doc["requests"]
    decided: dict[str, int] = {}
    for a in audits:
        if a.get("inventoried"):
            decided[a["_pid"]] = decided.get(a["_pid"], 0) + 1
    assert per_worker == decided


def test_report_identities(run, rep):
    got = {(i["provider"], i["client_id"]): i for i in rep["identities"]}
    assert list(got) == sorted(run["expected"])
    for key, exp in run["expected"].items():
        i = got[key]
        for member in ("requests", "allowed", "denied", "rules", "scopes_granted", "scopes_exercised",
                       "scopes_unused", "max_token_lifetime_s"):
            assert i[member] == exp[member], (key, member, i[member], exp[member])
        assert i["owner"] == OWNERS.get(key[1])
        assert i["registered"] is (key[1] in OWNERS)
        assert run["started"] <= mix.instant(i["first_seen"]) <= mix.instant(i["last_seen"]) <= run["now"]
        assert sum(i["activity"]) == i["requests"]


def test_report_summary_and_findings(run, rep):
    s = rep["summary"]
    assert (s["identities"], s["with_owner"], s["with_owner_share"]) == (3, 2, 0.667)
    assert (s["with_unused_scopes"], s["with_unused_scopes_share"]) == (1, 0.333)
    assert (s["dormant"], s["expiring"], s["unregistered"]) == (1, 0, 1)
    p = probes(run)
    assert (s["requests"], s["allowed"]) == (13 + p, 10)
    assert s["denied"] == {"client_not_allowed": 1, "insufficient_scope": 1, "route_not_allowed": p, "token_missing": 1}
    assert s["without_identity"] == {"requests": 1 + p, "allowed": 0,
                                     "denied": {"route_not_allowed": p, "token_missing": 1}}
    lines = s["lines"]
    assert lines["inventory"] == len(mix.inventory_records(run["log"]))
    assert (lines["audit"], lines["audit_inventoried"], lines["malformed"], lines["overflow"]) == (1 + p, 12, 0, 0)
    f = rep["findings"]
    assert f["least_privilege"] == [
        {"provider": "corp", "client_id": "ledger-sync", "owner": OWNERS["ledger-sync"],
         "scopes_unused": ["reports:read"], "request_scopes": ["payments:read"], "exercised_complete": True}]
    assert f["dormant"] == [{"provider": None, "client_id": "dormant-exporter", "owner": OWNERS["dormant-exporter"],
                             "last_seen": None, "days_since_seen": None}]
    assert f["expiring"] == []
    partner = next(i for i in rep["identities"] if i["client_id"] == "partner-app")
    assert f["unregistered"] == [{"provider": "partner", "client_id": "partner-app", "requests": 2,
                                  "last_seen": partner["last_seen"]}]
    assert f["long_lived_tokens"] == []
    assert f["unused_rules"] == ["health"]
    assert f["unrequired_scopes"] == []
    assert rep["report"]["registry"] is True  # the configuration's inline registry
