"""The infrastructure of the sender-constrained token tests, proven on the
filter as it is (no proof-of-possession settings).

A real authorization server (panva's oidc-provider, tests/idp) issues, with
the client-credentials grant, a plain Bearer token, a DPoP-bound token
(`cnf.jkt`: the RFC 7638 thumbprint of the key the token request's proof was
signed with) and a certificate-bound token (`cnf["x5t#S256"]`: base64url of
the SHA-256 of the client certificate's DER). Envoy listens with TLS (a test
CA's server certificate, client certificates requested and verified against
that CA, not required) and its filter fetches the server's JWKS through a
cluster: a Bearer token from the server is allowed over HTTPS with HTTP/1.1
and HTTP/2, and the client certificate presented on the connection is seen
by Envoy (access log), the upstream (x-forwarded-client-cert) and the
filter (the audit line's `peer_certificate`).
"""

from __future__ import annotations

import base64
import hashlib
import http.client
import ssl
import time

import pytest

import harness as h
import idp

PROTOCOLS = ["http1", "http2"]


@pytest.fixture(scope="module")
def ca() -> idp.TestCA:
    return idp.TestCA()


@pytest.fixture(scope="module")
def auth_server(ca):
    with idp.AuthorizationServer(ca=ca) as server:
        yield server


@pytest.fixture(scope="module")
def client_cert(ca) -> idp.IssuedCert:
    return ca.client_cert("orders-app")


def smoke_config(auth_server: idp.AuthorizationServer) -> dict:
    return {
        "providers": [auth_server.provider()],
        "rules": [
            {"name": "orders-read", "methods": ["GET"], "path": "/orders/**", "scopes": ["orders:read"]},
        ],
        "default_action": "deny",
        "identity_headers": {
            "subject": "x-identity-subject",
            "client_id": "x-identity-client-id",
            "issuer": "x-identity-issuer",
            "scopes": "x-identity-scopes",
        },
        "audit_log": "all",
    }


@pytest.fixture(scope="module")
def gw(prerequisites, echo, ca, auth_server):
    e = h.Envoy("idp-smoke", smoke_config(auth_server), echo, tls=ca.tls_listener(),
                extra_clusters=[auth_server.cluster()]).start()
    try:
        # the keys arrive after Envoy is LIVE (503 until then): wait once, bounded
        token = auth_server.bearer_token(scope="orders:read")
        h.until_not_503(lambda: e.get("/orders/1", token=token), timeout=15)
        yield e
    finally:
        e.cleanup()


def send(gw: h.Envoy, protocol: str, target: str, token: str | None = None, client_cert=None) -> h.Response:
    if protocol == "http2":
        return gw.h2_request("GET", target, token=token, client_cert=client_cert)
    return gw.get(target, token=token, client_cert=client_cert)


def audit_for(gw: h.Envoy, jti: str, timeout: float = 3.0) -> dict:
    """The audit line of the request made with the token `jti` (Envoy
    flushes its log in batches: wait for it, bounded)."""
    found: list[dict] = []

    def seen():
        found[:] = [doc for _, doc in h.audit_records(gw.log_text()) if doc.get("jti") == jti]
        return bool(found)

    assert h.wait_until(seen, timeout), f"no audit line with jti {jti!r}"
    return found[-1]


def access_line(gw: h.Envoy, marker: str, timeout: float = 3.0) -> str:
    lines: list[str] = []

    def seen():
        lines[:] = [l for l in gw.access_log().splitlines() if marker in l]
        return bool(lines)

    assert h.wait_until(seen, timeout), f"no access log line for {marker}"
    return lines[-1]


# --------------------------------------------------------------------------
# Tokens from the authorization server
# --------------------------------------------------------------------------


def test_server_publishes_its_signing_keys(auth_server):
    keys = {k["kid"]: k for k in auth_server.jwks()["keys"]}
    assert {(k["kty"], k.get("alg")) for k in keys.values()} >= {("EC", "ES256"), ("RSA", "RS256")}, keys
    assert all("d" not in k for k in keys.values()), "the JWKS publishes private keys"


