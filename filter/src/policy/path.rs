//! Request-path normalization. Rules are matched against the normalized path and
//! the upstream is sent that same path, so what was authorized is what is served.
//! Inputs whose meaning differs between servers are refused instead of guessed.

use std::fmt;

/// Longest path (without query) accepted.
pub const MAX_PATH_BYTES: usize = 8192;

#[derive(Clone, Debug, PartialEq, Eq)]
pub enum PathError {
    NotAbsolute,
    TooLong(usize),
    EncodedSlash,
    EncodedBackslash,
    Backslash,
    Nul,
    ControlOrNonAscii(u8),
    DoubleEncoding,
    BadPercent,
    Semicolon,
    Fragment,
}

impl fmt::Display for PathError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PathError::NotAbsolute => f.write_str("request path must start with '/'"),
            PathError::TooLong(n) => {
                write!(
                    f,
                    "request path is {n} bytes; the limit is {MAX_PATH_BYTES}"
                )
            }
            PathError::EncodedSlash => f.write_str(
                "encoded '/' (%2F) in the path is refused: servers disagree on its meaning",
            ),
            PathError::EncodedBackslash => f.write_str(
                "encoded '\\' (%5C) in the path is refused: some servers treat it as '/'",
            ),
            PathError::Backslash => {
                f.write_str("'\\' in the path is refused: some servers treat it as '/'")
            }
            PathError::Nul => f.write_str("NUL (%00) in the path is refused"),
            PathError::ControlOrNonAscii(b) => {
                write!(f, "byte 0x{b:02X} in the path must be percent-encoded")
            }
            PathError::DoubleEncoding => f.write_str(
                "double percent-encoding (%25 followed by hex digits) in the path is refused",
            ),
            PathError::BadPercent => {
                f.write_str("'%' in the path is not followed by two hex digits")
            }
            PathError::Semicolon => f.write_str(
                "';' path parameters are refused: some servers strip them before routing",
            ),
            PathError::Fragment => f.write_str("'#' fragment in the request path is refused"),
        }
    }
}

/// Splits a request target into its path and query (without the '?').
pub fn split_query(target: &str) -> (&str, Option<&str>) {
    match target.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (target, None),
    }
}

fn is_unreserved(b: u8) -> bool {
    b.is_ascii_alphanumeric() || matches!(b, b'-' | b'.' | b'_' | b'~')
}

fn hex(b: u8) -> Option<u8> {
    match b {
        b'0'..=b'9' => Some(b - b'0'),
        b'a'..=b'f' => Some(b - b'a' + 10),
        b'A'..=b'F' => Some(b - b'A' + 10),
        _ => None,
    }
}

fn hex_digit(n: u8) -> char {
    char::from(
        b"0123456789ABCDEF"
            .get(usize::from(n & 15))
            .copied()
            .unwrap_or(b'0'),
    )
}

/// Normalizes a path (no query): percent-encodings of unreserved characters are
/// decoded and the others upper-cased, dot-segments are resolved (RFC 3986
/// §5.2.4) and repeated slashes merged.
pub fn normalize(path: &str) -> Result<String, PathError> {
    absolute_and_bounded(path)?;
    if is_plain(path) {
        return Ok(path.to_string());
    }
    normalize_encoded(path.as_bytes())
}

fn absolute_and_bounded(path: &str) -> Result<(), PathError> {
    if !path.starts_with('/') {
        return Err(PathError::NotAbsolute);
    }
    if path.len() > MAX_PATH_BYTES {
        return Err(PathError::TooLong(path.len()));
    }
    Ok(())
}

/// A path that normalizing leaves as it is: visible ASCII without `%`, `\`,
/// `;` or `#`, and no empty (but the last), `.` or `..` segment. Nearly every
/// request's path is one, and this check costs a fraction of the full pass.
fn is_plain(path: &str) -> bool {
    let bytes = path.as_bytes();
    if bytes.first() != Some(&b'/') {
        return false;
    }
    // Length of the current segment, and whether it is all dots so far.
    let (mut len, mut dots) = (0usize, true);
    for &b in bytes.get(1..).unwrap_or_default() {
        if !matches!(b, b'!'..=b'~') || matches!(b, b'%' | b'\\' | b';' | b'#') {
            return false;
        }
        if b == b'/' {
            // An empty, `.` or `..` segment before this slash.
            if len == 0 || (dots && len <= 2) {
                return false;
            }
            (len, dots) = (0, true);
        } else {
            len += 1;
            dots &= b == b'.';
        }
    }
    // The last segment may be empty (a trailing slash), not `.` or `..`.
    !(dots && (1..=2).contains(&len))
}

