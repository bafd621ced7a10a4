//! One [`Commit`] as one READ COMMITTED transaction: the idempotency key first, then the
//! order's compare-and-set and its external ids, then the new outbox entries.

use tokio_postgres::error::SqlState;

use super::error::Fail;
use super::rows::{ms, text, to_i64};
use crate::store::{
    Commit, IdempotencyKey, IdempotencyRecord, OrderWrite, OutboxEntry, StoreError,
};

/// A unique violation inside a commit: the idempotency key was taken (the other writer's
/// record stands), or another writer got there first (outbox sequence, external id).
pub(super) fn commit_error(fail: Fail) -> Fail {
    match fail {
        Fail::Db(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            let table = e.as_db_error().and_then(|db| db.table());
            if table == Some("idempotency") {
                Fail::Store(StoreError::DuplicateRequest)
            } else {
                Fail::Store(StoreError::Conflict)
            }
        }
        other => other,
    }
}

/// A [`Commit`] converted to column values up front (so a retry converts nothing).
pub(super) struct PgCommit {
    idempotency: Option<PgIdempotency>,
    order: Option<PgOrder>,
    outbox: Vec<PgOutbox>,
}

pub(super) struct PgIdempotency {
    app_id: String,
    request_id: String,
    fingerprint: Vec<u8>,
    status: i32,
    body: Vec<u8>,
    created_at_ms: i64,
}

pub(super) struct PgOrder {
    id: String,
    version: i64,
    expected_version: Option<i64>,
    external_ids: Vec<String>,
    /// Deduplicated and sorted, so concurrent commits lock index entries in one order.
    index_ids: Vec<String>,
    body: Vec<u8>,
}

pub(super) struct PgOutbox {
    pub(super) id: String,
    order_id: String,
    sequence: i64,
    event_type: String,
    body: Vec<u8>,
    created_at_ms: i64,
}

impl PgCommit {
    /// Whether committing would change nothing.
    pub(super) fn is_empty(&self) -> bool {
        self.idempotency.is_none() && self.order.is_none() && self.outbox.is_empty()
    }

    pub(super) fn new(commit: Commit) -> Result<PgCommit, StoreError> {
        Ok(PgCommit {
            idempotency: commit
                .idempotency
                .map(|(key, record)| PgIdempotency::new(key, record))
                .transpose()?,
            order: commit.order.map(PgOrder::new).transpose()?,
            outbox: commit
                .outbox
                .into_iter()
                .map(PgOutbox::new)
                .collect::<Result<_, _>>()?,
        })
    }
}

impl PgIdempotency {
    pub(super) fn new(
        key: IdempotencyKey,
        record: IdempotencyRecord,
    ) -> Result<PgIdempotency, StoreError> {
        text(&key.app_id, "app_id")?;
        text(&key.request_id, "request_id")?;
        Ok(PgIdempotency {
            app_id: key.app_id,
            request_id: key.request_id,
            fingerprint: record.fingerprint.to_vec(),
            status: i32::from(record.status),
            body: record.body,
            created_at_ms: ms(record.created_at_ms),
        })
    }
}

impl PgOrder {
    pub(super) fn new(w: OrderWrite) -> Result<PgOrder, StoreError> {
        let r = w.record;
        text(&r.id, "order id")?;
        for ext in &r.external_ids {
            text(ext, "external id")?;
        }
        let mut index_ids = r.external_ids.clone();
        index_ids.sort();
        index_ids.dedup();
        Ok(PgOrder {
            version: to_i64(r.version, "order version")?,
            expected_version: w
                .expected_version
                .map(|v| to_i64(v, "expected version"))
                .transpose()?,
            id: r.id,
            external_ids: r.external_ids,
            index_ids,
            body: r.body,
        })
    }
}

impl PgOutbox {
    pub(super) fn new(e: OutboxEntry) -> Result<PgOutbox, StoreError> {
        text(&e.id, "event id")?;
        text(&e.order_id, "event order id")?;
        text(&e.event_type, "event type")?;
        Ok(PgOutbox {
            sequence: to_i64(e.sequence, "event sequence")?,
            created_at_ms: ms(e.created_at_ms),
            id: e.id,
            order_id: e.order_id,
            event_type: e.event_type,
            body: e.body,
        })
    }
}

