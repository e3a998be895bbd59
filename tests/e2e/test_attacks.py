"""Hostile tokens and requests (issue 6), over HTTP/1.1 and HTTP/2 (h2c).

Every attack must be denied with the expected status and reason code, never
reach the upstream (checked through the echo's recorded requests), answer with
a well-formed WWW-Authenticate (one header, no CR/LF, quoted strings intact),
and leave Envoy and the filter serving (the last tests send valid requests).

Gateways: `base` (conftest), `attacks` (base + a JWK pinned to PS256, token
sources Authorization header and `access_token` query, max_token_bytes 65536
so deep nesting reaches the JSON parser), `attacks-offcurve` (base + EC keys
whose points are not on P-256), and a refused one (RSA keys under 2048 bits).

Envoy, not the filter, answers some inputs: header values with VT/FF or other
controls (HTTP/1.1 400 "Bad Request", HTTP/2 connection closed), upper-case
header names over HTTP/2, and headers over its 60 KiB limit (HTTP/1.1 431,
HTTP/2 GOAWAY). Those count as denials when nothing reached the upstream.
"""

from __future__ import annotations

import base64
import datetime
import json
import re
import time
import uuid

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import NameOID

import harness as h
from h2client import H2Error, h2c_request

PROTOS = ["h1", "h2"]
PATH = "/payments/1"

# P-256 / P-384 group orders and the P-256 field prime
N256 = 0xFFFFFFFF00000000FFFFFFFFFFFFFFFFBCE6FAADA7179E84F3B9CAC2FC632551
P256 = 0xFFFFFFFF00000001000000000000000000000000FFFFFFFFFFFFFFFFFFFFFFFF
N384 = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFC7634D81F4372DDF581A0DB248B0A77AECEC196ACCC52973


# ---------------------------------------------------------------------------
# Sending over either protocol
# ---------------------------------------------------------------------------


class Rejected:
    """Envoy refused the request before the filter saw it (local reply or reset)."""

    def __init__(self, detail, reached_upstream, status=None):
        self.detail = detail
        self.reached_upstream = reached_upstream
        self.status = status

    def __repr__(self):
        return f"<rejected by Envoy: {self.detail}>"


def _scopegate_reply(resp) -> bool:
    try:
        body = resp.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "reason" in body


def send(gw, proto, target=PATH, token=None, headers=(), method="GET", authorization=None, keep_case=False):
    """One request; `authorization` (str or bytes) is the raw header value and
    overrides `token`. Returns a harness Response, or Rejected when Envoy itself
    answered (non-JSON 4xx) or closed the stream."""
    hdrs = list(headers)
    if authorization is None and token is not None:
        authorization = "Bearer " + token
    if authorization is not None:
        hdrs.append(("Authorization", authorization))
    if proto == "h1":
        try:
            r = gw.raw_request(method, target, headers=hdrs)
        except (ConnectionError, OSError) as e:
            return Rejected(f"h1 connection closed: {e!r}", False)
        if r.status >= 400 and not r.reached_upstream and not _scopegate_reply(r):
            return Rejected(f"h1 {r.status} {r.body[:40]!r}", False, r.status)
        return r
    mark = uuid.uuid4().hex
    h2hdrs = []
    for k, v in hdrs:
        v = v.decode("latin-1") if isinstance(v, bytes) else v
        h2hdrs.append((k if keep_case else k.lower(), v))
    h2hdrs.append((h.MARKER_HEADER, mark))
    try:
        status, rh, data = h2c_request("127.0.0.1", gw.port, method, target, h2hdrs, timeout=10)
    except (H2Error, OSError) as e:
        return Rejected(f"h2 {e!r}", gw.echo.find(mark) is not None)
    r = h.Response(status, h.Headers(rh), data, mark, gw.echo, protocol="HTTP/2")
    if r.status >= 400 and not r.reached_upstream and not _scopegate_reply(r):
        return Rejected(f"h2 {r.status} {r.body[:40]!r}", False, r.status)
    return r


_CHALLENGE = re.compile(
    r'^Bearer realm="[!#-\[\]-~ ]*"'
    r'(, error="(invalid_request|invalid_token|insufficient_scope)"'
    r'(, scope="[!#-\[\]-~ ]*")?, error_description="[!#-\[\]-~ ]*")?$'
)


def check_headers_well_formed(resp):
    www = resp.headers.get_all("www-authenticate")
    assert len(www) <= 1, f"several WWW-Authenticate headers: {www!r}"
    for w in www:
        assert not any(c in w for c in "\r\n\x00"), f"control character in WWW-Authenticate: {w!r}"
        assert len(w) < 1024, f"WWW-Authenticate of {len(w)} bytes"
        assert _CHALLENGE.match(w), f"WWW-Authenticate is not one well-formed Bearer challenge: {w!r}"
    names = {k.lower() for k, _ in resp.headers.items}
    assert not names & {"x-injected", "set-cookie"}, f"injected response header: {resp.headers!r}"
    for k, v in resp.headers.items:
        assert "\r" not in v and "\n" not in v, (k, v)


def denied(gw, resp, status, reason, token=None, scope=None):
    """A Scopegate denial (CONTRACT §2), upstream untouched, Envoy alive."""
    assert not isinstance(resp, Rejected), f"expected {status} {reason} from the filter, Envoy answered: {resp}"
    body = h.expect_denied(resp, status, reason, token=token, scope=scope)
    check_headers_well_formed(resp)
    assert gw.proc.poll() is None, "Envoy died"
    return body


def denied_or_rejected(gw, resp, status=None, reason=None):
    """For inputs Envoy itself may refuse: either Envoy did (and nothing reached
    the upstream), or the filter denied with `status`/`reason` (when given)."""
    assert gw.proc.poll() is None, "Envoy died"
    if isinstance(resp, Rejected):
        assert not resp.reached_upstream, resp
        return "rejected"
    assert resp.status != 200 and not resp.reached_upstream, f"attack got through: {resp}"
    if status is not None:
        denied(gw, resp, status, reason)
    return "denied"


# ---------------------------------------------------------------------------
# Fixtures: attacker material and extra gateways
# ---------------------------------------------------------------------------


