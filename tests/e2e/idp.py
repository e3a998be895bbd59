"""A real OAuth 2.0 authorization server and the client side of sender-
constrained tokens, for the end-to-end tests of RFC 8705 (certificate-bound)
and RFC 9449 (DPoP) access tokens.

* `AuthorizationServer`: runs `node tests/idp/server.mjs` (panva's
  oidc-provider; `npm ci` in tests/idp first when its node_modules is
  missing) and gets tokens from its token endpoint with the client-credentials
  grant: `bearer_token`, `dpop_token` (makes the token endpoint's DPoP proof
  itself), `mtls_token` (presents the client certificate; see the test
  shortcut in tests/idp/server.mjs: the certificate travels in the
  `x-client-cert` header, since the server speaks plain HTTP on loopback).
  `provider()` / `cluster()` give the filter provider and the Envoy cluster
  that fetch its JWKS.
* `DpopKey`: a proof-of-possession key (ES256 by default; RS256, PS256,
  EdDSA, ES384) whose `proof()` makes DPoP proofs, valid or wrong in any one
  way a test needs (alg none, HS256, a private member in `jwk`, another key's
  `jwk`, wrong htm/htu/ath/iat/typ, claims left out).
* `TestCA`: a CA with a server certificate for 127.0.0.1/localhost and
  client certificates (files on disk for Envoy and `ssl`), and
  `tls_listener()` for `harness.Envoy(..., tls=...)`.
* `jwk_thumbprint` (RFC 7638) and `x5t_s256` (RFC 8705 §3.1).
* `challenges`: the `WWW-Authenticate` challenges of a response, parsed
  (shared by the Envoy and Kong sender-constrained tests).
"""

from __future__ import annotations

import atexit
import datetime
import hashlib
import ipaddress
import json
import os
import re
import select
import shutil
import subprocess
import tempfile
import time
import urllib.error
import urllib.parse
import urllib.request
import uuid

from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

import harness as h

IDP_DIR = os.path.join(h.REPO_ROOT, "tests", "idp")
AUDIENCE = "https://api.example.test"  # the audience of every access token the server issues
RS256_RESOURCE = AUDIENCE + "/rs256"  # resource indicator whose tokens are signed RS256 (the default: ES256)


# --------------------------------------------------------------------------
# Thumbprints
# --------------------------------------------------------------------------

_THUMBPRINT_MEMBERS = {"EC": ("crv", "kty", "x", "y"), "RSA": ("e", "kty", "n"), "OKP": ("crv", "kty", "x")}


def jwk_thumbprint(jwk: dict) -> str:
    """RFC 7638 JWK SHA-256 thumbprint, base64url (what `cnf.jkt` holds)."""
    members = {k: jwk[k] for k in _THUMBPRINT_MEMBERS[jwk["kty"]]}
    return h.b64u(hashlib.sha256(json.dumps(members, separators=(",", ":"), sort_keys=True).encode()).digest())


def _der(cert) -> bytes:
    if isinstance(cert, x509.Certificate):
        return cert.public_bytes(serialization.Encoding.DER)
    if hasattr(cert, "der"):
        return cert.der
    data = cert.encode("ascii") if isinstance(cert, str) else cert
    if data.lstrip().startswith(b"-----BEGIN"):
        return x509.load_pem_x509_certificate(data).public_bytes(serialization.Encoding.DER)
    return data


def x5t_s256(cert) -> str:
    """RFC 8705 §3.1: base64url(SHA-256(DER)) of a certificate (a
    `cryptography` certificate, PEM, DER, or an IssuedCert)."""
    return h.b64u(hashlib.sha256(_der(cert)).digest())


def claims_of(token: str) -> dict:
    """The payload of a compact JWS (not verified)."""
    return json.loads(h.b64u_decode(token.split(".")[1]))


def header_of(token: str) -> dict:
    return json.loads(h.b64u_decode(token.split(".")[0]))


def access_token_hash(access_token: str) -> str:
    """RFC 9449 §4.2: base64url(SHA-256(ASCII access token))."""
    return h.b64u(hashlib.sha256(access_token.encode("ascii")).digest())


def htu(url: str) -> str:
    """A URL without its query and fragment (RFC 9449 §4.2 `htu`)."""
    return url.split("#", 1)[0].split("?", 1)[0]


