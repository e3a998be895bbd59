"""IETF Token Status List (CONTRACT §1.3 `revocation.status_list`) in real Envoy.

An access token points at its entry with `"status": {"status_list": {"idx": N,
"uri": "..."}}`; the list is a `statuslist+jwt` signed by the token's provider,
served here by a server owned by the test (content-type
`application/statuslist+jwt`) that counts every fetch, reached through an Envoy
cluster. Cases: status 0 allowed; INVALID, application-specific and an index out
of range → 401 token_revoked; SUSPENDED → 401 token_suspended; lists refused
(signed by another key, unknown kid, wrong `sub`, wrong or missing `typ`, a zlib
bomb) → 503 status_unavailable with `on_unavailable: deny`; a uri outside
`uri_prefixes` → 401 status_unverifiable and the server gets no request; list
server stalled (held until timeout_ms, then 503), down (503, never a hang, then
recovery), and `on_unavailable: allow` (let through, counted
`revocation.status_unchecked`); a change at the source takes effect within
`min(ttl, max_cache_s)` (+ a little), also after 304s, and through the
verified-token cache; two workers fetch each uri once per period.

Latency (printed; run with `-s`): from the change at the source (a token turned
INVALID, list `ttl` 2 s) to the first 401.
"""

from __future__ import annotations

import json
import threading
import time
import zlib

import pytest

import harness as h

LISTS_HOST = "lists.test"
PREFIX = f"http://{LISTS_HOST}/statuslists/"
CLUSTER = "statuslists"
CONTENT_TYPE = "application/statuslist+jwt"
MAX_CACHE_S = 3  # caps lists without (or with a longer) ttl
TTL_S = 2

VALID, INVALID, SUSPENDED = 0, 1, 2
# The main list: index 0 VALID, 1 INVALID, 2 SUSPENDED, 3 application-specific (0x3), 4-15 VALID.
MAIN = [VALID, INVALID, SUSPENDED, 3] + [VALID] * 12


# --------------------------------------------------------------------------
# Status list tokens
# --------------------------------------------------------------------------


