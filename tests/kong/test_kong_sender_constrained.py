"""Sender-constrained access tokens (CONTRACT §1.4) in Kong's host, with
tokens from the real authorization server of the Envoy suite (tests/idp,
driven by tests/e2e/idp.py): one nginx (2 workers) whose filtered server
block also listens with TLS and requests client certificates
(`ssl_verify_client optional`), the AS's JWKS inlined in the provider.

Certificate-bound tokens (RFC 8705): the filter hashes the PEM of nginx's
`$ssl_client_raw_cert`, read as the property `ngx.ssl_client_raw_cert`
(ngx_wasm_module maps any `ngx.<name>` to the nginx variable `<name>`; it
answers the PEM on a TLS connection with a client certificate, an empty value
on one without, and "not found" on a plain connection). With its certificate:
allowed; another certificate of the same CA: `mtls_binding_mismatch`; none,
over TLS or over plain HTTP: `mtls_certificate_missing`.

DPoP-bound tokens (RFC 9449): a valid proof is allowed (the `DPoP` header
reaches the upstream blanked, like the token: this host cannot remove a
header); a proof for another method, another URL, too old, with a wrong
`ath`, `alg: none`, HS256, a private member in `jwk`, two `DPoP` headers:
`dpop_proof_invalid`; no proof: `dpop_proof_missing`; another key's proof or
the bound token sent as `Bearer`: `dpop_binding_mismatch`; a replayed proof:
`dpop_proof_replayed` on the worker that saw it (replay detection is per
worker in this host: see test_dpop_replay_refused_on_the_same_worker).

The URL a proof must name is the one the client used: ngx_wasm_module makes
`:authority` from the server block's `server_name` and the local port
(ngx_proxy_wasm_maps.c, `ngx_proxy_wasm_maps_get_authority`), so the filter
reads the `Host` the client sent first; a proof for
`https://scopegate.kong.test:<tls_port>/...` (the server_name) is refused.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest

import kong_harness as kh
from kong_harness import e2e

import idp  # tests/e2e/idp.py (tests/e2e is on sys.path through kong_harness)

DPOP_ALGORITHMS = ["ES256", "RS256", "PS256", "EdDSA"]
DPOP_MAX_AGE_S = 60
SERVER_NAME = "scopegate.kong.test"  # the filtered server block's server_name (kong_harness)


# --------------------------------------------------------------------------
# The authorization server, certificates, the gateway
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> idp.TestCA:
    return idp.TestCA()


@pytest.fixture(scope="module")
def auth_server(prerequisites, ca):
    with idp.AuthorizationServer(ca=ca) as server:
        yield server


@pytest.fixture(scope="module")
def mtls_cert(ca) -> idp.IssuedCert:
    return ca.client_cert("mtls-client")


@pytest.fixture(scope="module")
def other_cert(ca) -> idp.IssuedCert:
    return ca.client_cert("other-app")


def gateway_config(auth_server: idp.AuthorizationServer) -> dict:
    provider = auth_server.provider(
        jwks={"inline": auth_server.jwks()},  # no fetch: each worker has the keys at once
        proof_of_possession={
            "mtls": "if_bound",
            "dpop": "if_bound",
            "dpop_algorithms": DPOP_ALGORITHMS,
            "dpop_max_age_s": DPOP_MAX_AGE_S,
        },
    )
    cfg = idp.sender_constrained_config(provider)
    assert len(kh.nginx_quote(kh.filter_config_text(cfg))) <= kh.NGINX_MAX_TOKEN
    return cfg


@pytest.fixture(scope="module")
def kong(prerequisites, echo, ca, auth_server) -> kh.Nginx:
    n = kh.Nginx("sender-constrained", gateway_config(auth_server), echo, tls=ca.tls_listener())
    n.start()
    try:
        yield n
    finally:
        n.cleanup()


@pytest.fixture(scope="module")
def dpop_key() -> idp.DpopKey:
    return idp.DpopKey("ES256")


@pytest.fixture(scope="module")
def dpop_token(auth_server, dpop_key) -> str:
    return auth_server.dpop_token("dpop-client", "orders:read", dpop_key)


@pytest.fixture(scope="module")
def mtls_token(auth_server, mtls_cert) -> str:
    return auth_server.mtls_token("mtls-client", "orders:read", mtls_cert)


@pytest.fixture(scope="module")
def bearer_token(auth_server) -> str:
    return auth_server.bearer_token("bearer-client", "orders:read")


# --------------------------------------------------------------------------
# Requests, audit lines, assertions
# --------------------------------------------------------------------------


def new_target(prefix: str = "/orders") -> str:
    return f"{prefix}/{uuid.uuid4().hex}"


def kong_url(n: kh.Nginx, target: str) -> str:
    """The URL the client used, which a proof's `htu` must name."""
    return n.tls_url(target)


