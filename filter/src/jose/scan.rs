//! One pass over a bearer token for the two facts every request needs before
//! anything else: how many `.` it has (a compact JWS has two) and whether it
//! holds a separator (space, comma, tab: a second credential). Tokens run to
//! kilobytes, so the Wasm build looks at 16 bytes at a time with SIMD; other
//! builds use the plain loop, and a test holds both to the same answers.

/// What `shape` found.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct Shape {
    pub dots: usize,
    pub separators: bool,
}

fn is_separator(b: u8) -> bool {
    matches!(b, b' ' | b',' | b'\t')
}

/// The bytewise reference, also used for the tail shorter than a block.
pub fn shape_bytewise(s: &[u8]) -> Shape {
    s.iter().fold(Shape::default(), |acc, &b| Shape {
        dots: acc.dots + usize::from(b == b'.'),
        separators: acc.separators || is_separator(b),
    })
}

#[cfg(all(target_arch = "wasm32", target_feature = "simd128"))]
pub fn shape(s: &[u8]) -> Shape {
    use core::arch::wasm32::{
        i8x16_bitmask, i8x16_eq, u64x2, u8x16_splat, v128, v128_any_true, v128_or,
    };
    let load = |block: &[u8; 16]| -> v128 {
        let w = u128::from_le_bytes(*block);
        // Truncations pick the two 64-bit halves of the block.
        u64x2(w as u64, (w >> 64) as u64)
    };
    let (dot, space, comma, tab) = (
        u8x16_splat(b'.'),
        u8x16_splat(b' '),
        u8x16_splat(b','),
        u8x16_splat(b'\t'),
    );
    let mut blocks = s.chunks_exact(16);
    let mut dots = 0usize;
    let mut seps = u8x16_splat(0);
    for block in &mut blocks {
        let Ok(block) = <&[u8; 16]>::try_from(block) else {
            continue;
        };
        let v = load(block);
        dots += i8x16_bitmask(i8x16_eq(v, dot)).count_ones() as usize;
        seps = v128_or(
            seps,
            v128_or(
                i8x16_eq(v, space),
                v128_or(i8x16_eq(v, comma), i8x16_eq(v, tab)),
            ),
        );
    }
    let tail = shape_bytewise(blocks.remainder());
    Shape {
        dots: dots + tail.dots,
        separators: v128_any_true(seps) || tail.separators,
    }
}

#[cfg(not(all(target_arch = "wasm32", target_feature = "simd128")))]
pub fn shape(s: &[u8]) -> Shape {
    shape_bytewise(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn agrees_with_the_bytewise_reference_at_every_length_and_position() {
        let alphabet = b"aZ09-_.. ,\t=+/\x00\xff";
        let mut seed = 0x2545_f491_4f6c_dd1du64;
        for len in 0..80 {
            for _ in 0..40 {
                let s: Vec<u8> = (0..len)
                    .map(|_| {
                        seed ^= seed << 13;
                        seed ^= seed >> 7;
                        seed ^= seed << 17;
                        alphabet[(seed % alphabet.len() as u64) as usize]
                    })
                    .collect();
                assert_eq!(shape(&s), shape_bytewise(&s), "{s:?}");
            }
        }
    }

    #[test]
    fn counts_dots_and_finds_separators() {
        let t = "eyJh.eyJz.c2ln";
        assert_eq!(
            shape(t.as_bytes()),
            Shape {
                dots: 2,
                separators: false
            }
        );
        let long = format!("{}.{}.{}", "a".repeat(700), "b".repeat(33), "c".repeat(342));
        assert_eq!(shape(long.as_bytes()).dots, 2);
        for sep in [" ", ",", "\t"] {
            let s = format!("{}{sep}{}", "a".repeat(40), "b".repeat(9));
            assert!(shape(s.as_bytes()).separators, "{sep:?}");
        }
    }
}
