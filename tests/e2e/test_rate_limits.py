"""Rate limits per verified identity (CONTRACT §1.5, §2, §5) in real Envoy.

* Accuracy across two workers: one identity driven at several times its limit
  for 10 s over keep-alive connections spread over both workers; the allowed
  count stays within 10% of what the limit lets through (the buckets live in
  shared data, so the two workers together hold the limit).
* The 429: `rate_limited` in the body, `Retry-After`, `RateLimit-Policy` and
  `RateLimit` with the policy's numbers, the audit line naming the policy,
  the counter; over HTTP/2 too. With `headers: true` allowed responses carry
  both fields (remaining counting down); without it they do not. The fields
  never name the identity.
* Which limits apply: a registry entry's own limit replaces the default for
  that identity; a rule's limit applies on its rule only, per identity;
  identities (and providers) have separate buckets; denied requests take no
  token.
* `dry_run`: over the limit passes, `scopegate.rate_limits.dry_run_exceeded`
  rises and a warning is logged; the top-level `mode: dry_run` passes it as
  well, reported as rate_limited.
* A bad limit refuses the configuration with its JSON pointer.
* Fleet-wide limits (envoy-example/global-ratelimit/envoy.yaml): Envoy's
  ratelimit filter after Scopegate builds its descriptor from the identity
  headers Scopegate set, never from a caller's, and only for allowed requests
  with a verified client id (checked with the service absent, by the filter's
  counters; the service itself is not run here).
"""

from __future__ import annotations

import http.client
import json
import random
import re
import threading
import time
import uuid

import pytest

import harness as h

# The accuracy run: one identity on the default limit.
ACCURACY = {"requests": 50, "per_s": 1, "burst": 10}
RUN_S = 10.0
THREADS = 12  # one keep-alive connection each (spread over both workers by the kernel)
OFFERED_RPS = 300  # 6x the limit, paced; at least 3x must be reached

# The slow limits of the exact tests: 3 at once, then one every 30 s.
SLOW = {"requests": 2, "per_s": 60, "burst": 1}
RULE_LIMIT = {"requests": 3, "per_s": 60}
REPORTS_RULE = 4  # index of "reports" in the base configuration's rules

DEFAULT_POLICY = '"default";q=50;w=1;scopegate-burst=10'
SLOW_POLICY_FIELDS = "q=2;w=60;scopegate-burst=1"


def limits_config(keys: h.KeySet, rate_limits: dict, **over) -> dict:
    # Every decision's audit line is evidence here (which worker decided):
    # no per-second budget on them.
    over.setdefault("audit_log_budget", 0)
    cfg = h.base_filter_config(keys, audit_log="all", rate_limits=rate_limits, **over)
    assert cfg["rules"][REPORTS_RULE]["name"] == "reports"
    return cfg


def main_config(keys: h.KeySet) -> dict:
    """Default 50/s + 10; registry identities slow-a and slow-b on their own
    slow limit; the reports rule limited to 3 a minute; no `headers`."""
    cfg = limits_config(keys, {"key": "client_id", "default": ACCURACY})
    cfg["rules"][REPORTS_RULE]["rate_limit"] = RULE_LIMIT
    cfg["identities"] = {
        "registry": {"inline": [
            {"client_id": "slow-a", "owner": "team-a@example.com", "rate_limit": SLOW},
            {"client_id": "slow-b", "owner": "team-b@example.com", "rate_limit": SLOW},
            {"client_id": "slow-c", "owner": "team-c@example.com", "rate_limit": SLOW},
        ]},
        "unregistered": "report",
    }
    # The accuracy test counts one audit line per request, by worker: the
    # default audit_log_budget (20 a second per reason) would sum most of them.
    cfg["audit_log_budget"] = 0
    return cfg


@pytest.fixture(scope="module")
def gw_rl(prerequisites, keys, echo):
    """The main configuration with two workers."""
    e = h.Envoy("rate-limits", main_config(keys), echo, concurrency=2).start()
    yield e
    e.cleanup()


@pytest.fixture(scope="module")
def gw_headers(gateways, keys):
    return gateways.get("rate-limits-headers", audit_log="all",
                        rate_limits={"default": SLOW, "headers": True})


@pytest.fixture(scope="module")
def gw_rl_dry(gateways, keys):
    return gateways.get("rate-limits-dry-run", audit_log="all",
                        rate_limits={"default": {"requests": 1, "per_s": 60}, "dry_run": True})