class Ctx:
    def __init__(self, keys, echo):
        self.keys = keys
        self.echo = echo
        self.attacker = h.Key.rsa("attacker-rsa")
        self.attacker_ec = h.Key.ec("attacker-es256", "P-256", alg="ES256")
        self.pinned = h.Key.rsa("corp-ps256-pinned", alg="PS256")
        # an RSA key with n well below 2^2048, so that s + n still fits in 256 bytes
        for _ in range(40):
            self.low_n = h.Key.rsa("corp-rsa-low-n")
            if self.low_n.public.public_numbers().n < (2**2048) * 6 // 10:
                break
        self.jku = f"http://127.0.0.1:{echo.port}/attacker/jwks.json"
        self.x5u = f"http://127.0.0.1:{echo.port}/attacker/cert.pem"
        cert = self.self_signed(self.attacker)
        self.x5c = [base64.b64encode(cert.public_bytes(serialization.Encoding.DER)).decode()]
        self.x5t = h.b64u(cert.fingerprint(hashes.SHA256()))
        echo.documents["/attacker/jwks.json"] = (200, json.dumps({"keys": [self.attacker.jwk()]}).encode())
        echo.documents["/attacker/cert.pem"] = (200, cert.public_bytes(serialization.Encoding.PEM))

    @staticmethod
    def self_signed(key):
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "idp.example.com")])
        now = datetime.datetime.now(datetime.timezone.utc)
        return (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(name)
            .public_key(key.public)
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key.private, hashes.SHA256())
        )


@pytest.fixture(scope="module")
def ctx(keys, echo):
    c = Ctx(keys, echo)
    yield c
    for p in ("/attacker/jwks.json", "/attacker/cert.pem"):
        echo.documents.pop(p, None)


@pytest.fixture(scope="module")
def gw_attacks(gateways, keys, ctx):
    providers = h.base_filter_config(keys)["providers"]
    providers[0]["jwks"]["inline"]["keys"] += [ctx.pinned.jwk(), ctx.low_n.jwk()]
    return gateways.get(
        "attacks",
        providers=providers,
        token_sources=[{"header": "authorization", "prefix": "Bearer "}, {"query": "access_token"}],
        max_token_bytes=65536,
    )


def _offcurve_jwks(keys):
    good = keys.ec256.jwk()
    y = int.from_bytes(h.b64u_decode(good["y"]), "big")
    return [
        dict(good, kid="corp-offcurve", y=h.b64u(((y + 1) % P256).to_bytes(32, "big"))),
        dict(good, kid="corp-zero-point", x=h.b64u(bytes(32)), y=h.b64u(bytes(32))),
        dict(good, kid="corp-coord-p", x=h.b64u(P256.to_bytes(32, "big"))),
    ]


@pytest.fixture(scope="module")
def gw_offcurve(gateways, keys):
    """None when the filter refused the off-curve keys at configuration time
    (also acceptable; asserted from the log)."""
    providers = h.base_filter_config(keys)["providers"]
    providers[0]["jwks"]["inline"]["keys"].extend(_offcurve_jwks(keys))
    try:
        return gateways.get("attacks-offcurve", providers=providers)
    except h.EnvoyStartError as e:
        assert "/providers/0/jwks/inline/keys/4" in e.log_text, e
        return None


def c(scope="payments:read", **over):
    return h.claims(scope, **over)


def rs(keys, claims=None, **kw):
    """A correctly RS256-signed corp token (header/claims overridable)."""
    return h.mint(keys.rsa, claims if claims is not None else c(), alg="RS256", **kw)


# ---------------------------------------------------------------------------
# Algorithm attacks
# ---------------------------------------------------------------------------


def _alg_cases():
    cases = {}
    for spelling in ("none", "None", "NONE", "nOnE"):
        cases[f"alg-{spelling}-unsigned"] = (
            lambda x, s=spelling: h.mint(None, c(), header={"alg": s, "typ": "JWT", "kid": "corp-rsa"}),
            401, "unsupported_algorithm")
        cases[f"alg-{spelling}-with-rsa-signature"] = (
            lambda x, s=spelling: rs(x.keys, header={"alg": s, "typ": "JWT", "kid": "corp-rsa"}),
            401, "unsupported_algorithm")
    for alg in ("HS256", "HS384", "HS512"):
        cases[f"{alg}-secret-rsa-pem"] = (
            lambda x, a=alg: h.mint(None, c(), alg=a, kid="corp-rsa", hmac_secret=x.keys.rsa.public_pem()),
            401, "unsupported_algorithm")
        cases[f"{alg}-secret-rsa-jwk-json"] = (
            lambda x, a=alg: h.mint(None, c(), alg=a, kid="corp-rsa",
                                    hmac_secret=json.dumps(x.keys.rsa.jwk()).encode()),
            401, "unsupported_algorithm")
    cases["HS256-secret-ec-pem"] = (
        lambda x: h.mint(None, c(), alg="HS256", kid="corp-es256", hmac_secret=x.keys.ec256.public_pem()),
        401, "unsupported_algorithm")
    cases["HS256-secret-rsa-der"] = (
        lambda x: h.mint(None, c(), alg="HS256", kid="corp-rsa", hmac_secret=x.keys.rsa.public.public_bytes(
            serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)),
        401, "unsupported_algorithm")
    for i, name in enumerate(["rs256", "RS256 ", " RS256", "ES512", "ES256K", "RSA-OAEP", "dir", "",
                              "EDDSA", "Ed25519", "RS256\u0000", "PS256\u200b"]):
        cases[f"alg-unknown-{i}-{name.strip() or 'empty'}"] = (
            lambda x, n=name: rs(x.keys, header={"alg": n, "typ": "JWT", "kid": "corp-rsa"}),
            401, "unsupported_algorithm")
    # alg does not fit the type of the key the kid names: no key fits
    wrong_type = [
        ("ES256", "ec256", "corp-rsa"), ("ES384", "ec384", "corp-rsa"), ("EdDSA", "ed", "corp-rsa"),
        ("RS256", "rsa", "corp-es256"), ("PS256", "rsa", "corp-ed25519"), ("EdDSA", "ed", "corp-es256"),
        ("ES384", "ec384", "corp-es256"), ("ES256", "ec256", "corp-es384"),
    ]
    for alg, key, kid in wrong_type:
        cases[f"{alg}-on-kid-{kid}"] = (
            lambda x, a=alg, k=key, d=kid: h.mint(getattr(x.keys, k), c(), alg=a, kid=d), 401, "key_not_found")
    for i, bad in enumerate([None, 256, ["RS256"], {"name": "RS256"}, True]):
        label = "missing" if i == 0 else f"non-string-{type(bad).__name__}"
        cases[f"alg-{label}"] = (
            lambda x, b=bad, missing=(i == 0): rs(
                x.keys, header=({"typ": "JWT", "kid": "corp-rsa"} if missing else {"alg": b, "typ": "JWT", "kid": "corp-rsa"})),
            401, "token_malformed")
    cases["alg-null"] = (lambda x: rs(x.keys, header={"alg": None, "kid": "corp-rsa"}), 401, "token_malformed")
    return cases


