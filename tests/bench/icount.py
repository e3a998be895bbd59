"""Instructions per request, counted by Valgrind's callgrind: the noise-free
companion of the wall-clock runs (tests/bench/run --instructions).

Each side runs in a fresh Envoy (--concurrency 1) under callgrind. After a
warm-up (connections, V8's compilation, caches) the counters are zeroed, a
fixed number of requests is sent over one keep-alive connection, and the
counters are dumped: their total over the request count is the CPU work of
one request in the whole Envoy process, Wasm VM included. The count does not
depend on the machine's load, so one run is enough and sides can run side by
side; it is not time (instructions differ in cost), so the wall-clock
ratios stay the benchmark's verdict and this table says where the work is.
"""

from __future__ import annotations

import concurrent.futures
import glob
import http.client
import json
import os
import re
import shutil
import signal
import subprocess
import time
import urllib.request

import bench
import tokens as tok


def _tokens(files: dict, workload: str, n: int, mode: str | None = None) -> list[str]:
    lines = [x for x in open(files[workload]).read().splitlines() if x]
    if (mode or bench.MODE[workload]) == "unique":
        return lines[:n]
    return [lines[i % len(lines)] for i in range(n)]


def _dump_total(path_glob: str) -> int | None:
    """The `summary` of the part written by `callgrind_control --dump`."""
    for path in sorted(glob.glob(path_glob)):
        text = open(path, errors="replace").read()
        for part in re.split(r"^part: ", text, flags=re.M)[1:]:
            trigger = re.search(r"^desc: Trigger: (.*)$", part, re.M)
            total = re.search(r"^summary: (\d+)", part, re.M)
            if trigger and total and trigger.group(1).strip() == "dump":
                return int(total.group(1))
    return None


def count_one(envoy_bin: str, config: str, rundir: str, tokens: list[str], warm: list[str],
              expect: int, dpop: tuple | None = None, extra: tuple = ()) -> dict:
    """With dpop = (meta, alg), `tokens` and `warm` are ignored: as many
    "<token> <proof>" lines are made once the listener's port is known."""
    shutil.rmtree(rundir, ignore_errors=True)
    os.makedirs(rundir)
    admin = os.path.join(rundir, "admin.address")
    out = os.path.join(rundir, "callgrind.out.%p")
    cmd = ["valgrind", "--tool=callgrind", "--smc-check=all-non-file", f"--callgrind-out-file={out}",
           "--dump-instr=no", "--collect-jumps=no",
           envoy_bin, "-c", config, "--concurrency", "1", "--disable-hot-restart", "-l", "error",
           "--admin-address-path", admin] + list(extra)
    log = open(os.path.join(rundir, "valgrind.log"), "wb")
    proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        port = None
        # Under callgrind a large configuration (scopegate-governance: 28 MiB,
        # parsed by three VMs) takes many minutes to load on a busy machine.
        deadline = time.monotonic() + float(os.environ.get("BENCH_ICOUNT_START_TIMEOUT", "1800"))
        while port is None and time.monotonic() < deadline:
            if proc.poll() is not None:
                raise bench.BenchError(f"Envoy under valgrind exited ({config}); see {rundir}/valgrind.log")
            try:
                address = open(admin).read().strip()
                status = json.load(urllib.request.urlopen(f"http://{address}/listeners?format=json", timeout=5))
                port = status["listener_statuses"][0]["local_address"]["socket_address"]["port_value"]
            except (OSError, ValueError, KeyError, IndexError):
                time.sleep(0.5)
        if port is None:
            raise bench.BenchError(f"Envoy under valgrind did not become ready ({config})")
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        statuses: dict[int, int] = {}
        if dpop is not None:
            meta, alg = dpop
            warm = tok.dpop_proofs(meta, alg, len(warm), bench.bench_url(port), "icount-warm", workers=1)
            tokens = tok.dpop_proofs(meta, alg, len(tokens), bench.bench_url(port), "icount", workers=1)

        def send(batch):
            for t in batch:
                if dpop is not None:
                    token, proof = t.split(" ")
                    headers = {"authorization": f"DPoP {token}", "dpop": proof}
                else:
                    headers = {"authorization": f"Bearer {t}"}
                conn.request("GET", bench.PATH, headers=headers)
                r = conn.getresponse()
                r.read()
                statuses[r.status] = statuses.get(r.status, 0) + 1

        send(warm)
        subprocess.run(["callgrind_control", "--zero", str(proc.pid)], capture_output=True, check=False)
        statuses.clear()
        send(tokens)
        subprocess.run(["callgrind_control", "--dump", str(proc.pid)], capture_output=True, check=False)
        conn.close()
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGTERM)
        proc.wait()
        log.close()
    total = _dump_total(os.path.join(rundir, "callgrind.out.*"))
    if total is None:
        raise bench.BenchError(f"no callgrind dump in {rundir}")
    if statuses.get(expect, 0) != len(tokens):
        raise bench.BenchError(f"{config}: expected {len(tokens)} answers {expect}, got {statuses}")
    return {"instructions": total, "requests": len(tokens), "per_request": total / len(tokens), "statuses": statuses}


