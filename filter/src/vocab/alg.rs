//! JOSE signature algorithms Scopegate accepts. Only asymmetric ones exist here:
//! `none` and HMAC cannot be named, so they cannot be configured or accepted.

use std::fmt;

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Alg {
    RS256,
    RS384,
    RS512,
    PS256,
    PS384,
    PS512,
    ES256,
    ES384,
    EdDSA,
}

/// The kind of key an algorithm needs; a key of another kind never verifies it.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum KeyKind {
    Rsa,
    EcP256,
    EcP384,
    Ed25519,
}

impl Alg {
    pub const ALL: [Alg; 9] = [
        Alg::RS256,
        Alg::RS384,
        Alg::RS512,
        Alg::PS256,
        Alg::PS384,
        Alg::PS512,
        Alg::ES256,
        Alg::ES384,
        Alg::EdDSA,
    ];

    pub fn parse(s: &str) -> Option<Alg> {
        Alg::ALL.into_iter().find(|a| a.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Alg::RS256 => "RS256",
            Alg::RS384 => "RS384",
            Alg::RS512 => "RS512",
            Alg::PS256 => "PS256",
            Alg::PS384 => "PS384",
            Alg::PS512 => "PS512",
            Alg::ES256 => "ES256",
            Alg::ES384 => "ES384",
            Alg::EdDSA => "EdDSA",
        }
    }

    pub fn key_kind(self) -> KeyKind {
        match self {
            Alg::RS256 | Alg::RS384 | Alg::RS512 | Alg::PS256 | Alg::PS384 | Alg::PS512 => {
                KeyKind::Rsa
            }
            Alg::ES256 => KeyKind::EcP256,
            Alg::ES384 => KeyKind::EcP384,
            Alg::EdDSA => KeyKind::Ed25519,
        }
    }

    fn bit(self) -> u16 {
        1 << (self as u16)
    }
}

impl fmt::Display for Alg {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why an `alg` value from a token or a configuration cannot be used.
pub fn refusal(name: &str) -> String {
    let upper = name.to_ascii_uppercase();
    if upper == "NONE" {
        "unsigned tokens (alg \"none\") are never accepted".to_string()
    } else if upper.starts_with("HS") {
        format!("HMAC algorithm \"{name}\" is never accepted: only asymmetric signatures can be verified with a public key set")
    } else {
        format!(
            "algorithm \"{name}\" is not supported; supported: {}",
            Alg::ALL.map(Alg::as_str).join(", ")
        )
    }
}

/// A set of algorithms, as a bit set: membership is checked on every request.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct AlgSet(u16);

impl AlgSet {
    pub fn all() -> Self {
        AlgSet(Alg::ALL.iter().fold(0, |acc, a| acc | a.bit()))
    }

    pub fn insert(&mut self, alg: Alg) {
        self.0 |= alg.bit();
    }

    pub fn contains(self, alg: Alg) -> bool {
        self.0 & alg.bit() != 0
    }

    pub fn iter(self) -> impl Iterator<Item = Alg> {
        Alg::ALL.into_iter().filter(move |a| self.contains(*a))
    }

    pub fn names(self) -> String {
        self.iter().map(Alg::as_str).collect::<Vec<_>>().join(", ")
    }
}

impl FromIterator<Alg> for AlgSet {
    fn from_iter<I: IntoIterator<Item = Alg>>(iter: I) -> Self {
        let mut set = AlgSet::default();
        for a in iter {
            set.insert(a);
        }
        set
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn none_and_hmac_cannot_be_named() {
        for name in [
            "none", "None", "NONE", "HS256", "HS384", "HS512", "ES512", "rs256", "",
        ] {
            assert_eq!(Alg::parse(name), None, "{name}");
        }
        assert!(refusal("nOnE").contains("never accepted"));
        assert!(refusal("HS256").contains("HMAC"));
    }

    #[test]
    fn every_alg_round_trips_and_has_one_key_kind() {
        for a in Alg::ALL {
            assert_eq!(Alg::parse(a.as_str()), Some(a));
        }
        assert_eq!(Alg::PS384.key_kind(), KeyKind::Rsa);
        assert_eq!(Alg::ES384.key_kind(), KeyKind::EcP384);
    }

    #[test]
    fn alg_set_membership() {
        let set: AlgSet = [Alg::RS256, Alg::EdDSA].into_iter().collect();
        assert!(set.contains(Alg::RS256) && set.contains(Alg::EdDSA));
        assert!(!set.contains(Alg::ES256));
        assert_eq!(set.names(), "RS256, EdDSA");
        assert_eq!(AlgSet::all().iter().count(), 9);
    }
}