def token(keys: h.KeySet, client: str, scope: str = "payments:read", sub: str = "svc-billing", **over) -> str:
    return h.mint(keys.rsa, h.claims(scope, client_id=client, sub=sub, **over), alg="RS256")


def fresh(prefix: str) -> str:
    """A client id no other test (or earlier run against the same Envoy) used."""
    return f"{prefix}-{uuid.uuid4().hex[:8]}"


def rl_fields(r: h.Response) -> tuple[str | None, str | None]:
    return r.headers.get("ratelimit-policy"), r.headers.get("ratelimit")


def parse_list(value: str) -> dict[str, dict[str, str]]:
    """An RFC 9651 list of `"name";k=v;...` members: name -> parameters."""
    out = {}
    for member in value.split(", "):
        m = re.fullmatch(r'"([^"\\]+)"((?:;[a-z][a-z0-9_.*-]*=[0-9]+)*)', member)
        assert m, f"not a list member of a string with integer parameters: {member!r} (in {value!r})"
        params = dict(p.split("=", 1) for p in m.group(2).split(";")[1:])
        assert m.group(1) not in out, value
        out[m.group(1)] = params
    return out


def expect_429(r: h.Response, token_text: str | None = None) -> dict:
    body = h.expect_denied(r, 429, "rate_limited", token=token_text)
    assert body["error"] == "rate_limited", body
    assert "www-authenticate" not in r.headers, r
    assert r.headers.get("cache-control") == "no-store", r
    return body