def run(args, envoy_bin: str, configs: dict, meta: dict, info: dict) -> str:
    jobs = []
    for w in args.workloads:
        for a in args.algs:
            files = meta["files"][a]
            # Warm-up: the steady tokens, so caches and JIT are warm but the
            # measured tokens of cold and attack are still unseen (dpop: its
            # own proofs, made when the side's Envoy is up, count_one).
            warm = _tokens(files, "steady", args.icount_warmup)
            for s in args.sides:
                pool, mode, auth = bench.workload_input(w, s)
                measured = _tokens(files, pool, args.icount_requests, mode) if auth == "bearer" else \
                    [""] * args.icount_requests
                jobs.append((w, a, s, bench.config_for(configs, s, w), warm, measured,
                             (meta, a) if auth == "dpop" else None))
    results = {}
    t0 = time.monotonic()
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.icount_jobs) as pool:
        futures = {
            pool.submit(count_one, envoy_bin, cfg, os.path.join(args.work, "icount", f"{w}-{a}-{s}"),
                        measured, warm, bench.EXPECT[w][s], dpop,
                        # Scopegate's info lines (audit, inventory) are written, as in the timed runs.
                        bench.SCOPEGATE_LOG if s in bench.SCOPEGATE_SIDES else ()): (w, a, s)
            for w, a, s, cfg, warm, measured, dpop in jobs
        }
        for n, f in enumerate(concurrent.futures.as_completed(futures), 1):
            key = futures[f]
            results[key] = f.result()
            bench.log(f"[icount {n}/{len(jobs)} {time.monotonic() - t0:5.0f}s] {' '.join(key):28} "
                      f"{results[key]['per_request']:10,.0f} instructions/request")
    md = render(args, results, info)
    os.makedirs(args.out, exist_ok=True)
    name = args.report or "instructions"
    with open(os.path.join(args.out, f"{name}.md"), "w") as f:
        f.write(md)
    with open(os.path.join(args.out, f"{name}.json"), "w") as f:
        json.dump({"info": info, "results": [dict(zip(("workload", "alg", "side"), k), **v) for k, v in results.items()]},
                  f, indent=1)
    return md


