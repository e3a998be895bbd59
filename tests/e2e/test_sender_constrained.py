"""Sender-constrained access tokens in real Envoy: certificate-bound (RFC 8705)
and DPoP-bound (RFC 9449) tokens from a real authorization server
(tests/idp, see test_idp_smoke.py), each case over HTTP/1.1 and HTTP/2 on a
TLS listener (client certificates from a test CA, optional).

The provider says `"proof_of_possession": {"mtls": "if_bound", "dpop":
"if_bound", ...}`: a bound token must come with its proof, an unbound one
may come alone, except on a rule with `"sender_constrained": true` (and on a
provider with `"dpop": "required"`, a second gateway), where it is refused
(`token_not_bound`).

DPoP: a valid proof lets the request through and the `DPoP` header is not
forwarded; a proof for another method, another URL, too old, with a wrong
`ath`, `alg: none`, HS256, a private member in its `jwk`, two `DPoP`
headers are `dpop_proof_invalid`; the DPoP scheme without a proof is
`dpop_proof_missing`; a proof replayed is `dpop_proof_replayed` on whichever
of the two workers gets it; a proof signed by another key than the token's
`cnf.jkt`, or the bound token sent as `Bearer`, is `dpop_binding_mismatch`.
mTLS: the bound token without a client certificate is
`mtls_certificate_missing`, with another certificate of the same CA
`mtls_binding_mismatch`, with its certificate allowed.

Every refusal is a 401 whose reason is in the body and in the audit line;
proof problems are challenged `DPoP ... error="invalid_dpop_proof"` with
`algs="..."`, problems of the token itself `error="invalid_token"`.
"""

from __future__ import annotations

import re
import time
import uuid

import pytest

import harness as h
import idp

PROTOCOLS = ["http1", "http2"]
DPOP_ALGORITHMS = ["ES256", "RS256", "PS256", "EdDSA"]
DPOP_MAX_AGE_S = 60
PROOF_OF_POSSESSION = {
    "mtls": "if_bound",
    "dpop": "if_bound",
    "dpop_algorithms": DPOP_ALGORITHMS,
    "dpop_max_age_s": DPOP_MAX_AGE_S,
}


# --------------------------------------------------------------------------
# The authorization server, certificates, gateways
# --------------------------------------------------------------------------


@pytest.fixture(scope="module")
def ca() -> idp.TestCA:
    return idp.TestCA()


@pytest.fixture(scope="module")
def auth_server(ca):
    with idp.AuthorizationServer(ca=ca) as server:
        yield server


@pytest.fixture(scope="module")
def mtls_cert(ca) -> idp.IssuedCert:
    """The certificate of `mtls-client`: its tokens are bound to it."""
    return ca.client_cert("mtls-client")


@pytest.fixture(scope="module")
def other_cert(ca) -> idp.IssuedCert:
    """Another valid client certificate of the same CA."""
    return ca.client_cert("other-app")


def gateway_config(auth_server: idp.AuthorizationServer, **pop) -> dict:
    return idp.sender_constrained_config(auth_server.provider(proof_of_possession={**PROOF_OF_POSSESSION, **pop}))


def start_gateway(name, cfg, echo, ca, auth_server, concurrency) -> h.Envoy:
    e = h.Envoy(name, cfg, echo, tls=ca.tls_listener(), concurrency=concurrency,
                extra_clusters=[auth_server.cluster()]).start()
    # the keys arrive after Envoy is LIVE (503 until then): wait once, bounded
    token = auth_server.bearer_token("bearer-client", "orders:read")
    h.until_not_503(lambda: e.get("/orders/warm-up", token=token), timeout=15)
    return e


@pytest.fixture(scope="module")
def gw(prerequisites, echo, ca, auth_server):
    """Two workers: a replayed proof must be refused by either."""
    e = start_gateway("sender-constrained", gateway_config(auth_server), echo, ca, auth_server, concurrency=2)
    try:
        yield e
    finally:
        e.cleanup()


