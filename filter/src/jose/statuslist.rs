//! IETF Token Status List (draft-ietf-oauth-status-list, JWT format only):
//! the `status` claim of a referenced token, and the signed Status List Token
//! it points at, down to the status of one index.
//!
//! Pure: the caller fetches the token from the reference's `uri`, passes the
//! issuer's key set, the allowed algorithms and the time; nothing here does
//! I/O. The steps follow the draft's "Validation Rules": the JWS is parsed by
//! [`token::parse`] (strict encoding, duplicate members refused), its header
//! must say `typ: statuslist+jwt`, the signature must verify with one of the
//! caller's keys (asymmetric algorithms only: `none` and HMAC cannot even be
//! named), `sub` must equal the URI the token was fetched from, `iat` is
//! required, `exp` and `nbf` are checked with the clock skew, and only then is
//! `lst` decompressed, within [`Limits`], so unauthenticated bytes never reach
//! the inflater and a zlib bomb stops at the output limit without allocating
//! past it.
//!
//! The list is a byte array, each index a block of `bits` (1, 2, 4 or 8)
//! packed from the least significant bit of byte 0 up: for `bits = 2`, byte 0
//! holds index 0 in bits 0-1, index 1 in bits 2-3, and so on.

use crate::jose::base64url;
use crate::jose::jwks::KeySet;
use crate::jose::token;
use crate::vocab::alg::AlgSet;
use crate::vocab::reason::Reason;
use crate::vocab::text::clip;
use miniz_oxide::inflate::core::{decompress, inflate_flags, DecompressorOxide};
use miniz_oxide::inflate::TINFLStatus;
use serde_json::{Map, Value};
use std::fmt;

/// Status Type 0x00: the referenced token is valid.
pub const VALID: u8 = 0;
/// Status Type 0x01: revoked, for good.
pub const INVALID: u8 = 1;
/// Status Type 0x02: temporarily invalid.
pub const SUSPENDED: u8 = 2;

/// The registered name of a status value, for messages and logs.
pub fn status_name(status: u8) -> &'static str {
    match status {
        VALID => "VALID",
        INVALID => "INVALID",
        SUSPENDED => "SUSPENDED",
        3 | 0x0C..=0x0F => "application-specific",
        _ => "unregistered",
    }
}

/// The header `typ` a Status List Token in JWT format carries.
pub const TYP: &str = "statuslist+jwt";

/// A referenced token's pointer into a status list:
/// `"status": {"status_list": {"idx": N, "uri": "..."}}`.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Reference {
    pub idx: u64,
    pub uri: String,
}

/// Size limits applied while reading a Status List Token.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Limits {
    /// The whole token text (compact JWS).
    pub max_token_bytes: usize,
    /// `lst` after base64url decoding, before inflating.
    pub max_compressed_bytes: usize,
    /// `lst` after inflating: the status bytes kept in memory. The inflater's
    /// buffer never grows past it.
    pub max_list_bytes: usize,
}

impl Limits {
    /// 16 MiB of statuses: 134 million 1-bit entries.
    pub const DEFAULT_MAX_LIST_BYTES: usize = 16 << 20;
    /// 4 MiB compressed: every 10-million-entry list, or 100 million entries
    /// at up to 5% revoked (the draft's "Size Comparison" appendix).
    pub const DEFAULT_MAX_COMPRESSED_BYTES: usize = 4 << 20;
    /// Room for a 4 MiB `lst` in base64url (4/3 of it) plus the rest.
    pub const DEFAULT_MAX_TOKEN_BYTES: usize = 6 << 20;
}

impl Default for Limits {
    fn default() -> Self {
        Limits {
            max_token_bytes: Self::DEFAULT_MAX_TOKEN_BYTES,
            max_compressed_bytes: Self::DEFAULT_MAX_COMPRESSED_BYTES,
            max_list_bytes: Self::DEFAULT_MAX_LIST_BYTES,
        }
    }
}

/// A verified, decompressed status list.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct StatusList {
    /// Bits per referenced token: 1, 2, 4 or 8.
    pub bits: u8,
    /// The uncompressed byte array.
    pub bytes: Vec<u8>,
    pub iat: u64,
    pub exp: Option<u64>,
    /// Seconds the token may be cached before a fresh copy should be fetched.
    pub ttl: Option<u64>,
}

impl StatusList {
    /// The status at `idx`; `None` when `idx` is past the end of the list
    /// (the draft: no statement can be made, the referenced token is refused),
    /// or when `bits` is not 1, 2, 4 or 8.
    pub fn status(&self, idx: u64) -> Option<u8> {
        status_at(self.bits, &self.bytes, idx)
    }

