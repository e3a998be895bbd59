"""No token (401 token_missing) and tokens that are not well-formed compact
JWS (401 token_malformed); the CONTRACT §2 response shape."""

import base64
import json

import pytest

import harness as h

PATH = "/payments/1"


def test_no_token_is_401_token_missing_with_realm_only(gw):
    r = gw.get(PATH)
    h.expect_denied(r, 401, "token_missing")
    assert r.headers.get("www-authenticate") == 'Bearer realm="scopegate"'


def test_no_token_head_request_is_denied(gw):
    r = gw.request("HEAD", PATH)
    assert r.status == 401, r
    assert not r.reached_upstream
    assert r.headers.get("www-authenticate") == 'Bearer realm="scopegate"'


def _valid(keys, **over):
    return h.mint(keys.rsa, h.claims("payments:read", **over), alg="RS256")


def _two_segments(keys):
    return ".".join(_valid(keys).split(".")[:2])


def _four_segments(keys):
    return _valid(keys) + "." + h.b64u(b"extra")


def _bad_base64(keys):
    head, payload, sig = _valid(keys).split(".")
    mid = len(payload) // 2
    return ".".join([head, payload[:mid] + "*" + payload[mid + 1 :], sig])


def _padded(keys):
    # header whose base64 needs padding; signed over the padded form, so only
    # the padding makes it invalid
    header = {"alg": "RS256", "typ": "JWT", "kid": keys.rsa.kid}
    raw = json.dumps(header, separators=(",", ":"))
    while len(raw.encode()) % 3 == 0:
        raw = raw[:-1] + " }"
    seg = base64.urlsafe_b64encode(raw.encode()).decode()
    assert seg.endswith("=")
    return h.mint(keys.rsa, h.claims("payments:read"), alg="RS256", header=seg)


def _standard_alphabet(keys, url_char, std_char):
    # re-mint until the signature contains the URL-safe character, then
    # spell it with the standard alphabet (a lenient decoder would accept it)
    for _ in range(500):
        token = _valid(keys)
        head, payload, sig = token.split(".")
        if url_char in sig:
            return ".".join([head, payload, sig.replace(url_char, std_char)])
    raise AssertionError("could not produce a signature containing " + url_char)


def _non_json_header(keys):
    return h.mint(keys.rsa, h.claims("payments:read"), alg="RS256", header=b"not json at all")


def _header_not_object(keys):
    return h.mint(keys.rsa, h.claims("payments:read"), alg="RS256", header=b'["RS256"]')


def _payload_array(keys):
    return h.mint(keys.rsa, b'["payments:read"]', alg="RS256")


def _payload_string(keys):
    return h.mint(keys.rsa, b'"hello"', alg="RS256")


def _payload_not_json(keys):
    return h.mint(keys.rsa, b"{not json", alg="RS256")


def _oversized(keys):
    # ~20 KiB, correctly signed, otherwise valid
    pad = "x" * 14600
    token = _valid(keys, pad=pad)
    assert 19 * 1024 < len(token) < 22 * 1024, len(token)
    return token


MALFORMED = {
    "two_segments": _two_segments,
    "four_segments": _four_segments,
    "bad_base64_char": _bad_base64,
    "base64_padding": _padded,
    "standard_alphabet_plus": lambda k: _standard_alphabet(k, "-", "+"),
    "standard_alphabet_slash": lambda k: _standard_alphabet(k, "_", "/"),
    "header_not_json": _non_json_header,
    "header_not_object": _header_not_object,
    "payload_array": _payload_array,
    "payload_string": _payload_string,
    "payload_not_json": _payload_not_json,
    "token_20KiB": _oversized,
}


@pytest.mark.parametrize("case", list(MALFORMED))
def test_token_malformed(gw, keys, case):
    token = MALFORMED[case](keys)
    r = gw.get(PATH, token=token)
    h.expect_denied(r, 401, "token_malformed", token=token)


def test_denial_body_is_json_with_three_fields(gw, keys):
    token = _two_segments(keys)
    body = h.expect_denied(gw.get(PATH, token=token), 401, "token_malformed", token=token)
    assert body["error"] == "invalid_token"
    assert body["error_description"]
