//! The proxy-wasm ABI's header-map encoding, read and written without any
//! path that can panic: a malformed buffer from a host yields `None`, not a
//! trap that would take every request on the worker down with it.
//!
//! Layout: `u32 count`, then `count` pairs of `u32 name_len, u32 value_len`,
//! then for each pair `name \0 value \0` (little-endian lengths).

use std::borrow::Cow;

/// A header map as a host hands it over, in the ABI's encoding. Decoding
/// borrows names and values from it: reading a request's headers costs one
/// buffer, not an allocation per header.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct HeaderMap {
    bytes: Vec<u8>,
}

impl HeaderMap {
    pub fn from_bytes(bytes: Vec<u8>) -> Self {
        HeaderMap { bytes }
    }

    pub fn from_pairs<N: AsRef<str>, V: AsRef<str>>(pairs: &[(N, V)]) -> Self {
        let borrowed: Vec<(&str, &str)> = pairs
            .iter()
            .map(|(n, v)| (n.as_ref(), v.as_ref()))
            .collect();
        HeaderMap {
            bytes: encode_map(&borrowed),
        }
    }

    /// The pairs in order; `None` for a malformed buffer or a name that is not
    /// UTF-8. Values that are not UTF-8 are read lossily (U+FFFD), which no
    /// token or path check accepts.
    pub fn decode(&self) -> Option<Vec<(&str, Cow<'_, str>)>> {
        let raw = decode_raw(&self.bytes)?;
        let mut out = Vec::with_capacity(raw.len());
        for (n, v) in raw {
            out.push((std::str::from_utf8(n).ok()?, text(v)));
        }
        Some(out)
    }
}

/// UTF-8 as is, or lossily: the strict check is word-at-a-time fast, the
/// lossy reader goes byte by byte, and nearly every value is valid.
fn text(v: &[u8]) -> Cow<'_, str> {
    match std::str::from_utf8(v) {
        Ok(s) => Cow::Borrowed(s),
        Err(_) => String::from_utf8_lossy(v),
    }
}

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(b)).ok()
}

/// Decodes a header map into borrowed names and values (raw bytes).
pub fn decode_raw(bytes: &[u8]) -> Option<Vec<(&[u8], &[u8])>> {
    if bytes.is_empty() {
        return Some(Vec::new());
    }
    let count = u32_at(bytes, 0)?;
    // Each pair needs at least 10 bytes: refuse counts the buffer cannot hold.
    if count > bytes.len() / 10 {
        return None;
    }
    let mut out = Vec::with_capacity(count);
    let mut data = count.checked_mul(8)?.checked_add(4)?;
    for i in 0..count {
        let sizes = i.checked_mul(8)?.checked_add(4)?;
        let name_len = u32_at(bytes, sizes)?;
        let value_len = u32_at(bytes, sizes.checked_add(4)?)?;
        let name = bytes.get(data..data.checked_add(name_len)?)?;
        data = data.checked_add(name_len)?.checked_add(1)?;
        let value = bytes.get(data..data.checked_add(value_len)?)?;
        data = data.checked_add(value_len)?.checked_add(1)?;
        out.push((name, value));
    }
    Some(out)
}

/// Encodes a header map for `send_local_response` and friends.
pub fn encode_map(map: &[(&str, &str)]) -> Vec<u8> {
    let len = |n: usize| u32::try_from(n).unwrap_or(u32::MAX).to_le_bytes();
    let mut out = Vec::with_capacity(
        4 + map
            .iter()
            .map(|(k, v)| k.len() + v.len() + 10)
            .sum::<usize>(),
    );
    out.extend_from_slice(&len(map.len()));
    for (k, v) in map {
        out.extend_from_slice(&len(k.len()));
        out.extend_from_slice(&len(v.len()));
    }
    for (k, v) in map {
        out.extend_from_slice(k.as_bytes());
        out.push(0);
        out.extend_from_slice(v.as_bytes());
        out.push(0);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips() {
        let map = [(":path", "/a?b"), ("x-empty", ""), ("k", "v\u{e9}")];
        let block = HeaderMap::from_pairs(&map);
        let decoded = block.decode().expect("valid");
        let back: Vec<(&str, &str)> = decoded.iter().map(|(k, v)| (*k, v.as_ref())).collect();
        assert_eq!(back, map);
        assert!(decoded.iter().all(|(_, v)| matches!(v, Cow::Borrowed(_))));
        assert_eq!(HeaderMap::default().decode(), Some(Vec::new()));
    }

    #[test]
    fn malformed_buffers_are_refused_not_a_panic() {
        let good = encode_map(&[("a", "b"), ("cc", "dd")]);
        for cut in 0..good.len() {
            let _ = decode_raw(&good[..cut]);
        }
        assert_eq!(decode_raw(&[0xff, 0xff, 0xff, 0xff]), None);
        let mut huge = good.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_raw(&huge), None);
        let mut bad_utf8 = encode_map(&[("a", "b")]);
        bad_utf8[12] = 0xff;
        assert_eq!(HeaderMap::from_bytes(bad_utf8).decode(), None);
        // Non-UTF-8 values are carried as bytes, and read lossily.
        let mut raw = encode_map(&[("a", "b")]);
        raw[14] = 0xff;
        assert_eq!(decode_raw(&raw).map(|m| m[0].1.to_vec()), Some(vec![0xff]));
        let block = HeaderMap::from_bytes(raw);
        assert_eq!(
            block.decode().map(|m| m[0].1.to_string()),
            Some("\u{fffd}".to_string())
        );
    }
}
