//! Any bytes as a filter configuration: accepted or refused with faults that
//! each name a JSON path, never a panic.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    match scopegate::policy::config::parse_json(data) {
        Ok(cfg) => assert!(!cfg.providers.is_empty()),
        Err(errors) => {
            assert!(!errors.is_empty());
            for e in errors {
                assert!(e.path.is_empty() || e.path.starts_with('/'), "{e}");
            }
        }
    }
});
