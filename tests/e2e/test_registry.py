"""The identity registry (issue 16, CONTRACT §1.2) in real Envoy: a registered
identity gets its owner header and only the scopes under its ceiling; a token
refused only because of the ceiling is 403 scope_over_ceiling; unregistered
clients are denied or reported; disabled and expired entries are 401 (with the
provider's clock skew); a broken registry refuses the configuration. Then the
registry fetched from a `uri` through a cluster, from a server owned by the
test that counts fetches and answers 304 to a matching If-None-Match: first
fetch, refresh, 503 registry_unavailable while it is down, bad documents that
keep the last good registry, one fetch per refresh for two workers."""

from __future__ import annotations

import json
import time
import uuid

import pytest

import harness as h

OWNER = "payments-team@example.com"
OWNER_HEADER = "x-identity-owner"
REGISTRY_PATH = "/registry.json"
FETCH_COUNTERS = ("registry.fetch_ok", "registry.fetch_failed")


def registry_entries(now: int | None = None) -> list[dict]:
    """billing-batch (corp): read-only ceiling; refund-worker (any provider):
    may refund; ops-bot: disabled; old-job: expired an hour ago."""
    now = int(time.time()) if now is None else now
    return [
        {
            "client_id": "billing-batch",
            "provider": "corp",
            "owner": OWNER,
            "description": "nightly billing export",
            "expires": h.rfc3339(now + 365 * 86400),
            "max_scopes": ["payments:read"],
            "status": "active",
        },
        {
            "client_id": "refund-worker",
            "owner": "refunds@example.com",
            "max_scopes": ["payments:read", "payments:write", "refunds:create"],
        },
        {"client_id": "ops-bot", "owner": "sre@example.com", "status": "disabled"},
        {"client_id": "old-job", "owner": "legacy@example.com", "expires": h.rfc3339(now - 3600)},
    ]


def registry_config(keys: h.KeySet, registry: dict, unregistered: str = "deny", **over) -> dict:
    cfg = h.base_filter_config(keys, audit_log="all", **over)
    cfg["identity_headers"]["owner"] = OWNER_HEADER
    cfg["identities"] = {"registry": registry, "unregistered": unregistered}
    return cfg


def audit_lines(gw: h.Envoy) -> list[dict]:
    return [doc for _, doc in h.audit_records(gw.log_text())]


def audit_for(gw: h.Envoy, jti: str, timeout: float = 3.0) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        found = [a for a in audit_lines(gw) if a.get("jti") == jti]
        if found or time.monotonic() > deadline:
            assert found, f"no audit line with jti {jti!r}"
            assert len(found) == 1, found
            return found[0]
        time.sleep(0.1)


def wait_until(cond, timeout: float, step: float = 0.2):
    return h.wait_until(cond, timeout, step)


def token(keys: h.KeySet, client: str | None, scope: str = "payments:read", **over) -> str:
    c = h.claims(scope, **over)
    if client is None:
        c.pop("client_id", None)
    else:
        c["client_id"] = client
    return h.mint(keys.rsa, c, alg="RS256")


# --------------------------------------------------------------------------
# Inline registry
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def gw_deny(gateways, keys) -> h.Envoy:
    cfg = registry_config(keys, {"inline": registry_entries()}, "deny")
    return gateways.get("registry-deny", **cfg)


@pytest.fixture(scope="module")
def gw_report(gateways, keys) -> h.Envoy:
    cfg = registry_config(keys, {"inline": registry_entries()}, "report")
    return gateways.get("registry-report", **cfg)


def test_registered_identity_within_ceiling_gets_owner_header_and_spoof_is_stripped(gw_deny, keys):
    t = token(keys, "billing-batch", "payments:read")
    r = gw_deny.get("/payments/1", token=t, headers=[(OWNER_HEADER, "me"), ("X-Identity-Owner", "root")])
    up = h.expect_authenticated(r)
    assert up["headers"].get(OWNER_HEADER) == [OWNER], up["headers"]
    assert up["headers"].get("x-identity-client-id") == ["billing-batch"]
    assert up["headers"].get("x-identity-scopes") == ["payments:read"]
    # a public route consults no registry, and the caller's owner header is stripped there too
    r = gw_deny.get("/healthz", headers=[(OWNER_HEADER, "me")])
    up = h.expect_allowed(r)
    assert OWNER_HEADER not in up["headers"], up["headers"]


