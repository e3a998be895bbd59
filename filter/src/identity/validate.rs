//! Token validation: from a parsed token to a verified identity, in the order
//! that spends the least on a bad token (structure, issuer, algorithm, time,
//! audience, key selection, and only then the signature).

use crate::identity::shared::SharedStore;
use crate::jose::jwks::KeySet;
use crate::jose::statuslist::{self, Reference, StatusList};
use crate::jose::token::{self, Claims};
use crate::policy::config::{Config, KeySource, Provider};
use crate::policy::registry::Registry;
use crate::policy::revocation::RevocationList;
use crate::vocab::reason::{Denial, Reason};
use crate::vocab::text::{clip, is_header_value_safe};
use serde_json::Value;
use std::rc::Rc;

/// Documents fetched at run time: providers' key sets and the identity
/// registry. Requests whose document is not there yet wait for it.
pub trait KeyStore {
    fn keys(&self, provider: usize) -> Keys;

    /// A token names a `kid` this provider's keys lack: may the keys be
    /// refreshed now (so the request should wait for them)? Rate-limited.
    fn refresh_for_unknown_kid(&self, _provider: usize, _now: u64) -> bool {
        false
    }

    /// The identity registry fetched from a `uri`.
    fn registry(&self) -> Availability<Registry> {
        Availability::Unavailable("a registry fetched from a uri is not available here".into())
    }

    /// The revocation list fetched from a `uri`.
    fn revocation(&self) -> Availability<RevocationList> {
        Availability::Unavailable(
            "a revocation list fetched from a uri is not available here".into(),
        )
    }

    /// The status list at `uri`, verified with `provider`'s keys; asking
    /// for one not fetched yet starts its fetch.
    fn status_list(&self, _uri: &str, _provider: usize, _now: u64) -> Availability<StatusList> {
        Availability::Unavailable("status lists are not fetched here".into())
    }

    /// The store the gateway's workers share (DPoP replay detection).
    fn shared(&self) -> Option<&dyn SharedStore> {
        None
    }
}

/// A document fetched at run time, by what it is for.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Document {
    /// The key set of the provider with this index.
    Keys(usize),
    Registry,
    Revocation,
    /// Any of the status lists tokens point at.
    StatusList,
}

/// Whether a fetched document can be used now.
pub enum Availability<T> {
    Ready(Rc<T>),
    /// The first fetch has not completed: hold the request.
    Pending,
    /// None could be obtained; the text says why.
    Unavailable(String),
}

pub type Keys = Availability<KeySet>;

/// A key store for configurations with inline keys only.
pub struct NoRemoteKeys;

impl KeyStore for NoRemoteKeys {
    fn keys(&self, _provider: usize) -> Keys {
        Keys::Unavailable("keys fetched from a uri are not available here".into())
    }
}

/// Who a verified token speaks for.
#[derive(Clone, Debug, PartialEq)]
pub struct Identity {
    pub provider: usize,
    pub issuer: String,
    pub subject: Option<String>,
    pub client_id: Option<String>,
    pub scopes: Vec<String>,
    /// `scopes`, space-delimited: what headers and logs carry, joined once.
    pub scope_text: String,
    pub jti: Option<String>,
    pub exp: u64,
    /// Checked against revocation cut-offs (`issued_before`).
    pub iat: Option<u64>,
    /// The token's entry in a Token Status List, when it names one.
    pub status: Option<Reference>,
    /// (claim, header value) for the configured identity claims present in the token.
    pub claims: Vec<(String, String)>,
    /// The key the token is bound to (RFC 7800 `cnf`), if any.
    pub cnf: Confirmation,
}

/// The token's confirmation (`cnf`) members Scopegate can check.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Confirmation {
    /// RFC 9449: thumbprint of the DPoP key.
    pub jkt: Option<String>,
    /// RFC 8705: base64url SHA-256 of the client certificate (`x5t#S256`).
    pub x5t_s256: Option<String>,
    /// `cnf` names only methods Scopegate cannot check (e.g. `jwk`, `jku`).
    pub unsupported: bool,
}