ALG_CASES = _alg_cases()


@pytest.mark.parametrize("proto", PROTOS)
@pytest.mark.parametrize("case", list(ALG_CASES))
def test_algorithm_attack(gw, ctx, case, proto):
    build, status, reason = ALG_CASES[case]
    token = build(ctx)
    denied(gw, send(gw, proto, token=token), status, reason, token=token)


PINNED_CASES = {
    # the JWK says "alg": "PS256"; the same RSA key under another algorithm is not that key
    "RS256-with-PS256-pinned-kid": ("RS256", True, "key_not_found"),
    "RS512-with-PS256-pinned-kid": ("RS512", True, "key_not_found"),
    "PS384-with-PS256-pinned-kid": ("PS384", True, "key_not_found"),
    # without a kid the unpinned corp RSA key is tried, and it did not sign this
    "RS256-by-pinned-key-no-kid": ("RS256", False, "signature_invalid"),
}


@pytest.mark.parametrize("proto", PROTOS)
@pytest.mark.parametrize("case", list(PINNED_CASES))
def test_alg_not_matching_the_jwk_alg(gw_attacks, ctx, case, proto):
    alg, with_kid, reason = PINNED_CASES[case]
    token = h.mint(ctx.pinned, c(), alg=alg, kid=True if with_kid else None)
    denied(gw_attacks, send(gw_attacks, proto, token=token), 401, reason, token=token)


@pytest.mark.parametrize("proto", PROTOS)
def test_pinned_key_still_works_with_its_own_alg(gw_attacks, ctx, proto):
    h.expect_authenticated(send(gw_attacks, proto, token=h.mint(ctx.pinned, c(), alg="PS256")))


# ---------------------------------------------------------------------------
# Key attacks
# ---------------------------------------------------------------------------


def _embedded(x, field, kid, key=None, alg="RS256"):
    key = key or x.attacker
    value = {"jwk": key.jwk(), "jku": x.jku, "x5u": x.x5u, "x5c": x.x5c}[field]
    header = {"alg": alg, "typ": "JWT", field: value}
    if field == "x5c":
        header["x5t#S256"] = x.x5t
    if kid is not None:
        header["kid"] = kid
    return h.mint(key, c(), alg=alg, header=header)


def _key_cases():
    cases = {}
    for field in ("jwk", "jku", "x5u", "x5c"):
        cases[f"{field}-attacker-kid"] = (lambda x, f=field: _embedded(x, f, "attacker-rsa"), "key_not_found")
        cases[f"{field}-trusted-kid"] = (lambda x, f=field: _embedded(x, f, "corp-rsa"), "signature_invalid")
        cases[f"{field}-no-kid"] = (lambda x, f=field: _embedded(x, f, None), "signature_invalid")
    cases["jwk-ec-trusted-kid"] = (
        lambda x: _embedded(x, "jwk", "corp-es256", key=x.attacker_ec, alg="ES256"), "signature_invalid")
    cases["jwk-ec-no-kid"] = (lambda x: _embedded(x, "jwk", None, key=x.attacker_ec, alg="ES256"), "signature_invalid")
    return cases


KEY_CASES = _key_cases()


@pytest.mark.parametrize("proto", PROTOS)
@pytest.mark.parametrize("case", list(KEY_CASES))
def test_token_carrying_its_own_key_is_never_trusted(gw, ctx, case, proto):
    build, reason = KEY_CASES[case]
    token = build(ctx)
    denied(gw, send(gw, proto, token=token), 401, reason, token=token)


def test_jku_and_x5u_are_never_fetched(gw, ctx):
    fetched = [r["path"] for r in ctx.echo.requests if r["path"].startswith("/attacker/")]
    assert not fetched, f"the gateway fetched attacker-supplied key URLs: {fetched}"


KIDS = {
    "path-traversal": "../../etc/passwd",
    "path-absolute": "/etc/passwd",
    "path-windows": "..\\..\\windows\\win.ini",
    "file-url": "file:///dev/null",
    "sql-or": "' OR 1=1 --",
    "sql-union": "x' UNION SELECT 'AAAA' --",
    "nul": "kid\u0000",
    "trusted-plus-nul": "corp-rsa\u0000",
    "crlf-header": "kid\r\nX-Injected: 1",
    "crlf-challenge": "\r\nWWW-Authenticate: Basic realm=\"x\"",
    "lf-suffix": "corp-rsa\n",
    "quote-break": 'x", error="none", x="',
    "backslash-quote": 'a\\"b',
    "long-4000": "k" * 4000,
    "trusted-trailing-space": "corp-rsa ",
    "trusted-upper-case": "CORP-RSA",
    "trusted-zero-width": "corp-rsa\u200b",
    "trusted-rtl-override": "\u202ecorp-rsa",
    "jndi": "${jndi:ldap://127.0.0.1/a}",
    "shell": "|cat /etc/passwd",
    "html": "<script>alert(1)</script>",
    "percent-nul": "%00",
    "empty": "",
}


