//! RFC 6750 answers to denied requests (CONTRACT §2). Built on every denial,
//! junk tokens included, so written without a JSON value tree: a fixed
//! skeleton, the message escaped in place.

use crate::policy::config::{Config, ErrorDetail};
use crate::request::binding::Scheme;
use crate::request::decision::Decision;
use crate::vocab::alg::{Alg, AlgSet};
use crate::vocab::reason::{DenialClass, Reason};
use crate::vocab::text::header_safe;
use std::borrow::Cow;
use std::fmt::Write;

#[derive(Debug, PartialEq, Eq)]
pub struct LocalResponse {
    pub status: u32,
    pub headers: Vec<(&'static str, Cow<'static, str>)>,
    pub body: String,
}

const JSON: Cow<'static, str> = Cow::Borrowed("application/json");
const NO_STORE: Cow<'static, str> = Cow::Borrowed("no-store");

/// Builds the response for a denial. Messages are ours, built from claim values
/// at most, never from the token itself; with `error_detail: minimal` the
/// caller gets the reason's fixed description instead.
pub fn denial(cfg: &Config, reason: Reason, message: &str, d: Option<&Decision>) -> LocalResponse {
    let class = reason.class();
    let message = match cfg.error_detail {
        ErrorDetail::Minimal => reason.public_description(),
        ErrorDetail::Verbose => message,
    };
    let mut headers = Vec::with_capacity(4);
    headers.push(("content-type", JSON));
    headers.push(("cache-control", NO_STORE));
    let description = header_safe(message);
    // Every challenge names the realm (RFC 6750 §3), then the error, if any.
    // A request made with DPoP, or about a DPoP-bound token or its proof, is
    // answered with the DPoP scheme and the algorithms it accepts (RFC 9449
    // §7.1).
    let dpop_algs = dpop_challenge(cfg, class, d);
    let mut c = match dpop_algs {
        Some(_) => format!("DPoP realm=\"{}\"", cfg.realm),
        None => format!("Bearer realm=\"{}\"", cfg.realm),
    };
    let challenge = match class {
        DenialClass::NoToken | DenialClass::Forbidden => Some(c),
        DenialClass::InvalidRequest | DenialClass::InvalidToken | DenialClass::InvalidDpopProof => {
            let _ = write!(
                c,
                ", error=\"{}\", error_description=\"{description}\"",
                class.error_code()
            );
            Some(c)
        }
        DenialClass::InsufficientScope => {
            c.push_str(", error=\"insufficient_scope\"");
            if let Some(s) = d.and_then(|d| d.required_scopes.as_deref()) {
                let _ = write!(c, ", scope=\"{s}\"");
            }
            let _ = write!(c, ", error_description=\"{description}\"");
            Some(c)
        }
        DenialClass::Unavailable => {
            headers.push(("retry-after", Cow::Borrowed("5")));
            None
        }
        DenialClass::RateLimited => {
            let retry = d.and_then(|d| d.retry_after_s).unwrap_or(1).max(1);
            headers.push(("retry-after", Cow::Owned(retry.to_string())));
            if let Some((policy, state)) = d.and_then(|d| d.rate_limit_fields.as_ref()) {
                headers.push(("ratelimit-policy", Cow::Owned(policy.clone())));
                headers.push(("ratelimit", Cow::Owned(state.clone())));
            }
            None
        }
        DenialClass::None | DenialClass::Internal => None,
    };
    if let Some(mut c) = challenge {
        if let Some(algs) = dpop_algs {
            let _ = write!(c, ", algs=\"{algs}\"");
        }
        headers.push(("www-authenticate", Cow::Owned(c)));
    }
    LocalResponse {
        status: class.status(),
        headers,
        body: body(class.error_code(), message, reason),
    }
}

/// The DPoP algorithms to name in the challenge, when it is a DPoP one.
fn dpop_challenge(cfg: &Config, class: DenialClass, d: Option<&Decision>) -> Option<String> {
    let dpop = class == DenialClass::InvalidDpopProof
        || d.is_some_and(|d| d.scheme == Scheme::Dpop || d.dpop_bound);
    if !dpop {
        return None;
    }
    let provider = d
        .and_then(|d| d.provider)
        .and_then(|i| cfg.providers.get(i));
    let algs: AlgSet = match provider {
        Some(p) => p.proof_of_possession.dpop_algorithms,
        None => cfg
            .providers
            .iter()
            .flat_map(|p| p.proof_of_possession.dpop_algorithms.iter())
            .collect(),
    };
    Some(algs.iter().map(Alg::as_str).collect::<Vec<_>>().join(" "))
}

/// A 500 for states the filter cannot decide in (no configuration, no path).
/// The caller gets the reason's fixed description; the cause is logged.
pub fn internal(reason: Reason) -> LocalResponse {
    LocalResponse {
        status: 500,
        headers: vec![("content-type", JSON), ("cache-control", NO_STORE)],
        body: body("server_error", reason.public_description(), reason),
    }
}

/// `{"error":…,"error_description":…,"reason":…}`.
fn body(error: &str, description: &str, reason: Reason) -> String {
    let mut out = String::with_capacity(64 + description.len());
    out.push_str("{\"error\":");
    push_json_string(&mut out, error);
    out.push_str(",\"error_description\":");
    push_json_string(&mut out, description);
    out.push_str(",\"reason\":");
    push_json_string(&mut out, reason.as_str());
    out.push('}');
    out
}

/// Appends `s` as a JSON string (RFC 8259 §7): quotes, backslashes and
/// control characters escaped; everything else as is.
fn push_json_string(out: &mut String, s: &str) {
    out.push('"');
    if !s.bytes().any(|b| b == b'"' || b == b'\\' || b < 0x20) {
        // Our messages nearly always: one copy.
        out.push_str(s);
        out.push('"');
        return;
    }
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            c if u32::from(c) < 0x20 => {
                let _ = write!(out, "\\u{:04x}", u32::from(c));
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::{json, Value};

    #[test]
    fn the_body_is_the_json_a_serializer_would_write() {
        for message in [
            "token expired 5s ago",
            "issuer \"a\\b\" is\tnot\r\ntrusted \u{1} \u{1f} é ✓",
            "",
        ] {
            let got: Value =
                serde_json::from_str(&body("invalid_token", message, Reason::TokenExpired))
                    .expect("valid JSON");
            assert_eq!(
                got,
                json!({"error": "invalid_token", "error_description": message, "reason": "token_expired"})
            );
        }
    }
}
