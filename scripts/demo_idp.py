#!/usr/bin/env python3
"""The sender-constrained part of the demo (`scripts/demo --idp`): tokens from
a real OAuth authorization server (tests/idp/server.mjs), Envoy with a TLS
listener that asks for client certificates, and the filter configuration of
envoy-example/scopegate.json plus a provider for that server with
`proof_of_possession`. Every call is made with curl and printed as such.

Shows: a DPoP-bound token with a fresh proof allowed; the same token, stolen,
sent without a proof, with the Bearer scheme, with its proof replayed, or
with a proof of the thief's own key, refused (401 and the reason); a
certificate-bound token allowed with its certificate and refused without it
or with another one.

Run by scripts/demo (which builds the filter first) with the project's
.venv python: `scripts/demo --idp [--once]`. Uses free ports, so it can run
beside the plain demo. ENVOY_BIN and SCOPEGATE_WASM say which Envoy and
filter to use (scripts/demo sets both).
"""

from __future__ import annotations

import argparse
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
import uuid

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
sys.path.insert(0, os.path.join(ROOT, "tests", "e2e"))

import harness as h  # noqa: E402  (tests/e2e/harness.py: Envoy, echo upstream, TLS listener)
import idp  # noqa: E402  (tests/e2e/idp.py: the authorization server, DPoP keys, a test CA)

POP = {"mtls": "if_bound", "dpop": "if_bound", "dpop_algorithms": ["ES256", "EdDSA"], "dpop_max_age_s": 60}
BOLD, PLAIN = ("\033[1m", "\033[0m") if sys.stdout.isatty() else ("", "")


def filter_config(auth_server: idp.AuthorizationServer) -> dict:
    """envoy-example/scopegate.json with one more provider: the authorization
    server (its keys inlined, as the example's are), DPoP and certificate
    bindings checked when a token carries them."""
    with open(os.path.join(ROOT, "envoy-example", "scopegate.json")) as f:
        cfg = json.load(f)
    cfg["providers"].append(auth_server.provider(
        name="idp", jwks={"inline": auth_server.jwks()}, algorithms=["ES256"], proof_of_possession=POP))
    return cfg


class Demo:
    def __init__(self, gw: h.Envoy, ca: idp.TestCA):
        self.gw = gw
        self.ca = ca
        self.secrets: dict[str, str] = {}

    def hide(self, value: str, label: str) -> str:
        self.secrets[value] = label
        return value

    def curl(self, title: str, path: str, headers=(), cert: idp.IssuedCert | None = None):
        url = f"https://127.0.0.1:{self.gw.port}{path}"
        args = ["-s", "-i", "--cacert", self.ca.cert_path]
        if cert is not None:
            args += ["--cert", cert.cert_path, "--key", cert.key_path]
        args.append(url)
        for name, value in headers:
            args += ["-H", f"{name}: {value}"]
        shown = " ".join(shlex.quote(self.elide(a)) for a in args)
        print(f"\n{BOLD}# {title}{PLAIN}\n$ curl {shown}", flush=True)
        out = subprocess.run(["curl", *args], capture_output=True, timeout=20).stdout.decode("latin-1")
        head, _, body = out.replace("\r", "").partition("\n\n")
        for line in head.splitlines():
            if line.startswith("HTTP/") or line.lower().startswith("www-authenticate"):
                print("  " + line)
        try:
            doc = json.loads(body)
        except ValueError:
            doc = None
        if isinstance(doc, dict) and "error" in doc:
            print("  " + body.strip())
        elif isinstance(doc, dict) and "headers" in doc:
            seen = doc["headers"]
            ids = " ".join(f"{k}={v[0]}" for k, v in sorted(seen.items()) if k.startswith("x-identity-"))
            kept = [k for k in ("authorization", "dpop") if k in seen]
            print(f"  upstream got {doc['path']} with {ids}; "
                  f"{'forwarded: ' + ', '.join(kept) if kept else 'credentials not forwarded'}")

    def elide(self, text: str) -> str:
        for secret, label in self.secrets.items():
            text = text.replace(secret, label)
        return text.replace(self.ca.dir + os.sep, "")