dpop_headers = idp.dpop_headers


def send(n: kh.Nginx, target: str, headers=(), method: str = "GET", client_cert=None) -> e2e.Response:
    return n.tls_request(method, target, headers=list(headers), client_cert=client_cert)


def audit_for(n: kh.Nginx, path: str, count: int = 1, timeout: float = 3.0) -> list[dict]:
    found: list[dict] = []

    def seen():
        found[:] = [a for a in kh.audit_lines(n) if a.get("path") == path]
        return len(found) >= count

    assert e2e.wait_until(seen, timeout), f"{len(found)} audit lines for {path}, expected {count}: {found}"
    return found


def expect_refused(n: kh.Nginx, resp: e2e.Response, target: str, reason: str, token: str | None = None) -> dict:
    """A 401 for `reason` that did not reach the upstream, with the body,
    challenge (DPoP scheme and `algs` for proof problems) and audit line the
    contract gives it."""
    assert resp.status == 401, f"expected 401 {reason}, got {resp}"
    assert not resp.reached_upstream, f"refused request reached the upstream: {resp.upstream}"
    body = resp.json()
    assert body.get("reason") == reason, f"reason {body.get('reason')!r} != {reason!r}: {body}"
    found = idp.challenges(resp)
    if reason.startswith("dpop_proof_"):
        assert body.get("error") == "invalid_dpop_proof", body
        dpop = [p for s, p in found if s.lower() == "dpop"]
        assert any(p.get("error") == "invalid_dpop_proof" for p in dpop), found
        algs = [p["algs"] for p in dpop if "algs" in p]
        assert algs and set(algs[0].split()) == set(DPOP_ALGORITHMS), found
    else:
        assert body.get("error") == "invalid_token", body
        assert any(p.get("error") == "invalid_token" for _, p in found), found
    if token:
        text = resp.body.decode("latin-1") + " ".join(resp.headers.get_all("www-authenticate"))
        assert token not in text, "the response echoes the token"
    a = audit_for(n, target)[-1]
    assert (a["decision"], a["reason"]) == ("deny", reason), a
    return a


def expect_passed(n: kh.Nginx, resp: e2e.Response, target: str, binding: str | None) -> dict:
    """Allowed; the token and the proof reach the upstream only blanked
    (this host overwrites a header it cannot remove)."""
    up = e2e.expect_allowed(resp)
    assert set(up["headers"].get("authorization", [""])) == {""}, f"the token was forwarded: {up['headers']}"
    assert set(up["headers"].get("dpop", [""])) == {""}, f"the DPoP proof was forwarded: {up['headers']}"
    a = audit_for(n, target)[-1]
    assert (a["decision"], a["reason"], a["binding"]) == ("allow", "allowed", binding), a
    return up


# --------------------------------------------------------------------------
# DPoP
# --------------------------------------------------------------------------


def test_dpop_valid_proof_allowed(kong, dpop_key, dpop_token):
    target = new_target()
    proof = dpop_key.proof("GET", kong_url(kong, target), dpop_token)
    up = expect_passed(kong, send(kong, target, dpop_headers(dpop_token, proof)), target, "dpop")
    assert up["headers"].get("x-identity-client-id") == ["dpop-client"]


@pytest.mark.parametrize("alg", ["RS256", "EdDSA"])
def test_dpop_other_algorithms_allowed(kong, auth_server, alg):
    key = idp.DpopKey(alg)
    token = auth_server.dpop_token("dpop-client", "orders:read", key)
    target = new_target()
    proof = key.proof("GET", kong_url(kong, target), token)
    expect_passed(kong, send(kong, target, dpop_headers(token, proof)), target, "dpop")


