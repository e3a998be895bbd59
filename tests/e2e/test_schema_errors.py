"""A typo in a configuration is reported where it is.

Kong validates every pushed filter configuration with the JSON Schema in
config-schema/scopegate.schema.json (draft-04, through scopegate.meta.json)
and answers a bad one with a 400 carrying the validator's message. A fault
inside an `anyOf`/`oneOf` alternative loses its place: Kong's validator
(lua-resty-ljsonschema) then says "value should match only one schema, but
matches none" or lists every alternative's complaint, and a draft-04 validator
reports the failed alternative at the enclosing member instead of the faulty
one. So the schema keeps member constraints out of alternatives (lists-or-{}
via `"type": ["array", "object"]`, exclusive members via `dependencies`), and
these tests hold it to that with a draft-04 validator (Python `jsonschema`'s
Draft4Validator). No Envoy or Kong runs here.
"""

from __future__ import annotations

import copy
import glob
import json
import os

import jsonschema
import pytest
from jsonschema.exceptions import best_match

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), "..", ".."))
SCHEMA_PATH = os.path.join(ROOT, "config-schema", "scopegate.schema.json")
FIXTURES = os.path.join(ROOT, "config-schema", "fixtures")
ALTERNATIVES = {"anyOf", "oneOf"}


@pytest.fixture(scope="module")
def schema() -> dict:
    with open(SCHEMA_PATH, encoding="utf-8") as f:
        s = json.load(f)
    jsonschema.Draft4Validator.check_schema(s)
    return s


@pytest.fixture(scope="module")
def validator(schema) -> jsonschema.Draft4Validator:
    return jsonschema.Draft4Validator(schema)


PROVIDER = {
    "name": "corp",
    "issuer": "https://idp.example.com",
    "jwks": {"uri": "https://idp.example.com/jwks", "cluster": "idp"},
}
ED25519 = {"kty": "OKP", "crv": "Ed25519", "x": "11qYAYKxCrfVS_7TyWQHOg7hcvPapiMlrwIaaPcHURo"}


def base() -> dict:
    """A valid configuration using every member that has alternatives."""
    return {
        "providers": [copy.deepcopy(PROVIDER)],
        "token_sources": [{"header": "authorization", "prefix": "Bearer "}, {"query": "access_token"}],
        "rules": [
            {"name": "health", "path": "/healthz", "public": True},
            {"name": "read", "path": "/orders/**", "methods": ["GET"], "scopes": ["orders:read"]},
        ],
    }


def with_change(change) -> dict:
    doc = base()
    change(doc)
    return doc


