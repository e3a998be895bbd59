"""A known mix of machine identities for the inventory end-to-end tests
(`test_inventory_report.py` in Envoy, `tests/kong/test_kong_inventory_report.py`
in Kong's host), and what `scopegate report` must say of it.

Each `Caller` is one identity with its tokens and the requests it makes; each
`Call` says, by hand, what the filter must answer (status, reason, rule) and
whether the request is counted under the caller's identity (it is not when
it is refused before the token is verified: no rule, for one). The expected
report is summed from these hand-written outcomes and the hand-written
`granted` / `exercised` scope sets, never from the filter's own logic.
"""

from __future__ import annotations

import calendar
import json
import os
import re
import subprocess
import time
from dataclasses import dataclass, field

import harness as h

# Reasons of requests refused before a token verified: no identity.
UNVERIFIED = {"token_missing", "lifetime_too_long", "route_not_allowed", "public_route"}


@dataclass
class Call:
    method: str
    path: str
    status: int
    reason: str  # the audit line's reason
    rule: str | None
    n: int = 1

    @property
    def allowed(self) -> bool:
        return self.status < 400

    @property
    def counted(self) -> bool:
        """Counted under the caller's identity (its token verified)."""
        return self.reason not in UNVERIFIED


@dataclass
class Token:
    scope: str | None
    lifetime_s: int
    age_s: int = 0  # iat this many seconds before minting


@dataclass
class Caller:
    provider: str | None  # None: no token at all
    client_id: str | None
    tokens: list[Token]
    calls: list[Call]
    granted: list[str] = field(default_factory=list)  # effective scopes (after the registry's ceiling)
    exercised: list[str] = field(default_factory=list)
    subject: str | None = None
    alg: str = "RS256"
    minted: list[str] = field(default_factory=list)

    @property
    def key(self) -> tuple[str, str]:
        return (self.provider, self.client_id)

    def mint(self, keys: h.KeySet, providers: dict[str, str]) -> None:
        """One token per `tokens` entry. `providers`: name -> issuer."""
        now = int(time.time())
        self.minted = []
        if self.provider is None:
            return
        for t in self.tokens:
            iat = now - t.age_s
            c = h.claims(t.scope, iss=providers[self.provider], sub=self.subject or self.client_id,
                         client_id=self.client_id, iat=iat, exp=iat + t.lifetime_s)
            key = keys.partner_ec if self.provider == "partner" else keys.for_alg(self.alg)
            alg = "ES256" if self.provider == "partner" else self.alg
            self.minted.append(h.mint(key, c, alg=alg))

    def requests(self):
        """(call, token or None) for every request, tokens taken in turn."""
        i = 0
        for call in self.calls:
            for _ in range(call.n):
                tok = self.minted[i % len(self.minted)] if self.minted else None
                i += 1
                yield call, tok


def interleave(callers: list[Caller]):
    """Every caller's requests, round-robin across callers, so that each
    identity's requests are spread over time (and so over workers)."""
    queues = [list(c.requests()) for c in callers]
    while any(queues):
        for c, q in zip(callers, queues):
            if q:
                call, tok = q.pop(0)
                yield c, call, tok


def send_all(gw, callers: list[Caller]) -> list[tuple[Caller, Call, int]]:
    """Sends the mix, a new connection per request; (caller, call, status)."""
    out = []
    for c, call, tok in interleave(callers):
        r = gw.request(call.method, call.path, token=tok, marker=False, body=b"{}" if call.method == "POST" else None)
        out.append((c, call, r.status))
    return out


# --------------------------------------------------------------------------
# What the report must say
# --------------------------------------------------------------------------


def expected_identity(c: Caller) -> dict:
    counted = [call for call in c.calls if call.counted]
    denied: dict[str, int] = {}
    rules: dict[str, int] = {}
    for call in counted:
        if not call.allowed:
            denied[call.reason] = denied.get(call.reason, 0) + call.n
        if call.rule:
            rules[call.rule] = rules.get(call.rule, 0) + call.n
    granted = sorted(c.granted)
    exercised = sorted(c.exercised)
    return {
        "requests": sum(call.n for call in counted),
        "allowed": sum(call.n for call in counted if call.allowed),
        "denied": dict(sorted(denied.items())),
        "rules": dict(sorted(rules.items())),
        "scopes_granted": granted,
        "scopes_exercised": exercised,
        "scopes_unused": [s for s in granted if s not in exercised],
        "max_token_lifetime_s": max(t.lifetime_s for t in c.tokens),
    }


