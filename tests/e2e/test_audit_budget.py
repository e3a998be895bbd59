"""A flood of junk stays a counter, not a flood of log lines (CONTRACT §5):
each worker writes at most `audit_log_budget` audit lines per reason and
second, every decision is still counted, and what was held back is summed in
one `audit_suppressed` line per reason once the second is over."""

from __future__ import annotations

import time

import harness as h

BUDGET = 5
FLOOD = 120


def suppressed_lines(gw: h.Envoy) -> list[dict]:
    return h.suppressed_records(gw.log_text())


def test_a_junk_flood_writes_at_most_the_budget_and_one_summary(gateways):
    gw = gateways.get("audit-budget", audit_log_budget=BUDGET)
    start = time.time()
    for _ in range(FLOOD):
        r = gw.get("/payments/1", token="eyJhbGciOiJSUzI1NiJ9.junk.junk")
        assert r.status == 401
    elapsed = time.time() - start
    # Every decision counted.
    assert h.wait_until(lambda: h.counter(gw, "requests.token_malformed") == FLOOD, 5)
    # The summary comes on the tick after the second is over.
    assert h.wait_until(
        lambda: sum(s["suppressed"] for s in suppressed_lines(gw) if s["reason"] == "token_malformed")
        + sum(1 for _, a in h.audit_records(gw.log_text()) if a.get("reason") == "token_malformed") == FLOOD,
        5,
    ), (suppressed_lines(gw), len(h.audit_records(gw.log_text())))
    written = [a for _, a in h.audit_records(gw.log_text()) if a.get("reason") == "token_malformed"]
    seconds = int(elapsed) + 2
    assert len(written) <= BUDGET * seconds, (len(written), elapsed)
    assert len(written) < FLOOD
    for s in suppressed_lines(gw):
        assert set(s) == {"audit_suppressed", "reason", "suppressed", "second"}, s
        assert s["suppressed"] > 0


def test_a_budget_of_zero_writes_every_line(gateways):
    gw = gateways.get("audit-budget-off", audit_log_budget=0)
    for _ in range(40):
        gw.get("/payments/1", token="eyJhbGciOiJSUzI1NiJ9.junk.junk")
    assert h.wait_until(
        lambda: sum(1 for _, a in h.audit_records(gw.log_text()) if a.get("reason") == "token_malformed") == 40, 5
    )
    assert suppressed_lines(gw) == []
