"""Path-confusion corpus (tests/attacks/path-confusion.txt) against the
filter, over HTTP/1.1 and HTTP/2 (h2c).

Every entry is sent with a token that has only `payments:read` (client ops-bot,
provider corp: /admin/** is missing nothing but the `admin` scope). For each
entry and protocol exactly one of these must hold:

* denied by Scopegate: 400/401/403 with a JSON reason, the upstream untouched,
  and the reason the one a reference model of the README's normalization
  predicts (400 request_malformed, 403 insufficient_scope for /admin/**,
  403 route_not_allowed for unmatched paths);
* allowed: the upstream got Scopegate's normalized path (as the reference model
  computes it), under /payments, a fixed point of the normalization, with no
  dot-segment (also after one percent-decoding), no `//`, no `%2F`/`%5C`/`%00`,
  no double encoding, no raw `\\` or `;`, and the identity of the token;
* rejected by Envoy itself before the filter (a non-JSON 4xx local reply, a
  reset or closed HTTP/2 stream): counted, and the upstream untouched.

Nothing may ever reach the upstream under /admin.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from concurrent.futures import ThreadPoolExecutor

import pytest

import harness as h
from h2client import H2Error, h2c_request

CORPUS = os.path.join(h.REPO_ROOT, "tests", "attacks", "path-confusion.txt")
UNRESERVED = set(b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~")
HEX = set(b"0123456789abcdefABCDEF")
MAX_PATH_BYTES = 8192


def load_corpus() -> list[tuple[str, bytes]]:
    with open(CORPUS, "rb") as f:
        lines = f.read().split(b"\n")
    out = []
    for n, line in enumerate(lines, start=1):
        if not line or line.startswith(b"#"):
            continue
        out.append((f"L{n}", line))
    return out


def generated() -> list[tuple[str, bytes]]:
    """Entries a text file cannot hold well: raw controls, trailing blanks, long paths."""
    long_ok = b"/payments/" + b"./" * 4080 + b"../admin/x"  # just under 8 KiB: resolves to /admin/x
    assert len(long_ok) <= MAX_PATH_BYTES
    return [
        ("gen-raw-nul", b"/payments/..\x00/admin/x"),
        ("gen-raw-nul-end", b"/admin\x00"),
        ("gen-raw-cr", b"/payments/..\r/admin/x"),
        ("gen-raw-lf", b"/payments/..\n/admin/x"),
        ("gen-raw-crlf-header", b"/payments/1\r\nX-Injected: 1\r\n"),
        ("gen-raw-tab", b"/payments/..\t/admin/x"),
        ("gen-raw-soh", b"/payments/\x01/../admin/x"),
        ("gen-raw-del", b"/payments/\x7f/../admin/x"),
        ("gen-raw-0x80", b"/payments/\x80/../admin/x"),
        ("gen-raw-0xff", b"/payments/\xff/../admin/x"),
        ("gen-raw-space-inside", b"/payments/.. /admin/x"),
        ("gen-trailing-space", b"/admin "),
        ("gen-trailing-spaces-dots", b"/admin. . /x"),
        ("gen-overlong-utf8-raw", b"/payments/\xc0\xae\xc0\xae/admin/x"),
        ("gen-long-dots-under-8k", long_ok),
        ("gen-long-over-8k", b"/payments/" + b"a/" * 5000 + b"../" * 5001 + b"admin/x"),
        ("gen-long-60k", b"/payments/" + b"x" * 60000),
    ]


ENTRIES = load_corpus() + generated()
assert len(load_corpus()) >= 80


# -- reference model of the README's normalization ---------------------------


def sg_normalize(path: bytes) -> bytes | None:
    """Scopegate's normalization as the README describes it; None = refused (400)."""
    if not path.startswith(b"/") or len(path) > MAX_PATH_BYTES:
        return None
    out = bytearray()
    i = 0
    while i < len(path):
        b = path[i]
        if b == 0x25:  # %
            hi, lo = path[i + 1 : i + 2], path[i + 2 : i + 3]
            if not hi or not lo or hi[0] not in HEX or lo[0] not in HEX:
                return None
            v = int(path[i + 1 : i + 3], 16)
            if v in (0x2F, 0x5C, 0x00):
                return None
            if v == 0x25 and len(path) > i + 4 and path[i + 3] in HEX and path[i + 4] in HEX:
                return None
            if v in UNRESERVED:
                out.append(v)
            else:
                out += b"%%%02X" % v
            i += 3
            continue
        if b in (0x5C, 0x3B, 0x23, 0x00) or not (0x21 <= b <= 0x7E):
            return None
        out.append(b)
        i += 1
    # Double encoding is judged on the decoded result: %25%32%65 becomes %252e.
    if re.search(rb"%25[0-9A-Fa-f]{2}", bytes(out)):
        return None
    segs: list[bytes] = []
    trailing = False
    for seg in bytes(out).split(b"/")[1:]:
        trailing = False
        if seg in (b"", b"."):
            trailing = True
        elif seg == b"..":
            if segs:
                segs.pop()
            trailing = True
        else:
            segs.append(seg)
    norm = b"".join(b"/" + s for s in segs)
    if trailing or not segs:
        norm += b"/"
    return norm


