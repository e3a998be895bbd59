//! Any bytes as a bearer token: parsing, claim checks, key selection and
//! signature verification must never panic, and never allow.
#![no_main]

mod common;

use libfuzzer_sys::fuzz_target;
use scopegate::request::decision::{decide, Request};
use scopegate::vocab::reason::Reason;
use scopegate::identity::validate::NoRemoteKeys;

fuzz_target!(|data: &[u8]| {
    let token = String::from_utf8_lossy(data);
    let _ = scopegate::jose::token::parse(&token, 65536);
    let value = format!("Bearer {token}");
    let headers = [("authorization", value.as_str())];
    for path in ["/payments/1", "/admin/x"] {
        let d = decide(common::config(), &Request::new("GET", path, &headers), &NoRemoteKeys, 1_800_000_000);
        // Nobody can forge a signature by fuzzing: an allow here is a bypass.
        assert_ne!(d.reason, Reason::Allowed, "fuzzed token allowed: {token:?}");
    }
});