def test_dpop_proof_for_the_server_name_url_is_refused(kong, dpop_key, dpop_token):
    """`:authority` in this host is server_name:port; the client's Host is
    what a proof names, and the audit message names both URLs."""
    target = new_target()
    server_name_url = f"https://{SERVER_NAME}:{kong.tls_port}{target}"
    proof = dpop_key.proof("GET", server_name_url, dpop_token)
    a = expect_refused(kong, send(kong, target, dpop_headers(dpop_token, proof)), target, "dpop_proof_invalid",
                       dpop_token)
    assert server_name_url in a["message"] and kong.tls_url(target) in a["message"], a


def test_dpop_proof_for_another_method(kong, dpop_key, dpop_token):
    target = new_target()
    proof = dpop_key.proof("POST", kong_url(kong, target), dpop_token)
    expect_refused(kong, send(kong, target, dpop_headers(dpop_token, proof)), target, "dpop_proof_invalid",
                   dpop_token)


def test_dpop_proof_for_another_url(kong, dpop_key, dpop_token):
    target = new_target()
    proof = dpop_key.proof("GET", kong_url(kong, new_target()), dpop_token)
    expect_refused(kong, send(kong, target, dpop_headers(dpop_token, proof)), target, "dpop_proof_invalid",
                   dpop_token)


def test_dpop_proof_too_old(kong, dpop_key, dpop_token):
    target = new_target()
    old = int(time.time()) - DPOP_MAX_AGE_S - 300
    proof = dpop_key.proof("GET", kong_url(kong, target), dpop_token, iat=old)
    expect_refused(kong, send(kong, target, dpop_headers(dpop_token, proof)), target, "dpop_proof_invalid",
                   dpop_token)


def test_dpop_proof_with_wrong_ath(kong, dpop_key, dpop_token):
    target = new_target()
    proof = dpop_key.proof("GET", kong_url(kong, target), dpop_token, ath=idp.access_token_hash(dpop_token + "x"))
    expect_refused(kong, send(kong, target, dpop_headers(dpop_token, proof)), target, "dpop_proof_invalid",
                   dpop_token)


def test_dpop_proof_of_another_key(kong, dpop_token):
    target = new_target()
    proof = idp.DpopKey("ES256").proof("GET", kong_url(kong, target), dpop_token)
    expect_refused(kong, send(kong, target, dpop_headers(dpop_token, proof)), target, "dpop_binding_mismatch",
                   dpop_token)


@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_dpop_proof_unsigned_or_symmetric(kong, dpop_key, dpop_token, alg):
    target = new_target()
    proof = dpop_key.proof("GET", kong_url(kong, target), dpop_token, alg=alg)
    expect_refused(kong, send(kong, target, dpop_headers(dpop_token, proof)), target, "dpop_proof_invalid",
                   dpop_token)


def test_dpop_proof_with_private_key_in_jwk(kong, dpop_key, dpop_token):
    target = new_target()
    proof = dpop_key.proof("GET", kong_url(kong, target), dpop_token, include_private=True)
    expect_refused(kong, send(kong, target, dpop_headers(dpop_token, proof)), target, "dpop_proof_invalid",
                   dpop_token)


def test_two_dpop_headers(kong, dpop_key, dpop_token):
    target = new_target()
    proofs = [dpop_key.proof("GET", kong_url(kong, target), dpop_token) for _ in range(2)]
    expect_refused(kong, send(kong, target, dpop_headers(dpop_token, *proofs)), target, "dpop_proof_invalid",
                   dpop_token)


def test_dpop_scheme_without_proof(kong, dpop_token):
    target = new_target()
    expect_refused(kong, send(kong, target, dpop_headers(dpop_token)), target, "dpop_proof_missing", dpop_token)


def test_dpop_bound_token_sent_as_bearer(kong, dpop_key, dpop_token):
    target = new_target()
    expect_refused(kong, send(kong, target, [("Authorization", f"Bearer {dpop_token}")]), target,
                   "dpop_binding_mismatch", dpop_token)
    # a valid proof alongside does not make the downgrade acceptable
    target = new_target()
    proof = dpop_key.proof("GET", kong_url(kong, target), dpop_token)
    r = send(kong, target, dpop_headers(dpop_token, proof, scheme="Bearer"))
    expect_refused(kong, r, target, "dpop_binding_mismatch", dpop_token)