def _set(path, value):
    def change(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        node[path[-1]] = value

    return change


def _del(path):
    def change(doc):
        node = doc
        for key in path[:-1]:
            node = node[key]
        del node[path[-1]]

    return change


def _both(*changes):
    def change(doc):
        for c in changes:
            c(doc)

    return change


# (label, change, path of the error, validator, words its message must name)
TYPOS = [
    ("rule unknown member", _both(_del(["rules", 1, "scopes"]), _set(["rules", 1, "scops"], ["orders:read"])),
     ["rules", 1], "additionalProperties", ["scops"]),
    ("rule member of the wrong type", _set(["rules", 1, "methods"], "GET"),
     ["rules", 1, "methods"], "type", ["array"]),
    ("rule scope list as a string", _set(["rules", 1, "scopes"], "orders:read"),
     ["rules", 1, "scopes"], "type", ["array"]),
    ("rule public not a boolean", _set(["rules", 0, "public"], "yes"),
     ["rules", 0, "public"], "type", ["boolean"]),
    ("rule bad path", _set(["rules", 1, "path"], "orders"),
     ["rules", 1, "path"], "pattern", ["orders"]),
    ("rule without path", _del(["rules", 1, "path"]),
     ["rules", 1], "required", ["path"]),
    ("public rule with scopes", _set(["rules", 0, "scopes"], ["x"]),
     ["rules", 0, "public"], "enum", ["False"]),
    ("public rule with clients", _set(["rules", 0, "clients"], ["c"]),
     ["rules", 0, "public"], "enum", ["False"]),
    ("rules as a non-empty object", _set(["rules"], {"name": "r", "path": "/"}),
     ["rules"], "maxProperties", []),
    ("rules as a string", _set(["rules"], "none"),
     ["rules"], "type", ["array", "object"]),
    ("jwks unknown member", _set(["providers", 0, "jwks", "refresh_intervl_s"], 60),
     ["providers", 0, "jwks"], "additionalProperties", ["refresh_intervl_s"]),
    ("jwks member of the wrong type", _set(["providers", 0, "jwks", "timeout_ms"], "1500"),
     ["providers", 0, "jwks", "timeout_ms"], "type", ["integer"]),
    ("jwks member out of range", _set(["providers", 0, "jwks", "refresh_interval_s"], 5),
     ["providers", 0, "jwks", "refresh_interval_s"], "minimum", ["10"]),
    ("jwks uri not http", _set(["providers", 0, "jwks", "uri"], "ftp://idp/jwks"),
     ["providers", 0, "jwks", "uri"], "pattern", ["ftp"]),
    ("jwks inline with cluster", _set(["providers", 0, "jwks"], {"inline": {"keys": [ED25519]}, "cluster": "idp"}),
     ["providers", 0, "jwks", "cluster"], "not", ["idp"]),
    ("jwks inline and uri", _set(["providers", 0, "jwks"], {"inline": {"keys": [ED25519]}, "uri": "https://idp.example.com/jwks"}),
     ["providers", 0, "jwks", "uri"], "not", ["https://idp.example.com/jwks"]),
    ("jwks inline keys not a list", _set(["providers", 0, "jwks"], {"inline": {"keys": ED25519}}),
     ["providers", 0, "jwks", "inline", "keys"], "type", ["array"]),
    ("jwks inline without keys", _set(["providers", 0, "jwks"], {"inline": {"key": [ED25519]}}),
     ["providers", 0, "jwks", "inline"], "required", ["keys"]),
    ("jwks inline empty text", _set(["providers", 0, "jwks"], {"inline": ""}),
     ["providers", 0, "jwks", "inline"], "minLength", []),
    ("jwks inline a number", _set(["providers", 0, "jwks"], {"inline": 1}),
     ["providers", 0, "jwks", "inline"], "type", ["object", "string"]),
    ("token source unknown member", _set(["token_sources", 1], {"querry": "access_token"}),
     ["token_sources", 1], "additionalProperties", ["querry"]),
    ("token source header of the wrong type", _set(["token_sources", 0, "header"], ["authorization"]),
     ["token_sources", 0, "header"], "type", ["string"]),
    ("token source query with prefix", _set(["token_sources", 1, "prefix"], "Bearer "),
     ["token_sources", 1, "prefix"], "not", ["Bearer"]),
    ("token source header and query", _set(["token_sources", 1, "header"], "x-token"),
     ["token_sources", 1, "header"], "not", ["x-token"]),
    ("provider unknown member", _set(["providers", 0, "audience"], ["a"]),
     ["providers", 0], "additionalProperties", ["audience"]),
    ("bad enum value", _set(["mode"], "dryrun"),
     ["mode"], "enum", ["dryrun"]),
    ("bad error_detail", _set(["error_detail"], "full"),
     ["error_detail"], "enum", ["full"]),
]


def test_the_base_configuration_is_valid(validator):
    assert not list(validator.iter_errors(base()))


@pytest.mark.parametrize("label,change,path,kind,words", TYPOS, ids=[t[0] for t in TYPOS])
def test_a_typo_is_reported_at_its_path(validator, label, change, path, kind, words):
    errors = list(validator.iter_errors(with_change(change)))
    assert errors, f"{label}: accepted"
    best = best_match(errors)
    assert (list(best.absolute_path), best.validator) == (path, kind), best
    for w in words:
        assert w in best.message, best.message
    # Not only the best one: every error is at the faulty member or inside it,
    # and none is a failed alternative, unless the typo also took away the one
    # member an alternative requires (`querry` for `query`).
    for e in errors:
        assert e.validator not in ALTERNATIVES or {c.validator for c in e.context} == {"required"}, (
            f"{label}: {list(e.absolute_path)}: {e.message}"
        )
        assert list(e.absolute_path)[: len(path)] == path, f"{label}: {list(e.absolute_path)}: {e.message}"


def test_a_typo_in_the_second_rule_names_the_member(validator):
    """The case of issue 15: `rules/1/scops`."""
    doc = base()
    doc["rules"][1]["scops"] = doc["rules"][1].pop("scopes")
    errors = list(validator.iter_errors(doc))
    assert [(list(e.absolute_path), e.validator) for e in errors] == [(["rules", 1], "additionalProperties")]
    assert "'scops' was unexpected" in errors[0].message
    assert "is not valid under any of the given schemas" not in errors[0].message


def test_a_member_missing_from_both_alternatives_is_reported_on_its_object(validator):
    """The only faults left to an alternative: neither of two exclusive members
    given. The alternatives then hold nothing but `required`."""
    for path, doc in [
        (["providers", 0, "jwks"], with_change(_set(["providers", 0, "jwks"], {"cluster": "idp"}))),
        (["token_sources", 0], with_change(_set(["token_sources", 0], {"prefix": "Bearer "}))),
    ]:
        errors = list(validator.iter_errors(doc))
        assert [(list(e.absolute_path), e.validator) for e in errors] == [(path, "anyOf")]
        assert {c.validator for c in errors[0].context} == {"required"}


@pytest.mark.parametrize("rules", [[], {}], ids=["list", "kong-cjson-object"])
def test_empty_rules_as_list_or_object(validator, rules):
    doc = base()
    doc["rules"] = rules
    assert not list(validator.iter_errors(doc))


def test_the_forms_of_each_member_stay_accepted(validator):
    good = [
        _set(["providers", 0, "jwks"], {"inline": {"keys": [ED25519]}}),
        _set(["providers", 0, "jwks"], {"inline": json.dumps({"keys": [ED25519]})}),
        _set(["providers", 0, "jwks"], {"uri": "https://idp.example.com/jwks", "refresh_interval_s": 60, "timeout_ms": 500}),
        _set(["token_sources"], [{"header": "x-token"}, {"query": "t"}]),
        _set(["rules", 0, "public"], False),
        _both(_set(["rules", 1, "public"], False), _set(["rules", 1, "clients"], ["c"])),
        _set(["error_detail"], "minimal"),
        _set(["error_detail"], "verbose"),
    ]
    for change in good:
        doc = with_change(change)
        assert not list(validator.iter_errors(doc)), json.dumps(doc)


def _walk(node, path=()):
    if isinstance(node, dict):
        yield path, node
        for k, v in node.items():
            yield from _walk(v, path + (k,))
    elif isinstance(node, list):
        for i, v in enumerate(node):
            yield from _walk(v, path + (i,))


def test_alternatives_hold_only_required(schema):
    """Member constraints inside anyOf/oneOf would lose their path again."""
    for path, node in _walk(schema):
        if path and path[-1] in ("properties", "definitions", "dependencies"):
            continue  # maps of names, not schemas
        for kw in ALTERNATIVES & node.keys():
            for branch in node[kw]:
                assert set(branch) == {"required"}, f"{'/'.join(map(str, path))}/{kw}: {branch}"


def test_no_ref_has_siblings(schema):
    """Draft-04 ignores everything beside a `$ref`."""
    for path, node in _walk(schema):
        if path and path[-1] in ("properties", "definitions", "dependencies"):
            continue
        if "$ref" in node:
            assert set(node) == {"$ref"}, "/".join(map(str, path))


def _pointer(path: str) -> list:
    return [int(p) if p.isdigit() else p for p in path.strip("/").split("/") if p]


INVALID = sorted(glob.glob(os.path.join(FIXTURES, "invalid", "*.json")))


@pytest.mark.parametrize("fixture", INVALID, ids=[os.path.basename(f) for f in INVALID])
def test_schema_and_parser_point_at_the_same_place(validator, fixture):
    """For every invalid fixture the schema's best error is where the parser's
    fault is (config-schema/fixtures/invalid/*.json `errors`), or on the
    object holding it (an unknown or missing member, a repeated item), or on
    the member that makes it wrong (two exclusive members given); never a
    failed alternative."""
    with open(fixture, encoding="utf-8") as f:
        case = json.load(f)
    errors = list(validator.iter_errors(case["config"]))
    assert errors, "the schema accepted it"
    best = best_match(errors)
    assert best.validator not in ALTERNATIVES, best
    got = list(best.absolute_path)
    for fault in case["errors"]:
        want = _pointer(fault.split(":", 1)[0])
        near = got == want or got == want[:-1] or got[:-1] == want
        assert near, f"schema: /{'/'.join(map(str, got))}: {best.message}; parser: {fault}"
