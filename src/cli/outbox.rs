//! `fast-seller outbox …`: the events for the commerce backend, through a running server's
//! admin API or, with the server stopped, on its data directory.

use super::admin::AdminClient;
use super::table::{self, cell};
use super::{fail, CommandError};
use crate::clock::SystemClock;
use crate::service::admin::{parse_state, OutboxAdmin};
use clap::Subcommand;
use std::path::PathBuf;
use std::sync::Arc;

/// Cache of the sled store opened on a stopped server's data directory.
const SLED_CACHE: u64 = 64 * 1024 * 1024;

#[derive(Debug, clap::Args)]
pub struct OutboxArgs {
    /// Admin API of a running server (token from FAST_SELLER_ADMIN_TOKEN); without it the
    /// data directory is opened directly, which needs the server stopped
    #[arg(long, env = "FAST_SELLER_ADMIN_URL", global = true)]
    pub url: Option<String>,
    /// Data directory of a stopped server
    #[arg(
        long,
        env = "FAST_SELLER_DATA_DIR",
        default_value = "./data",
        global = true
    )]
    pub data_dir: PathBuf,
    #[command(subcommand)]
    pub command: OutboxCommand,
}

#[derive(Debug, Subcommand)]
pub enum OutboxCommand {
    /// List events (all, or one state)
    List {
        /// Only dead letters
        #[arg(long)]
        dead: bool,
        /// Only this state: pending, delivered or dead
        #[arg(long, conflicts_with = "dead")]
        state: Option<String>,
        /// Events at most
        #[arg(long, default_value_t = 100)]
        limit: usize,
        /// Print the events whole as JSON (default: a table)
        #[arg(long)]
        json: bool,
    },
    /// One event with its attempt log (JSON)
    Show {
        /// The event id (`outbox list` shows it)
        id: String,
    },
    /// Re-queue a dead letter (same event id, fresh schedule), or all of them
    Retry {
        /// The dead letter's event id
        #[arg(required_unless_present = "all_dead")]
        id: Option<String>,
        /// Every event that is dead now
        #[arg(long, conflicts_with = "id")]
        all_dead: bool,
    },
}

/// `fast-seller outbox …`: through the admin API when `--url` is given, else on the store.
pub async fn run(args: &OutboxArgs) -> Result<String, CommandError> {
    let json = match &args.url {
        Some(url) => outbox_remote(url, &args.command).await?,
        None => outbox_local(args).await?,
    };
    if let OutboxCommand::List { json: false, .. } = &args.command {
        return Ok(events_table(&json));
    }
    serde_json::to_string_pretty(&json)
        .map(|s| s + "\n")
        .map_err(fail)
}

/// `outbox list` as a table: one event a line.
fn events_table(list: &serde_json::Value) -> String {
    let empty = Vec::new();
    let events = list["events"].as_array().unwrap_or(&empty);
    if events.is_empty() {
        return "no events\n".into();
    }
    let rows: Vec<Vec<String>> = events
        .iter()
        .map(|e| {
            vec![
                cell(e, "id"),
                cell(e, "order_id"),
                cell(e, "sequence"),
                cell(e, "type"),
                cell(e, "state"),
                cell(e, "attempts"),
                cell(e, "next_attempt_at"),
                cell(e, "created_at"),
            ]
        })
        .collect();
    table::render(
        &[
            "id",
            "order",
            "seq",
            "type",
            "state",
            "attempts",
            "next attempt",
            "created",
        ],
        &rows,
    )
}

async fn outbox_local(args: &OutboxArgs) -> Result<serde_json::Value, CommandError> {
    let store = crate::startup::open_sled(&args.data_dir, SLED_CACHE)
        .await
        .map_err(|e| fail(format!("{e} (is the server running? then use --url)")))?;
    let admin = OutboxAdmin::new(store, Arc::new(SystemClock), Arc::default());
    let value = match &args.command {
        OutboxCommand::List {
            dead, state, limit, ..
        } => {
            let state = match (dead, state) {
                (true, _) => Some(crate::store::OutboxState::Dead),
                (false, Some(s)) => Some(parse_state(s).map_err(fail)?),
                (false, None) => None,
            };
            serde_json::json!({ "events": admin.list(state, *limit).await.map_err(fail)? })
        }
        OutboxCommand::Show { id } => {
            serde_json::to_value(admin.show(id).await.map_err(fail)?).map_err(fail)?
        }
        OutboxCommand::Retry { id: Some(id), .. } => {
            serde_json::to_value(admin.retry(id).await.map_err(fail)?).map_err(fail)?
        }
        OutboxCommand::Retry { id: None, .. } => {
            serde_json::json!({ "requeued": admin.retry_all_dead().await.map_err(fail)? })
        }
    };
    Ok(value)
}

async fn outbox_remote(
    base: &str,
    command: &OutboxCommand,
) -> Result<serde_json::Value, CommandError> {
    let admin = AdminClient::new(base)?;
    let request = match command {
        OutboxCommand::List {
            dead, state, limit, ..
        } => {
            let state = if *dead {
                Some("dead")
            } else {
                state.as_deref()
            };
            let mut query = vec![("limit", limit.to_string())];
            if let Some(s) = state {
                query.push(("state", s.to_string()));
            }
            admin.get(&["outbox"])?.query(&query)
        }
        OutboxCommand::Show { id } => admin.get(&["outbox", id])?,
        OutboxCommand::Retry { id: Some(id), .. } => admin.post(&["outbox", id, "retry"])?,
        OutboxCommand::Retry { id: None, .. } => admin.post(&["outbox", "retry-dead"])?,
    };
    admin.send(request).await
}
