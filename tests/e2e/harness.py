"""End-to-end harness for Scopegate in a real Envoy.

Everything here is stdlib + `cryptography`:

* keys and JWKs generated at test time, and a JWT minter that signs whatever
  header/claims (or raw bytes) it is given, so tests can forge malformed tokens;
* an echo upstream that records every request it receives;
* an Envoy launcher (one listener, Wasm filter + router, no Envoy path
  normalization; plain, or TLS with optional client certificates through
  `TlsListener`) and a request helper that sends the request target verbatim.
"""

from __future__ import annotations

import atexit
import base64
import copy
import hashlib
import hmac
import http.client
import json
import os
import re
import shutil
import signal
import site
import socket
import ssl
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
import urllib.request
import uuid
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, ed25519, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

HERE = os.path.dirname(os.path.abspath(__file__))
REPO_ROOT = os.path.abspath(os.path.join(HERE, "..", ".."))

ISSUER = "https://idp.example.com"
PARTNER_ISSUER = "https://partner.example.net"
AUDIENCE = "payments-api"
ALGORITHMS = ["RS256", "RS384", "RS512", "PS256", "PS384", "PS512", "ES256", "ES384", "EdDSA"]
MARKER_HEADER = "x-e2e-id"
IDENTITY_HEADERS = [
    "x-identity-subject",
    "x-identity-client-id",
    "x-identity-issuer",
    "x-identity-scopes",
    "x-identity-tenant",
]

# --------------------------------------------------------------------------
# Locating binaries
# --------------------------------------------------------------------------


def find_envoy() -> str:
    env = os.environ.get("ENVOY_BIN")
    if env:
        return env
    dirs = []
    for getter in (site.getsitepackages,):
        try:
            dirs.extend(getter())
        except Exception:  # pragma: no cover - virtualenv quirks
            pass
    try:
        dirs.append(site.getusersitepackages())
    except Exception:  # pragma: no cover
        pass
    dirs.extend(p for p in (sysconfig.get_paths().get("purelib"), sysconfig.get_paths().get("platlib")) if p)
    dirs.extend(p for p in sys.path if p.endswith("site-packages"))
    for d in dirs:
        cand = os.path.join(d, "envoy", "_bin", "envoy")
        if os.path.isfile(cand) and os.access(cand, os.X_OK):
            return cand
    return shutil.which("envoy") or ""


def find_wasm() -> str:
    return os.environ.get("SCOPEGATE_WASM") or os.path.join(
        REPO_ROOT, "target", "wasm32-wasip1", "release", "scopegate.wasm"
    )