impl Confirmation {
    pub fn is_bound(&self) -> bool {
        self.jkt.is_some() || self.x5t_s256.is_some() || self.unsupported
    }
}

impl Identity {
    pub fn has_scope(&self, scope: &str) -> bool {
        self.scopes.iter().any(|s| s == scope)
    }
}

#[derive(Debug)]
pub enum Failure {
    Denied {
        denial: Denial,
        /// The provider the token named, when it names a configured one.
        provider: Option<usize>,
    },
    KeysPending {
        provider: usize,
    },
}

fn deny(reason: Reason, message: impl Into<String>, provider: Option<usize>) -> Failure {
    Failure::Denied {
        denial: Denial::new(reason, message),
        provider,
    }
}

impl From<Denial> for Failure {
    fn from(denial: Denial) -> Self {
        Failure::Denied {
            denial,
            provider: None,
        }
    }
}

/// Validates a token: structure, issuer, algorithm, time, audience, key and
/// signature, then extracts the identity.
pub fn validate(
    cfg: &Config,
    token: &str,
    store: &dyn KeyStore,
    now: u64,
) -> Result<Identity, Failure> {
    verify(cfg, token, store, now)
        .map(|v| v.identity)
        .map_err(|(f, _)| f)
}

/// A token that passed every check, and what a cache needs to reuse it.
pub struct Verified {
    pub identity: Identity,
    pub keys: Rc<KeySet>,
    pub valid_until: u64,
}

/// A signature that did not verify: cacheable with the key set that refused it.
pub struct BadSignature {
    pub provider: usize,
    pub keys: Rc<KeySet>,
    pub valid_until: u64,
}

/// Every check, keeping what a cache needs: the key set that verified (or
/// refused) the signature and until when that verdict holds.
pub fn verify(
    cfg: &Config,
    token: &str,
    store: &dyn KeyStore,
    now: u64,
) -> Result<Verified, (Failure, Option<BadSignature>)> {
    let uncacheable = |f: Failure| (f, None);
    let parsed = token::parse(token, cfg.max_token_bytes).map_err(|d| uncacheable(d.into()))?;
    let claims = &parsed.claims;
    let iss = claims
        .iss
        .as_deref()
        .ok_or_else(|| uncacheable(deny(Reason::ClaimMissing, "token has no `iss` claim", None)))?;
    let (index, provider) = cfg
        .providers
        .iter()
        .enumerate()
        .find(|(_, p)| p.issuer == iss)
        .ok_or_else(|| {
            uncacheable(deny(
                Reason::IssuerUnknown,
                format!("token issuer \"{}\" is not trusted here", clip(iss, 80)),
                None,
            ))
        })?;
    let fail = |reason, message: String| (deny(reason, message, Some(index)), None);

    if !provider.algorithms.contains(parsed.alg) {
        return Err(fail(
            Reason::UnsupportedAlgorithm,
            format!(
                "algorithm {} is not allowed for provider \"{}\" (allowed: {})",
                parsed.alg,
                provider.name,
                provider.algorithms.names()
            ),
        ));
    }
    check_time(provider, claims, now).map_err(|(r, m)| fail(r, m))?;
    check_audience(provider, claims).map_err(|m| fail(Reason::AudienceMismatch, m))?;

    let keys: Rc<KeySet> = match &provider.keys {
        KeySource::Inline(set) => Rc::clone(set),
        KeySource::Remote(_) => match store.keys(index) {
            Keys::Ready(set) => set,
            Keys::Pending => return Err(uncacheable(Failure::KeysPending { provider: index })),
            Keys::Unavailable(why) => {
                return Err(fail(
                    Reason::JwksUnavailable,
                    format!(
                        "keys of provider \"{}\" are unavailable: {why}",
                        provider.name
                    ),
                ))
            }
        },
    };
    let mut tried = 0;
    let mut verified = false;
    for key in keys.candidates(parsed.alg, parsed.kid.as_deref()) {
        tried += 1;
        if key
            .key
            .verify(parsed.alg, parsed.signing_input, &parsed.signature)
        {
            verified = true;
            break;
        }
    }
    if tried == 0 {
        // The issuer may have rotated in a key we have not fetched yet.
        if matches!(provider.keys, KeySource::Remote(_))
            && store.refresh_for_unknown_kid(index, now)
        {
            return Err(uncacheable(Failure::KeysPending { provider: index }));
        }
        return Err(fail(
            Reason::KeyNotFound,
            match &parsed.kid {
                Some(kid) => format!(
                    "no {} key with kid \"{}\" in the key set of provider \"{}\"",
                    parsed.alg,
                    clip(kid, 64),
                    provider.name
                ),
                None => format!(
                    "token has no kid and provider \"{}\" has no {} key",
                    provider.name, parsed.alg
                ),
            },
        ));
    }
    // Until then a verdict about this token and these keys stays true.
    let valid_until = claims
        .exp
        .unwrap_or(0)
        .saturating_add(provider.clock_skew_s);
    if !verified {
        let (failure, _) = fail(
            Reason::SignatureInvalid,
            format!(
                "signature does not verify with provider \"{}\"'s key",
                provider.name
            ),
        );
        return Err((
            failure,
            Some(BadSignature {
                provider: index,
                keys,
                valid_until,
            }),
        ));
    }
    let identity = identity(cfg, index, provider, &parsed.claims)
        .map_err(|m| fail(Reason::TokenMalformed, m))?;
    Ok(Verified {
        identity,
        keys,
        valid_until,
    })
}

