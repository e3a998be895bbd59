//! The identity inventory (CONTRACT §5.1): per worker, which verified machine
//! identities called, how often, with which outcome, on which rules, with
//! which scopes. Every `interval_s` each active identity becomes one JSON
//! line in the gateway log and the counts start again; `scopegate report`
//! reads the lines of every worker and gateway.
//!
//! Built for the request path: a request costs one hash lookup by client id
//! (no allocation once the identity is known) and a few counter updates.
//! Which scopes were exercised is worked out at flush time from the rules
//! that allowed the identity's requests.

use crate::policy::config::{Access, Config, InventorySettings as Settings};
use crate::request::decision::{Decision, Registration};
use crate::vocab::reason::Reason;
use crate::vocab::time::rfc3339;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

/// Longest line written: nginx (Kong) cuts error-log lines at 2 KiB.
pub const MAX_LINE_BYTES: usize = 1900;

#[derive(Debug, Default)]
struct Aggregate {
    subject: Option<String>,
    first_seen: u64,
    last_seen: u64,
    requests: u64,
    allowed: u64,
    denied: Vec<(Reason, u64)>,
    /// (rule index, requests, of which allowed).
    rules: Vec<(usize, u64, u64)>,
    scopes_presented: Vec<String>,
    /// The last scope text merged, to skip the merge for a repeated token.
    last_scopes: String,
    max_lifetime_s: Option<u64>,
    max_age_s: Option<u64>,
    registered: Option<bool>,
    owner: Option<String>,
}

#[derive(Debug, Default)]
struct Overflow {
    identities: u64,
    requests: u64,
    allowed: u64,
    denied: Vec<(Reason, u64)>,
    /// Identities counted this window (bounded like the table itself).
    seen: HashMap<(usize, String), ()>,
}

/// One worker's inventory for one configuration.
#[derive(Debug)]
pub struct Inventory {
    interval_s: u64,
    max_identities: usize,
    window_start: Option<u64>,
    /// Per provider, by client id.
    table: Vec<HashMap<String, Aggregate>>,
    tracked: usize,
    overflow: Overflow,
}

fn bump(list: &mut Vec<(Reason, u64)>, reason: Reason) {
    match list.iter_mut().find(|(r, _)| *r == reason) {
        Some((_, n)) => *n += 1,
        None => list.push((reason, 1)),
    }
}

impl Inventory {
    pub fn new(settings: &Settings, providers: usize) -> Inventory {
        Inventory {
            interval_s: settings.interval_s,
            max_identities: settings.max_identities,
            window_start: None,
            table: (0..providers).map(|_| HashMap::new()).collect(),
            tracked: 0,
            overflow: Overflow::default(),
        }
    }

    /// Counts a decision about a verified identity; false when the decision
    /// is not one the inventory counts (no verified token, no client id).
    pub fn record(&mut self, d: &Decision, now: u64) -> bool {
        let (Some(id), Some(provider)) = (d.identity.as_ref(), d.provider) else {
            return false;
        };
        let Some(client) = id.client_id.as_deref().or(id.subject.as_deref()) else {
            return false;
        };
        let Some(by_client) = self.table.get_mut(provider) else {
            return false;
        };
        self.window_start.get_or_insert(now);
        let allowed = d.is_allowed();
        if !by_client.contains_key(client) {
            if self.tracked >= self.max_identities {
                let o = &mut self.overflow;
                o.requests += 1;
                if allowed {
                    o.allowed += 1;
                } else {
                    bump(&mut o.denied, d.reason);
                }
                if o.seen.len() < self.max_identities
                    && o.seen.insert((provider, client.to_string()), ()).is_none()
                {
                    o.identities += 1;
                }
                return true;
            }
            self.tracked += 1;
            by_client.insert(
                client.to_string(),
                Aggregate {
                    subject: id.subject.clone(),
                    first_seen: now,
                    ..Aggregate::default()
                },
            );
        }
        let Some(a) = by_client.get_mut(client) else {
            return false;
        };
        a.last_seen = now;
        a.requests += 1;
        if allowed {
            a.allowed += 1;
        } else {
            bump(&mut a.denied, d.reason);
        }
        if let Some(rule) = d.rule {
            match a.rules.iter_mut().find(|(r, _, _)| *r == rule) {
                Some((_, n, ok)) => {
                    *n += 1;
                    *ok += u64::from(allowed);
                }
                None => a.rules.push((rule, 1, u64::from(allowed))),
            }
        }
        if a.last_scopes != id.scope_text {
            for s in &id.scopes {
                if !a.scopes_presented.contains(s) {
                    a.scopes_presented.push(s.clone());
                }
            }
            a.last_scopes.clone_from(&id.scope_text);
        }
        if let Some(iat) = id.iat {
            let lifetime = id.exp.saturating_sub(iat);
            a.max_lifetime_s = Some(a.max_lifetime_s.map_or(lifetime, |m| m.max(lifetime)));
            let age = now.saturating_sub(iat);
            a.max_age_s = Some(a.max_age_s.map_or(age, |m| m.max(age)));
        }
        match &d.registration {
            Some(Registration::Registered { owner, .. }) => {
                a.registered = Some(true);
                if a.owner.as_deref() != Some(owner) {
                    a.owner = Some(owner.clone());
                }
            }
            Some(Registration::Unregistered) => a.registered = Some(false),
            None => {}
        }
        true
    }