def test_scopes_beyond_the_ceiling_are_dropped_counted_and_audited(gw_deny, keys):
    before = h.counter(gw_deny, "identities.scopes_over_ceiling")
    jti = "jti-over-" + uuid.uuid4().hex
    t = token(keys, "billing-batch", "payments:read payments:write refunds:create", jti=jti)
    up = h.expect_authenticated(gw_deny.get("/payments/1", token=t))
    assert up["headers"].get("x-identity-scopes") == ["payments:read"], "only the effective scopes"
    assert up["headers"].get(OWNER_HEADER) == [OWNER]
    assert h.counter(gw_deny, "identities.scopes_over_ceiling") == before + 1
    a = audit_for(gw_deny, jti)
    assert (a["decision"], a["reason"], a["rule"]) == ("allow", "allowed", "read"), a
    assert a["registered"] is True, a
    assert a["owner"] == OWNER, a
    assert a["scopes_dropped"] == ["payments:write", "refunds:create"], a
    assert a["scopes"] == ["payments:read"], a
    assert t not in gw_deny.log_text()


def test_refused_only_because_of_the_ceiling_is_scope_over_ceiling(gw_deny, keys):
    before = h.counter(gw_deny, "identities.scopes_over_ceiling")
    jti = "jti-ceiling-" + uuid.uuid4().hex
    t = token(keys, "billing-batch", "payments:read payments:write refunds:create", jti=jti)
    r = gw_deny.request("POST", "/payments/9/refunds", token=t, headers=[(OWNER_HEADER, "me")])
    h.expect_denied(r, 403, "scope_over_ceiling", token=t, scope="payments:write refunds:create")
    assert h.counter(gw_deny, "identities.scopes_over_ceiling") == before + 1
    a = audit_for(gw_deny, jti)
    assert (a["decision"], a["reason"], a["owner"], a["registered"]) == ("deny", "scope_over_ceiling", OWNER, True), a
    assert a["scopes_dropped"] == ["payments:write", "refunds:create"], a
    # without the scope in the token at all, it is plain insufficient_scope
    t = token(keys, "billing-batch", "payments:read payments:write")
    r = gw_deny.request("POST", "/payments/9/refunds", token=t)
    h.expect_denied(r, 403, "insufficient_scope", token=t, scope="payments:write refunds:create")
    # an identity whose ceiling includes the scopes is allowed
    t = token(keys, "refund-worker", "payments:write refunds:create admin")
    up = h.expect_authenticated(gw_deny.request("POST", "/payments/9/refunds", token=t))
    assert up["headers"].get("x-identity-scopes") == ["payments:write refunds:create"]
    assert up["headers"].get(OWNER_HEADER) == ["refunds@example.com"]


def test_unregistered_client_denied(gw_deny, keys):
    before = h.counter(gw_deny, "identities.unregistered")
    jti = "jti-unreg-" + uuid.uuid4().hex
    t = token(keys, "stranger", "payments:read", jti=jti)
    r = gw_deny.get("/payments/1", token=t)
    body = h.expect_denied(r, 403, "identity_unregistered", token=t)
    assert r.headers.get_all("www-authenticate") == ['Bearer realm="scopegate"']
    assert body["error"] == "access_denied"
    assert h.counter(gw_deny, "identities.unregistered") == before + 1
    a = audit_for(gw_deny, jti)
    assert (a["decision"], a["reason"], a["registered"]) == ("deny", "identity_unregistered", False), a
    # a token without a client id matches no entry
    t = token(keys, None, "payments:read")
    h.expect_denied(gw_deny.get("/payments/1", token=t), 403, "identity_unregistered", token=t)
    # a provider's own entry is not matched for another provider (billing-batch is corp's)
    t = h.mint(keys.partner_ec, h.claims("payments:read", iss=h.PARTNER_ISSUER, client_id="billing-batch"), alg="ES256")
    h.expect_denied(gw_deny.get("/payments/1", token=t), 403, "identity_unregistered", token=t)
    # an entry without a provider matches any provider
    t = h.mint(keys.partner_ec, h.claims("payments:read", iss=h.PARTNER_ISSUER, client_id="refund-worker"), alg="ES256")
    h.expect_allowed(gw_deny.get("/payments/1", token=t))


