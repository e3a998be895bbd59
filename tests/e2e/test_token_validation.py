"""Well-formed tokens that fail validation: algorithm, issuer, key, signature,
time claims, audience, required claims (all 401 invalid_token)."""

import json

import pytest

import harness as h

PATH = "/payments/1"


def _deny(gw, token, reason):
    return h.expect_denied(gw.get(PATH, token=token), 401, reason, token=token)


# -- unsupported_algorithm ----------------------------------------------------


@pytest.mark.parametrize("alg", ["none", "None", "NONE"])
def test_alg_none_is_unsupported(gw, keys, alg):
    token = h.mint(None, h.claims("payments:read"), header={"alg": alg, "typ": "JWT"})
    assert token.endswith(".")
    _deny(gw, token, "unsupported_algorithm")


def test_alg_none_with_signature_is_unsupported(gw, keys):
    token = h.mint(keys.rsa, h.claims("payments:read"), header={"alg": "none", "kid": keys.rsa.kid},
                   signature=keys.rsa.sign("RS256", b"whatever"))
    _deny(gw, token, "unsupported_algorithm")


@pytest.mark.parametrize("alg", ["HS256", "HS384", "HS512"])
def test_hmac_signed_with_rsa_public_key_pem_is_unsupported(gw, keys, alg):
    token = h.mint(None, h.claims("payments:read"), alg=alg, kid=keys.rsa.kid, hmac_secret=keys.rsa.public_pem())
    _deny(gw, token, "unsupported_algorithm")


def test_algorithm_not_in_provider_allow_list(gw, keys):
    # partner allows only ES256; its JWKS also holds an RSA key, so only the
    # allow-list stands between this correctly signed RS256 token and success
    token = h.mint(keys.partner_rsa, h.claims("payments:read", iss=h.PARTNER_ISSUER), alg="RS256")
    _deny(gw, token, "unsupported_algorithm")


def test_unknown_algorithm_name(gw, keys):
    token = h.mint(keys.rsa, h.claims("payments:read"), header={"alg": "RS1", "kid": keys.rsa.kid},
                   signature=keys.rsa.sign("RS256", b"x"))
    _deny(gw, token, "unsupported_algorithm")


# -- issuer / key -------------------------------------------------------------------


def test_unknown_issuer(gw, keys):
    token = h.mint(keys.rsa, h.claims("payments:read", iss="https://evil.example.com"), alg="RS256")
    _deny(gw, token, "issuer_unknown")


def test_issuer_compared_exactly(gw, keys):
    token = h.mint(keys.rsa, h.claims("payments:read", iss=h.ISSUER + "/"), alg="RS256")
    _deny(gw, token, "issuer_unknown")


def test_unknown_kid(gw, keys):
    token = h.mint(keys.rsa, h.claims("payments:read"), alg="RS256", kid="no-such-key")
    _deny(gw, token, "key_not_found")


def test_kid_of_other_provider(gw, keys):
    # corp issuer, but the kid exists only in partner's JWKS
    token = h.mint(keys.partner_ec, h.claims("payments:read"), alg="ES256")
    _deny(gw, token, "key_not_found")


# -- signature_invalid --------------------------------------------------------------


def _flip(sig: str) -> str:
    raw = bytearray(h.b64u_decode(sig))
    raw[len(raw) // 2] ^= 0x01
    return h.b64u(bytes(raw))


@pytest.mark.parametrize("alg", h.ALGORITHMS)
def test_flipped_signature_bit(gw, keys, alg):
    head, payload, sig = h.mint(keys.for_alg(alg), h.claims("payments:read"), alg=alg).split(".")
    _deny(gw, ".".join([head, payload, _flip(sig)]), "signature_invalid")


def test_tampered_payload(gw, keys):
    head, _, sig = h.mint(keys.rsa, h.claims("payments:read"), alg="RS256").split(".")
    forged = h.b64u(json.dumps(h.claims("admin payments:read")).encode())
    _deny(gw, ".".join([head, forged, sig]), "signature_invalid")


def test_es256_signature_in_der_form(gw, keys):
    token = h.mint(keys.ec256, h.claims("payments:read"), alg="ES256", der=True)
    _deny(gw, token, "signature_invalid")


def test_es256_signature_r_zero_s_zero(gw, keys):
    token = h.mint(keys.ec256, h.claims("payments:read"), alg="ES256", signature=bytes(64))
    _deny(gw, token, "signature_invalid")


def test_signed_by_untrusted_key_with_trusted_kid(gw, keys):
    token = h.mint(keys.rogue_rsa, h.claims("payments:read"), alg="RS256")
    _deny(gw, token, "signature_invalid")


# -- time claims --------------------------------------------------------------------


def test_expired(gw, tok):
    now = h.claims()["iat"]
    _deny(gw, tok("payments:read", iat=now - 900, exp=now - 300), "token_expired")


def test_not_yet_valid(gw, tok):
    now = h.claims()["iat"]
    _deny(gw, tok("payments:read", iat=now, nbf=now + 300, exp=now + 900), "token_not_yet_valid")


def test_issued_in_future(gw, tok):
    now = h.claims()["iat"]
    _deny(gw, tok("payments:read", iat=now + 300, exp=now + 900), "token_issued_in_future")


def test_lifetime_too_long(gw, tok):
    now = h.claims()["iat"]
    _deny(gw, tok("payments:read", iat=now, exp=now + 7200), "lifetime_too_long")


def test_missing_iat_with_max_lifetime_is_lifetime_too_long(gw, tok):
    _deny(gw, tok("payments:read", iat=...), "lifetime_too_long")


def test_missing_exp_is_claim_missing(gw, tok):
    _deny(gw, tok("payments:read", exp=...), "claim_missing")


# -- audience -----------------------------------------------------------------------


def test_audience_string_mismatch(gw, tok):
    _deny(gw, tok("payments:read", aud="other-api"), "audience_mismatch")


def test_audience_array_mismatch(gw, tok):
    _deny(gw, tok("payments:read", aud=["other-api", "payments-api-v2"]), "audience_mismatch")
