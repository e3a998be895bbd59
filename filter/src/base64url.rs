//! Strict base64url (RFC 4648 §5) without padding, as JWS compact form requires.
//! Anything else — padding, the standard alphabet, whitespace, non-canonical
//! trailing bits — is refused, so one token has exactly one encoding.

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum DecodeError {
    /// Byte at this offset is not in the base64url alphabet.
    InvalidByte(usize),
    /// Length leaves a single dangling character.
    InvalidLength,
    /// Unused low bits of the last character are not zero.
    NonCanonical,
}

impl std::fmt::Display for DecodeError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            DecodeError::InvalidByte(i) => write!(
                f,
                "character at offset {i} is not base64url (padding, '+', '/' and whitespace are refused)"
            ),
            DecodeError::InvalidLength => f.write_str("length is not a valid base64url length"),
            DecodeError::NonCanonical => f.write_str("last character has non-zero unused bits"),
        }
    }
}

// Evaluated at compile time: an index out of range would fail the build.
#[allow(clippy::indexing_slicing)]
const fn build_table() -> [u8; 256] {
    let mut t = [0xffu8; 256];
    let alphabet = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";
    let mut i = 0;
    while i < 64 {
        t[alphabet[i] as usize] = i as u8;
        i += 1;
    }
    t
}

static DECODE: [u8; 256] = build_table();
const ENCODE: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

fn sextet(v: u32) -> char {
    char::from(ENCODE.get(v as usize).copied().unwrap_or(b'A'))
}

pub fn decode(input: &[u8]) -> Result<Vec<u8>, DecodeError> {
    if input.len() % 4 == 1 {
        return Err(DecodeError::InvalidLength);
    }
    let mut out = Vec::with_capacity(input.len() * 3 / 4);
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for (i, &b) in input.iter().enumerate() {
        let v = DECODE.get(usize::from(b)).copied().unwrap_or(0xff);
        if v == 0xff {
            return Err(DecodeError::InvalidByte(i));
        }
        acc = (acc << 6) | u32::from(v);
        bits += 6;
        if bits >= 8 {
            bits -= 8;
            out.push((acc >> bits) as u8);
            acc &= (1 << bits) - 1;
        }
    }
    if acc != 0 {
        return Err(DecodeError::NonCanonical);
    }
    Ok(out)
}

pub fn encode(input: &[u8]) -> String {
    let mut out = String::with_capacity(input.len().div_ceil(3) * 4);
    let mut acc: u32 = 0;
    let mut bits: u32 = 0;
    for &b in input {
        acc = (acc << 8) | u32::from(b);
        bits += 8;
        while bits >= 6 {
            bits -= 6;
            out.push(sextet((acc >> bits) & 63));
        }
        acc &= (1 << bits) - 1;
    }
    if bits > 0 {
        out.push(sextet((acc << (6 - bits)) & 63));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_length() {
        for len in 0..64u8 {
            let data: Vec<u8> = (0..len)
                .map(|i| i.wrapping_mul(37).wrapping_add(len))
                .collect();
            assert_eq!(decode(encode(&data).as_bytes()), Ok(data));
        }
    }

    #[test]
    fn matches_rfc4648_vectors() {
        assert_eq!(encode(b"foobar"), "Zm9vYmFy");
        assert_eq!(encode(b"fo"), "Zm8");
        assert_eq!(encode(&[0xfb, 0xff]), "-_8");
        assert_eq!(decode(b"-_8"), Ok(vec![0xfb, 0xff]));
    }

    #[test]
    fn refuses_padding_standard_alphabet_and_whitespace() {
        assert_eq!(decode(b"Zm8="), Err(DecodeError::InvalidByte(3)));
        assert_eq!(decode(b"+/8"), Err(DecodeError::InvalidByte(0)));
        assert_eq!(decode(b"Zm 8"), Err(DecodeError::InvalidByte(2)));
        assert_eq!(decode(b"Zm9vY"), Err(DecodeError::InvalidLength));
    }

    #[test]
    fn refuses_non_canonical_trailing_bits() {
        // "Zm9" decodes to "fo" only when its last 2 bits are zero; "Zm9" has them set.
        assert_eq!(decode(b"Zm9"), Err(DecodeError::NonCanonical));
    }
}
