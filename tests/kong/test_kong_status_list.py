"""IETF Token Status List (CONTRACT §1.3 `revocation.status_list`) in Kong's
host. The list server is owned by the test (content-type
`application/statuslist+jwt`, every fetch recorded), reached through the
cluster `127.0.0.1:<port>`; each nginx worker fetches for itself. Status 0
allowed, INVALID → 401 token_revoked, SUSPENDED → 401 token_suspended, a uri
outside `uri_prefixes` → 401 status_unverifiable and never fetched. The host
cannot hold a request: the first request naming a list not fetched yet is
answered 503 status_unavailable at once (`on_unavailable: deny`) while the
fetch starts, and decided by the list once it has arrived; with the server
down, 503 at once, then recovery when it comes up; `on_unavailable: allow`
lets it through."""

from __future__ import annotations

import time
import uuid

import pytest

import kong_harness as kh
from kong_harness import e2e
from test_status_list import INVALID, SUSPENDED, VALID, access_token, status_list_token  # tests/e2e

LISTS_HOST = "lists.test"
PREFIX = f"http://{LISTS_HOST}/statuslists/"
CONTENT_TYPE = {"content-type": "application/statuslist+jwt"}
MAIN = [VALID, INVALID, SUSPENDED] + [VALID] * 13


def status_config(keys, port: int, on_unavailable: str = "deny") -> dict:
    cfg = kh.kong_filter_config(keys, audit_log="all")
    cfg["revocation"] = {"status_list": {"uri_prefixes": [PREFIX], "cluster": f"127.0.0.1:{port}",
                                         "max_cache_s": 2, "timeout_ms": 1000, "on_unavailable": on_unavailable}}
    assert len(kh.nginx_quote(kh.filter_config_text(cfg))) <= kh.NGINX_MAX_TOKEN
    return cfg


def publish(server: kh.RawEcho, keys, name: str, statuses: list[int]) -> str:
    uri = PREFIX + name
    server.documents["/statuslists/" + name] = (200, status_list_token(keys.rsa, uri, statuses, ttl=2), CONTENT_TYPE)
    return uri


def settled(n, t: str, expected: int, timeout: float = 10) -> bool:
    """Every worker has the list: `expected` for 12 requests in a row."""
    return e2e.wait_until(lambda: set(kh.statuses(n, t)) == {expected}, timeout)


@pytest.fixture(scope="module")
def lists():
    server = kh.RawEcho()
    yield server
    server.stop()


@pytest.fixture(scope="module")
def kong_sl(hosts, keys, lists):
    return hosts.get("status-list", config=status_config(keys, lists.port))


def test_first_request_is_503_at_once_then_the_list_decides(kong_sl, keys, lists):
    uri = publish(lists, keys, "first", MAIN)
    t = access_token(keys, 0, uri)
    sent = time.monotonic()
    r = kong_sl.get("/payments/1", token=t)
    took = time.monotonic() - sent
    e2e.expect_denied(r, 503, "status_unavailable", token=t)
    assert r.headers.get("www-authenticate") is None and r.headers.get("retry-after") == "5", r
    assert r.json()["error"] == "temporarily_unavailable"
    assert took < 0.5, f"answered at once, never held: {took:.2f} s"
    assert settled(kong_sl, t, 200), kh.statuses(kong_sl, t)
    fetches = [r for r in lists.requests if r["path"] == "/statuslists/first"]
    assert fetches and fetches[0]["headers"].get("host") == [LISTS_HOST], fetches[:1]
    print(f"\nKong: first request 503 in {took * 1000:.0f} ms; {len(fetches)} fetches so far (one per worker "
          f"per period); Accept {fetches[0]['headers'].get('accept')}")
    assert kong_sl.dead_worker_lines() == []


def test_valid_invalid_suspended(kong_sl, keys, lists):
    uri = publish(lists, keys, "main", MAIN)
    ok = access_token(keys, 0, uri)
    assert settled(kong_sl, ok, 200), kh.statuses(kong_sl, ok)
    e2e.expect_allowed(kong_sl.get("/payments/1", token=ok))
    t = access_token(keys, 1, uri)
    body = e2e.expect_denied(kong_sl.get("/payments/1", token=t), 401, "token_revoked", token=t)
    assert body["error"] == "invalid_token"
    t = access_token(keys, 2, uri)
    e2e.expect_denied(kong_sl.get("/payments/1", token=t), 401, "token_suspended", token=t)
    t = access_token(keys, 10**6, uri)
    e2e.expect_denied(kong_sl.get("/payments/1", token=t), 401, "token_revoked", token=t)
    assert set(kh.statuses(kong_sl, access_token(keys, 1, uri))) == {401}, "on both workers"
    assert kong_sl.dead_worker_lines() == []


