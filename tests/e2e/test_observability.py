"""Per-reason counters (CONTRACT §5) in Envoy's admin /stats."""

import pytest

import harness as h


@pytest.mark.parametrize(
    "reason, do",
    [
        ("allowed", lambda gw, tok: gw.get("/payments/1", token=tok("payments:read"))),
        ("public_route", lambda gw, tok: gw.get("/healthz")),
        ("token_missing", lambda gw, tok: gw.get("/payments/1")),
        ("insufficient_scope", lambda gw, tok: gw.get("/payments/1", token=tok("reports:read"))),
        ("request_malformed", lambda gw, tok: gw.get("/payments/a%2fb", token=tok("payments:read"))),
    ],
)
def test_reason_counter_increments_once(gw, tok, reason, do):
    before = gw.scopegate_counter(f"requests.{reason}") or 0
    do(gw, tok)
    after = gw.scopegate_counter(f"requests.{reason}")
    assert after == before + 1, f"scopegate.requests.{reason}: {before} -> {after}"


def test_prometheus_exposes_reason_counters(gw):
    gw.get("/payments/1")
    _, body = gw._admin_get("/stats/prometheus")
    assert any("scopegate_requests_token_missing" in line for line in body.splitlines()), body[:2000]
