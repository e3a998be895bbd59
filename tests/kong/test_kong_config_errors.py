"""A broken configuration in Kong's host: the filter must never return false
from on_configure (that kills the worker for good and hangs every port). It
answers every request through the filter with 500 `config_invalid`, logs the
faults, and the server keeps answering, the filter-less server block too."""

import time

import pytest

import kong_harness as kh
from kong_harness import e2e


def _broken_scopes(cfg):
    cfg["rules"][2]["scopes"] = "payments:write refunds:create"
    return "/rules/2/scopes"


def _rule_unknown_provider(cfg):
    cfg["rules"][3]["providers"] = ["nobody"]
    return "/rules/3/providers/0"


def _unknown_top_level_field(cfg):
    cfg["bogus_field"] = True
    return "/bogus_field"


FAULTS = {
    "rule_scopes_is_string": _broken_scopes,
    "rule_names_unknown_provider": _rule_unknown_provider,
    "unknown_top_level_field": _unknown_top_level_field,
}


@pytest.fixture(scope="module", params=list(FAULTS) + ["not_json"])
def broken(request, keys, echo, prerequisites):
    if request.param == "not_json":
        cfg, path = "{this is not json", None
    else:
        cfg = kh.kong_filter_config(keys)
        path = FAULTS[request.param](cfg)
    n = kh.Nginx(f"broken-{request.param}", cfg, echo)
    n.start()
    yield n, path
    n.cleanup()


def _expect_config_invalid(r):
    assert r.status == 500, r
    assert not r.reached_upstream, r
    body = r.json()
    assert body.get("reason") == "config_invalid", body


def test_every_request_answered_500_config_invalid(broken, tok):
    n, _ = broken
    for _ in range(6):  # both workers
        _expect_config_invalid(n.get("/payments/1", token=tok("payments:read")))
        _expect_config_invalid(n.get("/healthz"))


def test_h2_request_answered_500_config_invalid(broken):
    n, _ = broken
    _expect_config_invalid(n.h2_request("GET", "/healthz"))


def test_fault_logged_with_json_path(broken):
    n, path = broken
    assert n.wait_log(r"invalid configuration"), kh.tail(n.log_text())
    if path:
        assert path in n.log_text(), kh.tail(n.log_text())


def test_no_dead_worker_and_no_hung_port(broken, echo):
    n, _ = broken
    time.sleep(0.5)
    assert n.dead_worker_lines() == [], n.dead_worker_lines()
    assert len(n.worker_pids()) == 2
    # the server block without the filter still answers, several times (both workers)
    for _ in range(6):
        r = n.request("GET", "/plain", port=n.plain_port)
        e2e.expect_allowed(r)
