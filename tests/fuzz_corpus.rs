#![allow(clippy::unwrap_used, clippy::expect_used)]
//! FUZZ-01, PR tier: every committed corpus file of `fuzz/corpus/<target>/` goes through the
//! same check function the libFuzzer target runs (`fuzz/checks.rs`), on stable. A check that
//! panics fails the test, naming the file.
//!
//! Fuzzing itself (nightly, `cargo fuzz`) is described in `fuzz/README.md`.

#[path = "../fuzz/checks.rs"]
mod checks;
#[path = "../fuzz/seeds.rs"]
mod seeds;

use std::panic::{catch_unwind, AssertUnwindSafe};
use std::path::{Path, PathBuf};

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz")
}

/// The corpus files of `target`, sorted by name.
fn corpus(target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join("corpus").join(target);
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()))
        .map(|entry| {
            let path = entry.expect("corpus entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, std::fs::read(&path).expect("read corpus file"))
        })
        .collect();
    files.sort();
    files
}

/// Runs `check` over every file of `target`'s corpus; fails with the names of the files that
/// panicked.
fn replay(target: &str, check: fn(&[u8])) -> Vec<(String, Vec<u8>)> {
    let files = corpus(target);
    assert!(
        files.len() >= 10,
        "fuzz/corpus/{target} has {} files; the committed corpus is missing",
        files.len()
    );
    let failed: Vec<&str> = files
        .iter()
        .filter(|(_, bytes)| catch_unwind(AssertUnwindSafe(|| check(bytes))).is_err())
        .map(|(name, _)| name.as_str())
        .collect();
    assert!(
        failed.is_empty(),
        "fuzz/corpus/{target}: the check panicked on {failed:?} (messages above); reproduce \
         with `cargo +nightly fuzz run {target} fuzz/corpus/{target}/<file>`"
    );
    files
}

/// The `seed-valid*` files must pass: they prove the fixture (JWKS, secrets) still matches
/// the corpus, so the accepting paths are exercised at all.
fn assert_valid_seeds_accepted(files: &[(String, Vec<u8>)], accepted: fn(&[u8]) -> bool) {
    let valid: Vec<&(String, Vec<u8>)> = files
        .iter()
        .filter(|(name, _)| name.starts_with("seed-valid"))
        .collect();
    assert!(!valid.is_empty(), "no seed-valid* files");
    for (name, bytes) in valid {
        assert!(accepted(bytes), "{name} is no longer accepted");
    }
}

#[test]
fn jwt_token_corpus() {
    let files = replay("jwt_token", checks::jwt_token);
    assert_valid_seeds_accepted(&files, checks::jwt_accepted);
    let rejected = files
        .iter()
        .filter(|(name, _)| name.starts_with("seed-") && !name.starts_with("seed-valid"))
        .find(|(_, bytes)| checks::jwt_accepted(bytes));
    assert_eq!(rejected.map(|(name, _)| name), None, "a bad token passed");
}

#[test]
fn signature_headers_corpus() {
    let files = replay("signature_headers", checks::signature_headers);
    assert_valid_seeds_accepted(&files, checks::webhook_accepted);
}

#[test]
fn request_body_corpus() {
    replay("request_body", checks::request_body);
}

#[test]
fn service_handle_corpus() {
    replay("service_handle", checks::service_handle);
}

#[test]
fn money_corpus() {
    replay("money", checks::money);
}

#[test]
fn webhook_framing_round_trips() {
    let frame = checks::webhook_frame("id", "1", "v1,x", b"a\nb");
    let (lines, body) = checks::split_webhook_frame(&frame);
    assert_eq!(lines, ["id", "1", "v1,x"]);
    assert_eq!(body, b"a\nb");
    let (lines, body) = checks::split_webhook_frame(b"only-id");
    assert_eq!(lines, ["only-id"]);
    assert!(body.is_empty());
}

/// Not a test: rewrites `fuzz/jwks.json` and the `seed-*` corpus files
/// (`cargo test --test fuzz_corpus -- --ignored write_seed_corpus`).
#[test]
#[ignore = "rewrites the committed seed corpus and JWKS"]
fn write_seed_corpus() {
    seeds::write_all(&fuzz_dir());
}
