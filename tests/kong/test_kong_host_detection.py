"""In Kong's host the filter recognizes that it is not in Envoy without any
setting, says so at start, and its probe leaves no error or alert in the log
(Kong's host logs one for every Envoy property it lacks, and for any dotted
property outside a request). A duplicate member is a broken configuration
here too: 500 config_invalid, the worker alive."""

import json
import time

import kong_harness as kh
from kong_harness import e2e


def test_the_host_is_recognized_as_portable_silently(kong):
    deadline = time.monotonic() + 10
    while kong.log_text().count("scopegate 0.1.0 started") < 2 and time.monotonic() < deadline:
        time.sleep(0.1)
    log = kong.log_text()
    started = [l for l in log.splitlines() if "scopegate 0.1.0 started" in l]
    assert len(started) >= 2, kh.tail(log)  # one per worker
    assert all("host portable (Kong-safe)" in l for l in started), started
    for bad in ("property not supported", "NYI", "cannot get scoped properties"):
        assert bad not in log, f"{bad!r} in the error log:\n{kh.tail(log)}"


def test_duplicate_members_fail_closed_without_killing_the_worker(keys, echo, prerequisites):
    text = json.dumps(kh.kong_filter_config(keys, mode="enforce"), separators=(",", ":"))
    text = text[:-1] + ',"mode":"dry_run"}'
    n = kh.Nginx("duplicate-mode", text, echo).start()
    try:
        r = n.get("/payments/1", token=e2e.mint(keys.for_alg("RS256"), e2e.claims("payments:read"), alg="RS256"))
        e2e.expect_denied(r, 500, "config_invalid")
        assert 'duplicate member \\"mode\\"' in n.log_text() or 'duplicate member "mode"' in n.log_text()
        assert not n.dead_worker_lines(), n.dead_worker_lines()
    finally:
        n.cleanup()
