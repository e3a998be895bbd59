//! Sender-constrained tokens: a token bound to a client certificate (RFC
//! 8705 §3, `cnf["x5t#S256"]`) or to a DPoP key (RFC 9449, `cnf.jkt`) is only
//! good with proof of that key on this request.

use crate::identity::shared::SharedStore;
use crate::identity::validate::Identity;
use crate::jose::base64url;
use crate::jose::dpop::{self, ProofKeys};
use crate::policy::config::{Binding, ProofOfPossession};
use crate::policy::path;
use crate::request::replay::{self, Claim};
use crate::vocab::reason::Reason;
use crate::vocab::text::clip;
use sha2::{Digest, Sha256};

/// The downstream connection's client certificate, as the gateway reports it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ClientCertificate {
    /// No TLS, or TLS without a client certificate.
    Absent,
    /// SHA-256 of the certificate's DER encoding.
    Sha256([u8; 32]),
    /// The gateway cannot tell (the message says why).
    Unknown(String),
}

impl ClientCertificate {
    /// From a SHA-256 in hex (Envoy's `connection.sha256_peer_certificate_digest`).
    pub fn from_hex_digest(hex: &[u8]) -> ClientCertificate {
        if hex.is_empty() {
            return ClientCertificate::Absent;
        }
        let mut out = [0u8; 32];
        let pairs = hex.chunks_exact(2);
        if hex.len() != 64 || pairs.len() != 32 {
            return ClientCertificate::Unknown(
                "the certificate digest is not 64 hex digits".into(),
            );
        }
        for (o, pair) in out.iter_mut().zip(pairs) {
            let digit = |b: u8| (b as char).to_digit(16);
            match pair {
                [h, l] => match (digit(*h), digit(*l)) {
                    (Some(h), Some(l)) => *o = (h * 16 + l) as u8,
                    _ => {
                        return ClientCertificate::Unknown(
                            "the certificate digest is not hex".into(),
                        )
                    }
                },
                _ => return ClientCertificate::Unknown("the certificate digest is not hex".into()),
            }
        }
        ClientCertificate::Sha256(out)
    }

    /// From the certificate in PEM (nginx's `$ssl_client_raw_cert`): the
    /// digest is taken over the DER inside.
    pub fn from_pem(pem: &[u8]) -> ClientCertificate {
        let text = String::from_utf8_lossy(pem);
        let text = text.trim();
        if text.is_empty() {
            return ClientCertificate::Absent;
        }
        let body: String = text
            .lines()
            .map(str::trim)
            .skip_while(|l| *l != "-----BEGIN CERTIFICATE-----")
            .skip(1)
            .take_while(|l| *l != "-----END CERTIFICATE-----")
            .collect();
        use base64::Engine;
        match base64::engine::general_purpose::STANDARD.decode(body.as_bytes()) {
            Ok(der) if !der.is_empty() => {
                let digest = Sha256::digest(&der);
                let mut out = [0u8; 32];
                for (o, b) in out.iter_mut().zip(digest.iter()) {
                    *o = *b;
                }
                ClientCertificate::Sha256(out)
            }
            _ => {
                ClientCertificate::Unknown("the client certificate is not a PEM certificate".into())
            }
        }
    }
}

/// The scheme of the `Authorization` header the token came in.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Scheme {
    #[default]
    Bearer,
    Dpop,
}

/// Which bindings were verified on this request.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Bound {
    pub mtls: bool,
    pub dpop: bool,
}

impl Bound {
    pub fn any(self) -> bool {
        self.mtls || self.dpop
    }

    /// The audit line's `binding`.
    pub fn name(self) -> Option<&'static str> {
        match (self.mtls, self.dpop) {
            (false, false) => None,
            (true, false) => Some("mtls"),
            (false, true) => Some("dpop"),
            (true, true) => Some("mtls+dpop"),
        }
    }
}

/// What a binding check needs of the request.
pub struct Presented<'a> {
    pub token: &'a str,
    pub scheme: Scheme,
    pub method: &'a str,
    /// `:scheme` and `:authority` of the request, for the proof's `htu`.
    pub url_scheme: Option<&'a str>,
    pub authority: Option<&'a str>,
    pub normalized_path: &'a str,
    /// Every `DPoP` header value.
    pub proofs: Vec<&'a str>,
    pub client_certificate: &'a dyn Fn() -> ClientCertificate,
    pub shared: Option<&'a dyn SharedStore>,
    pub replay_capacity: usize,
    pub skew_s: u64,
    pub now: u64,
}

pub type Refusal = (Reason, String);