def pack(statuses: list[int], bits: int) -> bytes:
    """The draft's byte array: `bits` per index, from the least significant
    bit of byte 0 up."""
    per_byte = 8 // bits
    out = bytearray((len(statuses) + per_byte - 1) // per_byte)
    for i, s in enumerate(statuses):
        assert 0 <= s < (1 << bits), (i, s)
        out[i // per_byte] |= s << ((i % per_byte) * bits)
    return bytes(out)


def status_list_token(key: h.Key, uri: str, statuses: list[int] | None = None, bits: int = 2,
                      ttl: int | None = TTL_S, alg: str = "RS256", typ: str | None = "statuslist+jwt",
                      sub: str | None = None, lst: bytes | None = None, **over) -> bytes:
    """A Status List Token (JWT) for `uri`, signed by `key`. `lst`: the
    compressed bytes as they are (for bombs), else zlib of the packed statuses.
    `over`: claims to add or (value `...`) remove."""
    now = int(time.time())
    compressed = lst if lst is not None else zlib.compress(pack(statuses or [], bits), 9)
    claims = {"iss": h.ISSUER, "sub": sub if sub is not None else uri, "iat": now - 5, "exp": now + 3600,
              "status_list": {"bits": bits, "lst": h.b64u(compressed)}}
    if ttl is not None:
        claims["ttl"] = ttl
    for k, v in over.items():
        if v is ...:
            claims.pop(k, None)
        else:
            claims[k] = v
    header = {"alg": alg, "kid": key.kid}
    if typ is not None:
        header["typ"] = typ
    return h.mint(key, claims, header=header).encode()


def zlib_bomb(size: int = 200 << 20) -> bytes:
    """`size` zero bytes, zlib-compressed (about 1000:1)."""
    c = zlib.compressobj(9)
    chunk = bytes(1 << 20)
    out = [c.compress(chunk) for _ in range(size >> 20)]
    out.append(c.flush())
    return b"".join(out)


def access_token(keys: h.KeySet, idx: int, uri: str, scope: str = "payments:read", **over) -> str:
    return h.mint(keys.rsa, h.claims(scope, status={"status_list": {"idx": idx, "uri": uri}}, **over), alg="RS256")


path_of = h.DocumentServer.path_of


# --------------------------------------------------------------------------
# The list server
# --------------------------------------------------------------------------


def list_server(port: int = 0) -> h.DocumentServer:
    """Serves status list tokens by path (`put(uri, bytes)`) with content-type
    application/statuslist+jwt, every request recorded when it arrives.
    `etag`: paths answered with a strong ETag (304 to a matching
    If-None-Match). `stall`: path -> seconds to wait before answering.
    Unknown paths: 404."""
    return h.DocumentServer(port=port, content_type=CONTENT_TYPE)


def status_config(keys: h.KeySet, on_unavailable: str = "deny", timeout_ms: int = 1000,
                  max_cache_s: int = MAX_CACHE_S) -> dict:
    cfg = h.base_filter_config(keys, audit_log="all")
    cfg["revocation"] = {"status_list": {"uri_prefixes": [PREFIX], "cluster": CLUSTER, "max_cache_s": max_cache_s,
                                         "timeout_ms": timeout_ms, "on_unavailable": on_unavailable}}
    return cfg


def start(name: str, keys: h.KeySet, echo, port: int, concurrency: int = 2, **cfg) -> h.Envoy:
    return h.Envoy(name, status_config(keys, **cfg), echo, concurrency=concurrency,
                   extra_clusters=[h.static_cluster(CLUSTER, port)]).start()


def audit_lines(gw: h.Envoy) -> list[dict]:
    out = []
    for line, doc in h.audit_records(gw.log_text()):
        # Envoy's log line: [time][thread id][level]...
        parts = line.split("][")
        doc["_thread"] = parts[1] if len(parts) > 1 else None
        out.append(doc)
    return out


def audit_for(gw: h.Envoy, token: str, timeout: float = 3.0) -> dict:
    j = json.loads(h.b64u_decode(token.split(".")[1]))["jti"]
    found: list = []
    h.wait_until(lambda: found.extend(a for a in audit_lines(gw) if a.get("jti") == j) or found, timeout)
    assert found, f"no audit line for jti {j}"
    return found[-1]


def log_has(gw: h.Envoy, text: str, timeout: float = 3.0) -> bool:
    """Envoy flushes its log every 100 ms: wait for a line."""
    return h.wait_until(lambda: text in gw.log_text(), timeout)


def rss_kib(pid: int) -> int:
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return 0


class Traffic:
    """Threads sending tokens round-robin, a new connection per request (so
    both workers serve them); records (sent, received, token index, status)."""

    def __init__(self, gw: h.Envoy, tokens: list[str], threads: int = 4):
        self.gw, self.tokens = gw, tokens
        self.records: list[tuple[float, float, int, int]] = []
        self.lock = threading.Lock()
        self.stop = threading.Event()
        self.threads = [threading.Thread(target=self._run, args=(i,), daemon=True) for i in range(threads)]

    def _run(self, n: int):
        i = n
        while not self.stop.is_set():
            k = i % len(self.tokens)
            i += 1
            t0 = time.monotonic()
            try:
                s = h.status_of(self.gw, self.tokens[k])
            except Exception:  # noqa: BLE001 - recorded as a failure
                s = -1
            with self.lock:
                self.records.append((t0, time.monotonic(), k, s))

    def __enter__(self):
        for th in self.threads:
            th.start()
        return self

    def __exit__(self, *exc):
        self.stop.set()
        for th in self.threads:
            th.join(10)

    def since(self, t: float, k: int | None = None):
        with self.lock:
            return [r for r in self.records if r[0] >= t and (k is None or r[2] == k)]


# --------------------------------------------------------------------------
# One gateway (deny, two workers) and one list server for most cases
# --------------------------------------------------------------------------

MAIN_URI = PREFIX + "main"


@pytest.fixture(scope="module")
def lists(prerequisites, keys):
    server = list_server()
    server.put(MAIN_URI, status_list_token(keys.rsa, MAIN_URI, MAIN, ttl=60))
    yield server
    server.stop()


@pytest.fixture(scope="module")
def sl(lists, keys, echo):
    gw = start("status-list", keys, echo, lists.port)
    yield gw
    gw.cleanup()


def test_valid_status_is_allowed(sl, lists, keys):
    t = access_token(keys, 0, MAIN_URI)
    sent = time.monotonic()
    r = sl.get("/payments/1", token=t)
    took = time.monotonic() - sent
    h.expect_authenticated(r)
    assert lists.count(MAIN_URI) >= 1, "fetched on first use, the request held meanwhile"
    first = lists.snapshot(MAIN_URI)[0]
    assert first["host"] == LISTS_HOST and first["path"] == "/statuslists/main", first
    print(f"\nfirst request held {took * 1000:.0f} ms for the list; fetch asked with Accept: {first['accept']!r}")
    for idx in (0, 4, 15):
        h.expect_authenticated(sl.get("/payments/1", token=access_token(keys, idx, MAIN_URI)))
    assert h.counter(sl, "status_list.fetch_ok") >= 1
    assert h.counter(sl, "status_list.fetch_failed") == 0
    assert log_has(sl, "a status list fetched")
    # a token without a `status` claim is not checked; a public route consults no list
    h.expect_authenticated(sl.get("/payments/1", token=h.mint(keys.rsa, h.claims("payments:read"), alg="RS256")))
    h.expect_allowed(sl.get("/healthz"))


def test_invalid_is_token_revoked(sl, keys):
    t = access_token(keys, 1, MAIN_URI)
    before = h.counter(sl, "requests.token_revoked")
    body = h.expect_denied(sl.get("/payments/1", token=t), 401, "token_revoked", token=t)
    assert body["error"] == "invalid_token"
    assert h.counter(sl, "requests.token_revoked") == before + 1
    a = audit_for(sl, t)
    assert (a["decision"], a["reason"]) == ("deny", "token_revoked"), a
    assert "INVALID" in a["message"] and "index 1 of" in a["message"], a


def test_suspended_is_token_suspended(sl, keys):
    t = access_token(keys, 2, MAIN_URI)
    body = h.expect_denied(sl.get("/payments/1", token=t), 401, "token_suspended", token=t)
    assert body["error"] == "invalid_token"
    assert h.counter(sl, "requests.token_suspended") >= 1
    assert "SUSPENDED" in audit_for(sl, t)["message"]


def test_application_specific_and_out_of_range_are_token_revoked(sl, keys):
    # 16 entries of 2 bits: 4 bytes; index 16 is the first past the end
    for idx in (3, 16, 17, 10**6, 2**53):
        t = access_token(keys, idx, MAIN_URI)
        h.expect_denied(sl.get("/payments/1", token=t), 401, "token_revoked", token=t)
    assert "has no index" in audit_for(sl, t)["message"]


def test_uri_outside_prefixes_is_unverifiable_and_never_fetched(sl, lists, keys):
    outside = [
        f"http://{LISTS_HOST}/other/main",              # another path
        f"https://{LISTS_HOST}/statuslists/main",       # another scheme
        "http://evil.example/statuslists/main",         # another host
        f"http://{LISTS_HOST}.evil.example/statuslists/main",
        f"http://{LISTS_HOST}/statuslist",              # a prefix of the prefix
        f"HTTP://{LISTS_HOST.upper()}/statuslists/main",  # case
    ]
    before = lists.count()
    for uri in outside:
        t = access_token(keys, 0, uri)
        h.expect_denied(sl.get("/payments/1", token=t), 401, "status_unverifiable", token=t)
    time.sleep(MAX_CACHE_S * 0.5)  # no late fetch either
    assert lists.count() == before, f"fetched: {lists.snapshot()[before:]}"
    assert h.counter(sl, "requests.status_unverifiable") >= len(outside)
    a = audit_for(sl, t)
    assert "outside the allowed uri_prefixes" in a["message"], a


def test_unfetchable_uri_inside_the_prefixes_is_answered_in_time(sl, lists, keys):
    """A uri that starts with an allowed prefix but cannot be fetched (a
    fragment) is answered by the filter within timeout_ms and a little, never
    left to the gateway's own request timeout."""
    uri = PREFIX + "main#fragment"
    t = access_token(keys, 0, uri)
    sent = time.monotonic()
    r = sl.get("/payments/1", token=t)
    took = time.monotonic() - sent
    assert r.status != 504, f"held until Envoy's request timeout ({took:.1f} s): {r}"
    assert took < 2.5, f"answered after {took:.1f} s: {r}"
    assert r.json().get("reason") in ("status_unverifiable", "status_unavailable", "token_malformed"), r


REFUSED = {
    # name -> (how the list is made, what the log says)
    "rogue-key": (lambda k, u: status_list_token(k.rogue_rsa, u, MAIN), "signature"),
    "unknown-kid": (lambda k, u: status_list_token(k.partner_ec, u, MAIN, alg="ES256"), ""),
    "wrong-sub": (lambda k, u: status_list_token(k.rsa, u, MAIN, sub=PREFIX + "someone-else"), ""),
    "wrong-typ": (lambda k, u: status_list_token(k.rsa, u, MAIN, typ="JWT"), ""),
    "no-typ": (lambda k, u: status_list_token(k.rsa, u, MAIN, typ=None), ""),
    "expired": (lambda k, u: status_list_token(k.rsa, u, MAIN, exp=int(time.time()) - 3600,
                                               iat=int(time.time()) - 7200), ""),
    "not-a-jwt": (lambda k, u: b'{"status_list": {"bits": 1, "lst": "eNrbBAAAwQDB"}}', ""),
}


@pytest.mark.parametrize("case", sorted(REFUSED))
def test_refused_list_is_status_unavailable(sl, lists, keys, case):
    uri = PREFIX + "refused-" + case
    make, _ = REFUSED[case]
    lists.put(uri, make(keys, uri))
    failed = h.counter(sl, "status_list.fetch_failed")
    t = access_token(keys, 0, uri)
    r = sl.get("/payments/1", token=t)
    h.expect_denied(r, 503, "status_unavailable", token=t)
    assert r.headers.get("www-authenticate") is None, "503 blames nobody"
    assert r.headers.get("retry-after") == "5", r
    assert r.json()["error"] == "temporarily_unavailable"
    assert lists.count(uri) >= 1, "the list was fetched (and refused)"
    assert h.counter(sl, "status_list.fetch_failed") >= failed + 1
    assert log_has(sl, "not a valid status list token")
    # the other lists are unaffected
    h.expect_authenticated(sl.get("/payments/1", token=access_token(keys, 0, MAIN_URI)))


def test_zlib_bomb_is_refused_and_envoy_survives(sl, lists, keys):
    uri = PREFIX + "bomb"
    bomb = zlib_bomb()
    lists.put(uri, status_list_token(keys.rsa, uri, bits=1, lst=bomb))
    rss0 = rss_kib(sl.proc.pid)
    t = access_token(keys, 0, uri)
    sent = time.monotonic()
    r = sl.get("/payments/1", token=t)
    took = time.monotonic() - sent
    h.expect_denied(r, 503, "status_unavailable", token=t)
    # every later request is answered; the bomb is fetched again after back-off, still refused
    for _ in range(20):
        h.expect_denied(sl.get("/payments/1", token=t), 503, "status_unavailable", token=t)
        h.expect_authenticated(sl.get("/payments/1", token=access_token(keys, 0, MAIN_URI)))
    h.wait_until(lambda: lists.count(uri) >= 2, timeout=4)
    assert sl.proc.poll() is None, "Envoy died"
    rss1 = rss_kib(sl.proc.pid)
    print(f"\nzlib bomb: {len(bomb)} bytes compressed (200 MiB inflated), answered 503 in {took * 1000:.0f} ms; "
          f"{lists.count(uri)} fetches; Envoy RSS {rss0 // 1024} -> {rss1 // 1024} MiB")
    assert rss1 - rss0 < 128 * 1024, f"RSS grew by {(rss1 - rss0) // 1024} MiB"
    assert log_has(sl, "not a valid status list token")
    h.expect_authenticated(sl.get("/payments/1", token=access_token(keys, 4, MAIN_URI)))


def test_change_takes_effect_within_ttl(sl, lists, keys):
    uri = PREFIX + "changing"
    statuses = [VALID] * 8
    lists.put(uri, status_list_token(keys.rsa, uri, statuses, ttl=TTL_S))
    t = access_token(keys, 5, uri)
    other = access_token(keys, 6, uri)
    h.expect_authenticated(sl.get("/payments/1", token=t))
    with Traffic(sl, [t, other], threads=4) as traffic:
        time.sleep(TTL_S + 0.5)
        assert {r[3] for r in traffic.since(0)} == {200}
        statuses[5] = INVALID
        changed = time.monotonic()
        lists.put(uri, status_list_token(keys.rsa, uri, statuses, ttl=TTL_S))
        assert h.wait_until(lambda: any(r[3] == 401 for r in traffic.since(changed, 0)), timeout=TTL_S + 6, step=0.01)
        time.sleep(1.0)
    first_401 = min(r[1] for r in traffic.since(changed, 0) if r[3] == 401) - changed
    after = traffic.since(changed, 0)
    last_200 = max((r[1] for r in after if r[3] == 200), default=changed) - changed
    print(f"\nLATENCY status list (ttl {TTL_S} s, max_cache_s {MAX_CACHE_S}, 2 workers, 4 clients): "
          f"change at the source -> first 401 {first_401:.3f} s, last 200 {last_200:.3f} s")
    assert first_401 <= TTL_S + 2, f"first 401 after {first_401:.2f} s"
    assert last_200 <= TTL_S + 2, f"a worker still allowed it {last_200:.2f} s after the change"
    assert {r[3] for r in traffic.since(changed, 1)} == {200}, "the neighbour entry stays valid"
    h.expect_denied(sl.get("/payments/1", token=t), 401, "token_revoked", token=t)


def test_verified_token_cache_does_not_hide_a_status_change(sl, lists, keys):
    """The same token, verified once and then served from the cache, is
    suspended, then valid again (SUSPENDED is temporary)."""
    uri = PREFIX + "cached"
    statuses = [VALID] * 8
    lists.put(uri, status_list_token(keys.rsa, uri, statuses, ttl=TTL_S))
    t = access_token(keys, 2, uri)
    h.expect_authenticated(sl.get("/payments/1", token=t))
    hits = h.counter(sl, "cache.hit")
    for _ in range(6):
        h.expect_authenticated(sl.get("/payments/1", token=t))
    assert h.counter(sl, "cache.hit") >= hits + 4, "served from the verified-token cache"
    statuses[2] = SUSPENDED
    lists.put(uri, status_list_token(keys.rsa, uri, statuses, ttl=TTL_S))
    assert h.wait_until(lambda: {h.status_of(sl, t) for _ in range(6)} == {401}, timeout=TTL_S + 3, step=0.05)
    h.expect_denied(sl.get("/payments/1", token=t), 401, "token_suspended", token=t)
    statuses[2] = VALID
    lists.put(uri, status_list_token(keys.rsa, uri, statuses, ttl=TTL_S))
    assert h.wait_until(lambda: {h.status_of(sl, t) for _ in range(6)} == {200}, timeout=TTL_S + 3, step=0.05)
    h.expect_authenticated(sl.get("/payments/1", token=t))


def test_two_workers_one_fetch_per_uri_per_period(sl, lists, keys):
    """`ttl` 2 s: a fetch every 2 s; no `ttl`: every max_cache_s (3 s); a
    `ttl` above max_cache_s: capped at max_cache_s."""
    uris = {PREFIX + "period-ttl": TTL_S, PREFIX + "period-no-ttl": None, PREFIX + "period-long-ttl": 3600}
    for uri, ttl in uris.items():
        lists.put(uri, status_list_token(keys.rsa, uri, [VALID] * 8, ttl=ttl))
    tokens = [access_token(keys, 0, uri) for uri in uris]
    for t in tokens:
        h.expect_authenticated(sl.get("/payments/1", token=t))
    window = 9.0
    with Traffic(sl, tokens, threads=6) as traffic:
        time.sleep(1.0)
        t0 = time.monotonic()
        n0 = {u: lists.count(u) for u in uris}
        time.sleep(window)
        n1 = {u: lists.count(u) for u in uris}
        snaps = {u: [f["t"] for f in lists.snapshot(u) if t0 <= f["t"] <= t0 + window] for u in uris}
    assert {r[3] for r in traffic.records} == {200}
    threads = {a["_thread"] for a in audit_lines(sl) if a.get("_thread")}
    assert len(threads) >= 2, f"both workers decided requests: {threads}"
    report = []
    for uri, ttl in uris.items():
        period = min(ttl or MAX_CACHE_S, MAX_CACHE_S)
        n = n1[uri] - n0[uri]
        gaps = [b - a for a, b in zip(snaps[uri], snaps[uri][1:])]
        report.append(f"{uri.rsplit('/', 1)[1]} (ttl {ttl}): {n} fetches, period {period} s, "
                      f"gaps {min(gaps, default=0):.2f}-{max(gaps, default=0):.2f} s")
        assert window / period - 1.5 <= n <= window / period + 1, report[-1]
        assert min(gaps, default=period) >= 0.8 * period, f"two fetches too close: {report[-1]}"
    print("\n" + "; ".join(report) + f" ({window:.0f} s, 2 workers)")


def test_304_keeps_the_ttl_period(lists, keys, echo):
    """A server that answers 304 to If-None-Match: the list is still refreshed
    every `min(ttl, max_cache_s)` (here the ttl, 2 s, under the default
    max_cache_s of 300 s), so a later change still takes effect in time."""
    gw = start("status-list-etag", keys, echo, lists.port, concurrency=1, max_cache_s=300)
    try:
        uri = PREFIX + "etag"
        lists.etag.add(path_of(uri))
        statuses = [VALID] * 8
        lists.put(uri, status_list_token(keys.rsa, uri, statuses, ttl=TTL_S))
        t = access_token(keys, 1, uri)
        h.expect_authenticated(gw.get("/payments/1", token=t))
        assert h.wait_until(lambda: any(f["status"] == 304 for f in lists.snapshot(uri)), timeout=TTL_S + 3), \
            lists.snapshot(uri)
        h.expect_authenticated(gw.get("/payments/1", token=t))
        statuses[1] = INVALID
        changed = time.monotonic()
        lists.put(uri, status_list_token(keys.rsa, uri, statuses, ttl=TTL_S))
        refused = h.wait_until(lambda: h.status_of(gw, t) == 401, timeout=TTL_S + 6, step=0.05)
        took = time.monotonic() - changed
        fetches = [(round(f["t"] - changed, 2), f["status"]) for f in lists.snapshot(uri)]
        assert refused, (f"still allowed {took:.1f} s after the change (ttl {TTL_S} s); "
                         f"fetches (s from the change, status): {fetches}")
        assert took <= TTL_S + 2, f"{took:.2f} s; fetches: {fetches}"
    finally:
        gw.cleanup()


# --------------------------------------------------------------------------
# The list cannot be had
# --------------------------------------------------------------------------


def test_list_server_stalled_holds_then_503(prerequisites, keys, echo):
    server = list_server()
    uri = PREFIX + "slow"
    server.put(uri, status_list_token(keys.rsa, uri, MAIN))
    server.stall[path_of(uri)] = 4.0
    gw = start("status-list-stalled", keys, echo, server.port, timeout_ms=1000)
    try:
        t = access_token(keys, 0, uri)
        sent = time.monotonic()
        r = gw.get("/payments/1", token=t)
        took = time.monotonic() - sent
        h.expect_denied(r, 503, "status_unavailable", token=t)
        assert r.headers.get("www-authenticate") is None and r.headers.get("retry-after") == "5", r
        print(f"\nheld {took:.2f} s (timeout_ms 1000), then 503 status_unavailable")
        assert 0.8 <= took < 3.5, f"held until timeout_ms, then 503: {took:.2f} s"
        # once the server answers in time, the list decides
        server.stall.clear()
        # every worker (one may still hold the failure until its next tick)
        assert h.every_worker_answers(lambda: h.status_of(gw, t), 200, timeout=10), "recovers"
        t = access_token(keys, 1, uri)
        h.expect_denied(gw.get("/payments/1", token=t), 401, "token_revoked", token=t)
        assert h.counter(gw, "status_list.fetch_failed") >= 1
    finally:
        gw.cleanup()
        server.stop()


def test_list_server_down_deny_503_then_recovery(prerequisites, keys, echo):
    port = h.free_port()
    gw = start("status-list-down", keys, echo, port, timeout_ms=500)
    server = None
    try:
        uri = PREFIX + "main"
        t = access_token(keys, 0, uri)
        sent = time.monotonic()
        r = gw.get("/payments/1", token=t)
        took = time.monotonic() - sent
        h.expect_denied(r, 503, "status_unavailable", token=t)
        assert r.headers.get("www-authenticate") is None and r.headers.get("retry-after") == "5", r
        assert took < 1.5, f"never a hang: {took:.2f} s"
        h.expect_denied(gw.get("/payments/1", token=access_token(keys, 1, uri)), 503, "status_unavailable")
        # a token without a status claim, a public route: not affected
        h.expect_authenticated(gw.get("/payments/1", token=h.mint(keys.rsa, h.claims("payments:read"), alg="RS256")))
        h.expect_allowed(gw.get("/healthz"))
        assert h.counter(gw, "status_list.fetch_failed") >= 1
        server = list_server(port=port)
        server.put(uri, status_list_token(keys.rsa, uri, MAIN))
        up = time.monotonic()
        assert h.every_worker_answers(lambda: h.status_of(gw, t), 200, timeout=35), \
            "recovers without restart"
        print(f"\nheld {took * 1000:.0f} ms then 503; recovered {time.monotonic() - up:.2f} s after the server came up")
        t = access_token(keys, 1, uri)
        h.expect_denied(gw.get("/payments/1", token=t), 401, "token_revoked", token=t)
        assert h.counter(gw, "status_list.fetch_ok") >= 1
    finally:
        gw.cleanup()
        if server:
            server.stop()


def test_list_server_down_allow_lets_through_unchecked(prerequisites, keys, echo):
    port = h.free_port()
    gw = start("status-list-open", keys, echo, port, timeout_ms=500, on_unavailable="allow")
    try:
        uri = PREFIX + "main"
        before = h.counter(gw, "revocation.status_unchecked")
        # even the INVALID index passes: nothing can be checked
        for n, idx in enumerate((0, 1), start=1):
            t = access_token(keys, idx, uri)
            h.expect_authenticated(gw.get("/payments/1", token=t))
            assert h.counter(gw, "revocation.status_unchecked") == before + n
        assert log_has(gw, "let through unchecked")
        # a uri outside the prefixes is still refused: allow is about availability only
        t = access_token(keys, 0, "http://evil.example/list")
        h.expect_denied(gw.get("/payments/1", token=t), 401, "status_unverifiable", token=t)
        assert h.counter(gw, "revocation.status_unchecked") == before + 2
        assert h.counter(gw, "status_list.fetch_failed") >= 1
    finally:
        gw.cleanup()
