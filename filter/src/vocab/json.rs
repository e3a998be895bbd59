//! JSON text → `serde_json::Value`, refusing duplicate object members at
//! every depth. A reader that keeps the first of two members and one that
//! keeps the last see different documents: one line added to a policy diff
//! (`"mode": "dry_run"` below `"mode": "enforce"`) must not turn enforcement
//! off without a word. The error names the JSON Pointer of the object.

use serde::de::{self, DeserializeSeed, Deserializer, MapAccess, SeqAccess, Visitor};
use serde_json::{Map, Value};
use std::cell::RefCell;
use std::fmt;

/// Why a text is not a JSON document with unique members.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum JsonError {
    /// Not JSON at all; serde_json's message (with line and column).
    Syntax(String),
    /// `member` appears twice in the object at `pointer` (`""` for the root).
    Duplicate { pointer: String, member: String },
}

impl fmt::Display for JsonError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            JsonError::Syntax(e) => write!(f, "not valid JSON: {e}"),
            JsonError::Duplicate { member, .. } => write!(
                f,
                "duplicate member \"{}\": a JSON reader may take either value, so it is refused",
                crate::vocab::text::clip(member, 60)
            ),
        }
    }
}

/// What `read` refuses, with the deserializer's own error (which carries the
/// position in the text) in both cases.
#[derive(Debug)]
pub enum ReadError<E> {
    Syntax(E),
    Duplicate {
        pointer: String,
        member: String,
        at: E,
    },
}

/// Parses `text`, refusing duplicate members anywhere in it.
pub fn from_slice(text: &[u8]) -> Result<Value, JsonError> {
    let mut de = serde_json::Deserializer::from_slice(text);
    let value = read(&mut de).map_err(|e| match e {
        ReadError::Syntax(e) => JsonError::Syntax(e.to_string()),
        ReadError::Duplicate {
            pointer, member, ..
        } => JsonError::Duplicate { pointer, member },
    })?;
    de.end().map_err(|e| JsonError::Syntax(e.to_string()))?;
    Ok(value)
}

/// Like `from_slice`, for text.
pub fn from_str(text: &str) -> Result<Value, JsonError> {
    from_slice(text.as_bytes())
}

/// Reads one value from any self-describing deserializer (JSON, or YAML in
/// the CLI) into a `serde_json::Value`, refusing duplicate members. Mapping
/// keys that are scalars other than strings (YAML's `200:`, `true:`) become
/// their text, as a YAML-to-JSON conversion writes them.
pub fn read<'de, D: Deserializer<'de>>(d: D) -> Result<Value, ReadError<D::Error>> {
    let found = RefCell::new(None);
    let seed = Unique::at("", &found);
    match (seed.deserialize(d), found.into_inner()) {
        (Ok(v), _) => Ok(v),
        (Err(at), Some((pointer, member))) => Err(ReadError::Duplicate {
            pointer,
            member,
            at,
        }),
        (Err(e), None) => Err(ReadError::Syntax(e)),
    }
}

/// A value at `pointer`; the first duplicate found is kept in `found` (the
/// error that stops the deserializer carries no structure). Public so that a
/// streaming reader of a large document can read its small members strictly.
pub struct Unique<'a> {
    at: At<'a>,
    found: &'a RefCell<Option<(String, String)>>,
}

/// Where a value sits, rendered as a JSON Pointer only when a fault needs it:
/// formatting a pointer for every value of a large document costs more than
/// reading it.
#[derive(Clone, Copy)]
enum At<'a> {
    Pointer(&'a str),
    PointerItem(&'a str, usize),
    Item(&'a At<'a>, usize),
    Member(&'a At<'a>, &'a str),
}

impl At<'_> {
    fn render(&self) -> String {
        match self {
            At::Pointer(p) => (*p).to_string(),
            At::PointerItem(p, i) => format!("{p}/{i}"),
            At::Item(parent, i) => format!("{}/{i}", parent.render()),
            At::Member(parent, key) => format!("{}/{}", parent.render(), pointer_token(key)),
        }
    }
}

impl<'a> Unique<'a> {
    /// A seed for element `index` of the array at `pointer`.
    pub fn item(
        pointer: &'a str,
        index: usize,
        found: &'a RefCell<Option<(String, String)>>,
    ) -> Self {
        Unique {
            at: At::PointerItem(pointer, index),
            found,
        }
    }

    /// A seed for the value at `pointer`; a duplicate member inside it is
    /// recorded in `found` as (object pointer, member).
    pub fn at(pointer: &'a str, found: &'a RefCell<Option<(String, String)>>) -> Self {
        Unique {
            at: At::Pointer(pointer),
            found,
        }
    }
}

impl<'de> DeserializeSeed<'de> for Unique<'_> {
    type Value = Value;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        d.deserialize_any(self)
    }
}

/// RFC 6901: `~` → `~0`, `/` → `~1`.
fn pointer_token(member: &str) -> String {
    member.replace('~', "~0").replace('/', "~1")
}