@pytest.mark.parametrize("proto", PROTOS)
@pytest.mark.parametrize("case", list(KIDS))
def test_kid_injection_is_key_not_found(gw, keys, case, proto):
    token = rs(keys, kid=KIDS[case])
    r = send(gw, proto, token=token)
    body = denied(gw, r, 401, "key_not_found", token=token)
    assert len(body["error_description"]) < 400, body


@pytest.mark.parametrize("proto", PROTOS)
@pytest.mark.parametrize("kid", [1, None, ["corp-rsa"], {"kid": "corp-rsa"}, True], ids=str)
def test_non_string_kid_is_malformed(gw, keys, kid, proto):
    token = rs(keys, header={"alg": "RS256", "typ": "JWT", "kid": kid})
    denied(gw, send(gw, proto, token=token), 401, "token_malformed", token=token)


def test_rsa_keys_under_2048_bits_refused_at_configuration(prerequisites, keys, echo):
    small = [h.Key.rsa("corp-rsa-1024", bits=1024), h.Key.rsa("corp-rsa-2047", bits=2047)]
    assert small[1].public.key_size == 2047
    cfg = h.base_filter_config(keys)
    cfg["providers"][0]["jwks"] = {"inline": {"keys": [k.jwk() for k in small] + [keys.ec256.jwk()]}}
    envoy = h.Envoy("attacks-weak-rsa", cfg, echo)
    try:
        how, log = envoy.start_expect_failure()
    finally:
        envoy.cleanup()
    assert how != "exited:0", how
    for i in (0, 1):
        assert f"/providers/0/jwks/inline/keys/{i}/n" in log, h.tail(log, 30)
    assert "at least 2048" in log, h.tail(log, 30)


@pytest.mark.parametrize("proto", PROTOS)
@pytest.mark.parametrize("kid", ["corp-offcurve", "corp-zero-point", "corp-coord-p"])
def test_ec_point_not_on_curve(gw_offcurve, keys, kid, proto):
    if gw_offcurve is None:
        return  # refused at configuration, asserted by the fixture
    good = h.mint(keys.ec256, c(), alg="ES256", kid=kid)
    denied(gw_offcurve, send(gw_offcurve, proto, token=good), 401, "signature_invalid", token=good)
    zero = h.mint(keys.ec256, c(), alg="ES256", kid=kid, signature=bytes(64))
    denied(gw_offcurve, send(gw_offcurve, proto, token=zero), 401, "signature_invalid", token=zero)
    # the other keys of the same set keep working
    h.expect_authenticated(send(gw_offcurve, proto, token=h.mint(keys.ec256, c(), alg="ES256")))


def _ecdsa_parts(key, alg, claims):
    size = {"ES256": 32, "ES384": 48}[alg]
    token = h.mint(key, claims, alg=alg)
    raw = h.b64u_decode(token.rsplit(".", 1)[1])
    return token.rsplit(".", 1)[0], int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big"), size


def _psychic(alg, r_of, s_of):
    def build(x):
        key = x.keys.ec256 if alg == "ES256" else x.keys.ec384
        n = N256 if alg == "ES256" else N384
        head, r, s, size = _ecdsa_parts(key, alg, c())
        rr, ss = r_of(r, n), s_of(s, n)
        return head + "." + h.b64u(rr.to_bytes(size, "big") + ss.to_bytes(size, "big"))
    return build


def _sig_bytes(alg, transform):
    def build(x):
        key = x.keys.ec256 if alg == "ES256" else x.keys.ec384
        head, _, sig = h.mint(key, c(), alg=alg).rpartition(".")
        return head + "." + h.b64u(transform(h.b64u_decode(sig)))
    return build


def _der(alg):
    return lambda x: h.mint(x.keys.ec256 if alg == "ES256" else x.keys.ec384, c(), alg=alg, der=True)


ECDSA_CASES = {
    "ES256-r0-s0": _psychic("ES256", lambda r, n: 0, lambda s, n: 0),
    "ES256-r0-s-valid": _psychic("ES256", lambda r, n: 0, lambda s, n: s),
    "ES256-r-valid-s0": _psychic("ES256", lambda r, n: r, lambda s, n: 0),
    "ES256-r-n-s-n": _psychic("ES256", lambda r, n: n, lambda s, n: n),
    "ES256-r-n-s-valid": _psychic("ES256", lambda r, n: n, lambda s, n: s),
    "ES256-r-valid-s-n": _psychic("ES256", lambda r, n: r, lambda s, n: n),
    "ES256-r-n-1-s-n-1": _psychic("ES256", lambda r, n: n - 1, lambda s, n: n - 1),
    "ES256-r-n+1-s-n+1": _psychic("ES256", lambda r, n: n + 1, lambda s, n: n + 1),
    "ES256-r-p-s-p": _psychic("ES256", lambda r, n: P256, lambda s, n: P256),
    "ES256-r-max-s-max": _psychic("ES256", lambda r, n: 2**256 - 1, lambda s, n: 2**256 - 1),
    "ES256-r1-s1": _psychic("ES256", lambda r, n: 1, lambda s, n: 1),
    "ES384-r0-s0": _psychic("ES384", lambda r, n: 0, lambda s, n: 0),
    "ES384-r-n-s-n": _psychic("ES384", lambda r, n: n, lambda s, n: n),
    "ES384-r-valid-s0": _psychic("ES384", lambda r, n: r, lambda s, n: 0),
    "ES256-der": _der("ES256"),
    "ES384-der": _der("ES384"),
    "ES256-63-bytes": _sig_bytes("ES256", lambda b: b[:-1]),
    "ES256-65-bytes": _sig_bytes("ES256", lambda b: b + b"\x00"),
    "ES256-leading-zero": _sig_bytes("ES256", lambda b: b"\x00" + b),
    "ES256-doubled": _sig_bytes("ES256", lambda b: b + b),
    "ES256-empty": _sig_bytes("ES256", lambda b: b""),
}


@pytest.mark.parametrize("proto", PROTOS)
@pytest.mark.parametrize("case", list(ECDSA_CASES))
def test_ecdsa_signature_attack(gw, ctx, case, proto):
    token = ECDSA_CASES[case](ctx)
    denied(gw, send(gw, proto, token=token), 401, "signature_invalid", token=token)


