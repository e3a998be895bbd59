//! Reason codes: one machine-readable code per decision, shared by responses,
//! logs, metrics and the command-line tool (CONTRACT §3).

use std::fmt;

/// Why a request was allowed or denied. The string form is public contract.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Reason {
    Allowed,
    PublicRoute,
    TokenMissing,
    TokenMalformed,
    RequestMalformed,
    UnsupportedAlgorithm,
    IssuerUnknown,
    KeyNotFound,
    SignatureInvalid,
    TokenExpired,
    TokenNotYetValid,
    TokenIssuedInFuture,
    LifetimeTooLong,
    AudienceMismatch,
    ClaimMissing,
    InsufficientScope,
    ClientNotAllowed,
    ProviderNotAllowed,
    RouteNotAllowed,
    JwksUnavailable,
    /// A valid token whose client the identity registry does not list
    /// (`unregistered: deny`).
    IdentityUnregistered,
    /// The registry entry has `status: disabled`.
    IdentityDisabled,
    /// The registry entry's `expires` has passed.
    IdentityExpired,
    /// The rule needs a scope the token has but the identity's ceiling drops.
    ScopeOverCeiling,
    /// The identity registry could not be obtained in time.
    RegistryUnavailable,
    /// The token, its client or its subject is on the revocation list, or
    /// its status list says INVALID.
    TokenRevoked,
    /// The fetched revocation list could not be obtained in time.
    RevocationUnavailable,
    /// The token's status list says SUSPENDED.
    TokenSuspended,
    /// The token points at a status list outside the allowed `uri_prefixes`.
    StatusUnverifiable,
    /// The token's status list could not be obtained (`on_unavailable: deny`).
    StatusUnavailable,
    /// A rule asks for a sender-constrained token (`sender_constrained`), or a
    /// provider requires a binding (`required`), and the token has none.
    TokenNotBound,
    /// A certificate-bound token (`cnf["x5t#S256"]`) came over a connection
    /// without a client certificate.
    MtlsCertificateMissing,
    /// A certificate-bound token came with another client certificate.
    MtlsBindingMismatch,
    /// A DPoP-bound token or the `DPoP` scheme without a `DPoP` proof header.
    DpopProofMissing,
    /// The DPoP proof is malformed, badly signed, for another request, too
    /// old, or does not match the access token (`ath`).
    DpopProofInvalid,
    /// The DPoP proof's `jti` was already used within its validity window.
    DpopProofReplayed,
    /// The token is bound to another key than the proof's, or a DPoP-bound
    /// token came with the `Bearer` scheme, or a proof with an unbound token.
    DpopBindingMismatch,
    /// The identity is over a rate limit (its own, the default, or the rule's).
    RateLimited,
    /// The filter could not apply its configuration (Kong keeps the worker alive
    /// and answers fail-closed instead of refusing the update).
    ConfigInvalid,
    /// Unexpected internal state in the adapter: answered 500, never a trap.
    InternalError,
}

