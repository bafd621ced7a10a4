//! The first byte picks the verb, the rest is the body: `Service::handle` end to end, over
//! one sled store in a temporary directory that lives as long as the fuzzing process. Must
//! never panic, never fail on the server's own account, and never store an order that cannot
//! be read back.
//!
//! The check is `checks::service_handle` (`fuzz/checks.rs`); `tests/fuzz_corpus.rs` replays
//! the committed corpus through it on stable.
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::service_handle(data));