def run(once: bool) -> int:
    for tool in ("curl", "node"):
        if not shutil.which(tool):
            print(f"demo --idp needs {tool} (scripts/setup installs it)", file=sys.stderr)
            return 1
    ca = idp.TestCA()
    echo = h.EchoServer()
    with idp.AuthorizationServer(ca=ca) as auth_server:
        gw = h.Envoy("demo-idp", filter_config(auth_server), echo, tls=ca.tls_listener(), concurrency=1).start()
        try:
            demo = Demo(gw, ca)
            print(f"\nSender-constrained tokens: authorization server {auth_server.issuer} (tests/idp),\n"
                  f"Envoy with TLS on https://127.0.0.1:{gw.port} (client certificates requested), "
                  f"CA and certificates in {ca.dir}.")

            # DPoP (RFC 9449)
            key = idp.DpopKey("ES256")
            token = demo.hide(auth_server.dpop_token("dpop-client", "payments:read", key), "<dpop-token>")
            path = f"/payments/{uuid.uuid4().hex[:6]}"
            url = f"https://127.0.0.1:{gw.port}{path}"
            proof = demo.hide(key.proof("GET", url, token), "<proof>")
            print(f"\nA DPoP-bound token (cnf.jkt={idp.claims_of(token)['cnf']['jkt'][:12]}...) from the token endpoint;"
                  f"\nits proof: a JWT signed with the client's key, for GET {url}, with the token's hash (ath).")
            auth = ("authorization", f"DPoP {token}")
            demo.curl("DPoP-bound token with a fresh proof: allowed", path, [auth, ("dpop", proof)])
            demo.curl("the same token stolen, sent without a proof: 401 dpop_proof_missing", path, [auth])
            demo.curl("the stolen token sent as a Bearer token: 401 dpop_binding_mismatch", path,
                      [("authorization", f"Bearer {token}")])
            demo.curl("the stolen token with the proof replayed: 401 dpop_proof_replayed", path,
                      [auth, ("dpop", proof)])
            thief = demo.hide(idp.DpopKey("ES256").proof("GET", url, token), "<thief-proof>")
            demo.curl("the stolen token with a proof of the thief's own key: 401 dpop_binding_mismatch", path,
                      [auth, ("dpop", thief)])

            # Certificate-bound (RFC 8705)
            cert = ca.client_cert("mtls-client", name="mtls-client")
            other = ca.client_cert("other-app", name="other-app")
            mtls = demo.hide(auth_server.mtls_token("mtls-client", "payments:read", cert), "<mtls-token>")
            print(f"\nA certificate-bound token (cnf x5t#S256={cert.x5t_s256[:12]}...) for the client certificate "
                  f"mtls-client.crt.")
            bearer = ("authorization", f"Bearer {mtls}")
            demo.curl("certificate-bound token over TLS with its certificate: allowed", "/payments/42", [bearer],
                      cert=cert)
            demo.curl("the same token without the certificate: 401 mtls_certificate_missing", "/payments/42",
                      [bearer])
            demo.curl("the same token with another client certificate: 401 mtls_binding_mismatch", "/payments/42",
                      [bearer], cert=other)
            if once:
                return 0
            print(f"\nEnvoy keeps running on https://127.0.0.1:{gw.port}, the authorization server on "
                  f"{auth_server.issuer}.\nPress Ctrl-C to stop.", flush=True)
            while gw.proc.poll() is None:
                time.sleep(1)
            return 1
        except KeyboardInterrupt:
            return 0
        finally:
            gw.cleanup()
            echo.stop()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--once", action="store_true", help="stop after the calls")
    return run(ap.parse_args().once)


if __name__ == "__main__":
    sys.exit(main())
