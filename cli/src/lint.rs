//! Warnings about valid configurations that probably do not do what their
//! author meant: rules no request can reach, and key fetches routed through
//! an upstream the author never named.

use scopegate::policy::config::{Config, KeySource, Rule};
use serde_json::Value;

/// One warning: the JSON Pointer it is about, and what to do.
pub struct Warning {
    pub pointer: String,
    pub message: String,
}

/// `document` is the configuration as written (to tell a default from a
/// value given); `cfg` the same document, validated.
pub fn warnings(cfg: &Config, document: &Value) -> Vec<Warning> {
    let mut out = shadowed_rules(cfg);
    out.extend(default_clusters(cfg, document));
    out
}

/// Rules the filter can never pick: it takes the first rule whose methods
/// and path match, so a rule is dead when an earlier one matches every
/// request it would. Warned only when that is certain.
fn shadowed_rules(cfg: &Config) -> Vec<Warning> {
    let mut out = Vec::new();
    for (i, rule) in cfg.rules.iter().enumerate() {
        let earlier = cfg.rules.iter().take(i).enumerate();
        if let Some((j, by)) = earlier.into_iter().find(|(_, e)| covers(e, rule)) {
            out.push(Warning {
                pointer: format!("/rules/{i}"),
                message: format!(
                    "rule \"{}\" ({} {}) can never match: rule \"{}\" at /rules/{j} ({} {}) comes first and matches every request it would; move it above /rules/{j} or remove it",
                    rule.name,
                    methods(rule),
                    rule.path.as_str(),
                    by.name,
                    methods(by),
                    by.path.as_str(),
                ),
            });
        }
    }
    out
}

fn methods(r: &Rule) -> String {
    r.methods
        .as_ref()
        .map_or_else(|| "any method".to_string(), |m| m.join(","))
}

/// Whether every request `later` matches is matched by `earlier`.
fn covers(earlier: &Rule, later: &Rule) -> bool {
    let methods_cover = match (&earlier.methods, &later.methods) {
        (None, _) => true,
        // An explicit list never provably covers "any method".
        (Some(_), None) => false,
        (Some(e), Some(l)) => l.iter().all(|m| e.contains(m)),
    };
    methods_cover
        && pattern_covers(
            &segments(earlier.path.as_str()),
            &segments(later.path.as_str()),
        )
}

/// A pattern segment, read back from a pattern the core already accepted
/// (`PathPattern` keeps its compiled segments private).
#[derive(Debug, PartialEq, Eq)]
enum Seg<'a> {
    Literal(&'a str),
    /// `*` or `{name}`: one non-empty segment.
    One,
    /// `**`, last: zero or more segments.
    Rest,
}

fn segments(source: &str) -> Vec<Seg<'_>> {
    if source == "/" {
        return Vec::new();
    }
    source
        .get(1..)
        .unwrap_or_default()
        .split('/')
        .map(|s| match s {
            "**" => Seg::Rest,
            "*" => Seg::One,
            s if s.starts_with('{') && s.ends_with('}') => Seg::One,
            s => Seg::Literal(s),
        })
        .collect()
}

/// Whether every normalized path `b` matches is matched by `a`, segment by
/// segment. Exact for these three kinds of segment; when unsure, false.
fn pattern_covers(a: &[Seg<'_>], b: &[Seg<'_>]) -> bool {
    match (a.split_first(), b.split_first()) {
        (None, None) => true,
        (Some((Seg::Rest, _)), _) => true,
        (None, Some(_)) | (Some(_), None) => false,
        (Some((Seg::One, a_rest)), Some((b_first, b_rest))) => match b_first {
            // An empty literal is the trailing `/`: `*` needs a non-empty segment.
            Seg::Literal("") => false,
            Seg::Literal(_) | Seg::One => pattern_covers(a_rest, b_rest),
            Seg::Rest => false,
        },
        (Some((Seg::Literal(x), a_rest)), Some((b_first, b_rest))) => {
            b_first == &Seg::Literal(x) && pattern_covers(a_rest, b_rest)
        }
    }
}

