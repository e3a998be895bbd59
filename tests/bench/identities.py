"""Memory of rate limits for many active identities (tests/bench/run
--ratelimit-identities N): Envoy with Scopegate's rate limits is driven
through N tokens of N distinct client ids, each sent once (so each identity
takes one bucket slot in Envoy's shared data), and Envoy's memory is read
before and after; the same on `scopegate` without rate limits subtracts what
the requests themselves leave behind (the token cache, V8, Envoy's own
buffers). Shared data lives in Envoy's heap (tcmalloc), not in the Wasm VM's
linear memory, so tcmalloc's `allocated` shows it byte for byte and RSS
shows it as pages.
"""

from __future__ import annotations

import concurrent.futures
import http.client
import json
import os
import shutil
import time

import bench
import tokens as tok


def identity_tokens(meta: dict, alg: str, n: int) -> str:
    """N valid tokens, client id svc-id-000000 … (one per token), minted once
    into the token directory."""
    d = os.path.dirname(meta["files"][alg]["steady"])
    path = os.path.join(d, f"identities-{n}.txt")
    if os.path.exists(path) and os.path.getmtime(path) >= meta["minted_at"]:
        return path
    lines = tok.mint_identities(os.path.dirname(meta["jwks"]), alg, n, workers=os.cpu_count() or 2)
    tok._write_lines(path, lines)
    return path


def drive(port: int, tokens: list[str], connections: int = 8) -> dict:
    """Each token once, over `connections` keep-alive connections."""
    statuses: dict[int, int] = {}

    def worker(part: list[str]) -> dict[int, int]:
        out: dict[int, int] = {}
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for t in part:
            conn.request("GET", bench.PATH, headers={"authorization": f"Bearer {t}"})
            r = conn.getresponse()
            r.read()
            out[r.status] = out.get(r.status, 0) + 1
        conn.close()
        return out

    parts = [tokens[i::connections] for i in range(connections)]
    with concurrent.futures.ThreadPoolExecutor(max_workers=connections) as ex:
        for out in ex.map(worker, parts):
            for k, v in out.items():
                statuses[k] = statuses.get(k, 0) + v
    return statuses


def run(args, envoy_bin: str, configs: dict, meta: dict, info: dict) -> str:
    alg, n = args.algs[0], args.ratelimit_identities
    files = meta["files"][alg]
    path = identity_tokens(meta, alg, n)
    tokens = [x for x in open(path).read().splitlines() if x]
    report = {}
    for side in ("scopegate", "scopegate-ratelimit-ids"):
        rundir = os.path.join(args.work, "runs", f"identities-{side}")
        shutil.rmtree(rundir, ignore_errors=True)
        envoy = bench.Envoy(envoy_bin, configs[side], rundir, args.envoy_cpu, bench.SCOPEGATE_LOG,
                            args.concurrency).start()
        samples = []
        try:
            check_side = "scopegate-ratelimit" if side == "scopegate-ratelimit-ids" else side
            bench.check(envoy, check_side, "steady", alg, files)
            bench.wrk(args, envoy.port, files["steady"], "shared", 1, os.path.join(rundir, "warmup.json"))
            time.sleep(1)

            def sample(label, statuses=None, secs=None):
                stats = envoy.stats()
                samples.append({"label": label, **envoy.memory(), "statuses": statuses, "seconds": secs,
                                "overflow": sum(v for k, v in stats.items() if k.endswith("rate_limits.overflow")),
                                "cache_miss": sum(v for k, v in stats.items() if k.endswith("scopegate.cache.miss"))})

            sample("after checks and 1 s of steady warm-up")
            # Pass 2: the first tenth again, whose slots exist: nothing new should be kept.
            for rnd, batch in ((1, tokens), (2, tokens[: max(1, n // 10)])):
                t0 = time.monotonic()
                st = drive(envoy.port, batch)
                secs = round(time.monotonic() - t0, 1)
                if st.get(200, 0) != len(batch):
                    raise bench.BenchError(f"identities: {side}: expected {len(batch)} answers 200, got {st}")
                time.sleep(1)
                sample(f"after {n:,} identities, pass 1" if rnd == 1 else
                       f"pass 2: the first {len(batch):,} identities again", st, secs)
                bench.log(f"bench: identities {side} pass {rnd}: {len(batch):,} requests in {secs} s, RSS "
                          f"{bench.mib(samples[-1]['rss'])} MiB, allocated {bench.mib(samples[-1]['allocated'])} MiB, "
                          f"overflow {samples[-1]['overflow']:,}")
        finally:
            envoy.stop()
        report[side] = samples
    info["identities_samples"] = report
    return render(args, info, report, n)


def render(args, info, report, n) -> str:
    mib = bench.mib
    L = ["# Scopegate benchmark: rate-limit memory for many active identities", ""]
    rl = info.get("identities_rate_limits", {})
    L.append(f"- date: {info['date']}; Envoy `--concurrency {args.concurrency}`; {args.algs[0]}; scopegate.wasm "
             f"sha256 {info['wasm_sha256'][:16]}…")
    L.append(f"- {n:,} valid tokens, each with its own `client_id` (`svc-id-000000` …), each sent once per pass "
             f"over 8 keep-alive connections; then the first tenth again (pass 2). `scopegate-ratelimit-ids` is scopegate-ratelimit with "
             f"`rate_limits` {json.dumps(rl)}; `scopegate` has no rate limits and is driven the same way, so its "
             f"growth (token cache of 4,096 entries, V8, Envoy's buffers) is subtracted")
    L.append(f"- other processes' CPU use just before: {info['foreign_before']:.2f} CPUs (load does not change "
             f"memory, only how long a pass takes)")
    L.append("")
    L.append("| side | sample | RSS MiB | tcmalloc allocated MiB | heap MiB | rate-limit overflow | pass s |")
    L.append("|---|---|---:|---:|---:|---:|---:|")
    for side, s in report.items():
        for x in s:
            L.append(f"| {side} | {x['label']} | {mib(x['rss'])} | {mib(x['allocated'])} | {mib(x['heap_size'])} | "
                     f"{x['overflow']:,} | {x['seconds'] if x['seconds'] is not None else '-'} |")
    L.append("")
    a, b = report.get("scopegate"), report.get("scopegate-ratelimit-ids")
    if a and b:
        d = lambda s, k, i: s[i][k] - s[0][k]
        slots = n - b[1]["overflow"]
        for k, name in (("allocated", "tcmalloc allocated"), ("rss", "RSS")):
            grow_rl, grow_sg = d(b, k, 1), d(a, k, 1)
            net = grow_rl - grow_sg
            L.append(f"- {name}: +{mib(grow_rl)} MiB with rate limits, +{mib(grow_sg)} MiB without, over the first "
                     f"pass: **{net / 2**20:+.1f} MiB for {slots:,} identities with a slot, {net / max(slots, 1):,.0f} "
                     f"bytes per identity**; pass 2 (a tenth of them again): "
                     f"{(d(b, k, 2) - d(b, k, 1)) / 2**20:+.1f} MiB with, {(d(a, k, 2) - d(a, k, 1)) / 2**20:+.1f} MiB "
                     f"without")
        L.append(f"- rate-limit overflow (an identity that found no free slot among 4 probes passes uncounted): "
                 f"{b[1]['overflow']:,} of {n:,} in the first pass")
    return "\n".join(L) + "\n"
