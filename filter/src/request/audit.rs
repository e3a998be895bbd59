//! The audit line: one JSON object per decision, for the host log. Values from
//! the token are JSON-escaped, so a claim cannot forge or split log lines; the
//! token itself and the query string (where tokens sometimes travel) never appear.

use crate::policy::config::Config;
use crate::policy::path;
use crate::request::decision::{Decision, Registration, Request};
use crate::vocab::reason::Reason;
use crate::vocab::time::rfc3339;
use serde_json::{json, Value};

/// What the audit line records of an mTLS client certificate.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PeerCertificate {
    pub subject: Option<String>,
    pub uri_sans: Vec<String>,
    pub dns_sans: Vec<String>,
}

/// What every audit line starts with: `scopegate report` (and anyone's grep)
/// finds the lines by it. serde_json writes members sorted by name and
/// "audit" sorts first today; `line` checks it stays so.
pub const MARKER: &str = r#"{"audit":"scopegate""#;

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
        "binding": d.bound.name(),
        "mode": if cfg.mode == crate::policy::config::Mode::DryRun { "dry_run" } else { "enforce" },
    });
    if let (Some(r), Some(obj)) = (&d.registration, line.as_object_mut()) {
        match r {
            Registration::Unregistered => {
                obj.insert("registered".into(), json!(false));
            }
            Registration::Registered {
                owner,
                dropped_scopes,
                ..
            } => {
                obj.insert("registered".into(), json!(true));
                obj.insert("owner".into(), json!(owner));
                if !dropped_scopes.is_empty() {
                    obj.insert("scopes_dropped".into(), json!(dropped_scopes));
                }
            }
        }
    }
    if let (true, Some(obj)) = (d.inventoried, line.as_object_mut()) {
        // Counted in an inventory line already: `scopegate report` counts
        // the request once.
        obj.insert("inventoried".into(), json!(true));
    }
    if let (Some(p), Some(obj)) = (peer, line.as_object_mut()) {
        obj.insert(
            "peer_certificate".into(),
            json!({"subject": p.subject, "uri_sans": p.uri_sans, "dns_sans": p.dns_sans}),
        );
    }
    let text = line.to_string();
    if text.starts_with(MARKER) {
        text
    } else {
        // A member sorting before "audit" was added: move the marker first.
        match text.strip_prefix('{') {
            Some(rest) => format!(
                "{MARKER},{}",
                rest.replacen(r#""audit":"scopegate","#, "", 1)
            ),
            None => text,
        }
    }
}

/// A per-worker budget of audit lines per reason and second: a flood of junk
/// tokens stays a counter, not a flood of log lines (CONTRACT §5). What the
/// budget holds back is summed in one `audit_suppressed` line per reason when
/// the second is over.
#[derive(Debug)]
pub struct AuditBudget {
    per_reason_per_s: u32,
    second: u64,
    used: Vec<(Reason, u32)>,
    suppressed: Vec<(Reason, u64)>,
}

impl AuditBudget {
    pub fn new(per_reason_per_s: u32) -> AuditBudget {
        AuditBudget {
            per_reason_per_s,
            second: 0,
            used: Vec::new(),
            suppressed: Vec::new(),
        }
    }

    /// May a line for `reason` be written at `now`? Also returns the summary
    /// lines of an earlier second that has ended.
    pub fn admit(&mut self, reason: Reason, now: u64) -> (bool, Vec<String>) {
        let summaries = self.roll(now);
        let used = match self.used.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => n,
            None => {
                self.used.push((reason, 0));
                match self.used.last_mut() {
                    Some((_, n)) => n,
                    None => return (true, summaries),
                }
            }
        };
        if *used < self.per_reason_per_s {
            *used += 1;
            return (true, summaries);
        }
        match self.suppressed.iter_mut().find(|(r, _)| *r == reason) {
            Some((_, n)) => *n += 1,
            None => self.suppressed.push((reason, 1)),
        }
        (false, summaries)
    }

    /// The summary lines of a second that has ended (called on every tick,
    /// so a flood that stops is still summed).
    pub fn roll(&mut self, now: u64) -> Vec<String> {
        if now == self.second {
            return Vec::new();
        }
        let start = self.second;
        self.second = now;
        self.used.clear();
        let mut lines: Vec<String> = self
            .suppressed
            .drain(..)
            .map(|(reason, n)| {
                json!({
                    "audit_suppressed": "scopegate",
                    "reason": reason.as_str(),
                    "suppressed": n,
                    "second": rfc3339(start),
                })
                .to_string()
            })
            .collect();
        lines.sort();
        lines
    }
}
