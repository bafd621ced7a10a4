//! `signing::verify` over Standard Webhooks headers and a body, with fixed secrets and clock.
//!
//! Input framing: three lines, then the body byte for byte:
//! `webhook-id \n webhook-timestamp \n webhook-signature \n body…` (without the spaces).
//! With fewer than three lines the missing headers are absent. See `split_webhook_frame`.
//!
//! The check is `checks::signature_headers` (`fuzz/checks.rs`); `tests/fuzz_corpus.rs`
//! replays the committed corpus through it on stable.
#![no_main]

#[allow(dead_code)]
#[path = "../checks.rs"]
mod checks;

libfuzzer_sys::fuzz_target!(|data: &[u8]| checks::signature_headers(data));