    /// The window is over: time to write the lines.
    pub fn due(&self, now: u64) -> bool {
        self.window_start
            .is_some_and(|start| now >= start.saturating_add(self.interval_s))
    }

    /// The lines of the window that ends now, one per identity (and one for
    /// the identities past `max_identities`); the counts start again.
    pub fn drain(&mut self, cfg: &Config, now: u64) -> Vec<String> {
        let Some(start) = self.window_start.take() else {
            return Vec::new();
        };
        let mut lines = Vec::with_capacity(self.tracked + 1);
        for (provider, by_client) in self.table.iter_mut().enumerate() {
            let name = cfg.providers.get(provider).map_or("", |p| p.name.as_str());
            let mut clients: Vec<(String, Aggregate)> = by_client.drain().collect();
            clients.sort_by(|a, b| a.0.cmp(&b.0));
            for (client, a) in clients {
                lines.push(identity_line(cfg, name, &client, &a, start, now));
            }
        }
        self.tracked = 0;
        let o = std::mem::take(&mut self.overflow);
        if o.requests > 0 {
            let line = json!({
                "version": 1,
                "overflow": true,
                "window_start": rfc3339(start),
                "window_end": rfc3339(now),
                "identities": o.identities,
                "requests": o.requests,
                "allowed": o.allowed,
                "denied": counts(&o.denied),
            });
            lines.push(marked(&line));
        }
        lines
    }
}

/// What every inventory line starts with: `scopegate report` (and anyone's
/// grep) finds the lines by it, so it must come first.
pub const MARKER: &str = r#"{"inventory":"scopegate""#;

/// The line's text: the marker, then the members of `body` (an object
/// without `inventory`). serde_json writes an object's members sorted by
/// name, which would put `allowed` before `inventory`; so the marker is
/// written by hand.
fn marked(body: &Value) -> String {
    let text = body.to_string();
    match text.strip_prefix('{') {
        Some("}") | None => format!("{MARKER}}}"),
        Some(rest) => format!("{MARKER},{rest}"),
    }
}

fn counts(list: &[(Reason, u64)]) -> Value {
    let mut m = Map::new();
    let mut sorted = list.to_vec();
    sorted.sort_by_key(|(r, _)| r.as_str());
    for (r, n) in sorted {
        m.insert(r.as_str().to_string(), json!(n));
    }
    Value::Object(m)
}

/// Scopes a rule that allowed a request required of it: all of `scopes`,
/// and those of `any_scopes` the identity presented.
fn exercised(cfg: &Config, a: &Aggregate) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for (rule, _, allowed) in &a.rules {
        if *allowed == 0 {
            continue;
        }
        let Some(Access::Token(req)) = cfg.rules.get(*rule).map(|r| &r.access) else {
            continue;
        };
        let any = req
            .any_scopes
            .iter()
            .filter(|s| a.scopes_presented.contains(s));
        for s in req.scopes.iter().chain(any) {
            if !out.contains(s) {
                out.push(s.clone());
            }
        }
    }
    out.sort();
    out
}

fn identity_line(
    cfg: &Config,
    provider: &str,
    client: &str,
    a: &Aggregate,
    start: u64,
    now: u64,
) -> String {
    let mut rules = Map::new();
    let mut sorted_rules: Vec<(&str, u64)> = a
        .rules
        .iter()
        .filter_map(|(i, n, _)| cfg.rules.get(*i).map(|r| (r.name.as_str(), *n)))
        .collect();
    sorted_rules.sort();
    for (name, n) in &sorted_rules {
        rules.insert((*name).to_string(), json!(n));
    }
    let mut presented = a.scopes_presented.clone();
    presented.sort();
    let mut line = json!({
        "version": 1,
        "window_start": rfc3339(start),
        "window_end": rfc3339(now),
        "provider": provider,
        "client_id": client,
        "subject": a.subject,
        "first_seen": rfc3339(a.first_seen),
        "last_seen": rfc3339(a.last_seen),
        "requests": a.requests,
        "allowed": a.allowed,
        "denied": counts(&a.denied),
        "rules": Value::Object(rules),
        "scopes_presented": presented,
        "scopes_exercised": exercised(cfg, a),
        "max_token_lifetime_s": a.max_lifetime_s,
        "max_token_age_s": a.max_age_s,
        "registered": a.registered,
        "owner": a.owner,
    });
    let mut text = marked(&line);
    // Too long for one log line: drop list members from the end of the
    // longest list until it fits, and say so.
    while text.len() > MAX_LINE_BYTES {
        let Some(obj) = line.as_object_mut() else {
            break;
        };
        obj.insert("truncated".into(), json!(true));
        let longest = ["scopes_presented", "scopes_exercised"]
            .into_iter()
            .max_by_key(|k| obj.get(*k).and_then(Value::as_array).map_or(0, Vec::len));
        let popped = longest
            .and_then(|k| obj.get_mut(k))
            .and_then(Value::as_array_mut)
            .and_then(Vec::pop)
            .is_some();
        if !popped {
            let rules = obj.get_mut("rules").and_then(Value::as_object_mut);
            let last = rules.as_ref().and_then(|r| r.keys().next_back().cloned());
            match (rules, last) {
                (Some(r), Some(k)) => {
                    r.remove(&k);
                }
                _ => break,
            }
        }
        text = marked(&line);
    }
    text
}