def audit_for(gw: h.Envoy, jti: str, timeout: float = 3.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = [doc for _, doc in h.audit_records(gw.log_text()) if doc.get("jti") == jti]
        if found or time.monotonic() > deadline:
            assert len(found) == 1, f"audit lines with jti {jti!r}: {found}"
            return found[0]
        time.sleep(0.1)


# --------------------------------------------------------------------------
# Accuracy across two workers
# --------------------------------------------------------------------------

_THREAD_ID = re.compile(r"^\[[^\]]+\]\[(\d+)\]")


def drive(port: int, target: str, token_text: str, rate: float, duration: float, threads: int) -> dict:
    """`threads` keep-alive connections, each paced at rate/threads requests a
    second on average, for `duration` seconds: counts of statuses, requests
    sent. Each gap is jittered (0.5 to 1.5 of the mean): on a strict grid the
    requests would phase-lock with the bucket's refill (at 300/s and 50/s a new
    token appears every sixth slot), so the same two connections, on one
    worker, would win every token."""
    counts: dict[int, int] = {}
    sent = [0]
    errors: list[str] = []
    lock = threading.Lock()
    start = time.monotonic() + 0.2  # every thread connected first
    stop = start + duration
    interval = threads / rate
    ready = threading.Barrier(threads)

    def run(i: int):
        jitter = random.Random(i)
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        local: dict[int, int] = {}
        n = 0
        try:
            conn.connect()
            ready.wait(timeout=10)
            nxt = start + i * interval / threads  # staggered
            while True:
                now = time.monotonic()
                if nxt > now:
                    time.sleep(nxt - now)
                if time.monotonic() >= stop:
                    break
                nxt += interval * jitter.uniform(0.5, 1.5)
                try:
                    conn.request("GET", target, headers={"Host": "gateway.test", "Authorization": f"Bearer {token_text}"})
                    resp = conn.getresponse()
                    resp.read()
                    n += 1
                    local[resp.status] = local.get(resp.status, 0) + 1
                    if resp.will_close:
                        conn.close()
                        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
                except (OSError, http.client.HTTPException) as e:
                    errors.append(repr(e))
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=10)
        finally:
            conn.close()
            with lock:
                sent[0] += n
                for k, v in local.items():
                    counts[k] = counts.get(k, 0) + v

    ts = [threading.Thread(target=run, args=(i,), daemon=True) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join(timeout=duration + 30)
    return {"counts": counts, "sent": sent[0], "errors": errors, "elapsed": duration}


def test_limit_holds_across_two_workers(gw_rl, keys):
    client = fresh("load")
    t = token(keys, client)
    before_429 = h.counter(gw_rl, "requests.rate_limited")
    res = drive(gw_rl.port, "/payments/1", t, OFFERED_RPS, RUN_S, THREADS)
    counts, sent = res["counts"], res["sent"]
    allowed = counts.get(200, 0)
    limited = counts.get(429, 0)
    r, per_s, b = ACCURACY["requests"], ACCURACY["per_s"], ACCURACY["burst"]
    sustained = r * RUN_S / per_s
    offered = sent / RUN_S
    # Per-worker evidence: the audit lines of this identity, by Envoy thread.
    assert h.wait_until(
        lambda: sum(1 for _, d in h.audit_records(gw_rl.log_text()) if d.get("client_id") == client) >= sent, 5)
    by_thread: dict[str, dict[str, int]] = {}
    for line, doc in h.audit_records(gw_rl.log_text()):
        if doc.get("client_id") != client:
            continue
        m = _THREAD_ID.search(line)
        assert m, line
        per = by_thread.setdefault(m.group(1), {})
        per[doc["reason"]] = per.get(doc["reason"], 0) + 1
    print(f"\nrate-limit accuracy: limit {ACCURACY}, {RUN_S:.0f} s, {THREADS} keep-alive connections, "
          f"2 Envoy workers; offered {sent} requests ({offered:.0f}/s, {offered / (r / per_s):.1f}x the rate); "
          f"allowed {allowed} (expected {sustained:.0f} sustained + up to {r + b} at the start = "
          f"{sustained + r + b:.0f}; bounds [{0.9 * sustained:.0f}, {1.1 * sustained + r + b:.0f}]), "
          f"429: {limited}, other: { {k: v for k, v in counts.items() if k not in (200, 429)} }, "
          f"client errors: {len(res['errors'])}; per worker thread: {by_thread}")
    assert not res["errors"], res["errors"][:5]
    assert set(counts) <= {200, 429}, counts
    assert offered >= 3 * r / per_s, f"the client offered only {offered:.0f}/s: the test proves nothing"
    assert len(by_thread) == 2, f"both workers must serve the identity: {by_thread}"
    for tid, per in by_thread.items():
        assert per.get("allowed", 0) >= 0.05 * allowed, f"worker thread {tid} allowed too few: {by_thread}"
    assert 0.9 * sustained <= allowed <= 1.1 * sustained + r + b, (allowed, sustained)
    assert h.counter(gw_rl, "requests.rate_limited") >= before_429 + limited


# --------------------------------------------------------------------------
# The 429 and the response fields
# --------------------------------------------------------------------------


def exhaust(gw, t: str, target: str = "/payments/1", most: int = 500) -> tuple[int, h.Response]:
    """Requests (a new connection each) until the first 429: how many passed, and the 429."""
    for n in range(most):
        r = gw.get(target, token=t)
        if r.status == 429:
            return n, r
        h.expect_allowed(r)
    raise AssertionError(f"no 429 after {most} requests")


def test_default_limit_429_shape(gw_rl, keys):
    client = fresh("burst")
    t = token(keys, client)
    before = h.counter(gw_rl, "requests.rate_limited")
    passed, r = exhaust(gw_rl, t)
    assert passed >= ACCURACY["requests"] + ACCURACY["burst"], passed
    expect_429(r, t)
    assert r.headers.get("retry-after") == "1", r
    assert r.headers.get("ratelimit-policy") == DEFAULT_POLICY, r
    assert parse_list(r.headers.get("ratelimit")) == {"default": {"r": "0", "t": "1"}}, r
    assert h.counter(gw_rl, "requests.rate_limited") == before + 1


def test_registry_identity_limit_replaces_the_default(gw_rl, keys):
    """slow-a: 3 at once (2 + burst 1), then 429 naming policy "identity" with
    its own numbers; Retry-After is the RateLimit t; the audit line names the
    policy. Tokens of another identity stay on the default."""
    jti = "rl-" + uuid.uuid4().hex
    sub = fresh("sub")
    ts = [token(keys, "slow-a", sub=sub) for _ in range(3)]
    for t in ts:
        h.expect_allowed(gw_rl.get("/payments/1", token=t))
    t4 = token(keys, "slow-a", sub=sub, jti=jti)
    r = gw_rl.get("/payments/1", token=t4)
    expect_429(r, t4)
    assert r.headers.get("ratelimit-policy") == f'"identity";{SLOW_POLICY_FIELDS}', r
    state = parse_list(r.headers.get("ratelimit"))
    assert list(state) == ["identity"] and state["identity"]["r"] == "0", state
    wait = int(state["identity"]["t"])
    assert 1 <= wait <= 30, state
    assert r.headers.get("retry-after") == str(wait), r
    a = audit_for(gw_rl, jti)
    assert (a["decision"], a["reason"], a["client_id"]) == ("deny", "rate_limited", "slow-a"), a
    assert '"identity"' in a["message"] and "default" not in a["message"], a
    # the identity stays limited, on both workers (new connection each)
    for _ in range(4):
        expect_429(gw_rl.get("/payments/1", token=token(keys, "slow-a")))
    # an unregistered identity is on the default: far more than 3 pass
    other = token(keys, fresh("default-client"))
    for _ in range(8):
        h.expect_allowed(gw_rl.get("/payments/1", token=other))


def test_identities_have_separate_buckets(gw_rl, keys):
    """slow-b's bucket is shared by its subjects (key client_id); once it is
    empty, slow-c (same limit) still has all of its own; the same client id
    from another provider is another identity."""
    for sub in ("sub-1", "sub-2", "sub-1"):
        h.expect_allowed(gw_rl.get("/payments/1", token=token(keys, "slow-b", sub=sub)))
    expect_429(gw_rl.get("/payments/1", token=token(keys, "slow-b", sub="sub-3")))
    for _ in range(3):
        h.expect_allowed(gw_rl.get("/payments/1", token=token(keys, "slow-c")))
    expect_429(gw_rl.get("/payments/1", token=token(keys, "slow-c")))
    expect_429(gw_rl.get("/payments/1", token=token(keys, "slow-b")))
    # partner's slow-b (the registry entry names no provider: the same limit, another bucket)
    pt = h.mint(keys.partner_ec, h.claims("payments:read", iss=h.PARTNER_ISSUER, client_id="slow-b"), alg="ES256")
    for _ in range(3):
        h.expect_allowed(gw_rl.get("/payments/1", token=pt))
    r = gw_rl.get("/payments/1", token=pt)
    expect_429(r, pt)
    assert r.headers.get("ratelimit-policy") == f'"identity";{SLOW_POLICY_FIELDS}', r


def test_denied_requests_take_no_token(gw_rl, keys):
    """On the reports rule (3 a minute per identity, exact): 403s (missing
    scope, wrong client for the admin rule) and a 401 first, then still the
    full 3, then 429s, which take none either."""
    client = fresh("deny-first")
    t_noscope = token(keys, client, scope="payments:read")
    for _ in range(5):
        h.expect_denied(gw_rl.get("/reports/q1/summary", token=t_noscope), 403, "insufficient_scope",
                        token=t_noscope, scope="reports:read")
    for _ in range(3):
        h.expect_denied(gw_rl.get("/admin/x", token=token(keys, client, scope="admin")), 403, "client_not_allowed")
    now = int(time.time())
    expired = token(keys, client, scope="reports:read", iat=now - 900, exp=now - 300)
    h.expect_denied(gw_rl.get("/reports/q1/summary", token=expired), 401, "token_expired", token=expired)
    t = token(keys, client, scope="reports:read payments:read")
    for _ in range(RULE_LIMIT["requests"]):
        h.expect_allowed(gw_rl.get("/reports/q1/summary", token=t))
    expect_429(gw_rl.get("/reports/q1/summary", token=t), t)
    # more 429s; another rule's path still passes (the default bucket was not drained)
    for _ in range(5):
        expect_429(gw_rl.get("/reports/q1/summary", token=t))
    h.expect_allowed(gw_rl.get("/payments/1", token=t))


def test_rule_limit_applies_on_its_rule_per_identity(gw_rl, keys):
    client = fresh("rule")
    jti = "rl-rule-" + uuid.uuid4().hex
    t = token(keys, client, scope="payments:read reports:read")
    for _ in range(RULE_LIMIT["requests"]):
        h.expect_allowed(gw_rl.get("/reports/2026/summary", token=t))
    t4 = token(keys, client, scope="payments:read reports:read", jti=jti)
    r = gw_rl.get("/reports/2026/summary", token=t4)
    expect_429(r, t4)
    # both limits that apply are listed, the identity's first
    assert r.headers.get("ratelimit-policy") == f'{DEFAULT_POLICY}, "reports";q=3;w=60', r
    state = parse_list(r.headers.get("ratelimit"))
    assert list(state) == ["default", "reports"], state
    assert state["reports"]["r"] == "0", state
    assert 1 <= int(state["reports"]["t"]) <= 20, state
    assert r.headers.get("retry-after") == state["reports"]["t"], r
    assert int(state["default"]["r"]) >= ACCURACY["requests"], state  # the default bucket barely touched
    a = audit_for(gw_rl, jti)
    assert a["reason"] == "rate_limited" and a["rule"] == "reports", a
    assert '"reports"' in a["message"] and '"default"' not in a["message"], a
    # the same identity on another rule: only the default applies
    for _ in range(5):
        h.expect_allowed(gw_rl.get("/payments/1", token=t))
    # another identity on the same rule has its own 3
    t2 = token(keys, fresh("rule-other"), scope="reports:read")
    for _ in range(RULE_LIMIT["requests"]):
        h.expect_allowed(gw_rl.get("/reports/2026/summary", token=t2))
    expect_429(gw_rl.get("/reports/2026/summary", token=t2), t2)


def test_allowed_responses_carry_no_fields_without_headers(gw_rl, keys):
    r = gw_rl.get("/payments/1", token=token(keys, fresh("quiet")))
    h.expect_allowed(r)
    assert rl_fields(r) == (None, None), r
    # nor the registry identities and rule limits
    r = gw_rl.get("/reports/x/summary", token=token(keys, fresh("quiet"), scope="reports:read"))
    h.expect_allowed(r)
    assert rl_fields(r) == (None, None), r


def test_allowed_responses_carry_the_fields_with_headers(gw_headers, keys):
    client = fresh("hdr")
    sub = fresh("hdr-sub")
    t = token(keys, client, sub=sub)
    policy = f'"default";{SLOW_POLICY_FIELDS}'
    for remaining in (2, 1, 0):
        r = gw_headers.get("/payments/1", token=t)
        up = h.expect_authenticated(r, subject=sub)
        assert r.headers.get("ratelimit-policy") == policy, r
        state = parse_list(r.headers.get("ratelimit"))
        assert state["default"]["r"] == str(remaining), (remaining, state)
        assert 29 <= int(state["default"]["t"]) <= 30, state
        assert "retry-after" not in r.headers, r
        # the upstream gets no such fields (they are response fields)
        assert "ratelimit" not in up["headers"] and "ratelimit-policy" not in up["headers"], up["headers"]
    r = gw_headers.get("/payments/1", token=t)
    expect_429(r, t)
    assert r.headers.get("ratelimit-policy") == policy
    state = parse_list(r.headers.get("ratelimit"))
    assert state["default"]["r"] == "0" and r.headers.get("retry-after") == state["default"]["t"], r
    # fields never name the identity (no partition key either)
    for r in (r, gw_headers.get("/payments/1", token=token(keys, client, sub=sub))):
        for v in rl_fields(r):
            assert client not in v and sub not in v and "pk=" not in v, v
    # a public route has no verified identity: no limit, no fields
    r = gw_headers.get("/healthz")
    h.expect_allowed(r)
    assert rl_fields(r) == (None, None), r


@pytest.mark.h2
def test_h2_429_shape(gw_rl, keys):
    client = fresh("h2")
    t = token(keys, client, scope="reports:read")
    for _ in range(RULE_LIMIT["requests"]):
        r = gw_rl.h2_request("GET", "/reports/h2/summary", token=t)
        h.expect_allowed(r)
        assert rl_fields(r) == (None, None)
    r = gw_rl.h2_request("GET", "/reports/h2/summary", token=t)
    assert r.protocol == "HTTP/2"
    expect_429(r, t)
    assert r.headers.get("ratelimit-policy") == f'{DEFAULT_POLICY}, "reports";q=3;w=60', r
    state = parse_list(r.headers.get("ratelimit"))
    assert state["reports"]["r"] == "0" and r.headers.get("retry-after") == state["reports"]["t"], r
    assert len(r.headers.get_all("retry-after")) == 1, r


# --------------------------------------------------------------------------
# dry_run
# --------------------------------------------------------------------------


def test_dry_run_lets_over_limit_through_counts_and_warns(gw_rl_dry, keys):
    client = fresh("dry")
    t = token(keys, client)
    before = h.counter(gw_rl_dry, "rate_limits.dry_run_exceeded")
    before_429 = h.counter(gw_rl_dry, "requests.rate_limited")
    h.expect_allowed(gw_rl_dry.get("/payments/1", token=t))
    assert h.counter(gw_rl_dry, "rate_limits.dry_run_exceeded") == before
    for i in range(3):
        jti = "rl-dry-" + uuid.uuid4().hex
        r = gw_rl_dry.get("/payments/1", token=token(keys, client, jti=jti))
        h.expect_allowed(r)
        assert h.counter(gw_rl_dry, "rate_limits.dry_run_exceeded") == before + i + 1
        a = audit_for(gw_rl_dry, jti)
        assert (a["decision"], a["reason"]) == ("allow", "allowed"), a
    assert h.counter(gw_rl_dry, "requests.rate_limited") == before_429
    warned = [l for l in gw_rl_dry.log_text().splitlines()
              if "rate_limits dry run" in l and f'"{client}"' in l]
    assert len(warned) == 3, warned
    assert all("[warning]" in l for l in warned), warned
    assert all('"default"' in l for l in warned), warned


def test_dry_run_pass_carries_no_fields_without_headers(gw_rl_dry, keys):
    t = token(keys, fresh("dry-fields"))
    h.expect_allowed(gw_rl_dry.get("/payments/1", token=t))
    r = gw_rl_dry.get("/payments/1", token=t)
    h.expect_allowed(r)
    assert rl_fields(r) == (None, None), r


def test_mode_dry_run_reports_rate_limited_and_lets_through(gateways, keys):
    """The top-level `mode: dry_run`: over the limit passes, reported (counter,
    audit line) as rate_limited in mode dry_run."""
    gw = gateways.get("rate-limits-mode-dry-run", audit_log="all", mode="dry_run",
                      rate_limits={"default": {"requests": 1, "per_s": 60}})
    client = fresh("mode-dry")
    before = h.counter(gw, "requests.rate_limited")
    h.expect_allowed(gw.get("/payments/1", token=token(keys, client)))
    jti = "rl-mode-dry-" + uuid.uuid4().hex
    r = gw.get("/payments/1", token=token(keys, client, jti=jti))
    h.expect_authenticated(r)
    assert "retry-after" not in r.headers, r
    assert h.counter(gw, "requests.rate_limited") == before + 1
    a = audit_for(gw, jti)
    assert (a["reason"], a["mode"]) == ("rate_limited", "dry_run"), a
    assert '"default"' in a["message"], a


# --------------------------------------------------------------------------
# Fleet-wide limits: envoy-example/global-ratelimit/envoy.yaml
# --------------------------------------------------------------------------

GLOBAL_EXAMPLE = "envoy-example/global-ratelimit/envoy.yaml"


@pytest.fixture(scope="module")
def gw_global(prerequisites, echo):
    """The example as written, but on free ports, the api cluster pointing at
    the echo upstream and the rate limit service at a port nobody listens on:
    Envoy's ratelimit filter then counts every call it makes as an error and
    lets the request through (`failure_mode_deny: false`), so its counters
    tell which requests produced a descriptor."""
    import os

    boot = h.load_yaml_file(os.path.join(h.REPO_ROOT, GLOBAL_EXAMPLE))
    boot["admin"]["address"]["socket_address"]["port_value"] = 0
    (listener,) = boot["static_resources"]["listeners"]
    listener["name"] = "main"
    listener["address"]["socket_address"]["port_value"] = 0
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["access_log"] = []
    wasm = [f for f in hcm["http_filters"] if f["name"] == "scopegate"][0]["typed_config"]["config"]
    wasm["vm_config"]["code"]["local"]["filename"] = h.find_wasm()
    ports = {"api": echo.port, "ratelimit": h.free_port()}
    for c in boot["static_resources"]["clusters"]:
        ep = c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        ep["address"]["socket_address"]["port_value"] = ports[c["name"]]
    e = h.Envoy("global-ratelimit-example", None, echo)
    with open(e.config_path, "w") as f:
        json.dump(boot, f)
    e.start()
    yield e
    e.cleanup()


def example_token(claims: dict) -> str:
    """A token of the example's corp provider (envoy-example/keys)."""
    import os

    from cryptography.hazmat.primitives import serialization

    with open(os.path.join(h.REPO_ROOT, "envoy-example", "keys", "corp-rs256.pk8.pem"), "rb") as f:
        private = serialization.load_pem_private_key(f.read(), password=None)
    return h.mint(h.Key("corp-2026", "RSA", private), claims, alg="RS256")


def ratelimit_calls(gw) -> int:
    """Calls Envoy's ratelimit filter made (all failed: no service), charged
    to the route's cluster."""
    stats = gw.stats()
    return stats.get("cluster.api.ratelimit.error", 0) + stats.get("cluster.api.ratelimit.ok", 0)


def test_global_ratelimit_example_keys_on_the_verified_identity(gw_global):
    """Only a request Scopegate allowed with a verified client id reaches the
    service with a descriptor, and its identity headers are Scopegate's: a
    caller's own x-identity-client-id is removed first."""
    gw = gw_global
    assert ratelimit_calls(gw) == 0
    # verified token with a client id: one call, with Scopegate's identity headers
    t = example_token(h.claims("payments:read", client_id="billing-batch"))
    r = gw.get("/payments/1", token=t, headers=[("x-identity-client-id", "someone-else"),
                                                ("x-identity-issuer", "https://evil.example")])
    up = h.expect_allowed(r)
    assert up["headers"].get("x-identity-client-id") == ["billing-batch"], up["headers"]
    assert up["headers"].get("x-identity-issuer") == [h.ISSUER], up["headers"]
    assert h.wait_until(lambda: ratelimit_calls(gw) == 1, 3), gw.stats()
    assert gw.stats().get("cluster.api.ratelimit.failure_mode_allowed", 0) == 1
    # a public route with forged identity headers: removed, so no descriptor, no call
    r = gw.get("/healthz", headers=[("x-identity-client-id", "billing-batch"),
                                    ("x-identity-issuer", h.ISSUER)])
    up = h.expect_allowed(r)
    assert "x-identity-client-id" not in up["headers"], up["headers"]
    # denied requests never reach the ratelimit filter
    h.expect_denied(gw.get("/payments/1", headers=[("x-identity-client-id", "billing-batch")]), 401, "token_missing")
    h.expect_denied(gw.get("/admin/x", token=t), 403, "client_not_allowed", token=t)
    # a verified token without a client id: no descriptor either
    up = h.expect_allowed(gw.get("/payments/1", token=example_token(h.claims("payments:read", client_id=...))))
    assert "x-identity-client-id" not in up["headers"], up["headers"]
    time.sleep(0.5)
    assert ratelimit_calls(gw) == 1, gw.stats()


# --------------------------------------------------------------------------
# Configuration errors
# --------------------------------------------------------------------------


def _zero_requests(cfg):
    cfg["rate_limits"] = {"default": {"requests": 0, "per_s": 60}}
    return "/rate_limits/default/requests"


def _rule_zero_period(cfg):
    cfg["rate_limits"] = {}
    cfg["rules"][REPORTS_RULE]["rate_limit"] = {"requests": 5, "per_s": 0}
    return f"/rules/{REPORTS_RULE}/rate_limit/per_s"


def _registry_bad_burst(cfg):
    cfg["rate_limits"] = {"default": {"requests": 5, "per_s": 60}}
    cfg["identities"] = {"registry": {"inline": [
        {"client_id": "x", "owner": "o@example.com", "rate_limit": {"requests": 5, "per_s": 60, "burst": -1}}]}}
    return "/identities/registry/inline/0/rate_limit/burst"


def _unknown_key(cfg):
    cfg["rate_limits"] = {"key": "ip", "default": {"requests": 5, "per_s": 60}}
    return "/rate_limits/key"


def _too_few_identities(cfg):
    cfg["rate_limits"] = {"default": {"requests": 5, "per_s": 60}, "max_identities": 10}
    return "/rate_limits/max_identities"


BAD = {
    "default_requests_zero": _zero_requests,
    "rule_per_s_zero": _rule_zero_period,
    "registry_burst_negative": _registry_bad_burst,
    "key_ip": _unknown_key,
    "max_identities_below_minimum": _too_few_identities,
}


@pytest.mark.parametrize("case", list(BAD))
def test_bad_limit_refused_at_start_with_json_pointer(prerequisites, keys, echo, case):
    cfg = h.base_filter_config(keys)
    pointer = BAD[case](cfg)
    envoy = h.Envoy(f"bad-rl-{case}", cfg, echo)
    try:
        how, log = envoy.start_expect_failure()
    finally:
        envoy.cleanup()
    assert how != "exited:0", how
    assert re.search(re.escape(pointer) + r"\b", log), f"{pointer!r} not in Envoy log:\n{h.tail(log, 30)}"