    /// How many indexes the list holds (its byte length times `8 / bits`).
    pub fn len(&self) -> u64 {
        entries(self.bits, self.bytes.len())
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

fn valid_bits(bits: u8) -> bool {
    matches!(bits, 1 | 2 | 4 | 8)
}

fn entries(bits: u8, len: usize) -> u64 {
    if !valid_bits(bits) {
        return 0;
    }
    (len as u64).saturating_mul(u64::from(8 / bits))
}

/// The status at `idx` of a byte array packed with `bits` per entry.
pub fn status_at(bits: u8, bytes: &[u8], idx: u64) -> Option<u8> {
    if !valid_bits(bits) {
        return None;
    }
    let per_byte = u64::from(8 / bits);
    let byte = *bytes.get(usize::try_from(idx / per_byte).ok()?)?;
    let shift = (idx % per_byte).checked_mul(u64::from(bits))?;
    let mask = u8::MAX >> (8 - bits);
    Some(byte.checked_shr(u32::try_from(shift).ok()?)? & mask)
}

/// Why a status reference or a Status List Token cannot be used.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum StatusError {
    /// The referenced token's `status` claim is not of the draft's shape.
    MalformedReference(String),
    /// The token text is over `Limits::max_token_bytes`.
    TokenTooLarge {
        size: usize,
        limit: usize,
    },
    /// Not a well-formed compact JWS (from the strict token parser).
    Malformed(String),
    /// The header's `alg` is not an asymmetric algorithm Scopegate verifies.
    UnsupportedAlgorithm(String),
    /// A supported algorithm the caller does not allow for this issuer.
    AlgorithmNotAllowed {
        alg: String,
        allowed: String,
    },
    /// The header's `typ` is missing or is not `statuslist+jwt`.
    WrongType(Option<String>),
    /// No key of the set can verify this `alg` (and `kid`).
    KeyNotFound {
        alg: String,
        kid: Option<String>,
    },
    /// Keys were tried and none verified the signature.
    BadSignature {
        alg: String,
        tried: usize,
    },
    /// A required claim is absent.
    MissingClaim(&'static str),
    /// A claim is present with a value of the wrong type or range.
    BadClaim {
        claim: &'static str,
        why: String,
    },
    /// `sub` is not the URI the token was fetched from.
    SubjectMismatch {
        expected: String,
        found: String,
    },
    Expired {
        exp: u64,
        now: u64,
        skew: u64,
    },
    NotYetValid {
        nbf: u64,
        now: u64,
        skew: u64,
    },
    IssuedInFuture {
        iat: u64,
        now: u64,
        skew: u64,
    },
    /// `status_list.bits` is not 1, 2, 4 or 8.
    BadBits(String),
    /// `status_list.lst` is not a strict base64url string.
    BadLstEncoding(String),
    /// The decoded `lst` is over `Limits::max_compressed_bytes`.
    CompressedTooLarge {
        size: usize,
        limit: usize,
    },
    /// The decoded `lst` is not a complete, intact zlib stream.
    Decompression(String),
    /// Inflating `lst` would exceed `Limits::max_list_bytes`.
    DecompressedTooLarge {
        limit: usize,
    },
    /// Bytes follow the end of the zlib stream.
    TrailingData(usize),
    /// Encoding only: a status value does not fit in `bits`.
    StatusTooWide {
        idx: usize,
        status: u8,
        bits: u8,
    },
}

const DRAFT: &str = "draft-ietf-oauth-status-list";

impl fmt::Display for StatusError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            StatusError::MalformedReference(why) => write!(
                f,
                "the token's `status` claim is malformed: {why} (expected \
                 {{\"status_list\": {{\"idx\": <non-negative integer>, \"uri\": \"<URI>\"}}}}, \
                 {DRAFT} \"Referenced Token in JOSE\"); the token issuer must fix its tokens"
            ),
            StatusError::TokenTooLarge { size, limit } => write!(
                f,
                "status list token is {size} bytes; the limit is {limit}: raise the limit \
                 or ask the status issuer to split its list"
            ),
            StatusError::Malformed(why) => write!(f, "status list token is malformed: {why}"),
            StatusError::UnsupportedAlgorithm(why) => {
                write!(f, "status list token is not signed usably: {why}")
            }
            StatusError::AlgorithmNotAllowed { alg, allowed } => write!(
                f,
                "status list token is signed with {alg}, which is not allowed for this \
                 issuer (allowed: {allowed})"
            ),
            StatusError::WrongType(None) => write!(
                f,
                "status list token header has no `typ`; it must be \"{TYP}\" ({DRAFT} \
                 \"Status List Token in JWT Format\"): check that the status `uri` points \
                 at a status list, not at another kind of token"
            ),
            StatusError::WrongType(Some(typ)) => write!(
                f,
                "status list token header `typ` is \"{}\"; it must be \"{TYP}\": check that \
                 the status `uri` points at a status list, not at another kind of token",
                clip(typ, 40)
            ),
            StatusError::KeyNotFound {
                alg,
                kid: Some(kid),
            } => write!(
                f,
                "no {alg} key with kid \"{}\" in the issuer's key set verifies status list \
                 tokens: the status issuer must sign with a key the issuer publishes",
                clip(kid, 64)
            ),
            StatusError::KeyNotFound { alg, kid: None } => write!(
                f,
                "status list token has no kid and the issuer's key set has no {alg} key"
            ),
            StatusError::BadSignature { alg, tried } => write!(
                f,
                "status list token signature ({alg}) does not verify with the issuer's \
                 key{} ({tried} tried): the list may be forged or signed by another party",
                if *tried == 1 { "" } else { "s" }
            ),
            StatusError::MissingClaim(claim) => write!(
                f,
                "status list token has no `{claim}` claim; {DRAFT} requires it"
            ),
            StatusError::BadClaim { claim, why } => {
                write!(f, "status list token claim `{claim}` {why}")
            }
            StatusError::SubjectMismatch { expected, found } => write!(
                f,
                "status list token `sub` is \"{}\" but it was fetched from \"{}\": the \
                 `sub` must equal the referenced token's status `uri`",
                clip(found, 120),
                clip(expected, 120)
            ),
            StatusError::Expired { exp, now, skew } => write!(
                f,
                "status list token expired {}s ago (exp {exp}; clock skew allowed: {skew}s): \
                 fetch a fresh copy, or check the status provider updates it",
                now.saturating_sub(*exp)
            ),
            StatusError::NotYetValid { nbf, now, skew } => write!(
                f,
                "status list token is not valid for another {}s (nbf {nbf}; clock skew \
                 allowed: {skew}s): check the clocks",
                nbf.saturating_sub(*now)
            ),
            StatusError::IssuedInFuture { iat, now, skew } => write!(
                f,
                "status list token was issued {}s in the future (iat {iat}; clock skew \
                 allowed: {skew}s): check the clocks",
                iat.saturating_sub(*now)
            ),
            StatusError::BadBits(found) => write!(
                f,
                "status list `bits` is {}; it must be 1, 2, 4 or 8",
                clip(found, 20)
            ),
            StatusError::BadLstEncoding(why) => write!(
                f,
                "status list `lst` is not base64url without padding: {why}"
            ),
            StatusError::CompressedTooLarge { size, limit } => write!(
                f,
                "status list `lst` is {size} bytes compressed; the limit is {limit}: raise \
                 the limit or ask the status issuer to split its list"
            ),
            StatusError::Decompression(why) => write!(
                f,
                "status list `lst` is not a valid zlib (DEFLATE) stream: {why}"
            ),
            StatusError::DecompressedTooLarge { limit } => write!(
                f,
                "status list `lst` inflates to more than {limit} bytes, the limit: raise it \
                 if the list is genuine, or suspect a decompression bomb"
            ),
            StatusError::TrailingData(n) => write!(
                f,
                "status list `lst` has {n} byte(s) after the end of its zlib stream"
            ),
            StatusError::StatusTooWide { idx, status, bits } => write!(
                f,
                "status {status} at index {idx} does not fit in {bits} bit(s)"
            ),
        }
    }
}

impl std::error::Error for StatusError {}

/// The status list reference in an access token's claims. `Ok(None)` when
/// the token has no `status` claim, or a `status` naming only mechanisms
/// other than `status_list`; an error when the claim is there but malformed.
pub fn referenced(claims: &Value) -> Result<Option<Reference>, StatusError> {
    let bad = |why: &str| StatusError::MalformedReference(why.to_string());
    let claims = claims
        .as_object()
        .ok_or_else(|| bad("the claims are not a JSON object"))?;
    let Some(status) = claims.get("status") else {
        return Ok(None);
    };
    let status = status
        .as_object()
        .ok_or_else(|| bad("`status` is not a JSON object"))?;
    if status.is_empty() {
        return Err(bad("`status` names no status mechanism"));
    }
    let Some(list) = status.get("status_list") else {
        return Ok(None);
    };
    let list = list
        .as_object()
        .ok_or_else(|| bad("`status.status_list` is not a JSON object"))?;
    let idx = match list.get("idx") {
        None => return Err(bad("`status.status_list` has no `idx`")),
        Some(v) => v
            .as_u64()
            .ok_or_else(|| bad("`status.status_list.idx` is not a non-negative integer"))?,
    };
    let uri = match list.get("uri") {
        None => return Err(bad("`status.status_list` has no `uri`")),
        Some(Value::String(s)) => s,
        Some(_) => return Err(bad("`status.status_list.uri` is not a string")),
    };
    if !is_absolute_uri(uri) {
        return Err(StatusError::MalformedReference(format!(
            "`status.status_list.uri` \"{}\" is not an absolute URI",
            clip(uri, 80)
        )));
    }
    Ok(Some(Reference {
        idx,
        uri: uri.clone(),
    }))
}

/// RFC 3986: a scheme (`ALPHA *( ALPHA / DIGIT / "+" / "-" / "." )`), a colon,
/// and only visible ASCII after it.
fn is_absolute_uri(uri: &str) -> bool {
    let Some((scheme, rest)) = uri.split_once(':') else {
        return false;
    };
    let mut chars = scheme.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic())
        && chars.all(|c| c.is_ascii_alphanumeric() || matches!(c, '+' | '-' | '.'))
        && !rest.is_empty()
        && rest.bytes().all(|b| b.is_ascii_graphic())
}

/// Verifies a Status List Token fetched from `expected_uri` and returns its
/// decompressed list. `text` is the response body (surrounding ASCII
/// whitespace is ignored); `keys` is the issuer's key set and `algorithms`
/// the algorithms allowed for it; `now` and `skew` are Unix seconds.
pub fn parse_token(
    text: &[u8],
    expected_uri: &str,
    keys: &KeySet,
    algorithms: AlgSet,
    now: u64,
    skew: u64,
    limits: &Limits,
) -> Result<StatusList, StatusError> {
    let text = text.trim_ascii();
    if text.len() > limits.max_token_bytes {
        return Err(StatusError::TokenTooLarge {
            size: text.len(),
            limit: limits.max_token_bytes,
        });
    }
    let text = std::str::from_utf8(text)
        .map_err(|_| StatusError::Malformed("the token is not UTF-8 text".to_string()))?;
    let parsed = token::parse(text, limits.max_token_bytes).map_err(|d| {
        if d.reason == Reason::UnsupportedAlgorithm {
            StatusError::UnsupportedAlgorithm(d.message)
        } else {
            StatusError::Malformed(d.message)
        }
    })?;
    check_typ(text)?;
    let alg = parsed.alg;
    if !algorithms.contains(alg) {
        return Err(StatusError::AlgorithmNotAllowed {
            alg: alg.to_string(),
            allowed: algorithms.names(),
        });
    }
    let mut tried = 0;
    let mut verified = false;
    for key in keys.candidates(alg, parsed.kid.as_deref()) {
        tried += 1;
        if key.key.verify(alg, parsed.signing_input, &parsed.signature) {
            verified = true;
            break;
        }
    }
    if tried == 0 {
        return Err(StatusError::KeyNotFound {
            alg: alg.to_string(),
            kid: parsed.kid,
        });
    }
    if !verified {
        return Err(StatusError::BadSignature {
            alg: alg.to_string(),
            tried,
        });
    }

    let claims = &parsed.claims;
    let sub = claims
        .sub
        .as_deref()
        .ok_or(StatusError::MissingClaim("sub"))?;
    if sub != expected_uri {
        return Err(StatusError::SubjectMismatch {
            expected: expected_uri.to_string(),
            found: sub.to_string(),
        });
    }
    let iat = claims.iat.ok_or(StatusError::MissingClaim("iat"))?;
    if iat > now.saturating_add(skew) {
        return Err(StatusError::IssuedInFuture { iat, now, skew });
    }
    if let Some(exp) = claims.exp {
        if now > exp.saturating_add(skew) {
            return Err(StatusError::Expired { exp, now, skew });
        }
    }
    if let Some(nbf) = claims.nbf {
        if now.saturating_add(skew) < nbf {
            return Err(StatusError::NotYetValid { nbf, now, skew });
        }
    }
    let ttl = ttl(&claims.all)?;
    let list = claims
        .all
        .get("status_list")
        .ok_or(StatusError::MissingClaim("status_list"))?;
    let (bits, bytes) = decode_list(list, limits)?;
    Ok(StatusList {
        bits,
        bytes,
        iat,
        exp: claims.exp,
        ttl,
    })
}

