//! `explain --status-list URI=FILE`: the Token Status List tokens (CONTRACT
//! §1.3, `revocation.status_list`) the filter would fetch from their `uri`,
//! given as files. Each is verified when a token points at it, as the filter
//! verifies a fetched one: `statuslist::parse_token` with the token's
//! provider's keys, algorithms and clock skew, at `--now`.

use scopegate::identity::validate::Availability;
use scopegate::jose::jwks::KeySet;
use scopegate::jose::statuslist::{self, StatusList};
use scopegate::policy::config::{Config, Source};
use scopegate::vocab::alg::AlgSet;
use std::collections::HashMap;
use std::rc::Rc;

/// What a status list not given on the command line is.
pub const NOT_GIVEN: &str = "not given: use --status-list URI=FILE";

/// The status list tokens given, by uri, and what verifies them.
#[derive(Default)]
pub struct StatusLists {
    /// uri → (FILE as given, its contents: the compact JWT text).
    files: HashMap<String, (String, Vec<u8>)>,
    /// Each provider's algorithms and clock skew, by provider index.
    checks: Vec<(AlgSet, u64)>,
    /// Each provider's inline keys, by provider index (None: from a `uri`).
    inline: Vec<Option<Rc<KeySet>>>,
}

impl StatusLists {
    /// Reads every `--status-list URI=FILE`. A spec without `=`, a uri
    /// given twice, an unreadable FILE, or a configuration that checks no
    /// status lists are usage errors; a uri the configuration would never
    /// fetch gets a warning (tokens pointing at it are status_unverifiable).
    pub fn from_flags(cfg: &Config, specs: &[String]) -> Result<Self, String> {
        let mut out = StatusLists {
            files: HashMap::new(),
            checks: cfg
                .providers
                .iter()
                .map(|p| (p.algorithms, p.clock_skew_s))
                .collect(),
            inline: cfg
                .providers
                .iter()
                .map(|p| match &p.keys {
                    Source::Inline(set) => Some(Rc::clone(set)),
                    Source::Remote(_) => None,
                })
                .collect(),
        };
        if specs.is_empty() {
            return Ok(out);
        }
        let Some(policy) = cfg.revocation.as_ref().and_then(|r| r.status_list.as_ref()) else {
            return Err(format!(
                "--status-list {}: the configuration does not check status lists (`revocation.status_list`), so there is nothing for it to stand in for",
                specs.first().map_or("", String::as_str)
            ));
        };
        for spec in specs {
            // The last `=`: a uri may have a query.
            let (uri, file) = spec
                .rsplit_once('=')
                .filter(|(u, f)| !u.is_empty() && !f.is_empty())
                .ok_or_else(|| format!("--status-list `{spec}`: expected URI=FILE"))?;
            if out.files.contains_key(uri) {
                return Err(format!("--status-list: {uri} is given more than once"));
            }
            if !policy
                .uri_prefixes
                .iter()
                .any(|p| uri.starts_with(p.as_str()))
            {
                eprintln!(
                    "warning: --status-list {uri}: outside the configuration's `revocation.status_list.uri_prefixes` ({}): the filter never fetches it, and a token pointing at it is status_unverifiable",
                    policy.uri_prefixes.join(", ")
                );
            }
            let text =
                crate::commands::read(file).map_err(|e| format!("--status-list {uri}: {e}"))?;
            out.files.insert(uri.to_string(), (file.to_string(), text));
        }
        Ok(out)
    }

    /// The list at `uri`, verified with `provider`'s keys (inline, or
    /// `jwks` as given with `--jwks`) at `now`; why not, when it cannot be had.
    pub fn get(
        &self,
        uri: &str,
        provider: usize,
        now: u64,
        jwks: &HashMap<usize, Rc<KeySet>>,
    ) -> Availability<StatusList> {
        let Some((file, text)) = self.files.get(uri) else {
            return Availability::Unavailable(NOT_GIVEN.into());
        };
        let keys = self
            .inline
            .get(provider)
            .cloned()
            .flatten()
            .or_else(|| jwks.get(&provider).cloned());
        let Some(keys) = keys else {
            return Availability::Unavailable(
                "the provider's keys are not available to verify it (give them with --jwks NAME=FILE)"
                    .into(),
            );
        };
        let (algorithms, skew) = self.checks.get(provider).copied().unwrap_or_default();
        match statuslist::parse_token(
            text,
            uri,
            &keys,
            algorithms,
            now,
            skew,
            &statuslist::Limits::default(),
        ) {
            Ok(list) => Availability::Ready(Rc::new(list)),
            Err(e) => {
                Availability::Unavailable(format!("{file}: not a valid status list token: {e}"))
            }
        }
    }
}