def render(args, results: dict, info: dict) -> str:
    L = ["# Scopegate benchmark: instructions per request (callgrind)", ""]
    L.append(f"- date: {info['date']}; Envoy {info.get('envoy_version', '?')} `--concurrency 1` under "
             f"Valgrind's callgrind; {args.icount_requests} requests counted after {args.icount_warmup} "
             f"warm-up requests (steady tokens), one keep-alive connection, GET {bench.PATH}")
    L.append(f"- scopegate.wasm: {info['wasm_size']} bytes, sha256 {info['wasm_sha256'][:16]}…")
    L.append("- every instruction of the Envoy process between the two callgrind dumps, divided by the "
             "requests: deterministic, independent of the machine's load; not time")
    L.append("")
    sides = [s for s in bench.SIDES if s in args.sides]
    L.append("| workload | alg | " + " | ".join(sides) + " |")
    L.append("|---|---|" + "---:|" * len(sides))
    for w in args.workloads:
        for a in args.algs:
            cells = []
            for s in sides:
                r = results.get((w, a, s))
                cells.append(f"{r['per_request']:,.0f}" if r else "-")
            L.append(f"| {w} | {a} | " + " | ".join(cells) + " |")
    L.append("")
    L.append("Ratios (native's instructions over the side's: above 1.0× the side does less work per request "
             "than native), and what each side adds to the baseline:")
    L.append("")
    L.append("| workload | alg | native/Scopegate | native/lean | native/contract | native/floor | "
             "native − baseline | floor − baseline | contract − floor | Scopegate − contract | Scopegate − lean | "
             "registry − Scopegate | revocation − Scopegate |")
    L.append("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for w in args.workloads:
        for a in args.algs:
            get = lambda s: results.get((w, a, s), {}).get("per_request")
            nat = get("native")

            def ratio(s):
                x = get(s)
                return f"{nat / x:.2f}×" if nat and x else "-"

            def diff(x, y):
                x, y = get(x), get(y)
                return f"{x - y:+,.0f}" if x is not None and y is not None else "-"

            L.append(f"| {w} | {a} | {ratio('scopegate')} | {ratio('scopegate-lean')} | {ratio('contract')} | "
                     f"{ratio('floor')} | {diff('native', 'baseline')} | {diff('floor', 'baseline')} | "
                     f"{diff('contract', 'floor')} | {diff('scopegate', 'contract')} | "
                     f"{diff('scopegate', 'scopegate-lean')} | {diff('scopegate-registry', 'scopegate')} | "
                     f"{diff('scopegate-revocation', 'scopegate')} |")
    L.append("")
    L.append("Columns: floor − baseline = the Proxy-Wasm boundary (a context and the callbacks per request); "
             "contract − floor = the host calls the public contract requires (header read, clock, request "
             "properties, identity headers, counters; for junk a 401 instead); Scopegate − contract = "
             "Scopegate's own logic (for cold and attack: the signature check); Scopegate − lean = the "
             "seven request properties (three on a denial); registry − Scopegate = what the identity registry "
             f"of scopegate-registry ({args.registry_size:,} entries) adds: the client's look-up and its ceiling; "
             f"revocation − Scopegate = what the revocation list of scopegate-revocation ({args.revocation_size:,} "
             "token ids) adds: the token's jti looked up, on cache hits too.")
    more = [s for s in ("scopegate-audit", "scopegate-ratelimit", "scopegate-inventory", "scopegate-governance")
            if s in args.sides]
    if more and "scopegate" in args.sides:
        L.append("")
        L.append("What each further Scopegate side adds to scopegate (instructions per request; audit: the audit "
                 "log at its default, budgeted; ratelimit: rate limits never exceeded; inventory: inventory every "
                 "10 s; governance: registry + revocation list + rate limits + inventory):")
        L.append("")
        L.append("| workload | alg | " + " | ".join(f"{s.removeprefix('scopegate-')} − Scopegate" for s in more)
                 + " | " + " | ".join(f"Scopegate/{s.removeprefix('scopegate-')}" for s in more) + " |")
        L.append("|---|---|" + "---:|" * (2 * len(more)))
        for w in args.workloads:
            for a in args.algs:
                get = lambda s: results.get((w, a, s), {}).get("per_request")
                base = get("scopegate")
                d = [f"{get(s) - base:+,.0f} ({100 * (get(s) - base) / base:+.2f} %)" if base and get(s) else "-"
                     for s in more]
                q = [f"{base / get(s):.3f}×" if base and get(s) else "-" for s in more]
                L.append(f"| {w} | {a} | " + " | ".join(d + q) + " |")
    if "dpop" in args.workloads:
        L.append("")
        L.append("dpop: native's count is a steady Bearer request (it cannot check DPoP), so native/Scopegate on "
                 "that row compares a DPoP request with native's steady one. What a DPoP proof adds to Scopegate's "
                 "request (its token is a cache hit, as in steady), and what a cold token's signature check adds, "
                 "for comparison:")
        L.append("")
        L.append("| alg | side | dpop − steady | cold − steady | (dpop − steady) − (cold − steady) |")
        L.append("|---|---|---:|---:|---:|")
        for a in args.algs:
            for side in [x for x in bench.SCOPEGATE_SIDES if x in args.sides]:
                get = lambda w: results.get((w, a, side), {}).get("per_request")
                d, c, st = get("dpop"), get("cold"), get("steady")
                cell = lambda x: f"{x:+,.0f}" if x is not None else "-"
                dd = d - st if d is not None and st is not None else None
                cc = c - st if c is not None and st is not None else None
                L.append(f"| {a} | {side} | {cell(dd)} | {cell(cc)} | "
                         f"{cell(dd - cc if dd is not None and cc is not None else None)} |")
    return "\n".join(L) + "\n"
