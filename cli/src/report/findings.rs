//! From the totals to the report: each identity's figures, and the findings
//! a reviewer acts on (least privilege, offboarding, expiry, registration,
//! token lifetime, configuration hygiene).

use super::aggregate::{self, Seen, Tally};
use super::inputs::Known;
use super::model::{
    Dormant, Expiring, Findings, Identity, LeastPrivilege, LongLived, Meta, Outcomes, Overflow,
    Report, Summary, Timeline, Unregistered, UnrequiredScope,
};
use scopegate::vocab::time::rfc3339;
use std::collections::{BTreeMap, BTreeSet};

/// A registered identity expiring within this many days is reported.
pub const EXPIRY_WARNING_DAYS: u64 = 14;

/// At most this many buckets on the time axis.
const MAX_BUCKETS: u64 = 48;

const DAY: u64 = 86_400;

/// The report's settings.
pub struct Options {
    pub now: u64,
    pub since: Option<u64>,
    pub unused_days: u64,
    pub inputs: Vec<String>,
}

pub fn build(tally: &Tally, known: &Known, opts: &Options) -> Report {
    let timeline_axis = axis(tally);
    let mut identities: Vec<Identity> = Vec::new();
    for (provider, clients) in &tally.identities {
        for (client_id, seen) in clients {
            identities.push(identity(provider, client_id, seen, known, &timeline_axis));
        }
    }
    identities.sort_by(|a, b| (&a.provider, &a.client_id).cmp(&(&b.provider, &b.client_id)));
    let findings = Findings {
        least_privilege: least_privilege(&identities),
        dormant: dormant(tally, known, opts),
        expiring: expiring(known, opts),
        unregistered: unregistered(&identities),
        long_lived_tokens: long_lived(&identities, known),
        unused_rules: known.rules.as_ref().map(|rules| {
            let mut unused: Vec<String> = rules
                .iter()
                .filter(|r| !tally.rules_matched.contains_key(&r.name))
                .map(|r| r.name.clone())
                .collect();
            unused.sort();
            unused
        }),
        unrequired_scopes: unrequired_scopes(&identities, known),
    };
    let summary = summary(tally, &identities, &findings);
    let mut total = vec![0u64; usize::try_from(timeline_axis.buckets).unwrap_or(0)];
    for i in &identities {
        for (t, n) in total.iter_mut().zip(&i.activity) {
            *t += n;
        }
    }
    Report {
        report: Meta {
            format: 1,
            now: rfc3339(opts.now),
            since: opts.since.map(rfc3339),
            unused_days: opts.unused_days,
            expiry_warning_days: EXPIRY_WARNING_DAYS,
            config: known.rules.is_some(),
            registry: known.registry.is_some(),
            inputs: opts.inputs.clone(),
        },
        summary,
        identities,
        findings,
        timeline: Timeline {
            from: timeline_axis.from.map(rfc3339),
            to: timeline_axis
                .from
                .map(|f| rfc3339(f + timeline_axis.bucket_s * timeline_axis.buckets)),
            bucket_s: timeline_axis.bucket_s,
            buckets: timeline_axis.buckets,
            requests: total,
        },
    }
}

/// The time axis every identity's activity is put on.
struct Axis {
    from: Option<u64>,
    bucket_s: u64,
    buckets: u64,
}

impl Axis {
    fn index(&self, at: u64) -> Option<usize> {
        let from = self.from?;
        let i = at.saturating_sub(from) / self.bucket_s;
        usize::try_from(i.min(self.buckets.checked_sub(1)?)).ok()
    }
}

/// Buckets of a readable width (a minute up to a week), at most `MAX_BUCKETS`.
fn axis(tally: &Tally) -> Axis {
    const WIDTHS: [u64; 11] = [
        60,
        300,
        900,
        1800,
        3600,
        3 * 3600,
        6 * 3600,
        12 * 3600,
        DAY,
        7 * DAY,
        30 * DAY,
    ];
    let Some((first, last)) = tally.span else {
        return Axis {
            from: None,
            bucket_s: 3600,
            buckets: 0,
        };
    };
    let span = last.saturating_sub(first) + 1;
    let bucket_s = WIDTHS
        .iter()
        .copied()
        .find(|w| span.div_ceil(*w) < MAX_BUCKETS)
        .unwrap_or(365 * DAY);
    let from = first - first % bucket_s;
    let buckets = (last - from) / bucket_s + 1;
    Axis {
        from: Some(from),
        bucket_s,
        buckets,
    }
}

