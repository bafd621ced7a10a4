#![forbid(unsafe_code)]
//! fast-seller: the seller side of the Fast checkout platform.
//!
//! Layers, with dependencies pointing one way (see README "Architecture"):
//! `protocol` (wire types) → `domain` (pure order logic) → `store` (trait + sled) →
//! `service` (use cases, idempotency) → `http` (handlers only translate) → `startup` → `main`.

pub mod auth;
pub mod backend;
pub mod catalog;
pub mod cli;
pub mod clock;
pub mod commerce;
pub mod config;
pub mod domain;
pub mod http;
pub mod keys;
pub mod metrics;
pub mod outbox;
pub mod preflight;
pub mod protocol;
pub mod service;
pub mod signing;
pub mod startup;
pub mod store;
pub mod tapes;
pub mod telemetry;