/// Checks the token's bindings under the provider's policy; `demanded` when
/// the rule accepts sender-constrained tokens only.
pub fn check(
    pop: &ProofOfPossession,
    id: &Identity,
    p: &Presented<'_>,
    demanded: Option<&str>,
    keys: Option<&mut ProofKeys>,
) -> Result<Bound, Refusal> {
    let mut bound = Bound::default();
    if pop.mtls != Binding::Off {
        if let Some(x5t) = &id.cnf.x5t_s256 {
            certificate(x5t, p)?;
            bound.mtls = true;
        } else if pop.mtls == Binding::Required {
            return Err((
                Reason::TokenNotBound,
                "this provider requires certificate-bound tokens (proof_of_possession.mtls: required); the token has no cnf x5t#S256".into(),
            ));
        }
    }
    if pop.dpop != Binding::Off {
        match (&id.cnf.jkt, p.scheme) {
            (Some(jkt), Scheme::Dpop) => {
                proof(pop, jkt, p, keys)?;
                bound.dpop = true;
            }
            (Some(_), Scheme::Bearer) => {
                return Err((
                    Reason::DpopBindingMismatch,
                    "the token is DPoP-bound (cnf.jkt) but came with the Bearer scheme; send it as `Authorization: DPoP <token>` with a DPoP proof".into(),
                ))
            }
            (None, Scheme::Dpop) => {
                return Err((
                    Reason::DpopBindingMismatch,
                    "the token came with the DPoP scheme but is not DPoP-bound (no cnf.jkt)"
                        .into(),
                ))
            }
            (None, Scheme::Bearer) if !p.proofs.is_empty() => {
                return Err((
                    Reason::DpopBindingMismatch,
                    "a DPoP proof came with a Bearer token; a DPoP-bound token goes with the DPoP scheme".into(),
                ))
            }
            (None, Scheme::Bearer) => {}
        }
        if pop.dpop == Binding::Required && !bound.dpop {
            return Err((
                Reason::TokenNotBound,
                "this provider requires DPoP-bound tokens (proof_of_possession.dpop: required); the token has no cnf.jkt".into(),
            ));
        }
    }
    if id.cnf.unsupported && !bound.any() {
        return Err((
            Reason::TokenNotBound,
            "the token's cnf names a confirmation method Scopegate cannot check (it checks jkt and x5t#S256)".into(),
        ));
    }
    if let Some(rule) = demanded {
        if !bound.any() {
            return Err((
                Reason::TokenNotBound,
                format!(
                    "rule \"{}\" requires a sender-constrained token (mTLS- or DPoP-bound, verified)",
                    clip(rule, 64)
                ),
            ));
        }
    }
    Ok(bound)
}

fn certificate(x5t: &str, p: &Presented<'_>) -> Result<(), Refusal> {
    match (p.client_certificate)() {
        ClientCertificate::Absent => Err((
            Reason::MtlsCertificateMissing,
            "the token is bound to a client certificate (cnf x5t#S256) and the connection presented none".into(),
        )),
        ClientCertificate::Unknown(why) => Err((
            Reason::MtlsCertificateMissing,
            format!("the token is bound to a client certificate and the gateway cannot read it: {why}"),
        )),
        ClientCertificate::Sha256(digest) => {
            if base64url::encode(&digest) == x5t {
                Ok(())
            } else {
                Err((
                    Reason::MtlsBindingMismatch,
                    "the token is bound to another client certificate than the connection's (cnf x5t#S256 differs)".into(),
                ))
            }
        }
    }
}

