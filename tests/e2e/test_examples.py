"""Every example configuration in the repository is valid, and means what its
comments say it means.

Each Scopegate configuration found in an example (Envoy, ECDS, Kong declarative
files and Admin API bodies, the Istio WasmPlugin) is checked twice: against the
JSON Schema (draft-04, what Kong validates pushes with) and by `scopegate
check-config` (every check the filter makes, cross-references included). The
Envoy bootstraps go through `envoy --mode validate`. No Kong or Kubernetes runs
here: for those hosts these checks are the test.
"""

from __future__ import annotations

import json
import os
import re
import subprocess

import jsonschema
import pytest

import harness as h

ROOT = h.REPO_ROOT
SCHEMA_PATH = os.path.join(ROOT, "config-schema", "scopegate.schema.json")
CLI = os.environ.get("SCOPEGATE_CLI") or os.path.join(ROOT, "target", "debug", "scopegate")


def path(*parts: str) -> str:
    return os.path.join(ROOT, *parts)


def read(*parts: str) -> str:
    with open(path(*parts), encoding="utf-8") as f:
        return f.read()


@pytest.fixture(scope="module")
def schema() -> dict:
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        s = json.load(f)
    jsonschema.Draft4Validator.check_schema(s)
    return s


@pytest.fixture(scope="module")
def cli() -> str:
    if not os.path.exists(CLI):
        subprocess.run(["cargo", "build", "-q", "-p", "scopegate-cli"], cwd=ROOT, check=True)
    return CLI


def check_config(cli: str, tmp_path, name: str, text: str) -> subprocess.CompletedProcess:
    f = tmp_path / name
    f.write_text(text, encoding="utf-8")
    return subprocess.run([cli, "check-config", str(f)], capture_output=True, text=True, timeout=60)


def schema_errors(schema: dict, config) -> list[str]:
    v = jsonschema.Draft4Validator(schema)
    return [f"/{'/'.join(str(p) for p in e.absolute_path)}: {e.message}" for e in v.iter_errors(config)]


def yaml_subtree(text: str, key: str, occurrence: int = 0) -> str:
    """The raw YAML text of the block under `key:` (its `occurrence`-th
    appearance), dedented: what a user would copy out of the file."""
    lines = text.splitlines()
    hits = [i for i, l in enumerate(lines) if re.match(rf"^\s*(- )?{re.escape(key)}:\s*$", l)]
    start = hits[occurrence]
    key_col = lines[start].index(key)
    body = []
    for line in lines[start + 1 :]:
        if line.strip() and len(line) - len(line.lstrip()) <= key_col:
            break
        body.append(line)
    width = min(len(l) - len(l.lstrip()) for l in body if l.strip())
    return "\n".join(l[width:] for l in body) + "\n"


# --------------------------------------------------------------------------
# The configurations, as the gateway would receive them
# --------------------------------------------------------------------------


def envoy_value(doc: dict) -> str:
    """The Scopegate JSON text inside an Envoy Wasm filter's typed_config."""
    cfg = doc["config"]["configuration"]
    assert cfg["@type"] == "type.googleapis.com/google.protobuf.StringValue"
    return cfg["value"]


def envoy_yaml_config(*where: str) -> tuple[dict, str]:
    boot = h.load_yaml_file(path("envoy-example", *(where or ("envoy.yaml",))))
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    wasm = [f for f in hcm["http_filters"] if f["name"] == "scopegate"][0]["typed_config"]
    text = envoy_value(wasm)
    return json.loads(text), text


def global_ratelimit_config() -> tuple[dict, str]:
    return envoy_yaml_config("global-ratelimit", "envoy.yaml")


def ecds_resource() -> dict:
    doc = h.load_yaml_file(path("envoy-example", "ecds", "config", "scopegate.yaml"))
    (res,) = doc["resources"]
    assert res["@type"] == "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig"
    return res


def ecds_config() -> tuple[dict, str]:
    text = envoy_value(ecds_resource()["typed_config"])
    return json.loads(text), text


def kong_filter_chain_config() -> tuple[dict, str]:
    text = read("kong-example", "kong.yml")
    doc = h.load_yaml_subset(text)
    (svc,) = doc["services"]
    (chain,) = svc["filter_chains"]
    (flt,) = chain["filters"]
    assert flt["name"] == "scopegate"
    return flt["config"], yaml_subtree(text, "config")