impl Reason {
    pub const ALL: [Reason; 40] = [
        Reason::Allowed,
        Reason::PublicRoute,
        Reason::TokenMissing,
        Reason::TokenMalformed,
        Reason::RequestMalformed,
        Reason::UnsupportedAlgorithm,
        Reason::IssuerUnknown,
        Reason::KeyNotFound,
        Reason::SignatureInvalid,
        Reason::TokenExpired,
        Reason::TokenNotYetValid,
        Reason::TokenIssuedInFuture,
        Reason::LifetimeTooLong,
        Reason::AudienceMismatch,
        Reason::ClaimMissing,
        Reason::InsufficientScope,
        Reason::ClientNotAllowed,
        Reason::ProviderNotAllowed,
        Reason::RouteNotAllowed,
        Reason::JwksUnavailable,
        Reason::IdentityUnregistered,
        Reason::IdentityDisabled,
        Reason::IdentityExpired,
        Reason::ScopeOverCeiling,
        Reason::RegistryUnavailable,
        Reason::TokenRevoked,
        Reason::RevocationUnavailable,
        Reason::TokenSuspended,
        Reason::StatusUnverifiable,
        Reason::StatusUnavailable,
        Reason::TokenNotBound,
        Reason::MtlsCertificateMissing,
        Reason::MtlsBindingMismatch,
        Reason::DpopProofMissing,
        Reason::DpopProofInvalid,
        Reason::DpopProofReplayed,
        Reason::DpopBindingMismatch,
        Reason::RateLimited,
        Reason::ConfigInvalid,
        Reason::InternalError,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Reason::Allowed => "allowed",
            Reason::PublicRoute => "public_route",
            Reason::TokenMissing => "token_missing",
            Reason::TokenMalformed => "token_malformed",
            Reason::RequestMalformed => "request_malformed",
            Reason::UnsupportedAlgorithm => "unsupported_algorithm",
            Reason::IssuerUnknown => "issuer_unknown",
            Reason::KeyNotFound => "key_not_found",
            Reason::SignatureInvalid => "signature_invalid",
            Reason::TokenExpired => "token_expired",
            Reason::TokenNotYetValid => "token_not_yet_valid",
            Reason::TokenIssuedInFuture => "token_issued_in_future",
            Reason::LifetimeTooLong => "lifetime_too_long",
            Reason::AudienceMismatch => "audience_mismatch",
            Reason::ClaimMissing => "claim_missing",
            Reason::InsufficientScope => "insufficient_scope",
            Reason::ClientNotAllowed => "client_not_allowed",
            Reason::ProviderNotAllowed => "provider_not_allowed",
            Reason::RouteNotAllowed => "route_not_allowed",
            Reason::JwksUnavailable => "jwks_unavailable",
            Reason::IdentityUnregistered => "identity_unregistered",
            Reason::IdentityDisabled => "identity_disabled",
            Reason::IdentityExpired => "identity_expired",
            Reason::ScopeOverCeiling => "scope_over_ceiling",
            Reason::RegistryUnavailable => "registry_unavailable",
            Reason::TokenRevoked => "token_revoked",
            Reason::RevocationUnavailable => "revocation_unavailable",
            Reason::TokenSuspended => "token_suspended",
            Reason::StatusUnverifiable => "status_unverifiable",
            Reason::StatusUnavailable => "status_unavailable",
            Reason::TokenNotBound => "token_not_bound",
            Reason::MtlsCertificateMissing => "mtls_certificate_missing",
            Reason::MtlsBindingMismatch => "mtls_binding_mismatch",
            Reason::DpopProofMissing => "dpop_proof_missing",
            Reason::DpopProofInvalid => "dpop_proof_invalid",
            Reason::DpopProofReplayed => "dpop_proof_replayed",
            Reason::DpopBindingMismatch => "dpop_binding_mismatch",
            Reason::RateLimited => "rate_limited",
            Reason::ConfigInvalid => "config_invalid",
            Reason::InternalError => "internal_error",
        }
    }

    pub fn is_allow(self) -> bool {
        matches!(self, Reason::Allowed | Reason::PublicRoute)
    }

    /// The RFC 6750 class of a denial, which fixes status and `WWW-Authenticate`.
    pub fn class(self) -> DenialClass {
        match self {
            Reason::Allowed | Reason::PublicRoute => DenialClass::None,
            Reason::TokenMissing => DenialClass::NoToken,
            Reason::RequestMalformed => DenialClass::InvalidRequest,
            Reason::TokenMalformed
            | Reason::UnsupportedAlgorithm
            | Reason::IssuerUnknown
            | Reason::KeyNotFound
            | Reason::SignatureInvalid
            | Reason::TokenExpired
            | Reason::TokenNotYetValid
            | Reason::TokenIssuedInFuture
            | Reason::LifetimeTooLong
            | Reason::AudienceMismatch
            | Reason::ClaimMissing
            | Reason::IdentityDisabled
            | Reason::IdentityExpired
            | Reason::TokenRevoked
            | Reason::TokenSuspended
            | Reason::StatusUnverifiable
            | Reason::TokenNotBound
            | Reason::MtlsCertificateMissing
            | Reason::MtlsBindingMismatch
            | Reason::DpopBindingMismatch => DenialClass::InvalidToken,
            Reason::DpopProofMissing | Reason::DpopProofInvalid | Reason::DpopProofReplayed => {
                DenialClass::InvalidDpopProof
            }
            Reason::InsufficientScope | Reason::ScopeOverCeiling => DenialClass::InsufficientScope,
            Reason::ClientNotAllowed
            | Reason::ProviderNotAllowed
            | Reason::RouteNotAllowed
            | Reason::IdentityUnregistered => DenialClass::Forbidden,
            Reason::JwksUnavailable
            | Reason::RegistryUnavailable
            | Reason::RevocationUnavailable
            | Reason::StatusUnavailable => DenialClass::Unavailable,
            Reason::RateLimited => DenialClass::RateLimited,
            Reason::ConfigInvalid | Reason::InternalError => DenialClass::Internal,
        }
    }
}

