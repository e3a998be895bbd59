//! Any request target and rule pattern: normalization is idempotent and
//! leaves nothing a server could read as another path; matching never panics;
//! a decision without a token never allows a protected route.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use scopegate::request::decision::{decide, Request};
use scopegate::policy::path;
use scopegate::vocab::reason::Reason;
use scopegate::policy::rules::PathPattern;
use scopegate::identity::validate::NoRemoteKeys;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let (target, pattern) = text.split_once('\n').unwrap_or((&text, "/payments/**"));
    let (raw, _query) = path::split_query(target);
    assert_eq!(path::normalize(raw), path::normalize_reference(raw), "shortcut differs: {raw:?}");
    if let Ok(n) = path::normalize(raw) {
        assert_eq!(path::normalize(&n).as_deref(), Ok(n.as_str()), "not idempotent: {raw:?}");
        assert!(n.starts_with('/'));
        assert!(!n.contains("//"), "{n:?}");
        for seg in path::segments(&n) {
            assert!(seg != "." && seg != "..", "{n:?}");
        }
        let lower = n.to_ascii_lowercase();
        for bad in ["%2f", "%5c", "%00", "%2e", "\\", ";"] {
            assert!(!lower.contains(bad), "{n:?} contains {bad}");
        }
        if let Ok(p) = PathPattern::parse(pattern) {
            let _ = p.matches(&n);
        }
    }
    for method in ["GET", "POST", "DELETE"] {
        let d = decide(common::config(), &Request::new(method, target, &[]), &NoRemoteKeys, 1_800_000_000);
        // Without a valid token only the public route may be allowed (a token
        // may still come from the query, where it is junk).
        assert!(!d.is_allowed() || d.reason == Reason::PublicRoute, "{method} {target:?}: {:?}", d.reason);
        if d.reason == Reason::PublicRoute {
            assert_eq!(d.normalized_path.as_deref(), Some("/healthz"));
        }
    }
});
