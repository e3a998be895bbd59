//! Any bytes as a fetched JWK Set: parsing never panics, and every key it
//! accepts can be asked to verify anything without panicking.
#![no_main]

use libfuzzer_sys::fuzz_target;
use scopegate::vocab::alg::Alg;

fuzz_target!(|data: &[u8]| {
    if let Ok((set, _issues)) = scopegate::jose::jwks::parse_text(data) {
        assert!(set.len() <= scopegate::jose::jwks::MAX_KEYS);
        for jwk in set.keys() {
            for alg in Alg::ALL {
                let sig = data.get(..data.len().min(512)).unwrap_or_default();
                assert!(!jwk.key.verify(alg, data, sig) || jwk.fits(alg));
            }
        }
    }
});