def kong_plugin_config() -> tuple[dict, str]:
    text = read("kong-example", "kong-plugins.yml")
    doc = h.load_yaml_subset(text)
    (svc,) = doc["services"]
    (plugin,) = svc["plugins"]
    assert plugin["name"] == "scopegate"
    return plugin["config"], yaml_subtree(text, "config")


def admin_filter_chain_config() -> tuple[dict, str]:
    body = json.loads(read("kong-example", "admin-api", "filter-chain.json"))
    (flt,) = body["filters"]
    assert flt["name"] == "scopegate"
    return flt["config"], json.dumps(flt["config"])


def admin_plugin_config() -> tuple[dict, str]:
    body = json.loads(read("kong-example", "admin-api", "plugin.json"))
    assert body["name"] == "scopegate"
    return body["config"], json.dumps(body["config"])


def istio_config() -> tuple[dict, str]:
    text = read("envoy-example", "istio", "wasmplugin.yaml")
    doc = h.load_yaml_subset(text)
    return doc["spec"]["pluginConfig"], yaml_subtree(text, "pluginConfig")


def traffic_extension_config() -> tuple[dict, str]:
    text = read("envoy-example", "istio", "trafficextension.yaml")
    doc = h.load_yaml_subset(text)
    return doc["spec"]["wasm"]["pluginConfig"], yaml_subtree(text, "pluginConfig")


def envoy_gateway_config() -> tuple[dict, str]:
    text = read("envoy-example", "envoy-gateway", "envoyextensionpolicy.yaml")
    doc = h.load_yaml_subset(text)
    (wasm,) = doc["spec"]["wasm"]
    return wasm["config"], yaml_subtree(text, "config")


def scopegate_json() -> tuple[dict, str]:
    text = read("envoy-example", "scopegate.json")
    return json.loads(text), text


EXAMPLES = {
    "envoy-example/scopegate.json": (scopegate_json, "json"),
    "envoy-example/envoy.yaml (configuration)": (envoy_yaml_config, "json"),
    "envoy-example/global-ratelimit/envoy.yaml (configuration)": (global_ratelimit_config, "json"),
    "envoy-example/ecds/config/scopegate.yaml (configuration)": (ecds_config, "json"),
    "kong-example/kong.yml (filter chain config)": (kong_filter_chain_config, "yaml"),
    "kong-example/kong-plugins.yml (plugin config)": (kong_plugin_config, "yaml"),
    "kong-example/admin-api/filter-chain.json (config)": (admin_filter_chain_config, "json"),
    "kong-example/admin-api/plugin.json (config)": (admin_plugin_config, "json"),
    "envoy-example/istio/wasmplugin.yaml (pluginConfig)": (istio_config, "yaml"),
    "envoy-example/istio/trafficextension.yaml (wasm.pluginConfig)": (traffic_extension_config, "yaml"),
    "envoy-example/envoy-gateway/envoyextensionpolicy.yaml (config)": (envoy_gateway_config, "yaml"),
}


@pytest.mark.parametrize("label", list(EXAMPLES))
def test_example_config_is_valid(label, schema, cli, tmp_path):
    load, raw_kind = EXAMPLES[label]
    config, raw = load()
    assert isinstance(config, dict), label
    errors = schema_errors(schema, config)
    assert not errors, f"{label} violates the schema:\n" + "\n".join(errors)
    # As JSON, the way the gateway hands it to the filter...
    r = check_config(cli, tmp_path, "config.json", json.dumps(config))
    assert (r.returncode, r.stdout.strip()) == (0, "ok"), f"{label}: {r.stdout}{r.stderr}"
    # ...and as written in the file (a real YAML parser for the YAML ones).
    r = check_config(cli, tmp_path, f"raw.{raw_kind}", raw)
    assert (r.returncode, r.stdout.strip()) == (0, "ok"), f"{label} (as written): {r.stdout}{r.stderr}"


def test_the_checks_catch_a_broken_configuration(schema, cli, tmp_path):
    config, _ = scopegate_json()
    config["rules"][1]["scopes"] = "payments:read"
    errors = schema_errors(schema, config)
    # (the schema reports it at /rules, whose list-or-{} alternatives both fail)
    assert errors and all(e.startswith("/rules") for e in errors), errors
    r = check_config(cli, tmp_path, "broken.json", json.dumps(config))
    assert r.returncode == 1
    assert "/rules/1/scopes: expected an array of strings" in r.stdout