# --------------------------------------------------------------------------
# Challenges (RFC 9110 §11.6.1)
# --------------------------------------------------------------------------

_SCHEME = re.compile(r"[\s,]*([A-Za-z0-9!#$%&'*+.^_`|~-]+)(?=[\s,]|$)")
_PARAM = re.compile(r"[\s]*([A-Za-z0-9!#$%&'*+.^_`|~-]+)[\s]*=[\s]*(\"(?:[^\"\\]|\\.)*\"|[^\s,]*)[\s]*,?")


def challenges(resp: "h.Response") -> list[tuple[str, dict]]:
    """Every WWW-Authenticate challenge: (scheme, {param: value})."""
    out = []
    for text in resp.headers.get_all("www-authenticate"):
        i = 0
        while i < len(text):
            m = _SCHEME.match(text, i)
            if not m:
                break
            i = m.end()
            params = {}
            while True:
                p = _PARAM.match(text, i)
                if not p:
                    break
                value = p.group(2)
                if value.startswith('"'):
                    value = re.sub(r"\\(.)", r"\1", value[1:-1])
                params[p.group(1).lower()] = value
                i = p.end()
            out.append((m.group(1), params))
    return out


# --------------------------------------------------------------------------
# DPoP
# --------------------------------------------------------------------------

_PRIVATE_MEMBERS = {"EC": ("d",), "OKP": ("d",), "RSA": ("d", "p", "q", "dp", "dq", "qi")}


class DpopKey:
    """A DPoP key pair. `alg`: ES256 (default), ES384, RS256, PS256, EdDSA."""

    def __init__(self, alg: str = "ES256"):
        self.alg = alg
        kid = f"dpop-{uuid.uuid4().hex[:8]}"
        if alg.startswith("ES"):
            self.key = h.Key.ec(kid, {"ES256": "P-256", "ES384": "P-384"}[alg])
        elif alg[:2] in ("RS", "PS"):
            self.key = h.Key.rsa(kid)
        elif alg == "EdDSA":
            self.key = h.Key.ed25519(kid)
        else:
            raise ValueError(f"no DPoP key for {alg}")

    def public_jwk(self) -> dict:
        """The public JWK as a proof carries it: key members only."""
        jwk = self.key.jwk(with_alg=False, with_use=False)
        jwk.pop("kid", None)
        return jwk

    def private_jwk(self) -> dict:
        """The public JWK plus the private members (what a proof must never carry)."""
        jwk = self.public_jwk()
        if self.key.kty == "EC":
            size = (self.key.public.curve.key_size + 7) // 8
            jwk["d"] = h.b64u(h._int_bytes(self.key.private.private_numbers().private_value, size))
        elif self.key.kty == "OKP":
            jwk["d"] = h.b64u(self.key.private.private_bytes(
                serialization.Encoding.Raw, serialization.PrivateFormat.Raw, serialization.NoEncryption()))
        else:
            n = self.key.private.private_numbers()
            for name, value in (("d", n.d), ("p", n.p), ("q", n.q), ("dp", n.dmp1), ("dq", n.dmq1), ("qi", n.iqmp)):
                jwk[name] = h.b64u(h._int_bytes(value))
        return jwk

    @property
    def thumbprint(self) -> str:
        """RFC 7638 thumbprint: the `cnf.jkt` of tokens bound to this key."""
        return jwk_thumbprint(self.public_jwk())

    def proof(
        self,
        method: str,
        url: str,
        access_token: str | None = None,
        iat: int | None = None,
        jti: str | None = None,
        typ: str | None = "dpop+jwt",
        alg: str | None = None,
        include_private: bool = False,
        jwk: dict | None = None,
        ath: str | None = None,
        nonce: str | None = None,
        claims: dict | None = None,
        header: dict | None = None,
        omit: tuple = (),
        hmac_secret: bytes = b"dpop-shared-secret",
        signed_by: "DpopKey | None" = None,
        keep_query: bool = False,
    ) -> str:
        """A DPoP proof JWT for `method` and `url`, with `ath` of `access_token`.

        Valid by default; each argument makes one thing about it wrong:
        `iat` (default now), `jti` (default random), `typ` (None: left out),
        `alg` ("none": unsigned; "HS256"/"HS384"/"HS512": HMAC with
        `hmac_secret`; another asymmetric alg: signed as that, with this
        key), `include_private` (the private members in `jwk`), `jwk`
        (another JWK in the header), `ath` (instead of the access token's),
        `claims`/`header` (added or replaced; a value of `...` removes the
        member), `omit` (claim or header member names left out), `signed_by`
        (another DpopKey signs, while `jwk` stays this key's), `keep_query`
        (htu keeps the URL's query; the default leaves it out)."""
        alg = alg or self.alg
        hdr = {"typ": typ, "alg": alg, "jwk": jwk if jwk is not None else
               (self.private_jwk() if include_private else self.public_jwk())}
        if typ is None:
            hdr.pop("typ")
        body = {
            "jti": jti or uuid.uuid4().hex,
            "htm": method,
            "htu": url if keep_query else htu(url),
            "iat": int(time.time()) if iat is None else iat,
        }
        if ath is not None:
            body["ath"] = ath
        elif access_token is not None:
            body["ath"] = access_token_hash(access_token)
        if nonce is not None:
            body["nonce"] = nonce
        for target, extra in ((hdr, header), (body, claims)):
            for k, v in (extra or {}).items():
                if v is ...:
                    target.pop(k, None)
                else:
                    target[k] = v
        for k in omit:
            hdr.pop(k, None)
            body.pop(k, None)
        signer = (signed_by or self).key
        return h.mint(signer, body, header=hdr, alg=alg, hmac_secret=hmac_secret)