def test_status_change_reaches_both_workers(kong_sl, keys, lists):
    statuses_ = [VALID] * 8
    uri = publish(lists, keys, "changing", statuses_)
    jti = "kong-sl-" + uuid.uuid4().hex
    t = access_token(keys, 3, uri, jti=jti)
    assert settled(kong_sl, t, 200)
    statuses_[3] = SUSPENDED
    publish(lists, keys, "changing", statuses_)
    changed = time.monotonic()
    workers = {int(p) for p in kong_sl.worker_pids()}

    def refusing() -> set[int]:
        return {int(a["_pid"]) for a in kh.audit_lines(kong_sl)
                if a.get("jti") == jti and a["_pid"] and a["reason"] == "token_suspended"}

    # Each worker fetches for itself: done when both have been seen refusing.
    assert e2e.wait_until(lambda: set(kh.statuses(kong_sl, t)) == {401} and workers <= refusing(),
                          timeout=6, step=0.02), (refusing(), workers)
    took = time.monotonic() - changed
    e2e.expect_denied(kong_sl.get("/payments/1", token=t), 401, "token_suspended", token=t)
    print(f"\nKong: SUSPENDED at the source to 401 on both workers (ttl 2 s): {took:.2f} s")
    assert took <= 2 + 2


def test_outside_prefixes_is_unverifiable_and_never_fetched(kong_sl, keys, lists):
    before = len(lists.requests)
    for uri in (f"http://{LISTS_HOST}/other/1", f"http://127.0.0.1:{lists.port}/statuslists/main",
                "http://evil.example/statuslists/main"):
        t = access_token(keys, 0, uri)
        e2e.expect_denied(kong_sl.get("/payments/1", token=t), 401, "status_unverifiable", token=t)
    time.sleep(1.0)
    assert [r["path"] for r in lists.requests[before:] if not r["path"].startswith("/statuslists/")] == []
    assert not any(r["headers"].get("host") != [LISTS_HOST] for r in lists.requests[before:]), lists.requests[before:]


def test_server_down_503_at_once_then_recovery(prerequisites, keys, echo):
    port = kh.free_port()
    n = kh.Nginx("status-list-down", status_config(keys, port), echo).start()
    server = None
    try:
        uri = PREFIX + "main"
        t = access_token(keys, 0, uri)
        for _ in range(6):
            sent = time.monotonic()
            r = n.get("/payments/1", token=t)
            took = time.monotonic() - sent
            e2e.expect_denied(r, 503, "status_unavailable", token=t)
            assert took < 0.5, f"answered at once: {took:.2f} s"
        assert n.wait_log(r"fetching a status list failed", timeout=5), kh.tail(n.log_text(), 20)
        # no status claim, a public route: not affected
        e2e.expect_allowed(n.get("/payments/1", token=e2e.mint(keys.rsa, e2e.claims("payments:read"), alg="RS256")))
        e2e.expect_allowed(n.get("/healthz"))
        server = kh.RawEcho(port=port)
        publish(server, keys, "main", MAIN)
        up = time.monotonic()
        assert settled(n, t, 200, timeout=40), kh.tail(n.log_text(), 20)
        print(f"\nKong: recovered on both workers {time.monotonic() - up:.2f} s after the list server came up")
        t = access_token(keys, 1, uri)
        e2e.expect_denied(n.get("/payments/1", token=t), 401, "token_revoked", token=t)
        assert n.dead_worker_lines() == []
    finally:
        n.cleanup()
        if server:
            server.stop()


def test_server_down_allow_lets_through(prerequisites, keys, echo):
    port = kh.free_port()
    n = kh.Nginx("status-list-open", status_config(keys, port, on_unavailable="allow"), echo).start()
    try:
        for idx in (0, 1):
            e2e.expect_allowed(n.get("/payments/1", token=access_token(keys, idx, PREFIX + "main")))
        assert n.wait_log(r"let through unchecked", timeout=3)
        t = access_token(keys, 0, "http://evil.example/list")
        e2e.expect_denied(n.get("/payments/1", token=t), 401, "status_unverifiable", token=t)
    finally:
        n.cleanup()