impl Reason {
    /// What a caller is told when `error_detail` is `minimal` (the default):
    /// nothing it did not send. Which audience, key or issuer the gateway
    /// accepts is configuration; the full message goes to the audit log.
    pub fn public_description(self) -> &'static str {
        match self {
            Reason::Allowed | Reason::PublicRoute => "",
            Reason::TokenMissing => "the request carries no access token",
            Reason::TokenMalformed => "the access token is malformed",
            Reason::RequestMalformed => "the request is malformed",
            Reason::UnsupportedAlgorithm => "the token's signing algorithm is not accepted",
            Reason::IssuerUnknown => "the token's issuer is not accepted",
            Reason::KeyNotFound => "the token's signing key is not known",
            Reason::SignatureInvalid => "the token's signature is invalid",
            Reason::TokenExpired => "the token has expired",
            Reason::TokenNotYetValid => "the token is not valid yet",
            Reason::TokenIssuedInFuture => "the token's issue time is in the future",
            Reason::LifetimeTooLong => "the token's lifetime is longer than accepted",
            Reason::AudienceMismatch => "the token's audience is not accepted",
            Reason::ClaimMissing => "the token lacks a required claim",
            Reason::InsufficientScope => "the token lacks a scope this route requires",
            Reason::ClientNotAllowed => "this client may not call this route",
            Reason::ProviderNotAllowed => "tokens of this issuer may not call this route",
            Reason::RouteNotAllowed => "no route allows this request",
            Reason::JwksUnavailable => "the keys to verify the token are temporarily unavailable",
            Reason::IdentityUnregistered => "this client is not registered",
            Reason::IdentityDisabled => "this client is disabled",
            Reason::IdentityExpired => "this client's registration has expired",
            Reason::ScopeOverCeiling => "the token lacks a scope this route requires",
            Reason::RegistryUnavailable => "the identity registry is temporarily unavailable",
            Reason::TokenRevoked => "the token has been revoked",
            Reason::RevocationUnavailable => "the revocation list is temporarily unavailable",
            Reason::TokenSuspended => "the token is suspended",
            Reason::StatusUnverifiable => "the token's status cannot be verified",
            Reason::StatusUnavailable => "the token's status is temporarily unavailable",
            Reason::TokenNotBound => "this route requires a sender-constrained token",
            Reason::MtlsCertificateMissing => {
                "the token is bound to a client certificate and none was presented"
            }
            Reason::MtlsBindingMismatch => "the token is bound to another client certificate",
            Reason::DpopProofMissing => "the request carries no DPoP proof",
            Reason::DpopProofInvalid => "the DPoP proof is invalid",
            Reason::DpopProofReplayed => "the DPoP proof was already used",
            Reason::DpopBindingMismatch => "the token is not bound to the key of this DPoP proof",
            Reason::RateLimited => "this client is over its rate limit",
            Reason::ConfigInvalid => "the gateway's authorization configuration is invalid",
            Reason::InternalError => "internal error",
        }
    }
}

impl fmt::Display for Reason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// RFC 6750 response classes (CONTRACT §2).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DenialClass {
    None,
    NoToken,
    InvalidRequest,
    InvalidToken,
    /// RFC 9449 §7.1: the DPoP proof, not the token, is at fault.
    InvalidDpopProof,
    InsufficientScope,
    /// A valid token that may not use this route for another reason than a
    /// scope (client, provider, no rule): 403 without `insufficient_scope`,
    /// so the client is not sent to fetch a scope it already holds.
    Forbidden,
    Unavailable,
    /// Over a rate limit: 429 with `Retry-After` and `RateLimit` fields.
    RateLimited,
    Internal,
}

impl DenialClass {
    pub fn status(self) -> u32 {
        match self {
            DenialClass::None => 200,
            DenialClass::NoToken | DenialClass::InvalidToken | DenialClass::InvalidDpopProof => 401,
            DenialClass::InvalidRequest => 400,
            DenialClass::InsufficientScope | DenialClass::Forbidden => 403,
            DenialClass::Unavailable => 503,
            DenialClass::RateLimited => 429,
            DenialClass::Internal => 500,
        }
    }

    /// The OAuth error code of the body and of `WWW-Authenticate`.
    pub fn error_code(self) -> &'static str {
        match self {
            DenialClass::None => "",
            DenialClass::NoToken => "unauthorized",
            DenialClass::InvalidRequest => "invalid_request",
            DenialClass::InvalidToken => "invalid_token",
            DenialClass::InvalidDpopProof => "invalid_dpop_proof",
            DenialClass::InsufficientScope => "insufficient_scope",
            DenialClass::Forbidden => "access_denied",
            DenialClass::Unavailable => "temporarily_unavailable",
            DenialClass::RateLimited => "rate_limited",
            DenialClass::Internal => "server_error",
        }
    }
}

/// A denial: the reason code and a message a platform engineer can act on.
/// Messages never contain the token.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Denial {
    pub reason: Reason,
    pub message: String,
}

impl Denial {
    pub fn new(reason: Reason, message: impl Into<String>) -> Self {
        Denial {
            reason,
            message: message.into(),
        }
    }
}

impl fmt::Display for Denial {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.reason, self.message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_reason_has_a_distinct_snake_case_code() {
        let mut seen = std::collections::HashSet::new();
        for r in Reason::ALL {
            let s = r.as_str();
            assert!(s.chars().all(|c| c.is_ascii_lowercase() || c == '_'), "{s}");
            assert!(seen.insert(s), "duplicate code {s}");
        }
    }

    #[test]
    fn statuses_follow_rfc6750_table() {
        assert_eq!(Reason::TokenMissing.class().status(), 401);
        assert_eq!(Reason::RequestMalformed.class().status(), 400);
        assert_eq!(Reason::SignatureInvalid.class().status(), 401);
        assert_eq!(Reason::InsufficientScope.class().status(), 403);
        assert_eq!(Reason::RouteNotAllowed.class().status(), 403);
        assert_eq!(Reason::JwksUnavailable.class().status(), 503);
        assert_eq!(Reason::Allowed.class().status(), 200);
    }
}
