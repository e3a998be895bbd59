//! Small text helpers for messages and header values built from untrusted input.

use std::borrow::Cow;

/// At most `max` characters of `s`, with an ellipsis when cut.
pub fn clip(s: &str, max: usize) -> String {
    match s.char_indices().nth(max) {
        None => s.to_string(),
        Some((i, _)) => format!("{}…", s.get(..i).unwrap_or_default()),
    }
}

/// Text safe inside an RFC 7230 quoted-string of a response header, and in a
/// log line: only visible ASCII and space survive, `"` and `\` become `'`.
/// Borrowed when nothing needs replacing, as for most of our own messages.
pub fn header_safe(s: &str) -> Cow<'_, str> {
    let safe = |b: u8| (b' '..=b'~').contains(&b) && b != b'"' && b != b'\\';
    if s.bytes().all(safe) {
        return Cow::Borrowed(s);
    }
    Cow::Owned(
        s.chars()
            .map(|c| match c {
                '"' | '\\' => '\'',
                ' '..='~' => c,
                _ => '?',
            })
            .collect(),
    )
}

/// True when a value may be sent as an HTTP header value as is: no control
/// characters (CR, LF, NUL and the rest) that could split or forge headers.
pub fn is_header_value_safe(s: &str) -> bool {
    !s.chars().any(|c| c.is_control())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clip_counts_characters_not_bytes() {
        assert_eq!(clip("héllo", 2), "hé…");
        assert_eq!(clip("abc", 3), "abc");
    }

    #[test]
    fn header_safe_removes_quotes_and_controls() {
        assert_eq!(header_safe("a\"b\\c\r\nd\u{200b}"), "a'b'c??d?");
    }

    #[test]
    fn header_value_safety() {
        assert!(is_header_value_safe("tenant-1 ü"));
        assert!(!is_header_value_safe("a\r\nx-admin: 1"));
        assert!(!is_header_value_safe("a\u{0}"));
    }
}
