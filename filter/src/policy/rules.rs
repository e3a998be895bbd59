//! The scope-to-route map: path patterns compiled once, and the first-match
//! lookup run per request.

use crate::policy::path;

#[derive(Clone, Debug, PartialEq, Eq)]
enum Segment {
    Literal(String),
    /// `*` or `{name}`: exactly one non-empty segment.
    One,
    /// `**`, last only: zero or more segments.
    Rest,
}

#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PathPattern {
    source: String,
    segments: Vec<Segment>,
}

impl PathPattern {
    /// Compiles a pattern. Literal segments must already be in normalized form,
    /// since they are compared with normalized request paths.
    pub fn parse(source: &str) -> Result<Self, String> {
        if !source.starts_with('/') {
            return Err("must start with '/'".into());
        }
        if source.contains('?') {
            return Err("must not contain a query ('?'): rules match the path only".into());
        }
        let raw: Vec<&str> = if source == "/" {
            Vec::new()
        } else {
            source.get(1..).unwrap_or_default().split('/').collect()
        };
        let last = raw.len().saturating_sub(1);
        let mut segments = Vec::with_capacity(raw.len());
        for (i, seg) in raw.iter().enumerate() {
            let compiled = match *seg {
                "**" if i == last => Segment::Rest,
                "**" => return Err("'**' is allowed only as the last segment".into()),
                "*" => Segment::One,
                s if s.starts_with('{') && s.ends_with('}') => {
                    let name = s.get(1..s.len() - 1).unwrap_or_default();
                    if !is_identifier(name) {
                        return Err(format!(
                            "'{s}' is not a valid parameter: use {{name}} with letters, digits and '_'"
                        ));
                    }
                    Segment::One
                }
                "" if i == last && i > 0 => Segment::Literal(String::new()),
                "" => {
                    return Err(
                        "empty segment ('//'); paths are matched after merging slashes".into(),
                    )
                }
                "." | ".." => {
                    return Err("dot segments are resolved before matching; remove them".into())
                }
                s if s.contains(['*', '{', '}']) => {
                    return Err(format!(
                        "'{s}': wildcards and parameters must be whole segments"
                    ))
                }
                s => {
                    let norm = path::normalize(&format!("/{s}")).map_err(|e| e.to_string())?;
                    if norm != format!("/{s}") {
                        return Err(format!(
                            "segment '{s}' is not in normalized form; write '{}'",
                            norm.get(1..).unwrap_or_default()
                        ));
                    }
                    Segment::Literal(s.to_string())
                }
            };
            segments.push(compiled);
        }
        Ok(PathPattern {
            source: source.to_string(),
            segments,
        })
    }

    pub fn as_str(&self) -> &str {
        &self.source
    }

    /// Matches a normalized path.
    pub fn matches(&self, normalized: &str) -> bool {
        let mut it = path::segments(normalized);
        for seg in &self.segments {
            match seg {
                Segment::Rest => return true,
                Segment::One => match it.next() {
                    Some(s) if !s.is_empty() => {}
                    _ => return false,
                },
                Segment::Literal(l) => match it.next() {
                    Some(s) if s == l => {}
                    _ => return false,
                },
            }
        }
        it.next().is_none()
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(pattern: &str, path: &str) -> bool {
        PathPattern::parse(pattern)
            .map(|p| p.matches(path))
            .unwrap_or(false)
    }

    #[test]
    fn literal_segments_match_themselves_only() {
        assert!(m("/healthz", "/healthz"));
        assert!(!m("/healthz", "/healthz/"));
        assert!(!m("/healthz", "/healthz/x"));
        assert!(!m("/healthz", "/Healthz"));
        assert!(m("/", "/"));
        assert!(!m("/", "/a"));
    }

    #[test]
    fn single_wildcards_match_exactly_one_non_empty_segment() {
        assert!(m("/payments/{id}/refunds", "/payments/42/refunds"));
        assert!(!m("/payments/{id}/refunds", "/payments/refunds"));
        assert!(!m("/payments/{id}/refunds", "/payments/1/2/refunds"));
        assert!(m("/a/*", "/a/b"));
        assert!(!m("/a/*", "/a/"));
        assert!(!m("/a/*", "/a"));
    }

    #[test]
    fn double_wildcard_matches_zero_or_more_segments() {
        for p in ["/payments", "/payments/", "/payments/1", "/payments/1/2/3"] {
            assert!(m("/payments/**", p), "{p}");
        }
        assert!(!m("/payments/**", "/paymentsx"));
        assert!(!m("/payments/**", "/"));
        assert!(m("/**", "/"));
        assert!(m("/**", "/anything/at/all"));
    }

    #[test]
    fn refuses_bad_patterns() {
        for bad in [
            "payments", "/a/**/b", "/a//b", "/a/./b", "/a/../b", "/a/b*", "/a/{1x}", "/a/{}",
            "/a?x=1", "/a%2Fb", "/%61", "/a;b",
        ] {
            assert!(PathPattern::parse(bad).is_err(), "{bad}");
        }
        let msg = PathPattern::parse("/%61").err().unwrap_or_default();
        assert!(msg.contains("write 'a'"), "{msg}");
    }
}
