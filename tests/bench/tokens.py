"""Keys and pre-minted tokens for the benchmark (Python `cryptography` only).

Everything lands in one directory (default tests/bench/.work/tokens) and is
re-used by later runs while the tokens stay valid for at least a day more and
the requested pool size is unchanged, so only the first run pays for minting.

Per algorithm (RS256, ES256) it writes, one token per line:

  steady.txt  100 valid tokens (re-used round-robin by wrk)
  cold.txt    N valid tokens, each with its own jti/sub (one per request)
  attack.txt  N tokens: cold.txt's header and payload, one signature byte
              flipped (well-formed, known kid, wrong signature); unique, so
              neither side's cache can answer them
  junk.txt    1000 malformed tokens (see JUNK_KINDS)
  dpop.txt    100 valid DPoP-bound tokens (cnf.jkt = the thumbprint of the
              proof key), like steady.txt otherwise
  check.json  single tokens for the correctness checks (not in any pool)

and jwks.json with both public keys, and dpop-es256.pk8.pem: the client's
ES256 key that signs DPoP proofs. The proofs themselves (dpop_proofs) are
made per run, just before it: each names the request URL (htu, with the
listener's port) and carries a fresh iat and a unique jti.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import random
import time
from concurrent.futures import ProcessPoolExecutor

from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature

ISSUER = "https://idp.example.com"
AUDIENCE = "payments-api"
SCOPE = "payments:read payments:write"  # the route needs payments:read
CLIENT_ID = "bench-client"
KIDS = {"RS256": "bench-rs256", "ES256": "bench-es256"}
TTL_S = 7 * 24 * 3600  # no max_lifetime on either side
MIN_REMAINING_S = 24 * 3600
STEADY_N = 100  # = jwt_authn's default cache size, so native can cache all of them
JUNK_N = 1000
FORMAT = 4  # bump when the token layout changes


def b64u(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def b64u_decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _seg(obj) -> str:
    return b64u(json.dumps(obj, separators=(",", ":")).encode())


# -- keys ---------------------------------------------------------------------


def _load_or_make_keys(d: str):
    keys = {}
    for alg in ("RS256", "ES256", "DPOP-ES256"):
        path = os.path.join(d, f"{alg.lower()}.pk8.pem")
        if os.path.exists(path):
            with open(path, "rb") as f:
                keys[alg] = serialization.load_pem_private_key(f.read(), password=None)
            continue
        key = (
            rsa.generate_private_key(public_exponent=65537, key_size=2048)
            if alg == "RS256"
            else ec.generate_private_key(ec.SECP256R1())
        )
        with open(path, "wb") as f:
            f.write(
                key.private_bytes(
                    serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
                )
            )
        keys[alg] = key
    return keys


def _int(v: int, size: int | None = None) -> bytes:
    return v.to_bytes(size or (v.bit_length() + 7) // 8, "big")


def jwks(keys) -> dict:
    out = []
    rn = keys["RS256"].public_key().public_numbers()
    out.append({"kty": "RSA", "kid": KIDS["RS256"], "alg": "RS256", "use": "sig", "n": b64u(_int(rn.n)), "e": b64u(_int(rn.e))})
    en = keys["ES256"].public_key().public_numbers()
    out.append(
        {"kty": "EC", "kid": KIDS["ES256"], "alg": "ES256", "use": "sig", "crv": "P-256",
         "x": b64u(_int(en.x, 32)), "y": b64u(_int(en.y, 32))}
    )
    return {"keys": out}


def dpop_jwk(key) -> dict:
    """The public JWK of a P-256 proof key, as a DPoP proof's header carries it."""
    n = key.public_key().public_numbers()
    return {"kty": "EC", "crv": "P-256", "x": b64u(_int(n.x, 32)), "y": b64u(_int(n.y, 32))}


def jwk_thumbprint(jwk: dict) -> str:
    """RFC 7638: SHA-256 over the required members, sorted, no whitespace."""
    required = {k: jwk[k] for k in ("crv", "kty", "x", "y")}
    return b64u(hashlib.sha256(json.dumps(required, sort_keys=True, separators=(",", ":")).encode()).digest())