fn identity(provider: &str, client_id: &str, seen: &Seen, known: &Known, axis: &Axis) -> Identity {
    let entry = known.registered(provider, client_id);
    let unused: Vec<String> = seen.granted.difference(&seen.exercised).cloned().collect();
    let mut activity = vec![0u64; usize::try_from(axis.buckets).unwrap_or(0)];
    for (start, n) in seen.activity.bins() {
        if let Some(slot) = axis.index(*start).and_then(|i| activity.get_mut(i)) {
            *slot += n;
        }
    }
    Identity {
        provider: provider.to_string(),
        client_id: client_id.to_string(),
        subject: seen.subject.clone(),
        owner: entry
            .map(|e| e.owner.clone())
            .or_else(|| seen.owner.clone())
            .filter(|o| !o.trim().is_empty()),
        registered: match &known.registry {
            Some(_) => Some(entry.is_some()),
            None => seen.registered,
        },
        first_seen: rfc3339(seen.first_seen),
        last_seen: rfc3339(seen.last_seen),
        requests: seen.outcomes.requests,
        allowed: seen.outcomes.allowed,
        denied: seen.outcomes.denied.clone(),
        rules: seen.rules.clone(),
        scopes_granted: seen.granted.iter().cloned().collect(),
        scopes_exercised: seen.exercised.iter().cloned().collect(),
        scopes_unused: unused,
        exercised_complete: seen.exercised_complete,
        max_token_lifetime_s: seen.max_token_lifetime_s,
        max_token_age_s: seen.max_token_age_s,
        activity,
    }
}

fn least_privilege(identities: &[Identity]) -> Vec<LeastPrivilege> {
    identities
        .iter()
        .filter(|i| !i.scopes_unused.is_empty())
        .map(|i| LeastPrivilege {
            provider: i.provider.clone(),
            client_id: i.client_id.clone(),
            owner: i.owner.clone(),
            scopes_unused: i.scopes_unused.clone(),
            request_scopes: i.scopes_exercised.clone(),
            exercised_complete: i.exercised_complete,
        })
        .collect()
}

/// When a registry entry's identity was last seen: under its provider, or
/// for an entry of any provider, under any.
fn last_seen_of(tally: &Tally, provider: Option<&str>, client_id: &str) -> Option<u64> {
    tally
        .identities
        .iter()
        .filter(|(p, _)| provider.is_none_or(|want| want == p.as_str()))
        .filter_map(|(_, clients)| clients.get(client_id).map(|s| s.last_seen))
        .max()
}

fn dormant(tally: &Tally, known: &Known, opts: &Options) -> Option<Vec<Dormant>> {
    let entries = known.registry.as_ref()?;
    let cutoff = opts
        .now
        .saturating_sub(opts.unused_days.saturating_mul(DAY));
    let mut out: Vec<Dormant> = entries
        .iter()
        .filter(|e| e.active)
        .filter_map(|e| {
            let last = last_seen_of(tally, e.provider.as_deref(), &e.client_id);
            if last.is_some_and(|l| l >= cutoff) {
                return None;
            }
            Some(Dormant {
                provider: e.provider.clone(),
                client_id: e.client_id.clone(),
                owner: e.owner.clone(),
                last_seen: last.map(rfc3339),
                days_since_seen: last.map(|l| opts.now.saturating_sub(l) / DAY),
            })
        })
        .collect();
    out.sort_by(|a, b| (&a.provider, &a.client_id).cmp(&(&b.provider, &b.client_id)));
    Some(out)
}