/// `normalize` without the plain-path shortcut: the reference the fuzzer and
/// the tests hold the shortcut to.
#[doc(hidden)]
pub fn normalize_reference(path: &str) -> Result<String, PathError> {
    absolute_and_bounded(path)?;
    normalize_encoded(path.as_bytes())
}

/// The full normalization: `normalize` once the cheap checks are done.
fn normalize_encoded(bytes: &[u8]) -> Result<String, PathError> {
    // Pass 1: canonical percent-encoding, refusing ambiguous bytes.
    let mut decoded = String::with_capacity(bytes.len());
    let mut i = 0;
    while let Some(&b) = bytes.get(i) {
        match b {
            b'%' => {
                let (Some(hi), Some(lo)) = (
                    bytes.get(i + 1).copied().and_then(hex),
                    bytes.get(i + 2).copied().and_then(hex),
                ) else {
                    return Err(PathError::BadPercent);
                };
                let v = hi * 16 + lo;
                match v {
                    b'/' => return Err(PathError::EncodedSlash),
                    b'\\' => return Err(PathError::EncodedBackslash),
                    0 => return Err(PathError::Nul),
                    b'%' if bytes.get(i + 3).copied().and_then(hex).is_some()
                        && bytes.get(i + 4).copied().and_then(hex).is_some() =>
                    {
                        return Err(PathError::DoubleEncoding)
                    }
                    _ if is_unreserved(v) => decoded.push(char::from(v)),
                    _ => {
                        decoded.push('%');
                        decoded.push(hex_digit(v >> 4));
                        decoded.push(hex_digit(v & 15));
                    }
                }
                i += 3;
            }
            b'\\' => return Err(PathError::Backslash),
            b';' => return Err(PathError::Semicolon),
            b'#' => return Err(PathError::Fragment),
            0 => return Err(PathError::Nul),
            b'!'..=b'~' => {
                decoded.push(char::from(b));
                i += 1;
            }
            other => return Err(PathError::ControlOrNonAscii(other)),
        }
    }

    // Double encoding is judged on the result: `%25` followed by two hex
    // digits, whether they were written so or produced by decoding (`%255%62`
    // becomes `%255b`). Judging the input alone would let normalizing twice
    // give a different answer than normalizing once.
    let out_bytes = decoded.as_bytes();
    for (i, w) in out_bytes.windows(3).enumerate() {
        if w == b"%25"
            && out_bytes.get(i + 3).copied().and_then(hex).is_some()
            && out_bytes.get(i + 4).copied().and_then(hex).is_some()
        {
            return Err(PathError::DoubleEncoding);
        }
    }

    // Pass 2: segments. Empty segments (repeated slashes) are dropped; a path
    // that ends in '/', '.' or '..' keeps a trailing slash, as RFC 3986 does.
    let mut segments: Vec<&str> = Vec::new();
    let mut trailing_slash = false;
    for seg in decoded.split('/').skip(1) {
        trailing_slash = false;
        match seg {
            "" | "." => trailing_slash = true,
            ".." => {
                segments.pop();
                trailing_slash = true;
            }
            s => segments.push(s),
        }
    }
    let mut out = String::with_capacity(decoded.len());
    for s in &segments {
        out.push('/');
        out.push_str(s);
    }
    if trailing_slash || segments.is_empty() {
        out.push('/');
    }
    Ok(out)
}