def test_unregistered_client_reported(gw_report, keys):
    before = h.counter(gw_report, "identities.unregistered")
    jti = "jti-report-" + uuid.uuid4().hex
    t = token(keys, "stranger", "payments:read", jti=jti)
    r = gw_report.get("/payments/1", token=t, headers=[(OWNER_HEADER, "me")])
    up = h.expect_authenticated(r)
    assert OWNER_HEADER not in up["headers"], "no owner for an unregistered client, and no caller copy"
    assert up["headers"].get("x-identity-client-id") == ["stranger"]
    assert h.counter(gw_report, "identities.unregistered") == before + 1
    a = audit_for(gw_report, jti)
    assert (a["decision"], a["reason"], a["registered"]) == ("allow", "allowed", False), a
    assert not a.get("owner"), a
    # registered clients are still judged by the registry in report mode
    t = token(keys, "ops-bot", "payments:read")
    h.expect_denied(gw_report.get("/payments/1", token=t), 401, "identity_disabled", token=t)


def test_disabled_identity_401(gw_deny, keys):
    jti = "jti-disabled-" + uuid.uuid4().hex
    t = token(keys, "ops-bot", "payments:read admin", jti=jti)
    r = gw_deny.get("/payments/1", token=t)
    body = h.expect_denied(r, 401, "identity_disabled", token=t)
    assert body["error"] == "invalid_token"
    a = audit_for(gw_deny, jti)
    assert (a["reason"], a["registered"], a["owner"]) == ("identity_disabled", True, "sre@example.com"), a


def test_expired_identity_401(gw_deny, keys):
    t = token(keys, "old-job", "payments:read")
    body = h.expect_denied(gw_deny.get("/payments/1", token=t), 401, "identity_expired", token=t)
    assert body["error"] == "invalid_token"


def test_expired_identity_within_the_providers_clock_skew_is_allowed(prerequisites, keys, echo):
    now = int(time.time())
    entries = [
        # 20 s past `expires`: within corp's 60 s clock skew
        {"client_id": "edge-job", "provider": "corp", "owner": "edge@example.com", "expires": h.rfc3339(now - 20)},
        # 90 s past: beyond it
        {"client_id": "late-job", "provider": "corp", "owner": "late@example.com", "expires": h.rfc3339(now - 90)},
    ]
    gw = h.Envoy("registry-skew", registry_config(keys, {"inline": entries}, "deny"), echo).start()
    try:
        up = h.expect_authenticated(gw.get("/payments/1", token=token(keys, "edge-job")))
        assert up["headers"].get(OWNER_HEADER) == ["edge@example.com"]
        t = token(keys, "late-job")
        h.expect_denied(gw.get("/payments/1", token=t), 401, "identity_expired", token=t)
    finally:
        gw.cleanup()


def _no_owner(entries):
    entries.insert(1, {"client_id": "orphan", "provider": "corp", "description": "nobody answers for it"})
    return "/identities/registry/inline/1", "owner"


def _duplicate_client(entries):
    entries.append({"client_id": "billing-batch", "provider": "corp", "owner": "someone-else@example.com"})
    return f"/identities/registry/inline/{len(entries) - 1}", "twice"


@pytest.mark.parametrize("fault", [_no_owner, _duplicate_client], ids=["entry_without_owner", "duplicate_client"])
def test_broken_registry_refuses_the_configuration(prerequisites, keys, echo, fault):
    entries = registry_entries()
    path, word = fault(entries)
    cfg = registry_config(keys, {"inline": entries}, "deny")
    envoy = h.Envoy(f"registry-bad-{fault.__name__.strip('_')}", cfg, echo)
    try:
        how, log = envoy.start_expect_failure()
    finally:
        envoy.cleanup()
    assert how.startswith("exited:") or how == "no-listener", how
    assert how != "exited:0", f"envoy exited 0 with an invalid registry\n{h.tail(log)}"
    lines = [l for l in log.splitlines() if path + ":" in l]
    assert lines, f"{path!r} not in Envoy log:\n{h.tail(log, 40)}"
    assert any(word in l for l in lines), f"{word!r} not said at {path}: {lines}"


