"""Fixtures for the Kong-host suite: keys, the raw echo upstream, one nginx
(2 workers) per filter configuration, started lazily and shared by the
session, and the nginx error log tail on failure.

Run: KONG_NGINX_BIN=$(scripts/kong-host | tail -1) \\
     SCOPEGATE_WASM=target/wasm32-wasip1/release/scopegate.wasm \\
     .venv/bin/pytest tests/kong
"""

from __future__ import annotations

import os

import pytest

import kong_harness as kh
from kong_harness import e2e


def pytest_configure(config):
    config.addinivalue_line("markers", "h2: HTTP/2 (h2c prior knowledge) tests")


def _prerequisites_missing() -> str | None:
    nginx = kh.find_nginx()
    if not nginx or not os.path.exists(nginx):
        return "nginx with ngx_wasm_module not found: set KONG_NGINX_BIN=$(scripts/kong-host | tail -1)"
    wasm = kh.find_wasm()
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
def keys() -> e2e.KeySet:
    return e2e.KeySet()


@pytest.fixture(scope="session")
def echo():
    server = kh.RawEcho()
    yield server
    server.stop()


class _Hosts:
    """Starts one nginx per named configuration, on first use."""

    def __init__(self, keys, echo):
        self.keys = keys
        self.echo = echo
        self.started: dict[str, kh.Nginx] = {}

    def get(self, name: str, config=None, **overrides) -> kh.Nginx:
        if name not in self.started:
            cfg = config if config is not None else kh.kong_filter_config(self.keys, **overrides)
            self.started[name] = kh.Nginx(name, cfg, self.echo).start()
        return self.started[name]

    def close(self):
        for n in self.started.values():
            n.cleanup()
        self.started.clear()


@pytest.fixture(scope="session")
def hosts(prerequisites, keys, echo):
    g = _Hosts(keys, echo)
    yield g
    g.close()
    kh.stop_all()


@pytest.fixture(scope="session")
def kong(hosts) -> kh.Nginx:
    """Base configuration, audit log on for every decision."""
    return hosts.get("base", audit_log="all")


@pytest.fixture(scope="session")
def kong_allow(hosts) -> kh.Nginx:
    return hosts.get("allow", default_action="allow")


@pytest.fixture
def tok(keys):
    """Mint a valid corp RS256 token: tok("payments:read", client_id="x", ...)."""

    def make(scope=None, alg="RS256", key=None, **claim_overrides):
        return e2e.mint(key or keys.for_alg(alg), e2e.claims(scope, **claim_overrides), alg=alg)

    return make


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    rep = outcome.get_result()
    if rep.when != "call" or not rep.failed:
        return
    hosts = [v for v in getattr(item, "funcargs", {}).values() if isinstance(v, kh.Nginx)]
    if not hosts:
        hosts = list(kh._RUNNING)
    noise = ("closed keepalive connection", "recv() failed", "client closed connection")
    for n in hosts:
        text = "\n".join(l for l in n.log_text().splitlines() if not any(x in l for x in noise))
        rep.sections.append((f"nginx '{n.name}' error log tail ({n.log_path})", kh.tail(text, 40)))
