//! Finding Scopegate configurations inside the files they are deployed in:
//! Kong declarative files and Admin API bodies, Istio `WasmPlugin` and
//! `TrafficExtension`, Envoy Gateway `EnvoyExtensionPolicy`, Envoy bootstraps
//! and ECDS resources, or the configuration document itself.
//!
//! Every document is walked as a whole, so a filter is found wherever the
//! gateway allows it (service, route or top-level Kong plugins; any listener
//! or ECDS resource in Envoy; a Kubernetes `List`). Only filters that are
//! Scopegate count: other Wasm filters' configurations are not ours to judge.

use crate::document::Document;
use serde_json::{Map, Value};
use std::fmt;

/// Where in a file something was found: document (in a YAML stream of more
/// than one) and the members leading to it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Location {
    pub document: Option<usize>,
    pub path: Vec<Step>,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Step {
    Key(String),
    Index(usize),
}

impl Location {
    fn child(&self, step: Step) -> Location {
        let mut path = self.path.clone();
        path.push(step);
        Location {
            document: self.document,
            path,
        }
    }

    fn key(&self, k: &str) -> Location {
        self.child(Step::Key(k.to_string()))
    }

    /// The JSON Pointer of the path (`/services/0/filter_chains/0`).
    pub fn pointer(&self) -> String {
        self.path
            .iter()
            .map(|s| match s {
                Step::Key(k) => format!("/{}", k.replace('~', "~0").replace('/', "~1")),
                Step::Index(i) => format!("/{i}"),
            })
            .collect()
    }

    /// The path as written in the output (`services[0].filter_chains[0]`),
    /// without the document number.
    fn dotted(&self) -> String {
        let mut out = String::new();
        for s in &self.path {
            match s {
                Step::Index(i) => out.push_str(&format!("[{i}]")),
                Step::Key(k) if is_plain_key(k) => {
                    if !out.is_empty() {
                        out.push('.');
                    }
                    out.push_str(k);
                }
                Step::Key(k) => out.push_str(&format!("[{}]", Value::String(k.clone()))),
            }
        }
        out
    }

    /// Whether `--select` names this location, or a filter or plugin that
    /// holds it: the dotted form as printed, or a JSON Pointer.
    pub fn selected_by(&self, select: &str) -> bool {
        let (doc, rest) = match select.strip_prefix("document ") {
            Some(s) => match s.split_once(':') {
                Some((n, rest)) => (n.trim().parse::<usize>().ok(), rest.trim_start()),
                None => (s.trim().parse::<usize>().ok(), ""),
            },
            None => (None, select),
        };
        if doc.is_some() && doc != self.document {
            return false;
        }
        if rest.is_empty() {
            return doc.is_some() || self.path.is_empty();
        }
        let (own, boundary): (String, &[char]) = if rest.starts_with('/') {
            (self.pointer(), &['/'])
        } else {
            (self.dotted(), &['.', '['])
        };
        own == rest
            || own
                .strip_prefix(rest)
                .is_some_and(|tail| tail.starts_with(boundary))
    }
}

fn is_plain_key(k: &str) -> bool {
    !k.is_empty()
        && k.chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if let Some(n) = self.document {
            write!(f, "document {n}")?;
            if !self.path.is_empty() {
                f.write_str(": ")?;
            }
        }
        f.write_str(&self.dotted())
    }
}

/// A configuration as the gateway would hand it to the filter.
#[derive(Debug)]
pub enum Body {
    /// A structured value (YAML or JSON object) the gateway serializes.
    Value(Value),
    /// JSON text handed over as is (Envoy's `StringValue`, Kong 3.4's string
    /// `config`): read by the same parser as the filter's.
    Text(String),
    /// The filter is there but its configuration is not where it must be.
    Missing(String),
}

#[derive(Debug)]
pub struct Found {
    pub location: Location,
    pub body: Body,
}

/// What a file holds for Scopegate.
#[derive(Debug, Default)]
pub struct Findings {
    pub configs: Vec<Found>,
    /// Scopegate filters whose configuration lives elsewhere (ECDS).
    pub notes: Vec<(Location, String)>,
}