def test_kong_cjson_empty_rules_object_is_accepted(schema, cli, tmp_path):
    """Kong's cjson encodes an empty list as {}: the filter reads it as []."""
    config, _ = kong_plugin_config()
    config["rules"] = {}
    config["default_action"] = "authenticate"
    assert not schema_errors(schema, config)
    r = check_config(cli, tmp_path, "cjson.json", json.dumps(config))
    assert (r.returncode, r.stdout.strip()) == (0, "ok"), r.stdout + r.stderr


def test_copies_of_the_example_configuration_agree():
    """The comments say these are the same document; keep them so."""
    base, _ = scopegate_json()
    assert envoy_yaml_config()[0] == base
    assert global_ratelimit_config()[0] == base
    assert ecds_config()[0] == base
    assert istio_config()[0] == base
    assert traffic_extension_config()[0] == base
    assert envoy_gateway_config()[0] == base
    kong = kong_filter_chain_config()[0]
    assert kong_plugin_config()[0] == kong
    assert admin_filter_chain_config()[0] == kong
    assert admin_plugin_config()[0] == kong
    # Kong's differs from the Envoy one only in how the partner's keys arrive.
    partner = [p for p in kong["providers"] if p["name"] == "partner"][0]
    assert re.fullmatch(r"[a-z0-9.-]+:[0-9]+", partner["jwks"]["cluster"]), "Kong needs host:port"
    same = json.loads(json.dumps(kong))
    [p for p in same["providers"] if p["name"] == "partner"][0]["jwks"] = [
        p for p in base["providers"] if p["name"] == "partner"
    ][0]["jwks"]
    assert same == base


# --------------------------------------------------------------------------
# Kong
# --------------------------------------------------------------------------


def test_kong_meta_json_carries_the_schema(schema):
    meta = json.loads(read("kong-example", "scopegate.meta.json"))
    assert set(meta) <= {"config_schema", "metrics"}
    assert meta["config_schema"] == schema
    r = subprocess.run([path("scripts", "kong-meta"), "--check"], capture_output=True, text=True, timeout=60)
    assert r.returncode == 0, r.stdout + r.stderr


def test_kong_declarative_files():
    for name, attach in (("kong.yml", "filter_chains"), ("kong-plugins.yml", "plugins")):
        doc = h.load_yaml_file(path("kong-example", name))
        assert doc["_format_version"] == "3.0", name
        (svc,) = doc["services"]
        assert svc["name"] == "payments" and svc["url"].startswith("http"), name
        (route,) = svc["routes"]
        assert route["strip_path"] is False, f"{name}: the upstream must see the authorized path"
        assert attach in svc, name
        other = {"filter_chains", "plugins"} - {attach}
        assert not other & set(svc), f"{name} attaches Scopegate twice"
    # The filter's name is the .wasm's file name in wasm_filters_path.
    conf = read("kong-example", "kong.conf")
    settings = dict(
        (k.strip(), v.strip())
        for k, _, v in (l.partition("=") for l in conf.splitlines() if l.strip() and not l.startswith("#"))
    )
    assert settings["wasm"] == "on"
    assert settings["wasm_filters_path"].startswith("/")
    assert settings["database"] == "off"


