//! The proxy-wasm ABI's header-map encoding, read and written without any
//! path that can panic: a malformed buffer from a host yields `None`, not a
//! trap that would take every request on the worker down with it.
//!
//! Layout: `u32 count`, then `count` pairs of `u32 name_len, u32 value_len`,
//! then for each pair `name \0 value \0` (little-endian lengths).

fn u32_at(bytes: &[u8], at: usize) -> Option<usize> {
    let b: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    usize::try_from(u32::from_le_bytes(b)).ok()
}

/// Decodes a header map; names must be UTF-8, values are raw bytes.
pub fn decode_map(bytes: &[u8]) -> Option<Vec<(String, Vec<u8>)>> {
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
        out.push((String::from_utf8(name.to_vec()).ok()?, value.to_vec()));
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
        let decoded = decode_map(&encode_map(&map)).expect("valid");
        let back: Vec<(&str, &[u8])> = decoded
            .iter()
            .map(|(k, v)| (k.as_str(), v.as_slice()))
            .collect();
        let want: Vec<(&str, &[u8])> = map.iter().map(|(k, v)| (*k, v.as_bytes())).collect();
        assert_eq!(back, want);
        assert_eq!(decode_map(&[]), Some(Vec::new()));
    }

    #[test]
    fn malformed_buffers_are_refused_not_a_panic() {
        let good = encode_map(&[("a", "b"), ("cc", "dd")]);
        for cut in 0..good.len() {
            let _ = decode_map(&good[..cut]);
        }
        assert_eq!(decode_map(&[0xff, 0xff, 0xff, 0xff]), None);
        let mut huge = good.clone();
        huge[4..8].copy_from_slice(&u32::MAX.to_le_bytes());
        assert_eq!(decode_map(&huge), None);
        let mut bad_utf8 = encode_map(&[("a", "b")]);
        bad_utf8[12] = 0xff;
        assert_eq!(decode_map(&bad_utf8), None);
        // Non-UTF-8 values are carried as bytes.
        let mut raw = encode_map(&[("a", "b")]);
        raw[14] = 0xff;
        assert_eq!(decode_map(&raw).map(|m| m[0].1.clone()), Some(vec![0xff]));
    }
}
