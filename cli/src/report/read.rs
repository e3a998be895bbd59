//! Log files as streams of lines: a path or standard input (`-`), plain or
//! gzip-compressed (told by its magic bytes, not its name, since rotated
//! logs are named every which way). Lines are handed out one at a time from
//! a large buffer; no file is ever held in memory.

use flate2::bufread::MultiGzDecoder;
use std::fs::File;
use std::io::{self, BufRead, BufReader, Read};

/// The reader's buffer: large, so the scan and parse run over long stretches.
const BUFFER: usize = 1 << 20;

/// Lines longer than this are counted and not parsed: no line the filter
/// writes comes near it, and it bounds the memory a line without newline costs.
pub const MAX_LINE: usize = 1 << 20;

/// The first bytes of a gzip member (RFC 1952).
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Opens `path` (`-`: standard input), decompressing gzip.
pub fn open(path: &str) -> Result<Box<dyn BufRead>, String> {
    let raw: Box<dyn Read> = if path == "-" {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path).map_err(|e| format!("cannot read {path}: {e}"))?)
    };
    let mut reader = BufReader::with_capacity(BUFFER, raw);
    let head = reader
        .fill_buf()
        .map_err(|e| format!("cannot read {}: {e}", name(path)))?;
    if head.starts_with(&GZIP_MAGIC) {
        // Multi-member: `cat a.gz b.gz` and some rotators write several.
        Ok(Box::new(BufReader::with_capacity(
            BUFFER,
            MultiGzDecoder::new(reader),
        )))
    } else {
        Ok(Box::new(reader))
    }
}

/// What to call `path` in messages.
pub fn name(path: &str) -> &str {
    if path == "-" {
        "<stdin>"
    } else {
        path
    }
}

/// Calls `each` with every line of `reader` (without `\n` or `\r\n`);
/// returns how many lines were longer than `MAX_LINE` (not handed out).
pub fn lines(reader: &mut dyn BufRead, mut each: impl FnMut(&[u8])) -> io::Result<u64> {
    let mut oversized = 0;
    // A line that spans the buffer's end is gathered here.
    let mut pending: Vec<u8> = Vec::new();
    // The rest of an oversized line is being skipped.
    let mut dropping = false;
    loop {
        let buf = reader.fill_buf()?;
        if buf.is_empty() {
            if dropping {
                oversized += 1;
            } else if !pending.is_empty() {
                each(trim_cr(&pending));
            }
            return Ok(oversized);
        }
        let used = match memchr::memchr(b'\n', buf) {
            Some(end) => {
                let line = buf.get(..end).unwrap_or_default();
                if dropping {
                    oversized += 1;
                    dropping = false;
                } else if pending.is_empty() {
                    // The common case: the whole line is in the buffer.
                    each(trim_cr(line));
                } else if pending.len() + line.len() > MAX_LINE {
                    oversized += 1;
                    pending.clear();
                } else {
                    pending.extend_from_slice(line);
                    each(trim_cr(&pending));
                    pending.clear();
                }
                end + 1
            }
            None => {
                if !dropping {
                    pending.extend_from_slice(buf);
                    if pending.len() > MAX_LINE {
                        dropping = true;
                        pending = Vec::new();
                    }
                }
                buf.len()
            }
        };
        reader.consume(used);
    }
}

fn trim_cr(line: &[u8]) -> &[u8] {
    line.strip_suffix(b"\r").unwrap_or(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn collect(input: &[u8], buffer: usize) -> (Vec<Vec<u8>>, u64) {
        let mut r = BufReader::with_capacity(buffer, input);
        let mut out = Vec::new();
        let oversized = lines(&mut r, |l| out.push(l.to_vec())).unwrap_or(u64::MAX);
        (out, oversized)
    }

    #[test]
    fn lines_that_span_the_buffer_are_whole() {
        let (out, oversized) = collect(b"abc\r\ndefghij\n\nklm", 4);
        assert_eq!(out, [&b"abc"[..], b"defghij", b"", b"klm"]);
        assert_eq!(oversized, 0);
    }

    #[test]
    fn an_oversized_line_is_counted_not_handed_out() {
        let mut input = vec![b'x'; MAX_LINE + 10];
        input.extend_from_slice(b"\nok\n");
        let (out, oversized) = collect(&input, 1 << 16);
        assert_eq!(out, [b"ok"]);
        assert_eq!(oversized, 1);
    }
}
