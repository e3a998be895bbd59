"""`scripts/demo --idp --once`, the sender-constrained demo (scripts/demo_idp.py),
runs to the end and shows what it says: a DPoP-bound token with a fresh proof
allowed; the stolen token without a proof, as Bearer, with the proof replayed
or with the thief's own proof refused 401 with the reason; a
certificate-bound token allowed with its certificate, refused without it or
with another. Tokens and proofs never appear in what it prints, and it leaves
no process behind."""

from __future__ import annotations

import os
import re
import subprocess

import pytest

import harness as h

DEMO = os.path.join(h.REPO_ROOT, "scripts", "demo")

EXPECTED = [
    # (title fragment, status, reason or None for allowed)
    ("DPoP-bound token with a fresh proof: allowed", 200, None),
    ("sent without a proof", 401, "dpop_proof_missing"),
    ("sent as a Bearer token", 401, "dpop_binding_mismatch"),
    ("with the proof replayed", 401, "dpop_proof_replayed"),
    ("proof of the thief's own key", 401, "dpop_binding_mismatch"),
    ("certificate-bound token over TLS with its certificate: allowed", 200, None),
    ("the same token without the certificate", 401, "mtls_certificate_missing"),
    ("with another client certificate", 401, "mtls_binding_mismatch"),
]


@pytest.fixture(scope="module")
def demo_output(prerequisites) -> str:
    env = {k: v for k, v in os.environ.items() if k not in ("ENVOY_BIN", "SCOPEGATE_WASM")}
    r = subprocess.run([DEMO, "--idp", "--once"], cwd=h.REPO_ROOT, env=env, stdin=subprocess.DEVNULL,
                       capture_output=True, timeout=900)
    out = r.stdout.decode("utf-8", "replace")
    assert r.returncode == 0, f"scripts/demo --idp --once exited {r.returncode}\n{out}\n{r.stderr.decode()[-3000:]}"
    return out


def sections(out: str) -> dict[str, list[str]]:
    """Each `# title` with the lines printed under it."""
    found: dict[str, list[str]] = {}
    current = None
    for line in out.splitlines():
        if line.startswith("# "):
            current = line[2:]
            found[current] = []
        elif current is not None and line.strip():
            found[current].append(line)
    return found


@pytest.mark.parametrize("fragment,status,reason", EXPECTED, ids=[e[0][:40] for e in EXPECTED])
def test_demo_idp_shows(demo_output, fragment, status, reason):
    matches = [(t, lines) for t, lines in sections(demo_output).items() if fragment in t]
    assert len(matches) == 1, f"no single section with {fragment!r} in:\n{demo_output}"
    title, lines = matches[0]
    assert lines and lines[0].startswith("$ curl "), lines
    status_lines = [l for l in lines if re.match(r"\s+HTTP/\S+ \d{3}", l)]
    assert status_lines and f" {status}" in status_lines[0], (title, lines)
    if reason is None:
        assert any("upstream got" in l and "credentials not forwarded" in l for l in lines), lines
    else:
        assert any(f'"reason":"{reason}"' in l for l in lines), lines
        assert any(l.strip().lower().startswith("www-authenticate:") for l in lines), lines


def test_demo_idp_hides_credentials(demo_output):
    assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.", demo_output), "a JWT is printed"
    assert "<dpop-token>" in demo_output and "<proof>" in demo_output and "<mtls-token>" in demo_output


def test_demo_idp_leaves_nothing_running(demo_output):
    ps = subprocess.run(["ps", "-eo", "args"], capture_output=True, text=True).stdout
    assert "scopegate-e2e-demo-idp-" not in ps, "the demo's Envoy is still running"
