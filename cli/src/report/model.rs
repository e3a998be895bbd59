//! The report as data: what `--format json` prints, member for member, and
//! what the text and HTML pages render. docs/report.md documents every
//! member; add members, never rename or remove them. Lists are sorted and
//! maps are ordered, so the same logs always give the same bytes.

use super::aggregate::LineCounts;
use serde::Serialize;
use std::collections::BTreeMap;

#[derive(Debug, Serialize)]
pub struct Report {
    pub report: Meta,
    pub summary: Summary,
    pub identities: Vec<Identity>,
    pub findings: Findings,
    pub timeline: Timeline,
}

/// How the report was made.
#[derive(Debug, Serialize)]
pub struct Meta {
    /// The version of this format.
    pub format: u32,
    /// `--now`: the instant "dormant" and "expiring" are judged at.
    pub now: String,
    pub since: Option<String>,
    pub unused_days: u64,
    pub expiry_warning_days: u64,
    /// Whether `--config` was given (rule findings need it).
    pub config: bool,
    /// Whether a registry was known (`--registry`, or the configuration's inline one).
    pub registry: bool,
    /// The LOG arguments, as given.
    pub inputs: Vec<String>,
}

#[derive(Debug, Default, Serialize)]
pub struct Outcomes {
    pub requests: u64,
    pub allowed: u64,
    pub denied: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct Summary {
    /// Identities (provider + client id) seen.
    pub identities: u64,
    /// Of these, with a documented owner.
    pub with_owner: u64,
    /// `with_owner / identities` (0 when there are none), 3 decimals.
    pub with_owner_share: f64,
    /// Identities granted scopes they never exercised.
    pub with_unused_scopes: u64,
    pub with_unused_scopes_share: f64,
    /// Registered identities not seen for `unused_days`; null without a registry.
    pub dormant: Option<u64>,
    /// Registered identities expired or expiring soon; null without a registry.
    pub expiring: Option<u64>,
    /// Identities seen that are not registered.
    pub unregistered: u64,
    /// Every request counted: identities, requests without one, and overflow.
    pub requests: u64,
    pub allowed: u64,
    pub denied: BTreeMap<String, u64>,
    /// The earliest and latest instants of the lines counted.
    pub first_seen: Option<String>,
    pub last_seen: Option<String>,
    /// Requests without a verified identity (audit lines).
    pub without_identity: Outcomes,
    /// Identities past the filter's bound (overflow lines): not tracked one by one.
    pub overflow: Overflow,
    pub lines: LineCounts,
}

#[derive(Debug, Serialize)]
pub struct Overflow {
    pub lines: u64,
    /// The largest number of untracked identities one line reports.
    pub identities_max: u64,
    pub requests: u64,
    pub allowed: u64,
    pub denied: BTreeMap<String, u64>,
}

#[derive(Debug, Serialize)]
pub struct Identity {
    pub provider: String,
    pub client_id: String,
    pub subject: Option<String>,
    pub owner: Option<String>,
    /// null: no registry, and no line said.
    pub registered: Option<bool>,
    pub first_seen: String,
    pub last_seen: String,
    pub requests: u64,
    pub allowed: u64,
    pub denied: BTreeMap<String, u64>,
    /// Requests per matched rule.
    pub rules: BTreeMap<String, u64>,
    /// Scopes its tokens presented.
    pub scopes_granted: Vec<String>,
    /// Scopes rules that allowed its requests required.
    pub scopes_exercised: Vec<String>,
    /// Granted, never exercised.
    pub scopes_unused: Vec<String>,
    /// False when some allowed request's rule is unknown (no --config, or not
    /// in it): `scopes_exercised` is then a lower bound.
    pub exercised_complete: bool,
    pub max_token_lifetime_s: Option<u64>,
    pub max_token_age_s: Option<u64>,
    /// Requests per `timeline` bucket.
    pub activity: Vec<u64>,
}

#[derive(Debug, Serialize)]
pub struct Findings {
    /// Identities with granted scopes they never exercised.
    pub least_privilege: Vec<LeastPrivilege>,
    /// Registered, active identities not seen for `unused_days`; null without a registry.
    pub dormant: Option<Vec<Dormant>>,
    /// Registered, active identities past or within `expiry_warning_days` of `expires`.
    pub expiring: Option<Vec<Expiring>>,
    /// Identities seen that the registry does not list (or whose lines say so).
    pub unregistered: Vec<Unregistered>,
    /// Tokens longer-lived than their provider's `max_lifetime_s`; null without --config.
    pub long_lived_tokens: Option<Vec<LongLived>>,
    /// Rules no line names; null without --config.
    pub unused_rules: Option<Vec<String>>,
    /// Scopes granted (or allowed by the registry) that no rule requires; null without --config.
    pub unrequired_scopes: Option<Vec<UnrequiredScope>>,
}

#[derive(Debug, Serialize)]
pub struct LeastPrivilege {
    pub provider: String,
    pub client_id: String,
    pub owner: Option<String>,
    pub scopes_unused: Vec<String>,
    /// The narrowed set to ask the authorization server for: those exercised.
    pub request_scopes: Vec<String>,
    pub exercised_complete: bool,
}

#[derive(Debug, Serialize)]
pub struct Dormant {
    /// null: the entry is for any provider.
    pub provider: Option<String>,
    pub client_id: String,
    pub owner: String,
    /// null: never seen in these logs.
    pub last_seen: Option<String>,
    pub days_since_seen: Option<u64>,
}

#[derive(Debug, Serialize)]
pub struct Expiring {
    pub provider: Option<String>,
    pub client_id: String,
    pub owner: String,
    pub expires: String,
    pub expired: bool,
    /// Whole days from `now` to `expires` (negative: past).
    pub days_left: i64,
}

#[derive(Debug, Serialize)]
pub struct Unregistered {
    pub provider: String,
    pub client_id: String,
    pub requests: u64,
    pub last_seen: String,
}

#[derive(Debug, Serialize)]
pub struct LongLived {
    pub provider: String,
    pub client_id: String,
    pub max_token_lifetime_s: u64,
    pub max_lifetime_s: u64,
}

#[derive(Debug, Serialize)]
pub struct UnrequiredScope {
    pub scope: String,
    /// Identities granted it.
    pub identities: u64,
    /// Registry entries whose `max_scopes` list it.
    pub registry_entries: u64,
}

/// The time axis of `activity`: `buckets` buckets of `bucket_s` seconds from `from`.
#[derive(Debug, Serialize)]
pub struct Timeline {
    pub from: Option<String>,
    /// The end of the last bucket.
    pub to: Option<String>,
    pub bucket_s: u64,
    pub buckets: u64,
    /// All identities' requests per bucket.
    pub requests: Vec<u64>,
}
