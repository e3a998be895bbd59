//! The decision record for the access log (`request_properties_form:
//! "struct"`): one `google.protobuf.Struct` of string fields, in protobuf's
//! wire format, set as one request property.
//!
//! Why it exists beside the seven properties: each property is a host call
//! and a filter-state object in Envoy (about 3,800 instructions each), and a
//! Struct declared once per VM as a Protobuf property is one of each (about
//! 7,000 for all seven facts). Its fields are readable only through CEL
//! (`%CEL(filter_state['wasm.scopegate'].subject)%`), which decodes the Struct
//! per field read (about 19,000 each), so it pays where the access log writes
//! the facts on few requests (results/access-log.md). Only the few bytes of
//! wire format this needs are written here; no protobuf library.

/// The property the record is set as (Envoy: filter state `wasm.scopegate`).
pub const RECORD_KEY: &str = "scopegate";

/// The type Envoy is told the record has; its CEL runtime knows it.
pub const STRUCT_TYPE_URL: &str = "type.googleapis.com/google.protobuf.Struct";

/// Appends a length-delimited field (wire type 2) of field number `number`.
fn delimited(out: &mut Vec<u8>, number: u8, bytes: &[u8]) {
    out.push(number << 3 | 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint(out: &mut Vec<u8>, mut n: u64) {
    while n >= 0x80 {
        out.push((n & 0x7f) as u8 | 0x80);
        n >>= 7;
    }
    out.push(n as u8);
}

/// A `google.protobuf.Struct` whose fields are the given names with string
/// values (`Struct.fields` = 1, map entry key = 1 and value = 2,
/// `Value.string_value` = 3).
pub fn encode_struct(fields: &[(&str, &str)]) -> Vec<u8> {
    let size: usize = fields.iter().map(|(k, v)| k.len() + v.len() + 12).sum();
    let mut out = Vec::with_capacity(size);
    let mut value = Vec::new();
    let mut entry = Vec::new();
    for (name, text) in fields {
        value.clear();
        delimited(&mut value, 3, text.as_bytes());
        entry.clear();
        delimited(&mut entry, 1, name.as_bytes());
        delimited(&mut entry, 2, &value);
        delimited(&mut out, 1, &entry);
    }
    out
}

/// The argument of Envoy's `declare_property` foreign function
/// (`DeclarePropertyArguments` in Envoy's
/// source/extensions/common/wasm/ext/declare_property.proto): `name` = 1,
/// `readonly` = 2 (left false), `type` = 3 (`Protobuf` = 3), `schema` = 4 (the
/// type URL), `span` = 5 (`DownstreamRequest` = 1, the request's lifetime).
pub fn struct_declaration(name: &str) -> Vec<u8> {
    let mut out = Vec::with_capacity(name.len() + STRUCT_TYPE_URL.len() + 8);
    delimited(&mut out, 1, name.as_bytes());
    out.extend_from_slice(&[3 << 3, 3]);
    delimited(&mut out, 4, STRUCT_TYPE_URL.as_bytes());
    out.extend_from_slice(&[5 << 3, 1]);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn struct_of_two_string_fields() {
        let bytes = encode_struct(&[("a", "xy"), ("reason", "")]);
        assert_eq!(
            bytes,
            [
                0x0a, 9, 0x0a, 1, b'a', 0x12, 4, 0x1a, 2, b'x', b'y', //
                0x0a, 12, 0x0a, 6, b'r', b'e', b'a', b's', b'o', b'n', 0x12, 2, 0x1a, 0,
            ]
        );
        assert!(encode_struct(&[]).is_empty());
    }

    #[test]
    fn long_values_take_multi_byte_lengths() {
        let long = "s".repeat(300);
        let bytes = encode_struct(&[("scopes", &long)]);
        // entry: key (8) + value (3 + 3 + 300) = 314 bytes, as varint 0xba 0x02.
        assert_eq!(bytes.get(..3), Some(&[0x0a, 0xba, 0x02][..]));
        assert_eq!(bytes.len(), 3 + 314);
    }

    #[test]
    fn declaration_names_a_request_scoped_struct() {
        let d = struct_declaration("scopegate");
        let mut want = vec![0x0a, 9];
        want.extend_from_slice(b"scopegate");
        want.extend_from_slice(&[0x18, 3, 0x22, 42]);
        want.extend_from_slice(STRUCT_TYPE_URL.as_bytes());
        want.extend_from_slice(&[0x28, 1]);
        assert_eq!(d, want);
    }
}