/// Finds every Scopegate configuration in the documents. A document holding
/// none that is not some gateway's file is taken to be a configuration itself.
pub fn find(documents: &[Document]) -> Findings {
    let mut out = Findings::default();
    let several = documents.len() > 1;
    for doc in documents {
        let root = Location {
            document: several.then_some(doc.number),
            path: Vec::new(),
        };
        let before = (out.configs.len(), out.notes.len());
        walk(&doc.value, &root, None, None, &mut out);
        if (out.configs.len(), out.notes.len()) == before && !is_gateway_document(&doc.value) {
            out.configs.push(Found {
                location: root,
                body: Body::Value(doc.value.clone()),
            });
        }
    }
    out
}

/// Members that make a document some gateway's file rather than a
/// configuration with typos: such a document without Scopegate in it is
/// skipped, not reported as a broken configuration.
const GATEWAY_MEMBERS: [&str; 15] = [
    "kind",
    "apiVersion",
    "_format_version",
    "services",
    "routes",
    "plugins",
    "filters",
    "filter_chains",
    "static_resources",
    "dynamic_resources",
    "resources",
    "node",
    "admin",
    "layered_runtime",
    "name",
];

fn is_gateway_document(v: &Value) -> bool {
    match v {
        Value::Object(m) => {
            !m.contains_key("providers")
                && !m.contains_key("rules")
                && GATEWAY_MEMBERS.iter().any(|k| m.contains_key(*k))
        }
        // A list or scalar is no configuration: let the core say so.
        _ => false,
    }
}

const WASM_FILTER: &str = "envoy.extensions.filters.http.wasm.v3.Wasm";

/// `container` is the member whose array holds `v` (`filters`, `plugins`...);
/// `enclosing_name` the `name` of the object holding `v` (an Envoy http filter
/// or ECDS resource names the Wasm filter it wraps).
fn walk(
    v: &Value,
    at: &Location,
    container: Option<&str>,
    enclosing_name: Option<&str>,
    out: &mut Findings,
) {
    match v {
        Value::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                walk(item, &at.child(Step::Index(i)), container, None, out);
            }
        }
        Value::Object(o) => {
            if recognize(o, at, container, enclosing_name, out) {
                return;
            }
            let name = o.get("name").and_then(Value::as_str);
            for (k, child) in o {
                let container = matches!(child, Value::Array(_)).then_some(k.as_str());
                walk(child, &at.key(k), container, name, out);
            }
        }
        _ => {}
    }
}

