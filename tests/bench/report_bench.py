#!/usr/bin/env python3
"""Scale benchmark of `scopegate report` (docs/report.md, "Speed").

Generates a log of mixed inventory and audit lines, Envoy-prefixed, from many
identities (default: 1,000,000 lines, 10,000 identities), then times
`target/release/scopegate report --format json` on it and reads the child's
peak RSS from the kernel (os.wait4). Targets: >= 200,000 lines/s and
< 256 MiB peak RSS; `--check` exits 1 when one is missed.

    cargo build --release -p scopegate-cli
    python3 tests/bench/report_bench.py [--lines N] [--identities N] [--runs N] [--check]

Only the standard library; the log is written once to tests/bench/.work/ and reused.
"""

import argparse
import json
import os
import random
import statistics
import subprocess
import sys
import time
from datetime import datetime, timedelta, timezone
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
TARGET_LINES_PER_S = 200_000
TARGET_RSS_MIB = 256

SCOPES = ["orders:read", "orders:write", "billing:read", "billing:write", "admin",
          "reports:read", "users:read", "users:write"]
RULES = {"orders-read": ["orders:read"], "orders-write": ["orders:write"],
         "billing": ["billing:read"], "reports": ["reports:read"]}
REASONS = ["insufficient_scope", "token_expired", "client_not_allowed", "identity_unregistered"]
PREFIX = "[{t}.{ms:03d}][{tid}][info][wasm] [source/extensions/common/wasm/context.cc:1195] wasm log scopegate_filter scopegate: "