def test_kong_admin_api_script_uses_the_bodies():
    script = read("kong-example", "admin-api.sh")
    assert "--data @admin-api/filter-chain.json" in script
    assert "--data @admin-api/plugin.json" in script
    r = subprocess.run(["bash", "-n", path("kong-example", "admin-api.sh")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    chain = json.loads(read("kong-example", "admin-api", "filter-chain.json"))
    assert chain["name"] == "scopegate" and [f["name"] for f in chain["filters"]] == ["scopegate"]
    plugin = json.loads(read("kong-example", "admin-api", "plugin.json"))
    assert set(plugin) == {"name", "config"}


# --------------------------------------------------------------------------
# Istio
# --------------------------------------------------------------------------


def test_istio_wasmplugin_manifest():
    doc = h.load_yaml_file(path("envoy-example", "istio", "wasmplugin.yaml"))
    assert doc["apiVersion"] == "extensions.istio.io/v1alpha1"
    assert doc["kind"] == "WasmPlugin"
    spec = doc["spec"]
    assert spec["phase"] == "AUTHN"
    assert spec["selector"]["matchLabels"], "a selector limits the plugin to its workloads"
    assert spec["url"].startswith("oci://")
    # a placeholder the CRD refuses (test_manifests.py), not a digest that applies and is wrong
    assert spec["sha256"] == "REPLACE_WITH_MANIFEST_DIGEST"
    # Scopegate recognizes Envoy by itself (test_host_detection.py): no
    # variable to forget.
    assert "SCOPEGATE_HOST" not in json.dumps(spec)
    assert isinstance(spec["pluginConfig"], dict)


# --------------------------------------------------------------------------
# Envoy
# --------------------------------------------------------------------------


@pytest.mark.parametrize("bootstrap", ["envoy-example/envoy.yaml", "envoy-example/ecds/envoy.yaml",
                                       "envoy-example/global-ratelimit/envoy.yaml"])
def test_envoy_validates_the_bootstrap(bootstrap, prerequisites):
    r = subprocess.run(
        [h.find_envoy(), "--mode", "validate", "-c", bootstrap, "-l", "warning"],
        cwd=ROOT,  # the examples name the .wasm relative to the repository root
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert f"configuration '{bootstrap}' OK" in r.stdout + r.stderr


def test_ecds_example_wiring():
    """The http filter asks discovery for the resource the file provides."""
    boot = h.load_yaml_file(path("envoy-example", "ecds", "envoy.yaml"))
    assert boot["node"]["id"] and boot["node"]["cluster"], "ECDS needs a node id and cluster"
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    names = [f["name"] for f in hcm["http_filters"]]
    assert names[-1] == "envoy.filters.http.router"
    flt = hcm["http_filters"][names.index("scopegate")]
    disc = flt["config_discovery"]
    assert disc["type_urls"] == ["type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"]
    src = disc["config_source"]["path_config_source"]
    assert src["path"] == "envoy-example/ecds/config/scopegate.yaml"
    assert os.path.dirname(src["path"]) == src["watched_directory"]["path"]
    res = ecds_resource()
    assert res["name"] == flt["name"]
    wasm = res["typed_config"]
    assert wasm["@type"] == "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"


def test_global_ratelimit_example_wiring():
    """Envoy's ratelimit filter runs after Scopegate and before the router; the
    route's descriptor is built from the identity headers the Scopegate
    configuration sets (and so strips from callers); the domain is the rate
    limit service's, whose configuration keys on the same descriptor entries.
    (tests/e2e/test_rate_limits.py runs the example; the service is not run.)"""
    boot = h.load_yaml_file(path("envoy-example", "global-ratelimit", "envoy.yaml"))
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    names = [f["name"] for f in hcm["http_filters"]]
    assert names == ["scopegate", "envoy.filters.http.ratelimit", "envoy.filters.http.router"], names
    rl = hcm["http_filters"][1]["typed_config"]
    assert rl["@type"] == "type.googleapis.com/envoy.extensions.filters.http.ratelimit.v3.RateLimit"
    assert rl["failure_mode_deny"] is False
    cluster = rl["rate_limit_service"]["grpc_service"]["envoy_grpc"]["cluster_name"]
    assert rl["rate_limit_service"]["transport_api_version"] == "V3"
    (c,) = [c for c in boot["static_resources"]["clusters"] if c["name"] == cluster]
    assert "http2_protocol_options" in json.dumps(c), "gRPC needs HTTP/2 to the service"
    config, _ = global_ratelimit_config()
    ids = config["identity_headers"]
    (route,) = hcm["route_config"]["virtual_hosts"][0]["routes"]
    (limit,) = route["route"]["rate_limits"]
    used = [(a["request_headers"]["header_name"], a["request_headers"]["descriptor_key"]) for a in limit["actions"]]
    assert used == [(ids["issuer"], "issuer"), (ids["client_id"], "client_id")], used
    service = h.load_yaml_file(path("envoy-example", "global-ratelimit", "ratelimit", "config", "scopegate.yaml"))
    assert service["domain"] == rl["domain"]
    for top in service["descriptors"]:
        assert top["key"] == "issuer" and "rate_limit" not in top, top
        assert {d["key"] for d in top["descriptors"]} == {"client_id"}, top
        assert any("value" not in d for d in top["descriptors"]), f"every issuer entry needs a default: {top}"
        for d in top["descriptors"]:
            assert d["rate_limit"]["unit"] in ("second", "minute", "hour", "day"), d
            assert int(d["rate_limit"]["requests_per_unit"]) > 0, d