/// Indexes every external id of an order (`$1` the ids, `$2` the order id).
const INDEX_EXTERNAL_IDS: &str = "INSERT INTO order_external_ids (external_id, order_id) \
     SELECT ext, $2 FROM unnest($1::text[]) AS ext \
     ON CONFLICT (external_id) DO UPDATE SET order_id = EXCLUDED.order_id \
     WHERE order_external_ids.order_id <> EXCLUDED.order_id";

pub(super) async fn commit_once(
    client: &mut deadpool_postgres::Client,
    c: &PgCommit,
) -> Result<(), Fail> {
    let tx = client.transaction().await?;
    // The key first: a concurrent duplicate waits here, before touching the order.
    if let Some(i) = &c.idempotency {
        if !insert_idempotency(&tx, i).await? {
            return Err(StoreError::DuplicateRequest.into());
        }
    }
    if let Some(o) = &c.order {
        let written = match o.expected_version {
            None => insert_order(&tx, o).await?,
            Some(expected) => {
                let stmt = tx
                    .prepare_cached(
                        "UPDATE orders SET version = $2, external_ids = $3, body = $4 \
                         WHERE id = $1 AND version = $5",
                    )
                    .await?;
                let updated = tx
                    .execute(
                        &stmt,
                        &[&o.id, &o.version, &o.external_ids, &o.body, &expected],
                    )
                    .await?;
                updated == 1
            }
        };
        if !written {
            return Err(StoreError::Conflict.into());
        }
        index_external_ids(&tx, o).await?;
    }
    for e in &c.outbox {
        insert_outbox(&tx, e, "pending", 0, 0, e.created_at_ms).await?;
    }
    tx.commit().await?;
    Ok(())
}

/// Inserts an idempotency record unless its key exists; returns whether it did.
pub(super) async fn insert_idempotency(
    tx: &deadpool_postgres::Transaction<'_>,
    i: &PgIdempotency,
) -> Result<bool, tokio_postgres::Error> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO idempotency \
             (app_id, request_id, fingerprint, status, body, created_at_ms) \
             VALUES ($1, $2, $3, $4, $5, $6) \
             ON CONFLICT (app_id, request_id) DO NOTHING",
        )
        .await?;
    let inserted = tx
        .execute(
            &stmt,
            &[
                &i.app_id,
                &i.request_id,
                &i.fingerprint,
                &i.status,
                &i.body,
                &i.created_at_ms,
            ],
        )
        .await?;
    Ok(inserted == 1)
}

/// Inserts an order unless its id exists; returns whether it did.
pub(super) async fn insert_order(
    tx: &deadpool_postgres::Transaction<'_>,
    o: &PgOrder,
) -> Result<bool, tokio_postgres::Error> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO orders (id, version, external_ids, body) \
             VALUES ($1, $2, $3, $4) ON CONFLICT (id) DO NOTHING",
        )
        .await?;
    let inserted = tx
        .execute(&stmt, &[&o.id, &o.version, &o.external_ids, &o.body])
        .await?;
    Ok(inserted == 1)
}

/// Points every external id of `o` at it.
pub(super) async fn index_external_ids(
    tx: &deadpool_postgres::Transaction<'_>,
    o: &PgOrder,
) -> Result<(), tokio_postgres::Error> {
    if !o.index_ids.is_empty() {
        let stmt = tx.prepare_cached(INDEX_EXTERNAL_IDS).await?;
        tx.execute(&stmt, &[&o.index_ids, &o.id]).await?;
    }
    Ok(())
}

/// Inserts an outbox entry in the given delivery state (a duplicate id or order sequence is
/// a unique violation).
pub(super) async fn insert_outbox(
    tx: &deadpool_postgres::Transaction<'_>,
    e: &PgOutbox,
    state: &str,
    attempts: i64,
    failures: i64,
    next_attempt_ms: i64,
) -> Result<(), tokio_postgres::Error> {
    let stmt = tx
        .prepare_cached(
            "INSERT INTO outbox (id, order_id, sequence, event_type, body, created_at_ms, \
             state, attempts, failures, next_attempt_ms) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)",
        )
        .await?;
    tx.execute(
        &stmt,
        &[
            &e.id,
            &e.order_id,
            &e.sequence,
            &e.event_type,
            &e.body,
            &e.created_at_ms,
            &state,
            &attempts,
            &failures,
            &next_attempt_ms,
        ],
    )
    .await?;
    Ok(())
}