def _rsa_sig(alg, transform):
    def build(x):
        n = x.low_n.public.public_numbers().n
        for _ in range(200):
            head, _, sig = h.mint(x.low_n, c(), alg=alg).rpartition(".")
            out = transform(int.from_bytes(h.b64u_decode(sig), "big"), n)
            if out is not None:
                return head + "." + h.b64u(out)
        raise AssertionError("could not build the signature")
    return build


def _fixed(v, n):
    return v.to_bytes(256, "big") if v < 2**2048 else None


RSA_CASES = {
    # our own RSA code: the representative must be below n (RFC 8017 §8.2.2/5.2.2)
    "RS256-s-plus-n": _rsa_sig("RS256", lambda s, n: _fixed(s + n, n)),
    "PS256-s-plus-n": _rsa_sig("PS256", lambda s, n: _fixed(s + n, n)),
    "RS256-s-equals-n": _rsa_sig("RS256", lambda s, n: _fixed(n, n)),
    "RS256-s-n-minus-1": _rsa_sig("RS256", lambda s, n: _fixed(n - 1, n)),
    "RS256-s-zero": _rsa_sig("RS256", lambda s, n: bytes(256)),
    "RS256-s-one": _rsa_sig("RS256", lambda s, n: _fixed(1, n)),
    "RS256-s-all-ff": _rsa_sig("RS256", lambda s, n: b"\xff" * 256),
    "RS256-leading-zero-257": _rsa_sig("RS256", lambda s, n: b"\x00" + s.to_bytes(256, "big")),
    "RS256-truncated-255": _rsa_sig("RS256", lambda s, n: s.to_bytes(256, "big")[1:]),
    "RS256-empty": _rsa_sig("RS256", lambda s, n: b""),
}


@pytest.mark.parametrize("proto", PROTOS)
@pytest.mark.parametrize("case", list(RSA_CASES))
def test_rsa_signature_edge_values(gw_attacks, ctx, case, proto):
    token = RSA_CASES[case](ctx)
    denied(gw_attacks, send(gw_attacks, proto, token=token), 401, "signature_invalid", token=token)


@pytest.mark.parametrize("proto", PROTOS)
@pytest.mark.parametrize("alg", ["RS256", "PS256"])
def test_rsa_low_n_key_works_unaltered(gw_attacks, ctx, alg, proto):
    h.expect_authenticated(send(gw_attacks, proto, token=h.mint(ctx.low_n, c(), alg=alg)))


def _b64_false(x, detached):
    header = {"alg": "RS256", "kid": "corp-rsa", "b64": False, "crit": ["b64"]}
    hseg = h.b64u(json.dumps(header, separators=(",", ":")).encode())
    payload = json.dumps(c(), separators=(",", ":"))
    sig = h.b64u(x.keys.rsa.sign("RS256", (hseg + "." + payload).encode()))
    return f"{hseg}..{sig}" if detached else f"{hseg}.{payload}.{sig}"


CRIT_CASES = {
    "crit-exp": lambda x: rs(x.keys, header={"alg": "RS256", "kid": "corp-rsa", "crit": ["exp"], "exp": int(time.time()) + 600}),
    "crit-b64-false-encoded-payload": lambda x: rs(x.keys, header={"alg": "RS256", "kid": "corp-rsa", "b64": False, "crit": ["b64"]}),
    "crit-b64-false-raw-payload": lambda x: _b64_false(x, False),
    "crit-b64-false-detached": lambda x: _b64_false(x, True),
    "crit-empty-list": lambda x: rs(x.keys, header={"alg": "RS256", "kid": "corp-rsa", "crit": []}),
    "crit-string": lambda x: rs(x.keys, header={"alg": "RS256", "kid": "corp-rsa", "crit": "b64"}),
    "crit-unknown-extension": lambda x: rs(x.keys, header={"alg": "RS256", "kid": "corp-rsa", "crit": ["urn:x:y"], "urn:x:y": 1}),
}


@pytest.mark.parametrize("proto", PROTOS)
@pytest.mark.parametrize("case", list(CRIT_CASES))
def test_crit_header_is_malformed(gw, ctx, case, proto):
    token = CRIT_CASES[case](ctx)
    if case == "crit-b64-false-raw-payload":
        # the unencoded JSON payload has ',' in it: not a b64token (RFC 6750
        # §2.1), so the Authorization header is refused before any parsing
        denied(gw, send(gw, proto, token=token), 400, "request_malformed", token=token)
        return
    denied(gw, send(gw, proto, token=token), 401, "token_malformed", token=token)


# ---------------------------------------------------------------------------
# Encoding attacks
# ---------------------------------------------------------------------------


def _std_alphabet(x, url, std, where):
    # "~~~" encodes to "fn5-" and "???" to "Pz8_": some aligned triple gives each character
    for _ in range(500):
        parts = rs(x.keys, c(pad=uuid.uuid4().hex, note="~~~~~~??????")).split(".")
        if url in parts[where]:
            parts[where] = parts[where].replace(url, std)
            return ".".join(parts)
    raise AssertionError(f"no {url!r} in segment {where}")


def _seg(obj) -> str:
    return h.b64u(obj if isinstance(obj, bytes) else json.dumps(obj, separators=(",", ":")).encode())


def _nested(depth, kind="array"):
    if kind == "array":
        return "[" * depth + "]" * depth
    return '{"a":' * depth + "1" + "}" * depth


def _raw_claims(extra: str) -> bytes:
    """Valid corp claims as JSON text, with `extra` members spliced in raw."""
    text = json.dumps(c(), separators=(",", ":"))
    return (text[:-1] + "," + extra + "}").encode()


HDR = '"typ":"JWT","kid":"corp-rsa"'


def _claims_with(over):
    """Valid claims with members replaced (a value of ... removes the member)."""
    cl = c()
    for name, value in over.items():
        if value is ...:
            cl.pop(name, None)
        else:
            cl[name] = value
    return cl


