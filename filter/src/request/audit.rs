//! The audit line: one JSON object per decision, for the host log. Values from
//! the token are JSON-escaped, so a claim cannot forge or split log lines; the
//! token itself and the query string (where tokens sometimes travel) never appear.

use crate::policy::config::Config;
use crate::policy::path;
use crate::request::decision::{Decision, Request};
use serde_json::{json, Value};

/// What the audit line records of an mTLS client certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerCertificate {
    pub subject: Option<String>,
    pub uri_sans: Vec<String>,
    pub dns_sans: Vec<String>,
}

pub fn line(
    cfg: &Config,
    req: &Request<'_>,
    d: &Decision,
    source: Option<&str>,
    peer: Option<&PeerCertificate>,
    now: u64,
) -> String {
    let id = d.identity.as_ref();
    let rule = d
        .rule
        .and_then(|i| cfg.rules.get(i))
        .map(|r| r.name.as_str());
    let provider = d
        .provider
        .and_then(|i| cfg.providers.get(i))
        .map(|p| p.name.as_str());
    let path = d
        .normalized_path
        .as_deref()
        .unwrap_or_else(|| path::split_query(req.path).0);
    let opt = |v: Option<&str>| v.map_or(Value::Null, |s| json!(s));
    let mut line = json!({
        "audit": "scopegate",
        "time": rfc3339(now),
        "decision": if d.is_allowed() { "allow" } else { "deny" },
        "reason": d.reason.as_str(),
        "message": d.message(),
        "rule": opt(rule),
        "provider": opt(provider),
        "subject": opt(id.and_then(|i| i.subject.as_deref())),
        "client_id": opt(id.and_then(|i| i.client_id.as_deref())),
        "scopes": id.map_or(Value::Null, |i| json!(i.scopes)),
        "jti": opt(id.and_then(|i| i.jti.as_deref())),
        "method": crate::vocab::text::clip(req.method, 32),
        "path": crate::vocab::text::clip(path, 512),
        "source": opt(source),
        "mode": if cfg.mode == crate::policy::config::Mode::DryRun { "dry_run" } else { "enforce" },
    });
    if let (Some(p), Some(obj)) = (peer, line.as_object_mut()) {
        obj.insert(
            "peer_certificate".into(),
            json!({"subject": p.subject, "uri_sans": p.uri_sans, "dns_sans": p.dns_sans}),
        );
    }
    line.to_string()
}

/// Unix seconds → `YYYY-MM-DDTHH:MM:SSZ` (proleptic Gregorian, UTC).
pub fn rfc3339(unix: u64) -> String {
    let days = unix / 86_400;
    let secs = unix % 86_400;
    // Civil-from-days (H. Hinnant's algorithm), shifted so eras start in March.
    let z = days as i64 + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = doy - (153 * mp + 2) / 5 + 1;
    let month = if mp < 10 { mp + 3 } else { mp - 9 };
    let year = yoe + era * 400 + i64::from(month <= 2);
    format!(
        "{year:04}-{month:02}-{day:02}T{:02}:{:02}:{:02}Z",
        secs / 3600,
        secs % 3600 / 60,
        secs % 60
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn formats_known_instants() {
        assert_eq!(rfc3339(0), "1970-01-01T00:00:00Z");
        assert_eq!(rfc3339(951_782_400), "2000-02-29T00:00:00Z");
        assert_eq!(rfc3339(1_795_392_000), "2026-11-23T00:00:00Z");
        assert_eq!(rfc3339(4_102_444_799), "2099-12-31T23:59:59Z");
    }
}