# -- signing (worker processes) -----------------------------------------------

_KEY = None
_ALG = None


def _init_worker(pem: bytes, alg: str):
    global _KEY, _ALG
    _KEY = serialization.load_pem_private_key(pem, password=None)
    _ALG = alg


def _sign(key, alg: str, data: bytes) -> bytes:
    if alg == "RS256":
        return key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    r, s = decode_dss_signature(key.sign(data, ec.ECDSA(hashes.SHA256())))
    return _int(r, 32) + _int(s, 32)


def _claims(i: int, now: int, prefix: str, scope: str = SCOPE, exp: int | None = None) -> dict:
    return {
        "iss": ISSUER,
        "aud": AUDIENCE,
        "sub": f"svc-{prefix}-{i}",
        "client_id": CLIENT_ID,
        "scope": scope,
        "iat": now,
        "exp": exp if exp is not None else now + TTL_S,
        "jti": f"{prefix}-{i}-{random.getrandbits(64):016x}",
    }


def _mint_range(args) -> list[str]:
    start, count, now, prefix = args[:4]
    client_fmt = args[4] if len(args) > 4 else None  # one client id per token, e.g. "svc-id-{:06d}"
    header = _seg({"alg": _ALG, "typ": "JWT", "kid": KIDS[_ALG]})
    out = []
    for i in range(start, start + count):
        claims = _claims(i, now, prefix)
        if client_fmt:
            claims["client_id"] = client_fmt.format(i)
        signing_input = header + "." + _seg(claims)
        out.append(signing_input + "." + b64u(_sign(_KEY, _ALG, signing_input.encode())))
    return out


def mint(key, alg: str, n: int, now: int, prefix: str, workers: int) -> list[str]:
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    chunk = 2000
    jobs = [(s, min(chunk, n - s), now, prefix) for s in range(0, n, chunk)]
    if workers <= 1 or n < 4000:
        _init_worker(pem, alg)
        return [t for job in jobs for t in _mint_range(job)]
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_worker, initargs=(pem, alg)) as ex:
        return [t for part in ex.map(_mint_range, jobs) for t in part]


def mint_identities(directory: str, alg: str, n: int, workers: int = 2) -> list[str]:
    """n valid tokens, each with its own client_id (svc-id-000000 …), signed
    with the benchmark's key in `directory` (made by ensure): n identities
    for the rate limits' memory run (bench.py --ratelimit-identities)."""
    key = _load_or_make_keys(directory)[alg]
    pem = key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
    now, chunk = int(time.time()), 2000
    jobs = [(s, min(chunk, n - s), now, "ident", "svc-id-{:06d}") for s in range(0, n, chunk)]
    with ProcessPoolExecutor(max_workers=max(1, workers), initializer=_init_worker, initargs=(pem, alg)) as ex:
        return [t for part in ex.map(_mint_range, jobs) for t in part]


def flip_signature(token: str, rnd: random.Random) -> str:
    head, payload, sig = token.split(".")
    raw = bytearray(b64u_decode(sig))
    pos = rnd.randrange(len(raw))
    raw[pos] ^= 1 << rnd.randrange(8)
    return f"{head}.{payload}.{b64u(bytes(raw))}"


# Malformed tokens, cycled in this order. None of them can be parsed as a JWS:
# every side must answer 401 without a signature check.
JUNK_KINDS = [
    "random base64url, no dot",
    "two segments",
    "four segments",
    "header not base64url",
    "header not JSON",
    "payload not JSON",
    "empty segments",
    "header without alg",
]