def _enc_cases():
    k = lambda x: x.keys  # noqa: E731
    cases = {
        "std-alphabet-plus-signature": lambda x: _std_alphabet(x, "-", "+", 2),
        "std-alphabet-slash-signature": lambda x: _std_alphabet(x, "_", "/", 2),
        "std-alphabet-plus-payload": lambda x: _std_alphabet(x, "-", "+", 1),
        "std-alphabet-slash-payload": lambda x: _std_alphabet(x, "_", "/", 1),
        "padding-signature": lambda x: rs(k(x)) + "==",
        "padding-payload": lambda x: (lambda p: ".".join([p[0], p[1] + "=", p[2]]))(rs(k(x)).split(".")),
        "segments-4": lambda x: rs(k(x)) + "." + _seg({}),
        "segments-4-trailing-dot": lambda x: rs(k(x)) + ".",
        "segments-4-leading-dot": lambda x: "." + rs(k(x)),
        "segments-5-jwe": lambda x: ".".join([_seg({"alg": "RSA-OAEP", "enc": "A256GCM", "kid": "corp-rsa"}),
                                               h.b64u(b"k" * 256), h.b64u(b"i" * 12), h.b64u(b"c" * 40), h.b64u(b"t" * 16)]),
        "segments-5-jws-padded": lambda x: rs(k(x)) + ".x.y",
        "segments-6": lambda x: rs(k(x)) + ".a.b.c",
        "segments-empty": lambda x: "..",
        "segments-empty-4": lambda x: "...",
        "header-string": lambda x: rs(k(x), header=b'"RS256"'),
        "header-number": lambda x: rs(k(x), header=b"256"),
        "header-null": lambda x: rs(k(x), header=b"null"),
        "header-true": lambda x: rs(k(x), header=b"true"),
        "header-empty-object": lambda x: rs(k(x), header=b"{}"),
        "header-trailing-garbage": lambda x: rs(k(x), header=b'{"alg":"RS256",' + HDR.encode() + b"}x"),
        "header-bom": lambda x: rs(k(x), header=b"\xef\xbb\xbf" + json.dumps({"alg": "RS256", "kid": "corp-rsa"}).encode()),
        "header-utf16": lambda x: rs(k(x), header=json.dumps({"alg": "RS256", "kid": "corp-rsa"}).encode("utf-16")),
        "payload-number": lambda x: rs(k(x), b"42"),
        "payload-null": lambda x: rs(k(x), b"null"),
        "payload-true": lambda x: rs(k(x), b"true"),
        "payload-empty": lambda x: rs(k(x), b""),
        "payload-nested-array": lambda x: rs(k(x), b"[[{}]]"),
        "payload-trailing-comma": lambda x: rs(k(x), _raw_claims('"x":1,')),
        "payload-invalid-utf8": lambda x: rs(k(x), _raw_claims('"x":"')[:-1] + b'\xff\xfe"}'),
        "nesting-10000-over-size-limit": lambda x: rs(k(x), _raw_claims('"deep":' + _nested(10000))),
        # duplicate member names: readers that keep the first and the last disagree
        "duplicate-scope": lambda x: rs(k(x), _raw_claims('"scope":"payments:read","scope":"admin"')),
        "duplicate-scope-escaped-name": lambda x: rs(k(x), _raw_claims('"scope":"payments:read","sc\\u006fpe":"admin"')),
        "duplicate-exp": lambda x: rs(k(x), _raw_claims('"exp":%d' % (int(time.time()) + 300))),
        "duplicate-iss": lambda x: rs(k(x), _raw_claims('"iss":"https://evil.example.com"')),
        "duplicate-alg": lambda x: rs(k(x), header=('{"alg":"RS256","alg":"RS256",' + HDR + "}").encode()),
        "duplicate-alg-none-then-rs256": lambda x: rs(k(x), header=('{"alg":"none","alg":"RS256",' + HDR + "}").encode()),
        "duplicate-kid": lambda x: rs(k(x), header=('{"alg":"RS256","kid":"corp-rsa",' + HDR + "}").encode()),
    }
    # wrong claim types (all correctly signed)
    types = {
        "exp-string": {"exp": str(int(time.time()) + 600)},
        "exp-float-1e300": {"exp": 1e300},
        "exp-negative": {"exp": -1},
        "exp-true": {"exp": True},
        "exp-null": {"exp": None},
        "exp-array": {"exp": [int(time.time()) + 600]},
        "nbf-string": {"nbf": "0"},
        "iat-negative": {"iat": -5},
        "iat-string": {"iat": "now"},
        "aud-object": {"aud": {"payments-api": True}},
        "aud-array-number": {"aud": ["payments-api", 1]},
        "aud-null": {"aud": None},
        "iss-number": {"iss": 1},
        "sub-number": {"sub": 12},
        "jti-number": {"jti": 5},
        "scope-number": {"scope": 1},
        "scope-object": {"scope": {"payments:read": True}},
        "scope-array-non-string": {"scope": ["payments:read", 1]},
        "scope-array-nested": {"scope": [["payments:read"]]},
        "scope-null": {"scope": None},
        "scope-true": {"scope": True},
        "client-id-number": {"client_id": 7},
        # characters outside RFC 6749 scope-tokens: never equal to payments:read
        "scope-zero-width-space": {"scope": "payments:read\u200b"},
        "scope-bel": {"scope": "payments:read\u0007"},
        "scope-tab": {"scope": "payments:read\tadmin"},
        "scope-newline": {"scope": "payments:read\nadmin"},
        "scope-crlf": {"scope": "payments:read\r\nadmin"},
        "scope-nbsp": {"scope": "payments:read\u00a0admin"},
        "scope-nul": {"scope": "payments:read\u0000"},
        "scope-line-separator": {"scope": "payments:read\u2028admin"},
        "scope-fullwidth": {"scope": "\uff50\uff41\uff59\uff4d\uff45\uff4e\uff54\uff53:read"},
        "scope-cyrillic-a": {"scope": "p\u0430yments:read"},
        "scope-quote": {"scope": 'payments:read"admin'},
        "scope-backslash": {"scope": "payments:read\\admin"},
        "scope-array-zero-width": {"scope": ["payments:read\u200b"]},
        "scope-array-with-space": {"scope": ["payments:read admin"]},
        "scp-zero-width-when-no-scope": {"scope": ..., "scp": ["payments:read\u200b"]},
        # identity-header injection through claims the filter copies into headers
        "sub-crlf": {"sub": "svc\r\nx-identity-scopes: admin"},
        "sub-nul": {"sub": "svc\u0000"},
        "client-id-crlf": {"client_id": "ops-bot\r\nx-admin: 1"},
        "tenant-crlf": {"tenant": "acme\r\nx-identity-subject: root"},
    }
    for name, over in types.items():
        cases[name] = lambda x, o=over: rs(k(x), _claims_with(o))
    cases["token-20KiB"] = lambda x: rs(k(x), c(pad="x" * 14600))
    return cases