# --------------------------------------------------------------------------
# Fetched registry
# --------------------------------------------------------------------------


def registry_server(entries: list[dict], port: int = 0) -> h.DocumentServer:
    """Serves `{"identities": entries}` at /registry.json with a strong ETag
    (304 when If-None-Match matches it); a fetch is recorded once answered."""
    return h.DocumentServer({REGISTRY_PATH: {"identities": entries}}, port=port, etag=True, record_on_arrival=False)


def start_fetched(name: str, keys: h.KeySet, echo, port: int, refresh_s: int = 10, timeout_ms: int = 1000,
                  concurrency: int = 2, unregistered: str = "deny") -> h.Envoy:
    source = {
        "uri": f"http://127.0.0.1:{port}{REGISTRY_PATH}",
        "cluster": "registry",
        "refresh_interval_s": refresh_s,
        "timeout_ms": timeout_ms,
    }
    cfg = registry_config(keys, source, unregistered)
    return h.Envoy(name, cfg, echo, concurrency=concurrency, extra_clusters=[h.static_cluster("registry", port)]).start()


@pytest.fixture
def gateways_to_stop():
    started: list = []
    yield started
    for g in started:
        g.cleanup()


def test_fetched_registry_first_fetch_makes_entries_effective(prerequisites, keys, echo, gateways_to_stop):
    server = registry_server(registry_entries())
    try:
        gw = start_fetched("registry-fetch-first", keys, echo, server.port)
        gateways_to_stop.append(gw)
        t = token(keys, "billing-batch", "payments:read payments:write")
        r = h.until_not_503(lambda: gw.get("/payments/1", token=t))
        up = h.expect_authenticated(r)
        assert up["headers"].get(OWNER_HEADER) == [OWNER]
        assert up["headers"].get("x-identity-scopes") == ["payments:read"]
        for client, status, reason in [
            ("stranger", 403, "identity_unregistered"),
            ("ops-bot", 401, "identity_disabled"),
            ("old-job", 401, "identity_expired"),
        ]:
            t = token(keys, client)
            h.expect_denied(gw.get("/payments/1", token=t), status, reason, token=t)
        assert server.count() == 1, server.fetches
        f = server.fetches[0]
        assert f["path"] == REGISTRY_PATH and f["host"] == f"127.0.0.1:{server.port}", f
        assert h.counter(gw, "registry.fetch_ok") == 1
        assert h.counter(gw, "registry.fetch_failed") == 0
    finally:
        server.stop()


def test_fetched_registry_requests_are_held_until_the_first_document(prerequisites, keys, echo, gateways_to_stop):
    server = registry_server(registry_entries())
    server.script = [("stall", 2.5)]  # the first fetch takes 2.5 s
    try:
        gw = start_fetched("registry-fetch-held", keys, echo, server.port, timeout_ms=6000)
        gateways_to_stop.append(gw)
        sent = time.monotonic()
        r = gw.get("/payments/1", token=token(keys, "billing-batch"))
        took = time.monotonic() - sent
        assert server.fetches, "the registry was fetched"
        assert sent < server.fetches[0]["answered"], "the request arrived while the first fetch was under way"
        up = h.expect_authenticated(r)
        assert up["headers"].get(OWNER_HEADER) == [OWNER]
        assert took < 6.0, took
        print(f"held for {took:.2f} s")
    finally:
        server.stop()


