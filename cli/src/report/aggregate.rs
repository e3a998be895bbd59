//! Adding lines up, per identity (provider + client id). Memory grows with
//! the number of identities, never with the number of lines: each identity
//! keeps counts, sets of names, and a bounded activity histogram.

use super::inputs::Known;
use super::line::{Audit, Inventory, Line, Text};
use scopegate::vocab::time::parse_rfc3339;
use serde::Serialize;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Requests, those allowed, and those denied by reason.
#[derive(Clone, Debug, Default)]
pub struct Outcomes {
    pub requests: u64,
    pub allowed: u64,
    pub denied: BTreeMap<String, u64>,
}

impl Outcomes {
    fn add(&mut self, requests: u64, allowed: u64, denied: &[(Text<'_>, u64)]) {
        self.requests = self.requests.saturating_add(requests);
        self.allowed = self.allowed.saturating_add(allowed);
        for (reason, n) in denied {
            bump(&mut self.denied, reason.as_str(), *n);
        }
    }

    pub fn merge(&mut self, other: &Outcomes) {
        self.requests = self.requests.saturating_add(other.requests);
        self.allowed = self.allowed.saturating_add(other.allowed);
        for (reason, n) in &other.denied {
            bump(&mut self.denied, reason, *n);
        }
    }
}

/// Adds `n` to `key`'s count, allocating the key only the first time.
pub fn bump(map: &mut BTreeMap<String, u64>, key: &str, n: u64) {
    match map.get_mut(key) {
        Some(v) => *v = v.saturating_add(n),
        None => {
            map.insert(key.to_string(), n);
        }
    }
}

fn insert(set: &mut BTreeSet<String>, item: &str) {
    if !set.contains(item) {
        set.insert(item.to_string());
    }
}

/// Requests over time, in at most `MAX_BINS` bins: when a new bin would
/// exceed that, bins double in width. Bounded whatever the time span.
#[derive(Clone, Debug)]
pub struct Activity {
    width: u64,
    /// (bin start, requests), sorted by start.
    bins: Vec<(u64, u64)>,
}

const MAX_BINS: usize = 64;

impl Default for Activity {
    fn default() -> Self {
        Activity {
            width: 60,
            bins: Vec::new(),
        }
    }
}

impl Activity {
    pub fn add(&mut self, at: u64, requests: u64) {
        let start = at - at % self.width;
        match self.bins.binary_search_by_key(&start, |b| b.0) {
            Ok(i) => {
                if let Some(b) = self.bins.get_mut(i) {
                    b.1 = b.1.saturating_add(requests);
                }
            }
            Err(i) => {
                self.bins.insert(i, (start, requests));
                if self.bins.len() > MAX_BINS {
                    self.coarsen();
                }
            }
        }
    }

    fn coarsen(&mut self) {
        self.width = self.width.saturating_mul(2);
        let mut merged: Vec<(u64, u64)> = Vec::with_capacity(self.bins.len() / 2 + 1);
        for (start, n) in self.bins.drain(..) {
            let start = start - start % self.width;
            match merged.last_mut() {
                Some(last) if last.0 == start => last.1 = last.1.saturating_add(n),
                _ => merged.push((start, n)),
            }
        }
        self.bins = merged;
    }

    /// (bin start, requests), oldest first.
    pub fn bins(&self) -> &[(u64, u64)] {
        &self.bins
    }
}

/// What the logs say of one identity.
#[derive(Debug, Default)]
pub struct Seen {
    pub owner: Option<String>,
    pub registered: Option<bool>,
    pub subject: Option<String>,
    /// When `owner`/`registered`/`subject` were last said (the latest line wins).
    said_at: u64,
    pub first_seen: u64,
    pub last_seen: u64,
    pub outcomes: Outcomes,
    pub rules: BTreeMap<String, u64>,
    pub granted: BTreeSet<String>,
    pub exercised: BTreeSet<String>,
    /// False when an allowed request's rule is unknown (no `--config`, or a
    /// rule the configuration does not have): `exercised` is then a lower bound.
    pub exercised_complete: bool,
    pub max_token_lifetime_s: Option<u64>,
    pub max_token_age_s: Option<u64>,
    pub activity: Activity,
}

impl Seen {
    fn new(at: u64) -> Self {
        Seen {
            first_seen: at,
            last_seen: at,
            exercised_complete: true,
            ..Seen::default()
        }
    }

    fn seen(&mut self, first: u64, last: u64) {
        self.first_seen = self.first_seen.min(first);
        self.last_seen = self.last_seen.max(last);
    }

    fn said(
        &mut self,
        at: u64,
        owner: Option<&Text>,
        registered: Option<bool>,
        subject: Option<&Text>,
    ) {
        if at < self.said_at {
            return;
        }
        self.said_at = at;
        if let Some(o) = owner {
            self.owner = Some(o.as_str().to_string());
        }
        if registered.is_some() {
            self.registered = registered;
        }
        if let Some(s) = subject {
            if self.subject.as_deref() != Some(s.as_str()) {
                self.subject = Some(s.as_str().to_string());
            }
        }
    }
}

/// How many lines of each kind were read; the report's `lines` member.
#[derive(Clone, Debug, Default, Serialize)]
pub struct LineCounts {
    pub read: u64,
    pub inventory: u64,
    pub audit: u64,
    /// Audit lines of requests an inventory line counts (`inventoried`).
    pub audit_inventoried: u64,
    pub overflow: u64,
    /// Neither kind.
    pub skipped: u64,
    /// A marker without a readable object after it.
    pub malformed: u64,
    /// Older than `--since`.
    pub before_since: u64,
    /// Longer than the reader takes (not parsed).
    pub oversized: u64,
}

/// What overflow lines say: identities past the filter's bound.
#[derive(Clone, Debug, Default)]
pub struct Overflow {
    /// The largest number of untracked identities one line reports.
    pub identities_max: u64,
    pub outcomes: Outcomes,
}

/// The running totals of a report.
#[derive(Default)]
pub struct Tally {
    /// provider → client id → what was seen.
    pub identities: HashMap<String, HashMap<String, Seen>>,
    pub lines: LineCounts,
    /// Audit lines of requests without a verified identity.
    pub unidentified: Outcomes,
    pub overflow: Overflow,
    /// Requests per rule name, from every line that names one.
    pub rules_matched: BTreeMap<String, u64>,
    /// The earliest and latest instants of the lines counted.
    pub span: Option<(u64, u64)>,
    /// The first few malformed lines' faults, for a warning.
    pub malformed_examples: Vec<String>,
    since: Option<u64>,
}

impl Tally {
    pub fn new(since: Option<u64>) -> Self {
        Tally {
            since,
            ..Tally::default()
        }
    }

    /// Counts one line (its bytes, without the newline).
    pub fn add_line(&mut self, known: &Known, bytes: &[u8]) {
        self.lines.read += 1;
        match super::line::parse(bytes) {
            Line::Other => self.lines.skipped += 1,
            Line::Malformed(why) => self.malformed(why),
            Line::Inventory(inv) => self.inventory(&inv),
            Line::Audit(a) => self.audit(known, &a),
        }
    }

    fn malformed(&mut self, why: String) {
        self.lines.malformed += 1;
        if self.malformed_examples.len() < 3 {
            self.malformed_examples
                .push(format!("line {}: {why}", self.lines.read));
        }
    }

    fn extend_span(&mut self, first: u64, last: u64) {
        self.span = Some(match self.span {
            None => (first, last),
            Some((a, b)) => (a.min(first), b.max(last)),
        });
    }

    fn inventory(&mut self, inv: &Inventory<'_>) {
        let instant = |t: &Option<Text>| t.as_ref().and_then(|t| parse_rfc3339(t.as_str()));
        let window_start = instant(&inv.window_start);
        let window_end = instant(&inv.window_end);
        let Some(first) = instant(&inv.first_seen).or(window_start).or(window_end) else {
            return self.malformed("an inventory line without a time".into());
        };
        let last = instant(&inv.last_seen)
            .or(window_end)
            .unwrap_or(first)
            .max(first);
        if self.since.is_some_and(|s| last < s) {
            self.lines.before_since += 1;
            return;
        }
        if inv.overflow {
            self.lines.overflow += 1;
            let o = &mut self.overflow;
            o.identities_max = o.identities_max.max(inv.identities.unwrap_or(0));
            o.outcomes.add(inv.requests, inv.allowed, &inv.denied);
            self.extend_span(first, last);
            return;
        }
        let (Some(provider), Some(client_id)) = (&inv.provider, &inv.client_id) else {
            return self.malformed("an inventory line without provider and client_id".into());
        };
        self.lines.inventory += 1;
        self.extend_span(first, last);
        for (rule, n) in &inv.rules {
            bump(&mut self.rules_matched, rule.as_str(), *n);
        }
        let Some(seen) = entry(
            &mut self.identities,
            provider.as_str(),
            client_id.as_str(),
            first,
        ) else {
            return;
        };
        seen.seen(first, last);
        seen.said(
            last,
            inv.owner.as_ref(),
            inv.registered,
            inv.subject.as_ref(),
        );
        seen.outcomes.add(inv.requests, inv.allowed, &inv.denied);
        for (rule, n) in &inv.rules {
            bump(&mut seen.rules, rule.as_str(), *n);
        }
        for s in &inv.scopes_presented {
            insert(&mut seen.granted, s.as_str());
        }
        for s in &inv.scopes_exercised {
            insert(&mut seen.exercised, s.as_str());
        }
        seen.max_token_lifetime_s = seen.max_token_lifetime_s.max(inv.max_token_lifetime_s);
        seen.max_token_age_s = seen.max_token_age_s.max(inv.max_token_age_s);
        seen.activity
            .add(window_start.unwrap_or(first), inv.requests);
    }

    fn audit(&mut self, known: &Known, a: &Audit<'_>) {
        let Some(at) = a.time.as_ref().and_then(|t| parse_rfc3339(t.as_str())) else {
            return self.malformed("an audit line without a valid time".into());
        };
        if self.since.is_some_and(|s| at < s) {
            self.lines.before_since += 1;
            return;
        }
        if a.inventoried {
            // An inventory line counts this request already.
            self.lines.audit_inventoried += 1;
            return;
        }
        self.lines.audit += 1;
        self.extend_span(at, at);
        let allowed = a.allowed();
        let reason = a.reason.as_ref().map_or("unknown", Text::as_str);
        let denied = [(Text(reason.into()), 1)];
        let denied: &[(Text, u64)] = if allowed { &[] } else { &denied };
        if let Some(rule) = &a.rule {
            bump(&mut self.rules_matched, rule.as_str(), 1);
        }
        let (Some(provider), Some(client_id)) = (&a.provider, &a.client_id) else {
            self.unidentified.add(1, u64::from(allowed), denied);
            return;
        };
        let Some(seen) = entry(
            &mut self.identities,
            provider.as_str(),
            client_id.as_str(),
            at,
        ) else {
            return;
        };
        seen.seen(at, at);
        seen.said(at, a.owner.as_ref(), a.registered, a.subject.as_ref());
        seen.outcomes.add(1, u64::from(allowed), denied);
        if let Some(rule) = &a.rule {
            bump(&mut seen.rules, rule.as_str(), 1);
        }
        for s in &a.scopes {
            insert(&mut seen.granted, s.as_str());
        }
        if allowed {
            match a.rule.as_ref().map(|r| known.rule(r.as_str())) {
                Some(Some(rule)) => {
                    for s in rule.exercised(&a.scopes) {
                        insert(&mut seen.exercised, s);
                    }
                }
                // A rule the configuration does not name (or no --config).
                Some(None) => seen.exercised_complete = false,
                // Allowed by no rule (`default_action: allow`): no scope used.
                None => {}
            }
        }
        seen.activity.add(at, 1);
    }
}

/// The identity's record, created at its first line. Two levels, and a
/// lookup before any insert, so that a known identity costs no allocation.
/// (`None` cannot happen: the record was just made.)
fn entry<'m>(
    map: &'m mut HashMap<String, HashMap<String, Seen>>,
    provider: &str,
    client_id: &str,
    at: u64,
) -> Option<&'m mut Seen> {
    if !map.contains_key(provider) {
        map.insert(provider.to_string(), HashMap::new());
    }
    let clients = map.get_mut(provider)?;
    if !clients.contains_key(client_id) {
        clients.insert(client_id.to_string(), Seen::new(at));
    }
    clients.get_mut(client_id)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn activity_stays_bounded_and_keeps_every_request() {
        let mut a = Activity::default();
        for i in 0..10_000u64 {
            a.add(1_800_000_000 + i * 60, 2);
        }
        assert!(a.bins().len() <= MAX_BINS);
        assert_eq!(a.bins().iter().map(|b| b.1).sum::<u64>(), 20_000);
        assert!(a.bins().windows(2).all(|w| w[0].0 < w[1].0));
    }
}