# --------------------------------------------------------------------------
# base64url / keys / JWKs / JWT minting
# --------------------------------------------------------------------------


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _int_bytes(value: int, size: int | None = None) -> bytes:
    size = size or max(1, (value.bit_length() + 7) // 8)
    return value.to_bytes(size, "big")


_HASHES = {"256": hashes.SHA256, "384": hashes.SHA384, "512": hashes.SHA512}
_HMAC = {"HS256": hashlib.sha256, "HS384": hashlib.sha384, "HS512": hashlib.sha512}


class Key:
    """One signing key: private key object plus JWK export."""

    def __init__(self, kid: str, kty: str, private, alg: str | None = None, use: str | None = "sig"):
        self.kid = kid
        self.kty = kty  # "RSA", "EC", "OKP"
        self.private = private
        self.public = private.public_key()
        self.alg = alg  # advertised in the JWK (optional)
        self.use = use

    @classmethod
    def rsa(cls, kid, alg=None, bits=2048):
        return cls(kid, "RSA", rsa.generate_private_key(public_exponent=65537, key_size=bits), alg)

    @classmethod
    def ec(cls, kid, curve="P-256", alg=None):
        c = {"P-256": ec.SECP256R1(), "P-384": ec.SECP384R1()}[curve]
        return cls(kid, "EC", ec.generate_private_key(c), alg)

    @classmethod
    def ed25519(cls, kid, alg=None):
        return cls(kid, "OKP", ed25519.Ed25519PrivateKey.generate(), alg)

    @property
    def curve(self):
        if self.kty == "EC":
            return {"secp256r1": "P-256", "secp384r1": "P-384"}[self.public.curve.name]
        if self.kty == "OKP":
            return "Ed25519"
        return None

    def jwk(self, with_alg: bool = True, with_use: bool = True) -> dict:
        if self.kty == "RSA":
            nums = self.public.public_numbers()
            jwk = {"kty": "RSA", "n": b64u(_int_bytes(nums.n)), "e": b64u(_int_bytes(nums.e))}
        elif self.kty == "EC":
            nums = self.public.public_numbers()
            size = (self.public.curve.key_size + 7) // 8
            jwk = {
                "kty": "EC",
                "crv": self.curve,
                "x": b64u(_int_bytes(nums.x, size)),
                "y": b64u(_int_bytes(nums.y, size)),
            }
        else:
            raw = self.public.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
            jwk = {"kty": "OKP", "crv": "Ed25519", "x": b64u(raw)}
        jwk["kid"] = self.kid
        if with_alg and self.alg:
            jwk["alg"] = self.alg
        if with_use and self.use:
            jwk["use"] = self.use
        return jwk

    def public_pem(self) -> bytes:
        return self.public.public_bytes(
            serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
        )

    # -- signing -------------------------------------------------------------

    def sign(self, alg: str, data: bytes, der: bool = False) -> bytes:
        """Sign `data` as JOSE algorithm `alg` (ES* as raw r||s unless der=True)."""
        if alg.startswith("RS"):
            return self.private.sign(data, padding.PKCS1v15(), _HASHES[alg[2:]]())
        if alg.startswith("PS"):
            h = _HASHES[alg[2:]]()
            return self.private.sign(
                data, padding.PSS(mgf=padding.MGF1(h), salt_length=h.digest_size), h
            )
        if alg.startswith("ES"):
            sig = self.private.sign(data, ec.ECDSA(_HASHES[alg[2:]]()))
            if der:
                return sig
            r, s = decode_dss_signature(sig)
            size = (self.public.curve.key_size + 7) // 8
            return _int_bytes(r, size) + _int_bytes(s, size)
        if alg == "EdDSA":
            return self.private.sign(data)
        raise ValueError(f"cannot sign {alg} with {self.kty} key")


def _segment(part) -> str:
    if isinstance(part, str):
        return part  # already encoded (lets tests inject raw segments)
    if isinstance(part, dict) or isinstance(part, list):
        part = json.dumps(part, separators=(",", ":")).encode()
    return b64u(part)


def mint(
    key: Key | None,
    claims,
    alg: str | None = None,
    header: dict | bytes | str | None = None,
    extra_header: dict | None = None,
    kid: str | None | bool = True,
    hmac_secret: bytes | None = None,
    der: bool = False,
    signature: bytes | str | None = None,
) -> str:
    """Build a compact JWS.

    * `claims`: dict/list (JSON-encoded), bytes (raw payload) or str (already
      base64url-encoded segment).
    * `header`: if given, used verbatim (dict/bytes/str); otherwise built from
      alg + kid (kid=True: the key's kid; a string: that kid; None/False: none).
    * signature: HMAC with `hmac_secret` for HS*, "none" gives an empty
      signature, otherwise `key` signs; `signature` overrides the result
      (bytes get base64url-encoded, str is used verbatim).
    """
    if header is None:
        header = {"alg": alg, "typ": "JWT"}
        if kid is True and key is not None:
            header["kid"] = key.kid
        elif isinstance(kid, str):
            header["kid"] = kid
        if extra_header:
            header.update(extra_header)
    if alg is None and isinstance(header, dict):
        alg = header.get("alg")
    signing_input = _segment(header) + "." + _segment(claims)
    if signature is None:
        if alg in _HMAC:
            sig = hmac.new(hmac_secret or b"", signing_input.encode(), _HMAC[alg]).digest()
        elif alg is None or str(alg).lower() == "none":
            sig = b""
        else:
            sig = key.sign(alg, signing_input.encode(), der=der)
        sig_text = b64u(sig)
    elif isinstance(signature, bytes):
        sig_text = b64u(signature)
    else:
        sig_text = signature
    return signing_input + "." + sig_text


class KeySet:
    """All keys used by the suite, generated once per session."""

    def __init__(self):
        self.rsa = Key.rsa("corp-rsa")  # no alg: usable for RS* and PS*
        self.ec256 = Key.ec("corp-es256", "P-256", alg="ES256")
        self.ec384 = Key.ec("corp-es384", "P-384", alg="ES384")
        self.ed = Key.ed25519("corp-ed25519", alg="EdDSA")
        self.partner_ec = Key.ec("partner-es256", "P-256", alg="ES256")
        self.partner_rsa = Key.rsa("partner-rsa")
        # a key nobody trusts (same kid as a trusted one: signature must fail)
        self.rogue_rsa = Key.rsa("corp-rsa")

    def for_alg(self, alg: str) -> Key:
        if alg[:2] in ("RS", "PS"):
            return self.rsa
        return {"ES256": self.ec256, "ES384": self.ec384, "EdDSA": self.ed}[alg]

    def corp_jwks(self) -> dict:
        return {"keys": [k.jwk() for k in (self.rsa, self.ec256, self.ec384, self.ed)]}

    def partner_jwks(self) -> dict:
        return {"keys": [k.jwk() for k in (self.partner_ec, self.partner_rsa)]}


def claims(scope=None, **over) -> dict:
    """Valid corp claims (iat now, exp now+600); keyword args override/add,
    a value of `...` (Ellipsis) removes the claim."""
    now = int(time.time())
    c = {
        "iss": ISSUER,
        "sub": "svc-billing",
        "aud": AUDIENCE,
        "iat": now,
        "exp": now + 600,
        "client_id": "billing-svc",
        "jti": uuid.uuid4().hex,
    }
    if scope is not None:
        c["scope"] = scope
    for k, v in over.items():
        if v is ...:
            c.pop(k, None)
        else:
            c[k] = v
    return c


# --------------------------------------------------------------------------
# Filter configuration
# --------------------------------------------------------------------------


def base_filter_config(keys: KeySet, **over) -> dict:
    cfg = {
        "providers": [
            {
                "name": "corp",
                "issuer": ISSUER,
                "audiences": [AUDIENCE],
                "jwks": {"inline": keys.corp_jwks()},
                "algorithms": list(ALGORITHMS),
                "clock_skew_s": 60,
                "max_lifetime_s": 3600,
                "scope_claims": ["scope", "scp"],
                "client_id_claims": ["client_id", "azp", "cid", "appid"],
            },
            {
                "name": "partner",
                "issuer": PARTNER_ISSUER,
                "audiences": [AUDIENCE],
                # the JWKS is given as a JSON string here (CONTRACT §1 allows both)
                "jwks": {"inline": json.dumps(keys.partner_jwks())},
                "algorithms": ["ES256"],
                "clock_skew_s": 60,
            },
        ],
        "token_sources": [{"header": "authorization", "prefix": "Bearer "}],
        "rules": [
            {"name": "health", "methods": ["GET"], "path": "/healthz", "public": True},
            {"name": "read", "methods": ["GET", "HEAD"], "path": "/payments/**", "scopes": ["payments:read"]},
            {
                "name": "refund",
                "methods": ["POST"],
                "path": "/payments/{id}/refunds",
                "scopes": ["payments:write", "refunds:create"],
            },
            {"name": "admin", "path": "/admin/**", "any_scopes": ["admin"], "clients": ["ops-bot"], "providers": ["corp"]},
            {"name": "reports", "methods": ["GET"], "path": "/reports/*/summary", "scopes": ["reports:read"]},
        ],
        "default_action": "deny",
        "identity_headers": {
            "subject": "x-identity-subject",
            "client_id": "x-identity-client-id",
            "issuer": "x-identity-issuer",
            "scopes": "x-identity-scopes",
            "claims": {"tenant": "x-identity-tenant"},
        },
        "forward_token": True,
        "mode": "enforce",
    }
    cfg.update(copy.deepcopy(over))
    return cfg


# --------------------------------------------------------------------------
# Echo upstream
# --------------------------------------------------------------------------


class EchoServer:
    """Threaded HTTP/1.1 server on 127.0.0.1:<free port>; answers 200 with a
    JSON echo of the request and records every request it got."""

    def __init__(self):
        self.requests: list[dict] = []
        # fixed documents served instead of the echo: path -> (status, body bytes)
        self.documents: dict[str, tuple[int, bytes]] = {}
        self.lock = threading.Lock()
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            # Headers and body go out in two writes: without this, Nagle's
            # algorithm and delayed ACKs add ~40 ms to every proxied request.
            disable_nagle_algorithm = True

            def log_message(self, *args):  # keep pytest output clean
                pass

            def _handle(self):
                body = b""
                te = (self.headers.get("transfer-encoding") or "").lower()
                if "chunked" in te:
                    while True:
                        line = self.rfile.readline()
                        size = int(line.split(b";")[0].strip() or b"0", 16)
                        if size == 0:
                            while self.rfile.readline() not in (b"\r\n", b"\n", b""):
                                pass
                            break
                        body += self.rfile.read(size)
                        self.rfile.readline()
                else:
                    n = int(self.headers.get("content-length") or 0)
                    if n:
                        body = self.rfile.read(n)
                hdrs: dict[str, list[str]] = {}
                for name, value in self.headers.items():
                    hdrs.setdefault(name.lower(), []).append(value)
                # BaseHTTPRequestHandler rewrites a leading "//" in self.path;
                # take the request target exactly as it was received instead.
                parts = self.requestline.split(" ")
                raw_target = parts[1] if len(parts) >= 3 else self.path
                record = {
                    "method": self.command,
                    "path": raw_target,
                    "headers": hdrs,
                    "body": body.decode("latin-1"),
                }
                with outer.lock:
                    outer.requests.append(record)
                    doc = outer.documents.get(raw_target)
                if doc is not None:
                    status, payload = doc
                    self.send_response(status)
                    self.send_header("content-type", "application/json")
                    self.send_header("content-length", str(len(payload)))
                    self.end_headers()
                    self.wfile.write(payload)
                    return
                payload = json.dumps(record).encode()
                self.send_response(200)
                self.send_header("content-type", "application/json")
                self.send_header("content-length", str(len(payload)))
                self.send_header("x-echo", "1")
                self.end_headers()
                if self.command != "HEAD":
                    self.wfile.write(payload)

        for m in ("GET", "HEAD", "POST", "PUT", "DELETE", "PATCH", "OPTIONS"):
            setattr(Handler, "do_" + m, Handler._handle)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        self.thread = threading.Thread(target=self.server.serve_forever, name="echo", daemon=True)
        self.thread.start()

    def find(self, marker: str) -> dict | None:
        with self.lock:
            for r in self.requests:
                if marker in r["headers"].get(MARKER_HEADER, []):
                    return r
        return None

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


# --------------------------------------------------------------------------
# HTTP responses / client
# --------------------------------------------------------------------------


class Headers:
    """Case-insensitive multi-map (keeps order and duplicates)."""

    def __init__(self, items):
        self.items = [(str(k), str(v)) for k, v in items]

    def get(self, name, default=None):
        vals = self.get_all(name)
        return vals[0] if vals else default

    def get_all(self, name):
        n = name.lower()
        return [v for k, v in self.items if k.lower() == n]

    def __contains__(self, name):
        return bool(self.get_all(name))

    def __repr__(self):
        return f"Headers({self.items!r})"


class Response:
    def __init__(self, status, headers: Headers, body: bytes, marker: str | None, echo: EchoServer | None, protocol="HTTP/1.1",
                 tls: bool = False, alpn: str | None = None):
        self.status = status
        self.headers = headers
        self.body = body
        self.marker = marker
        self.protocol = protocol
        self.tls = tls  # sent over TLS (to a TlsListener)
        self.alpn = alpn  # the protocol the server selected by ALPN, with TLS
        self.upstream = echo.find(marker) if (echo and marker) else None

    def json(self):
        return json.loads(self.body.decode("utf-8"))

    @property
    def reached_upstream(self) -> bool:
        return self.upstream is not None

    def upstream_headers(self, name) -> list[str]:
        assert self.upstream is not None, f"request did not reach the upstream: {self}"
        return self.upstream["headers"].get(name.lower(), [])

    def __repr__(self):
        body = self.body[:600]
        return (
            f"<{self.protocol}{' over TLS' if self.tls else ''} {self.status} headers={self.headers.items!r} body={body!r} "
            f"upstream={'yes' if self.upstream else 'no'}>"
        )


def _header_list(headers) -> list[tuple[str, str]]:
    if headers is None:
        return []
    if isinstance(headers, dict):
        return list(headers.items())
    return list(headers)


def http1_request(
    port: int,
    method: str,
    target: str,
    headers=None,
    body: bytes | None = None,
    echo: EchoServer | None = None,
    marker: bool = True,
    timeout: float = 10.0,
    ssl_context: ssl.SSLContext | None = None,
    host: str = "gateway.test",
) -> Response:
    """Send one HTTP/1.1 request with the request target exactly as given.
    With `ssl_context`, over TLS (ALPN "http/1.1"): see TlsListener."""
    hdrs = _header_list(headers)
    mark = None
    if marker:
        mark = uuid.uuid4().hex
        hdrs.append((MARKER_HEADER, mark))
    if ssl_context is not None:
        ssl_context.set_alpn_protocols(["http/1.1"])
        conn = http.client.HTTPSConnection("127.0.0.1", port, timeout=timeout, context=ssl_context)
    else:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        conn.putrequest(method, target, skip_host=True, skip_accept_encoding=True)
        if not any(k.lower() == "host" for k, _ in hdrs):
            conn.putheader("Host", host)
        for k, v in hdrs:
            conn.putheader(k, v)
        if body is not None:
            conn.putheader("Content-Length", str(len(body)))
        conn.endheaders(body)
        alpn = conn.sock.selected_alpn_protocol() if ssl_context is not None else None
        resp = conn.getresponse()
        data = resp.read()
        return Response(resp.status, Headers(resp.getheaders()), data, mark, echo,
                        tls=ssl_context is not None, alpn=alpn)
    finally:
        conn.close()


def _as_bytes(v) -> bytes:
    return v if isinstance(v, bytes) else str(v).encode("latin-1")


def http1_raw_request(
    port: int,
    method,
    target,
    headers=None,
    body: bytes | None = None,
    echo: EchoServer | None = None,
    marker: bool = True,
    timeout: float = 10.0,
    ssl_context: ssl.SSLContext | None = None,
    host: str = "gateway.test",
) -> Response:
    """Send one HTTP/1.1 request assembled byte for byte: the request target
    and header values may hold anything (spaces, controls, non-ASCII, CR/LF)
    that http.client refuses to send; str arguments are sent as latin-1.
    Raises ConnectionError when Envoy closes the connection without a response.
    With `ssl_context`, over TLS (ALPN "http/1.1")."""
    hdrs = _header_list(headers)
    mark = None
    if marker:
        mark = uuid.uuid4().hex
        hdrs.append((MARKER_HEADER, mark))
    if not any(_as_bytes(k).lower() == b"host" for k, _ in hdrs):
        hdrs.insert(0, ("Host", host))
    if body is not None:
        hdrs.append(("Content-Length", str(len(body))))
    hdrs.append(("Connection", "close"))
    raw = _as_bytes(method) + b" " + _as_bytes(target) + b" HTTP/1.1\r\n"
    raw += b"".join(_as_bytes(k) + b": " + _as_bytes(v) + b"\r\n" for k, v in hdrs)
    raw += b"\r\n" + (body or b"")
    sock = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    alpn = None
    if ssl_context is not None:
        ssl_context.set_alpn_protocols(["http/1.1"])
        try:
            sock = ssl_context.wrap_socket(sock, server_hostname="127.0.0.1")
        except BaseException:
            sock.close()
            raise
        alpn = sock.selected_alpn_protocol()
    try:
        sock.sendall(raw)
        resp = http.client.HTTPResponse(sock, method=_as_bytes(method).decode("latin-1"))
        try:
            resp.begin()
        except (http.client.RemoteDisconnected, http.client.BadStatusLine) as e:
            raise ConnectionError(f"envoy closed the connection without a response: {e!r}")
        data = resp.read()
        return Response(resp.status, Headers(resp.getheaders()), data, mark, echo,
                        tls=ssl_context is not None, alpn=alpn)
    finally:
        sock.close()


# --------------------------------------------------------------------------
# Envoy
# --------------------------------------------------------------------------


def _pem_or_path(value) -> str:
    """PEM text (str or bytes) as it is; anything else is a file path."""
    text = value.decode("ascii") if isinstance(value, bytes) else str(value)
    return text if text.lstrip().startswith("-----BEGIN") else ""


def _data_source(value) -> dict:
    """An Envoy DataSource for PEM text or a file path."""
    pem = _pem_or_path(value)
    return {"inline_string": pem} if pem else {"filename": str(value)}


@dataclass
class TlsListener:
    """Makes Envoy's listener a TLS listener: `Envoy(..., tls=TlsListener(...))`.

    `server_cert` (chain), `server_key` and `ca_cert`: PEM text (str or bytes)
    or file paths. Client certificates are requested and, when one is
    presented, verified against `ca_cert` (a certificate of another CA fails
    the handshake); with `require_client_cert=False` (the default) a client
    may present none, and the filter decides. ALPN: h2 and http/1.1 (the
    connection manager's codec follows what was negotiated).

    The upstream gets `x-forwarded-client-cert` (Envoy's SANITIZE_SET: Hash =
    hex SHA-256 of the client certificate's DER, Subject, URI and DNS SANs)
    when a client certificate was presented (`forward_client_cert`), and the
    access log line ends with ` tls=<version> peer_sha256=<hex> peer=<subject>`.

    Requests to such an Envoy (`Envoy.request`/`get`/`h2_request`/
    `raw_request`) go over TLS, with `client_cert=` (an object with
    `cert_path`/`key_path`, e.g. idp.TestCA's `client_cert()`, or a
    (cert, key) pair of PEM texts or paths) to present one; their default
    Host / `:authority` is `127.0.0.1:<port>`, so `Envoy.url(path)` is the
    URL the request is made to (what a DPoP proof's `htu` names)."""

    server_cert: str | bytes
    server_key: str | bytes
    ca_cert: str | bytes | None = None
    require_client_cert: bool = False
    alpn: tuple = ("h2", "http/1.1")
    forward_client_cert: bool = True

    def transport_socket(self) -> dict:
        ctx = {
            "tls_certificates": [{
                "certificate_chain": _data_source(self.server_cert),
                "private_key": _data_source(self.server_key),
            }],
            "alpn_protocols": list(self.alpn),
        }
        if self.ca_cert is not None:
            ctx["validation_context"] = {"trusted_ca": _data_source(self.ca_cert)}
        return {
            "name": "envoy.transport_sockets.tls",
            "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.transport_sockets.tls.v3.DownstreamTlsContext",
                "require_client_certificate": self.require_client_cert,
                "common_tls_context": ctx,
            },
        }

    def client_context(self, client_cert=None) -> ssl.SSLContext:
        """An SSL context for a client of this listener: trusts `ca_cert` for
        the server's certificate, presents `client_cert` when given."""
        ca = self.ca_cert
        pem = _pem_or_path(ca)
        ctx = ssl.create_default_context(cadata=pem) if pem else ssl.create_default_context(cafile=ca)
        if client_cert is not None:
            if hasattr(client_cert, "cert_path"):
                cert, key = client_cert.cert_path, client_cert.key_path
            else:
                cert, key = client_cert
            ctx.load_cert_chain(_as_file(cert, ".crt"), _as_file(key, ".key"))
        return ctx


