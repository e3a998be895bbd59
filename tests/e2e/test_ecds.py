"""Scopegate configured through extension config discovery (ECDS) in Envoy.

The bootstrap and the first configuration are the repository's example
(envoy-example/ecds/), with ports and paths made local. New versions are
published the way Envoy's filesystem watch expects: written next to the
watched file, then renamed over it. While a background thread keeps sending
requests, each push must take effect without a restart and without a failed
request: every response is a valid decision of the configuration before or
after the push (one of them while the push lands, only the new one after it).
A broken version is refused, with one log line per fault naming its JSON path,
and the previous configuration keeps serving. A broken first version fails
closed until a valid one arrives.

The last tests use the resource as Istio sends it (no vm_id, the plugin named
<namespace>.<name>, no environment variable).
"""

from __future__ import annotations

import copy
import json
import os
import threading
import time
import uuid

import pytest
from cryptography.hazmat.primitives import serialization

import harness as h

EXAMPLE = os.path.join(h.REPO_ROOT, "envoy-example", "ecds")
KEYS = os.path.join(h.REPO_ROOT, "envoy-example", "keys")
STAT = "extension_config_discovery.http_filter.{}.{}"
# After a push is seen applied, how long old decisions may still show up
# (other workers taking the update, requests already in flight).
SETTLE_S = 0.5
# Responses to collect under each configuration before the next push.
PER_PHASE = 40


# --------------------------------------------------------------------------
# The example, made runnable here
# --------------------------------------------------------------------------


def example_bootstrap() -> dict:
    return h.load_yaml_file(os.path.join(EXAMPLE, "envoy.yaml"))


def example_resource() -> dict:
    doc = h.load_yaml_file(os.path.join(EXAMPLE, "config", "scopegate.yaml"))
    (res,) = doc["resources"]
    return res


def example_config() -> dict:
    value = example_resource()["typed_config"]["config"]["configuration"]["value"]
    return json.loads(value)


