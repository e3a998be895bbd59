"""Keys fetched from a `uri` in Kong's host: dispatch_http_call to
`127.0.0.1:<port>` (a JWKS server owned by the test), each nginx worker
fetching for itself. First fetch, refresh after the document changes, and
the last good keys kept while the issuer is down."""

import json
import time

import pytest

import kong_harness as kh
from kong_harness import e2e

REMOTE_ISSUER = "https://remote.example.org"
DOC = "/.well-known/jwks.json"
REFRESH_S = 10  # the filter's floor


@pytest.fixture(scope="module")
def jwks_server(keys):
    server = kh.RawEcho()
    server.documents[DOC] = (200, json.dumps({"keys": [keys.ec384.jwk()]}).encode(), {})
    yield server
    server.stop()


@pytest.fixture(scope="module")
def remote(hosts, keys, jwks_server):
    cfg = kh.kong_filter_config(keys)
    cfg["providers"] = cfg["providers"][:1] + [
        {
            "name": "remote",
            "issuer": REMOTE_ISSUER,
            "audiences": [e2e.AUDIENCE],
            "jwks": {
                "uri": f"http://127.0.0.1:{jwks_server.port}{DOC}",
                "cluster": f"127.0.0.1:{jwks_server.port}",
                "refresh_interval_s": REFRESH_S,
                "timeout_ms": 1000,
            },
            "algorithms": ["ES384", "ES256"],
        }
    ]
    return hosts.get("jwks-remote", config=cfg)


def _token(key, alg, sub="remote-sub"):
    return e2e.mint(key, e2e.claims("payments:read", iss=REMOTE_ISSUER, sub=sub), alg=alg)


def _all_ok(gw, token, n=8):
    """n requests in a row allowed (requests land on both workers)."""
    rs = [gw.get("/payments/1", token=token) for _ in range(n)]
    return all(r.status == 200 for r in rs), rs


def _until_all_ok(gw, token, timeout):
    deadline = time.monotonic() + timeout
    while True:
        ok, rs = _all_ok(gw, token)
        if ok or time.monotonic() > deadline:
            return ok, rs
        time.sleep(0.3)


def test_first_fetch(remote, keys, jwks_server):
    # (each worker fetches for itself: until then a request may get 503 jwks_unavailable)
    token = _token(keys.ec384, "ES384")
    ok, rs = _until_all_ok(remote, token, 15)
    assert ok, [r.status for r in rs]
    up = e2e.expect_allowed(rs[-1])
    assert up["headers"].get("x-identity-issuer") == [REMOTE_ISSUER]
    assert jwks_server.count(DOC) >= 1


def test_before_keys_or_unknown_key_is_503_or_401(remote, keys):
    # a key the document does not hold: never allowed
    token = _token(keys.partner_ec, "ES256")
    r = remote.get("/payments/1", token=token)
    assert r.status in (401, 503), r
    assert not r.reached_upstream


def test_refresh_after_document_changes(remote, keys, jwks_server):
    old = _token(keys.ec384, "ES384")
    assert _until_all_ok(remote, old, 15)[0]
    jwks_server.documents[DOC] = (200, json.dumps({"keys": [keys.ec256.jwk()]}).encode(), {})
    new = e2e.mint(keys.ec256, e2e.claims("payments:read", iss=REMOTE_ISSUER), alg="ES256")
    ok, rs = _until_all_ok(remote, new, 3 * REFRESH_S + 10)
    assert ok, [r.status for r in rs]
    # the old key is gone from the document: once both workers refreshed it is refused
    deadline = time.monotonic() + 2 * REFRESH_S
    while time.monotonic() < deadline:
        statuses = {remote.get("/payments/1", token=old).status for _ in range(6)}
        if statuses == {401}:
            break
        time.sleep(0.5)
    assert statuses == {401}, statuses


def test_issuer_down_last_good_keys_kept(remote, keys, jwks_server):
    token = e2e.mint(keys.ec256, e2e.claims("payments:read", iss=REMOTE_ISSUER), alg="ES256")
    assert _until_all_ok(remote, token, 3 * REFRESH_S + 10)[0]
    fetches = jwks_server.count(DOC)
    failures_before = remote.log_text().count('fetching keys of provider "remote" failed')
    jwks_server.stop()
    try:
        # past at least one refresh attempt in each worker, with the issuer refusing connections
        time.sleep(REFRESH_S * 1.5 + 2)
        ok, rs = _all_ok(remote, token, n=10)
        assert ok, [r.status for r in rs]
        assert jwks_server.count(DOC) == fetches  # nothing could be fetched
        # a refresh was attempted and failed while the issuer was down
        assert remote.log_text().count('fetching keys of provider "remote" failed') > failures_before, \
            kh.tail(remote.log_text(), 30)
    finally:
        jwks_server.start()
    assert remote.dead_worker_lines() == []