def junk(alg: str, n: int, rnd: random.Random) -> list[str]:
    kid = KIDS[alg]
    alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_"

    def rb64(k: int) -> str:
        return "".join(rnd.choice(alphabet) for _ in range(k))

    good_head = _seg({"alg": alg, "typ": "JWT", "kid": kid})
    out = []
    for i in range(n):
        kind = i % len(JUNK_KINDS)
        sig = rb64(342 if alg == "RS256" else 86)
        if kind == 0:
            tok = rb64(rnd.randrange(20, 600))
        elif kind == 1:
            tok = f"{good_head}.{rb64(rnd.randrange(40, 300))}"
        elif kind == 2:
            tok = f"{good_head}.{rb64(200)}.{sig}.{rb64(20)}"
        elif kind == 3:
            tok = f"{rb64(10)}*{rb64(20)}!.{rb64(200)}.{sig}"
        elif kind == 4:
            tok = f"{b64u(rnd.randbytes(rnd.randrange(10, 60)))}.{rb64(200)}.{sig}"
        elif kind == 5:
            tok = f"{good_head}.{b64u(rnd.randbytes(rnd.randrange(30, 200)))}.{sig}"
        elif kind == 6:
            tok = ".." if i % 2 else f"{good_head}..{sig}"
        else:
            tok = f"{_seg({'typ': 'JWT', 'kid': kid, 'n': i})}.{rb64(200)}.{sig}"
        out.append(tok)
    return out


def sign_claims(directory: str, alg: str, claims: dict) -> str:
    """One token with these claims, signed with the key in `directory`
    (made by ensure)."""
    key = _load_or_make_keys(directory)[alg]
    signing_input = _seg({"alg": alg, "typ": "JWT", "kid": KIDS[alg]}) + "." + _seg(claims)
    return signing_input + "." + b64u(_sign(key, alg, signing_input.encode()))


# -- DPoP proofs (RFC 9449 §4.2) ---------------------------------------------

_PROOF = None  # per worker: (key, encoded header, {token: ath}, tokens, htu, iat)


def _init_proof_worker(pem: bytes, tokens: list[str], htu: str, iat: int):
    global _PROOF
    key = serialization.load_pem_private_key(pem, password=None)
    header = _seg({"typ": "dpop+jwt", "alg": "ES256", "jwk": dpop_jwk(key)})
    aths = [b64u(hashlib.sha256(t.encode()).digest()) for t in tokens]
    _PROOF = (key, header, aths, tokens, htu, iat)


def _proof_range(args) -> list[str]:
    start, count, prefix = args
    key, header, aths, tokens, htu, iat = _PROOF
    out = []
    for i in range(start, start + count):
        k = i % len(tokens)
        claims = {"jti": f"{prefix}-{i}-{random.getrandbits(64):016x}", "htm": "GET", "htu": htu, "iat": iat,
                  "ath": aths[k]}
        si = header + "." + _seg(claims)
        out.append(tokens[k] + " " + si + "." + b64u(_sign(key, "ES256", si.encode())))
    return out


def dpop_proofs(meta: dict, alg: str, n: int, htu: str, prefix: str, workers: int = 2,
                iat: int | None = None) -> list[str]:
    """n lines "<DPoP-bound token> <proof>": the alg's DPoP-bound tokens
    round-robin, each with a fresh ES256 proof for GET `htu` (its ath, a
    unique jti, iat now), signed with the client's proof key."""
    with open(meta["dpop_key"], "rb") as f:
        pem = f.read()
    tokens = [x for x in open(meta["files"][alg]["dpop"]).read().splitlines() if x]
    init = (pem, tokens, htu, int(time.time()) if iat is None else iat)
    chunk = 2000
    jobs = [(s, min(chunk, n - s), prefix) for s in range(0, n, chunk)]
    if workers <= 1 or n < 4000:
        _init_proof_worker(*init)
        return [line for job in jobs for line in _proof_range(job)]
    with ProcessPoolExecutor(max_workers=workers, initializer=_init_proof_worker, initargs=init) as ex:
        return [line for part in ex.map(_proof_range, jobs) for line in part]


def _write_lines(path: str, lines: list[str]):
    tmp = path + ".tmp"
    with open(tmp, "w") as f:
        f.write("\n".join(lines) + "\n")
    os.replace(tmp, path)