def identities_of(callers: list[Caller]) -> dict[tuple[str, str], dict]:
    """Identity -> its expected figures, for every caller with a counted request."""
    out: dict[tuple[str, str], dict] = {}
    for c in callers:
        if c.provider is not None and any(call.counted for call in c.calls):
            out[c.key] = expected_identity(c)
    return out


def without_identity(callers: list[Caller]) -> dict:
    requests = allowed = 0
    denied: dict[str, int] = {}
    for c in callers:
        for call in c.calls:
            if call.counted:
                continue
            requests += call.n
            if call.allowed:
                allowed += call.n
            else:
                denied[call.reason] = denied.get(call.reason, 0) + call.n
    return {"requests": requests, "allowed": allowed, "denied": dict(sorted(denied.items()))}


def totals(callers: list[Caller]) -> dict:
    requests = allowed = 0
    denied: dict[str, int] = {}
    for c in callers:
        for call in c.calls:
            requests += call.n
            if call.allowed:
                allowed += call.n
            else:
                denied[call.reason] = denied.get(call.reason, 0) + call.n
    return {"requests": requests, "allowed": allowed, "denied": dict(sorted(denied.items()))}


# --------------------------------------------------------------------------
# Reading the log
# --------------------------------------------------------------------------


def inventory_records(log_text: str) -> list[tuple[str, dict]]:
    """Every inventory line in a gateway's log: the log line and the document."""
    out = []
    for line in log_text.splitlines():
        i = line.find('{"inventory":"scopegate"')
        if i >= 0:
            doc, _ = json.JSONDecoder().raw_decode(line[i:])
            out.append((line, doc))
    return out


def inventory_sums(log_text: str) -> dict[tuple[str, str], dict]:
    """Inventory lines alone, added up per identity (requests, allowed,
    denied, rules, lines)."""
    out: dict[tuple[str, str], dict] = {}
    for _, doc in inventory_records(log_text):
        if doc.get("overflow"):
            continue
        s = out.setdefault((doc["provider"], doc["client_id"]),
                           {"requests": 0, "allowed": 0, "denied": {}, "rules": {}, "lines": 0})
        s["lines"] += 1
        s["requests"] += doc["requests"]
        s["allowed"] += doc["allowed"]
        for k, v in doc["denied"].items():
            s["denied"][k] = s["denied"].get(k, 0) + v
        for k, v in doc["rules"].items():
            s["rules"][k] = s["rules"].get(k, 0) + v
    for s in out.values():
        s["denied"] = dict(sorted(s["denied"].items()))
        s["rules"] = dict(sorted(s["rules"].items()))
    return out


def wait_for_inventory(gw, expected_requests: int, timeout: float = 30.0) -> list[dict]:
    """Polls the log until the inventory lines count `expected_requests`
    (every worker has flushed its window); the inventory documents."""
    found: list[dict] = []

    def done():
        found[:] = [doc for _, doc in inventory_records(gw.log_text())]
        return sum(d.get("requests", 0) for d in found) >= expected_requests

    assert h.wait_until(done, timeout, 0.5), (
        f"inventory lines count {sum(d.get('requests', 0) for d in found)} requests after {timeout}s, "
        f"expected {expected_requests}: {found}")
    return found


# --------------------------------------------------------------------------
# Running `scopegate report`
# --------------------------------------------------------------------------


def scopegate_bin() -> str:
    if os.environ.get("SCOPEGATE_BIN"):
        return os.environ["SCOPEGATE_BIN"]
    subprocess.run(["cargo", "build", "-q", "-p", "scopegate-cli"], cwd=h.REPO_ROOT, check=True)
    return os.path.join(h.REPO_ROOT, "target", "debug", "scopegate")


def report(args: list[str], cwd: str) -> subprocess.CompletedProcess:
    p = subprocess.run([scopegate_bin(), "report", *args], cwd=cwd, capture_output=True, timeout=60)
    assert p.returncode == 0, f"scopegate report {args} exited {p.returncode}: {p.stderr.decode(errors='replace')}"
    return p


def report_json(args: list[str], cwd: str) -> dict:
    return json.loads(report([*args, "--format", "json"], cwd).stdout)


RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\dZ$")


def instant(text: str) -> int:
    assert RFC3339.match(text), text
    return calendar.timegm(time.strptime(text, "%Y-%m-%dT%H:%M:%SZ"))
