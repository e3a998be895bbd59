//! Which rate limits apply to an allowed request, and what the caller is told
//! (CONTRACT §1.5). The buckets themselves are `ratelimit`'s; this module
//! picks the policies (the identity's own from the registry, else the
//! default; plus the matched rule's) and builds the response fields.

use crate::identity::shared::SharedStore;
use crate::policy::config::{Config, LimitKey, RateLimits};
use crate::policy::limit::LimitSpec;
use crate::request::decision::{Decision, Registration};
use crate::request::lease::Leases;
use crate::request::ratelimit::{policy_header, ratelimit_header, Limiter, Policy, Tracking, Who};

/// Name of the identity-wide policy in `RateLimit` fields: the default one.
pub const DEFAULT_POLICY: &str = "default";
/// Name of an identity's own limit from the registry.
pub const IDENTITY_POLICY: &str = "identity";

/// The limits of one configuration, built once when it is applied, with the
/// worker's leases of their tokens.
#[derive(Debug)]
pub struct Limits {
    limiter: Limiter,
    leases: Leases,
    settings: RateLimits,
    default: Option<Policy>,
    /// Per rule, its own limit.
    rules: Vec<Option<Policy>>,
}

/// What the limits made of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Checked {
    pub allowed: bool,
    /// Names of the policies that refused it.
    pub refused_by: Vec<String>,
    /// `Retry-After` seconds for a refusal.
    pub retry_after_s: Option<u64>,
    /// `RateLimit-Policy` and `RateLimit` values.
    pub fields: Option<(String, String)>,
    /// Some policy found no slot for the identity (raise `max_identities`).
    pub overflow: bool,
}

fn policy(id: u16, name: &str, spec: LimitSpec) -> Option<Policy> {
    // The configuration checked name and numbers; a refusal here cannot
    // happen, and would leave that limit out rather than stop the filter.
    Policy::new(id, name, spec.requests, spec.per_s, spec.burst).ok()
}

impl Limits {
    /// `None` when the configuration has no `rate_limits`.
    pub fn new(cfg: &Config, secret: [u8; 16]) -> Option<Limits> {
        let settings = cfg.rate_limits.clone()?;
        let default = settings.default.and_then(|s| policy(0, DEFAULT_POLICY, s));
        let rules = cfg
            .rules
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let id = u16::try_from(i + 1).ok()?;
                r.rate_limit.and_then(|s| policy(id, &r.name, s))
            })
            .collect();
        Some(Limits {
            limiter: Limiter::new(settings.max_identities, secret),
            leases: Leases::new(),
            settings,
            default,
            rules,
        })
    }

    pub fn dry_run(&self) -> bool {
        self.settings.dry_run
    }

    /// Allowed responses carry the `RateLimit` fields too.
    pub fn headers(&self) -> bool {
        self.settings.headers
    }

    /// Takes a token from every limit that applies to an allowed request with
    /// a verified identity; `None` when none applies.
    pub fn check(&mut self, store: &dyn SharedStore, d: &Decision, now_ms: u64) -> Option<Checked> {
        if !d.is_allowed() {
            return None;
        }
        let id = d.identity.as_ref()?;
        let own = match &d.registration {
            Some(Registration::Registered {
                rate_limit: Some(spec),
                ..
            }) => policy(0, IDENTITY_POLICY, *spec),
            _ => None,
        };
        let identity_policy = own.as_ref().or(self.default.as_ref());
        let rule_policy = d
            .rule
            .and_then(|i| self.rules.get(i))
            .and_then(Option::as_ref);
        // A slice without a Vec: this runs on every allowed request.
        let (both, one);
        let policies: &[&Policy] = match (identity_policy, rule_policy) {
            (Some(a), Some(b)) => {
                both = [a, b];
                &both
            }
            (Some(a), None) | (None, Some(a)) => {
                one = [a];
                &one
            }
            (None, None) => return None,
        };
        // Always within the provider; a token without the chosen claim is
        // limited by the other one, so no verified caller goes unlimited.
        let who = match (self.settings.key, &id.client_id, &id.subject) {
            (LimitKey::ClientId, Some(c), _) => Who::Client(c),
            (LimitKey::Subject, _, Some(s)) => Who::Subject(s),
            (_, _, Some(s)) => Who::Subject(s),
            (_, Some(c), None) => Who::Client(c),
            (_, None, None) => Who::Subject(""),
        };
        let key = self.limiter.identity(id.provider, who);
        let verdict = self
            .leases
            .take_all(&self.limiter, store, policies, key, now_ms);
        let allowed = verdict.allowed();
        let refused_by = policies
            .iter()
            .zip(&verdict.outcomes)
            .filter(|(_, o)| !o.allowed)
            .map(|(p, _)| p.name().to_string())
            .collect();
        let fields = (!allowed || self.settings.headers).then(|| {
            (
                policy_header(policies, None),
                ratelimit_header(policies, &verdict.outcomes, None),
            )
        });
        Some(Checked {
            allowed,
            refused_by,
            retry_after_s: verdict.retry_after_s(),
            fields,
            overflow: verdict
                .outcomes
                .iter()
                .any(|o| o.tracking == Tracking::Overflow),
        })
    }
}