_PEM_FILES: dict[str, str] = {}


def _as_file(value, suffix: str) -> str:
    """A file path for PEM text or a path (PEM text is written once, to a
    temporary file)."""
    pem = _pem_or_path(value)
    if not pem:
        return str(value)
    if pem not in _PEM_FILES:
        fd, path = tempfile.mkstemp(prefix="scopegate-e2e-", suffix=suffix)
        with os.fdopen(fd, "w") as f:
            f.write(pem)
        atexit.register(lambda: os.path.exists(path) and os.unlink(path))
        _PEM_FILES[pem] = path
    return _PEM_FILES[pem]


# The decision's facts in the access log (CONTRACT §5), in log order.
FACTS = ("decision", "reason", "rule", "subject", "client_id", "issuer", "scopes")


def envoy_bootstrap(wasm: str | None, filter_config, echo_port: int, access_log: str,
                    vm_id: str | None = "scopegate", tls: TlsListener | None = None) -> dict:
    http_filters = []
    if filter_config is not None:
        value = filter_config if isinstance(filter_config, str) else json.dumps(filter_config)
        http_filters.append(
            {
                "name": "envoy.filters.http.wasm",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
                    "config": {
                        "name": "scopegate",
                        "root_id": "scopegate",
                        "vm_config": {
                            **({"vm_id": vm_id} if vm_id is not None else {}),
                            "runtime": "envoy.wasm.runtime.v8",
                            "code": {"local": {"filename": wasm}},
                        },
                        "configuration": {
                            "@type": "type.googleapis.com/google.protobuf.StringValue",
                            "value": value,
                        },
                    },
                },
            }
        )
    http_filters.append(
        {
            "name": "envoy.filters.http.router",
            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
        }
    )
    hcm = {
        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        "stat_prefix": "ingress",
        "codec_type": "AUTO",
        "normalize_path": False,
        "merge_slashes": False,
        "path_with_escaped_slashes_action": "KEEP_UNCHANGED",
        "stream_idle_timeout": "10s",
        "request_timeout": "10s",
        "access_log": [
            {
                "name": "envoy.access_loggers.file",
                "typed_config": {
                    "@type": "type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog",
                    "path": access_log,
                    "log_format": {
                        "text_format_source": {
                            "inline_string": "%PROTOCOL% %REQ(:METHOD)% %REQ(X-E2E-ID)% %RESPONSE_CODE% %RESPONSE_CODE_DETAILS%"
                            # The seven properties (request_properties_form "properties",
                            # the default), then the fields of the one record of the
                            # "struct" form as s.<fact>.
                            + "".join(f" {f}=%FILTER_STATE(wasm.scopegate.{f}:PLAIN)%" for f in FACTS)
                            + "".join(f" s.{f}=%CEL(filter_state['wasm.scopegate'].{f})%" for f in FACTS)
                            + (" tls=%DOWNSTREAM_TLS_VERSION% peer_sha256=%DOWNSTREAM_PEER_FINGERPRINT_256%"
                               " peer=%DOWNSTREAM_PEER_SUBJECT%" if tls else "")
                            + "\n"
                        }
                    },
                },
            }
        ],
        "route_config": {
            "name": "local",
            "virtual_hosts": [
                {
                    "name": "all",
                    "domains": ["*"],
                    "routes": [{"match": {"prefix": "/"}, "route": {"cluster": "echo", "timeout": "10s"}}],
                }
            ],
        },
        "http_filters": http_filters,
    }
    chain = {"filters": [{"name": "envoy.filters.network.http_connection_manager", "typed_config": hcm}]}
    if tls is not None:
        chain["transport_socket"] = tls.transport_socket()
        if tls.forward_client_cert:
            hcm["forward_client_cert_details"] = "SANITIZE_SET"
            hcm["set_current_client_cert_details"] = {"subject": True, "uri": True, "dns": True}
    return {
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "static_resources": {
            "listeners": [
                {
                    "name": "main",
                    "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                    "filter_chains": [chain],
                }
            ],
            "clusters": [
                {
                    "name": "echo",
                    "type": "STATIC",
                    "connect_timeout": "2s",
                    "load_assignment": {
                        "cluster_name": "echo",
                        "endpoints": [
                            {
                                "lb_endpoints": [
                                    {
                                        "endpoint": {
                                            "address": {
                                                "socket_address": {"address": "127.0.0.1", "port_value": echo_port}
                                            }
                                        }
                                    }
                                ]
                            }
                        ],
                    },
                }
            ],
        },
    }


