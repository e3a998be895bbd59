"""Envoy is recognized as Envoy whether or not the bootstrap sets a `vm_id`
(it is optional, and Istio sets none): metrics, access-log properties and the
refusal of a broken configuration all depend on it. No user setting is
needed, and the start-up log says which host was recognized and why."""

import json

import pytest

import harness as h


@pytest.mark.parametrize("vm_id", ["scopegate", None], ids=["vm_id", "no_vm_id"])
def test_envoy_is_recognized_with_and_without_vm_id(prerequisites, keys, echo, vm_id):
    gw = h.Envoy(f"host-{vm_id or 'none'}", h.base_filter_config(keys), echo, vm_id=vm_id).start()
    try:
        log = gw.log_text()
        assert "host Envoy: all features (the host describes its xds.node)" in log, h.tail(log)
        assert "not supported" not in log and "NYI" not in log, h.tail(log)
        r = gw.get("/payments/1")
        h.expect_denied(r, 401, "token_missing")
        # Envoy-only features are on: the counter exists and counted the denial.
        assert gw.scopegate_counter("requests.token_missing") == 1, gw.stats()
    finally:
        gw.stop()


def test_envoy_without_vm_id_refuses_a_broken_configuration(prerequisites, keys, echo):
    """Taken for Kong, the filter would accept a broken configuration and serve
    it as deny-all; Envoy refuses it and keeps the listener from coming up."""
    cfg = h.base_filter_config(keys)
    cfg["rules"][1]["scopes"] = "not-a-list"
    gw = h.Envoy("host-broken-no-vm-id", cfg, echo, vm_id=None)
    how, log = gw.start_expect_failure()
    assert how in ("no-listener",) or how.startswith("exited:"), how
    assert "/rules/1/scopes" in log, h.tail(log)


def test_duplicate_members_are_refused_by_envoy_with_their_path(prerequisites, keys, echo):
    """`"mode": "enforce"` then `"mode": "dry_run"`: a JSON reader keeps one of
    them, so the document is refused instead of silently running in dry run."""
    text = json.dumps(h.base_filter_config(keys, mode="enforce"))
    assert text.endswith("}")
    text = text[:-1] + ', "mode": "dry_run"}'
    gw = h.Envoy("duplicate-mode", text, echo)
    how, log = gw.start_expect_failure()
    assert 'duplicate member \\"mode\\"' in log or 'duplicate member "mode"' in log, h.tail(log)
