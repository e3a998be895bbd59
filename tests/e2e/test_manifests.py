"""Every Kubernetes manifest in the repository is one the API server accepts.

The repository is scanned (not a list of files): every YAML or JSON document
with a string `apiVersion` and `kind` is a manifest, and must match a
CustomResourceDefinition from the shared vendor folder (Istio's WasmPlugin and
TrafficExtension, Envoy Gateway's EnvoyExtensionPolicy) by group, served
version and kind. A manifest whose kind has no CRD there fails.

Each manifest is checked against the `openAPIV3Schema` of its served version,
converted to a JSON Schema (draft 4, the base of OpenAPI 3.0) and run through
`jsonschema`, which gives, as the API server applies them: types, `required`,
`enum`, `oneOf`/`anyOf`/`allOf`/`not`, `pattern`, `minLength`/`maxLength`,
`minimum`/`maximum`, `minItems`/`maxItems`, `maxProperties`,
`additionalProperties`, plus, by the conversion:

- `nullable: true`: null allowed;
- `x-kubernetes-int-or-string`: an integer or a string;
- `x-kubernetes-preserve-unknown-fields`: any field allowed there;
- everywhere else, an object field the schema does not declare is an error,
  as `kubectl apply` reports it with its default strict field validation
  (without it the server would drop the field silently);
- `x-kubernetes-list-type: set` / `map`: unique items / unique map keys;
- `x-kubernetes-embedded-resource`: apiVersion, kind and metadata allowed.

`metadata` is checked on its own: `name` present and a DNS subdomain,
`namespace` a DNS label (none for cluster-scoped kinds), labels and annotations
string maps, no other ObjectMeta fields than those a manifest may set.

Not checked (the API server does, we cannot without it):
- CEL rules (`x-kubernetes-validations`), e.g. "only one of targetRefs or
  selector", "url must have schema one of [http, https, file, oci]";
- `format` (date-time, int32, ...), defaults, admission webhooks, and whether
  referenced objects (workloads, HTTPRoutes, images) exist.

The image digests: a digest the CRD accepts but that is not the image's (the
all-zero one the WasmPlugin example used to carry) applies cleanly and then
fails closed for everything the filter guards. So every Wasm image reference
in a committed manifest is pinned, and pinned to the placeholder
REPLACE_WITH_MANIFEST_DIGEST written so that the CRD refuses it; once the
digest scripts/oci-image prints replaces it, the manifest validates.

The CRDs are not copied into the repository: set SCOPEGATE_VENDOR_DIR to the
vendor folder (with crds/ in it); by default it is the folder `shared/vendor`
beside the repository's own folder.
"""

from __future__ import annotations

import copy
import json
import os
import pathlib
import re
import subprocess
import sys

import jsonschema
import pytest
import yaml

import harness as h

ROOT = pathlib.Path(h.REPO_ROOT)
VENDOR_ENV = "SCOPEGATE_VENDOR_DIR"
PLACEHOLDER = "REPLACE_WITH_MANIFEST_DIGEST"
OCI_IMAGE = ROOT / "scripts" / "oci-image"

# Directories that hold no manifest of the project's (build output, tools).
SKIP_DIRS = {".git", ".venv", ".tools", "target", "node_modules", "build", "__pycache__", ".pytest_cache"}


# --------------------------------------------------------------------------
# Finding the CRDs and the manifests
# --------------------------------------------------------------------------


def vendor_dir() -> pathlib.Path:
    env = os.environ.get(VENDOR_ENV)
    return pathlib.Path(env) if env else ROOT.parent / "shared" / "vendor"


