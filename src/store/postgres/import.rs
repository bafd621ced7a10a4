//! [`Store::import`](crate::store::Store::import): rows of another store written verbatim
//! in one transaction; any row already stored fails the whole batch.

use tokio_postgres::error::SqlState;

use super::commit::{
    index_external_ids, insert_idempotency, insert_order, insert_outbox, PgIdempotency, PgOrder,
    PgOutbox,
};
use super::error::Fail;
use super::outbox::{insert_attempt, PgAttempt};
use super::rows::ms;
use crate::store::{delivered_at, ImportBatch, OrderWrite, OutboxState, StoreError};

/// An [`ImportBatch`] converted to column values up front (so a retry converts nothing).
pub(super) struct PgImport {
    orders: Vec<PgOrder>,
    idempotency: Vec<PgIdempotency>,
    outbox: Vec<PgImportedEntry>,
}

struct PgImportedEntry {
    entry: PgOutbox,
    state: &'static str,
    attempts: i64,
    failures: i64,
    next_attempt_ms: i64,
    /// For a delivered entry (see [`delivered_at`]).
    delivered_at_ms: Option<i64>,
    log: Vec<PgAttempt>,
}

impl PgImport {
    pub(super) fn new(batch: ImportBatch) -> Result<PgImport, StoreError> {
        let orders = batch
            .orders
            .into_iter()
            .map(|record| {
                PgOrder::new(OrderWrite {
                    record,
                    expected_version: None,
                })
            })
            .collect::<Result<_, _>>()?;
        let idempotency = batch
            .idempotency
            .into_iter()
            .map(|(key, record)| PgIdempotency::new(key, record))
            .collect::<Result<_, _>>()?;
        let outbox = batch
            .outbox
            .into_iter()
            .map(|(item, log)| {
                let delivered_at_ms =
                    (item.state == OutboxState::Delivered).then(|| ms(delivered_at(&item, &log)));
                Ok(PgImportedEntry {
                    entry: PgOutbox::new(item.entry)?,
                    state: item.state.as_str(),
                    attempts: i64::from(item.attempts),
                    failures: i64::from(item.failures),
                    next_attempt_ms: ms(item.next_attempt_ms),
                    delivered_at_ms,
                    log: log.iter().map(PgAttempt::new).collect(),
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(PgImport {
            orders,
            idempotency,
            outbox,
        })
    }
}

/// Inside an import every unique violation means the row was already there.
pub(super) fn import_error(fail: Fail) -> Fail {
    match fail {
        Fail::Db(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            Fail::Store(StoreError::Conflict)
        }
        other => other,
    }
}

pub(super) async fn import_once(
    client: &mut deadpool_postgres::Client,
    b: &PgImport,
) -> Result<(), Fail> {
    let tx = client.transaction().await?;
    for o in &b.orders {
        if !insert_order(&tx, o).await? {
            return Err(StoreError::Conflict.into());
        }
        index_external_ids(&tx, o).await?;
    }
    for i in &b.idempotency {
        if !insert_idempotency(&tx, i).await? {
            return Err(StoreError::Conflict.into());
        }
    }
    for x in &b.outbox {
        let e = &x.entry;
        insert_outbox(&tx, e, x.state, x.attempts, x.failures, x.next_attempt_ms).await?;
        if let Some(at) = x.delivered_at_ms {
            tx.execute(
                "UPDATE outbox SET delivered_at_ms = $2 WHERE id = $1",
                &[&e.id, &at],
            )
            .await?;
        }
        for (number, attempt) in (1i64..).zip(&x.log) {
            insert_attempt(&tx, &e.id, number, attempt).await?;
        }
    }
    tx.commit().await?;
    Ok(())
}