def test_dpop_replay_refused_on_the_same_worker(kong, dpop_key, dpop_token):
    """The same proof again and again, a new connection each time: every
    replay that reaches the worker that accepted it is refused
    `dpop_proof_replayed`. Replay detection is per worker in this host (no
    shared data, CONTRACT §1.4): the other worker may accept the proof once,
    and refuses it after that."""
    target = new_target()
    proof = dpop_key.proof("GET", kong_url(kong, target), dpop_token)
    expect_passed(kong, send(kong, target, dpop_headers(dpop_token, proof)), target, "dpop")
    first_pid = audit_for(kong, target)[0]["_pid"]
    sent, same_worker_replays = 0, 0
    while sent < 40 and (same_worker_replays < 3 or sent < 8):
        r = send(kong, target, dpop_headers(dpop_token, proof))
        sent += 1
        a = audit_for(kong, target, count=1 + sent)[-1]
        if a["_pid"] == first_pid:
            same_worker_replays += 1
            assert (r.status, a["reason"]) == (401, "dpop_proof_replayed"), (r, a)
            expect_refused(kong, r, target, "dpop_proof_replayed", dpop_token)
    assert same_worker_replays >= 1, f"none of {sent} replays reached worker {first_pid}"
    lines = audit_for(kong, target, count=1 + sent)
    by_worker: dict[str, list[str]] = {}
    for a in lines:
        by_worker.setdefault(a["_pid"], []).append(a["reason"])
    for pid, reasons in by_worker.items():
        # each worker: at most the first use allowed, every later one refused as a replay
        assert reasons[0] in ("allowed", "dpop_proof_replayed"), (pid, reasons)
        assert all(x == "dpop_proof_replayed" for x in reasons[1:]), (pid, reasons)


# --------------------------------------------------------------------------
# mTLS (certificate-bound tokens): ngx.ssl_client_raw_cert
# --------------------------------------------------------------------------


def test_certificate_bound_token_with_its_certificate(kong, mtls_token, mtls_cert):
    target = new_target()
    r = send(kong, target, [("Authorization", f"Bearer {mtls_token}")], client_cert=mtls_cert)
    up = expect_passed(kong, r, target, "mtls")
    assert up["headers"].get("x-identity-client-id") == ["mtls-client"]


def test_certificate_bound_token_with_another_certificate(kong, mtls_token, other_cert):
    target = new_target()
    r = send(kong, target, [("Authorization", f"Bearer {mtls_token}")], client_cert=other_cert)
    expect_refused(kong, r, target, "mtls_binding_mismatch", mtls_token)


def test_certificate_bound_token_without_certificate(kong, mtls_token):
    target = new_target()
    r = send(kong, target, [("Authorization", f"Bearer {mtls_token}")])
    expect_refused(kong, r, target, "mtls_certificate_missing", mtls_token)


def test_certificate_bound_token_over_plain_http(kong, mtls_token):
    """No TLS at all: nginx's variable is not found, the filter sees no
    certificate (fail closed)."""
    target = new_target()
    r = kong.request("GET", target, [("Authorization", f"Bearer {mtls_token}")])
    expect_refused(kong, r, target, "mtls_certificate_missing", mtls_token)


# --------------------------------------------------------------------------
# Unbound tokens, sender_constrained rules
# --------------------------------------------------------------------------


def test_unbound_token_allowed_where_binding_is_not_required(kong, bearer_token):
    target = new_target()
    expect_passed(kong, send(kong, target, [("Authorization", f"Bearer {bearer_token}")]), target, None)


def test_sender_constrained_rule(kong, bearer_token, dpop_key, dpop_token, mtls_token, mtls_cert):
    target = new_target("/bound")
    r = send(kong, target, [("Authorization", f"Bearer {bearer_token}")])
    expect_refused(kong, r, target, "token_not_bound", bearer_token)
    target = new_target("/bound")
    proof = dpop_key.proof("GET", kong_url(kong, target), dpop_token)
    expect_passed(kong, send(kong, target, dpop_headers(dpop_token, proof)), target, "dpop")
    target = new_target("/bound")
    r = send(kong, target, [("Authorization", f"Bearer {mtls_token}")], client_cert=mtls_cert)
    expect_passed(kong, r, target, "mtls")


def test_no_host_errors(kong):
    """Reading `ngx.ssl_client_raw_cert` (with a certificate, without one, on a
    plain connection) and everything above leave no error in nginx's log."""
    bad = [l for l in kong.log_text().splitlines() if re.search(r"\[(alert|crit|emerg|error)\]", l)]
    assert not bad, "\n".join(bad[:10])
    assert not kong.dead_worker_lines(), kong.dead_worker_lines()