_RUNNING: list["Envoy"] = []


class EnvoyStartError(RuntimeError):
    def __init__(self, message, log_text=""):
        super().__init__(message + "\n--- envoy log tail ---\n" + tail(log_text, 60))
        self.log_text = log_text


def tail(text: str, n: int = 60) -> str:
    """Last n lines, leaving out Envoy's start-up inventory (extension lists)."""
    lines = [l for l in text.splitlines() if "]   " not in l and "server.cc:4" not in l]
    return "\n".join(lines[-n:])


class Envoy:
    """One Envoy process with one listener in front of the echo upstream."""

    def __init__(
        self,
        name: str,
        filter_config,
        echo: EchoServer,
        wasm: str | None = None,
        envoy_bin: str | None = None,
        concurrency: int = 1,
        extra_clusters: list[dict] | None = None,
        vm_id: str | None = "scopegate",
        tls: TlsListener | None = None,
    ):
        self.name = name
        self.tls = tls
        self.concurrency = concurrency
        self.echo = echo
        self.filter_config = filter_config
        self.wasm = wasm or find_wasm()
        self.envoy_bin = envoy_bin or find_envoy()
        self.dir = tempfile.mkdtemp(prefix=f"scopegate-e2e-{name}-")
        self.config_path = os.path.join(self.dir, "envoy.yaml")
        self.log_path = os.path.join(self.dir, "envoy.log")
        self.access_log_path = os.path.join(self.dir, "access.log")
        self.admin_path = os.path.join(self.dir, "admin.address")
        self.proc: subprocess.Popen | None = None
        self.admin_port = None
        self.port = None
        bootstrap = envoy_bootstrap(self.wasm, filter_config, echo.port, self.access_log_path, vm_id=vm_id, tls=tls)
        bootstrap["static_resources"]["clusters"].extend(extra_clusters or [])
        with open(self.config_path, "w") as f:
            # JSON is YAML; Envoy reads it as such.
            json.dump(bootstrap, f, indent=2)

    # -- process -----------------------------------------------------------

    def spawn(self):
        if not self.envoy_bin or not os.path.exists(self.envoy_bin):
            raise EnvoyStartError(f"envoy binary not found (ENVOY_BIN={os.environ.get('ENVOY_BIN')!r})")
        cmd = [
            self.envoy_bin,
            "-c", self.config_path,
            "--concurrency", str(self.concurrency),
            "--use-dynamic-base-id",
            "-l", "info",
            "--log-path", self.log_path,
            "--admin-address-path", self.admin_path,
            "--drain-time-s", "0",
            "--parent-shutdown-time-s", "1",
            "--file-flush-interval-msec", "100",
        ]
        self.stderr = open(os.path.join(self.dir, "stderr.log"), "wb")
        self.proc = subprocess.Popen(
            cmd, stdout=self.stderr, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL, start_new_session=True
        )
        _RUNNING.append(self)

    def _admin_get(self, path: str, timeout=2.0):
        with urllib.request.urlopen(f"http://127.0.0.1:{self.admin_port}{path}", timeout=timeout) as r:
            return r.status, r.read().decode("utf-8", "replace")

    def _wait(self, timeout: float = 30.0) -> str:
        """Wait until the admin says LIVE ("live") or the process exits ("exited")."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return "exited"
            if self.admin_port is None and os.path.exists(self.admin_path):
                text = open(self.admin_path).read().strip()
                if text.rsplit(":", 1)[-1].isdigit():
                    self.admin_port = int(text.rsplit(":", 1)[-1])
            if self.admin_port is not None:
                try:
                    status, body = self._admin_get("/ready")
                    if status == 200 and body.strip() == "LIVE":
                        return "live"
                except Exception:
                    pass
            time.sleep(0.1)
        return "timeout"

    def stats(self) -> dict[str, int]:
        """Counters and gauges from admin /stats (name -> integer value)."""
        _, body = self._admin_get("/stats")
        out = {}
        for line in body.splitlines():
            name, sep, value = line.rpartition(": ")
            if sep and value.strip().lstrip("-").isdigit():
                out[name] = int(value)
        return out

    def scopegate_counter(self, suffix: str) -> int | None:
        """Value of the counter whose name ends in `scopegate.<suffix>` (Envoy
        may prefix Wasm metrics, e.g. `wasmcustom.`)."""
        for name, value in self.stats().items():
            if name == f"scopegate.{suffix}" or name.endswith(f".scopegate.{suffix}"):
                return value
        return None

    def listener_port(self):
        _, body = self._admin_get("/listeners?format=json")
        for st in json.loads(body).get("listener_statuses", []):
            if st.get("name") == "main":
                port = st.get("local_address", {}).get("socket_address", {}).get("port_value")
                if port:
                    return int(port)
        return None

    def start(self, timeout: float = 30.0) -> "Envoy":
        self.spawn()
        state = self._wait(timeout)
        if state != "live":
            log = self.log_text()
            self.stop()
            raise EnvoyStartError(f"envoy {self.name} did not become LIVE ({state})", log)
        self.port = self.listener_port()
        if not self.port:
            log = self.log_text()
            self.stop()
            raise EnvoyStartError(f"envoy {self.name}: listener 'main' missing", log)
        return self

    def start_expect_failure(self, timeout: float = 30.0) -> tuple[str, str]:
        """Start and expect the filter config to be refused: returns (how, log)
        where how is "exited:<rc>" or "no-listener"; raises if Envoy came up
        with the listener in place."""
        self.spawn()
        state = self._wait(timeout)
        try:
            if state == "exited":
                rc = self.proc.returncode
                # give the log a moment to be flushed
                time.sleep(0.1)
                return f"exited:{rc}", self.log_text()
            if state == "timeout":
                raise EnvoyStartError(f"envoy {self.name} neither exited nor became LIVE", self.log_text())
            port = self.listener_port()
            if port:
                raise EnvoyStartError(
                    f"envoy {self.name} accepted an invalid filter config (listener on {port})", self.log_text()
                )
            return "no-listener", self.log_text()
        finally:
            self.stop()

    def stop(self):
        p = self.proc
        if p is not None and p.poll() is None:
            try:
                p.send_signal(signal.SIGTERM)
                p.wait(timeout=5)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout=5)
        if self in _RUNNING:
            _RUNNING.remove(self)
        try:
            self.stderr.close()
        except Exception:
            pass

    def cleanup(self):
        self.stop()
        if os.environ.get("SCOPEGATE_E2E_KEEP") != "1":
            shutil.rmtree(self.dir, ignore_errors=True)

    # -- logs ----------------------------------------------------------------

    def log_text(self) -> str:
        parts = []
        for p in (self.log_path, os.path.join(self.dir, "stderr.log")):
            try:
                with open(p, "r", errors="replace") as f:
                    parts.append(f.read())
            except FileNotFoundError:
                pass
        return "\n".join(parts)

    def access_log(self) -> str:
        try:
            with open(self.access_log_path, errors="replace") as f:
                return f.read()
        except FileNotFoundError:
            return ""

    # -- requests ------------------------------------------------------------

    @property
    def authority(self) -> str:
        """The default Host / `:authority` of requests to this Envoy."""
        return f"127.0.0.1:{self.port}" if self.tls else "gateway.test"

    def url(self, target: str) -> str:
        """The URL a request for `target` is made to (scheme and default authority)."""
        return f"{'https' if self.tls else 'http'}://{self.authority}{target}"

    def _tls(self, client_cert) -> dict:
        if self.tls is None:
            if client_cert is not None:
                raise ValueError(f"envoy {self.name}: a client certificate needs a TLS listener (tls=)")
            return {}
        return {"ssl_context": self.tls.client_context(client_cert), "host": self.authority}

    def request(self, method, target, headers=None, body=None, token=None, marker=True, timeout=10.0,
                client_cert=None) -> Response:
        """HTTP/1.1 (over TLS to a TlsListener, presenting `client_cert` if given)."""
        hdrs = _header_list(headers)
        if token is not None:
            hdrs.append(("Authorization", f"Bearer {token}"))
        return http1_request(self.port, method, target, hdrs, body, echo=self.echo, marker=marker, timeout=timeout,
                             **self._tls(client_cert))

    def get(self, target, token=None, headers=None, **kw) -> Response:
        return self.request("GET", target, headers=headers, token=token, **kw)

    def raw_request(self, method, target, headers=None, body=None, token=None, marker=True, timeout=10.0,
                    client_cert=None) -> Response:
        """HTTP/1.1 with the target and headers sent byte for byte (see http1_raw_request)."""
        hdrs = _header_list(headers)
        if token is not None:
            hdrs.append(("Authorization", b"Bearer " + _as_bytes(token)))
        return http1_raw_request(self.port, method, target, hdrs, body, echo=self.echo, marker=marker, timeout=timeout,
                                 **self._tls(client_cert))

    def h2_request(self, method, target, headers=None, body=None, token=None, timeout=10.0,
                   client_cert=None) -> Response:
        """HTTP/2: h2c with prior knowledge, or over TLS (ALPN h2) to a
        TlsListener, presenting `client_cert` if given."""
        from h2client import h2c_request  # local import: only the HTTP/2 tests need it

        hdrs = _header_list(headers)
        if token is not None:
            hdrs.append(("authorization", f"Bearer {token}"))
        mark = uuid.uuid4().hex
        hdrs.append((MARKER_HEADER, mark))
        kw = {}
        if self.tls is not None:
            kw = {"ssl_context": self._tls(client_cert)["ssl_context"], "server_hostname": "127.0.0.1",
                  "authority": self.authority}
        elif client_cert is not None:
            self._tls(client_cert)  # raises
        status, rh, data = h2c_request("127.0.0.1", self.port, method, target, hdrs, body, timeout=timeout, **kw)
        return Response(status, Headers(rh), data, mark, self.echo, protocol="HTTP/2", tls=self.tls is not None,
                        alpn="h2" if self.tls is not None else None)


def stop_all():
    for e in list(_RUNNING):
        e.stop()


atexit.register(stop_all)


# --------------------------------------------------------------------------
# Assertions shared by the tests
# --------------------------------------------------------------------------

_WWW_ERROR = {400: "invalid_request", 401: "invalid_token", 403: "insufficient_scope"}
_NOT_ABOUT_SCOPE = {"client_not_allowed", "provider_not_allowed", "route_not_allowed", "identity_unregistered"}


def minimal_descriptions() -> dict[str, str]:
    """reason → the fixed `error_description` of `error_detail: minimal`, read
    from the contract's table (docs/CONTRACT.md §2), the one place it is stated."""
    with open(os.path.join(REPO_ROOT, "docs", "CONTRACT.md")) as f:
        text = f.read()
    section = text.split("## 2.", 1)[1].split("\n## ", 1)[0]
    table = section.split("| reason | `error_description` |", 1)[1]
    rows = {}
    for line in table.splitlines():
        m = re.match(r"^\| `([a-z_]+)` \| (.+) \|$", line)
        if m:
            rows[m.group(1)] = m.group(2)
    assert rows, "no minimal descriptions found in docs/CONTRACT.md §2"
    return rows


