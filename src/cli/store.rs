//! `fast-seller migrate` and `fast-seller store migrate`: schema migrations and whole-store
//! copies, with the servers stopped.

use super::{fail, CommandError};
use crate::store::copy::{self, CopyOptions, Location};
use clap::Subcommand;

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

/// `fast-seller store migrate`
pub async fn run(command: &StoreCommand) -> Result<String, CommandError> {
    let StoreCommand::Migrate {
        from,
        to,
        allow_non_empty,
    } = command;
    let source = from.open(true).await.map_err(fail)?;
    let target = to.open(false).await.map_err(fail)?;
    let options = CopyOptions {
        allow_non_empty: *allow_non_empty,
    };
    let copied = copy::copy(&*source, &*target, options)
        .await
        .map_err(fail)?;
    Ok(format!("copied {from} to {to} and verified: {copied}\n"))
}