/// Recognizes the shapes that carry a Scopegate configuration; true when `o`
/// was one (found or not Scopegate's), so its inside is not walked again.
fn recognize(
    o: &Map<String, Value>,
    at: &Location,
    container: Option<&str>,
    enclosing_name: Option<&str>,
    out: &mut Findings,
) -> bool {
    let text = |v: Option<&Value>| v.and_then(Value::as_str).unwrap_or("").to_string();
    let api = text(o.get("apiVersion"));
    match (
        text(o.get("kind")).as_str(),
        api.split('/').next().unwrap_or(""),
    ) {
        ("WasmPlugin", "extensions.istio.io") => {
            let spec = o.get("spec");
            if names_scopegate(&[
                o.get("metadata").and_then(|m| m.get("name")),
                spec.and_then(|s| s.get("pluginName")),
                spec.and_then(|s| s.get("url")),
            ]) {
                take(spec, &at.key("spec"), "pluginConfig", out);
            }
            return true;
        }
        ("TrafficExtension", "extensions.istio.io") => {
            let wasm = o.get("spec").and_then(|s| s.get("wasm"));
            if wasm.is_some()
                && names_scopegate(&[
                    o.get("metadata").and_then(|m| m.get("name")),
                    wasm.and_then(|w| w.get("pluginName")),
                    wasm.and_then(|w| w.get("url")),
                ])
            {
                take(wasm, &at.key("spec").key("wasm"), "pluginConfig", out);
            }
            return true;
        }
        ("EnvoyExtensionPolicy", "gateway.envoyproxy.io") => {
            let list = o
                .get("spec")
                .and_then(|s| s.get("wasm"))
                .and_then(Value::as_array);
            for (i, w) in list.into_iter().flatten().enumerate() {
                let code = w.get("code");
                if names_scopegate(&[
                    w.get("name"),
                    w.get("rootID"),
                    code.and_then(|c| c.get("image")).and_then(|i| i.get("url")),
                    code.and_then(|c| c.get("http")).and_then(|h| h.get("url")),
                ]) {
                    let wat = at.key("spec").key("wasm").child(Step::Index(i));
                    take(Some(w), &wat, "config", out);
                }
            }
            return true;
        }
        _ => {}
    }

    let ty = text(o.get("@type"));
    if ty.ends_with(WASM_FILTER) {
        envoy_wasm(o, at, enclosing_name, out);
        return true;
    }
    // The older untyped form: a TypedStruct whose `value` is the Wasm message.
    if (ty.ends_with("udpa.type.v1.TypedStruct") || ty.ends_with("xds.type.v3.TypedStruct"))
        && text(o.get("type_url")).ends_with(WASM_FILTER)
    {
        if let Some(Value::Object(inner)) = o.get("value") {
            envoy_wasm(inner, &at.key("value"), enclosing_name, out);
        }
        return true;
    }
    // An Envoy http filter (or listener filter) served by discovery.
    if let Some(discovery) = o.get("config_discovery") {
        if names_scopegate(&[o.get("name")]) {
            let path = discovery
                .get("config_source")
                .and_then(|s| s.get("path_config_source"))
                .and_then(|p| p.get("path"))
                .and_then(Value::as_str);
            let check = match path {
                Some(p) => format!("check {p}"),
                None => "check the resource the control plane serves".to_string(),
            };
            out.notes.push((
                at.clone(),
                format!("the filter takes its configuration from extension config discovery (ECDS): {check}"),
            ));
            return true;
        }
    }
    // Kong: a filter in a filter chain, or a plugin (declarative file or
    // Admin API body); an Admin API plugin body is a document of its own.
    // (A filter chain body is named too, so at the root only a `config` says plugin.)
    let kong_place = matches!(container, Some("filters" | "plugins"))
        || (at.path.is_empty() && o.contains_key("config"));
    if kong_place && text(o.get("name")) == "scopegate" {
        take(Some(&Value::Object(o.clone())), at, "config", out);
        return true;
    }
    false
}

/// Whether any of these names or URLs says Scopegate.
fn names_scopegate(values: &[Option<&Value>]) -> bool {
    values
        .iter()
        .filter_map(|v| v.and_then(Value::as_str))
        .any(|s| s.to_ascii_lowercase().contains("scopegate"))
}

/// Takes `member` of `holder` as a configuration: an object as is, a string
/// as JSON text (Kong 3.4 writes `config` so; Envoy Gateway passes it on).
fn take(holder: Option<&Value>, at: &Location, member: &str, out: &mut Findings) {
    let body = match holder.and_then(|h| h.get(member)) {
        Some(Value::String(s)) => Body::Text(s.clone()),
        Some(v @ Value::Object(_)) => Body::Value(v.clone()),
        Some(Value::Null) | None => Body::Missing(format!(
            "`{member}` is missing: Scopegate's configuration goes there"
        )),
        Some(v) => Body::Value(v.clone()),
    };
    let location = match body {
        Body::Missing(_) => at.clone(),
        _ => at.key(member),
    };
    out.configs.push(Found { location, body });
}