fn expiring(known: &Known, opts: &Options) -> Option<Vec<Expiring>> {
    let entries = known.registry.as_ref()?;
    let horizon = opts.now.saturating_add(EXPIRY_WARNING_DAYS * DAY);
    let mut out: Vec<Expiring> = entries
        .iter()
        .filter(|e| e.active)
        .filter_map(|e| {
            let expires = e.expires.filter(|x| *x <= horizon)?;
            let left = i128::from(expires) - i128::from(opts.now);
            Some(Expiring {
                provider: e.provider.clone(),
                client_id: e.client_id.clone(),
                owner: e.owner.clone(),
                expires: rfc3339(expires),
                expired: expires <= opts.now,
                days_left: i64::try_from(left.div_euclid(i128::from(DAY))).unwrap_or(i64::MIN),
            })
        })
        .collect();
    out.sort_by(|a, b| {
        (&a.expires, &a.provider, &a.client_id).cmp(&(&b.expires, &b.provider, &b.client_id))
    });
    Some(out)
}

/// `registered` is the registry's word when there is one, else the lines'.
fn unregistered(identities: &[Identity]) -> Vec<Unregistered> {
    identities
        .iter()
        .filter(|i| i.registered == Some(false))
        .map(|i| Unregistered {
            provider: i.provider.clone(),
            client_id: i.client_id.clone(),
            requests: i.requests,
            last_seen: i.last_seen.clone(),
        })
        .collect()
}

fn long_lived(identities: &[Identity], known: &Known) -> Option<Vec<LongLived>> {
    known.rules.as_ref()?;
    Some(
        identities
            .iter()
            .filter_map(|i| {
                let max = *known.max_lifetime.get(&i.provider)?;
                let seen = i.max_token_lifetime_s.filter(|l| *l > max)?;
                Some(LongLived {
                    provider: i.provider.clone(),
                    client_id: i.client_id.clone(),
                    max_token_lifetime_s: seen,
                    max_lifetime_s: max,
                })
            })
            .collect(),
    )
}

fn unrequired_scopes(identities: &[Identity], known: &Known) -> Option<Vec<UnrequiredScope>> {
    let required = known.required_scopes()?;
    let mut found: BTreeMap<&str, (u64, u64)> = BTreeMap::new();
    for i in identities {
        for s in &i.scopes_granted {
            if !required.contains(s.as_str()) {
                found.entry(s).or_default().0 += 1;
            }
        }
    }
    for e in known.registry.iter().flatten() {
        let listed: BTreeSet<&str> = e.max_scopes.iter().flatten().map(String::as_str).collect();
        for s in listed {
            if !required.contains(s) {
                found.entry(s).or_default().1 += 1;
            }
        }
    }
    Some(
        found
            .into_iter()
            .map(|(scope, (identities, registry_entries))| UnrequiredScope {
                scope: scope.to_string(),
                identities,
                registry_entries,
            })
            .collect(),
    )
}

fn share(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    // Three decimals: a share, not a measurement.
    (part as f64 / whole as f64 * 1000.0).round() / 1000.0
}

fn summary(tally: &Tally, identities: &[Identity], findings: &Findings) -> Summary {
    let n = identities.len() as u64;
    let with_owner = identities.iter().filter(|i| i.owner.is_some()).count() as u64;
    let with_unused = findings.least_privilege.len() as u64;
    let mut all = aggregate::Outcomes::default();
    for clients in tally.identities.values() {
        for seen in clients.values() {
            all.merge(&seen.outcomes);
        }
    }
    all.merge(&tally.unidentified);
    all.merge(&tally.overflow.outcomes);
    let l = &tally.lines;
    Summary {
        identities: n,
        with_owner,
        with_owner_share: share(with_owner, n),
        with_unused_scopes: with_unused,
        with_unused_scopes_share: share(with_unused, n),
        dormant: findings.dormant.as_ref().map(|d| d.len() as u64),
        expiring: findings.expiring.as_ref().map(|e| e.len() as u64),
        unregistered: findings.unregistered.len() as u64,
        requests: all.requests,
        allowed: all.allowed,
        denied: all.denied,
        first_seen: tally.span.map(|s| rfc3339(s.0)),
        last_seen: tally.span.map(|s| rfc3339(s.1)),
        without_identity: Outcomes {
            requests: tally.unidentified.requests,
            allowed: tally.unidentified.allowed,
            denied: tally.unidentified.denied.clone(),
        },
        overflow: Overflow {
            lines: l.overflow,
            identities_max: tally.overflow.identities_max,
            requests: tally.overflow.outcomes.requests,
            allowed: tally.overflow.outcomes.allowed,
            denied: tally.overflow.outcomes.denied.clone(),
        },
        lines: l.clone(),
    }
}
