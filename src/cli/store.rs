//! `fast-seller migrate`, `fast-seller store migrate` and `fast-seller store stats`: schema
//! migrations, whole-store copies and what a store holds, with the servers stopped (sled) or
//! running (PostgreSQL).

use super::{fail, CommandError};
use crate::store::copy::{self, CopyOptions, Location};
use crate::store::StoreStats;
use clap::Subcommand;
use std::fmt::Write as _;

#[derive(Debug, Subcommand)]
pub enum StoreCommand {
    /// Copy everything (orders, idempotency records, the outbox and its attempt history)
    /// from one store into another, then verify the counts; stop the servers first.
    Migrate {
        /// The source: sled:DIR or a postgres://… URL
        #[arg(long)]
        from: Location,
        /// The target: a postgres://… URL or sled:DIR (migrated or created as needed)
        #[arg(long)]
        to: Location,
        /// Add to a target that holds data already (rows are never overwritten)
        #[arg(long)]
        allow_non_empty: bool,
    },
    /// Rows and bytes per kind of stored data (tree or table), outbox events per state,
    /// bytes on disk and the space amplification (disk / live). Reads the whole store. A
    /// sled store must be stopped; a running server shows the same on /metrics
    /// (fast_seller_store_*, refreshed hourly).
    Stats {
        /// sled:DIR or a postgres://… URL
        #[arg(long, default_value = "sled:./data")]
        store: Location,
        /// Print JSON instead of a table
        #[arg(long)]
        json: bool,
    },
}

/// `fast-seller migrate`
pub async fn migrate(url: &str) -> Result<String, CommandError> {
    let (_, applied) = crate::startup::open_postgres(url, 1).await.map_err(fail)?;
    Ok(if applied.is_empty() {
        "the database is up to date\n".to_string()
    } else {
        format!("applied: {}\n", applied.join(", "))
    })
}

/// `fast-seller store …`
pub async fn run(command: &StoreCommand) -> Result<String, CommandError> {
    match command {
        StoreCommand::Migrate {
            from,
            to,
            allow_non_empty,
        } => migrate_store(from, to, *allow_non_empty).await,
        StoreCommand::Stats { store, json } => {
            let stats = store
                .open(true)
                .await
                .map_err(fail)?
                .stats()
                .await
                .map_err(fail)?;
            if *json {
                stats_json(store, &stats)
            } else {
                Ok(stats_table(store, &stats))
            }
        }
    }
}

/// `fast-seller store stats --json`: the stats with their totals.
fn stats_json(store: &Location, stats: &StoreStats) -> Result<String, CommandError> {
    let value = serde_json::json!({
        "store": store.to_string(),
        "kinds": stats.kinds,
        "outbox": {
            "pending": stats.outbox_pending,
            "delivered": stats.outbox_delivered,
            "dead": stats.outbox_dead,
        },
        "live_bytes": stats.live_bytes(),
        "disk_bytes": stats.disk_bytes,
        "space_amplification": stats.space_amplification(),
    });
    serde_json::to_string_pretty(&value)
        .map(|s| s + "\n")
        .map_err(fail)
}

/// `fast-seller store stats`: one line per kind, then the totals.
fn stats_table(store: &Location, stats: &StoreStats) -> String {
    let mut out = format!("store {store}\n");
    let _ = writeln!(
        out,
        "{:<24} {:>12} {:>14} {:>14}",
        "kind", "rows", "live bytes", "disk bytes"
    );
    for k in &stats.kinds {
        let disk = k.disk_bytes.map_or("-".to_string(), |d| d.to_string());
        let _ = writeln!(
            out,
            "{:<24} {:>12} {:>14} {:>14}",
            k.kind, k.rows, k.live_bytes, disk
        );
    }
    let _ = writeln!(
        out,
        "{:<24} {:>12} {:>14} {:>14}",
        "total",
        "",
        stats.live_bytes(),
        stats.disk_bytes
    );
    let amplification = stats
        .space_amplification()
        .map_or("- (empty)".to_string(), |a| format!("{a:.2}"));
    let _ = writeln!(out, "space amplification (disk / live): {amplification}");
    let _ = writeln!(
        out,
        "outbox events: {} pending, {} delivered, {} dead",
        stats.outbox_pending, stats.outbox_delivered, stats.outbox_dead
    );
    out
}

/// `fast-seller store migrate`
async fn migrate_store(
    from: &Location,
    to: &Location,
    allow_non_empty: bool,
) -> Result<String, CommandError> {
    let source = from.open(true).await.map_err(fail)?;
    let target = to.open(false).await.map_err(fail)?;
    let options = CopyOptions { allow_non_empty };
    let copied = copy::copy(&*source, &*target, options)
        .await
        .map_err(fail)?;
    Ok(format!("copied {from} to {to} and verified: {copied}\n"))
}