impl<'de> Visitor<'de> for Unique<'_> {
    type Value = Value;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a JSON-compatible value")
    }

    fn visit_bool<E>(self, v: bool) -> Result<Value, E> {
        Ok(Value::Bool(v))
    }
    fn visit_i64<E>(self, v: i64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_u64<E>(self, v: u64) -> Result<Value, E> {
        Ok(Value::from(v))
    }
    fn visit_f64<E: de::Error>(self, v: f64) -> Result<Value, E> {
        serde_json::Number::from_f64(v)
            .map(Value::Number)
            .ok_or_else(|| {
                E::custom(format!(
                    "{}: {v} has no JSON representation",
                    self.at.render()
                ))
            })
    }
    fn visit_str<E>(self, v: &str) -> Result<Value, E> {
        Ok(Value::String(v.to_string()))
    }
    fn visit_string<E>(self, v: String) -> Result<Value, E> {
        Ok(Value::String(v))
    }
    fn visit_unit<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_none<E>(self) -> Result<Value, E> {
        Ok(Value::Null)
    }
    fn visit_some<D: Deserializer<'de>>(self, d: D) -> Result<Value, D::Error> {
        self.deserialize(d)
    }

    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Value, A::Error> {
        let mut out = Vec::new();
        while let Some(v) = seq.next_element_seed(Unique {
            at: At::Item(&self.at, out.len()),
            found: self.found,
        })? {
            out.push(v);
        }
        Ok(Value::Array(out))
    }

    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Value, A::Error> {
        let mut out = Map::new();
        while let Some(key) = map.next_key_seed(Key)? {
            if out.contains_key(&key) {
                let pointer = self.at.render();
                let message = format!(
                    "{pointer}/{}: member \"{key}\" is given twice (parsers disagree on which one counts: remove one)",
                    pointer_token(&key)
                );
                *self.found.borrow_mut() = Some((pointer, key));
                return Err(de::Error::custom(message));
            }
            let value = map.next_value_seed(Unique {
                at: At::Member(&self.at, &key),
                found: self.found,
            })?;
            out.insert(key, value);
        }
        Ok(Value::Object(out))
    }
}

/// A mapping key as text.
struct Key;

impl<'de> DeserializeSeed<'de> for Key {
    type Value = String;
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> Result<String, D::Error> {
        d.deserialize_any(self)
    }
}

impl Visitor<'_> for Key {
    type Value = String;

    fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("a string, number or boolean as a mapping key")
    }
    fn visit_str<E>(self, v: &str) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_string<E>(self, v: String) -> Result<String, E> {
        Ok(v)
    }
    fn visit_bool<E>(self, v: bool) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_i64<E>(self, v: i64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_u64<E>(self, v: u64) -> Result<String, E> {
        Ok(v.to_string())
    }
    fn visit_f64<E>(self, v: f64) -> Result<String, E> {
        Ok(v.to_string())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn a_document_with_unique_members_reads_as_serde_json_would() {
        let text = r#"{"a": [1, -2, 3.5, "x", null, true, {"b": {}}], "c": {"d": []}}"#;
        assert_eq!(
            from_str(text),
            Ok(serde_json::from_str::<Value>(text).expect("json"))
        );
    }

    #[test]
    fn a_duplicate_at_the_top_is_refused_with_the_root_pointer() {
        let err = from_str(r#"{"mode": "enforce", "mode": "dry_run"}"#).expect_err("dup");
        assert_eq!(
            err,
            JsonError::Duplicate {
                pointer: String::new(),
                member: "mode".into()
            }
        );
    }

    #[test]
    fn a_duplicate_deep_inside_names_its_object() {
        let text = r#"{"rules": [{"name": "a"}, {"name": "b", "path": "/x", "path": "/y"}]}"#;
        let err = from_str(text).expect_err("dup");
        assert_eq!(
            err,
            JsonError::Duplicate {
                pointer: "/rules/1".into(),
                member: "path".into()
            }
        );
        let text = r#"{"identity_headers": {"claims": {"a/b": {"x": 1, "x": 2}}}}"#;
        assert!(matches!(
            from_str(text),
            Err(JsonError::Duplicate { pointer, .. }) if pointer == "/identity_headers/claims/a~1b"
        ));
    }

    #[test]
    fn syntax_errors_keep_serde_json_position() {
        let err = from_str("{\"a\": 1,\n}").expect_err("syntax");
        assert!(
            matches!(&err, JsonError::Syntax(m) if m.contains("line 2")),
            "{err:?}"
        );
        assert!(matches!(from_str("{} x"), Err(JsonError::Syntax(_))));
    }

    #[test]
    fn the_readers_error_for_a_duplicate_names_the_member_path_and_position() {
        let mut de = serde_json::Deserializer::from_str("{\"a\": {\"b\": 1, \"b\": 2}}");
        let Err(ReadError::Duplicate {
            pointer,
            member,
            at,
        }) = read(&mut de)
        else {
            panic!("duplicate expected");
        };
        assert_eq!((pointer.as_str(), member.as_str()), ("/a", "b"));
        let at = at.to_string();
        assert!(at.starts_with("/a/b: member \"b\" is given twice"), "{at}");
        assert!(at.contains("line 1 column"), "{at}");
    }

    #[test]
    fn numbers_keep_their_kind() {
        assert_eq!(
            from_str("[1, 18446744073709551615, -1, 1e3]"),
            Ok(json!([1, 18_446_744_073_709_551_615_u64, -1, 1000.0]))
        );
    }
}