/// A fetched key set without `cluster` goes through the upstream named by the
/// URI's authority: in Envoy a cluster of exactly that name must exist, or
/// every fetch fails and tokens of that provider get 503s.
fn default_clusters(cfg: &Config, document: &Value) -> Vec<Warning> {
    let mut out = Vec::new();
    for (i, p) in cfg.providers.iter().enumerate() {
        let KeySource::Remote(r) = &p.keys else {
            continue;
        };
        let jwks = document
            .get("providers")
            .and_then(|ps| ps.get(i))
            .and_then(|p| p.get("jwks"));
        if jwks.is_some_and(|j| j.get("cluster").is_none()) {
            out.push(Warning {
                pointer: format!("/providers/{i}/jwks"),
                message: format!(
                    "`uri` without `cluster`: keys are fetched through the upstream \"{}\" (the default, the URI's authority); Envoy needs a cluster of exactly that name (with TLS for https), Kong a reachable host:port; set `cluster` to say which",
                    r.cluster
                ),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use scopegate::policy::config::parse_value;
    use serde_json::json;

    fn shadowed(rules: Value) -> Vec<String> {
        let doc = json!({
            "providers": [{"name": "corp", "issuer": "https://i", "jwks": {"uri": "https://i/k", "cluster": "i"}}],
            "rules": rules
        });
        match parse_value(&doc) {
            Ok(cfg) => warnings(&cfg, &doc)
                .into_iter()
                .map(|w| w.pointer)
                .collect(),
            Err(e) => vec![format!("invalid: {e:?}")],
        }
    }

    fn rule(name: &str, methods: Option<&[&str]>, path: &str) -> Value {
        let mut r = json!({"name": name, "path": path, "scopes": ["s"]});
        if let Some(m) = methods {
            r["methods"] = json!(m);
        }
        r
    }

    #[test]
    fn a_rule_behind_a_wider_earlier_rule_is_reported() {
        let cases: [(Value, &[&str]); 6] = [
            (
                json!([
                    rule("all", Some(&["GET"]), "/payments/**"),
                    rule("one", Some(&["GET"]), "/payments/{id}")
                ]),
                &["/rules/1"],
            ),
            (
                json!([
                    rule("any", None, "/a/*/c"),
                    rule("lit", Some(&["POST"]), "/a/b/c")
                ]),
                &["/rules/1"],
            ),
            (
                json!([
                    rule("rest", None, "/**"),
                    rule("root", None, "/"),
                    rule("x", Some(&["GET"]), "/x/")
                ]),
                &["/rules/1", "/rules/2"],
            ),
            (
                json!([
                    rule("a", Some(&["GET"]), "/a/{x}"),
                    rule("b", Some(&["GET"]), "/a/*")
                ]),
                &["/rules/1"],
            ),
            (
                json!([
                    rule("a", Some(&["GET", "HEAD"]), "/a/**"),
                    rule("b", Some(&["GET"]), "/a/**")
                ]),
                &["/rules/1"],
            ),
            (
                json!([rule("a", None, "/a/**"), rule("b", None, "/a/b/**")]),
                &["/rules/1"],
            ),
        ];
        for (rules, want) in cases {
            assert_eq!(shadowed(rules.clone()), want, "{rules}");
        }
    }

    #[test]
    fn a_rule_that_some_request_reaches_is_not_reported() {
        for rules in [
            // the narrow rule first: the order the README recommends
            json!([
                rule("one", Some(&["GET"]), "/payments/{id}"),
                rule("all", Some(&["GET"]), "/payments/**")
            ]),
            // methods not covered
            json!([
                rule("r", Some(&["GET"]), "/payments/**"),
                rule("w", Some(&["POST"]), "/payments/{id}")
            ]),
            json!([
                rule("r", Some(&["GET"]), "/payments/**"),
                rule("any", None, "/payments/{id}")
            ]),
            // `*` needs a non-empty segment; `**` may match none
            json!([rule("a", None, "/a/*"), rule("b", None, "/a/")]),
            json!([rule("a", None, "/a/*"), rule("b", None, "/a/**")]),
            json!([rule("a", None, "/a/*/c"), rule("b", None, "/a/**")]),
            // a literal is not a wildcard
            json!([rule("a", None, "/a/b"), rule("b", None, "/a/{x}")]),
            json!([rule("a", None, "/a"), rule("b", None, "/a/")]),
            json!([rule("a", None, "/a/b"), rule("b", None, "/a/b/c")]),
        ] {
            assert!(shadowed(rules.clone()).is_empty(), "{rules}");
        }
    }

    #[test]
    fn a_fetched_key_set_without_cluster_names_the_default() {
        let doc = json!({
            "providers": [
                {"name": "a", "issuer": "https://a", "jwks": {"uri": "https://idp.example.com:8443/k"}},
                {"name": "b", "issuer": "https://b", "jwks": {"uri": "https://b/k", "cluster": "b"}}
            ],
            "default_action": "authenticate"
        });
        let cfg = parse_value(&doc).map_err(|e| format!("{e:?}"));
        let w = cfg.map(|c| warnings(&c, &doc)).unwrap_or_default();
        assert_eq!(w.len(), 1);
        let first = w.first().map(|w| (w.pointer.as_str(), w.message.as_str()));
        let (pointer, message) = first.unwrap_or_default();
        assert_eq!(pointer, "/providers/0/jwks");
        assert!(message.contains("\"idp.example.com:8443\""), "{message}");
    }
}
