//! Arbitrary bytes as the body of create, read, update and delete: parsed to the protocol
//! types (re-serialised and re-parsed to the same value) and, when parsing succeeds, merged
//! into fixed carts with the demo catalog through the pure domain functions.
//!
//! The check is `checks::request_body` (`fuzz/checks.rs`); `tests/fuzz_corpus.rs` replays the
//! committed corpus through it on stable.
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::request_body(data));