def load_crds(vendor: pathlib.Path) -> list[dict]:
    crd_dir = vendor / "crds"
    files = sorted(crd_dir.glob("*.yaml")) + sorted(crd_dir.glob("*.yml")) if crd_dir.is_dir() else []
    if not files:
        how = f"{VENDOR_ENV}={os.environ[VENDOR_ENV]}" if os.environ.get(VENDOR_ENV) else f"{VENDOR_ENV} unset"
        pytest.fail(
            f"no CRDs in {crd_dir} ({how}): set {VENDOR_ENV} to the vendor folder that holds "
            "crds/*.yaml (by default the folder shared/vendor beside the repository's folder)",
            pytrace=False,
        )
    crds = []
    for f in files:
        for doc in yaml.safe_load_all(f.read_text(encoding="utf-8")):
            if isinstance(doc, dict) and doc.get("kind") == "CustomResourceDefinition":
                crds.append(doc)
    if not crds:
        pytest.fail(f"{crd_dir} holds no CustomResourceDefinition ({VENDOR_ENV}={vendor})", pytrace=False)
    return crds


def repo_files() -> list[pathlib.Path]:
    """Tracked and untracked-but-not-ignored files (a plain walk without git)."""
    try:
        out = subprocess.run(
            ["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
            cwd=ROOT, capture_output=True, check=True, timeout=60,
        ).stdout.decode()
        names = [n for n in out.split("\0") if n]
        return sorted({ROOT / n for n in names if (ROOT / n).is_file()})
    except (OSError, subprocess.CalledProcessError):
        found = []
        for dirpath, dirnames, filenames in os.walk(ROOT):
            dirnames[:] = [d for d in dirnames if d not in SKIP_DIRS]
            found.extend(pathlib.Path(dirpath) / f for f in filenames)
        return sorted(found)


LOOKS_LIKE_MANIFEST = re.compile(r'^\s*"?apiVersion"?\s*:.*^\s*"?kind"?\s*:|^\s*"?kind"?\s*:.*^\s*"?apiVersion"?\s*:', re.M | re.S)


def is_manifest(doc) -> bool:
    return isinstance(doc, dict) and isinstance(doc.get("apiVersion"), str) and isinstance(doc.get("kind"), str)


def find_manifests() -> list[tuple[str, dict]]:
    """(label, document) for every manifest in the repository."""
    out = []
    for f in repo_files():
        if f.suffix not in (".yaml", ".yml", ".json") or SKIP_DIRS & set(f.relative_to(ROOT).parts):
            continue
        rel = f.relative_to(ROOT).as_posix()
        text = f.read_text(encoding="utf-8")
        try:
            docs = [json.loads(text)] if f.suffix == ".json" else list(yaml.safe_load_all(text))
        except (ValueError, yaml.YAMLError) as e:
            # Templates (e.g. the benchmark's Envoy bootstraps with @VAR@) are
            # not manifests; a file that looks like one must parse.
            if LOOKS_LIKE_MANIFEST.search(text):
                out.append((f"{rel} (unparseable)", {"__error__": str(e)}))
            continue
        manifests = [d for d in docs if is_manifest(d)]
        for i, doc in enumerate(manifests):
            out.append((rel if len(manifests) == 1 else f"{rel}#{i}", doc))
    return out


MANIFESTS = find_manifests()


@pytest.fixture(scope="module")
def crds() -> list[dict]:
    return load_crds(vendor_dir())


# --------------------------------------------------------------------------
# CRD schema -> JSON Schema
# --------------------------------------------------------------------------


def to_json_schema(node: dict, structural: bool = True) -> dict:
    """A Kubernetes structural schema node as a draft-4 JSON Schema.

    `structural` is false inside allOf/anyOf/oneOf/not, whose branches only
    add value checks (required, enum, ...) to the node that holds them: they
    must not turn undeclared fields into errors."""
    out: dict = {}
    for key, value in node.items():
        if key in ("properties", "patternProperties"):
            out[key] = {name: to_json_schema(sub, structural) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "not") and isinstance(value, dict):
            out[key] = to_json_schema(value, structural and key != "not")
        elif key in ("allOf", "anyOf", "oneOf"):
            out[key] = [to_json_schema(sub, False) for sub in value]
        elif key in ("description", "default", "example", "externalDocs", "nullable", "format", "title"):
            # documentation, defaulting (the server fills defaults in; it does
            # not check them against the value) and `format` (not checked)
            continue
        elif key.startswith("x-kubernetes-"):
            continue  # handled below, or CEL (x-kubernetes-validations): not checked
        else:
            out[key] = value
    if node.get("nullable") and "type" in out:
        out["type"] = [out["type"], "null"]
        if "enum" in out:
            out["enum"] = list(out["enum"]) + [None]
    if node.get("x-kubernetes-int-or-string"):
        out.pop("type", None)
        out.setdefault("anyOf", [{"type": "integer"}, {"type": "string"}])
    if node.get("x-kubernetes-embedded-resource"):
        props = out.setdefault("properties", {})
        props.setdefault("apiVersion", {"type": "string"})
        props.setdefault("kind", {"type": "string"})
        props.setdefault("metadata", {"type": "object"})
    list_type = node.get("x-kubernetes-list-type")
    if list_type in ("set", "map"):
        out["x-scopegate-unique"] = node.get("x-kubernetes-list-map-keys") if list_type == "map" else True
    if (
        structural
        and node.get("type") == "object"
        and "additionalProperties" not in node
        and not node.get("x-kubernetes-preserve-unknown-fields")
        and not node.get("x-kubernetes-embedded-resource")
    ):
        out["additionalProperties"] = False
    return out


def _unique(validator, keys, instance, schema):
    """x-kubernetes-list-type: set (keys is True) or map (keys: the map keys)."""
    if not validator.is_type(instance, "array"):
        return
    seen = {}
    for i, item in enumerate(instance):
        if keys is True:
            ident = json.dumps(item, sort_keys=True)
        elif isinstance(item, dict):
            ident = json.dumps([item.get(k) for k in keys])
        else:
            continue
        if ident in seen:
            what = "value" if keys is True else f"key ({', '.join(keys)})"
            yield jsonschema.ValidationError(f"items {seen[ident]} and {i} have the same {what}: {ident}")
        seen[ident] = i


Validator = jsonschema.validators.extend(jsonschema.Draft4Validator, {"x-scopegate-unique": _unique})

OBJECT_META_FIELDS = {"name", "namespace", "labels", "annotations", "finalizers", "ownerReferences"}
DNS_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
DNS_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


def find_crd(crds: list[dict], doc: dict) -> tuple[dict | None, dict | None, str]:
    """(crd, served version, why not) for the manifest's apiVersion and kind."""
    group, _, version = doc["apiVersion"].rpartition("/")
    kind = doc["kind"]
    same_kind = [c for c in crds if c["spec"]["group"] == group and c["spec"]["names"]["kind"] == kind]
    if not same_kind:
        known = sorted(f"{c['spec']['group']}/{c['spec']['names']['kind']}" for c in crds)
        return None, None, f"no CRD for {group or '(core)'}/{kind} (available: {', '.join(known)})"
    crd = same_kind[0]
    for v in crd["spec"]["versions"]:
        if v["name"] == version and v.get("served"):
            return crd, v, ""
    served = [v["name"] for v in crd["spec"]["versions"] if v.get("served")]
    return None, None, f"{crd['metadata']['name']} serves no version {version!r} (served: {served})"


def metadata_errors(meta, namespaced: bool) -> list[tuple[tuple, str]]:
    errs: list[tuple[tuple, str]] = []
    if not isinstance(meta, dict):
        return [(("metadata",), "metadata is required and must be an object")]
    name = meta.get("name")
    if not isinstance(name, str) or not name:
        errs.append((("metadata", "name"), "metadata.name is required"))
    elif len(name) > 253 or not DNS_SUBDOMAIN.match(name):
        errs.append((("metadata", "name"), f"{name!r} is not a DNS subdomain name"))
    if "namespace" in meta:
        ns = meta["namespace"]
        if not namespaced:
            errs.append((("metadata", "namespace"), "cluster-scoped kind: no namespace"))
        elif not isinstance(ns, str) or len(ns) > 63 or not DNS_LABEL.match(ns):
            errs.append((("metadata", "namespace"), f"{ns!r} is not a DNS label"))
    for field in ("labels", "annotations"):
        value = meta.get(field, {})
        if not isinstance(value, dict) or not all(isinstance(k, str) and isinstance(v, str) for k, v in value.items()):
            errs.append((("metadata", field), f"metadata.{field} must map strings to strings"))
    for field in sorted(set(meta) - OBJECT_META_FIELDS):
        errs.append((("metadata", field), f"unknown field metadata.{field}"))
    return errs


def validate(crds: list[dict], doc: dict) -> list[tuple[tuple, str]]:
    """[(path, message)] of what the API server would refuse in `doc`."""
    crd, version, why = find_crd(crds, doc)
    if crd is None:
        return [((), why)]
    schema = to_json_schema(version["schema"]["openAPIV3Schema"])
    # apiVersion, kind and metadata are the server's (metadata checked below).
    props = schema.setdefault("properties", {})
    props["apiVersion"] = {"type": "string"}
    props["kind"] = {"type": "string"}
    props["metadata"] = {"type": "object"}
    errs = [
        (tuple(e.absolute_path), f"{'.'.join(str(p) for p in e.absolute_path) or '(root)'}: {e.message}")
        for e in Validator(schema).iter_errors(doc)
    ]
    return errs + metadata_errors(doc.get("metadata"), crd["spec"]["scope"] == "Namespaced")


# --------------------------------------------------------------------------
# Placeholders and image digests
# --------------------------------------------------------------------------


def placeholder_paths(node, path=()) -> list[tuple]:
    """Where the digest placeholder stands (as a string, or as [string])."""
    if node == PLACEHOLDER or node == [PLACEHOLDER]:
        return [path]
    if isinstance(node, dict):
        return [p for k, v in node.items() for p in placeholder_paths(v, path + (k,))]
    if isinstance(node, list):
        return [p for i, v in enumerate(node) for p in placeholder_paths(v, path + (i,))]
    return []


def fill_placeholders(doc: dict, digest: str) -> dict:
    doc = copy.deepcopy(doc)
    for path in placeholder_paths(doc):
        parent = doc
        for p in path[:-1]:
            parent = parent[p]
        parent[path[-1]] = digest
    return doc


def wasm_code_sources(doc: dict) -> list[tuple[str, dict]]:
    """(where, node holding url and sha256) for each Wasm module the manifest loads."""
    spec = doc.get("spec") or {}
    kind = doc["kind"]
    if kind == "WasmPlugin":
        return [("spec", spec)]
    if kind == "TrafficExtension":
        return [("spec.wasm", spec["wasm"])] if "wasm" in spec else []
    if kind == "EnvoyExtensionPolicy":
        out = []
        for i, w in enumerate(spec.get("wasm") or []):
            code = w.get("code") or {}
            for src in ("image", "http"):
                if src in code:
                    out.append((f"spec.wasm[{i}].code.{src}", code[src]))
        return out
    raise AssertionError(f"{kind}: teach wasm_code_sources() where this kind names its Wasm module")


def digest_problems(doc: dict) -> list[str]:
    """Why the manifest's image digests are not the committed placeholder.

    Anything else that the CRD accepts (a wrong digest, "" or none, which
    turn the check off) would apply cleanly and fail closed, or run an
    unverified module."""
    problems = []
    for where, src in wasm_code_sources(doc):
        url = str(src.get("url", ""))
        in_url = url.partition("@sha256:")[2] or None
        value = src.get("sha256", in_url)
        if value is None or value == "":
            problems.append(f"{where}: the module is not pinned (no sha256, no @sha256: in the url)")
        elif value not in (PLACEHOLDER, [PLACEHOLDER]):
            problems.append(
                f"{where}: sha256 {value!r} is not the placeholder {PLACEHOLDER}; a digest the CRD accepts "
                "but that is not the image's applies cleanly and then fails closed"
            )
    return problems


@pytest.fixture(scope="module")
def printed_digest(tmp_path_factory) -> str:
    """The digest scripts/oci-image prints for a module (a minimal one: any
    .wasm gives a well-formed digest), as README tells the user to paste it."""
    d = tmp_path_factory.mktemp("oci")
    wasm = d / "tiny.wasm"
    wasm.write_bytes(b"\0asm\x01\0\0\0")
    r = subprocess.run(
        [sys.executable, str(OCI_IMAGE), str(wasm), str(d / "layout"), "0.1.0"],
        capture_output=True, text=True, timeout=60,
    )
    assert r.returncode == 0, r.stdout + r.stderr
    m = re.search(r"^\s*sha256: ([0-9a-f]{64})$", r.stdout, re.M)
    assert m, r.stdout
    return m.group(1)


# --------------------------------------------------------------------------
# The repository's manifests
# --------------------------------------------------------------------------


def test_the_scan_finds_the_examples():
    kinds = {(doc.get("apiVersion"), doc.get("kind")) for _, doc in MANIFESTS}
    assert {
        ("extensions.istio.io/v1alpha1", "WasmPlugin"),
        ("extensions.istio.io/v1alpha1", "TrafficExtension"),
        ("gateway.envoyproxy.io/v1alpha1", "EnvoyExtensionPolicy"),
    } <= kinds, sorted(label for label, _ in MANIFESTS)


@pytest.mark.parametrize("label", [label for label, _ in MANIFESTS])
def test_manifest_matches_its_crd(label, crds, printed_digest):
    doc = dict(MANIFESTS)[label]
    assert "__error__" not in doc, f"{label}: {doc.get('__error__')}"
    errors = validate(crds, doc)
    holes = placeholder_paths(doc)
    # As committed: refused exactly where the digest placeholder stands...
    unexpected = [msg for path, msg in errors if path not in holes]
    assert not unexpected, f"{label} would be refused:\n" + "\n".join(unexpected)
    refused = {path for path, _ in errors}
    accepted = [".".join(map(str, p)) for p in holes if p not in refused]
    assert not accepted, f"{label}: the CRD accepts the placeholder at {accepted}; it must refuse it"
    # ...and accepted once the digest scripts/oci-image prints is in.
    filled = validate(crds, fill_placeholders(doc, printed_digest))
    assert not filled, f"{label} with the digest filled in:\n" + "\n".join(m for _, m in filled)


@pytest.mark.parametrize("label", [label for label, doc in MANIFESTS if "__error__" not in doc])
def test_wasm_modules_are_pinned_to_the_placeholder(label, crds):
    doc = dict(MANIFESTS)[label]
    assert find_crd(crds, doc)[0] is not None  # (reported by the test above)
    problems = digest_problems(doc)
    assert not problems, f"{label}:\n" + "\n".join(problems)
    assert wasm_code_sources(doc), f"{label} loads no Wasm module?"


# --------------------------------------------------------------------------
# The checks catch what they should
# --------------------------------------------------------------------------


def example(name: str) -> dict:
    docs = [doc for label, doc in MANIFESTS if doc.get("kind") == name]
    assert docs, f"no {name} example found"
    return copy.deepcopy(docs[0])


def test_a_wrong_digest_passes_the_crd_but_not_the_digest_check(crds):
    """Why the placeholder: the CRD alone cannot tell a wrong digest."""
    for kind, where in (
        ("WasmPlugin", ("spec",)),
        ("TrafficExtension", ("spec", "wasm")),
        ("EnvoyExtensionPolicy", ("spec", "wasm", 0, "code", "image")),
    ):
        for wrong in ("0" * 64, ""):
            doc = example(kind)
            node = doc
            for p in where:
                node = node[p]
            node["sha256"] = wrong
            assert validate(crds, doc) == [], f"{kind}: the CRD accepts sha256={wrong!r}"
            assert digest_problems(doc), f"{kind}: sha256={wrong!r} must not be committed"
        doc = example(kind)
        node = doc
        for p in where:
            node = node[p]
        del node["sha256"]
        assert validate(crds, doc) == [] and digest_problems(doc), kind
    # The same for a digest in the URL, as Envoy Gateway and Istio also take it.
    doc = example("EnvoyExtensionPolicy")
    image = doc["spec"]["wasm"][0]["code"]["image"]
    del image["sha256"]
    image["url"] = "registry.example.com/scopegate@sha256:" + "0" * 64
    assert validate(crds, doc) == [] and digest_problems(doc)


def _set(doc, path, value):
    """Sets doc[path] = value, creating missing objects on the way."""
    node = doc
    for p in path[:-1]:
        node = node.setdefault(p, {}) if isinstance(node, dict) else node[p]
    if value is _DELETE:
        del node[path[-1]]
    else:
        node[path[-1]] = value


_DELETE = object()

BROKEN = [
    # (id, kind, path, value, expected error path, expected message fragment or
    # None when the change must be accepted)
    ("wrong-enum", "WasmPlugin", ("spec", "phase"), "AUTHENTICATION", ("spec", "phase"), "is not one of"),
    ("missing-required", "WasmPlugin", ("spec", "url"), _DELETE, ("spec",), "'url' is a required property"),
    ("unknown-field", "WasmPlugin", ("spec", "pluginUrl"), "oci://x/y:1", ("spec",), "'pluginUrl' was unexpected"),
    ("wrong-enum-in-list-item", "WasmPlugin", ("spec", "vmConfig", "env"), [{"name": "A", "valueFrom": "ENV"}], ("spec", "vmConfig", "env", 0, "valueFrom"), "is not one of"),
    ("duplicate-list-map-key", "WasmPlugin", ("spec", "vmConfig", "env"), [{"name": "A", "value": "1"}, {"name": "A"}], ("spec", "vmConfig", "env"), "same key"),
    ("pattern", "WasmPlugin", ("spec", "sha256"), "ABC", ("spec", "sha256"), "does not match"),
    ("wrong-type", "WasmPlugin", ("spec", "priority"), "high", ("spec", "priority"), "is not of type"),
    ("nullable-accepts-null", "WasmPlugin", ("spec", "priority"), None, None, None),  # nullable
    ("preserve-unknown-fields-accepts-anything", "WasmPlugin", ("spec", "pluginConfig", "anything"), {"goes": ["here"]}, None, None),  # preserve-unknown-fields
    ("below-minimum", "WasmPlugin", ("spec", "match"), [{"ports": [{"number": 0}]}], ("spec", "match", 0, "ports", 0, "number"), "less than the minimum"),
    ("int-or-string-accepts-string", "WasmPlugin", ("status",), {"observedGeneration": "3"}, None, None),  # int-or-string
    ("int-or-string-refuses-float", "WasmPlugin", ("status",), {"observedGeneration": 2.5}, ("status", "observedGeneration"), "is not valid under any"),
    ("min-length", "WasmPlugin", ("spec", "pluginName"), "", ("spec", "pluginName"), "should be non-empty"),
    ("te-wrong-enum", "TrafficExtension", ("spec", "wasm", "failStrategy"), "FAIL_SLOWLY", ("spec", "wasm", "failStrategy"), "is not one of"),
    ("te-missing-required", "TrafficExtension", ("spec", "wasm", "url"), _DELETE, ("spec", "wasm"), "'url' is a required property"),
    ("te-unknown-field", "TrafficExtension", ("spec", "wasm", "pluginConfg"), {}, ("spec", "wasm"), "'pluginConfg' was unexpected"),
    ("te-wasmplugin-field-at-top", "TrafficExtension", ("spec", "pluginConfig"), {}, ("spec",), "'pluginConfig' was unexpected"),  # WasmPlugin's place
    ("te-oneOf-wasm-and-lua", "TrafficExtension", ("spec", "lua"), {"inlineCode": "x"}, ("spec",), "is valid under each of"),  # oneOf
    ("eep-wrong-enum", "EnvoyExtensionPolicy", ("spec", "wasm", 0, "code", "type"), "OCI", ("spec", "wasm", 0, "code", "type"), "is not one of"),
    ("eep-missing-required", "EnvoyExtensionPolicy", ("spec", "wasm", 0, "code", "type"), _DELETE, ("spec", "wasm", 0, "code"), "'type' is a required property"),
    ("eep-unknown-field", "EnvoyExtensionPolicy", ("spec", "wasm", 0, "code", "image", "digest"), "x", ("spec", "wasm", 0, "code", "image"), "'digest' was unexpected"),
    ("eep-wrong-type", "EnvoyExtensionPolicy", ("spec", "wasm", 0, "failOpen"), "no", ("spec", "wasm", 0, "failOpen"), "is not of type"),
    ("eep-missing-required-in-list-item", "EnvoyExtensionPolicy", ("spec", "targetRefs", 0, "group"), _DELETE, ("spec", "targetRefs", 0), "'group' is a required property"),
    ("eep-max-items", "EnvoyExtensionPolicy", ("spec", "wasm"), [{"code": {"type": "HTTP"}}] * 17, ("spec", "wasm"), "is too long"),
    ("metadata-name-missing", "EnvoyExtensionPolicy", ("metadata", "name"), _DELETE, ("metadata", "name"), "metadata.name is required"),
    ("metadata-name-invalid", "EnvoyExtensionPolicy", ("metadata", "name"), "Scope_Gate", ("metadata", "name"), "DNS subdomain"),
    ("metadata-labels-not-strings", "EnvoyExtensionPolicy", ("metadata", "labels"), {"app": 1}, ("metadata", "labels"), "strings to strings"),
    ("metadata-unknown-field", "EnvoyExtensionPolicy", ("metadata", "nmespace"), "payments", ("metadata", "nmespace"), "unknown field"),
    ("version-not-served", "EnvoyExtensionPolicy", ("apiVersion",), "gateway.envoyproxy.io/v1", (), "serves no version 'v1'"),
    ("kind-without-crd", "EnvoyExtensionPolicy", ("kind",), "EnvoyPatchPolicy", (), "no CRD for gateway.envoyproxy.io/EnvoyPatchPolicy"),
]


@pytest.mark.parametrize("kind,path,value,err_path,fragment", [b[1:] for b in BROKEN], ids=[b[0] for b in BROKEN])
def test_the_validator_catches(crds, printed_digest, kind, path, value, err_path, fragment):
    """Each change to a valid example is refused (or, fragment None, accepted)."""
    doc = fill_placeholders(example(kind), printed_digest)
    assert validate(crds, doc) == []
    _set(doc, path, value)
    errors = validate(crds, doc)
    if fragment is None:
        assert errors == [], errors
        return
    assert errors, f"{kind}: {'.'.join(map(str, path))} = {value!r} was accepted"
    assert any(p == err_path and fragment in msg for p, msg in errors), errors


def test_a_deployment_has_no_crd_here(crds):
    doc = {"apiVersion": "apps/v1", "kind": "Deployment", "metadata": {"name": "x"}, "spec": {}}
    ((path, msg),) = validate(crds, doc)
    assert path == () and "no CRD for apps/Deployment" in msg, msg


def test_a_missing_vendor_folder_fails_naming_the_variable(tmp_path):
    with pytest.raises(pytest.fail.Exception, match=VENDOR_ENV):
        load_crds(tmp_path / "nowhere")
