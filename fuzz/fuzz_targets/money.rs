//! `Money::parse` / `Money::to_wire` and `Int64` parsing: no panic, and
//! `parse(to_wire(x)) == round(x)` for parsed amounts and for decimals made from the input's
//! first 16 bytes.
//!
//! The check is `checks::money` (`fuzz/checks.rs`); `tests/fuzz_corpus.rs` replays the
//! committed corpus through it on stable.
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::money(data));