_MINIMAL = minimal_descriptions()


def expect_denied(resp: Response, status: int, reason: str, token: str | None = None, scope: str | None = None,
                  detail: str = "minimal"):
    """Assert a CONTRACT §2 denial: status, WWW-Authenticate, JSON body with
    the reason code, token never echoed, upstream never reached; with the
    default `error_detail`, the description is the reason's fixed text."""
    assert resp.status == status, f"expected {status} {reason}, got {resp}"
    assert not resp.reached_upstream, f"denied request reached the upstream: {resp.upstream}"
    ctype = (resp.headers.get("content-type") or "").split(";")[0].strip().lower()
    assert ctype == "application/json", f"content-type {ctype!r}: {resp}"
    try:
        body = resp.json()
    except ValueError:
        raise AssertionError(f"body is not JSON: {resp}")
    assert isinstance(body, dict), resp
    for field in ("error", "error_description", "reason"):
        assert isinstance(body.get(field), str), f"body field {field!r} missing: {body}"
    assert body["reason"] == reason, f"reason {body['reason']!r} != {reason!r}: {body}"
    if detail == "minimal":
        assert body["error_description"] == _MINIMAL[reason], f"description tells more than minimal: {body}"
    www = resp.headers.get_all("www-authenticate")
    if reason == "token_missing" or reason in _NOT_ABOUT_SCOPE:
        assert www == ['Bearer realm="scopegate"'], f"WWW-Authenticate {www!r}"
        if reason in _NOT_ABOUT_SCOPE:
            assert body["error"] == "access_denied", body
    elif status in _WWW_ERROR:
        code = _WWW_ERROR[status]
        assert len(www) == 1, f"WWW-Authenticate {www!r}"
        assert www[0].startswith('Bearer realm="scopegate", '), www
        assert f'error="{code}"' in www[0], www
        assert body["error"] == code, body
        assert "error_description=" in www[0], www
        if scope is not None:
            assert f'scope="{scope}"' in www[0], www
    if token:
        text = resp.body.decode("latin-1")
        assert token not in text, "response body echoes the token"
        for part in token.split("."):
            if len(part) >= 16:
                assert part not in text, "response body echoes part of the token"
        for w in www:
            assert token not in w
    return body