fn check_time(p: &Provider, c: &Claims, now: u64) -> Result<(), (Reason, String)> {
    let skew = p.clock_skew_s;
    let exp = c.exp.ok_or((
        Reason::ClaimMissing,
        "token has no `exp` claim; it is required".to_string(),
    ))?;
    if now > exp.saturating_add(skew) {
        return Err((
            Reason::TokenExpired,
            format!(
                "token expired {}s ago (clock skew allowed: {skew}s)",
                now - exp
            ),
        ));
    }
    if let Some(nbf) = c.nbf {
        if now.saturating_add(skew) < nbf {
            return Err((
                Reason::TokenNotYetValid,
                format!(
                    "token is not valid for another {}s (nbf; clock skew allowed: {skew}s)",
                    nbf - now
                ),
            ));
        }
    }
    if let Some(iat) = c.iat {
        if iat > now.saturating_add(skew) {
            return Err((
                Reason::TokenIssuedInFuture,
                format!(
                    "token was issued {}s in the future (iat; clock skew allowed: {skew}s)",
                    iat - now
                ),
            ));
        }
    }
    if let Some(max) = p.max_lifetime_s {
        let iat = c.iat.ok_or((
            Reason::LifetimeTooLong,
            format!(
                "token has no `iat`, so its lifetime cannot be held to max_lifetime_s ({max}s)"
            ),
        ))?;
        let lifetime = exp.checked_sub(iat).ok_or((
            Reason::LifetimeTooLong,
            "token's `exp` is before its `iat`".to_string(),
        ))?;
        if lifetime > max {
            return Err((
                Reason::LifetimeTooLong,
                format!(
                    "token lifetime is {lifetime}s; provider \"{}\" allows at most {max}s",
                    p.name
                ),
            ));
        }
    }
    Ok(())
}

fn check_audience(p: &Provider, c: &Claims) -> Result<(), String> {
    let Some(allowed) = &p.audiences else {
        return Ok(());
    };
    if c.aud.iter().any(|a| allowed.contains(a)) {
        return Ok(());
    }
    Err(if c.aud.is_empty() {
        format!(
            "token has no `aud`; expected one of: {}",
            allowed.join(", ")
        )
    } else {
        format!(
            "token audience {} is not one of: {}",
            clip(&c.aud.join(", "), 80),
            allowed.join(", ")
        )
    })
}

