"""An invalid filter configuration is refused at start-up (Envoy exits or the
listener is not created) and the log names the JSON path of each fault."""

import pytest

import harness as h


def _broken_scopes(cfg):
    cfg["rules"][2]["scopes"] = "payments:write refunds:create"
    return ["/rules/2/scopes"]


def _hmac_algorithm(cfg):
    cfg["providers"][0]["algorithms"] = ["RS256", "HS256"]
    return ["/providers/0/algorithms"]


def _unknown_top_level_field(cfg):
    cfg["bogus_field"] = True
    return ["/bogus_field"]


def _unknown_default_action(cfg):
    cfg["default_action"] = "maybe"
    return ["/default_action"]


def _rule_unknown_provider(cfg):
    cfg["rules"][3]["providers"] = ["nobody"]
    return ["/rules/3/providers/0"]


FAULTS = {
    "rule_scopes_is_string": _broken_scopes,
    "provider_algorithm_hs256": _hmac_algorithm,
    "unknown_top_level_field": _unknown_top_level_field,
    "unknown_default_action": _unknown_default_action,
    "rule_names_unknown_provider": _rule_unknown_provider,
}


def _start_expect_failure(name, cfg, echo):
    envoy = h.Envoy(name, cfg, echo)
    try:
        how, log = envoy.start_expect_failure()
    finally:
        envoy.cleanup()
    assert how.startswith("exited:") or how == "no-listener", how
    if how.startswith("exited:"):
        assert how != "exited:0", f"envoy exited 0 with an invalid filter config\n{h.tail(log)}"
    return how, log


@pytest.mark.parametrize("case", list(FAULTS))
def test_invalid_config_refused_with_json_path(prerequisites, keys, echo, case):
    cfg = h.base_filter_config(keys)
    paths = FAULTS[case](cfg)
    _, log = _start_expect_failure(f"bad-{case}", cfg, echo)
    for p in paths:
        assert p in log, f"{p!r} not in Envoy log:\n{h.tail(log, 40)}"


def test_all_faults_reported_together(prerequisites, keys, echo):
    cfg = h.base_filter_config(keys)
    paths = []
    for fault in (_broken_scopes, _hmac_algorithm, _unknown_top_level_field):
        paths += fault(cfg)
    _, log = _start_expect_failure("bad-combined", cfg, echo)
    missing = [p for p in paths if p not in log]
    assert not missing, f"paths {missing} not in Envoy log:\n{h.tail(log, 40)}"


def test_config_not_json_refused(prerequisites, echo):
    _start_expect_failure("bad-not-json", "{this is not json", echo)


def test_valid_config_is_accepted(gw):
    # the base configuration loads: listener up, filter answering
    assert gw.port
    assert gw.get("/healthz").status == 200
