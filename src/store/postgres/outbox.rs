//! The outbox queries: leased claims of each order's head, attempt logging, and reads of
//! an entry with its attempt log from one snapshot.

use std::collections::HashMap;

use super::error::Fail;
use super::rows::{attempt_from_row, ms, outbox_from_row, ATTEMPTS_OF, OUTBOX_AFTER, OUTBOX_BY_ID};
use crate::store::{Attempt, NextStep, OutboxItem, StoreError};

/// Largest `u32` (attempt counters), as stored.
const U32_MAX: i64 = u32::MAX as i64;

/// Delivered entries past their retention (`$1`), oldest delivery first, at most `$2`,
/// locked for deletion; rows another transaction holds are left for the next batch.
const PRUNABLE: &str = "SELECT id FROM outbox \
     WHERE state = 'delivered' AND delivered_at_ms < $1 \
     ORDER BY delivered_at_ms, id LIMIT $2 \
     FOR UPDATE SKIP LOCKED";

/// Deletes at most `max` delivered entries delivered before `before`, with their attempt
/// logs, in one short transaction; returns how many.
pub(super) async fn prune_once(
    client: &mut deadpool_postgres::Client,
    before: i64,
    max: i64,
) -> Result<u64, Fail> {
    let tx = client.transaction().await?;
    let stmt = tx.prepare_cached(PRUNABLE).await?;
    let ids = tx
        .query(&stmt, &[&before, &max])
        .await?
        .iter()
        .map(|row| row.try_get::<_, String>(0))
        .collect::<Result<Vec<_>, _>>()?;
    if ids.is_empty() {
        return Ok(0);
    }
    tx.execute(
        "DELETE FROM outbox_attempts WHERE event_id = ANY($1)",
        &[&ids],
    )
    .await?;
    let removed = tx
        .execute("DELETE FROM outbox WHERE id = ANY($1)", &[&ids])
        .await?;
    tx.commit().await?;
    Ok(removed)
}

/// Claims due heads: see [`claim_once`].
const CLAIM: &str = "WITH claimable AS ( \
         SELECT o.id FROM outbox o \
         WHERE o.state = 'pending' \
           AND o.next_attempt_ms <= $1 \
           AND (o.leased_until_ms IS NULL OR o.leased_until_ms <= $1) \
           AND NOT EXISTS ( \
               SELECT 1 FROM outbox p \
               WHERE p.order_id = o.order_id AND p.sequence < o.sequence \
                 AND p.state <> 'delivered') \
         ORDER BY o.next_attempt_ms, o.id \
         LIMIT $3 \
         FOR UPDATE OF o SKIP LOCKED) \
     UPDATE outbox SET leased_until_ms = $2 \
     FROM claimable WHERE outbox.id = claimable.id \
     RETURNING outbox.id, outbox.order_id, outbox.sequence, outbox.event_type, outbox.body, \
         outbox.created_at_ms, outbox.state, outbox.attempts, outbox.failures, \
         outbox.next_attempt_ms";

pub(super) async fn claim_once(
    client: &mut deadpool_postgres::Client,
    now: i64,
    leased_until: Option<i64>,
    max: i64,
) -> Result<Vec<OutboxItem>, Fail> {
    // Heads only (no undelivered entry of the order has a lower sequence), pending, due and
    // not leased; rows another worker is claiming right now are skipped, not waited for.
    // READ COMMITTED re-checks these conditions on the newest version of a row whose lock
    // it waited for, so a row leased by a just-committed claim is dropped, never returned.
    let stmt = client.prepare_cached(CLAIM).await?;
    let rows = client.query(&stmt, &[&now, &leased_until, &max]).await?;
    let mut items = rows
        .iter()
        .map(outbox_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    items.sort_by(|a, b| (a.next_attempt_ms, &a.entry.id).cmp(&(b.next_attempt_ms, &b.entry.id)));
    Ok(items)
}

/// How [`Store::outbox_record`](crate::store::Store::outbox_record) changes an entry.
pub(super) struct RecordChange<'a> {
    id: &'a str,
    state: &'static str,
    failed: bool,
    next_attempt_ms: Option<i64>,
    attempt: PgAttempt,
}

