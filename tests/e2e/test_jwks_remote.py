"""Keys fetched from a `uri` through an Envoy cluster (the echo upstream
serves the JWKS), and 503 jwks_unavailable when they cannot be fetched."""

import json

import pytest

import harness as h

REMOTE_ISSUER = "https://remote.example.org"
BROKEN_ISSUER = "https://broken.example.org"


@pytest.fixture(scope="module")
def remote(gateways, keys, echo):
    echo.documents["/remote/jwks.json"] = (200, json.dumps({"keys": [keys.ec384.jwk()]}).encode())
    echo.documents["/broken/jwks.json"] = (404, b'{"error":"not found"}')
    base = h.base_filter_config(keys)
    providers = base["providers"] + [
        {
            "name": "remote",
            "issuer": REMOTE_ISSUER,
            "audiences": [h.AUDIENCE],
            "jwks": {"uri": "http://jwks.test/remote/jwks.json", "cluster": "echo", "timeout_ms": 1500},
            "algorithms": ["ES384"],
        },
        {
            "name": "broken",
            "issuer": BROKEN_ISSUER,
            "jwks": {"uri": "http://jwks.test/broken/jwks.json", "cluster": "echo", "timeout_ms": 1500},
            "algorithms": ["ES256"],
        },
    ]
    gw = gateways.get("jwks-remote", providers=providers)
    # keys may arrive after Envoy is LIVE (503 until then): wait once, bounded
    token = h.mint(keys.ec384, h.claims("payments:read", iss=REMOTE_ISSUER), alg="ES384")
    h.until_not_503(lambda: gw.get("/payments/1", token=token))
    return gw


def test_remote_jwks_token_accepted(remote, keys):
    token = h.mint(keys.ec384, h.claims("payments:read", iss=REMOTE_ISSUER, sub="remote-sub"), alg="ES384")
    r = remote.get("/payments/1", token=token)
    up = h.expect_allowed(r)
    assert up["headers"].get("x-identity-issuer") == [REMOTE_ISSUER]


def test_remote_jwks_fetch_counted(remote):
    assert (remote.scopegate_counter("jwks.remote.fetch_ok") or 0) >= 1


def test_unobtainable_jwks_is_503_without_www_authenticate(remote, keys):
    token = h.mint(keys.ec256, h.claims("payments:read", iss=BROKEN_ISSUER), alg="ES256")
    r = remote.get("/payments/1", token=token)
    assert r.status == 503, r
    assert not r.reached_upstream
    assert "www-authenticate" not in r.headers
    body = r.json()
    assert body.get("reason") == "jwks_unavailable", body
    assert token not in r.body.decode("latin-1")


def test_failed_fetch_counted(remote):
    assert (remote.scopegate_counter("jwks.broken.fetch_failed") or 0) >= 1