def test_fetched_registry_change_takes_effect_after_a_refresh(prerequisites, keys, echo, gateways_to_stop):
    server = registry_server(registry_entries())
    try:
        gw = start_fetched("registry-fetch-change", keys, echo, server.port, refresh_s=10)
        gateways_to_stop.append(gw)
        # one token throughout: a cached verified token must not keep the old registry's verdict
        t = token(keys, "billing-batch")
        h.expect_authenticated(h.until_not_503(lambda: gw.get("/payments/1", token=t)))
        first = server.fetches[0]["t"]
        changed = registry_entries()
        changed[0]["status"] = "disabled"
        server.put(REGISTRY_PATH, {"identities": changed})
        assert gw.get("/payments/1", token=t).status == 200, "not before the refresh"
        # The worker that fetched decides at once; the other adopts it on its next tick.
        assert h.every_worker_answers(lambda: gw.get("/payments/1", token=t).status, 401, timeout=25)
        h.expect_denied(gw.get("/payments/1", token=t), 401, "identity_disabled", token=t)
        assert server.count() == 2, server.fetches
        assert server.fetches[1]["t"] - first >= 9.0, "refreshed at the interval, not before"
        assert h.counter(gw, "registry.fetch_ok") == 2
    finally:
        server.stop()


def test_fetched_registry_down_at_start_is_503_then_recovers(prerequisites, keys, echo, gateways_to_stop):
    port = h.free_port()
    gw = start_fetched("registry-fetch-down", keys, echo, port, timeout_ms=500)
    gateways_to_stop.append(gw)
    t = token(keys, "billing-batch")
    sent = time.monotonic()
    r = gw.get("/payments/1", token=t)
    took = time.monotonic() - sent
    h.expect_denied(r, 503, "registry_unavailable", token=t)
    assert r.headers.get("www-authenticate") is None, "503 blames nobody"
    assert r.headers.get("retry-after") == "5", r
    assert r.json()["error"] == "temporarily_unavailable"
    assert took < 1.5, f"answered within timeout_ms (500 ms) or at the failed fetch, never a hang: {took:.2f} s"
    # the registry is consulted only for a valid token: nothing else waits for it
    sent = time.monotonic()
    h.expect_allowed(gw.get("/healthz"))
    h.expect_denied(gw.get("/payments/1"), 401, "token_missing")
    h.expect_denied(gw.get("/payments/1", token="a.b"), 401, "token_malformed")
    assert time.monotonic() - sent < 0.4, "requests that need no registry are not held"
    server = registry_server(registry_entries(), port=port)
    try:
        assert h.every_worker_answers(
            lambda: gw.get("/payments/1", token=token(keys, "billing-batch")).status, 200, timeout=35
        ), "traffic recovers without restart"
        up = h.expect_authenticated(gw.get("/payments/1", token=token(keys, "billing-batch")))
        assert up["headers"].get(OWNER_HEADER) == [OWNER]
        assert h.counter(gw, "registry.fetch_failed") >= 1
        assert h.counter(gw, "registry.fetch_ok") >= 1
        log = gw.log_text()
        assert "fetching the identity registry failed" in log, "the log says the fetch failed"
    finally:
        server.stop()


def test_fetched_registry_unanswered_holds_requests_until_timeout_ms_then_503(prerequisites, keys, echo, gateways_to_stop):
    server = registry_server(registry_entries())
    server.script = [("stall", 5.0)]  # the first fetch is never answered in time
    try:
        gw = start_fetched("registry-fetch-stalled", keys, echo, server.port, timeout_ms=2000)
        gateways_to_stop.append(gw)
        t = token(keys, "billing-batch")
        sent = time.monotonic()
        r = gw.get("/payments/1", token=t)
        took = time.monotonic() - sent
        assert server.arrivals and sent < server.arrivals[0] + 1.5, "the request arrived while the first fetch was under way"
        h.expect_denied(r, 503, "registry_unavailable", token=t)
        held_until = sent + took - server.arrivals[0]
        assert took >= 0.3 and 1.8 <= held_until < 3.0, \
            f"held until timeout_ms (2000 ms) after the fetch began: answered {held_until:.2f} s after it, held {took:.2f} s"
        # the retry (1 s of back-off later) is answered at once
        assert wait_until(lambda: gw.get("/payments/1", token=token(keys, "billing-batch")).status == 200, timeout=10)
        assert h.counter(gw, "registry.fetch_failed") == 1
        log = gw.log_text()
        assert "fetching the identity registry failed" in log
    finally:
        server.stop()