/// RFC 7515 §4.1.9: `typ` is compared case-insensitively, and an
/// `application/` prefix may be left out.
fn check_typ(text: &str) -> Result<(), StatusError> {
    let header = text
        .split('.')
        .next()
        .and_then(|h| base64url::decode(h.as_bytes()).ok())
        .and_then(|h| serde_json::from_slice::<Map<String, Value>>(&h).ok())
        .ok_or_else(|| StatusError::Malformed("the header is not a JSON object".to_string()))?;
    match header.get("typ") {
        None => Err(StatusError::WrongType(None)),
        Some(Value::String(typ)) => {
            let bare = typ
                .get(..12)
                .filter(|p| p.eq_ignore_ascii_case("application/"))
                .and_then(|_| typ.get(12..))
                .unwrap_or(typ);
            if bare.eq_ignore_ascii_case(TYP) {
                Ok(())
            } else {
                Err(StatusError::WrongType(Some(typ.clone())))
            }
        }
        Some(other) => Err(StatusError::WrongType(Some(other.to_string()))),
    }
}

/// `ttl`: a positive number of seconds (a fraction is dropped).
fn ttl(all: &Map<String, Value>) -> Result<Option<u64>, StatusError> {
    let Some(v) = all.get("ttl") else {
        return Ok(None);
    };
    let bad = || StatusError::BadClaim {
        claim: "ttl",
        why: format!(
            "is {}; it must be a positive number of seconds",
            clip(&v.to_string(), 30)
        ),
    };
    let n = v.as_number().ok_or_else(bad)?;
    let secs = match n.as_u64() {
        Some(u) => u,
        None => match n.as_f64() {
            Some(f) if f.is_finite() && (1.0..=9_007_199_254_740_991.0).contains(&f) => f as u64,
            _ => return Err(bad()),
        },
    };
    if secs == 0 {
        return Err(bad());
    }
    Ok(Some(secs))
}

/// Reads the JSON `StatusList` (`{"bits": .., "lst": ..}`) into its bit size
/// and uncompressed bytes, within `limits`.
pub fn decode_list(status_list: &Value, limits: &Limits) -> Result<(u8, Vec<u8>), StatusError> {
    let obj = status_list
        .as_object()
        .ok_or_else(|| StatusError::BadClaim {
            claim: "status_list",
            why: "is not a JSON object with `bits` and `lst`".to_string(),
        })?;
    let bits = match obj.get("bits") {
        None => {
            return Err(StatusError::BadClaim {
                claim: "status_list",
                why: "has no `bits`".to_string(),
            })
        }
        Some(v) => v
            .as_u64()
            .and_then(|b| u8::try_from(b).ok())
            .filter(|b| valid_bits(*b))
            .ok_or_else(|| StatusError::BadBits(v.to_string()))?,
    };
    let lst = match obj.get("lst") {
        None => {
            return Err(StatusError::BadClaim {
                claim: "status_list",
                why: "has no `lst`".to_string(),
            })
        }
        Some(Value::String(s)) => s,
        Some(_) => {
            return Err(StatusError::BadLstEncoding(
                "it is not a string".to_string(),
            ))
        }
    };
    // Base64url turns 4 characters into 3 bytes: refuse before decoding.
    let decoded_len = lst.len() / 4 * 3 + (lst.len() % 4).saturating_sub(1);
    if decoded_len > limits.max_compressed_bytes {
        return Err(StatusError::CompressedTooLarge {
            size: decoded_len,
            limit: limits.max_compressed_bytes,
        });
    }
    let compressed = base64url::decode(lst.as_bytes())
        .map_err(|e| StatusError::BadLstEncoding(e.to_string()))?;
    let bytes = inflate_zlib(&compressed, limits.max_list_bytes)?;
    Ok((bits, bytes))
}

/// Inflates one complete zlib stream (RFC 1950, Adler-32 checked) into at
/// most `max_output` bytes. The buffer doubles from a small start and never
/// grows past `max_output`; bytes after the stream are refused.
pub fn inflate_zlib(input: &[u8], max_output: usize) -> Result<Vec<u8>, StatusError> {
    let flags = inflate_flags::TINFL_FLAG_PARSE_ZLIB_HEADER
        | inflate_flags::TINFL_FLAG_USING_NON_WRAPPING_OUTPUT_BUF;
    let mut out = vec![0u8; input.len().saturating_mul(4).max(1024).min(max_output)];
    let mut state = Box::<DecompressorOxide>::default();
    let mut rest = input;
    let mut out_pos = 0usize;
    loop {
        let (status, consumed, written) = decompress(&mut state, rest, &mut out, out_pos, flags);
        out_pos = out_pos.saturating_add(written);
        rest = rest.get(consumed..).unwrap_or_default();
        match status {
            TINFLStatus::Done => {
                if !rest.is_empty() {
                    return Err(StatusError::TrailingData(rest.len()));
                }
                out.truncate(out_pos);
                return Ok(out);
            }
            TINFLStatus::HasMoreOutput => {
                if out.len() >= max_output {
                    return Err(StatusError::DecompressedTooLarge { limit: max_output });
                }
                let grown = out.len().saturating_mul(2).max(1024).min(max_output);
                // `resize` alone may double the capacity past the limit.
                out.reserve_exact(grown.saturating_sub(out.len()));
                out.resize(grown, 0);
            }
            TINFLStatus::FailedCannotMakeProgress | TINFLStatus::NeedsMoreInput => {
                return Err(StatusError::Decompression(
                    "the stream is truncated".to_string(),
                ))
            }
            TINFLStatus::Adler32Mismatch => {
                return Err(StatusError::Decompression(
                    "the Adler-32 checksum does not match: the data is corrupt".to_string(),
                ))
            }
            _ => {
                return Err(StatusError::Decompression(
                    "the stream is corrupt (bad zlib header or DEFLATE block)".to_string(),
                ))
            }
        }
    }
}

/// Packs statuses, index 0 first, into the draft's byte array.
pub fn pack(bits: u8, statuses: &[u8]) -> Result<Vec<u8>, StatusError> {
    if !valid_bits(bits) {
        return Err(StatusError::BadBits(bits.to_string()));
    }
    let per_byte = usize::from(8 / bits);
    let mut bytes = vec![0u8; statuses.len().div_ceil(per_byte)];
    for (idx, &status) in statuses.iter().enumerate() {
        if u32::from(status) >> bits != 0 {
            return Err(StatusError::StatusTooWide { idx, status, bits });
        }
        let shift = (idx % per_byte) * usize::from(bits);
        if let Some(byte) = bytes.get_mut(idx / per_byte) {
            *byte |= status << shift;
        }
    }
    Ok(bytes)
}