def test_bearer_token_claims(auth_server):
    before = int(time.time())
    token = auth_server.bearer_token("bearer-client", "orders:read payments:read")
    header, c = idp.header_of(token), idp.claims_of(token)
    assert header["alg"] == "ES256" and header["kid"] in {k["kid"] for k in auth_server.jwks()["keys"]}, header
    assert c["iss"] == auth_server.issuer
    assert c["aud"] == idp.AUDIENCE
    assert c["client_id"] == "bearer-client"
    assert set(c["scope"].split()) == {"orders:read", "payments:read"}
    assert before - 5 <= c["iat"] <= int(time.time()) + 5
    assert c["exp"] - c["iat"] == 600
    assert isinstance(c["jti"], str) and c["jti"]
    assert "cnf" not in c, c


def test_rs256_resource_tokens_are_signed_rs256(auth_server):
    token = auth_server.bearer_token(scope="orders:read", resource=idp.RS256_RESOURCE)
    assert idp.header_of(token)["alg"] == "RS256"
    assert idp.claims_of(token)["aud"] == idp.AUDIENCE


@pytest.mark.parametrize("alg", ["ES256", "RS256", "PS256", "EdDSA"])
def test_dpop_token_is_bound_to_the_proof_key(auth_server, alg):
    key = idp.DpopKey(alg)
    token = auth_server.dpop_token("dpop-client", "orders:read", key)
    c = idp.claims_of(token)
    assert auth_server.last_response["token_type"] == "DPoP"
    # RFC 7638 computed here from the key itself, not from the helper's JWK
    if alg.startswith("ES"):
        n = key.key.public.public_numbers()
        members = ('{"crv":"P-256","kty":"EC","x":"%s","y":"%s"}'
                   % (h.b64u(n.x.to_bytes(32, "big")), h.b64u(n.y.to_bytes(32, "big"))))
        assert c["cnf"]["jkt"] == h.b64u(hashlib.sha256(members.encode()).digest())
    assert c["cnf"] == {"jkt": key.thumbprint}, c
    assert c["client_id"] == "dpop-client" and c["scope"] == "orders:read"


def test_dpop_client_cannot_get_an_unbound_token(auth_server):
    with pytest.raises(idp.TokenError) as e:
        auth_server.bearer_token("dpop-client", "orders:read")
    assert e.value.status == 400


def test_token_endpoint_refuses_a_bad_proof(auth_server):
    key = idp.DpopKey()
    for bad in ({"alg": "none"}, {"alg": "HS256"}, {"include_private": True}, {"iat": int(time.time()) - 3600},
                {"htm": "GET"}):
        method = bad.pop("htm", "POST")
        proof = key.proof(method, auth_server.token_endpoint, **bad)
        with pytest.raises(idp.TokenError) as e:
            auth_server.token_response("dpop-client", "orders:read", headers={"DPoP": proof})
        assert e.value.body["error"] == "invalid_dpop_proof", (bad, e.value.body)


def test_certificate_bound_token(auth_server, ca):
    cert = ca.client_cert("mtls-client")
    token = auth_server.mtls_token("mtls-client", "orders:read", cert.cert_pem)
    c = idp.claims_of(token)
    expected = base64.urlsafe_b64encode(hashlib.sha256(cert.der).digest()).rstrip(b"=").decode()
    assert c["cnf"] == {"x5t#S256": expected}, c
    assert idp.x5t_s256(cert.cert) == idp.x5t_s256(cert.cert_pem) == cert.x5t_s256 == expected
    assert c["client_id"] == "mtls-client"


def test_certificate_client_authenticates_with_its_certificate_only(auth_server, ca):
    # another subject of the same CA, and the right subject from another CA
    for cert in (ca.client_cert("someone-else"), idp.TestCA("Rogue CA").client_cert("mtls-client")):
        with pytest.raises(idp.TokenError) as e:
            auth_server.mtls_token("mtls-client", "orders:read", cert)
        assert e.value.status == 401 and e.value.body["error"] == "invalid_client", e.value.body