# --------------------------------------------------------------------------
# Test CA
# --------------------------------------------------------------------------


class IssuedCert:
    """A certificate and its key, in memory and as PEM files."""

    def __init__(self, cert: x509.Certificate, key, directory: str, name: str):
        self.cert = cert
        self.key = key
        self.name = name
        self.cert_pem = cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
        self.key_pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode("ascii")
        self.der = cert.public_bytes(serialization.Encoding.DER)
        self.cert_path = os.path.join(directory, f"{name}.crt")
        self.key_path = os.path.join(directory, f"{name}.key")
        with open(self.cert_path, "w") as f:
            f.write(self.cert_pem)
        with open(os.open(self.key_path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600), "w") as f:
            f.write(self.key_pem)

    @property
    def x5t_s256(self) -> str:
        return x5t_s256(self.der)

    @property
    def sha256_hex(self) -> str:
        """Hex SHA-256 of the DER (Envoy's `sha256_peer_certificate_digest`, XFCC `Hash`)."""
        return hashlib.sha256(self.der).hexdigest()

    @property
    def subject(self) -> str:
        return self.cert.subject.rfc4514_string()

    def __repr__(self):
        return f"<IssuedCert {self.subject} x5t#S256={self.x5t_s256}>"


class TestCA:
    """A throw-away CA (EC P-256) issuing a server certificate for
    127.0.0.1/localhost and client certificates. Files live in `dir`."""

    __test__ = False  # not a pytest test class

    def __init__(self, name: str = "Scopegate Test CA", directory: str | None = None):
        self.dir = directory or tempfile.mkdtemp(prefix="scopegate-ca-")
        if directory is None:
            atexit.register(shutil.rmtree, self.dir, True)
        self.key = ec.generate_private_key(ec.SECP256R1())
        subject = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, name)])
        now = datetime.datetime.now(datetime.timezone.utc)
        self.cert = (
            x509.CertificateBuilder()
            .subject_name(subject)
            .issuer_name(subject)
            .public_key(self.key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(minutes=5))
            .not_valid_after(now + datetime.timedelta(days=2))
            .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
            .add_extension(
                x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                              data_encipherment=False, key_agreement=False, key_cert_sign=True, crl_sign=True,
                              encipher_only=False, decipher_only=False),
                critical=True,
            )
            .add_extension(x509.SubjectKeyIdentifier.from_public_key(self.key.public_key()), critical=False)
            .sign(self.key, hashes.SHA256())
        )
        self.cert_pem = self.cert.public_bytes(serialization.Encoding.PEM).decode("ascii")
        self.cert_path = os.path.join(self.dir, "ca.crt")
        with open(self.cert_path, "w") as f:
            f.write(self.cert_pem)
        self._server: IssuedCert | None = None

    def issue(self, name: str, common_name: str, server: bool = False, dns: tuple = (), ips: tuple = (),
              uris: tuple = (), days: float = 1.0, not_before: datetime.datetime | None = None) -> IssuedCert:
        """A certificate for `common_name` signed by this CA (file names from `name`)."""
        key = ec.generate_private_key(ec.SECP256R1())
        now = datetime.datetime.now(datetime.timezone.utc)
        start = not_before or now - datetime.timedelta(minutes=5)
        builder = (
            x509.CertificateBuilder()
            .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
            .issuer_name(self.cert.subject)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(start)
            .not_valid_after(start + datetime.timedelta(days=days))
            .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
            .add_extension(
                x509.KeyUsage(digital_signature=True, content_commitment=False, key_encipherment=False,
                              data_encipherment=False, key_agreement=server, key_cert_sign=False, crl_sign=False,
                              encipher_only=False, decipher_only=False),
                critical=True,
            )
            .add_extension(
                x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH if server else ExtendedKeyUsageOID.CLIENT_AUTH]),
                critical=False,
            )
            .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(self.key.public_key()), critical=False)
        )
        sans = [x509.DNSName(d) for d in dns] + [x509.IPAddress(ipaddress.ip_address(i)) for i in ips]
        sans += [x509.UniformResourceIdentifier(u) for u in uris]
        if sans:
            builder = builder.add_extension(x509.SubjectAlternativeName(sans), critical=False)
        return IssuedCert(builder.sign(self.key, hashes.SHA256()), key, self.dir, name)

    def server_cert(self) -> IssuedCert:
        """The server certificate (127.0.0.1, localhost), made once."""
        if self._server is None:
            self._server = self.issue("server", "localhost", server=True, dns=("localhost",), ips=("127.0.0.1",))
        return self._server

    def client_cert(self, common_name: str, name: str | None = None, **kw) -> IssuedCert:
        """A client certificate with subject CN=`common_name` (and a DNS SAN
        `<common_name>.clients.test`)."""
        kw.setdefault("dns", (f"{common_name}.clients.test",))
        return self.issue(name or f"client-{common_name}-{uuid.uuid4().hex[:6]}", common_name, **kw)

    def tls_listener(self, require_client_cert: bool = False, **kw) -> h.TlsListener:
        """A TLS listener for harness.Envoy: this CA's server certificate,
        client certificates verified against this CA."""
        server = self.server_cert()
        return h.TlsListener(server.cert_path, server.key_path, self.cert_path,
                             require_client_cert=require_client_cert, **kw)