def test_fetched_registry_bad_documents_keep_the_last_good_registry(prerequisites, keys, echo, gateways_to_stop):
    server = registry_server(registry_entries())
    try:
        gw = start_fetched("registry-fetch-bad", keys, echo, server.port, refresh_s=10, timeout_ms=500)
        gateways_to_stop.append(gw)
        h.expect_authenticated(h.until_not_503(lambda: gw.get("/payments/1", token=token(keys, "billing-batch"))))
        no_owner = {"identities": [{"client_id": "billing-batch", "provider": "corp", "max_scopes": ["admin"]}]}
        server.script = [("body", b"<html>upstream error</html>"), ("body", json.dumps(no_owner).encode())]
        # refresh at 10 s, then retries after 1 and 2 s of back-off
        deadline = time.monotonic() + 40
        while time.monotonic() < deadline and (server.script or server.count() < 4):
            up = h.expect_authenticated(gw.get("/payments/1", token=token(keys, "billing-batch")))
            assert up["headers"].get(OWNER_HEADER) == [OWNER], "the last good registry stays in force"
            time.sleep(0.5)
        assert server.count() >= 4, server.fetches
        t = token(keys, "ops-bot")
        h.expect_denied(gw.get("/payments/1", token=t), 401, "identity_disabled", token=t)
        assert h.counter(gw, "registry.fetch_failed") == 2
        assert h.counter(gw, "registry.fetch_ok") >= 2
        log = gw.log_text()
        assert "/identities/0" in log, "the log names the faulty entry's path"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def shared_fetch(prerequisites, keys, echo):
    """Two workers, refresh every 10 s, one registry server."""
    server = registry_server(registry_entries())
    gw = start_fetched("registry-fetch-shared", keys, echo, server.port, refresh_s=10, concurrency=2)
    started = time.monotonic()
    yield gw, server, started
    gw.cleanup()
    server.stop()


def _wait_second_fetch(server: h.DocumentServer, started: float):
    assert wait_until(lambda: server.count() >= 2, timeout=max(1.0, started + 25 - time.monotonic())), server.fetches
    time.sleep(2.0)  # the other worker has ticked too


def test_fetched_registry_two_workers_one_fetch_per_refresh(shared_fetch, keys):
    gw, server, started = shared_fetch
    t = token(keys, "billing-batch")
    h.expect_authenticated(h.until_not_503(lambda: gw.get("/payments/1", token=t)))
    # a new connection per request spreads requests over both workers
    results = [gw.get("/payments/1", token=token(keys, "billing-batch")).status for _ in range(40)]
    assert results == [200] * 40, results
    if time.monotonic() - started < 9:
        time.sleep(1.0)
        assert server.count() == 1, f"{server.count()} fetches for 2 workers at start"
    _wait_second_fetch(server, started)
    assert server.count() == 2, f"{server.count()} fetches for 2 workers after one refresh: {server.fetches}"
    assert server.fetches[1]["t"] - server.fetches[0]["t"] >= 9.0, server.fetches
    results = [gw.get("/payments/1", token=token(keys, "billing-batch")).status for _ in range(20)]
    assert results == [200] * 20, results


def test_fetched_registry_refresh_sends_if_none_match_and_304_keeps_it(shared_fetch, keys):
    gw, server, started = shared_fetch
    h.expect_authenticated(h.until_not_503(lambda: gw.get("/payments/1", token=token(keys, "billing-batch"))))
    _wait_second_fetch(server, started)
    first, second = server.fetches[0], server.fetches[1]
    assert first["if_none_match"] is None, first
    assert first["status"] == 200 and first["etag"], first
    assert second["if_none_match"] == first["etag"], f"second fetch: {second}"
    assert second["status"] == 304, second
    # the registry is still in force after a 304, and a 304 is no failure
    up = h.expect_authenticated(gw.get("/payments/1", token=token(keys, "billing-batch", "payments:read admin")))
    assert up["headers"].get(OWNER_HEADER) == [OWNER]
    assert up["headers"].get("x-identity-scopes") == ["payments:read"]
    t = token(keys, "stranger")
    h.expect_denied(gw.get("/payments/1", token=t), 403, "identity_unregistered", token=t)
    assert h.counter(gw, "registry.fetch_failed") == 0