ENC_CASES = _enc_cases()


@pytest.mark.parametrize("proto", PROTOS)
@pytest.mark.parametrize("case", list(ENC_CASES))
def test_encoding_attack(gw, ctx, case, proto):
    token = ENC_CASES[case](ctx)
    denied(gw, send(gw, proto, token=token), 401, "token_malformed", token=token)


@pytest.mark.parametrize("proto", PROTOS)
@pytest.mark.parametrize("where,kind,depth", [("claim", "array", 10000), ("claim", "object", 4000), ("header", "array", 10000)])
def test_deep_nesting_reaches_the_parser_and_is_malformed(gw_attacks, keys, where, kind, depth, proto):
    # max_token_bytes is 64 KiB on this gateway: the JSON parser, not the size check, refuses it
    if where == "claim":
        token = rs(keys, _raw_claims('"deep":' + _nested(depth, kind)))
    else:
        token = rs(keys, header=('{"alg":"RS256",' + HDR + ',"deep":' + _nested(depth, kind) + "}").encode())
    assert 8192 < len(token) < 56 * 1024, len(token)
    body = denied(gw_attacks, send(gw_attacks, proto, token=token), 401, "token_malformed", token=token)
    assert "the limit is" not in body["error_description"], body


@pytest.mark.parametrize("proto", PROTOS)
def test_token_70KiB_refused_by_envoy_header_limit(gw, keys, proto):
    # over Envoy's max_request_headers_kb (60): HTTP/1.1 431 from Envoy, HTTP/2 GOAWAY
    token = rs(keys, c(pad="x" * (54 * 1024)))
    assert len(token) > 70 * 1024
    r = send(gw, proto, token=token)
    assert denied_or_rejected(gw, r) == "rejected", r
    if proto == "h1":
        assert r.status == 431, r


def _ws_token(keys):
    return rs(keys, c(pad=uuid.uuid4().hex))


WS_INNER = {
    # (value builder, filter's answer when Envoy lets it through)
    "inner-space": (lambda t: f"Bearer {t[:40]} {t[40:]}", 400, "request_malformed"),
    "inner-space-around-dot": (lambda t: "Bearer " + t.replace(".", " . ", 1), 400, "request_malformed"),
    "inner-tab": (lambda t: f"Bearer {t[:40]}\t{t[40:]}", 400, "request_malformed"),
    "leading-tab": (lambda t: f"Bearer \t{t}", 400, "request_malformed"),
    "inner-nbsp": (lambda t: (f"Bearer {t[:40]}".encode() + b"\xa0" + t[40:].encode()), 401, "token_malformed"),
    "inner-ideographic-space": (lambda t: (f"Bearer {t[:40]}".encode() + "\u3000".encode() + t[40:].encode()), 401, "token_malformed"),
    "inner-comma": (lambda t: f"Bearer {t[:40]},{t[40:]}", 400, "request_malformed"),
    "inner-obs-fold": (lambda t: f"Bearer {t[:40]}\r\n {t[40:]}", 400, "request_malformed"),
    "inner-vt": (lambda t: f"Bearer {t[:40]}\x0b{t[40:]}", None, None),
    "inner-ff": (lambda t: f"Bearer {t[:40]}\x0c{t[40:]}", None, None),
    "inner-nul": (lambda t: f"Bearer {t[:40]}\x00{t[40:]}", None, None),
    "inner-cr": (lambda t: f"Bearer {t[:40]}\r{t[40:]}", None, None),
    "cr-then-forged-header": (lambda t: f"Bearer {t}\rX-Identity-Subject: root", 400, "request_malformed"),
}


@pytest.mark.parametrize("proto", PROTOS)
@pytest.mark.parametrize("case", list(WS_INNER))
def test_whitespace_inside_token_is_denied(gw, keys, case, proto):
    build, status, reason = WS_INNER[case]
    token = _ws_token(keys)
    r = send(gw, proto, authorization=build(token))
    if case == "inner-cr" and proto == "h1" and not isinstance(r, Rejected) and r.status == 200:
        # Envoy's HTTP/1 parser deletes a bare CR inside a header value: the
        # filter (and the upstream) see the genuine token, not a variant of it
        up = h.expect_authenticated(r)
        assert up["headers"].get("authorization") == [f"Bearer {token}"], up["headers"]
        return
    denied_or_rejected(gw, r, status, reason)


@pytest.mark.parametrize("proto", PROTOS)
@pytest.mark.parametrize("spaces", [("  ", ""), (" ", " "), ("   ", "   "), ("", "\t")], ids=["lead2", "trail1", "both3", "trail-tab"])
def test_whitespace_around_token_never_changes_the_verdict(gw, keys, spaces, proto):
    """RFC 6750 §2.1 allows 1*SP after "Bearer" and HTTP trims trailing OWS, so
    blanks around a token are not part of it: a valid token stays valid, a
    forged one stays denied for the same reason. Over HTTP/2 a trailing TAB is
    not trimmed by Envoy and the filter refuses it (400), which is also fine."""
    lead, trail = spaces
    good = _ws_token(keys)
    head, payload, sig = rs(keys).split(".")
    forged = ".".join([head, _seg(c("admin payments:read", client_id="ops-bot")), sig])
    r = send(gw, proto, authorization=f"Bearer {lead}{good}{trail}")
    if trail == "\t" and proto == "h2":
        denied(gw, r, 400, "request_malformed")
    else:
        h.expect_authenticated(r)
    r = send(gw, proto, target="/admin/x", authorization=f"Bearer {lead}{forged}{trail}")
    if trail == "\t" and proto == "h2":
        denied(gw, r, 400, "request_malformed")
    else:
        denied(gw, r, 401, "signature_invalid", token=forged)