def expected_outcome(norm: bytes) -> tuple[int, str]:
    """The decision the base rules give a GET with a payments:read/ops-bot token."""
    segs = [] if norm == b"/" else norm[1:].split(b"/")
    if segs[:1] == [b"payments"]:  # read: GET /payments/**
        return 200, "allowed"
    if segs == [b"healthz"]:  # health: public
        return 200, "public_route"
    if segs[:1] == [b"admin"]:  # admin: any_scopes admin
        return 403, "insufficient_scope"
    if len(segs) == 3 and segs[0] == b"reports" and segs[1] and segs[2] == b"summary":
        return 403, "insufficient_scope"
    return 403, "route_not_allowed"


def _pct_decode_all(seg: bytes) -> bytes:
    return re.sub(rb"%([0-9A-Fa-f]{2})", lambda m: bytes([int(m.group(1), 16)]), seg)


def assert_safe_upstream_path(target: bytes):
    path = target.split(b"?", 1)[0]
    assert path == b"/payments" or path.startswith(b"/payments/"), f"upstream path outside /payments: {target!r}"
    assert sg_normalize(path) == path, (
        f"the upstream got {target!r}, a path Scopegate itself refuses or rewrites (not a fixed point "
        f"of its normalization): a server that decodes it once more sees {_pct_decode_all(path)!r}"
    )
    low = path.lower()
    for bad in (b"//", b"\\", b";", b"#", b"%2f", b"%5c", b"%00"):
        assert bad not in low, f"upstream path contains {bad!r}: {target!r}"
    assert not re.search(rb"%25[0-9a-fA-F]{2}", path), f"double encoding reaches the upstream: {target!r}"
    for seg in path.split(b"/")[1:]:
        assert seg not in (b".", b".."), f"dot-segment reaches the upstream: {target!r}"
        once = _pct_decode_all(seg)
        assert once not in (b".", b".."), f"segment decodes to a dot-segment: {target!r}"
        assert b"/" not in once and b"\\" not in once and b"\x00" not in once, f"segment decodes to a separator: {target!r}"


# -- sending ------------------------------------------------------------------


class Rejected:
    """Envoy did not let the request reach the filter (local reply or reset)."""

    def __init__(self, detail, reached_upstream):
        self.detail = detail
        self.reached_upstream = reached_upstream

    def __repr__(self):
        return f"<rejected by Envoy: {self.detail}>"


def _is_scopegate_reply(resp: h.Response) -> bool:
    try:
        body = resp.json()
    except ValueError:
        return False
    return isinstance(body, dict) and "reason" in body


def send(gw: h.Envoy, proto: str, target: bytes, token: str):
    if proto == "h1":
        try:
            r = gw.raw_request("GET", target, token=token)
        except (ConnectionError, OSError) as e:
            return Rejected(f"h1 connection closed: {e!r}", False)
        if r.status >= 400 and not r.reached_upstream and not _is_scopegate_reply(r):
            return Rejected(f"h1 {r.status} {r.body[:40]!r}", False)
        return r
    mark = h.uuid.uuid4().hex
    hdrs = [("authorization", f"Bearer {token}"), (h.MARKER_HEADER, mark)]
    try:
        status, rh, data = h2c_request("127.0.0.1", gw.port, "GET", target.decode("latin-1"), hdrs, timeout=10)
    except (H2Error, OSError) as e:
        return Rejected(f"h2 {e!r}", gw.echo.find(mark) is not None)
    r = h.Response(status, h.Headers(rh), data, mark, gw.echo, protocol="HTTP/2")
    if r.status >= 400 and not r.reached_upstream and not _is_scopegate_reply(r):
        return Rejected(f"h2 {r.status} {r.body[:40]!r}", False)
    return r


# -- the test -----------------------------------------------------------------