def ensure(directory: str, cold_n: int, workers: int = 2, log=print) -> dict:
    """Make (or re-use) keys and token files; return their description."""
    os.makedirs(directory, exist_ok=True)
    meta_path = os.path.join(directory, "meta.json")
    now = int(time.time())
    if os.path.exists(meta_path):
        with open(meta_path) as f:
            meta = json.load(f)
        if (
            meta.get("format") == FORMAT
            and meta.get("cold_n") == cold_n
            and meta.get("exp_min", 0) - now >= MIN_REMAINING_S
            and all(os.path.exists(p) for a in meta["files"].values() for p in a.values())
        ):
            log(f"tokens: re-using {directory} (minted {time.ctime(meta['minted_at'])})")
            return meta
    keys = _load_or_make_keys(directory)
    files = {}
    t0 = time.time()
    rnd = random.Random(20260101)
    for alg in ("RS256", "ES256"):
        d = os.path.join(directory, alg)
        os.makedirs(d, exist_ok=True)
        log(f"tokens: minting {STEADY_N} steady + {cold_n} cold {alg} tokens ...")
        steady = mint(keys[alg], alg, STEADY_N, now, "steady", 1)
        cold = mint(keys[alg], alg, cold_n, now, "cold", workers)
        attack = [flip_signature(t, rnd) for t in cold]
        check = {
            "valid": mint(keys[alg], alg, 1, now, "check", 1)[0],
            "attack": flip_signature(mint(keys[alg], alg, 1, now, "check-attack", 1)[0], rnd),
        }
        _init_worker(
            keys[alg].private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()),
            alg,
        )
        head = _seg({"alg": alg, "typ": "JWT", "kid": KIDS[alg]})
        for name, claims in {
            # valid token, but scope lacks payments:read (403 on both sides)
            "no_scope": _claims(0, now, "check-noscope", scope="payments:write payments:readonly"),
            # expired (401 on both sides)
            "expired": _claims(0, now - 7200, "check-expired", exp=now - 3600),
        }.items():
            si = head + "." + _seg(claims)
            check[name] = si + "." + b64u(_sign(_KEY, alg, si.encode()))
        # DPoP-bound tokens: steady's claims plus cnf.jkt (the proof key's thumbprint).
        jkt = jwk_thumbprint(dpop_jwk(keys["DPOP-ES256"]))
        dpop = []
        for i in range(STEADY_N):
            si = head + "." + _seg(dict(_claims(i, now, "dpop"), cnf={"jkt": jkt}))
            dpop.append(si + "." + b64u(_sign(_KEY, alg, si.encode())))
        files[alg] = {
            "steady": os.path.join(d, "steady.txt"),
            "dpop": os.path.join(d, "dpop.txt"),
            "cold": os.path.join(d, "cold.txt"),
            "attack": os.path.join(d, "attack.txt"),
            "junk": os.path.join(d, "junk.txt"),
            "check": os.path.join(d, "check.json"),
        }
        _write_lines(files[alg]["steady"], steady)
        _write_lines(files[alg]["dpop"], dpop)
        _write_lines(files[alg]["cold"], cold)
        _write_lines(files[alg]["attack"], attack)
        _write_lines(files[alg]["junk"], junk(alg, JUNK_N, rnd))
        with open(files[alg]["check"], "w") as f:
            json.dump(check, f, indent=1)
    with open(os.path.join(directory, "jwks.json"), "w") as f:
        json.dump(jwks(keys), f, indent=1)
    meta = {
        "format": FORMAT,
        "cold_n": cold_n,
        "minted_at": now,
        "exp_min": now + TTL_S,
        "jwks": os.path.join(directory, "jwks.json"),
        "dpop_key": os.path.join(directory, "dpop-es256.pk8.pem"),
        "files": files,
    }
    with open(meta_path, "w") as f:
        json.dump(meta, f, indent=1)
    log(f"tokens: minted in {time.time() - t0:.1f}s into {directory}")
    return meta
