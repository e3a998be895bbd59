"""The audit-line budget (CONTRACT §5) in Kong's host: a flood of junk
tokens writes at most `audit_log_budget` audit lines per reason and second
(per worker, so one worker here), and one `audit_suppressed` line per reason
sums what was held back, so written + suppressed accounts for every
decision. nginx appends its own context to each line; the documents are
read out of it."""

from __future__ import annotations

import time

import pytest

import kong_harness as kh
from kong_harness import e2e

BUDGET = 5
FLOOD = 120
JUNK = "eyJhbGciOiJSUzI1NiJ9.junk.junk"


@pytest.fixture(scope="module")
def kong_budget(prerequisites, keys, echo):
    cfg = kh.kong_filter_config(keys, audit_log="denied", audit_log_budget=BUDGET)
    n = kh.Nginx("audit-budget-1w", cfg, echo, workers=1).start()
    yield n
    n.cleanup()


def malformed(n) -> tuple[int, int]:
    """(audit lines written, decisions summed in audit_suppressed lines) for token_malformed."""
    text = n.log_text()
    written = sum(1 for _, a in e2e.audit_records(text) if a.get("reason") == "token_malformed")
    held = sum(s["suppressed"] for s in e2e.suppressed_records(text) if s["reason"] == "token_malformed")
    return written, held


def test_kong_junk_flood_writes_at_most_the_budget_and_one_summary(kong_budget):
    start = time.time()
    for _ in range(FLOOD):
        r = kong_budget.get("/payments/1", token=JUNK)
        assert r.status == 401, r
    elapsed = time.time() - start
    # The summary comes on the tick after the second is over.
    assert e2e.wait_until(lambda: sum(malformed(kong_budget)) == FLOOD, 5.0), (
        malformed(kong_budget), kh.tail(kong_budget.log_text()))
    written, held = malformed(kong_budget)
    assert written <= BUDGET * (int(elapsed) + 2), (written, elapsed)
    assert held > 0 and written < FLOOD
    for s in e2e.suppressed_records(kong_budget.log_text()):
        assert set(s) == {"audit_suppressed", "reason", "suppressed", "second"}, s
        assert s["suppressed"] > 0
    assert kong_budget.dead_worker_lines() == []
