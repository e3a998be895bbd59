//! Any text as a DPoP proof: parsing and verification never panic, and a
//! proof that passes names a key thumbprint.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate::jose::dpop;
use scopegate::vocab::alg::AlgSet;

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    if let Ok(proof) = dpop::verify(&text, AlgSet::all()) {
        assert!(!proof.jkt.is_empty());
    }
});