def test_secret_client_gets_tokens_bound_to_any_certificate_it_presents(auth_server, ca):
    cert = ca.client_cert("any-app")
    token = auth_server.mtls_token("mtls-secret-client", "orders:read", cert)
    assert idp.claims_of(token)["cnf"] == {"x5t#S256": cert.x5t_s256}


# --------------------------------------------------------------------------
# Envoy over TLS, keys from the authorization server
# --------------------------------------------------------------------------


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bearer_token_allowed_over_https_with_client_certificate(gw, auth_server, client_cert, protocol):
    token = auth_server.bearer_token("bearer-client", "orders:read")
    r = send(gw, protocol, "/orders/42", token=token, client_cert=client_cert)
    up = h.expect_allowed(r)
    assert r.tls and r.alpn == {"http1": "http/1.1", "http2": "h2"}[protocol], r
    assert up["headers"].get("x-identity-client-id") == ["bearer-client"]
    assert up["headers"].get("x-identity-issuer") == [auth_server.issuer]
    # the upstream is told which certificate the client presented
    xfcc = up["headers"].get("x-forwarded-client-cert", [])
    assert len(xfcc) == 1 and f"Hash={client_cert.sha256_hex}" in xfcc[0], xfcc
    assert 'Subject="CN=orders-app"' in xfcc[0], xfcc
    # Envoy's access log: TLS, the peer certificate's digest and subject
    line = access_line(gw, r.marker)
    assert " 200 " in line and f"peer_sha256={client_cert.sha256_hex}" in line and "tls=TLSv1." in line, line
    assert "peer=CN=orders-app" in line, line
    # the filter's audit line: allowed, and the peer certificate
    a = audit_for(gw, idp.claims_of(token)["jti"])
    assert (a["decision"], a["reason"], a["rule"]) == ("allow", "allowed", "orders-read"), a
    assert a["peer_certificate"]["subject"] == "CN=orders-app", a
    assert a["peer_certificate"]["dns_sans"] == ["orders-app.clients.test"], a


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_bearer_token_allowed_over_https_without_client_certificate(gw, auth_server, protocol):
    token = auth_server.bearer_token("bearer-client", "orders:read", resource=idp.RS256_RESOURCE)
    r = send(gw, protocol, "/orders/43", token=token)
    up = h.expect_allowed(r)
    assert r.tls, r
    assert "x-forwarded-client-cert" not in up["headers"], up["headers"]
    line = access_line(gw, r.marker)
    assert "peer_sha256=- " in line or "peer_sha256=-" in line, line
    a = audit_for(gw, idp.claims_of(token)["jti"])
    assert a["reason"] == "allowed" and "peer_certificate" not in a, a


@pytest.mark.parametrize("protocol", PROTOCOLS)
def test_scope_still_enforced_over_https(gw, auth_server, client_cert, protocol):
    token = auth_server.bearer_token("bearer-client", "payments:read")
    r = send(gw, protocol, "/orders/44", token=token, client_cert=client_cert)
    h.expect_denied(r, 403, "insufficient_scope", token=token, scope="orders:read")


def test_certificate_of_another_ca_fails_the_handshake(gw):
    rogue = idp.TestCA("Rogue CA").client_cert("orders-app")
    with pytest.raises((ssl.SSLError, ConnectionError, OSError)):
        r = gw.get("/orders/45", client_cert=rogue)
        # TLS 1.3: the server's alert may only arrive with the first read
        pytest.fail(f"a certificate of another CA was accepted: {r}")


def test_plain_http_is_refused_by_the_tls_listener(gw):
    with pytest.raises((ConnectionError, OSError, http.client.HTTPException)):
        r = h.http1_request(gw.port, "GET", "/orders/46", marker=False, timeout=5)
        pytest.fail(f"plain HTTP was answered: {r}")