/// An `envoy.extensions.filters.http.wasm.v3.Wasm` message: Scopegate's when
/// its code is `scopegate.wasm` or its filter, plugin, VM or root id says so.
fn envoy_wasm(
    wasm: &Map<String, Value>,
    at: &Location,
    enclosing_name: Option<&str>,
    out: &mut Findings,
) {
    let plugin = wasm.get("config");
    let vm = plugin.and_then(|p| p.get("vm_config"));
    let code = vm.and_then(|v| v.get("code"));
    let file = [
        code.and_then(|c| c.get("local"))
            .and_then(|l| l.get("filename")),
        code.and_then(|c| c.get("remote"))
            .and_then(|r| r.get("http_uri"))
            .and_then(|h| h.get("uri")),
    ];
    let by_file = file
        .iter()
        .filter_map(|f| f.and_then(Value::as_str))
        .any(|f| f.ends_with("scopegate.wasm"));
    let enclosing = enclosing_name.map(|n| Value::String(n.to_string()));
    let by_name = names_scopegate(&[
        enclosing.as_ref(),
        plugin.and_then(|p| p.get("name")),
        plugin.and_then(|p| p.get("root_id")),
        vm.and_then(|v| v.get("vm_id")),
    ]);
    if !by_file && !by_name {
        return;
    }
    let config_at = at.key("config");
    let configuration = plugin.and_then(|p| p.get("configuration"));
    let Some(configuration) = configuration else {
        out.configs.push(Found {
            location: config_at,
            body: Body::Missing(
                "no `configuration`: Scopegate would start without one and answer every request 500"
                    .into(),
            ),
        });
        return;
    };
    let at = config_at.key("configuration");
    let ty = configuration
        .get("@type")
        .and_then(Value::as_str)
        .unwrap_or("");
    let body = match configuration.get("value") {
        Some(Value::String(s)) if ty.ends_with("google.protobuf.StringValue") => {
            out.configs.push(Found {
                location: at.key("value"),
                body: Body::Text(s.clone()),
            });
            return;
        }
        _ => Body::Missing(format!(
            "expected a google.protobuf.StringValue whose `value` is the JSON configuration (got @type \"{ty}\")"
        )),
    };
    out.configs.push(Found { location: at, body });
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn wheres(docs: Vec<Value>) -> Vec<String> {
        let docs: Vec<Document> = docs
            .into_iter()
            .enumerate()
            .map(|(i, value)| Document {
                number: i + 1,
                value,
            })
            .collect();
        find(&docs)
            .configs
            .iter()
            .map(|f| f.location.to_string())
            .collect()
    }

    #[test]
    fn kong_filters_and_plugins_are_found_at_every_level() {
        let doc = json!({
            "_format_version": "3.0",
            "services": [{"name": "s", "filter_chains": [{"filters": [{"name": "other", "config": "x"}, {"name": "scopegate", "config": {}}]}],
                          "routes": [{"name": "r", "plugins": [{"name": "scopegate", "config": {}}]}]}],
            "plugins": [{"name": "scopegate", "service": "s", "config": "{}"}]
        });
        assert_eq!(
            wheres(vec![doc]),
            [
                "plugins[0].config",
                "services[0].filter_chains[0].filters[1].config",
                "services[0].routes[0].plugins[0].config"
            ]
        );
    }

    #[test]
    fn other_wasm_filters_are_not_taken_for_scopegate() {
        let doc = json!({"static_resources": {"listeners": [{"filter_chains": [{"filters": [{"typed_config": {"http_filters": [
            {"name": "other", "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm",
             "config": {"vm_config": {"code": {"local": {"filename": "/x/other.wasm"}}}, "configuration": {"@type": "type.googleapis.com/google.protobuf.StringValue", "value": "{}"}}}}
        ]}}]}]}]}});
        let docs = [Document {
            number: 1,
            value: doc,
        }];
        let f = find(&docs);
        assert!(f.configs.is_empty() && f.notes.is_empty(), "{f:?}");
    }

    #[test]
    fn selection_takes_the_printed_form_a_holder_or_a_pointer() {
        let at = Location {
            document: Some(2),
            path: vec![
                Step::Key("services".into()),
                Step::Index(0),
                Step::Key("filters".into()),
                Step::Index(1),
                Step::Key("config".into()),
            ],
        };
        assert_eq!(at.to_string(), "document 2: services[0].filters[1].config");
        for yes in [
            "document 2: services[0].filters[1].config",
            "document 2: services[0].filters[1]",
            "document 2",
        ] {
            assert!(at.selected_by(yes), "{yes}");
        }
        for no in [
            "document 1: services[0].filters[1]",
            "document 2: services[0].filters[10]",
            "document 2: services[0].filt",
        ] {
            assert!(!at.selected_by(no), "{no}");
        }
        let single = Location {
            document: None,
            ..at
        };
        assert!(single.selected_by("/services/0/filters/1"));
        assert!(single.selected_by("services[0]"));
        assert!(!single.selected_by("/services/0/filters/10"));
    }
}