def expect_allowed(resp: Response) -> dict:
    assert resp.status == 200, f"expected 200 from the upstream, got {resp}"
    assert resp.reached_upstream, f"response did not come from the upstream: {resp}"
    assert resp.headers.get("x-echo") == "1", resp
    return resp.upstream


def expect_authenticated(resp: Response, subject: str = "svc-billing") -> dict:
    """Allowed *because of the token*: the filter set the identity headers."""
    up = expect_allowed(resp)
    assert up["headers"].get("x-identity-subject") == [subject], up["headers"]
    return up


# --------------------------------------------------------------------------
# A YAML subset, for reading the repository's example files
# --------------------------------------------------------------------------
#
# The suite installs no YAML library, but the examples (Envoy bootstraps, the
# ECDS resource, Kong declarative files, the Istio WasmPlugin) are YAML. This
# reads the subset they are written in: block mappings and sequences (also
# "- key: value" items and sequences at their key's indentation), comments,
# plain / single- / double-quoted scalars, single-line flow collections, and
# literal block scalars (| and |-). Anything else raises YamlSubsetError, so an
# example that outgrows the subset fails loudly instead of being misread.
# (`scopegate check-config` reads the same configurations with a full YAML
# parser; test_examples.py runs it on the raw text too.)


class YamlSubsetError(ValueError):
    pass


_YAML_INT = re.compile(r"^[-+]?[0-9]+$")
_YAML_FLOAT = re.compile(r"^[-+]?([0-9]+\.[0-9]*|\.[0-9]+)([eE][-+]?[0-9]+)?$")


def _yaml_strip_comment(line: str) -> str:
    quote = None
    for i, c in enumerate(line):
        if quote:
            if c == "\\" and quote == '"':
                continue
            if c == quote and not (quote == '"' and i > 0 and line[i - 1] == "\\"):
                quote = None
        elif c in "'\"" and (i == 0 or line[i - 1] in " \t[{,:"):
            quote = c
        elif c == "#" and (i == 0 or line[i - 1] in " \t"):
            return line[:i].rstrip()
    return line.rstrip()


def _yaml_plain(text: str):
    if text in ("", "~", "null", "Null", "NULL"):
        return None
    if text in ("true", "True", "TRUE"):
        return True
    if text in ("false", "False", "FALSE"):
        return False
    if _YAML_INT.match(text):
        return int(text)
    if _YAML_FLOAT.match(text):
        return float(text)
    if text[0] in "&*!%@`|>":
        raise YamlSubsetError(f"unsupported YAML scalar {text!r}")
    return text


