//! Recognising one log line: an inventory line, an audit line, or neither.
//!
//! The JSON object may sit anywhere in the line: Envoy prefixes it
//! (`[...][info][wasm] ... wasm log scopegate: {...}`) and nginx, for Kong,
//! appends `, client: ..., request: "..."` after it. So the line is scanned
//! for the object's opening bytes and exactly one JSON value is parsed from
//! there; whatever follows it is ignored.
//!
//! Strings borrow from the line when they hold no escapes: the reader's cost
//! is the scan and the parse, not allocations (docs/report.md has the numbers).

use serde::de::{Deserializer, Error as _, Visitor};
use serde::Deserialize;
use std::borrow::Cow;
use std::fmt;

/// The openings that mark the lines the filter writes (the inventory's is
/// the filter's own constant, which its lines are tested to start with).
const INVENTORY: &[u8] = scopegate::request::inventory::MARKER.as_bytes();
const AUDIT: &[u8] = scopegate::request::audit::MARKER.as_bytes();

/// Text from the line, borrowed unless it had escapes.
#[derive(Clone, Debug, PartialEq, Eq, PartialOrd, Ord)]
pub struct Text<'a>(pub Cow<'a, str>);

impl<'a> Text<'a> {
    pub fn as_str(&self) -> &str {
        &self.0
    }
}

impl AsRef<str> for Text<'_> {
    fn as_ref(&self) -> &str {
        self.as_str()
    }
}

impl<'de: 'a, 'a> Deserialize<'de> for Text<'a> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V<'a>(std::marker::PhantomData<&'a ()>);
        impl<'de: 'a, 'a> Visitor<'de> for V<'a> {
            type Value = Text<'a>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a string")
            }
            fn visit_borrowed_str<E: serde::de::Error>(
                self,
                s: &'de str,
            ) -> Result<Self::Value, E> {
                Ok(Text(Cow::Borrowed(s)))
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Self::Value, E> {
                Ok(Text(Cow::Owned(s.to_owned())))
            }
        }
        d.deserialize_str(V(std::marker::PhantomData))
    }
}

/// Counts by name (`denied` by reason, `rules` by rule name), as written.
pub type Counts<'a> = Vec<(Text<'a>, u64)>;

/// Reads a JSON object of counts into a list, without a map per line.
fn counts<'de, D: Deserializer<'de>>(d: D) -> Result<Counts<'de>, D::Error> {
    struct V;
    impl<'de> Visitor<'de> for V {
        type Value = Counts<'de>;
        fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
            f.write_str("an object of counts")
        }
        fn visit_unit<E: serde::de::Error>(self) -> Result<Self::Value, E> {
            Ok(Vec::new())
        }
        fn visit_map<A: serde::de::MapAccess<'de>>(
            self,
            mut m: A,
        ) -> Result<Self::Value, A::Error> {
            let mut out = Vec::new();
            while let Some((k, v)) = m.next_entry::<Text<'de>, u64>()? {
                out.push((k, v));
            }
            Ok(out)
        }
    }
    d.deserialize_any(V)
}

/// A list of strings; `null` reads as empty.
fn texts<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<Text<'de>>, D::Error> {
    Ok(Option::<Vec<Text<'de>>>::deserialize(d)?.unwrap_or_default())
}

/// One inventory line (docs/report.md): what one worker saw of one identity
/// in one interval, or (`overflow`) of the identities past its bound.
/// Members the reader does not know are ignored, so the filter can add some.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Inventory<'a> {
    pub version: Option<u64>,
    pub overflow: bool,
    #[serde(borrow)]
    pub window_start: Option<Text<'a>>,
    #[serde(borrow)]
    pub window_end: Option<Text<'a>>,
    #[serde(borrow)]
    pub provider: Option<Text<'a>>,
    #[serde(borrow)]
    pub client_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub subject: Option<Text<'a>>,
    #[serde(borrow)]
    pub first_seen: Option<Text<'a>>,
    #[serde(borrow)]
    pub last_seen: Option<Text<'a>>,
    pub requests: u64,
    pub allowed: u64,
    #[serde(borrow, deserialize_with = "counts")]
    pub denied: Counts<'a>,
    #[serde(borrow, deserialize_with = "counts")]
    pub rules: Counts<'a>,
    #[serde(borrow, deserialize_with = "texts")]
    pub scopes_presented: Vec<Text<'a>>,
    #[serde(borrow, deserialize_with = "texts")]
    pub scopes_exercised: Vec<Text<'a>>,
    pub max_token_lifetime_s: Option<u64>,
    pub max_token_age_s: Option<u64>,
    pub registered: Option<bool>,
    #[serde(borrow)]
    pub owner: Option<Text<'a>>,
    /// Overflow lines: identities past the bound in this interval.
    pub identities: Option<u64>,
}