# ---------------------------------------------------------------------------
# Request attacks
# ---------------------------------------------------------------------------

FORGED = [
    ("x-identity-subject", "forged-subject"),
    ("x-identity-client-id", "forged-client"),
    ("x-identity-issuer", "https://forged.example"),
    ("x-identity-scopes", "admin payments:write"),
    ("x-identity-tenant", "forged-tenant"),
]


def _no_forged(up):
    for name, value in FORGED:
        assert value not in up["headers"].get(name, []), f"client-supplied {name} reached the upstream: {up['headers']}"


@pytest.mark.parametrize("route", ["allowed", "public", "no-token", "insufficient-scope", "unmatched", "malformed-path"])
def test_h2_forged_identity_headers_on_every_route(gw, tok, route):
    reader = tok("payments:read", client_id="ops-bot")
    target, token, outcome = {
        "allowed": (PATH, reader, 200),
        "public": ("/healthz", None, 200),
        "no-token": (PATH, None, (401, "token_missing")),
        "insufficient-scope": ("/admin/x", reader, (403, "insufficient_scope")),
        "unmatched": ("/nowhere", reader, (403, "route_not_allowed")),
        "malformed-path": ("/payments/..;/admin", reader, (400, "request_malformed")),
    }[route]
    r = send(gw, "h2", target=target, token=token, headers=FORGED)
    if outcome == 200:
        up = h.expect_allowed(r)
        _no_forged(up)
        if token:
            assert up["headers"].get("x-identity-subject") == ["svc-billing"]
            assert up["headers"].get("x-identity-scopes") == ["payments:read"]
        else:
            for name in h.IDENTITY_HEADERS:
                assert name not in up["headers"], name
    else:
        denied(gw, r, *outcome, token=token)


@pytest.mark.parametrize("gateway", ["allow", "dry-run"])
def test_h2_forged_identity_headers_default_allow_and_dry_run(gw_allow, gw_dry_run, gateway):
    g = gw_allow if gateway == "allow" else gw_dry_run
    target = "/unmatched/path" if gateway == "allow" else PATH
    up = h.expect_allowed(send(g, "h2", target=target, headers=FORGED))
    for name in h.IDENTITY_HEADERS:
        assert name not in up["headers"], name


def test_h2_mixed_case_identity_header_is_refused_by_envoy(gw, tok):
    # HTTP/2 forbids upper-case field names (RFC 9113 §8.2.1): Envoy's codec
    # refuses the stream, so a mixed-case spelling cannot even be delivered
    r = send(gw, "h2", token=tok("payments:read"), headers=[("X-Identity-Subject", "forged")], keep_case=True)
    assert denied_or_rejected(gw, r) == "rejected", r


@pytest.mark.parametrize("proto", PROTOS)
def test_token_in_header_and_query_is_request_malformed(gw_attacks, tok, proto):
    a = tok("payments:read")
    denied(gw_attacks, send(gw_attacks, proto, target=f"{PATH}?access_token={a}", token=a), 400, "request_malformed", token=a)
    b = tok("payments:read")
    denied(gw_attacks, send(gw_attacks, proto, target=f"{PATH}?x=1&access_token={b}", token=a), 400, "request_malformed", token=a)


@pytest.mark.parametrize("proto", PROTOS)
def test_token_twice_in_query_is_request_malformed(gw_attacks, tok, proto):
    a, b = tok("payments:read"), tok("payments:read")
    denied(gw_attacks, send(gw_attacks, proto, target=f"{PATH}?access_token={a}&access_token={a}"), 400, "request_malformed", token=a)
    denied(gw_attacks, send(gw_attacks, proto, target=f"{PATH}?access_token={a}&access_token={b}"), 400, "request_malformed", token=a)


@pytest.mark.parametrize("proto", PROTOS)
def test_empty_query_token_beside_header_token_is_request_malformed(gw_attacks, tok, proto):
    a = tok("payments:read")
    denied(gw_attacks, send(gw_attacks, proto, target=f"{PATH}?access_token=", token=a), 400, "request_malformed", token=a)


@pytest.mark.parametrize("proto", PROTOS)
def test_single_token_sources_still_work(gw_attacks, tok, proto):
    a = tok("payments:read")
    h.expect_authenticated(send(gw_attacks, proto, token=a))
    h.expect_authenticated(send(gw_attacks, proto, target=f"{PATH}?access_token={a}"))


@pytest.mark.parametrize("name", ["x-http-method-override", "x-method-override", "x-http-method"])
def test_h2_method_override_is_stripped_and_ignored(gw, tok, name):
    up = h.expect_allowed(send(gw, "h2", token=tok("payments:read"), headers=[(name, "DELETE")]))
    assert up["method"] == "GET"
    assert name not in up["headers"], up["headers"]
    token = tok("payments:read")
    denied(gw, send(gw, "h2", method="POST", token=token, headers=[(name, "GET")]), 403, "route_not_allowed", token=token)


def test_h2_lower_case_method_is_not_get(gw, tok):
    token = tok("payments:read")
    denied(gw, send(gw, "h2", method="get", token=token), 403, "route_not_allowed", token=token)


# ---------------------------------------------------------------------------
# Still serving
# ---------------------------------------------------------------------------


@pytest.mark.parametrize("proto", PROTOS)
def test_zz_gateways_still_serve_after_the_attacks(gw, gw_attacks, tok, proto):
    for g in (gw, gw_attacks):
        assert g.proc.poll() is None, f"Envoy {g.name} died"
        h.expect_authenticated(send(g, proto, token=tok("payments:read")))
        h.expect_allowed(send(g, proto, target="/healthz"))
    # the admin rule still works for the right caller
    h.expect_allowed(send(gw, proto, target="/admin/x", token=tok("admin", client_id="ops-bot")))
