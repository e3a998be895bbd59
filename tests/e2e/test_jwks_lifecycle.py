"""Keys from the issuer (issue 3) in real Envoy with two workers: one fetch
shared by both, rotation, outages that keep the last good keys, an issuer that
is down at start (503, then recovery without restart), requests held until
the first key set arrives, and the kid-spray rate limit. The JWKS server is
owned by the test and counts the fetches it receives."""

from __future__ import annotations

import time
import uuid

import pytest

import harness as h

ISSUER = "https://issuer.test"
JWKS_PATH = "/.well-known/jwks.json"


class Issuer(h.DocumentServer):
    """A JWKS server: `keys` is served unless `script` (a list of per-request
    behaviours, consumed in order) says otherwise. Behaviours: "ok",
    ("status", n), "garbage", "empty", ("stall", seconds). `count()`: the
    fetches received."""

    steps = {**h.DocumentServer.steps, "empty": ("body", b'{"keys": []}')}

    def __init__(self, port: int = 0):
        super().__init__(port=port)
        self.keys = []

    @property
    def keys(self) -> list[h.Key]:
        return self._keys

    @keys.setter
    def keys(self, keys: list[h.Key]):
        self._keys = keys
        self.put(JWKS_PATH, {"keys": [k.jwk() for k in keys]})


def start_gateway(name: str, keys: h.KeySet, echo, port: int, refresh_s: int = 300, timeout_ms: int = 1000) -> h.Envoy:
    cfg = h.base_filter_config(keys)
    cfg["providers"].append(
        {
            "name": "issuer",
            "issuer": ISSUER,
            "audiences": [h.AUDIENCE],
            "jwks": {
                "uri": f"http://issuer.test{JWKS_PATH}",
                "cluster": "issuer",
                "refresh_interval_s": refresh_s,
                "timeout_ms": timeout_ms,
            },
            "algorithms": ["ES256"],
        }
    )
    return h.Envoy(name, cfg, echo, concurrency=2, extra_clusters=[h.static_cluster("issuer", port)]).start()


def token(key: h.Key, kid: str | None = None) -> str:
    return h.mint(key, h.claims("payments:read", iss=ISSUER), alg="ES256", kid=kid or key.kid)


def get(gw: h.Envoy, tok: str) -> h.Response:
    # A new connection per request spreads requests over both workers.
    return gw.get("/payments/1", token=tok)


def wait_until(cond, timeout: float, step: float = 0.2):
    return h.wait_until(cond, timeout, step)


@pytest.fixture
def gateways_to_stop():
    started: list = []
    yield started
    for g in started:
        g.cleanup()


def test_two_workers_share_one_fetch(prerequisites, echo, gateways_to_stop):
    k = h.Key.ec("k1")
    issuer = Issuer()
    issuer.keys = [k]
    try:
        gw = start_gateway("jwks-share", h.KeySet(), echo, issuer.port)
        gateways_to_stop.append(gw)
        results = [get(gw, token(k)).status for _ in range(40)]
        assert results == [200] * 40, results
        time.sleep(1.0)  # both workers have ticked several times
        assert issuer.count() == 1, f"{issuer.count()} fetches for 2 workers"
        assert gw.scopegate_counter("jwks.issuer.fetch_ok") == 1
        print(f"fetches for 2 workers: {issuer.count()}")
    finally:
        issuer.stop()


def test_requests_are_held_until_the_first_keys_arrive(prerequisites, echo, gateways_to_stop):
    k = h.Key.ec("k1")
    issuer = Issuer()
    issuer.keys = [k]
    issuer.script = [("stall", 1.0)]  # the first fetch takes a second
    try:
        gw = start_gateway("jwks-held", h.KeySet(), echo, issuer.port, timeout_ms=3000)
        gateways_to_stop.append(gw)
        t0 = time.monotonic()
        r = get(gw, token(k))
        assert r.status == 200, (r.status, r.body)
        assert time.monotonic() - t0 < 3.0
    finally:
        issuer.stop()


def test_issuer_down_at_start_gives_503_then_recovers(prerequisites, echo, gateways_to_stop):
    k = h.Key.ec("k1")
    port = h.free_port()
    gw = start_gateway("jwks-down", h.KeySet(), echo, port, timeout_ms=500)
    gateways_to_stop.append(gw)
    t0 = time.monotonic()
    r = get(gw, token(k))
    assert time.monotonic() - t0 < 5.0, "never a hang"
    h.expect_denied(r, 503, "jwks_unavailable")
    assert r.headers.get("www-authenticate") is None, "503 blames nobody"
    issuer = Issuer(port)
    issuer.keys = [k]
    try:
        assert wait_until(lambda: get(gw, token(k)).status == 200, timeout=35), "traffic recovers without restart"
        assert (gw.scopegate_counter("jwks.issuer.fetch_failed") or 0) >= 1
        assert 'fetching keys of provider \\"issuer\\" failed' in gw.log_text() or 'fetching keys of provider "issuer" failed' in gw.log_text()
    finally:
        issuer.stop()


def test_outages_keep_the_last_good_keys(prerequisites, echo, gateways_to_stop):
    k = h.Key.ec("k1")
    issuer = Issuer()
    issuer.keys = [k]
    try:
        gw = start_gateway("jwks-outage", h.KeySet(), echo, issuer.port, refresh_s=10, timeout_ms=400)
        gateways_to_stop.append(gw)
        assert get(gw, token(k)).status == 200
        issuer.script = [("status", 500), "garbage", "empty", ("stall", 1.5)]
        # Refresh at 10 s, then retries after 1, 2, 4 s of back-off.
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and (issuer.script or issuer.count() < 6):
            assert get(gw, token(k)).status == 200, "last good keys stay in force"
            time.sleep(0.5)
        assert issuer.count() >= 6, issuer.count()
        assert (gw.scopegate_counter("jwks.issuer.fetch_failed") or 0) == 4
        assert (gw.scopegate_counter("jwks.issuer.fetch_ok") or 0) >= 2
        log = gw.log_text()
        for why in ("HTTP status 500", "not a JWK Set", "no usable signing key", "no answer within timeout_ms (400 ms)"):
            assert why in log, f"log says what failed: {why!r}"
    finally:
        issuer.stop()


def test_rotation_removes_keys_and_kid_spray_is_rate_limited(prerequisites, echo, gateways_to_stop):
    old, new = h.Key.ec("old"), h.Key.ec("new")
    issuer = Issuer()
    issuer.keys = [old]
    try:
        gw = start_gateway("jwks-rotate", h.KeySet(), echo, issuer.port, refresh_s=300)
        gateways_to_stop.append(gw)
        assert get(gw, token(old)).status == 200
        issuer.keys = [new]  # the issuer rotates: "old" is gone, "new" is in
        r = get(gw, token(new))
        h.expect_denied(r, 401, "key_not_found")  # keys are fresh: no refetch yet
        assert issuer.count() == 1
        # Once the keys are 30 s old, an unknown kid may trigger one refresh.
        time.sleep(31)
        before = issuer.count()
        statuses = [get(gw, token(new, kid=uuid.uuid4().hex)).status for _ in range(100)]
        assert set(statuses) == {401}, statuses
        spray_fetches = issuer.count() - before
        assert spray_fetches == 1, f"a kid spray of 100 caused {spray_fetches} fetches"
        print(f"fetches caused by a kid spray of 100: {spray_fetches}")
        assert get(gw, token(new)).status == 200, "the rotated-in key works"
        h.expect_denied(get(gw, token(old)), 401, "key_not_found")  # removed key refused
    finally:
        issuer.stop()