/// One audit line (filter/src/request/audit.rs), the members the report uses.
#[derive(Debug, Default, Deserialize)]
#[serde(default)]
pub struct Audit<'a> {
    #[serde(borrow)]
    pub time: Option<Text<'a>>,
    #[serde(borrow)]
    pub decision: Option<Text<'a>>,
    #[serde(borrow)]
    pub reason: Option<Text<'a>>,
    #[serde(borrow)]
    pub rule: Option<Text<'a>>,
    #[serde(borrow)]
    pub provider: Option<Text<'a>>,
    #[serde(borrow)]
    pub client_id: Option<Text<'a>>,
    #[serde(borrow)]
    pub subject: Option<Text<'a>>,
    #[serde(borrow, deserialize_with = "texts")]
    pub scopes: Vec<Text<'a>>,
    pub registered: Option<bool>,
    #[serde(borrow)]
    pub owner: Option<Text<'a>>,
    /// The request is also counted in an inventory line: not counted again.
    pub inventoried: bool,
}

impl Audit<'_> {
    pub fn allowed(&self) -> bool {
        self.decision
            .as_ref()
            .is_some_and(|d| d.as_str() == "allow")
    }
}

/// What a line is.
#[derive(Debug)]
pub enum Line<'a> {
    Inventory(Box<Inventory<'a>>),
    Audit(Box<Audit<'a>>),
    /// Neither kind: no marker in it.
    Other,
    /// A marker, but not the JSON object it announces (cut short, say).
    Malformed(String),
}

/// Recognises and parses one line (without its newline).
pub fn parse(line: &[u8]) -> Line<'_> {
    // Both markers start with `{"`; of the few such places in a line, the
    // first that opens a marker is taken.
    for at in memchr::memmem::find_iter(line, b"{\"") {
        let rest = line.get(at..).unwrap_or_default();
        if rest.starts_with(INVENTORY) {
            return one(rest).map_or_else(Line::Malformed, |v| Line::Inventory(Box::new(v)));
        }
        if rest.starts_with(AUDIT) {
            return one(rest).map_or_else(Line::Malformed, |v| Line::Audit(Box::new(v)));
        }
    }
    Line::Other
}

/// Exactly one JSON value from the start of `text`; what follows is not read.
fn one<'a, T: Deserialize<'a>>(text: &'a [u8]) -> Result<T, String> {
    let mut de = serde_json::Deserializer::from_slice(text);
    T::deserialize(&mut de).map_err(|e| {
        if e.is_eof() {
            serde_json::Error::custom("cut short (the log line ends inside the object)").to_string()
        } else {
            e.to_string()
        }
    })
}

#[cfg(test)]
#[allow(clippy::panic)] // a test fails by panicking
mod tests {
    use super::*;

    #[test]
    fn an_envoy_prefixed_inventory_line_is_read_from_its_marker() {
        let l = br#"[2026-12-07 10:01:00.001][17][info][wasm] [source/extensions/common/wasm/context.cc:1195] wasm log scopegate: {"inventory":"scopegate","version":1,"provider":"corp","client_id":"a\"b","requests":3,"denied":{"insufficient_scope":1},"scopes_presented":["x"]}"#;
        let Line::Inventory(inv) = parse(l) else {
            panic!("not read as inventory");
        };
        assert_eq!(inv.client_id.as_ref().map(Text::as_str), Some("a\"b"));
        assert_eq!(inv.requests, 3);
        assert_eq!(inv.denied.len(), 1);
        assert_eq!(inv.scopes_presented.len(), 1);
    }

    #[test]
    fn an_nginx_suffixed_audit_line_stops_at_the_end_of_its_object() {
        let l = br#"2026/12/07 10:00:00 [info] 1#0: *5 [proxy-wasm]["scopegate" #1] {"audit":"scopegate","decision":"allow","provider":"corp","client_id":"c","scopes":null}, client: 1.2.3.4, server: kong, request: "GET / HTTP/1.1""#;
        let Line::Audit(a) = parse(l) else {
            panic!("not read as audit");
        };
        assert!(a.allowed());
        assert!(a.scopes.is_empty());
    }

    #[test]
    fn other_json_and_cut_lines_are_told_apart() {
        assert!(matches!(parse(br#"{"audit":"other"}"#), Line::Other));
        assert!(matches!(parse(b"plain text"), Line::Other));
        assert!(matches!(
            parse(br#"x {"audit":"scopegate","decision":"al"#),
            Line::Malformed(_)
        ));
    }
}