fn proof(
    pop: &ProofOfPossession,
    jkt: &str,
    p: &Presented<'_>,
    keys: Option<&mut ProofKeys>,
) -> Result<(), Refusal> {
    let invalid = |m: String| (Reason::DpopProofInvalid, m);
    let text = match p.proofs.as_slice() {
        [] => {
            return Err((
                Reason::DpopProofMissing,
                "the DPoP-bound token came without a `DPoP` proof header".into(),
            ))
        }
        [one] => *one,
        _ => return Err(invalid("more than one `DPoP` header".into())),
    };
    let proof = dpop::verify_with(text, pop.dpop_algorithms, keys).map_err(invalid)?;
    if proof.htm != p.method {
        return Err(invalid(format!(
            "the DPoP proof is for method {}, not {}",
            clip(&proof.htm, 16),
            clip(p.method, 16)
        )));
    }
    let expected = request_url(p).ok_or_else(|| {
        invalid("the request has no :scheme or :authority to check the proof's htu against".into())
    })?;
    if proof_url(&proof.htu).as_deref() != Some(expected.as_str()) {
        return Err(invalid(format!(
            "the DPoP proof is for {}, not {}",
            clip(&proof.htu, 120),
            clip(&expected, 120)
        )));
    }
    let oldest = p.now.saturating_sub(pop.dpop_max_age_s + p.skew_s);
    if proof.iat < oldest {
        return Err(invalid(format!(
            "the DPoP proof was made {}s ago; at most {}s (dpop_max_age_s) plus {}s of clock skew",
            p.now.saturating_sub(proof.iat),
            pop.dpop_max_age_s,
            p.skew_s
        )));
    }
    if proof.iat > p.now.saturating_add(p.skew_s) {
        return Err(invalid(format!(
            "the DPoP proof was made {}s in the future (clock skew allowed: {}s)",
            proof.iat - p.now,
            p.skew_s
        )));
    }
    match proof.ath.as_deref() {
        Some(ath) if ath == dpop::access_token_hash(p.token) => {}
        Some(_) => {
            return Err(invalid(
                "the DPoP proof's ath is not the hash of this access token".into(),
            ))
        }
        None => {
            return Err(invalid(
                "the DPoP proof has no ath (the hash of the access token)".into(),
            ))
        }
    }
    if proof.jkt != jkt {
        return Err((
            Reason::DpopBindingMismatch,
            "the DPoP proof is signed with another key than the one the token is bound to (cnf.jkt)"
                .into(),
        ));
    }
    // Last: only a proof that passed everything else takes a replay slot.
    let Some(shared) = p.shared else {
        return Err(invalid(
            "no replay cache is available on this gateway, so DPoP proofs cannot be accepted"
                .into(),
        ));
    };
    let expires = proof
        .iat
        .saturating_add(pop.dpop_max_age_s + p.skew_s)
        .max(p.now.saturating_add(p.skew_s))
        .saturating_add(1);
    match replay::claim(
        shared,
        p.replay_capacity,
        &replay::digest(&proof.jkt, &proof.jti),
        expires,
        p.now,
    ) {
        Claim::Fresh => Ok(()),
        Claim::Replayed => Err((
            Reason::DpopProofReplayed,
            format!(
                "the DPoP proof with jti \"{}\" was already used",
                clip(&proof.jti, 64)
            ),
        )),
        Claim::Full => Err(invalid(format!(
            "the DPoP replay cache is full ({} proofs within their window); raise dpop_replay_capacity or lower dpop_max_age_s",
            p.replay_capacity
        ))),
        Claim::Unavailable(why) => Err(invalid(format!(
            "the DPoP replay cache cannot be written: {why}"
        ))),
    }
}

/// The request's URL as a proof's `htu` must name it: scheme and host in
/// lower case, no default port, the normalized path, no query.
fn request_url(p: &Presented<'_>) -> Option<String> {
    origin(p.url_scheme?, p.authority?).map(|o| format!("{o}{}", p.normalized_path))
}

/// A proof's `htu` in the same form (RFC 9449 §4.3: query and fragment are
/// ignored; RFC 3986 §6.2.2–6.2.3 normalization).
fn proof_url(htu: &str) -> Option<String> {
    let end = htu.find(['?', '#']).unwrap_or(htu.len());
    let (scheme, rest) = htu.get(..end)?.split_once("://")?;
    let (authority, raw_path) = match rest.find('/') {
        Some(i) => (rest.get(..i)?, rest.get(i..)?),
        None => (rest, "/"),
    };
    let normalized = path::normalize(raw_path).ok()?;
    origin(scheme, authority).map(|o| format!("{o}{normalized}"))
}

fn origin(scheme: &str, authority: &str) -> Option<String> {
    let scheme = scheme.to_ascii_lowercase();
    if authority.is_empty() || authority.contains('@') {
        return None;
    }
    let authority = authority.to_ascii_lowercase();
    let default_port = match scheme.as_str() {
        "https" => ":443",
        "http" => ":80",
        _ => return None,
    };
    let host = authority.strip_suffix(default_port).unwrap_or(&authority);
    Some(format!("{scheme}://{host}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn htu_ignores_query_fragment_case_and_default_port() {
        assert_eq!(
            proof_url("HTTPS://API.Example.test:443/orders/1?x=1#f").as_deref(),
            Some("https://api.example.test/orders/1")
        );
        assert_eq!(
            proof_url("https://api.example.test:8443/a/./b/../c").as_deref(),
            Some("https://api.example.test:8443/a/c")
        );
        assert_eq!(proof_url("http://h").as_deref(), Some("http://h/"));
        assert_eq!(proof_url("ftp://h/x"), None);
        assert_eq!(proof_url("https://user@h/x"), None);
        assert_eq!(proof_url("/relative"), None);
    }
}
