//! A rate limit as configured: `requests` per `per_s` seconds sustained, and
//! `burst` more at once (CONTRACT §1.5). Checked at configuration time so
//! that the limiter built from it cannot refuse it.

/// Largest `requests` and `burst`: together they stay far below what the
/// limiter's fixed-point buckets hold.
pub const MAX_REQUESTS: u64 = 100_000_000;
/// Longest period: a day.
pub const MAX_PER_S: u64 = 86_400;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct LimitSpec {
    pub requests: u32,
    pub per_s: u32,
    pub burst: u32,
}