@pytest.fixture(scope="module")
def gw_dpop_required(prerequisites, echo, ca, auth_server):
    e = start_gateway("dpop-required", gateway_config(auth_server, dpop="required"), echo, ca, auth_server,
                      concurrency=1)
    try:
        yield e
    finally:
        e.cleanup()


@pytest.fixture(scope="module")
def dpop_key() -> idp.DpopKey:
    return idp.DpopKey("ES256")


@pytest.fixture(scope="module")
def dpop_token(auth_server, dpop_key) -> str:
    """An access token bound to `dpop_key` (`cnf.jkt`)."""
    return auth_server.dpop_token("dpop-client", "orders:read", dpop_key)


@pytest.fixture(scope="module")
def mtls_token(auth_server, mtls_cert) -> str:
    """An access token bound to `mtls_cert` (`cnf["x5t#S256"]`)."""
    return auth_server.mtls_token("mtls-client", "orders:read", mtls_cert)


@pytest.fixture(scope="module")
def bearer_token(auth_server) -> str:
    return auth_server.bearer_token("bearer-client", "orders:read")


# --------------------------------------------------------------------------
# Requests, challenges, audit lines
# --------------------------------------------------------------------------


def new_target(prefix: str = "/orders") -> str:
    """A path no other request uses: its audit line is found by it."""
    return f"{prefix}/{uuid.uuid4().hex}"


def send(gw: h.Envoy, protocol: str, target: str, headers=(), method: str = "GET", client_cert=None) -> h.Response:
    headers = [(k.lower(), v) for k, v in headers]
    if protocol == "http2":
        return gw.h2_request(method, target, headers=headers, client_cert=client_cert)
    return gw.request(method, target, headers=headers, client_cert=client_cert)


dpop_headers = idp.dpop_headers


_LOG_PREFIX = re.compile(r"^\[[^\]]+\]\[(\d+)\]")


def audit_lines(gw: h.Envoy, path: str) -> list[dict]:
    """The audit lines of requests for `path`, each with `_thread` (the id of
    the Envoy worker thread that decided)."""
    out = []
    for line, doc in h.audit_records(gw.log_text()):
        if doc.get("path") == path:
            m = _LOG_PREFIX.match(line)
            doc["_thread"] = m.group(1) if m else None
            out.append(doc)
    return out


def audit_for(gw: h.Envoy, path: str, count: int = 1, timeout: float = 3.0) -> list[dict]:
    """Wait (bounded: Envoy flushes its log in batches) until `count` audit
    lines for `path` are in the log; all of them."""
    found: list[dict] = []

    def seen():
        found[:] = audit_lines(gw, path)
        return len(found) >= count

    assert h.wait_until(seen, timeout), f"{len(found)} audit lines for {path}, expected {count}: {found}"
    return found


challenges = idp.challenges


def expect_refused(gw: h.Envoy, resp: h.Response, target: str, reason: str, token: str | None = None) -> dict:
    """A 401 for `reason`: body, challenge and audit line. Proof problems
    (`dpop_proof_*`) are challenged with the DPoP scheme, error
    invalid_dpop_proof and the accepted algorithms; the others name
    invalid_token."""
    assert resp.status == 401, f"expected 401 {reason}, got {resp}"
    assert not resp.reached_upstream, f"refused request reached the upstream: {resp.upstream}"
    body = resp.json()
    assert body.get("reason") == reason, f"reason {body.get('reason')!r} != {reason!r}: {body}"
    found = challenges(resp)
    if reason.startswith("dpop_proof_"):
        assert body.get("error") == "invalid_dpop_proof", body
        dpop = [p for s, p in found if s.lower() == "dpop"]
        assert dpop, f"no DPoP challenge: {resp.headers.get_all('www-authenticate')}"
        assert any(p.get("error") == "invalid_dpop_proof" for p in dpop), found
        algs = [p["algs"] for p in dpop if "algs" in p]
        assert algs and set(algs[0].split()) == set(DPOP_ALGORITHMS), found
    else:
        assert body.get("error") == "invalid_token", body
        assert any(p.get("error") == "invalid_token" for _, p in found), found
    if token:
        text = resp.body.decode("latin-1") + " ".join(resp.headers.get_all("www-authenticate"))
        assert token not in text, "the response echoes the token"
    a = audit_for(gw, target)[-1]
    assert (a["decision"], a["reason"]) == ("deny", reason), a
    return a