/// The segments of a normalized path: "/" has none; "/a/" has "a" and "".
pub fn segments(normalized: &str) -> impl Iterator<Item = &str> {
    let rest = normalized.get(1..).unwrap_or_default();
    rest.split('/').filter(move |_| !rest.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_paths_take_the_short_way_to_the_same_result() {
        let alphabet = [
            "a", "b", "/", ".", "..", "%41", "%2e", "~", "-", ";", "%", "//", "Z", "9",
        ];
        let mut seed = 0x9e37_79b9_7f4a_7c15u64;
        for _ in 0..20_000 {
            let mut p = String::from("/");
            for _ in 0..(seed % 7) {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                p.push_str(alphabet[(seed % alphabet.len() as u64) as usize]);
            }
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let full = normalize_encoded(p.as_bytes());
            assert_eq!(normalize(&p), full, "{p}");
            if is_plain(&p) {
                assert_eq!(full.as_deref(), Ok(p.as_str()), "{p} is plain");
            }
        }
    }

    #[test]
    fn normalizes_equivalent_spellings() {
        let cases = [
            ("/", "/"),
            ("/a/b", "/a/b"),
            ("/a//b", "/a/b"),
            ("//a///b//", "/a/b/"),
            ("/a/./b", "/a/b"),
            ("/a/b/..", "/a/"),
            ("/a/b/../c", "/a/c"),
            ("/../../a", "/a"),
            ("/a/%2e%2E/b", "/b"),
            ("/a/.%2e/b", "/b"),
            ("/%61%62%63", "/abc"),
            ("/a%7e%2D%5f", "/a~-_"),
            ("/a%c3%a9", "/a%C3%A9"),
            ("/a%20b", "/a%20b"),
            ("/a%3bb", "/a%3Bb"),
            ("/%25", "/%25"),
            ("/a/.", "/a/"),
            ("/a/..%2f", "err"),
        ];
        for (input, want) in cases {
            let got = normalize(input).unwrap_or_else(|_| "err".to_string());
            assert_eq!(got, want, "{input}");
        }
    }

    #[test]
    fn refuses_ambiguous_paths() {
        let cases = [
            ("a/b", PathError::NotAbsolute),
            ("*", PathError::NotAbsolute),
            ("/a%2fb", PathError::EncodedSlash),
            ("/a%2Fb", PathError::EncodedSlash),
            ("/a%5cb", PathError::EncodedBackslash),
            ("/a\\b", PathError::Backslash),
            ("/a%00", PathError::Nul),
            ("/a%252e%252e/b", PathError::DoubleEncoding),
            // Found by fuzzing: the hex digits after %25 come from decoding.
            ("/a%255%62", PathError::DoubleEncoding),
            ("/a%25%34%31", PathError::DoubleEncoding),
            ("/a%2", PathError::BadPercent),
            ("/a%zz", PathError::BadPercent),
            ("/admin;x=1/users", PathError::Semicolon),
            ("/a#frag", PathError::Fragment),
            ("/a b", PathError::ControlOrNonAscii(b' ')),
            ("/a\tb", PathError::ControlOrNonAscii(b'\t')),
            ("/é", PathError::ControlOrNonAscii(0xC3)),
        ];
        for (input, want) in cases {
            assert_eq!(normalize(input), Err(want), "{input}");
        }
        let long = format!("/{}", "a".repeat(MAX_PATH_BYTES));
        assert!(matches!(normalize(&long), Err(PathError::TooLong(_))));
    }

    #[test]
    fn dot_segments_never_climb_above_root() {
        for input in ["/..", "/../..", "/a/../../..", "/%2e%2e/%2e%2e"] {
            assert_eq!(normalize(input).as_deref(), Ok("/"), "{input}");
        }
    }

    #[test]
    fn normalizing_twice_changes_nothing() {
        for input in ["/a/./b//c/../d/", "/%41%2e%2E/x", "/a%c3%A9/.", "//"] {
            let once = normalize(input).unwrap_or_default();
            assert_eq!(normalize(&once).as_deref(), Ok(once.as_str()), "{input}");
        }
    }

    #[test]
    fn splits_query_and_segments() {
        assert_eq!(split_query("/a?b=1?c"), ("/a", Some("b=1?c")));
        assert_eq!(split_query("/a"), ("/a", None));
        assert_eq!(segments("/").count(), 0);
        assert_eq!(segments("/a/").collect::<Vec<_>>(), ["a", ""]);
        assert_eq!(segments("/a/b").collect::<Vec<_>>(), ["a", "b"]);
    }
}