class _YamlInline:
    """One line's value: a scalar or a single-line flow collection."""

    def __init__(self, text: str):
        self.s = text
        self.i = 0

    def _ws(self):
        while self.i < len(self.s) and self.s[self.i] in " \t":
            self.i += 1

    def _peek(self) -> str:
        return self.s[self.i : self.i + 1]

    def parse(self):
        v = self.value("")
        self._ws()
        if self.i != len(self.s):
            raise YamlSubsetError(f"unexpected text after value: {self.s!r}")
        return v

    def value(self, stops: str):
        self._ws()
        c = self._peek()
        if c == "[":
            self.i += 1
            items = []
            self._ws()
            if self._peek() == "]":
                self.i += 1
                return items
            while True:
                items.append(self.value(",]"))
                self._ws()
                c = self._peek()
                self.i += 1
                if c == "]":
                    return items
                if c != ",":
                    raise YamlSubsetError(f"bad flow sequence: {self.s!r}")
        if c == "{":
            self.i += 1
            out = {}
            self._ws()
            if self._peek() == "}":
                self.i += 1
                return out
            while True:
                key = self.value(":,}")
                self._ws()
                if self._peek() != ":":
                    raise YamlSubsetError(f"bad flow mapping: {self.s!r}")
                self.i += 1
                out[key] = self.value(",}")
                self._ws()
                c = self._peek()
                self.i += 1
                if c == "}":
                    return out
                if c != ",":
                    raise YamlSubsetError(f"bad flow mapping: {self.s!r}")
        if c in ("'", '"'):
            return self.quoted()
        start = self.i
        while self.i < len(self.s):
            c = self.s[self.i]
            # ":" ends a plain key only when a space, the end or a flow
            # indicator follows (so "payments:read" stays one scalar).
            if c in stops and (c != ":" or self.s[self.i + 1 : self.i + 2] in ("", " ", ",", "}", "]")):
                break
            self.i += 1
        return _yaml_plain(self.s[start : self.i].strip())

    def quoted(self) -> str:
        q = self.s[self.i]
        start = self.i
        j = self.i + 1
        if q == "'":
            out = []
            while True:
                k = self.s.find("'", j)
                if k < 0:
                    raise YamlSubsetError(f"unterminated string: {self.s!r}")
                if self.s[k + 1 : k + 2] == "'":
                    out.append(self.s[j : k + 1])
                    j = k + 2
                    continue
                out.append(self.s[j:k])
                self.i = k + 1
                return "".join(out)
        while j < len(self.s):
            if self.s[j] == "\\":
                j += 2
                continue
            if self.s[j] == '"':
                self.i = j + 1
                try:
                    return json.loads(self.s[start : self.i])
                except ValueError as e:
                    raise YamlSubsetError(f"unsupported escape in {self.s!r}: {e}")
            j += 1
        raise YamlSubsetError(f"unterminated string: {self.s!r}")


def _yaml_split_key(text: str):
    """(key, rest) when `text` is "key: rest" / "key:", else None."""
    p = _YamlInline(text)
    if text[:1] in ("[", "{"):
        return None
    if text[:1] in ("'", '"'):
        key = p.quoted()
        p._ws()
        if p._peek() != ":":
            return None
        return key, text[p.i + 1 :].strip()
    m = re.match(r"^([^\s:#][^:]*?|[^\s#]*?[^\s:]):(?: +(.*))?$", text)
    if not m:
        return None
    return _yaml_plain(m.group(1).strip()), (m.group(2) or "").strip()


class _YamlBlock:
    def __init__(self, text: str):
        self.raw = text.splitlines()
        self.lines = []  # (line number, indent, text without comment)
        for n, line in enumerate(self.raw):
            if "\t" in line[: len(line) - len(line.lstrip())]:
                raise YamlSubsetError(f"line {n + 1}: tab indentation")
            stripped = _yaml_strip_comment(line)
            if stripped.strip() in ("", "---"):
                continue
            self.lines.append((n, len(stripped) - len(stripped.lstrip(" ")), stripped.strip()))
        self.pos = 0

    def peek(self):
        return self.lines[self.pos] if self.pos < len(self.lines) else None

    def document(self):
        first = self.peek()
        if first is None:
            return None
        value = self.node(first[1])
        if self.peek() is not None:
            raise YamlSubsetError(f"line {self.peek()[0] + 1}: unexpected indentation")
        return value

    def node(self, indent: int, text: str | None = None):
        n, _, line = self.peek()
        text = line if text is None else text
        if text == "-" or text.startswith("- "):
            return self.sequence(indent)
        if _yaml_split_key(text) is not None:
            return self.mapping(indent, text)
        self.pos += 1
        return self.inline(text, n, indent)

    def inline(self, text: str, n: int, indent: int):
        if text in ("|", "|-"):
            return self.literal(n, indent, keep_newline=text == "|")
        if text[:1] in ("|", ">"):
            raise YamlSubsetError(f"line {n + 1}: unsupported block scalar {text!r}")
        return _YamlInline(text).parse()

    def literal(self, n: int, indent: int, keep_newline: bool) -> str:
        body = []
        m = n + 1
        while m < len(self.raw):
            line = self.raw[m]
            if line.strip() and len(line) - len(line.lstrip(" ")) <= indent:
                break
            body.append(line)
            m += 1
        while body and not body[-1].strip():
            body.pop()
        width = min((len(l) - len(l.lstrip(" ")) for l in body if l.strip()), default=0)
        text = "\n".join(l[width:] for l in body) + ("\n" if keep_newline and body else "")
        while self.pos < len(self.lines) and self.lines[self.pos][0] < m:
            self.pos += 1
        return text

    def value_after(self, n: int, indent: int, rest: str, seq_indent_ok: bool):
        if rest:
            return self.inline(rest, n, indent)
        nxt = self.peek()
        if nxt is None:
            return None
        if nxt[1] > indent:
            return self.node(nxt[1])
        if seq_indent_ok and nxt[1] == indent and (nxt[2] == "-" or nxt[2].startswith("- ")):
            return self.sequence(indent)
        return None

    def mapping(self, indent: int, first_text: str | None = None):
        out = {}
        text = first_text
        while True:
            n, ind, line = self.peek()
            if text is None:
                text = line
            kv = _yaml_split_key(text)
            if kv is None:
                raise YamlSubsetError(f"line {n + 1}: expected 'key: value', got {text!r}")
            key, rest = kv
            if key in out:
                raise YamlSubsetError(f"line {n + 1}: duplicate key {key!r}")
            self.pos += 1
            out[key] = self.value_after(n, indent, rest, seq_indent_ok=True)
            text = None
            nxt = self.peek()
            if nxt is None or nxt[1] < indent:
                return out
            if nxt[1] > indent:
                raise YamlSubsetError(f"line {nxt[0] + 1}: unexpected indentation")
            if nxt[2] == "-" or nxt[2].startswith("- "):
                return out  # the enclosing indentless sequence goes on

    def sequence(self, indent: int):
        out = []
        while True:
            nxt = self.peek()
            if nxt is None or nxt[1] != indent or not (nxt[2] == "-" or nxt[2].startswith("- ")):
                if nxt is not None and nxt[1] > indent:
                    raise YamlSubsetError(f"line {nxt[0] + 1}: unexpected indentation")
                return out
            n, _, line = nxt
            rest = line[1:].lstrip(" ")
            col = indent + (len(line) - len(rest))
            if not rest:
                self.pos += 1
                out.append(self.value_after(n, indent, "", seq_indent_ok=False))
            elif rest == "-" or rest.startswith("- "):
                raise YamlSubsetError(f"line {n + 1}: nested '- -' sequences are not supported")
            elif _yaml_split_key(rest) is not None:
                out.append(self.mapping(col, rest))
            else:
                self.pos += 1
                out.append(self.inline(rest, n, indent))


def load_yaml_subset(text: str):
    """Parse YAML written in the subset described above (one document)."""
    return _YamlBlock(text).document()


def load_yaml_file(path: str):
    with open(path, encoding="utf-8") as f:
        return load_yaml_subset(f.read())