impl<'a> RecordChange<'a> {
    pub(super) fn new(id: &'a str, attempt: &Attempt, next: NextStep) -> RecordChange<'a> {
        RecordChange {
            id,
            state: next.state().as_str(),
            failed: next.failed(),
            next_attempt_ms: next.retry_at().map(ms),
            attempt: PgAttempt::new(attempt),
        }
    }
}

pub(super) async fn record_once(
    client: &mut deadpool_postgres::Client,
    r: &RecordChange<'_>,
) -> Result<(), Fail> {
    let tx = client.transaction().await?;
    let stmt = tx
        .prepare_cached(
            "UPDATE outbox SET \
                 attempts = LEAST(attempts + 1, $5), \
                 state = $2, \
                 failures = CASE WHEN $3 THEN LEAST(failures + 1, $5) ELSE failures END, \
                 next_attempt_ms = COALESCE($4, next_attempt_ms), \
                 delivered_at_ms = CASE WHEN $2 = 'delivered' AND state <> 'delivered' \
                     THEN $6 ELSE delivered_at_ms END, \
                 leased_until_ms = NULL \
             WHERE id = $1 \
             RETURNING attempts",
        )
        .await?;
    let Some(row) = tx
        .query_opt(
            &stmt,
            &[
                &r.id,
                &r.state,
                &r.failed,
                &r.next_attempt_ms,
                &U32_MAX,
                &r.attempt.at_ms,
            ],
        )
        .await?
    else {
        return Err(StoreError::Io("no such outbox entry".into()).into());
    };
    let number: i64 = row.try_get(0)?;
    insert_attempt(&tx, r.id, number, &r.attempt).await?;
    tx.commit().await?;
    Ok(())
}

/// The columns of one logged [`Attempt`] (after the event id and attempt number).
pub(super) struct PgAttempt {
    at_ms: i64,
    latency_ms: i64,
    delivered: bool,
    status: Option<i32>,
    detail: String,
}

impl PgAttempt {
    pub(super) fn new(a: &Attempt) -> PgAttempt {
        PgAttempt {
            at_ms: ms(a.at_ms),
            latency_ms: ms(a.latency_ms),
            delivered: a.delivered,
            status: a.status.map(i32::from),
            // Backend text may hold anything; PostgreSQL text cannot hold NUL.
            detail: a.detail.replace('\0', "\u{fffd}"),
        }
    }
}

/// Logs one attempt (`$1` the event id, `$2` its number).
const INSERT_ATTEMPT: &str = "INSERT INTO outbox_attempts \
     (event_id, number, at_ms, latency_ms, delivered, status, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

/// Logs attempt `number` of entry `id`.
pub(super) async fn insert_attempt(
    tx: &deadpool_postgres::Transaction<'_>,
    id: &str,
    number: i64,
    a: &PgAttempt,
) -> Result<(), tokio_postgres::Error> {
    let stmt = tx.prepare_cached(INSERT_ATTEMPT).await?;
    tx.execute(
        &stmt,
        &[
            &id,
            &number,
            &a.at_ms,
            &a.latency_ms,
            &a.delivered,
            &a.status,
            &a.detail,
        ],
    )
    .await?;
    Ok(())
}

pub(super) async fn get_outbox_once(
    client: &mut deadpool_postgres::Client,
    id: &str,
) -> Result<Option<(OutboxItem, Vec<Attempt>)>, Fail> {
    // One snapshot for the entry and its log.
    let tx = snapshot(client).await?;
    let stmt = tx.prepare_cached(OUTBOX_BY_ID).await?;
    let Some(row) = tx.query_opt(&stmt, &[&id]).await? else {
        return Ok(None);
    };
    let item = outbox_from_row(&row)?;
    let stmt = tx
        .prepare_cached(
            "SELECT at_ms, latency_ms, delivered, status, detail FROM outbox_attempts \
             WHERE event_id = $1 ORDER BY number",
        )
        .await?;
    let attempts = tx
        .query(&stmt, &[&id])
        .await?
        .iter()
        .map(|row| attempt_from_row(row, id))
        .collect::<Result<_, _>>()?;
    tx.commit().await?;
    Ok(Some((item, attempts)))
}

/// A read-only transaction that sees one snapshot.
async fn snapshot(
    client: &mut deadpool_postgres::Client,
) -> Result<deadpool_postgres::Transaction<'_>, tokio_postgres::Error> {
    client
        .build_transaction()
        .isolation_level(tokio_postgres::IsolationLevel::RepeatableRead)
        .read_only(true)
        .start()
        .await
}

pub(super) async fn outbox_after_once(
    client: &mut deadpool_postgres::Client,
    after: Option<&str>,
    max: i64,
) -> Result<Vec<(OutboxItem, Vec<Attempt>)>, Fail> {
    // One snapshot for the entries and their logs.
    let tx = snapshot(client).await?;
    let stmt = tx.prepare_cached(OUTBOX_AFTER).await?;
    let items = tx
        .query(&stmt, &[&after, &max])
        .await?
        .iter()
        .map(outbox_from_row)
        .collect::<Result<Vec<_>, _>>()?;
    let ids: Vec<&str> = items.iter().map(|i| i.entry.id.as_str()).collect();
    let stmt = tx.prepare_cached(ATTEMPTS_OF).await?;
    let mut logs: HashMap<String, Vec<Attempt>> = HashMap::new();
    for row in tx.query(&stmt, &[&ids]).await? {
        let id: String = row.try_get(5)?;
        let attempt = attempt_from_row(&row, &id)?;
        logs.entry(id).or_default().push(attempt);
    }
    tx.commit().await?;
    Ok(items
        .into_iter()
        .map(|item| {
            let log = logs.remove(&item.entry.id).unwrap_or_default();
            (item, log)
        })
        .collect())
}
