//! [`Store::stats`](crate::store::Store::stats) for PostgreSQL: rows and bytes per table
//! from one snapshot, each table's disk size with its indexes and TOAST.

use super::error::Fail;
use super::rows::count;
use crate::store::{KindStats, StoreStats};

/// The tables, by the kind of data they hold (the kind is the table's name).
const TABLES: &[&str] = &[
    "orders",
    "idempotency",
    "outbox",
    "outbox_attempts",
    "order_external_ids",
    "in_flight",
];

pub(super) async fn stats_once(client: &mut deadpool_postgres::Client) -> Result<StoreStats, Fail> {
    let tx = client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await?;
    let mut kinds = Vec::with_capacity(TABLES.len());
    for table in TABLES {
        // Table names are the constants above, never input.
        let row = tx
            .query_one(
                &format!(
                    "SELECT count(*), COALESCE(sum(pg_column_size(t.*)), 0)::bigint, \
                     pg_total_relation_size('{table}') FROM {table} t"
                ),
                &[],
            )
            .await?;
        kinds.push(KindStats {
            kind: (*table).to_owned(),
            rows: count(&row, 0)?,
            live_bytes: count(&row, 1)?,
            disk_bytes: Some(count(&row, 2)?),
        });
    }
    let row = tx
        .query_one(
            "SELECT count(*) FILTER (WHERE state = 'pending'), \
                    count(*) FILTER (WHERE state = 'delivered'), \
                    count(*) FILTER (WHERE state = 'dead') \
             FROM outbox",
            &[],
        )
        .await?;
    let stats = StoreStats {
        disk_bytes: kinds.iter().filter_map(|k| k.disk_bytes).sum(),
        kinds,
        outbox_pending: count(&row, 0)?,
        outbox_delivered: count(&row, 1)?,
        outbox_dead: count(&row, 2)?,
    };
    tx.commit().await?;
    Ok(stats)
}