def iso(t):
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def generate(path, lines, identities, seed=7):
    """Writes `lines` lines: per identity-window, an inventory line, then audit
    lines (half marked `inventoried`, as the filter will write them)."""
    rng = random.Random(seed)
    start = datetime(2026, 12, 7, tzinfo=timezone.utc)
    ids = []
    for i in range(identities):
        granted = rng.sample(SCOPES, rng.randint(1, 5))
        ids.append((f"corp" if i % 3 else "partner", f"svc-{i:05d}", granted, f"team-{i % 97}"))
    tmp = path.with_suffix(".tmp")
    with open(tmp, "w") as f:
        n = 0
        window = 0
        while n < lines:
            ws = start + timedelta(minutes=window)
            we = ws + timedelta(minutes=1)
            for provider, client, granted, owner in ids:
                if n >= lines:
                    break
                reqs = rng.randint(1, 500)
                denied = rng.randint(0, min(3, reqs))
                used = [r for r, need in RULES.items() if need[0] in granted] or ["orders-read"]
                inv = ('{"inventory":"scopegate","version":1,"window_start":"%s","window_end":"%s",'
                       '"provider":"%s","client_id":"%s","subject":"%s","first_seen":"%s","last_seen":"%s",'
                       '"requests":%d,"allowed":%d,"denied":{"%s":%d},"rules":{%s},'
                       '"scopes_presented":[%s],"scopes_exercised":[%s],'
                       '"max_token_lifetime_s":3600,"max_token_age_s":%d,"registered":true,"owner":"%s"}') % (
                    iso(ws), iso(we), provider, client, client, iso(ws + timedelta(seconds=3)),
                    iso(we - timedelta(seconds=1)), reqs, reqs - denied, rng.choice(REASONS), denied,
                    ",".join('"%s":%d' % (r, reqs // len(used)) for r in used),
                    ",".join('"%s"' % s for s in granted),
                    ",".join('"%s"' % RULES[r][0] for r in used if RULES[r][0] in granted),
                    rng.randint(0, 3600), owner)
                f.write(PREFIX.format(t=ws.strftime("%Y-%m-%d %H:%M:%S"), ms=n % 1000, tid=17 + n % 4) + inv + "\n")
                n += 1
                if n >= lines:
                    break
                at = ws + timedelta(seconds=rng.randint(0, 59))
                allow = rng.random() < 0.9
                audit = ('{"audit":"scopegate","time":"%s","decision":"%s","reason":"%s","message":"%s",'
                         '"rule":"%s","provider":"%s","subject":"%s","client_id":"%s","scopes":[%s],'
                         '"jti":"%016x","method":"GET","path":"/orders/%d","source":"10.0.%d.%d",'
                         '"mode":"enforce","registered":true,"owner":"%s"%s}') % (
                    iso(at), "allow" if allow else "deny", "ok" if allow else rng.choice(REASONS),
                    "allowed" if allow else "denied", rng.choice(used), provider, client, client,
                    ",".join('"%s"' % s for s in granted), rng.getrandbits(64), n, n % 256, n % 199,
                    owner, ',"inventoried":true' if n % 4 == 1 else "")
                f.write(PREFIX.format(t=at.strftime("%Y-%m-%d %H:%M:%S"), ms=n % 1000, tid=17 + n % 4) + audit + "\n")
                n += 1
            window += 1
    tmp.replace(path)


def run_once(binary, log, out):
    t0 = time.perf_counter()
    p = subprocess.Popen([str(binary), "report", "--format", "json", "--now", "2026-12-31T00:00:00Z",
                          "-o", str(out), str(log)], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(p.pid, 0)
    elapsed = time.perf_counter() - t0
    err = p.stderr.read().decode() if p.stderr else ""
    p.returncode = os.waitstatus_to_exitcode(status)
    if p.returncode != 0:
        sys.exit(f"scopegate report failed ({p.returncode}): {err}")
    return elapsed, usage.ru_maxrss / 1024  # ru_maxrss is KiB on Linux


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--lines", type=int, default=1_000_000)
    ap.add_argument("--identities", type=int, default=10_000)
    ap.add_argument("--runs", type=int, default=3)
    ap.add_argument("--binary", default=str(ROOT / "target/release/scopegate"))
    ap.add_argument("--check", action="store_true", help="exit 1 when a target is missed")
    a = ap.parse_args()
    binary = Path(a.binary)
    if not binary.exists():
        sys.exit(f"{binary} is missing: cargo build --release -p scopegate-cli")
    work = Path(__file__).resolve().parent / ".work"
    work.mkdir(exist_ok=True)
    log = work / f"report-bench-{a.lines}-{a.identities}.log"
    if not log.exists():
        t0 = time.perf_counter()
        generate(log, a.lines, a.identities)
        print(f"generated {log} ({log.stat().st_size / 2**20:.0f} MiB) in {time.perf_counter() - t0:.1f} s",
              file=sys.stderr)
    out = work / "report-bench.json"
    runs = [run_once(binary, log, out) for _ in range(a.runs)]
    # The numbers count only if every line was read as what it is.
    summary = json.loads(out.read_text())["summary"]
    lines = summary["lines"]
    counted = lines["inventory"] + lines["audit"] + lines["audit_inventoried"]
    if lines["read"] != a.lines or counted != a.lines or summary["identities"] != a.identities:
        sys.exit(f"the report did not read the log as generated: {summary['lines']}, "
                 f"{summary['identities']} identities")
    times = [r[0] for r in runs]
    rss = max(r[1] for r in runs)
    best = min(times)
    median = statistics.median(times)
    size = log.stat().st_size / 2**20
    print(f"lines: {a.lines:,} from {a.identities:,} identities ({size:.0f} MiB)")
    print(f"time: best {best:.2f} s, median {median:.2f} s over {a.runs} runs")
    print(f"speed: {a.lines / best:,.0f} lines/s best, {a.lines / median:,.0f} lines/s median "
          f"({size / median:.0f} MiB/s)")
    print(f"peak RSS: {rss:.1f} MiB")
    ok = a.lines / median >= TARGET_LINES_PER_S and rss < TARGET_RSS_MIB
    print(f"targets (>= {TARGET_LINES_PER_S:,} lines/s median, < {TARGET_RSS_MIB} MiB): "
          f"{'met' if ok else 'MISSED'}")
    if a.check and not ok:
        sys.exit(1)


if __name__ == "__main__":
    main()