/// The `lst` of a list of statuses: packed, zlib-compressed at the highest
/// level, base64url. For tests, demos and tools; the filter only reads lists.
pub fn encode_lst(bits: u8, statuses: &[u8]) -> Result<String, StatusError> {
    let bytes = pack(bits, statuses)?;
    Ok(base64url::encode(
        &miniz_oxide::deflate::compress_to_vec_zlib(&bytes, 9),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use std::time::Instant;

    fn list(bits: u8, lst: &str) -> StatusList {
        let (bits, bytes) =
            decode_list(&json!({"bits": bits, "lst": lst}), &Limits::default()).expect("decodes");
        StatusList {
            bits,
            bytes,
            iat: 0,
            exp: None,
            ttl: None,
        }
    }

    fn lst_of(compressed: &[u8]) -> String {
        base64url::encode(compressed)
    }

    fn decode_err(value: Value, limits: &Limits) -> StatusError {
        decode_list(&value, limits).expect_err("refused")
    }

    /// Every listed index has its status; every other index of the 2^20 is 0.
    fn check_vector(bits: u8, lst: &str, statuses: &[(u64, u8)]) {
        let l = list(bits, lst);
        assert_eq!(l.len(), 1 << 20, "bits {bits}");
        assert_eq!(l.bytes.len(), (1usize << 20) * usize::from(bits) / 8);
        for &(idx, want) in statuses {
            assert_eq!(l.status(idx), Some(want), "bits {bits}, idx {idx}");
        }
        let nonzero = (0..l.len()).filter(|&i| l.status(i) != Some(0)).count();
        let listed = statuses.iter().filter(|(_, s)| *s != 0).count();
        assert_eq!(nonzero, listed, "bits {bits}: unlisted non-zero statuses");
        assert_eq!(l.status(1 << 20), None);
        assert_eq!(l.status(u64::MAX), None);
        // The same statuses encode to a list that decodes the same.
        let mut all = vec![0u8; 1 << 20];
        for &(idx, s) in statuses {
            all[idx as usize] = s;
        }
        let again = list(bits, &encode_lst(bits, &all).expect("encodes"));
        assert_eq!(again.bytes, l.bytes, "bits {bits}");
    }

    #[test]
    fn draft_test_vector_1_bit() {
        check_vector(1, LST1, STATUS1);
    }

    #[test]
    fn draft_test_vector_2_bit() {
        check_vector(2, LST2, STATUS2);
    }

    #[test]
    fn draft_test_vector_4_bit() {
        check_vector(4, LST4, STATUS4);
    }

    #[test]
    fn draft_test_vector_8_bit() {
        check_vector(8, LST8, STATUS8);
    }

    /// The draft's "Compressed Byte Array" examples: 16 entries of 1 bit
    /// (bytes 0xB9 0xA3) and 12 entries of 2 bits (0xC9 0x44 0xF9), with the
    /// compressed hex and the JSON `lst` it prints for each.
    #[test]
    fn draft_body_examples() {
        let one = [1u8, 0, 0, 1, 1, 1, 0, 1, 1, 1, 0, 0, 0, 1, 0, 1];
        assert_eq!(pack(1, &one).expect("packs"), [0xB9, 0xA3]);
        let hex1 = [0x78, 0xda, 0xdb, 0xb9, 0x18, 0x00, 0x02, 0x17, 0x01, 0x5d];
        assert_eq!(inflate_zlib(&hex1, 100).expect("inflates"), [0xB9, 0xA3]);
        assert_eq!(lst_of(&hex1), "eNrbuRgAAhcBXQ");
        let l = list(1, "eNrbuRgAAhcBXQ");
        assert_eq!(l.bytes, [0xB9, 0xA3]);
        for (i, &s) in one.iter().enumerate() {
            assert_eq!(l.status(i as u64), Some(s), "1-bit idx {i}");
        }
        assert_eq!(l.status(16), None);

        let two = [1u8, 2, 0, 3, 0, 1, 0, 1, 1, 2, 3, 3];
        assert_eq!(pack(2, &two).expect("packs"), [0xC9, 0x44, 0xF9]);
        let hex2 = [
            0x78, 0xda, 0x3b, 0xe9, 0xf2, 0x13, 0x00, 0x03, 0xdf, 0x02, 0x07,
        ];
        assert_eq!(
            inflate_zlib(&hex2, 100).expect("inflates"),
            [0xC9, 0x44, 0xF9]
        );
        assert_eq!(lst_of(&hex2), "eNo76fITAAPfAgc");
        let l = list(2, "eNo76fITAAPfAgc");
        for (i, &s) in two.iter().enumerate() {
            assert_eq!(l.status(i as u64), Some(s), "2-bit idx {i}");
        }
        assert_eq!(l.status(12), None);
    }

    #[test]
    fn packing_is_least_significant_first() {
        let l = |bits, bytes: &[u8]| StatusList {
            bits,
            bytes: bytes.to_vec(),
            iat: 0,
            exp: None,
            ttl: None,
        };
        let one = l(1, &[0b0000_0001]);
        assert_eq!(
            (0..8).map(|i| one.status(i)).collect::<Vec<_>>(),
            [1, 0, 0, 0, 0, 0, 0, 0].map(Some)
        );
        let two = l(2, &[0b1110_0100]);
        assert_eq!(
            (0..4).map(|i| two.status(i)).collect::<Vec<_>>(),
            [0, 1, 2, 3].map(Some)
        );
        let four = l(4, &[0xA5, 0x0F]);
        assert_eq!(
            (0..5).map(|i| four.status(i)).collect::<Vec<_>>(),
            [Some(5), Some(10), Some(15), Some(0), None]
        );
        let eight = l(8, &[7, 255]);
        assert_eq!((eight.status(0), eight.status(1)), (Some(7), Some(255)));
        assert_eq!(eight.status(2), None);
        // A hand-built list with an impossible bit size answers nothing.
        assert_eq!(l(3, &[0xFF]).status(0), None);
        assert_eq!(l(0, &[0xFF]).status(0), None);
        assert_eq!(l(16, &[0xFF]).status(0), None);
        assert_eq!(l(3, &[0xFF]).len(), 0);
    }

    #[test]
    fn round_trips_every_bit_size() {
        for bits in [1u8, 2, 4, 8] {
            let max = u8::MAX >> (8 - bits);
            for n in [0usize, 1, 7, 8, 9, 1000] {
                let statuses: Vec<u8> = (0..n)
                    .map(|i| ((i * 7 + i / 3) % (usize::from(max) + 1)) as u8)
                    .collect();
                let l = list(bits, &encode_lst(bits, &statuses).expect("encodes"));
                for (i, &s) in statuses.iter().enumerate() {
                    assert_eq!(l.status(i as u64), Some(s), "bits {bits} n {n} idx {i}");
                }
                // Padding entries of the last byte read as 0, past it nothing.
                let padded = l.len();
                assert!(padded >= n as u64 && padded < n as u64 + u64::from(8 / bits));
                for i in n as u64..padded {
                    assert_eq!(l.status(i), Some(0));
                }
                assert_eq!(l.status(padded), None);
            }
            assert!(
                matches!(
                    pack(bits, &[0, max.saturating_add(1)]),
                    Err(StatusError::StatusTooWide { idx: 1, .. })
                ) || bits == 8
            );
        }
        assert!(matches!(pack(3, &[0]), Err(StatusError::BadBits(_))));
    }

    #[test]
    fn refuses_bad_bits() {
        let lst = encode_lst(8, &[1]).expect("encodes");
        for bits in [
            json!(0),
            json!(3),
            json!(5),
            json!(16),
            json!(256 + 1),
            json!(-1),
            json!(1.0),
            json!("1"),
            json!(null),
        ] {
            let err = decode_err(json!({"bits": bits, "lst": lst}), &Limits::default());
            assert!(matches!(err, StatusError::BadBits(_)), "{bits}: {err}");
            assert!(err.to_string().contains("1, 2, 4 or 8"), "{err}");
        }
        let err = decode_err(json!({"lst": lst}), &Limits::default());
        assert!(err.to_string().contains("no `bits`"), "{err}");
        let err = decode_err(json!({"bits": 1}), &Limits::default());
        assert!(err.to_string().contains("no `lst`"), "{err}");
        let err = decode_err(json!([1]), &Limits::default());
        assert!(matches!(err, StatusError::BadClaim { .. }), "{err}");
    }

    #[test]
    fn refuses_bad_lst_encodings() {
        let good = "eNrbuRgAAhcBXQ";
        let limits = Limits::default();
        for lst in [
            json!("eNrbuRgAAhcBXQ=="),
            json!("eNrbuRgAAhcBXQ+"),
            json!("eNrb uRgAAhcBXQ"),
            json!("eNrbu/gAAhcBXQ"),
            json!("eNrbuRgAAhcBXQ\n"),
            json!(42),
        ] {
            let err = decode_err(json!({"bits": 1, "lst": lst}), &limits);
            assert!(
                matches!(err, StatusError::BadLstEncoding(_)),
                "{lst}: {err}"
            );
        }
        // Truncated streams: every proper prefix of a valid one.
        let full = base64url::decode(good.as_bytes()).expect("b64");
        for cut in 0..full.len() {
            let err = inflate_zlib(&full[..cut], 1 << 20).expect_err("truncated");
            assert!(
                matches!(err, StatusError::Decompression(_)),
                "cut {cut}: {err}"
            );
        }
        // A flipped bit anywhere is refused (header, block or checksum), never
        // a panic; only the unused padding bits after the last block may
        // change without effect, and then the bytes are the same.
        let mut refused = 0;
        for i in 0..full.len() * 8 {
            let mut bad = full.clone();
            bad[i / 8] ^= 1 << (i % 8);
            match inflate_zlib(&bad, 1 << 20) {
                Ok(bytes) => assert_eq!(bytes, [0xB9, 0xA3], "bit {i}"),
                Err(_) => refused += 1,
            }
        }
        assert!(refused >= full.len() * 8 - 8, "{refused}");
        // Raw DEFLATE without the zlib wrapper, gzip, and plain garbage.
        let raw = miniz_oxide::deflate::compress_to_vec(&[0xB9, 0xA3], 9);
        for input in [
            raw,
            vec![0x1f, 0x8b, 8, 0, 0, 0, 0, 0],
            b"not zlib".to_vec(),
        ] {
            let err = decode_err(
                json!({"bits": 1, "lst": lst_of(&input)}),
                &Limits::default(),
            );
            assert!(matches!(err, StatusError::Decompression(_)), "{err}");
        }
        // Bytes after the stream.
        let mut trailing = full.clone();
        trailing.push(0);
        assert_eq!(
            inflate_zlib(&trailing, 1 << 20),
            Err(StatusError::TrailingData(1))
        );
    }

    #[test]
    fn zlib_bomb_stops_at_the_limit() {
        // 100 MiB of zeros compress to about 100 KiB.
        let bomb = miniz_oxide::deflate::compress_to_vec_zlib(&vec![0u8; 100 << 20], 6);
        assert!(bomb.len() < 200 << 10, "{}", bomb.len());
        let limits = Limits {
            max_compressed_bytes: 1 << 20,
            ..Limits::default()
        };
        let start = Instant::now();
        let err = decode_err(json!({"bits": 1, "lst": lst_of(&bomb)}), &limits);
        assert_eq!(
            err,
            StatusError::DecompressedTooLarge {
                limit: Limits::DEFAULT_MAX_LIST_BYTES
            }
        );
        assert!(err.to_string().contains("decompression bomb"), "{err}");
        assert!(start.elapsed().as_secs() < 5, "{:?}", start.elapsed());
        // A small limit refuses a small list too; exactly the size passes.
        let ok = miniz_oxide::deflate::compress_to_vec_zlib(&[7u8; 4096], 9);
        assert_eq!(inflate_zlib(&ok, 4096).map(|v| v.len()), Ok(4096));
        assert_eq!(
            inflate_zlib(&ok, 4095),
            Err(StatusError::DecompressedTooLarge { limit: 4095 })
        );
        assert_eq!(
            inflate_zlib(&ok, 0),
            Err(StatusError::DecompressedTooLarge { limit: 0 })
        );
    }

    #[test]
    fn compressed_size_limit_applies_before_decoding() {
        let limits = Limits {
            max_compressed_bytes: 10,
            ..Limits::default()
        };
        // 14 characters decode to 10 bytes: at the limit.
        assert!(decode_list(&json!({"bits": 1, "lst": "eNrbuRgAAhcBXQ"}), &limits).is_ok());
        let err = decode_err(json!({"bits": 1, "lst": "eNo76fITAAPfAgc"}), &limits);
        assert_eq!(
            err,
            StatusError::CompressedTooLarge {
                size: 11,
                limit: 10
            }
        );
        // Refused by its length even when it is not base64url at all.
        let err = decode_err(json!({"bits": 1, "lst": "!".repeat(100)}), &limits);
        assert!(
            matches!(err, StatusError::CompressedTooLarge { .. }),
            "{err}"
        );
    }

    #[test]
    fn index_out_of_range_is_none() {
        let l = list(1, "eNrbuRgAAhcBXQ");
        assert_eq!(l.len(), 16);
        assert_eq!(l.status(15), Some(1));
        for idx in [16, 17, 1 << 32, u64::MAX / 2, u64::MAX] {
            assert_eq!(l.status(idx), None, "{idx}");
        }
        let empty = list(8, &encode_lst(8, &[]).expect("encodes"));
        assert!(empty.is_empty());
        assert_eq!(empty.status(0), None);
    }

    #[test]
    fn reads_references() {
        let r = referenced(&json!({
            "sub": "x",
            "status": {"status_list": {"idx": 0, "uri": "https://example.com/statuslists/1"}}
        }))
        .expect("valid");
        assert_eq!(
            r,
            Some(Reference {
                idx: 0,
                uri: "https://example.com/statuslists/1".into()
            })
        );
        let big = referenced(&json!({"status": {"status_list": {
            "idx": u64::MAX, "uri": "https://s.example/l", "extra": true}}}))
        .expect("valid");
        assert_eq!(big.map(|r| r.idx), Some(u64::MAX));
        assert_eq!(referenced(&json!({"sub": "x"})), Ok(None));
        // Another mechanism only: no status list to check.
        assert_eq!(
            referenced(&json!({"status": {"identifiers": {"id": "x"}}})),
            Ok(None)
        );
    }

    #[test]
    fn refuses_malformed_references() {
        let uri = "https://example.com/statuslists/1";
        let cases = [
            json!([1]),
            json!({"status": null}),
            json!({"status": "revoked"}),
            json!({"status": {}}),
            json!({"status": {"status_list": null}}),
            json!({"status": {"status_list": [0, uri]}}),
            json!({"status": {"status_list": {"uri": uri}}}),
            json!({"status": {"status_list": {"idx": 0}}}),
            json!({"status": {"status_list": {"idx": -1, "uri": uri}}}),
            json!({"status": {"status_list": {"idx": 1.5, "uri": uri}}}),
            json!({"status": {"status_list": {"idx": 1.0, "uri": uri}}}),
            json!({"status": {"status_list": {"idx": "0", "uri": uri}}}),
            json!({"status": {"status_list": {"idx": 1e30, "uri": uri}}}),
            json!({"status": {"status_list": {"idx": 0, "uri": 1}}}),
            json!({"status": {"status_list": {"idx": 0, "uri": ""}}}),
            json!({"status": {"status_list": {"idx": 0, "uri": "statuslists/1"}}}),
            json!({"status": {"status_list": {"idx": 0, "uri": "https://a b"}}}),
            json!({"status": {"status_list": {"idx": 0, "uri": "https:"}}}),
            json!({"status": {"status_list": {"idx": 0, "uri": "1https://a"}}}),
            json!({"status": {"status_list": {"idx": 0, "uri": "https://a/\u{e9}"}}}),
        ];
        for c in cases {
            let err = referenced(&c).expect_err("malformed");
            assert!(matches!(err, StatusError::MalformedReference(_)), "{c}");
            assert!(err.to_string().contains("`status` claim"), "{err}");
        }
    }

    #[test]
    fn typ_is_compared_as_rfc_7515_says() {
        let t = |typ: Value| {
            let h = base64url::encode(json!({"alg": "ES256", "typ": typ}).to_string().as_bytes());
            check_typ(&format!("{h}.e30.c2ln"))
        };
        for ok in [
            "statuslist+jwt",
            "STATUSLIST+JWT",
            "application/statuslist+jwt",
            "Application/StatusList+JWT",
        ] {
            assert_eq!(t(json!(ok)), Ok(()), "{ok}");
        }
        for bad in ["JWT", "at+jwt", "statuslist+cwt", "application/jwt", "é"] {
            assert_eq!(
                t(json!(bad)),
                Err(StatusError::WrongType(Some(bad.into()))),
                "{bad}"
            );
        }
        assert!(matches!(t(json!(1)), Err(StatusError::WrongType(Some(_)))));
        let h = base64url::encode(br#"{"alg":"ES256"}"#);
        assert_eq!(
            check_typ(&format!("{h}.e30.c2ln")),
            Err(StatusError::WrongType(None))
        );
    }

    #[test]
    fn ttl_must_be_positive_seconds() {
        let t = |v: Value| ttl(json!({ "ttl": v }).as_object().expect("object"));
        assert_eq!(t(json!(43200)), Ok(Some(43200)));
        assert_eq!(t(json!(1.5)), Ok(Some(1)));
        for bad in [
            json!(0),
            json!(-5),
            json!(0.5),
            json!("60"),
            json!(null),
            json!(1e300),
        ] {
            assert!(
                matches!(
                    t(bad.clone()),
                    Err(StatusError::BadClaim { claim: "ttl", .. })
                ),
                "{bad}"
            );
        }
        assert_eq!(ttl(&Map::new()), Ok(None));
    }

    #[test]
    fn status_names() {
        assert_eq!(status_name(VALID), "VALID");
        assert_eq!(status_name(INVALID), "INVALID");
        assert_eq!(status_name(SUSPENDED), "SUSPENDED");
        assert_eq!(status_name(3), "application-specific");
        assert_eq!(status_name(0x0E), "application-specific");
        assert_eq!(status_name(4), "unregistered");
    }

    /// The draft's example Status List Token (ES256, kid "12"): it parses and
    /// reaches key selection; without the issuer's key it cannot verify.
    #[test]
    fn draft_example_token_needs_the_issuers_key() {
        let raw = concat!(
            "eyJhbGciOiJFUzI1NiIsImtpZCI6IjEyIiwidHlwIjoic3RhdHVzbGlzdCtqd3QifQ.e",
            "yJleHAiOjIyOTE3MjAxNzAsImlhdCI6MTY4NjkyMDE3MCwiaXNzIjoiaHR0cHM6Ly9le",
            "GFtcGxlLmNvbSIsInN0YXR1c19saXN0Ijp7ImJpdHMiOjEsImxzdCI6ImVOcmJ1UmdBQ",
            "WhjQlhRIn0sInN1YiI6Imh0dHBzOi8vZXhhbXBsZS5jb20vc3RhdHVzbGlzdHMvMSIsI",
            "nR0bCI6NDMyMDB9.2lKUUNG503R9htu4aHAYi7vjmr3sgApbfoDvPrl65N3URUO1EYqq",
            "Ql45Jfzd-Av4QzlKa3oVALpLwOEUOq-U_g"
        );
        let body = format!("{raw}\r\n");
        let err = parse_token(
            body.as_bytes(),
            "https://example.com/statuslists/1",
            &KeySet::default(),
            AlgSet::all(),
            1_700_000_000,
            60,
            &Limits::default(),
        )
        .expect_err("no key");
        assert_eq!(
            err,
            StatusError::KeyNotFound {
                alg: "ES256".into(),
                kid: Some("12".into())
            }
        );
        let only_rsa: AlgSet = [crate::vocab::alg::Alg::RS256].into_iter().collect();
        let err = parse_token(
            raw.as_bytes(),
            "https://example.com/statuslists/1",
            &KeySet::default(),
            only_rsa,
            1_700_000_000,
            60,
            &Limits::default(),
        )
        .expect_err("alg");
        assert!(err.to_string().contains("allowed: RS256"), "{err}");
        let small = Limits {
            max_token_bytes: 100,
            ..Limits::default()
        };
        let err = parse_token(
            raw.as_bytes(),
            "",
            &KeySet::default(),
            AlgSet::all(),
            0,
            0,
            &small,
        )
        .expect_err("size");
        assert_eq!(
            err,
            StatusError::TokenTooLarge {
                size: raw.len(),
                limit: 100
            }
        );
    }

    #[test]
    fn unsigned_and_malformed_tokens_are_refused() {
        let seg = |v: Value| base64url::encode(v.to_string().as_bytes());
        let claims = seg(json!({"sub": "u", "iat": 1}));
        let none = format!("{}.{claims}.", seg(json!({"alg": "none", "typ": TYP})));
        let hs = format!("{}.{claims}.c2ln", seg(json!({"alg": "HS256", "typ": TYP})));
        for t in [none, hs] {
            let err = parse_token(
                t.as_bytes(),
                "u",
                &KeySet::default(),
                AlgSet::all(),
                1,
                0,
                &Limits::default(),
            )
            .expect_err("unsigned");
            assert!(matches!(err, StatusError::UnsupportedAlgorithm(_)), "{err}");
        }
        for t in [&b"a.b"[..], b"", b"\xff\xfe.x.y", b"a.b.c.d.e"] {
            let err = parse_token(
                t,
                "u",
                &KeySet::default(),
                AlgSet::all(),
                1,
                0,
                &Limits::default(),
            )
            .expect_err("malformed");
            assert!(matches!(err, StatusError::Malformed(_)), "{err}");
        }
        let wrong_typ = format!(
            "{}.{claims}.c2ln",
            seg(json!({"alg": "ES256", "typ": "JWT"}))
        );
        let err = parse_token(
            wrong_typ.as_bytes(),
            "u",
            &KeySet::default(),
            AlgSet::all(),
            1,
            0,
            &Limits::default(),
        )
        .expect_err("typ");
        assert_eq!(err, StatusError::WrongType(Some("JWT".into())));
    }

    #[test]
    fn every_error_says_what_to_do() {
        let errors = [
            StatusError::MalformedReference("x".into()),
            StatusError::TokenTooLarge { size: 2, limit: 1 },
            StatusError::Malformed("x".into()),
            StatusError::UnsupportedAlgorithm("x".into()),
            StatusError::AlgorithmNotAllowed {
                alg: "ES256".into(),
                allowed: "RS256".into(),
            },
            StatusError::WrongType(None),
            StatusError::WrongType(Some("JWT".into())),
            StatusError::KeyNotFound {
                alg: "ES256".into(),
                kid: None,
            },
            StatusError::KeyNotFound {
                alg: "ES256".into(),
                kid: Some("k".into()),
            },
            StatusError::BadSignature {
                alg: "ES256".into(),
                tried: 2,
            },
            StatusError::MissingClaim("iat"),
            StatusError::BadClaim {
                claim: "ttl",
                why: "x".into(),
            },
            StatusError::SubjectMismatch {
                expected: "a".into(),
                found: "b".into(),
            },
            StatusError::Expired {
                exp: 1,
                now: 100,
                skew: 0,
            },
            StatusError::NotYetValid {
                nbf: 100,
                now: 1,
                skew: 0,
            },
            StatusError::IssuedInFuture {
                iat: 100,
                now: 1,
                skew: 0,
            },
            StatusError::BadBits("3".into()),
            StatusError::BadLstEncoding("x".into()),
            StatusError::CompressedTooLarge { size: 2, limit: 1 },
            StatusError::Decompression("x".into()),
            StatusError::DecompressedTooLarge { limit: 1 },
            StatusError::TrailingData(1),
            StatusError::StatusTooWide {
                idx: 0,
                status: 2,
                bits: 1,
            },
        ];
        for e in errors {
            let m = e.to_string();
            assert!(m.len() > 30 && !m.contains("{}"), "{e:?}: {m}");
        }
    }

    /// Draft appendix "Test vectors for Status List encoding", 1-bit list:
    /// `lst` as printed (line breaks joined); 2^20 entries, all others 0.
    const LST1: &str = concat!(
        "eNrt3AENwCAMAEGogklACtKQPg9LugC9k_ACvreiogE",
        "AAKkeCQAAAAAAAAAAAAAAAAAAAIBylgQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAXG9IAAAAAAAAAPwsJAAAAAAAAAAAAAAAvhsSAAAAAAAAAAA",
        "A7KpLAAAAAAAAAAAAAAAAAAAAAJsLCQAAAAAAAAAAADjelAAAAAAAAAAAKjDMAQAAA",
        "ACAZC8L2AEb",
    );

    const STATUS1: &[(u64, u8)] = &[
        (0, 0b1),
        (1993, 0b1),
        (25460, 0b1),
        (159495, 0b1),
        (495669, 0b1),
        (554353, 0b1),
        (645645, 0b1),
        (723232, 0b1),
        (854545, 0b1),
        (934534, 0b1),
        (1000345, 0b1),
    ];

    /// Draft appendix "Test vectors for Status List encoding", 2-bit list:
    /// `lst` as printed (line breaks joined); 2^20 entries, all others 0.
    const LST2: &str = concat!(
        "eNrt2zENACEQAEEuoaBABP5VIO01fCjIHTMStt9ovGV",
        "IAAAAAABAbiEBAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAEB5WwIAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAID0ugQAAAAAAAAAAAAAAAAAQG12SgAAA",
        "AAAAAAAAAAAAAAAAAAAAAAAAOCSIQEAAAAAAAAAAAAAAAAAAAAAAAD8ExIAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAwJEuAQAAAAAAAAAAAAAAAAAAAAAAAMB9S",
        "wIAAAAAAAAAAAAAAAAAAACoYUoAAAAAAAAAAAAAAEBqH81gAQw",
    );

    const STATUS2: &[(u64, u8)] = &[
        (0, 0b01),
        (1993, 0b10),
        (25460, 0b01),
        (159495, 0b11),
        (495669, 0b01),
        (554353, 0b01),
        (645645, 0b10),
        (723232, 0b01),
        (854545, 0b01),
        (934534, 0b10),
        (1000345, 0b11),
    ];

    /// Draft appendix "Test vectors for Status List encoding", 4-bit list:
    /// `lst` as printed (line breaks joined); 2^20 entries, all others 0.
    const LST4: &str = concat!(
        "eNrt0EENgDAQADAIHwImkIIEJEwCUpCEBBQRHOy35Li",
        "1EjoOQGabAgAAAAAAAAAAAAAAAAAAACC1SQEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAABADrsCAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "AAADoxaEAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAIIoCgAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAACArpwKAAAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAAAAAAAGhqVkAzlwIAAAAAiGVRAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAAAAAAAAAAAAAAABx3AoAgLpVAQAAAAAAAAAAAAAAwM89rwMAAAAAAAAAA",
        "AjsA9xMBMA",
    );

    const STATUS4: &[(u64, u8)] = &[
        (0, 0b0001),
        (1993, 0b0010),
        (35460, 0b0011),
        (459495, 0b0100),
        (595669, 0b0101),
        (754353, 0b0110),
        (845645, 0b0111),
        (923232, 0b1000),
        (924445, 0b1001),
        (934534, 0b1010),
        (1004534, 0b1011),
        (1000345, 0b1100),
        (1030203, 0b1101),
        (1030204, 0b1110),
        (1030205, 0b1111),
    ];

    /// Draft appendix "Test vectors for Status List encoding", 8-bit list:
    /// `lst` as printed (line breaks joined); 2^20 entries, all others 0.
    const LST8: &str = concat!(
        "eNrt0WOQM2kYhtGsbdu2bdu2bdu2bdu2bdu2jVnU1my",
        "-SWYm6U5enFPVf7ue97orFYAo7CQBAACQuuckAABStqUEAAAAAAAAtN6wEgAE71QJA",
        "AAAAIrwhwQAAAAAAdtAAgAAAAAAACLwkAQAAAAAAAAAAACUaFcJAACAeJwkAQAAAAA",
        "AAABQvL4kAAAAWmJwCQAAAAAAAAjAwBIAAAB06ywJoDKQBARpfgkAAAAAAAAAAAAAA",
        "AAAAACo50sJAAAAAAAAAOiRcSQAAAAAgAJNKgEAAG23mgQAAAAAAECw3pUAQvegBAA",
        "AAAAAAADduE4CAAAAyjSvBAAQiw8koHjvSABAb-wlARCONyVoxtMSZOd0CQAAAOjWD",
        "RKQmLckAAAAAACysLYEQGcnSAAAAAAQooUlAABI15kSAIH5RAIgLB9LABC4_SUgGZN",
        "IAABAmM6RoLbTJIASzCIBAEAhfpcAAAAAAABquk8CAAAAAAAAaJl9SvvzBOICAFWmk",
        "IBgfSgBAAAANOgrCQAAAAAAAADStK8EAAC03gASAAAAAAAAAADFWFUCAAAAMjOaBEA",
        "DHpYAQjCIBADduFwCAAAAAGitMSSI3BUSAECOHpAA6IHrJQAAAAAAsjeVBAAAKRpVA",
        "orWvwQAAAAAAAAAkKRtJAAAAAAAgCbcLAF0bXUJAAAAoF02kYDg7CYBAAAAAEB6NpQ",
        "AAAAAAAAAAAAAAEr1uQQAAF06VgIAAAAAAAAAqDaeBAAQqgMkAAAAAABogQMlAAAAA",
        "AAa87MEAAAQiwslAAAAAAAAAAAAAAAAMrOyBAAAiekv-hcsY0Sgne6QAAAAAAAgaUt",
        "JAAAAAAAAAAAAAAAAAAAAAAAAAADwt-07vjVkAAAAgDy8KgFAUEaSAAAAAJL3vgQAW",
        "dhcAgAAoBHDSUDo1pQAAACI2o4SAABZm14CALoyuwQAAPznGQkgZwdLAAAQukclAAA",
        "AAAAAAAAAgKbMKgEAAAAAAAAAAAAAAAAAAECftpYAAAAAAAAAAAAACnaXBAAAAADk7",
        "iMJAAAAAAAAAABqe00CAnGbBBG4TAIAgFDdKgFAXCaWAAAAAAAAAAAAAAAAAKAJQwR",
        "72XbGAQAAAKAhh0sAAAAAAABQgO8kAAAAAAAAAAAAACAaM0kAAAC5W0QCAIJ3mAQAx",
        "GwxCQAA6nhSAsjZBRIAANEbWQIAAAAAaJE3JACAwA0qAUBIVpKAlphbAiAPp0iQnKE",
        "kAAAAAAAgBP1KAAAAdOl4CQAAAAAAAPjLZBIAAG10RtrPm8_CAEBMTpYAAAAAAIjQY",
        "BL8z5QSAAAAAEDYPpUAACAsj0gAAADQkHMlAAjHDxIA0Lg9JQAAgHDsLQEAAABAQS6",
        "WAAAAgLjNFs2l_RgLAIAEfCEBlGZZCQAAaIHjJACgtlskAAAozb0SAAAAVFtfAgAAA",
        "AAAAAAAAAAAAAAAAAAAAKDDtxIAAAAAVZaTAKB5W0kAANCAsSUgJ0tL0GqHSNBbL0g",
        "AZflRAgCARG0kQXNmlgCABiwkAQAAAEB25pIAAAAAAAAAAAAAoFh9SwAAAAAAADWNm",
        "OSrpjFsEoaRgDKcF9Q1dxsEAAAAAAAAAAAAAAAAgPZ6SQIAAAAAAAAAgChMLgEAAAA",
        "AAAAAqZlQAsK2qQQAAAAAAAD06XUJAAAAqG9bCQAAgLD9IgEAAAAAAAAAAAAAAAAAA",
        "EBNe0gAAAAAAAAAAEBPHSEBAAAAlOZtCYA4fS8B0GFRCQAo0gISAOTgNwmC840EAAA",
        "AAAAAAAAAAAAAAAAAUJydJfjXPBIAAAAAAAAAAAAAAABk6WwJAAAAAAAAAAAAAAAAq",
        "G8UCQAAgPpOlAAAIA83SQAANWwc9HUjGAgAAAAAAACAusaSAAAAAAAAAAAAAAAAAAA",
        "AAAAAAAAAqHKVBACQjxklAAAAAAAAAKBHxpQAAAAAACBME0lAdlaUAACyt7sEAAAA0",
        "Nl0EgAAAAAAAAAAAABA-8wgAQAAAAAAAKU4SgKgUtlBAgAAAAAAAAAAgMCMLwEE51k",
        "JICdzSgCJGl2CsE0tAQAA0L11JQAAAAAAAAjUOhIAAAAAAAAAAAAAAGTqeQkAAAAAA",
        "AAAAAAAKM8SEjTrJwkAAAAAAACocqQEULgVJAAAACjDUxJUKgtKAAAAqbpRAgCA0n0",
        "mAQAAAABAGzwmAUCTLpUAAAAAAAAAAEjZNRIAAAAAAAAAAAAAAAAAAAAA8I-vJaAlh",
        "pQAAAAAAHrvzjJ-OqCuuVlLAojP8BJAr70sQZVDJYAgXS0BAAAAAAAAAAAAtMnyEgA",
        "AAAAAFONKCQAAAAAAAADorc0kAAAAAAAAgDqOlgAAAAAAAAAAAADIwv0SAAAAAAAAA",
        "AAAAADBuV0CIFVDSwAAAABAAI6RAAAAAGIwrQSEZAsJAABouRclAAAAAKDDrxIAAAA",
        "0bkkJgFiMKwEAAAAAAHQyhwRk7h4JAAAAAAAAAAAgatdKAACUYj0JAAAAAAAAAAAAQ",
        "nORBLTFJRIAAAAAkIaDJAAAAJryngQAAAAAAAAAAAA98oQEAAAAAAAAAEC2zpcgWY9",
        "LQKL2kwAgGK9IAAAAAPHaRQIAAAAAAAAAAADIxyoSAAAAAAAAAAAAAADQFotLAECz_",
        "gQ1PX-B",
    );

    const STATUS8: &[(u64, u8)] = &[
        (233478, 0b00000000),
        (52451, 0b00000001),
        (576778, 0b00000010),
        (513575, 0b00000011),
        (468106, 0b00000100),
        (292632, 0b00000101),
        (214947, 0b00000110),
        (182323, 0b00000111),
        (884834, 0b00001000),
        (66653, 0b00001001),
        (62489, 0b00001010),
        (196493, 0b00001011),
        (458517, 0b00001100),
        (487925, 0b00001101),
        (55649, 0b00001110),
        (416992, 0b00001111),
        (879796, 0b00010000),
        (462297, 0b00010001),
        (942059, 0b00010010),
        (583408, 0b00010011),
        (13628, 0b00010100),
        (334829, 0b00010101),
        (886286, 0b00010110),
        (713557, 0b00010111),
        (582738, 0b00011000),
        (326064, 0b00011001),
        (451545, 0b00011010),
        (705889, 0b00011011),
        (214350, 0b00011100),
        (194502, 0b00011101),
        (796765, 0b00011110),
        (202828, 0b00011111),
        (752834, 0b00100000),
        (721327, 0b00100001),
        (554740, 0b00100010),
        (91122, 0b00100011),
        (963483, 0b00100100),
        (261779, 0b00100101),
        (793844, 0b00100110),
        (165255, 0b00100111),
        (614839, 0b00101000),
        (758403, 0b00101001),
        (403258, 0b00101010),
        (145867, 0b00101011),
        (96100, 0b00101100),
        (477937, 0b00101101),
        (606890, 0b00101110),
        (167335, 0b00101111),
        (488197, 0b00110000),
        (211815, 0b00110001),
        (797182, 0b00110010),
        (582952, 0b00110011),
        (950870, 0b00110100),
        (765108, 0b00110101),
        (341110, 0b00110110),
        (776325, 0b00110111),
        (745056, 0b00111000),
        (439368, 0b00111001),
        (559893, 0b00111010),
        (149741, 0b00111011),
        (358903, 0b00111100),
        (513405, 0b00111101),
        (342679, 0b00111110),
        (969429, 0b00111111),
        (795775, 0b01000000),
        (566121, 0b01000001),
        (460566, 0b01000010),
        (680070, 0b01000011),
        (117310, 0b01000100),
        (480348, 0b01000101),
        (67319, 0b01000110),
        (661552, 0b01000111),
        (841303, 0b01001000),
        (561493, 0b01001001),
        (138807, 0b01001010),
        (442463, 0b01001011),
        (659927, 0b01001100),
        (445910, 0b01001101),
        (1046963, 0b01001110),
        (829700, 0b01001111),
        (962282, 0b01010000),
        (299623, 0b01010001),
        (555493, 0b01010010),
        (292826, 0b01010011),
        (517215, 0b01010100),
        (551009, 0b01010101),
        (898490, 0b01010110),
        (837603, 0b01010111),
        (759161, 0b01011000),
        (459948, 0b01011001),
        (290102, 0b01011010),
        (1034977, 0b01011011),
        (190650, 0b01011100),
        (98810, 0b01011101),
        (229950, 0b01011110),
        (320531, 0b01011111),
        (335506, 0b01100000),
        (885333, 0b01100001),
        (133227, 0b01100010),
        (806915, 0b01100011),
        (800313, 0b01100100),
        (981571, 0b01100101),
        (527253, 0b01100110),
        (24077, 0b01100111),
        (240232, 0b01101000),
        (559572, 0b01101001),
        (713399, 0b01101010),
        (233941, 0b01101011),
        (615514, 0b01101100),
        (911768, 0b01101101),
        (331680, 0b01101110),
        (951527, 0b01101111),
        (6805, 0b01110000),
        (552366, 0b01110001),
        (374660, 0b01110010),
        (223159, 0b01110011),
        (625884, 0b01110100),
        (417146, 0b01110101),
        (320527, 0b01110110),
        (784154, 0b01110111),
        (338792, 0b01111000),
        (1199, 0b01111001),
        (679804, 0b01111010),
        (1024680, 0b01111011),
        (40845, 0b01111100),
        (234603, 0b01111101),
        (761225, 0b01111110),
        (644903, 0b01111111),
        (502167, 0b10000000),
        (121477, 0b10000001),
        (505144, 0b10000010),
        (165165, 0b10000011),
        (179628, 0b10000100),
        (1019195, 0b10000101),
        (145149, 0b10000110),
        (263738, 0b10000111),
        (269256, 0b10001000),
        (996739, 0b10001001),
        (346296, 0b10001010),
        (555864, 0b10001011),
        (887384, 0b10001100),
        (444173, 0b10001101),
        (421844, 0b10001110),
        (653716, 0b10001111),
        (836747, 0b10010000),
        (783119, 0b10010001),
        (918762, 0b10010010),
        (946835, 0b10010011),
        (253764, 0b10010100),
        (519895, 0b10010101),
        (471224, 0b10010110),
        (134272, 0b10010111),
        (709016, 0b10011000),
        (44112, 0b10011001),
        (482585, 0b10011010),
        (461829, 0b10011011),
        (15080, 0b10011100),
        (148883, 0b10011101),
        (123467, 0b10011110),
        (480125, 0b10011111),
        (141348, 0b10100000),
        (65877, 0b10100001),
        (692958, 0b10100010),
        (148598, 0b10100011),
        (499131, 0b10100100),
        (584009, 0b10100101),
        (1017987, 0b10100110),
        (449287, 0b10100111),
        (277478, 0b10101000),
        (991262, 0b10101001),
        (509602, 0b10101010),
        (991896, 0b10101011),
        (853666, 0b10101100),
        (399318, 0b10101101),
        (197815, 0b10101110),
        (203278, 0b10101111),
        (903979, 0b10110000),
        (743015, 0b10110001),
        (888308, 0b10110010),
        (862143, 0b10110011),
        (979421, 0b10110100),
        (113605, 0b10110101),
        (206397, 0b10110110),
        (127113, 0b10110111),
        (844358, 0b10111000),
        (711569, 0b10111001),
        (229153, 0b10111010),
        (521470, 0b10111011),
        (401793, 0b10111100),
        (398896, 0b10111101),
        (940810, 0b10111110),
        (293983, 0b10111111),
        (884749, 0b11000000),
        (384802, 0b11000001),
        (584151, 0b11000010),
        (970201, 0b11000011),
        (523882, 0b11000100),
        (158093, 0b11000101),
        (929312, 0b11000110),
        (205329, 0b11000111),
        (106091, 0b11001000),
        (30949, 0b11001001),
        (195586, 0b11001010),
        (495723, 0b11001011),
        (348779, 0b11001100),
        (852312, 0b11001101),
        (1018463, 0b11001110),
        (1009481, 0b11001111),
        (448260, 0b11010000),
        (841042, 0b11010001),
        (122967, 0b11010010),
        (345269, 0b11010011),
        (794764, 0b11010100),
        (4520, 0b11010101),
        (818773, 0b11010110),
        (556171, 0b11010111),
        (954221, 0b11011000),
        (598210, 0b11011001),
        (887110, 0b11011010),
        (1020623, 0b11011011),
        (324632, 0b11011100),
        (398244, 0b11011101),
        (622241, 0b11011110),
        (456551, 0b11011111),
        (122648, 0b11100000),
        (127837, 0b11100001),
        (657676, 0b11100010),
        (119884, 0b11100011),
        (105156, 0b11100100),
        (999897, 0b11100101),
        (330160, 0b11100110),
        (119285, 0b11100111),
        (168005, 0b11101000),
        (389703, 0b11101001),
        (143699, 0b11101010),
        (142524, 0b11101011),
        (493258, 0b11101100),
        (846778, 0b11101101),
        (251420, 0b11101110),
        (516351, 0b11101111),
        (83344, 0b11110000),
        (171931, 0b11110001),
        (879178, 0b11110010),
        (663475, 0b11110011),
        (546865, 0b11110100),
        (428362, 0b11110101),
        (658891, 0b11110110),
        (500560, 0b11110111),
        (557034, 0b11111000),
        (830023, 0b11111001),
        (274471, 0b11111010),
        (629139, 0b11111011),
        (958869, 0b11111100),
        (663071, 0b11111101),
        (152133, 0b11111110),
        (19535, 0b11111111),
    ];
}