def expect_passed(gw: h.Envoy, resp: h.Response, target: str) -> dict:
    up = h.expect_allowed(resp)
    assert "dpop" not in up["headers"], f"the DPoP proof was forwarded: {up['headers']}"
    assert up["headers"].get("authorization", [""]) == [""], f"the token was forwarded: {up['headers']}"
    a = audit_for(gw, target)[-1]
    assert (a["decision"], a["reason"]) == ("allow", "allowed"), a
    return up


# --------------------------------------------------------------------------
# DPoP
# --------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dpop_valid_proof_allowed(gw, dpop_key, dpop_token, protocol):
    target = new_target()
    proof = dpop_key.proof("GET", gw.url(target), dpop_token)
    up = expect_passed(gw, send(gw, protocol, target, dpop_headers(dpop_token, proof)), target)
    assert up["headers"].get("x-identity-client-id") == ["dpop-client"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("alg", DPOP_ALGORITHMS)
def test_dpop_every_configured_algorithm_allowed(gw, auth_server, alg, protocol):
    key = idp.DpopKey(alg)
    token = auth_server.dpop_token("dpop-client", "orders:read", key)
    target = new_target()
    proof = key.proof("GET", gw.url(target), token)
    expect_passed(gw, send(gw, protocol, target, dpop_headers(token, proof)), target)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dpop_proof_for_another_method(gw, dpop_key, dpop_token, protocol):
    target = new_target()
    proof = dpop_key.proof("POST", gw.url(target), dpop_token)
    r = send(gw, protocol, target, dpop_headers(dpop_token, proof))
    expect_refused(gw, r, target, "dpop_proof_invalid", dpop_token)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dpop_proof_for_another_url(gw, dpop_key, dpop_token, protocol):
    target = new_target()
    proof = dpop_key.proof("GET", gw.url(new_target()), dpop_token)
    r = send(gw, protocol, target, dpop_headers(dpop_token, proof))
    expect_refused(gw, r, target, "dpop_proof_invalid", dpop_token)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dpop_proof_for_another_host(gw, dpop_key, dpop_token, protocol):
    target = new_target()
    proof = dpop_key.proof("GET", f"https://elsewhere.example.test{target}", dpop_token)
    r = send(gw, protocol, target, dpop_headers(dpop_token, proof))
    expect_refused(gw, r, target, "dpop_proof_invalid", dpop_token)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dpop_proof_too_old(gw, dpop_key, dpop_token, protocol):
    target = new_target()
    old = int(time.time()) - DPOP_MAX_AGE_S - 300
    proof = dpop_key.proof("GET", gw.url(target), dpop_token, iat=old)
    r = send(gw, protocol, target, dpop_headers(dpop_token, proof))
    expect_refused(gw, r, target, "dpop_proof_invalid", dpop_token)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dpop_proof_from_the_future(gw, dpop_key, dpop_token, protocol):
    target = new_target()
    proof = dpop_key.proof("GET", gw.url(target), dpop_token, iat=int(time.time()) + 3600)
    r = send(gw, protocol, target, dpop_headers(dpop_token, proof))
    expect_refused(gw, r, target, "dpop_proof_invalid", dpop_token)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dpop_proof_replayed_on_either_worker(gw, dpop_key, dpop_token, protocol):
    """The same proof again, on new connections, until both workers have
    answered a replay: each replay is refused, whichever worker gets it."""
    target = new_target()
    proof = dpop_key.proof("GET", gw.url(target), dpop_token)
    expect_passed(gw, send(gw, protocol, target, dpop_headers(dpop_token, proof)), target)
    first_thread = audit_for(gw, target)[0]["_thread"]
    sent, replay_threads = 0, set()
    deadline = time.monotonic() + 30
    while len(replay_threads) < 2 and sent < 48 and time.monotonic() < deadline:
        for _ in range(6):
            r = send(gw, protocol, target, dpop_headers(dpop_token, proof))
            sent += 1
            assert r.status == 401 and not r.reached_upstream, f"replay {sent} was not refused: {r}"
            assert r.json().get("reason") == "dpop_proof_replayed", r
        lines = audit_for(gw, target, count=1 + sent)
        replays = lines[1:]
        assert all((a["decision"], a["reason"]) == ("deny", "dpop_proof_replayed") for a in replays), replays
        replay_threads = {a["_thread"] for a in replays}
    assert len(replay_threads) == 2, (
        f"{sent} replays all reached one worker ({replay_threads}; first use on {first_thread})")
    expect_refused(gw, r, target, "dpop_proof_replayed", dpop_token)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dpop_proof_with_wrong_ath(gw, dpop_key, dpop_token, protocol):
    target = new_target()
    proof = dpop_key.proof("GET", gw.url(target), dpop_token, ath=idp.access_token_hash(dpop_token + "x"))
    r = send(gw, protocol, target, dpop_headers(dpop_token, proof))
    expect_refused(gw, r, target, "dpop_proof_invalid", dpop_token)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dpop_proof_without_ath(gw, dpop_key, dpop_token, protocol):
    target = new_target()
    proof = dpop_key.proof("GET", gw.url(target), dpop_token, omit=("ath",))
    r = send(gw, protocol, target, dpop_headers(dpop_token, proof))
    expect_refused(gw, r, target, "dpop_proof_invalid", dpop_token)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dpop_proof_signed_by_another_key(gw, dpop_token, protocol):
    target = new_target()
    other = idp.DpopKey("ES256")  # a valid proof, but not of the token's key
    proof = other.proof("GET", gw.url(target), dpop_token)
    r = send(gw, protocol, target, dpop_headers(dpop_token, proof))
    expect_refused(gw, r, target, "dpop_binding_mismatch", dpop_token)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dpop_proof_naming_the_token_key_signed_by_another(gw, dpop_key, dpop_token, protocol):
    target = new_target()
    proof = dpop_key.proof("GET", gw.url(target), dpop_token, signed_by=idp.DpopKey("ES256"))
    r = send(gw, protocol, target, dpop_headers(dpop_token, proof))
    expect_refused(gw, r, target, "dpop_proof_invalid", dpop_token)


@pytest.mark.parametrize("protocol", PROTOCOLS)
@pytest.mark.parametrize("alg", ["none", "HS256"])
def test_dpop_proof_unsigned_or_symmetric(gw, dpop_key, dpop_token, alg, protocol):
    target = new_target()
    proof = dpop_key.proof("GET", gw.url(target), dpop_token, alg=alg)
    r = send(gw, protocol, target, dpop_headers(dpop_token, proof))
    expect_refused(gw, r, target, "dpop_proof_invalid", dpop_token)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dpop_proof_with_private_key_in_jwk(gw, dpop_key, dpop_token, protocol):
    target = new_target()
    proof = dpop_key.proof("GET", gw.url(target), dpop_token, include_private=True)
    r = send(gw, protocol, target, dpop_headers(dpop_token, proof))
    expect_refused(gw, r, target, "dpop_proof_invalid", dpop_token)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dpop_proof_with_wrong_typ(gw, dpop_key, dpop_token, protocol):
    target = new_target()
    proof = dpop_key.proof("GET", gw.url(target), dpop_token, typ="JWT")
    r = send(gw, protocol, target, dpop_headers(dpop_token, proof))
    expect_refused(gw, r, target, "dpop_proof_invalid", dpop_token)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_two_dpop_headers(gw, dpop_key, dpop_token, protocol):
    target = new_target()
    proofs = [dpop_key.proof("GET", gw.url(target), dpop_token) for _ in range(2)]
    r = send(gw, protocol, target, dpop_headers(dpop_token, *proofs))
    expect_refused(gw, r, target, "dpop_proof_invalid", dpop_token)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dpop_scheme_without_proof(gw, dpop_token, protocol):
    target = new_target()
    r = send(gw, protocol, target, dpop_headers(dpop_token))
    expect_refused(gw, r, target, "dpop_proof_missing", dpop_token)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dpop_bound_token_sent_as_bearer(gw, dpop_token, protocol):
    target = new_target()
    r = send(gw, protocol, target, [("authorization", f"Bearer {dpop_token}")])
    expect_refused(gw, r, target, "dpop_binding_mismatch", dpop_token)


# --------------------------------------------------------------------------
# mTLS (certificate-bound tokens)
# --------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_certificate_bound_token_with_its_certificate(gw, mtls_token, mtls_cert, protocol):
    target = new_target()
    r = send(gw, protocol, target, [("authorization", f"Bearer {mtls_token}")], client_cert=mtls_cert)
    up = expect_passed(gw, r, target)
    assert up["headers"].get("x-identity-client-id") == ["mtls-client"]


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_certificate_bound_token_without_certificate(gw, mtls_token, protocol):
    target = new_target()
    r = send(gw, protocol, target, [("authorization", f"Bearer {mtls_token}")])
    expect_refused(gw, r, target, "mtls_certificate_missing", mtls_token)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_certificate_bound_token_with_another_certificate(gw, mtls_token, other_cert, protocol):
    target = new_target()
    r = send(gw, protocol, target, [("authorization", f"Bearer {mtls_token}")], client_cert=other_cert)
    a = expect_refused(gw, r, target, "mtls_binding_mismatch", mtls_token)
    assert a.get("peer_certificate", {}).get("subject") == "CN=other-app", a


# --------------------------------------------------------------------------
# Unbound tokens
# --------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_unbound_token_allowed_where_binding_is_not_required(gw, bearer_token, protocol):
    target = new_target()
    r = send(gw, protocol, target, [("authorization", f"Bearer {bearer_token}")])
    expect_passed(gw, r, target)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sender_constrained_rule_refuses_bearer_token(gw, bearer_token, protocol):
    target = new_target("/bound")
    r = send(gw, protocol, target, [("authorization", f"Bearer {bearer_token}")])
    expect_refused(gw, r, target, "token_not_bound", bearer_token)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_sender_constrained_rule_allows_bound_tokens(gw, dpop_key, dpop_token, mtls_token, mtls_cert, protocol):
    target = new_target("/bound")
    proof = dpop_key.proof("GET", gw.url(target), dpop_token)
    expect_passed(gw, send(gw, protocol, target, dpop_headers(dpop_token, proof)), target)
    target = new_target("/bound")
    r = send(gw, protocol, target, [("authorization", f"Bearer {mtls_token}")], client_cert=mtls_cert)
    expect_passed(gw, r, target)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dpop_required_refuses_unbound_token(gw_dpop_required, bearer_token, protocol):
    gw = gw_dpop_required
    target = new_target()
    r = send(gw, protocol, target, [("authorization", f"Bearer {bearer_token}")])
    expect_refused(gw, r, target, "token_not_bound", bearer_token)


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_dpop_required_allows_dpop_bound_token(gw_dpop_required, dpop_key, dpop_token, protocol):
    gw = gw_dpop_required
    target = new_target()
    proof = dpop_key.proof("GET", gw.url(target), dpop_token)
    expect_passed(gw, send(gw, protocol, target, dpop_headers(dpop_token, proof)), target)