fn identity(cfg: &Config, index: usize, p: &Provider, c: &Claims) -> Result<Identity, String> {
    let safe = |name: &str, v: &str| -> Result<(), String> {
        if is_header_value_safe(v) {
            Ok(())
        } else {
            Err(format!("claim `{name}` contains control characters"))
        }
    };
    if let Some(sub) = &c.sub {
        safe("sub", sub)?;
    }
    let scopes = scopes(p, c)?;
    let client_id = match p
        .client_id_claims
        .iter()
        .find_map(|n| c.all.get(n).map(|v| (n, v)))
    {
        None => None,
        Some((name, Value::String(s))) => {
            safe(name, s)?;
            Some(s.clone())
        }
        Some((name, _)) => return Err(format!("claim `{name}` (client id) must be a string")),
    };
    let status = match c.all.get("status") {
        None => None,
        Some(s) => statuslist::referenced(&serde_json::json!({ "status": s }))
            .map_err(|e| e.to_string())?,
    };
    let cnf = confirmation(c.all.get("cnf"))?;
    let mut claims = Vec::new();
    for (claim, _) in &cfg.identity_headers.claims {
        let value = match c.all.get(claim) {
            None | Some(Value::Null) => continue,
            Some(Value::String(s)) => {
                safe(claim, s)?;
                s.clone()
            }
            // Compact JSON escapes control characters, so it is header-safe.
            Some(other) => other.to_string(),
        };
        claims.push((claim.clone(), value));
    }
    Ok(Identity {
        provider: index,
        issuer: p.issuer.clone(),
        subject: c.sub.clone(),
        client_id,
        scope_text: scopes.join(" "),
        scopes,
        jti: c.jti.clone(),
        exp: c.exp.unwrap_or_default(),
        iat: c.iat,
        status,
        claims,
        cnf,
    })
}

fn confirmation(cnf: Option<&Value>) -> Result<Confirmation, String> {
    let Some(cnf) = cnf else {
        return Ok(Confirmation::default());
    };
    let obj = cnf.as_object().ok_or("claim `cnf` must be a JSON object")?;
    let member = |name: &str| -> Result<Option<String>, String> {
        match obj.get(name) {
            None => Ok(None),
            Some(Value::String(s)) if !s.is_empty() && s.bytes().all(is_base64url_byte) => {
                Ok(Some(s.clone()))
            }
            Some(_) => Err(format!("claim `cnf.{name}` must be a base64url string")),
        }
    };
    let jkt = member("jkt")?;
    let x5t_s256 = member("x5t#S256")?;
    let unsupported = jkt.is_none() && x5t_s256.is_none() && !obj.is_empty();
    Ok(Confirmation {
        jkt,
        x5t_s256,
        unsupported,
    })
}

fn is_base64url_byte(b: u8) -> bool {
    b.is_ascii_alphanumeric() || b == b'-' || b == b'_'
}

/// Scopes from the first present scope claim: a space-delimited string or an
/// array of strings, each an RFC 6749 scope-token.
fn scopes(p: &Provider, c: &Claims) -> Result<Vec<String>, String> {
    let Some((name, value)) = p
        .scope_claims
        .iter()
        .find_map(|n| c.all.get(n).map(|v| (n, v)))
    else {
        return Ok(Vec::new());
    };
    let list: Vec<String> = match value {
        Value::String(s) => s
            .split(' ')
            .filter(|x| !x.is_empty())
            .map(String::from)
            .collect(),
        Value::Array(items) => items
            .iter()
            .map(|v| v.as_str().map(String::from))
            .collect::<Option<_>>()
            .ok_or_else(|| format!("claim `{name}` must be a string or an array of strings"))?,
        _ => {
            return Err(format!(
                "claim `{name}` must be a string or an array of strings"
            ))
        }
    };
    if let Some(bad) = list
        .iter()
        .find(|s| !crate::policy::config::is_scope_token(s))
    {
        return Err(format!(
            "claim `{name}` has a scope with characters outside RFC 6749 (\"{}\")",
            crate::vocab::text::header_safe(&clip(bad, 40))
        ));
    }
    Ok(list)
}