# --------------------------------------------------------------------------
# The authorization server
# --------------------------------------------------------------------------


class TokenError(RuntimeError):
    """The token endpoint refused: `status` and the error `body`."""

    def __init__(self, status: int, body):
        super().__init__(f"token endpoint answered {status}: {body}")
        self.status = status
        self.body = body


_NPM_DONE = False


def ensure_node_modules(timeout: float = 300.0):
    """`npm ci` in tests/idp when its node_modules is missing (scripts/setup
    does the same)."""
    global _NPM_DONE
    if _NPM_DONE or os.path.isdir(os.path.join(IDP_DIR, "node_modules", "oidc-provider")):
        _NPM_DONE = True
        return
    npm = shutil.which("npm")
    if not npm:
        raise RuntimeError("npm not found: the authorization server needs Node.js (scripts/setup installs it)")
    subprocess.run([npm, "ci", "--prefix", IDP_DIR, "--no-audit", "--no-fund", "--loglevel=error"],
                   check=True, timeout=timeout, stdin=subprocess.DEVNULL)
    _NPM_DONE = True


class AuthorizationServer:
    """panva's oidc-provider on 127.0.0.1 (a free port), as a context manager.

    Clients (tests/idp/server.mjs): `bearer-client` (client_secret_post),
    `dpop-client` (client_secret_post, DPoP-bound tokens only), `mtls-client`
    (tls_client_auth, subject CN=mtls-client, certificate-bound tokens),
    `mtls-secret-client` (client_secret_post, tokens bound to the certificate
    presented). Scopes: orders:read orders:write payments:read admin.
    Tokens: JWT, audience https://api.example.test, signed ES256 (resource
    RS256_RESOURCE: RS256), 600 s."""

    def __init__(self, ca: TestCA | None = None, port: int = 0, node: str | None = None, start_timeout: float = 60.0):
        self.ca = ca
        self.requested_port = port
        self.node = node or shutil.which("node") or "node"
        self.start_timeout = start_timeout
        self.proc: subprocess.Popen | None = None
        self.info: dict = {}
        self.dir = tempfile.mkdtemp(prefix="scopegate-idp-")
        self.log_path = os.path.join(self.dir, "idp.log")
        self.last_response: dict | None = None

    # -- process -------------------------------------------------------------

    def start(self) -> "AuthorizationServer":
        ensure_node_modules()
        cmd = [self.node, os.path.join(IDP_DIR, "server.mjs"), "--port", str(self.requested_port)]
        if self.ca is not None:
            cmd += ["--ca-file", self.ca.cert_path]
        self._log = open(self.log_path, "wb")
        self.proc = subprocess.Popen(cmd, cwd=IDP_DIR, stdout=subprocess.PIPE, stderr=self._log,
                                     stdin=subprocess.DEVNULL, start_new_session=True)
        atexit.register(self.stop)
        line = self._ready_line()
        self.info = json.loads(line)
        return self

    def _ready_line(self) -> str:
        deadline = time.monotonic() + self.start_timeout
        buf = b""
        fd = self.proc.stdout.fileno()
        while b"\n" not in buf:
            remaining = deadline - time.monotonic()
            if remaining <= 0 or self.proc.poll() is not None:
                self.stop()
                raise RuntimeError(f"authorization server did not start ({'exited' if self.proc.returncode is not None else 'timeout'})"
                                   f"\n--- log ---\n{self.log_text()}")
            ready, _, _ = select.select([fd], [], [], min(remaining, 0.5))
            if ready:
                chunk = os.read(fd, 65536)
                if not chunk:
                    continue
                buf += chunk
        return buf.split(b"\n", 1)[0].decode("utf-8")

    def stop(self):
        p = self.proc
        if p is not None and p.poll() is None:
            p.terminate()
            try:
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        if p is not None and p.stdout is not None:
            p.stdout.close()
        if getattr(self, "_log", None) is not None:
            self._log.close()
            self._log = None

    def cleanup(self):
        self.stop()
        if os.environ.get("SCOPEGATE_E2E_KEEP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self) -> "AuthorizationServer":
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()

    def log_text(self) -> str:
        try:
            with open(self.log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # -- what it is ------------------------------------------------------------

    @property
    def issuer(self) -> str:
        return self.info["issuer"]

    @property
    def jwks_uri(self) -> str:
        return self.info["jwks_uri"]

    @property
    def token_endpoint(self) -> str:
        return self.info["token_endpoint"]

    @property
    def port(self) -> int:
        return urllib.parse.urlsplit(self.issuer).port

    def jwks(self) -> dict:
        with urllib.request.urlopen(self.jwks_uri, timeout=10) as r:
            return json.loads(r.read())

    def cluster(self, name: str = "idp") -> dict:
        """An Envoy cluster to this server (for `Envoy(extra_clusters=[...])`)."""
        return h.static_cluster(name, self.port)

    def jwks_source(self, cluster: str = "idp", **over) -> dict:
        """The filter's `jwks` member fetching this server's keys through `cluster`."""
        return {"uri": self.jwks_uri, "cluster": cluster, "timeout_ms": 1500, **over}

    def provider(self, name: str = "idp", cluster: str = "idp", **over) -> dict:
        """A filter provider (CONTRACT §1) for this server's tokens; keyword
        arguments add or replace members (`...` removes one)."""
        p = {
            "name": name,
            "issuer": self.issuer,
            "audiences": [AUDIENCE],
            "jwks": self.jwks_source(cluster),
            "algorithms": ["ES256", "RS256"],
            "clock_skew_s": 60,
            "max_lifetime_s": 3600,
        }
        for k, v in over.items():
            if v is ...:
                p.pop(k, None)
            else:
                p[k] = v
        return p

    # -- tokens ----------------------------------------------------------------

    def token_response(self, client: str, scope: str | None = None, headers: dict | None = None,
                       resource: str | None = None, form: dict | None = None, secret: bool = True) -> dict:
        """POST the token endpoint (client credentials) as `client`; the
        parsed JSON response. Raises TokenError when refused."""
        fields = {"grant_type": "client_credentials", "client_id": client}
        client_secret = self.info.get("clients", {}).get(client, {}).get("client_secret")
        if secret and client_secret:
            fields["client_secret"] = client_secret
        if scope is not None:
            fields["scope"] = scope
        if resource is not None:
            fields["resource"] = resource
        fields.update(form or {})
        req = urllib.request.Request(
            self.token_endpoint,
            data=urllib.parse.urlencode(fields).encode(),
            headers={"content-type": "application/x-www-form-urlencoded", "accept": "application/json",
                     **(headers or {})},
            method="POST",
        )
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                body = json.loads(r.read())
        except urllib.error.HTTPError as e:
            raw = e.read()
            try:
                detail = json.loads(raw)
            except ValueError:
                detail = raw.decode("latin-1")
            raise TokenError(e.code, detail) from None
        self.last_response = body
        return body

    def bearer_token(self, client: str = "bearer-client", scope: str | None = "orders:read",
                     resource: str | None = None) -> str:
        """A plain Bearer access token (JWT)."""
        body = self.token_response(client, scope, resource=resource)
        assert body.get("token_type") == "Bearer", body
        token = body["access_token"]
        assert "cnf" not in claims_of(token), claims_of(token)
        return token

    def dpop_token(self, client: str = "dpop-client", scope: str | None = "orders:read",
                   key: DpopKey | None = None, resource: str | None = None) -> str:
        """An access token bound to `key` (`cnf.jkt`): the token request
        carries a DPoP proof made with `key` for POST to the token endpoint."""
        if key is None:
            raise ValueError("dpop_token needs the DpopKey the token is bound to")
        proof = key.proof("POST", self.token_endpoint)
        body = self.token_response(client, scope, headers={"DPoP": proof}, resource=resource)
        assert body.get("token_type") == "DPoP", body
        token = body["access_token"]
        assert claims_of(token)["cnf"] == {"jkt": key.thumbprint}, claims_of(token)
        return token

    def mtls_token(self, client: str = "mtls-client", scope: str | None = "orders:read", cert_pem=None,
                   resource: str | None = None) -> str:
        """An access token bound to the certificate `cert_pem` (PEM, DER or
        an IssuedCert; `cnf["x5t#S256"]`), presented as the client's TLS
        certificate (see the test shortcut in tests/idp/server.mjs)."""
        if cert_pem is None:
            raise ValueError("mtls_token needs the client certificate")
        body = self.token_response(client, scope, headers={"x-client-cert": h.b64u(_der(cert_pem))},
                                   resource=resource)
        assert body.get("token_type") == "Bearer", body
        token = body["access_token"]
        assert claims_of(token)["cnf"] == {"x5t#S256": x5t_s256(cert_pem)}, claims_of(token)
        return token


# -- the sender-constrained scenario (Envoy and Kong's host) ---------------------

def sender_constrained_config(provider: dict) -> dict:
    """The filter configuration of the sender-constrained tests: `orders`
    (any token with orders:read) and `bound-only` (`sender_constrained`)."""
    return {
        "providers": [provider],
        "rules": [
            {"name": "orders", "methods": ["GET", "POST"], "path": "/orders/**", "scopes": ["orders:read"]},
            {"name": "bound-only", "methods": ["GET"], "path": "/bound/**", "scopes": ["orders:read"],
             "sender_constrained": True},
        ],
        "default_action": "deny",
        "identity_headers": {"subject": "x-identity-subject", "client_id": "x-identity-client-id"},
        "audit_log": "all",
        # The proof is a credential like the token: kept from the upstream
        # with it (CONTRACT §1.4).
        "forward_token": False,
    }


def dpop_headers(token: str, *proofs: str, scheme: str = "DPoP") -> list[tuple[str, str]]:
    """`Authorization: <scheme> <token>` and one `DPoP` header per proof."""
    return [("authorization", f"{scheme} {token}")] + [("dpop", p) for p in proofs]
