"""Rate limits per verified identity (CONTRACT §1.5) in Kong's host. There is
no shared data here: every worker keeps its own buckets, so the limit holds
per worker (a gateway with N workers lets up to N times through).

* One worker: exact. An idle identity gets `requests + burst`, then 429
  `rate_limited` with `Retry-After`, `RateLimit-Policy` and `RateLimit`; with
  `headers: true` the allowed responses carry the fields too, counting down.
* Two workers: no worker lets more than the limit through, and the gateway as
  a whole at most twice the limit; the 429s have the same shape.
"""

from __future__ import annotations

import re
import threading
import uuid

import pytest

import kong_harness as kh
from kong_harness import e2e

LIMIT = {"requests": 2, "per_s": 60, "burst": 1}  # 3 at once, then one every 30 s
CAPACITY = LIMIT["requests"] + LIMIT["burst"]
POLICY = '"default";q=2;w=60;scopegate-burst=1'


def config(keys) -> dict:
    # audit_log_budget 0: the two-worker test counts one audit line per
    # request, which the default budget (20 a second per reason) would sum.
    cfg = kh.kong_filter_config(keys, audit_log="all", audit_log_budget=0,
                                rate_limits={"default": LIMIT, "headers": True})
    assert len(kh.nginx_quote(kh.filter_config_text(cfg))) <= kh.NGINX_MAX_TOKEN
    return cfg


@pytest.fixture(scope="module")
def kong_one(prerequisites, keys, echo):
    n = kh.Nginx("rate-limits-1w", config(keys), echo, workers=1).start()
    yield n
    n.cleanup()


@pytest.fixture(scope="module")
def kong_two(hosts, keys):
    return hosts.get("rate-limits-2w", config=config(keys))


def token(keys, client: str, scope: str = "payments:read") -> str:
    return e2e.mint(keys.rsa, e2e.claims(scope, client_id=client), alg="RS256")


def fresh(prefix: str) -> str:
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def state_of(value: str) -> dict[str, str]:
    m = re.fullmatch(r'"default";r=(\d+)(?:;t=(\d+))?', value or "")
    assert m, f"RateLimit {value!r}"
    return {"r": m.group(1), "t": m.group(2)}


def expect_429(r, t: str) -> dict[str, str]:
    body = e2e.expect_denied(r, 429, "rate_limited", token=t)
    assert body["error"] == "rate_limited", body
    assert "www-authenticate" not in r.headers, r
    assert r.headers.get("ratelimit-policy") == POLICY, r
    state = state_of(r.headers.get("ratelimit"))
    assert state["r"] == "0" and state["t"] is not None and 1 <= int(state["t"]) <= 30, state
    assert r.headers.get_all("retry-after") == [state["t"]], r
    return state


def test_kong_one_worker_exact_with_headers(kong_one, keys):
    client = fresh("kong-one")
    t = token(keys, client)
    for remaining in range(CAPACITY - 1, -1, -1):
        r = kong_one.get("/payments/1", token=t)
        e2e.expect_allowed(r)
        assert r.headers.get("ratelimit-policy") == POLICY, r
        state = state_of(r.headers.get("ratelimit"))
        assert state["r"] == str(remaining) and 29 <= int(state["t"]) <= 30, (remaining, state)
        assert "retry-after" not in r.headers, r
    for _ in range(3):
        expect_429(kong_one.get("/payments/1", token=t), t)
    # the fields never name the identity
    r = kong_one.get("/payments/1", token=t)
    assert client not in r.headers.get("ratelimit-policy") + r.headers.get("ratelimit")
    # another identity has its own bucket
    e2e.expect_allowed(kong_one.get("/payments/1", token=token(keys, fresh("kong-one-other"))))
    audits = [d for d in kh.audit_lines(kong_one) if d.get("client_id") == client]
    assert [d["reason"] for d in audits] == ["allowed"] * CAPACITY + ["rate_limited"] * 4, audits
    assert all('"default"' in d["message"] for d in audits if d["reason"] == "rate_limited"), audits


@pytest.mark.h2
def test_kong_one_worker_429_over_http2(kong_one, keys):
    t = token(keys, fresh("kong-h2"))
    for _ in range(CAPACITY):
        e2e.expect_allowed(kong_one.h2_request("GET", "/payments/1", token=t))
    r = kong_one.h2_request("GET", "/payments/1", token=t)
    assert r.protocol == "HTTP/2"
    expect_429(r, t)


def concurrent_round(n, tokens: list[str]) -> list:
    """A request per token, all at once, a new connection each: nginx hands
    connections that arrive while a worker is busy to the other one (one
    after another they mostly land on the same worker). Distinct tokens of
    the one identity keep the workers busier: each is verified afresh."""
    width = len(tokens)
    out = [None] * width

    def one(i):
        out[i] = n.get("/payments/1", token=tokens[i])

    threads = [threading.Thread(target=one, args=(i,)) for i in range(width)]
    for th in threads:
        th.start()
    for th in threads:
        th.join(timeout=20)
    return out


def test_kong_two_workers_limit_holds_per_worker(kong_two, keys):
    """Concurrent rounds until both workers have served the identity (within a
    few seconds, far less than the 30 s a token takes to come back): each
    worker lets exactly `requests + burst` through (or all it saw, when
    fewer), the gateway at most twice that."""
    client = fresh("kong-two")
    workers = {str(p) for p in kong_two.worker_pids()}
    assert len(workers) == 2

    def mine():
        return [d for d in kh.audit_lines(kong_two) if d.get("client_id") == client]

    results, sent = [], []
    for _ in range(30):
        batch = [token(keys, client) for _ in range(16)]
        sent += batch
        results += concurrent_round(kong_two, batch)
        assert e2e.wait_until(lambda: len(mine()) == len(results), 5), (len(mine()), len(results))
        if {d["_pid"] for d in mine()} == workers and len(results) >= 4 * CAPACITY:
            break
    statuses = [r.status for r in results]
    assert set(statuses) <= {200, 429}, statuses
    allowed = statuses.count(200)
    for r, t in zip(results, sent):
        if r.status == 429:
            expect_429(r, t)
        else:
            assert r.headers.get("ratelimit-policy") == POLICY, r
    per_worker: dict[str, dict[str, int]] = {}
    for d in mine():
        per = per_worker.setdefault(d["_pid"], {})
        per[d["reason"]] = per.get(d["reason"], 0) + 1
    print(f"\nKong host, 2 workers, limit {LIMIT}: {len(results)} requests (rounds of 16 at once), allowed {allowed} "
          f"(per-worker limit {CAPACITY}, gateway at most {2 * CAPACITY}); per worker: {per_worker}")
    assert set(per_worker) == workers, f"one worker served every request: {per_worker}"
    for pid, per in per_worker.items():
        served = sum(per.values())
        # each worker is exact on its own
        assert per.get("allowed", 0) == min(served, CAPACITY), per_worker
    assert sum(per.get("allowed", 0) for per in per_worker.values()) == allowed
    assert CAPACITY < allowed <= 2 * CAPACITY, statuses
