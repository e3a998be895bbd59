"""Instructions per request of a few single configurations, for questions the
eight sides do not answer (results/access-log.md): how the decision reaches
the access log, and how the request headers are read.

    .venv/bin/python tests/bench/probe.py [--workloads steady,junk] [--alg RS256]
        [--log none,seven,struct,seven-json,typed-json] VARIANT...

A VARIANT is either a configuration of the floor filter (`contract`,
`contract+struct`, `contract+single`, ...; see floor/src/lib.rs: `contract`
becomes `contract-allow`, or `contract-deny` on junk) or `scopegate` followed
by members to merge into the benchmark's Scopegate configuration
(`scopegate{"request_properties_form":"struct"}`). `--log` adds an access log (written
to /dev/null) of the seven decision fields in the given form (text: `seven`
as :PLAIN properties, `struct` as CEL fields of the record; JSON:
`seven-json`, `typed-json` the record as one :TYPED member), so the cost of
reading them back is counted too. Each run is icount.count_one: a fresh Envoy
under callgrind, the steady tokens to warm up, then the workload's tokens.
"""

from __future__ import annotations

import argparse
import concurrent.futures
import json
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import bench  # noqa: E402
import icount  # noqa: E402
import tokens as tok  # noqa: E402

FIELDS = ["decision", "reason", "rule", "subject", "client_id", "issuer", "scopes"]

# The access-log line, per form: the seven properties read as plain strings,
# or the one Struct property's fields read by CEL.
LOG_FORMATS = {
    "seven": " ".join(f"%FILTER_STATE(wasm.scopegate.{f}:PLAIN)%" for f in FIELDS),
    "struct": " ".join(f"%CEL(filter_state['wasm.scopegate'].{f})%" for f in FIELDS),
}
# JSON access logs: the seven properties as seven members, or the record as
# one member (the Struct's fields nested under "value").
JSON_FORMATS = {
    "seven-json": {f: f"%FILTER_STATE(wasm.scopegate.{f}:PLAIN)%" for f in FIELDS},
    "typed-json": {"scopegate": "%FILTER_STATE(wasm.scopegate:TYPED)%"},
}


def envoy_config(path: str, wasm: str, config: str, log: str) -> str:
    with open(os.path.join(HERE, "envoy", "wasm.yaml")) as f:
        text = f.read()
    text = text.replace("@WASM_FILE@", json.dumps(wasm)).replace("@WASM_CONFIG@", json.dumps(config))
    if log != "none":
        form = (f"{{ json_format: {json.dumps(JSON_FORMATS[log])} }}" if log in JSON_FORMATS else
                f"{{ text_format_source: {{ inline_string: {json.dumps(LOG_FORMATS[log] + chr(10))} }} }}")
        text = text.replace("          http_filters:\n", f"""          access_log:
          - name: envoy.access_loggers.file
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.access_loggers.file.v3.FileAccessLog
              path: /dev/null
              log_format: {form}
          http_filters:
""")
    with open(path, "w") as f:
        f.write(text)
    return path


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("variants", nargs="+")
    p.add_argument("--workloads", default="steady,junk")
    p.add_argument("--alg", default="RS256")
    p.add_argument("--log", default="none", help="comma-separated: none, seven, struct, seven-json, typed-json")
    p.add_argument("--requests", type=int, default=2000)
    p.add_argument("--warmup", type=int, default=300)
    p.add_argument("--jobs", type=int, default=2)
    p.add_argument("--wasm", default=os.environ.get("SCOPEGATE_WASM", os.path.join(
        HERE, "..", "..", "target", "wasm32-wasip1", "release", "scopegate.wasm")))
    p.add_argument("--work", default=os.path.join(HERE, ".work"))
    args = p.parse_args()

    envoy_bin = bench.find_envoy()
    meta = tok.ensure(os.path.join(args.work, "tokens"), 1000, workers=1, log=bench.log)
    with open(meta["jwks"]) as f:
        jwks = json.load(f)
    with open(os.path.join(HERE, "envoy", "scopegate-config.json")) as f:
        base = json.load(f)
    base["providers"][0]["jwks"] = {"inline": jwks}
    floor = os.path.join(HERE, "floor", "target", "wasm32-wasip1", "release", "wasm_floor.wasm")
    files = meta["files"][args.alg]
    warm = icount._tokens(files, "steady", args.warmup)
    cfgdir = os.path.join(args.work, "probe")
    os.makedirs(cfgdir, exist_ok=True)

    jobs = []
    for w in args.workloads.split(","):
        for log in args.log.split(","):
            for v in args.variants:
                if v.startswith("scopegate"):
                    extra = json.loads(v[len("scopegate"):] or "{}")
                    wasm, config, expect = args.wasm, json.dumps(dict(base, **extra)), bench.EXPECT[w]["scopegate"]
                else:
                    flags = v[len("contract"):]
                    kind = "contract-deny" if w == "junk" else "contract-allow"
                    wasm, config, expect = floor, kind + flags, bench.EXPECT[w]["contract"]
                name = f"{w}-{log}-{len(jobs)}"
                path = envoy_config(os.path.join(cfgdir, name + ".yaml"), wasm, config, log)
                measured = icount._tokens(files, bench.workload_input(w, "scopegate")[0], args.requests,
                                          bench.MODE[w])
                jobs.append(((w, log, v), path, measured, expect, os.path.join(cfgdir, name)))

    results = {}
    with concurrent.futures.ThreadPoolExecutor(max_workers=args.jobs) as pool:
        futures = {pool.submit(icount.count_one, envoy_bin, path, rundir, measured, warm, expect): key
                   for key, path, measured, expect, rundir in jobs}
        for f in concurrent.futures.as_completed(futures):
            key = futures[f]
            results[key] = f.result()["per_request"]
            bench.log(f"{' '.join(key):60} {results[key]:10,.0f} instructions/request")
    print("| workload | access log | variant | instructions/request |")
    print("|---|---|---|---:|")
    for key, *_ in jobs:
        w, log, v = key
        print(f"| {w} | {log} | `{v}` | {results[key]:,.0f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