# --------------------------------------------------------------------------
# Servers and polling shared by the suites that fetch documents
# --------------------------------------------------------------------------


def free_port() -> int:
    """A port nothing listens on (yet): for a server that starts later."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def static_cluster(name: str, port: int) -> dict:
    """An Envoy STATIC cluster `name` with one endpoint, 127.0.0.1:`port`."""
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": "1s",
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {"socket_address": {
                "address": "127.0.0.1", "port_value": port}}}}]}],
        },
    }


def wait_until(cond, timeout: float, step: float = 0.1) -> bool:
    """Poll `cond` every `step` seconds until it is true or `timeout` has
    passed; the last call's answer."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if cond():
            return True
        time.sleep(step)
    return cond()


def every_worker_answers(status_of_one, expected: int, timeout: float, step: float = 0.1, in_a_row: int = 8) -> bool:
    """Poll until `in_a_row` requests in a row are answered `expected`: with
    several workers, a fetched document reaches the others on their next tick,
    so one answer says nothing about the next. `status_of_one()` makes one
    request and returns its status."""
    return wait_until(lambda: all(status_of_one() == expected for _ in range(in_a_row)), timeout, step)


def until_not_503(fn, timeout: float = 10.0) -> "Response":
    """Call `fn` (a request) until it is answered with something other than
    503, or `timeout` has passed: the last response."""
    deadline = time.monotonic() + timeout
    while True:
        r = fn()
        if r.status != 503 or time.monotonic() > deadline:
            return r
        time.sleep(0.2)


class DocumentServer:
    """An HTTP/1.1 document server owned by a test, standing in for a registry,
    revocation list, status list or JWKS endpoint.

    `documents`: path -> body (bytes as they are; anything else is served as
    its JSON); any other path is 404. Paths given as a full URI are reduced to
    their path. `content_type`: of every document. `etag`: True for every path,
    or a set of paths: answered with a strong ETag (20 hex digits of the body's
    SHA-256), and 304 with no body to a matching If-None-Match. `stall`:
    path -> seconds to wait before answering. `headers`: added to every
    answer.

    `script`: per-request behaviours consumed in order, whatever the path
    (a 404 consumes one too): None or "ok" (as usual), ("body", bytes) (that
    body, no ETag), ("status", n) (n with an error body, no ETag),
    ("stall", seconds) (wait, then as usual), or a name in `steps`
    ("garbage": an HTML error page).

    Every request is recorded (`t` when it arrived, `path`, `host`, `accept`,
    `if_none_match`, and once answered `status`, `etag`, `answered`). The
    record joins `fetches` when it arrives (`record_on_arrival`, the default)
    or else once answered; `arrivals` holds every arrival time."""

    steps: dict = {"garbage": ("body", b"<html>upstream error</html>")}

    def __init__(self, documents: dict | None = None, port: int = 0, content_type: str = "application/json",
                 etag=False, record_on_arrival: bool = True):
        self.lock = threading.Lock()
        self.documents: dict[str, bytes] = {}
        for path, body in (documents or {}).items():
            self.put(path, body)
        self.content_type = content_type
        self.etag = etag if etag is True else set(etag or ())
        self.stall: dict[str, float] = {}
        self.headers: dict[str, str] = {}
        self.script: list = []
        self.record_on_arrival = record_on_arrival
        self.fetches: list[dict] = []
        self.arrivals: list[float] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True

            def log_message(self, *args):
                pass

            def do_GET(self):
                outer._answer(self)

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.server.daemon_threads = True
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @staticmethod
    def path_of(path_or_uri: str) -> str:
        if "://" in path_or_uri:
            return "/" + path_or_uri.split("://", 1)[1].split("/", 1)[1]
        return path_or_uri

    def _answer(self, req: BaseHTTPRequestHandler):
        path = req.path
        record = {"t": time.monotonic(), "path": path, "host": req.headers.get("host"),
                  "accept": req.headers.get("accept"), "if_none_match": req.headers.get("if-none-match")}
        with self.lock:
            self.arrivals.append(record["t"])
            if self.record_on_arrival:
                self.fetches.append(record)
            step = self.script.pop(0) if self.script else None
            body = self.documents.get(path)
            stall = self.stall.get(path, 0)
            with_etag = self.etag is True or path in self.etag
            extra = dict(self.headers)
        step = self.steps.get(step, step) if isinstance(step, str) else step
        if stall:
            time.sleep(stall)
        status, headers = 200, {"content-type": self.content_type}
        if body is None:
            status, body, headers = 404, b'{"error": "not found"}', {"content-type": "application/json"}
        elif isinstance(step, tuple) and step[0] == "body":
            body = step[1]
        elif isinstance(step, tuple) and step[0] == "status":
            status, body, headers = step[1], b'{"error": "oops"}', {"content-type": "application/json"}
        else:
            if isinstance(step, tuple) and step[0] == "stall":
                time.sleep(step[1])
            if with_etag:
                tag = '"' + hashlib.sha256(body).hexdigest()[:20] + '"'
                headers["etag"] = tag
                if record["if_none_match"] == tag:
                    status, body = 304, b""
        headers.update(extra)
        record["status"], record["etag"] = status, headers.get("etag")
        try:
            req.send_response(status)
            for k, v in headers.items():
                req.send_header(k, v)
            req.send_header("content-length", str(len(body)))
            req.end_headers()
            record["answered"] = time.monotonic()
            if not self.record_on_arrival:
                with self.lock:
                    self.fetches.append(record)
            req.wfile.write(body)
        except OSError:
            pass

    def put(self, path_or_uri: str, body):
        """Serve `body` (bytes, or JSON of anything else) at a path or URI."""
        data = body if isinstance(body, bytes) else json.dumps(body).encode()
        with self.lock:
            self.documents[self.path_of(path_or_uri)] = data

    def count(self, path_or_uri: str | None = None) -> int:
        return len(self.snapshot(path_or_uri))

    def snapshot(self, path_or_uri: str | None = None) -> list[dict]:
        path = None if path_or_uri is None else self.path_of(path_or_uri)
        with self.lock:
            return [f for f in self.fetches if path is None or f["path"] == path]

    def stop(self):
        self.server.shutdown()
        self.server.server_close()


def status_of(gw: "Envoy", t: str) -> int:
    """The status of GET /payments/1 with bearer `t`, on a new connection."""
    return http1_request(gw.port, "GET", "/payments/1", [("authorization", f"Bearer {t}")], marker=False).status


def audit_records(log_text: str) -> list[tuple[str, dict]]:
    """Every audit line in a gateway's log, in order: the log line and the
    audit document in it (whatever the host writes around it)."""
    out = []
    for line in log_text.splitlines():
        i = line.find('{"audit":"scopegate"')
        if i >= 0:
            doc, _ = json.JSONDecoder().raw_decode(line[i:])
            out.append((line, doc))
    return out


def suppressed_records(log_text: str) -> list[dict]:
    """Every `audit_suppressed` summary line in a gateway's log (CONTRACT §5),
    whatever the host writes around it."""
    out = []
    for line in log_text.splitlines():
        i = line.find('{"audit_suppressed":"scopegate"')
        if i >= 0:
            doc, _ = json.JSONDecoder().raw_decode(line[i:])
            out.append(doc)
    return out


def rfc3339(t: int) -> str:
    """Epoch seconds as an RFC 3339 UTC time, as the documents write them."""
    return time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))


def counter(gw, name: str) -> int:
    """A scopegate counter of a running gateway (0 when not reported yet)."""
    return gw.scopegate_counter(name) or 0