TALLY: Counter = Counter()


@pytest.fixture(scope="module")
def summary(request):
    yield None
    total = len(ENTRIES)
    line = (
        f"path-confusion: {total} inputs x 2 protocols: {TALLY['denied']} denied, "
        f"{TALLY['allowed']} allowed-normalized, {TALLY['rejected']} rejected by Envoy's codec "
        f"(h1 {TALLY['rejected-h1']}, h2 {TALLY['rejected-h2']}), {TALLY['failed']} failed"
    )
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    capman = request.config.pluginmanager.get_plugin("capturemanager")
    if reporter is not None and capman is not None:
        with capman.global_and_fixture_disabled():
            reporter.write_line("")
            reporter.write_line(line)
    else:  # pragma: no cover
        print(line)


@pytest.fixture(scope="module")
def reader_token(keys):
    # long-lived enough for the whole module; client ops-bot so only the scope is missing on /admin
    return h.mint(keys.rsa, h.claims("payments:read", client_id="ops-bot"), alg="RS256")


@pytest.fixture(scope="module")
def responses(gw, reader_token):
    """All entries sent up front, concurrently: Envoy holds a connection whose
    HTTP/2 request it refuses for its 1 s delayed-close, which would otherwise
    add a second per refused entry."""
    jobs = [(case, target, proto) for case, target in ENTRIES for proto in ("h1", "h2")]
    with ThreadPoolExecutor(max_workers=24) as pool:
        futures = {(case, proto): pool.submit(send, gw, proto, target, reader_token) for case, target, proto in jobs}
    return futures


@pytest.mark.parametrize("proto", ["h1", "h2"])
@pytest.mark.parametrize("case,target", ENTRIES, ids=[e[0] for e in ENTRIES])
def test_path_confusion(gw, summary, responses, reader_token, case, target, proto):
    ok = False
    try:
        _check(gw, proto, target, reader_token, responses[(case, proto)].result())
        ok = True
    finally:
        if not ok:
            TALLY["failed"] += 1


def _check(gw, proto, target, token, r):
    assert gw.proc.poll() is None, "Envoy died"
    if isinstance(r, Rejected):
        assert not r.reached_upstream, f"{target!r}: rejected by the codec but reached the upstream"
        TALLY["rejected"] += 1
        TALLY[f"rejected-{proto}"] += 1
        return
    up = r.upstream
    if up is not None:
        assert not up["path"].startswith("/admin"), f"{target!r} reached the upstream under /admin: {up['path']!r}"
    predicted = None
    # Only targets of visible ASCII reach the filter unchanged; Envoy's HTTP/1
    # parser may rewrite others (e.g. it drops a trailing blank) before it.
    if target.startswith(b"/") and all(0x21 <= b <= 0x7E for b in target):
        path, sep, query = target.partition(b"?")
        norm = sg_normalize(path)
        predicted = (400, "request_malformed") if norm is None else expected_outcome(norm)
    if r.status == 200:
        assert up is not None, f"{target!r}: 200 that did not come from the upstream: {r}"
        got = up["path"].encode("latin-1")
        try:
            assert_safe_upstream_path(got)
        except AssertionError as e:
            raise AssertionError(f"sent {target!r} ({proto}), allowed: {e}") from None
        assert up["method"] == "GET"
        assert up["headers"].get("x-identity-scopes") == ["payments:read"], up["headers"]
        if predicted is not None:
            assert predicted == (200, "allowed"), f"{target!r}: model predicts {predicted}, filter allowed as {got!r}"
            if norm == path:
                want = target
            else:
                want = norm + (b"?" + query if query else b"")
            assert got == want, f"{target!r}: upstream got {got!r}, normalized form is {want!r}"
        TALLY["allowed"] += 1
        return
    assert r.status in (400, 401, 403), f"{target!r}: not a denial: {r}"
    body = h.expect_denied(r, r.status, r.json().get("reason"), token=token)
    assert body["reason"] in ("request_malformed", "insufficient_scope", "route_not_allowed"), body
    if predicted is not None:
        assert (r.status, body["reason"]) == predicted, f"{target!r}: model predicts {predicted}, got {r}"
    TALLY["denied"] += 1


def test_zz_filter_still_serving_after_corpus(gw, tok):
    for proto in ("h1", "h2"):
        r = send(gw, proto, b"/payments/1", tok("payments:read"))
        assert not isinstance(r, Rejected), r
        h.expect_authenticated(r)
    assert gw.proc.poll() is None
