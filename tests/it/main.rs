//! One integration test binary (shorter link times on 2-core CI). Every test starts the real
//! server (`Application::build`, as `main` does) on a random port with its own temporary
//! sled directory, and talks HTTP to it.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

// Shared by every test module; not each module uses each helper.
#[allow(dead_code)]
mod helpers;
#[path = "../common/pg.rs"]
mod pg;

mod auth;
mod checkout;
mod crash;
mod hardening;
mod hostile;
mod idempotency;
mod multi_instance;
mod operations;
mod orders;
mod outbox;
mod outbox_crash;
mod startup;
