//! A PostgreSQL schema per test (shared by `tests/store_contract.rs` and `tests/it`).
//!
//! PostgreSQL comes from `FAST_SELLER_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/test`); when it is unreachable the tests fail, they
//! never skip.
#![allow(dead_code)]

use fast_seller::store::postgres::{redact_url, PgStore};

pub const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";
pub const PG_REQUIRED: &str =
    "PostgreSQL must be running on 127.0.0.1:5432 (set FAST_SELLER_TEST_PG to override)";

pub fn pg_url() -> String {
    std::env::var("FAST_SELLER_TEST_PG").unwrap_or_else(|_| DEFAULT_PG.to_string())
}

/// An error with its causes (the driver's `Display` shows only the kind).
pub fn with_causes(e: &dyn std::error::Error) -> String {
    let mut out = e.to_string();
    let mut source = e.source();
    while let Some(cause) = source {
        out.push_str(&format!(": {cause}"));
        source = cause.source();
    }
    out
}

/// A raw connection for setting up and inspecting schemas.
pub async fn raw_client() -> tokio_postgres::Client {
    let (client, connection) = tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls)
        .await
        .unwrap_or_else(|e| {
            panic!(
                "{PG_REQUIRED}: {} ({})",
                with_causes(&e),
                redact_url(&pg_url())
            )
        });
    tokio::spawn(connection);
    client
}

/// A schema created for one test and dropped when the test ends (even on panic).
pub struct PgSchema {
    pub name: String,
}

impl PgSchema {
    pub async fn create() -> PgSchema {
        let name = format!("fs_test_{}", uuid::Uuid::new_v4().simple());
        raw_client()
            .await
            .batch_execute(&format!("CREATE SCHEMA {name}"))
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "{PG_REQUIRED}: cannot create schema {name}: {}",
                    with_causes(&e)
                )
            });
        PgSchema { name }
    }

    /// A store on this schema, not migrated.
    pub async fn connect(&self) -> PgStore {
        PgStore::connect(&pg_url(), Some(&self.name), 4)
            .await
            .unwrap_or_else(|e| panic!("{PG_REQUIRED}: {e}"))
    }

    /// A migrated store on this schema.
    pub async fn open(&self) -> PgStore {
        let store = self.connect().await;
        store.migrate().await.expect("migrate");
        store
    }
}

impl Drop for PgSchema {
    fn drop(&mut self) {
        let name = self.name.clone();
        // The test's runtime may be shutting down: drop the schema from a runtime of our own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .expect("runtime");
            rt.block_on(async move {
                let (client, connection) =
                    tokio_postgres::connect(&pg_url(), tokio_postgres::NoTls).await?;
                tokio::spawn(connection);
                client
                    .batch_execute(&format!("DROP SCHEMA IF EXISTS {name} CASCADE"))
                    .await
            })
        })
        .join();
        if !matches!(dropped, Ok(Ok(()))) {
            eprintln!("could not drop test schema {}", self.name);
        }
    }
}

impl PgSchema {
    /// A `postgres://` URL whose connections use this schema (`search_path`), as a server
    /// process gets it in `--store`.
    pub fn url(&self) -> String {
        let base = pg_url();
        let sep = if base.contains('?') { '&' } else { '?' };
        format!("{base}{sep}options=-csearch_path%3D{}", self.name)
    }
}
