//! Column values: Rust values converted for PostgreSQL, and rows decoded back into the
//! store's records (any value out of range is [`StoreError::Corrupt`], never a panic).

use tokio_postgres::Row;

use super::error::Fail;
use crate::store::{
    Attempt, IdempotencyRecord, OrderRecord, OutboxEntry, OutboxItem, OutboxState, StoreError,
};

/// A stored counter or version: must fit PostgreSQL's `bigint`.
pub(super) fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Io(format!("{what} {value} is out of range")))
}

/// A time in ms: saturates at `i64::MAX` (hundreds of millions of years).
pub(super) fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

pub(super) fn limit(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Text that PostgreSQL can store (no NUL character).
pub(super) fn text<'a>(value: &'a str, what: &str) -> Result<&'a str, StoreError> {
    if value.contains('\0') {
        Err(StoreError::Io(format!(
            "{what} contains a NUL character, which PostgreSQL text cannot store"
        )))
    } else {
        Ok(value)
    }
}

fn corrupt(table: &str, id: &str, reason: &str) -> StoreError {
    StoreError::Corrupt(format!("table {table}, id {id:?}: {reason}"))
}

fn stored_u64(value: i64, table: &str, id: &str, column: &str) -> Result<u64, StoreError> {
    u64::try_from(value).map_err(|_| corrupt(table, id, &format!("negative {column}")))
}

fn stored_u32(value: i64, table: &str, id: &str, column: &str) -> Result<u32, StoreError> {
    u32::try_from(value).map_err(|_| corrupt(table, id, &format!("{column} out of range")))
}

fn stored_u16(value: i32, table: &str, id: &str, column: &str) -> Result<u16, StoreError> {
    u16::try_from(value).map_err(|_| corrupt(table, id, &format!("{column} out of range")))
}

fn parse_state(s: &str, id: &str) -> Result<OutboxState, StoreError> {
    OutboxState::parse(s).ok_or_else(|| corrupt("outbox", id, "unknown state"))
}

pub(super) const ORDER_BY_ID: &str =
    "SELECT o.id, o.version, o.external_ids, o.body FROM orders o WHERE o.id = $1";
pub(super) const ORDERS_AFTER: &str =
    "SELECT o.id, o.version, o.external_ids, o.body FROM orders o \
     WHERE $1::text IS NULL OR o.id > $1 ORDER BY o.id LIMIT $2";
pub(super) const ORDER_BY_EXTERNAL_ID: &str = "SELECT o.id, o.version, o.external_ids, o.body \
     FROM order_external_ids e JOIN orders o ON o.id = e.order_id WHERE e.external_id = $1";

pub(super) fn order_from_row(row: &Row) -> Result<OrderRecord, Fail> {
    let id: String = row.try_get(0)?;
    let version: i64 = row.try_get(1)?;
    Ok(OrderRecord {
        version: stored_u64(version, "orders", &id, "version")?,
        external_ids: row.try_get(2)?,
        body: row.try_get(3)?,
        id,
    })
}

pub(super) const OUTBOX_BY_ID: &str =
    "SELECT id, order_id, sequence, event_type, body, created_at_ms, \
     state, attempts, failures, next_attempt_ms FROM outbox WHERE id = $1";
pub(super) const OUTBOX_LIST: &str =
    "SELECT id, order_id, sequence, event_type, body, created_at_ms, \
     state, attempts, failures, next_attempt_ms FROM outbox \
     WHERE ($1::text IS NULL OR state = $1) ORDER BY id LIMIT $2";

pub(super) fn outbox_from_row(row: &Row) -> Result<OutboxItem, Fail> {
    let id: String = row.try_get(0)?;
    let sequence: i64 = row.try_get(2)?;
    let created_at_ms: i64 = row.try_get(5)?;
    let state: String = row.try_get(6)?;
    let attempts: i64 = row.try_get(7)?;
    let failures: i64 = row.try_get(8)?;
    let next_attempt_ms: i64 = row.try_get(9)?;
    Ok(OutboxItem {
        state: parse_state(&state, &id)?,
        attempts: stored_u32(attempts, "outbox", &id, "attempts")?,
        failures: stored_u32(failures, "outbox", &id, "failures")?,
        next_attempt_ms: stored_u64(next_attempt_ms, "outbox", &id, "next_attempt_ms")?,
        entry: OutboxEntry {
            order_id: row.try_get(1)?,
            sequence: stored_u64(sequence, "outbox", &id, "sequence")?,
            event_type: row.try_get(3)?,
            body: row.try_get(4)?,
            created_at_ms: stored_u64(created_at_ms, "outbox", &id, "created_at_ms")?,
            id,
        },
    })
}

pub(super) fn attempt_from_row(row: &Row, id: &str) -> Result<Attempt, Fail> {
    let at_ms: i64 = row.try_get(0)?;
    let latency_ms: i64 = row.try_get(1)?;
    let status: Option<i32> = row.try_get(3)?;
    Ok(Attempt {
        at_ms: stored_u64(at_ms, "outbox_attempts", id, "at_ms")?,
        latency_ms: stored_u64(latency_ms, "outbox_attempts", id, "latency_ms")?,
        delivered: row.try_get(2)?,
        status: status
            .map(|s| stored_u16(s, "outbox_attempts", id, "status"))
            .transpose()?,
        detail: row.try_get(4)?,
    })
}

/// An idempotency record from `fingerprint, status, body, created_at_ms` at column `first`.
pub(super) fn idempotency_from_row(
    row: &Row,
    first: usize,
    id: &str,
) -> Result<IdempotencyRecord, Fail> {
    let fingerprint: Vec<u8> = row.try_get(first)?;
    let status: i32 = row.try_get(first + 1)?;
    let created_at_ms: i64 = row.try_get(first + 3)?;
    Ok(IdempotencyRecord {
        fingerprint: fingerprint
            .try_into()
            .map_err(|_| corrupt("idempotency", id, "fingerprint is not 32 bytes"))?,
        status: stored_u16(status, "idempotency", id, "status")?,
        body: row.try_get(first + 2)?,
        created_at_ms: stored_u64(created_at_ms, "idempotency", id, "created_at_ms")?,
    })
}

pub(super) const IDEMPOTENCY_AFTER: &str = "SELECT app_id, request_id, fingerprint, status, body, \
     created_at_ms FROM idempotency \
     WHERE $1::text IS NULL OR (app_id, request_id) > ($1, $2) \
     ORDER BY app_id, request_id LIMIT $3";
pub(super) const OUTBOX_AFTER: &str =
    "SELECT id, order_id, sequence, event_type, body, created_at_ms, \
     state, attempts, failures, next_attempt_ms FROM outbox \
     WHERE $1::text IS NULL OR id > $1 ORDER BY id LIMIT $2";
/// Attempt logs of several entries; the event id comes last so [`attempt_from_row`] fits.
pub(super) const ATTEMPTS_OF: &str =
    "SELECT at_ms, latency_ms, delivered, status, detail, event_id \
     FROM outbox_attempts WHERE event_id = ANY($1) ORDER BY event_id, number";

pub(super) fn count(row: &Row, index: usize) -> Result<u64, Fail> {
    let n: i64 = row.try_get(index)?;
    Ok(u64::try_from(n).unwrap_or(0))
}
