//! Arbitrary bytes as a bearer token (directly, and as the whole `Authorization` value) against
//! a verifier built once over the fixed file JWKS `fuzz/jwks.json` and a clock that never
//! moves; the same bytes also go to `parse_jwks`. Must never panic.
//!
//! The check is `checks::jwt_token` (`fuzz/checks.rs`); `tests/fuzz_corpus.rs` replays the
//! committed corpus through it on stable.
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::jwt_token(data));