class EcdsEnvoy:
    """The example bootstrap on free ports, its ECDS file in a temp dir."""

    def __init__(self, echo, name="ecds", filter_name="scopegate", concurrency=2):
        self.envoy = h.Envoy(name, None, echo, concurrency=concurrency)
        self.watch_dir = os.path.join(self.envoy.dir, "ecds")
        os.makedirs(self.watch_dir)
        self.resource_path = os.path.join(self.watch_dir, "scopegate.yaml")
        self.filter_name = filter_name
        boot = example_bootstrap()
        boot["admin"]["address"]["socket_address"]["port_value"] = 0
        (listener,) = boot["static_resources"]["listeners"]
        listener["name"] = "main"  # what the harness looks up
        listener["address"]["socket_address"]["port_value"] = 0
        hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
        (flt,) = [f for f in hcm["http_filters"] if "config_discovery" in f]
        flt["name"] = filter_name
        src = flt["config_discovery"]["config_source"]["path_config_source"]
        src["path"] = self.resource_path
        src["watched_directory"]["path"] = self.watch_dir
        (cluster,) = boot["static_resources"]["clusters"]
        endpoint = cluster["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]
        endpoint["address"]["socket_address"]["port_value"] = echo.port
        with open(self.envoy.config_path, "w") as f:
            json.dump(boot, f, indent=2)  # JSON is YAML
        self.version = 0

    def publish(self, resource: dict):
        """Write temp + rename: the watch sees one complete file moved in."""
        self.version += 1
        doc = {"version_info": str(self.version), "resources": [resource]}
        tmp = os.path.join(self.watch_dir, f".scopegate.yaml.{uuid.uuid4().hex}")
        with open(tmp, "w") as f:
            json.dump(doc, f)
        os.rename(tmp, self.resource_path)

    def stat(self, name: str) -> int:
        return self.envoy.stats().get(STAT.format(self.filter_name, name), 0)

    def wait_stat(self, name: str, at_least: int, timeout: float = 10.0) -> int:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            v = self.stat(name)
            if v >= at_least:
                return v
            time.sleep(0.02)
        raise AssertionError(f"{name} stayed below {at_least} ({self.stat(name)})\n" + h.tail(self.envoy.log_text()))


def scopegate_resource(config, wasm: str) -> dict:
    """The example's TypedExtensionConfig with `config` and a local .wasm."""
    res = copy.deepcopy(example_resource())
    wasm_cfg = res["typed_config"]["config"]
    wasm_cfg["vm_config"]["code"]["local"]["filename"] = wasm
    wasm_cfg["configuration"]["value"] = config if isinstance(config, str) else json.dumps(config, indent=2)
    return res


def istio_resource(config: dict, wasm: str) -> dict:
    """What Istio makes of envoy-example/istio/wasmplugin.yaml (namespace
    payments): pilot/pkg/model/extensions.go, with istio-agent's local file."""
    key_values = {"ISTIO_META_WASM_PLUGIN_RESOURCE_VERSION": "1"}
    return {
        "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
        "name": "payments.scopegate",
        "typed_config": {
            "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
            "config": {
                "name": "payments.scopegate",
                "root_id": "scopegate",
                "vm_config": {
                    "runtime": "envoy.wasm.runtime.v8",
                    "code": {"local": {"filename": wasm}},
                    "environment_variables": {"key_values": key_values},
                },
                "configuration": {
                    "@type": "type.googleapis.com/google.protobuf.StringValue",
                    # protojson of a Struct: compact
                    "value": json.dumps(config, separators=(",", ":")),
                },
            },
        },
    }


@pytest.fixture
def ecds(prerequisites, echo):
    made = []

    def make(**kw) -> EcdsEnvoy:
        e = EcdsEnvoy(echo, **kw)
        made.append(e)
        return e

    yield make
    for e in made:
        e.envoy.cleanup()


def demo_key(kid: str, file: str) -> h.Key:
    with open(os.path.join(KEYS, file), "rb") as f:
        private = serialization.load_pem_private_key(f.read(), password=None)
    return h.Key(kid, "RSA", private)


def corp_token(scope: str, client_id: str) -> str:
    now = int(time.time())
    claims = {
        "iss": "https://idp.example.com",
        "aud": "payments-api",
        "sub": "svc-" + client_id,
        "client_id": client_id,
        "scope": scope,
        "iat": now,
        "exp": now + 1800,
        "jti": uuid.uuid4().hex,
    }
    return h.mint(demo_key("corp-2026", "corp-rs256.pk8.pem"), claims, alg="RS256")


# --------------------------------------------------------------------------
# Configurations and the decisions they imply
# --------------------------------------------------------------------------

ALLOW = (200, None)


def rule(cfg: dict, name: str) -> dict:
    return [r for r in cfg["rules"] if r["name"] == name][0]


def configurations() -> dict[str, dict]:
    a = example_config()
    # B: a new rule
    b = copy.deepcopy(a)
    b["rules"].append({"name": "reports", "methods": ["GET"], "path": "/reports/*/summary", "scopes": ["reports:read"]})
    # C: a scope removed from a rule
    c = copy.deepcopy(b)
    rule(c, "refund")["scopes"] = ["payments:write"]
    # D: a client newly denied (the read rule admits only billing-batch)
    d = copy.deepcopy(c)
    rule(d, "read")["clients"] = ["billing-batch"]
    # F: after the broken push, a good one again (the read rule opens up)
    f = copy.deepcopy(d)
    del rule(f, "read")["clients"]
    return {"A": a, "B": b, "C": c, "D": d, "F": f}


def broken(cfg: dict) -> dict:
    bad = copy.deepcopy(cfg)
    bad["rules"][1]["scopes"] = "payments:read"
    bad["default_action"] = "maybe"
    return bad


class Spec:
    def __init__(self, name, method, target, token, expect: dict[str, tuple[int, str | None]]):
        self.name, self.method, self.target, self.token, self.expect = name, method, target, token, expect


def specs() -> list[Spec]:
    reports = corp_token("reports:read", "billing-batch")
    writer = corp_token("payments:write", "billing-batch")
    tool = corp_token("payments:read", "reporting-tool")
    reader = corp_token("payments:read", "billing-batch")
    every = lambda outcome: {k: outcome for k in "ABCDF"}
    return [
        Spec("new rule", "GET", "/reports/q1/summary", reports,
             {"A": (403, "route_not_allowed"), "B": ALLOW, "C": ALLOW, "D": ALLOW, "F": ALLOW}),
        Spec("removed scope", "POST", "/payments/42/refunds", writer,
             {"A": (403, "insufficient_scope"), "B": (403, "insufficient_scope"), "C": ALLOW, "D": ALLOW, "F": ALLOW}),
        Spec("denied client", "GET", "/payments/42", tool,
             {"A": ALLOW, "B": ALLOW, "C": ALLOW, "D": (403, "client_not_allowed"), "F": ALLOW}),
        Spec("reader", "GET", "/payments/42", reader, every(ALLOW)),
        Spec("public", "GET", "/healthz", None, every(ALLOW)),
        Spec("no token", "GET", "/payments/42", None, every((401, "token_missing"))),
    ]


def outcome(resp: h.Response) -> tuple[int, str | None]:
    if resp.status == 200 and resp.headers.get("x-echo") == "1":
        return ALLOW
    try:
        return resp.status, resp.json().get("reason")
    except ValueError:
        return resp.status, f"<not JSON: {resp.body[:80]!r}>"


def send(envoy: h.Envoy, spec: Spec) -> h.Response:
    hdrs = [("authorization", f"Bearer {spec.token}")] if spec.token else []
    body = b"" if spec.method == "POST" else None
    # no marker: the upstream's x-echo header says it was reached, and the
    # echo server is not searched once per request
    return h.http1_request(envoy.port, spec.method, spec.target, hdrs, body, marker=False, timeout=5)


class Traffic:
    """Clients sending requests one after another until stopped, bounded in
    count and time. Several clients keep Envoy busy while the upstream (a
    Python echo server) is slow to answer."""

    def __init__(self, envoy: h.Envoy, specs: list[Spec], clients=3, max_requests=30000, max_seconds=45.0):
        self.envoy, self.specs = envoy, specs
        self.max_requests, self.max_seconds = max_requests, max_seconds
        self.records = []  # (t_send, t_recv, spec index, outcome or None, error or None)
        self.stop = threading.Event()
        self.lock = threading.Lock()
        self.threads = [
            threading.Thread(target=self._run, args=(c,), name=f"ecds-traffic-{c}", daemon=True)
            for c in range(clients)
        ]

    def start(self):
        self.end = time.monotonic() + self.max_seconds
        for t in self.threads:
            t.start()

    def join(self, timeout: float):
        for t in self.threads:
            t.join(timeout)

    def is_alive(self) -> bool:
        return any(t.is_alive() for t in self.threads)

    def _run(self, client: int):
        i = client
        while not self.stop.is_set() and time.monotonic() < self.end:
            with self.lock:
                if len(self.records) >= self.max_requests:
                    return
            k = i % len(self.specs)
            t0 = time.monotonic()
            try:
                got, err = outcome(send(self.envoy, self.specs[k])), None
            except Exception as e:  # connection refused / reset / timeout
                got, err = None, repr(e)
            with self.lock:
                self.records.append((t0, time.monotonic(), k, got, err))
            i += 1

    def count(self) -> int:
        with self.lock:
            return len(self.records)

    def wait_for(self, more: int, timeout: float = 10.0):
        target = self.count() + more
        deadline = time.monotonic() + timeout
        while self.count() < target:
            assert self.is_alive(), "traffic stopped early"
            assert time.monotonic() < deadline, "traffic too slow"
            time.sleep(0.01)


# --------------------------------------------------------------------------
# Tests
# --------------------------------------------------------------------------


def test_configuration_changes_under_traffic(ecds):
    wasm = h.find_wasm()
    cfgs = configurations()
    sp = specs()
    e = ecds()
    e.publish(scopegate_resource(cfgs["A"], wasm))
    e.envoy.start()
    env = e.envoy
    assert e.stat("update_success") == 1
    for s in sp:  # the example configuration, as shipped
        assert outcome(send(env, s)) == s.expect["A"], s.name

    traffic = Traffic(env, sp)
    traffic.start()
    # (name, pushed at, seen applied at); A was there from the start
    versions = [("A", float("-inf"), float("-inf"))]
    try:
        traffic.wait_for(PER_PHASE)
        for name, probe in (("B", sp[0]), ("C", sp[1]), ("D", sp[2])):
            versions.append(push(e, traffic, cfgs[name], name, probe, wasm))

        # (4) a broken version is refused; D keeps serving
        ok_before, rejected_before = e.stat("update_success"), e.stat("update_rejected")
        fail_before, reload_before = e.stat("config_fail"), e.stat("config_reload")
        e.publish(scopegate_resource(broken(cfgs["D"]), wasm))
        e.wait_stat("update_rejected", rejected_before + 1)
        assert e.stat("config_fail") == fail_before + 1
        assert e.stat("update_success") == ok_before
        time.sleep(SETTLE_S)
        traffic.wait_for(2 * PER_PHASE)
        log = env.log_text()
        assert "invalid configuration: /rules/1/scopes: expected an array of strings" in log, h.tail(log)
        assert "invalid configuration: /default_action: " in log, h.tail(log)
        for s in sp:
            assert outcome(send(env, s)) == s.expect["D"], f"after the refused push: {s.name}"

        # ...and the next good version still applies
        versions.append(push(e, traffic, cfgs["F"], "F", sp[2], wasm))
        assert e.stat("config_reload") > reload_before
    finally:
        traffic.stop.set()
        traffic.join(timeout=15)
    assert not traffic.is_alive()

    records = traffic.records
    failures = [r for r in records if r[4] is not None or r[3] is None or r[3][0] >= 500]
    assert not failures, f"{len(failures)} failed requests, e.g. {failures[:5]}"
    wrong = []
    for t_send, t_recv, k, got, _ in records:
        lo = max(i for i, (_, _, seen) in enumerate(versions) if seen + SETTLE_S <= t_send)
        hi = max(i for i, (_, pushed, _) in enumerate(versions) if pushed <= t_recv)
        allowed = {versions[i][0] for i in range(lo, hi + 1)}
        if got not in {sp[k].expect[v] for v in allowed}:
            wrong.append((sp[k].name, got, sorted(allowed)))
    assert not wrong, f"{len(wrong)} responses fit no configuration in force, e.g. {wrong[:5]}"
    # constant traffic: requests before, during and after every push
    for i, (name, pushed, seen) in enumerate(versions[1:], start=1):
        nxt = versions[i + 1][1] if i + 1 < len(versions) else float("inf")
        during = [r for r in records if r[0] <= seen and r[1] >= pushed]  # overlapping the switch
        after = [r for r in records if seen + SETTLE_S < r[0] and r[1] < nxt]
        assert during, f"no request in flight while {name} was pushed"
        assert len(after) >= PER_PHASE // 2, f"too few requests under {name} alone"
    assert len(records) >= 6 * PER_PHASE


def push(e: EcdsEnvoy, traffic: Traffic, cfg: dict, name: str, probe: Spec, wasm: str):
    before = e.stat("update_success")
    fail = e.stat("config_fail")
    pushed = time.monotonic()
    e.publish(scopegate_resource(cfg, wasm))
    e.wait_stat("update_success", before + 1)
    assert e.stat("config_fail") == fail
    deadline = time.monotonic() + 5
    while outcome(send(e.envoy, probe)) != probe.expect[name]:
        assert time.monotonic() < deadline, f"configuration {name} did not take effect ({probe.name})"
        time.sleep(0.01)
    seen = time.monotonic()
    time.sleep(SETTLE_S)
    traffic.wait_for(PER_PHASE)  # answered by this configuration alone
    return name, pushed, seen


def test_invalid_first_version_fails_closed_until_fixed(ecds):
    wasm = h.find_wasm()
    cfg = example_config()
    missing = Spec("no token", "GET", "/payments/42", None, {})
    e = ecds(name="ecds-first", concurrency=1)
    e.publish(scopegate_resource(broken(cfg), wasm))
    e.envoy.start()
    assert e.stat("config_fail") == 1 and e.stat("update_success") == 0
    r = send(e.envoy, missing)
    assert r.status == 500 and r.headers.get("x-echo") is None, r
    e.publish(scopegate_resource(cfg, wasm))
    e.wait_stat("update_success", 1)
    deadline = time.monotonic() + 5
    while outcome(send(e.envoy, missing)) != (401, "token_missing"):
        assert time.monotonic() < deadline, "the valid version did not take effect"
        time.sleep(0.02)


def test_istio_shaped_resource_refuses_a_broken_configuration(ecds):
    """Istio sets no vm_id and the WasmPlugin example sets no variable: Scopegate
    recognizes Envoy by itself, so a broken configuration is refused like
    above instead of being served as deny-all (500 config_invalid)."""
    wasm = h.find_wasm()
    cfg = example_config()
    missing = Spec("no token", "GET", "/payments/42", None, {})
    e = ecds(name="istio", filter_name="payments.scopegate", concurrency=1)
    e.publish(istio_resource(cfg, wasm))
    e.envoy.start()
    assert outcome(send(e.envoy, missing)) == (401, "token_missing")
    ok, rejected = e.stat("update_success"), e.stat("update_rejected")
    e.publish(istio_resource(broken(cfg), wasm))
    e.wait_stat("update_rejected", rejected + 1)
    assert e.stat("config_fail") == 1 and e.stat("update_success") == ok
    assert "invalid configuration: /rules/1/scopes: expected an array of strings" in e.envoy.log_text()
    assert outcome(send(e.envoy, missing)) == (401, "token_missing")
