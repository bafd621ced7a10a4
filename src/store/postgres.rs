//! The PostgreSQL implementation of [`Store`], for several instances sharing one database.
//!
//! Tables (created by the embedded migrations in `migrations/`, see [`PgStore::migrate`]):
//! - `orders`: Fast order id → version, current external ids, body (bytea)
//! - `order_external_ids`: every seller id an order was ever known by → order id
//! - `idempotency`: (`app_id`, `request_id`) → fingerprint, status, body, `created_at_ms`
//! - `outbox`: one row per event, with its delivery state and lease; unique
//!   (`order_id`, `sequence`)
//! - `outbox_attempts`: (event id, attempt number) → one [`Attempt`]
//! - `fast_seller_migrations`: applied migrations, with their checksums
//!
//! Isolation: every transaction runs at READ COMMITTED and relies on row locks and unique
//! indexes, not on SERIALIZABLE (pattern B of the reliability notes, §4.5):
//! - the idempotency key is claimed first with `INSERT … ON CONFLICT DO NOTHING`: a
//!   concurrent writer of the same key waits for the first transaction, then inserts nothing
//!   and gets [`StoreError::DuplicateRequest`];
//! - the version check is a compare-and-set (`UPDATE … WHERE id = $1 AND version = $2`, or
//!   `INSERT … ON CONFLICT DO NOTHING` for a create). The UPDATE takes the row lock that a
//!   `SELECT … FOR UPDATE` would, and PostgreSQL re-checks the WHERE clause on the newest
//!   row version after waiting for it, so of two writers expecting the same version exactly
//!   one matches; the other gets [`StoreError::Conflict`];
//! - outbox claims lock rows with `FOR UPDATE SKIP LOCKED` and write a lease in the same
//!   statement.
//!
//! This gives the sled store's guarantees without the retry storms of SERIALIZABLE under
//! contention on one order. Deadlocks (40P01) and serialization failures (40001) are still
//! retried, [`MAX_RETRIES`] times with a short backoff, then reported as unavailability.
//!
//! Durability: a commit returns after COMMIT, which waits for the WAL flush while
//! `synchronous_commit` is on (checked, with `fsync`, at connect).
//!
//! Errors never carry SQL text, parameters or server DETAIL lines (which quote key values):
//! only the operation, a short description and the SQLSTATE.

use std::time::Duration;

use async_trait::async_trait;
use deadpool_postgres::{Manager, ManagerConfig, Pool, PoolError, RecyclingMethod, Runtime};
use rand::Rng;
use sha2::{Digest, Sha256};
use tokio_postgres::error::SqlState;
use tokio_postgres::{NoTls, Row};

use super::{
    Attempt, Commit, IdempotencyKey, IdempotencyRecord, ImportBatch, InFlightClaim, NextStep,
    OrderRecord, OrderWrite, OutboxEntry, OutboxItem, OutboxState, Store, StoreCounts, StoreError,
};

/// Retries of a transaction that hit a serialization failure or a deadlock.
pub const MAX_RETRIES: u32 = 5;
/// Limit for opening one connection (when the URL sets none).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a free pooled connection.
const POOL_WAIT: Duration = Duration::from_secs(10);
/// First key of the advisory lock that serializes migrations (the second is the schema).
const MIGRATION_LOCK: i32 = 0x0fa5_7001;
/// Largest `u32` (attempt counters), as stored.
const U32_MAX: i64 = u32::MAX as i64;

/// A migration embedded in the binary.
struct Migration {
    version: i32,
    name: &'static str,
    sql: &'static str,
}

/// Every migration, in order. Never edit an applied one: add a new file.
const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "0001_init",
        sql: include_str!("migrations/0001_init.sql"),
    },
    Migration {
        version: 2,
        name: "0002_in_flight",
        sql: include_str!("migrations/0002_in_flight.sql"),
    },
];

/// A [`Store`] on PostgreSQL, with a connection pool.
pub struct PgStore {
    pool: Pool,
    /// Schema holding the tables (`search_path` of every connection); `None`: the default.
    schema: Option<String>,
}

impl std::fmt::Debug for PgStore {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("PgStore")
            .field("schema", &self.schema)
            .field("pool", &self.pool.status())
            .finish()
    }
}

/// Why one try of an operation failed: a database error (maybe retryable) or a result.
enum Fail {
    Db(tokio_postgres::Error),
    Store(StoreError),
}

impl From<tokio_postgres::Error> for Fail {
    fn from(e: tokio_postgres::Error) -> Fail {
        Fail::Db(e)
    }
}

impl From<StoreError> for Fail {
    fn from(e: StoreError) -> Fail {
        Fail::Store(e)
    }
}

/// Runs `$body` (a future using the pooled connection `$client`) and retries it on a fresh
/// connection after a serialization failure or a deadlock, at most [`MAX_RETRIES`] times.
macro_rules! retrying {
    ($store:expr, $op:expr, |$client:ident| $body:expr) => {{
        let op: &'static str = $op;
        let mut retries = 0u32;
        loop {
            #[allow(unused_mut)]
            let mut $client = $store.client(op).await?;
            let result: Result<_, Fail> = $body.await;
            match result {
                Ok(value) => break Ok(value),
                Err(Fail::Db(e)) if is_retryable(&e) && retries < MAX_RETRIES => {
                    retries += 1;
                    drop($client);
                    tracing::debug!(op, retries, "transaction retried after a serialization failure or deadlock");
                    backoff(retries).await;
                }
                Err(Fail::Db(e)) if is_retryable(&e) => {
                    break Err(StoreError::Io(format!(
                        "{op}: the database stayed busy (serialization failures or deadlocks, {MAX_RETRIES} retries)"
                    )));
                }
                Err(Fail::Db(e)) => break Err(db_error(op, &e)),
                Err(Fail::Store(e)) => break Err(e),
            }
        }
    }};
}

impl PgStore {
    /// Opens a pool of at most `pool_size` connections to `url` and checks that the server
    /// answers and keeps commits durable. Does not migrate: see [`PgStore::migrate`].
    ///
    /// `schema` (lowercase letters, digits and `_`) becomes the `search_path` of every
    /// connection; [`PgStore::migrate`] creates it when missing.
    pub async fn connect(
        url: &str,
        schema: Option<&str>,
        pool_size: usize,
    ) -> Result<PgStore, StoreError> {
        let mut config: tokio_postgres::Config = url.parse().map_err(|e| {
            StoreError::Io(format!(
                "invalid PostgreSQL URL {}: {}",
                redact_url(url),
                with_causes(&e)
            ))
        })?;
        if let Some(schema) = schema {
            check_schema_name(schema)?;
            let options = match config.get_options() {
                Some(o) if !o.trim().is_empty() => format!("{o} -c search_path={schema}"),
                _ => format!("-c search_path={schema}"),
            };
            config.options(options);
        }
        if config.get_application_name().is_none() {
            config.application_name("fast-seller");
        }
        if config.get_connect_timeout().is_none() {
            config.connect_timeout(CONNECT_TIMEOUT);
        }
        let manager_config = ManagerConfig {
            recycling_method: RecyclingMethod::Fast,
        };
        let manager = Manager::from_config(config, NoTls, manager_config);
        let pool = Pool::builder(manager)
            .max_size(pool_size.max(1))
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_WAIT))
            .create_timeout(Some(CONNECT_TIMEOUT))
            .recycle_timeout(Some(CONNECT_TIMEOUT))
            .build()
            .map_err(|e| StoreError::Io(format!("cannot create the PostgreSQL pool: {e}")))?;
        let store = PgStore {
            pool,
            schema: schema.map(str::to_owned),
        };
        store.check_durability().await.map_err(|e| match e {
            StoreError::Io(m) => {
                StoreError::Io(format!("cannot use PostgreSQL at {}: {m}", redact_url(url)))
            }
            other => other,
        })?;
        Ok(store)
    }

    /// Applies the pending embedded migrations in one transaction, under an advisory lock
    /// (so concurrent instances apply each once), and returns their names.
    ///
    /// Refuses ([`StoreError::Io`]) when an applied migration's checksum differs from the
    /// embedded one. Creates the schema given to [`PgStore::connect`] when missing.
    pub async fn migrate(&self) -> Result<Vec<String>, StoreError> {
        let schema = self.schema.as_deref();
        let applied = retrying!(self, "migrate", |client| migrate_once(&mut client, schema))?;
        for name in &applied {
            tracing::info!(migration = %name, "applied PostgreSQL migration");
        }
        Ok(applied)
    }

    /// A pooled connection.
    async fn client(&self, op: &'static str) -> Result<deadpool_postgres::Client, StoreError> {
        self.pool.get().await.map_err(|e| pool_error(op, e))
    }

    /// Warns when the server may acknowledge commits it can still lose.
    async fn check_durability(&self) -> Result<(), StoreError> {
        let client = self.client("connect").await?;
        let row = client
            .query_one(
                "SELECT current_setting('synchronous_commit'), current_setting('fsync')",
                &[],
            )
            .await
            .map_err(|e| db_error("connect", &e))?;
        let synchronous_commit: String = row.try_get(0).map_err(|e| db_error("connect", &e))?;
        let fsync: String = row.try_get(1).map_err(|e| db_error("connect", &e))?;
        if synchronous_commit == "off" {
            tracing::warn!(
                synchronous_commit = %synchronous_commit,
                "PostgreSQL has synchronous_commit off: acknowledged commits can be lost in a crash"
            );
        }
        if fsync == "off" {
            tracing::warn!(
                fsync = %fsync,
                "PostgreSQL has fsync off: acknowledged commits can be lost in a crash"
            );
        }
        Ok(())
    }
}

/// Serialization failure or deadlock: the transaction may succeed when run again.
fn is_retryable(e: &tokio_postgres::Error) -> bool {
    matches!(
        e.code(),
        Some(c) if *c == SqlState::T_R_SERIALIZATION_FAILURE || *c == SqlState::T_R_DEADLOCK_DETECTED
    )
}

/// Exponential backoff with jitter: about 10, 20, 40, 80, 160 ms.
async fn backoff(retry: u32) {
    let base = 5u64 << retry.min(8);
    let jitter = rand::thread_rng().gen_range(0..=base / 2);
    tokio::time::sleep(Duration::from_millis(base + jitter)).await;
}

/// A driver error as [`StoreError::Io`]: the operation, a description and the SQLSTATE,
/// never the SQL, its parameters or the server's DETAIL (which quotes values).
fn db_error(op: &str, e: &tokio_postgres::Error) -> StoreError {
    let Some(db) = e.as_db_error() else {
        // Driver-side kinds ("error connecting to server") and their I/O causes.
        return StoreError::Io(format!("{op}: {}", with_causes(e)));
    };
    let code = db.code();
    let class = code.code().get(..2).unwrap_or("");
    let what = if *code == SqlState::UNDEFINED_TABLE || *code == SqlState::INVALID_SCHEMA_NAME {
        "the database schema is missing or not migrated (run `fast-seller migrate`)".to_owned()
    } else if *code == SqlState::READ_ONLY_SQL_TRANSACTION {
        "the database is read-only".to_owned()
    } else if *code == SqlState::QUERY_CANCELED {
        "the statement was cancelled or timed out".to_owned()
    } else {
        match class {
            "08" => "the database connection failed".to_owned(),
            // Connection-phase messages name a user or a database, never data.
            "28" | "3D" | "53" => db.message().to_owned(),
            "57" => "the database is shutting down or not accepting connections".to_owned(),
            "40" => "the transaction was rolled back by the database".to_owned(),
            "23" => "a database constraint was violated".to_owned(),
            _ => "database error".to_owned(),
        }
    };
    StoreError::Io(format!("{op}: {what} (SQLSTATE {})", code.code()))
}

/// A driver error and its causes (the driver's `Display` shows only the kind). Not for
/// database errors, whose causes quote values.
fn with_causes(e: &tokio_postgres::Error) -> String {
    let mut message = e.to_string();
    let mut source = std::error::Error::source(e);
    while let Some(cause) = source {
        message.push_str(": ");
        message.push_str(&cause.to_string());
        source = cause.source();
    }
    message
}

fn pool_error(op: &str, e: PoolError) -> StoreError {
    match e {
        PoolError::Backend(e) => db_error(op, &e),
        PoolError::Timeout(kind) => StoreError::Io(format!(
            "{op}: no database connection available ({kind:?} timeout)"
        )),
        other => StoreError::Io(format!("{op}: {other}")),
    }
}

/// A unique violation inside a commit: the idempotency key was taken (the other writer's
/// record stands), or another writer got there first (outbox sequence, external id).
fn commit_error(fail: Fail) -> Fail {
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

/// Schema names go into `search_path` and DDL unquoted: keep them plain identifiers.
fn check_schema_name(schema: &str) -> Result<(), StoreError> {
    let mut chars = schema.chars();
    let first_ok = chars
        .next()
        .is_some_and(|c| c.is_ascii_lowercase() || c == '_');
    let rest_ok = chars.all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
    if first_ok && rest_ok && schema.len() <= 63 {
        Ok(())
    } else {
        Err(StoreError::Io(format!(
            "invalid PostgreSQL schema name {schema:?}: use at most 63 lowercase letters, digits \
             and _, not starting with a digit"
        )))
    }
}

/// Hides the password of a PostgreSQL URL (`postgres://user:***@host/db`) or key-value
/// connection string (`password=***`), for logs.
pub fn redact_url(url: &str) -> String {
    let Some(scheme_end) = url.find("://") else {
        return redact_key_values(url);
    };
    let (scheme, rest) = url.split_at(scheme_end + 3);
    let (location, query) = rest.split_at(rest.find('?').unwrap_or(rest.len()));
    let location = match location.rfind('@') {
        Some(at) => {
            let (userinfo, host) = location.split_at(at);
            match userinfo.find(':') {
                Some(colon) => format!("{}:***{host}", &userinfo[..colon]),
                None => location.to_owned(),
            }
        }
        None => location.to_owned(),
    };
    let query = match query.strip_prefix('?') {
        Some(params) => {
            let params: Vec<String> = params
                .split('&')
                .map(|param| match param.split_once('=') {
                    Some((key, _)) if is_secret_key(key) => format!("{key}=***"),
                    _ => param.to_owned(),
                })
                .collect();
            format!("?{}", params.join("&"))
        }
        None => String::new(),
    };
    format!("{scheme}{location}{query}")
}

fn is_secret_key(key: &str) -> bool {
    key.trim().to_ascii_lowercase().ends_with("password")
}

/// `key=value key='quoted value'` with every password value replaced.
fn redact_key_values(s: &str) -> String {
    let mut out = Vec::new();
    let mut rest = s.trim_start();
    while !rest.is_empty() {
        let Some(eq) = rest.find('=') else {
            return "(unparseable connection string)".into();
        };
        let key = rest[..eq].trim();
        if key.is_empty() || !key.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') {
            return "(unparseable connection string)".into();
        }
        let value_and_rest = rest[eq + 1..].trim_start();
        let (value, next) = if let Some(quoted) = value_and_rest.strip_prefix('\'') {
            let mut end = None;
            let mut escaped = false;
            for (i, c) in quoted.char_indices() {
                match c {
                    _ if escaped => escaped = false,
                    '\\' => escaped = true,
                    '\'' => {
                        end = Some(i);
                        break;
                    }
                    _ => {}
                }
            }
            let Some(end) = end else {
                return "(unparseable connection string)".into();
            };
            (&value_and_rest[..end + 2], &quoted[end + 1..])
        } else {
            let end = value_and_rest
                .find(char::is_whitespace)
                .unwrap_or(value_and_rest.len());
            value_and_rest.split_at(end)
        };
        if is_secret_key(key) {
            out.push(format!("{key}=***"));
        } else {
            out.push(format!("{key}={value}"));
        }
        rest = next.trim_start();
    }
    out.join(" ")
}

// ---- conversions ----

/// A stored counter or version: must fit PostgreSQL's `bigint`.
fn to_i64(value: u64, what: &str) -> Result<i64, StoreError> {
    i64::try_from(value).map_err(|_| StoreError::Io(format!("{what} {value} is out of range")))
}

/// A time in ms: saturates at `i64::MAX` (hundreds of millions of years).
fn ms(value: u64) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

fn limit(value: usize) -> i64 {
    i64::try_from(value).unwrap_or(i64::MAX)
}

/// Text that PostgreSQL can store (no NUL character).
fn text<'a>(value: &'a str, what: &str) -> Result<&'a str, StoreError> {
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

fn state_name(state: OutboxState) -> &'static str {
    state.as_str()
}

fn parse_state(s: &str, id: &str) -> Result<OutboxState, StoreError> {
    match s {
        "pending" => Ok(OutboxState::Pending),
        "delivered" => Ok(OutboxState::Delivered),
        "dead" => Ok(OutboxState::Dead),
        _ => Err(corrupt("outbox", id, "unknown state")),
    }
}

// ---- row decoding ----

const ORDER_BY_ID: &str =
    "SELECT o.id, o.version, o.external_ids, o.body FROM orders o WHERE o.id = $1";
const ORDERS_AFTER: &str = "SELECT o.id, o.version, o.external_ids, o.body FROM orders o \
     WHERE $1::text IS NULL OR o.id > $1 ORDER BY o.id LIMIT $2";
const ORDER_BY_EXTERNAL_ID: &str = "SELECT o.id, o.version, o.external_ids, o.body \
     FROM order_external_ids e JOIN orders o ON o.id = e.order_id WHERE e.external_id = $1";

fn order_from_row(row: &Row) -> Result<OrderRecord, Fail> {
    let id: String = row.try_get(0)?;
    let version: i64 = row.try_get(1)?;
    Ok(OrderRecord {
        version: stored_u64(version, "orders", &id, "version")?,
        external_ids: row.try_get(2)?,
        body: row.try_get(3)?,
        id,
    })
}

const OUTBOX_BY_ID: &str = "SELECT id, order_id, sequence, event_type, body, created_at_ms, \
     state, attempts, failures, next_attempt_ms FROM outbox WHERE id = $1";
const OUTBOX_LIST: &str = "SELECT id, order_id, sequence, event_type, body, created_at_ms, \
     state, attempts, failures, next_attempt_ms FROM outbox \
     WHERE ($1::text IS NULL OR state = $1) ORDER BY id LIMIT $2";

fn outbox_from_row(row: &Row) -> Result<OutboxItem, Fail> {
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

fn attempt_from_row(row: &Row, id: &str) -> Result<Attempt, Fail> {
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
fn idempotency_from_row(row: &Row, first: usize, id: &str) -> Result<IdempotencyRecord, Fail> {
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

const IDEMPOTENCY_AFTER: &str = "SELECT app_id, request_id, fingerprint, status, body, \
     created_at_ms FROM idempotency \
     WHERE $1::text IS NULL OR (app_id, request_id) > ($1, $2) \
     ORDER BY app_id, request_id LIMIT $3";
const OUTBOX_AFTER: &str = "SELECT id, order_id, sequence, event_type, body, created_at_ms, \
     state, attempts, failures, next_attempt_ms FROM outbox \
     WHERE $1::text IS NULL OR id > $1 ORDER BY id LIMIT $2";
/// Attempt logs of several entries; the event id comes last so [`attempt_from_row`] fits.
const ATTEMPTS_OF: &str = "SELECT at_ms, latency_ms, delivered, status, detail, event_id \
     FROM outbox_attempts WHERE event_id = ANY($1) ORDER BY event_id, number";

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

async fn outbox_after_once(
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
    let mut logs: std::collections::HashMap<String, Vec<Attempt>> =
        std::collections::HashMap::new();
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

// ---- commit ----

/// A [`Commit`] converted to column values up front (so a retry converts nothing).
struct PgCommit {
    idempotency: Option<PgIdempotency>,
    order: Option<PgOrder>,
    outbox: Vec<PgOutbox>,
}

struct PgIdempotency {
    app_id: String,
    request_id: String,
    fingerprint: Vec<u8>,
    status: i32,
    body: Vec<u8>,
    created_at_ms: i64,
}

struct PgOrder {
    id: String,
    version: i64,
    expected_version: Option<i64>,
    external_ids: Vec<String>,
    /// Deduplicated and sorted, so concurrent commits lock index entries in one order.
    index_ids: Vec<String>,
    body: Vec<u8>,
}

struct PgOutbox {
    id: String,
    order_id: String,
    sequence: i64,
    event_type: String,
    body: Vec<u8>,
    created_at_ms: i64,
}

impl PgCommit {
    fn new(commit: Commit) -> Result<PgCommit, StoreError> {
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
    fn new(key: IdempotencyKey, record: IdempotencyRecord) -> Result<PgIdempotency, StoreError> {
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
    fn new(w: OrderWrite) -> Result<PgOrder, StoreError> {
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
    fn new(e: OutboxEntry) -> Result<PgOutbox, StoreError> {
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

async fn commit_once(client: &mut deadpool_postgres::Client, c: &PgCommit) -> Result<(), Fail> {
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
async fn insert_idempotency(
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
async fn insert_order(
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
async fn index_external_ids(
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
async fn insert_outbox(
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

// ---- import ----

/// An [`ImportBatch`] converted to column values up front (so a retry converts nothing).
struct PgImport {
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
    /// at_ms, latency_ms, delivered, status, detail.
    log: Vec<(i64, i64, bool, Option<i32>, String)>,
}

impl PgImport {
    fn new(batch: ImportBatch) -> Result<PgImport, StoreError> {
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
                Ok(PgImportedEntry {
                    entry: PgOutbox::new(item.entry)?,
                    state: state_name(item.state),
                    attempts: i64::from(item.attempts),
                    failures: i64::from(item.failures),
                    next_attempt_ms: ms(item.next_attempt_ms),
                    log: log
                        .into_iter()
                        .map(|a| {
                            (
                                ms(a.at_ms),
                                ms(a.latency_ms),
                                a.delivered,
                                a.status.map(i32::from),
                                a.detail.replace('\0', "\u{fffd}"),
                            )
                        })
                        .collect(),
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
fn import_error(fail: Fail) -> Fail {
    match fail {
        Fail::Db(e) if e.code() == Some(&SqlState::UNIQUE_VIOLATION) => {
            Fail::Store(StoreError::Conflict)
        }
        other => other,
    }
}

async fn import_once(client: &mut deadpool_postgres::Client, b: &PgImport) -> Result<(), Fail> {
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
    let attempt = tx.prepare_cached(INSERT_ATTEMPT).await?;
    for x in &b.outbox {
        let e = &x.entry;
        insert_outbox(&tx, e, x.state, x.attempts, x.failures, x.next_attempt_ms).await?;
        for (number, (at_ms, latency_ms, delivered, status, detail)) in (1i64..).zip(&x.log) {
            tx.execute(
                &attempt,
                &[&e.id, &number, at_ms, latency_ms, delivered, status, detail],
            )
            .await?;
        }
    }
    tx.commit().await?;
    Ok(())
}

// ---- migrations ----

fn checksum(sql: &str) -> String {
    Sha256::digest(sql.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

async fn migrate_once(
    client: &mut deadpool_postgres::Client,
    schema: Option<&str>,
) -> Result<Vec<String>, Fail> {
    let tx = client.transaction().await?;
    tx.execute(
        "SELECT pg_advisory_xact_lock($1, hashtext($2))",
        &[&MIGRATION_LOCK, &schema.unwrap_or("")],
    )
    .await?;
    if let Some(schema) = schema {
        let exists = tx
            .query_opt("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&schema])
            .await?
            .is_some();
        if !exists {
            // `schema` was checked to be a plain identifier by `connect`.
            tx.batch_execute(&format!("CREATE SCHEMA {schema}")).await?;
        }
    }
    tx.batch_execute(
        "CREATE TABLE IF NOT EXISTS fast_seller_migrations (\
             version integer PRIMARY KEY, \
             name text NOT NULL, \
             checksum text NOT NULL, \
             applied_at timestamptz NOT NULL DEFAULT now())",
    )
    .await?;
    let rows = tx
        .query(
            "SELECT version, name, checksum FROM fast_seller_migrations ORDER BY version",
            &[],
        )
        .await?;
    let mut done = Vec::with_capacity(rows.len());
    for row in &rows {
        let version: i32 = row.try_get(0)?;
        let name: String = row.try_get(1)?;
        let sum: String = row.try_get(2)?;
        match MIGRATIONS.iter().find(|m| m.version == version) {
            Some(m) if checksum(m.sql) != sum => {
                return Err(StoreError::Io(format!(
                    "migrate: migration {} was changed after it was applied (checksum \
                     mismatch); refusing to run",
                    m.name
                ))
                .into());
            }
            Some(_) => {}
            None => tracing::warn!(
                version,
                name = %name,
                "the database has a migration this build does not know (a newer fast-seller?)"
            ),
        }
        done.push(version);
    }
    let mut applied = Vec::new();
    for m in MIGRATIONS.iter().filter(|m| !done.contains(&m.version)) {
        tx.batch_execute(m.sql).await?;
        tx.execute(
            "INSERT INTO fast_seller_migrations (version, name, checksum) VALUES ($1, $2, $3)",
            &[&m.version, &m.name, &checksum(m.sql)],
        )
        .await?;
        applied.push(m.name.to_owned());
    }
    tx.commit().await?;
    Ok(applied)
}

// ---- outbox ----

/// Logs one attempt (`$1` the event id, `$2` its number).
const INSERT_ATTEMPT: &str = "INSERT INTO outbox_attempts \
     (event_id, number, at_ms, latency_ms, delivered, status, detail) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";

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

async fn claim_once(
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

/// How [`Store::outbox_record`] changes an entry.
struct RecordChange<'a> {
    id: &'a str,
    state: &'static str,
    failed: bool,
    next_attempt_ms: Option<i64>,
    at_ms: i64,
    latency_ms: i64,
    delivered: bool,
    status: Option<i32>,
    detail: String,
}

async fn record_once(
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
                 leased_until_ms = NULL \
             WHERE id = $1 \
             RETURNING attempts",
        )
        .await?;
    let Some(row) = tx
        .query_opt(
            &stmt,
            &[&r.id, &r.state, &r.failed, &r.next_attempt_ms, &U32_MAX],
        )
        .await?
    else {
        return Err(StoreError::Io("no such outbox entry".into()).into());
    };
    let number: i64 = row.try_get(0)?;
    let stmt = tx.prepare_cached(INSERT_ATTEMPT).await?;
    tx.execute(
        &stmt,
        &[
            &r.id,
            &number,
            &r.at_ms,
            &r.latency_ms,
            &r.delivered,
            &r.status,
            &r.detail,
        ],
    )
    .await?;
    tx.commit().await?;
    Ok(())
}

async fn get_outbox_once(
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

fn count(row: &Row, index: usize) -> Result<u64, Fail> {
    let n: i64 = row.try_get(index)?;
    Ok(u64::try_from(n).unwrap_or(0))
}

#[async_trait]
impl Store for PgStore {
    async fn get_order(&self, id: &str) -> Result<Option<OrderRecord>, StoreError> {
        if id.contains('\0') {
            return Ok(None);
        }
        retrying!(self, "get_order", |client| async {
            let stmt = client.prepare_cached(ORDER_BY_ID).await?;
            client
                .query_opt(&stmt, &[&id])
                .await?
                .map(|row| order_from_row(&row))
                .transpose()
        })
    }

    async fn find_order_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<OrderRecord>, StoreError> {
        if external_id.contains('\0') {
            return Ok(None);
        }
        retrying!(self, "find_order_by_external_id", |client| async {
            let stmt = client.prepare_cached(ORDER_BY_EXTERNAL_ID).await?;
            client
                .query_opt(&stmt, &[&external_id])
                .await?
                .map(|row| order_from_row(&row))
                .transpose()
        })
    }

    async fn orders_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        let after = after.filter(|a| !a.contains('\0'));
        let limit = i64::try_from(limit).unwrap_or(i64::MAX);
        retrying!(self, "orders_after", |client| async {
            let stmt = client.prepare_cached(ORDERS_AFTER).await?;
            client
                .query(&stmt, &[&after, &limit])
                .await?
                .iter()
                .map(order_from_row)
                .collect()
        })
    }

    async fn get_idempotency(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        if key.app_id.contains('\0') || key.request_id.contains('\0') {
            return Ok(None);
        }
        retrying!(self, "get_idempotency", |client| async {
            let stmt = client
                .prepare_cached(
                    "SELECT fingerprint, status, body, created_at_ms FROM idempotency \
                     WHERE app_id = $1 AND request_id = $2",
                )
                .await?;
            client
                .query_opt(&stmt, &[&key.app_id, &key.request_id])
                .await?
                .map(|row| idempotency_from_row(&row, 0, &key.request_id))
                .transpose()
        })
    }

    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        let commit = PgCommit::new(commit)?;
        if commit.idempotency.is_none() && commit.order.is_none() && commit.outbox.is_empty() {
            return Ok(());
        }
        retrying!(self, "commit", |client| async {
            commit_once(&mut client, &commit)
                .await
                .map_err(commit_error)
        })
    }

    async fn prune_idempotency(&self, before_ms: u64) -> Result<u64, StoreError> {
        retrying!(self, "prune_idempotency", |client| async {
            // Markers left by crashed instances (a live request keeps its own).
            client
                .execute(
                    "DELETE FROM in_flight WHERE expires_at < clock_timestamp()",
                    &[],
                )
                .await?;
            let removed = match i64::try_from(before_ms) {
                Ok(before) => {
                    client
                        .execute(
                            "DELETE FROM idempotency WHERE created_at_ms < $1",
                            &[&before],
                        )
                        .await?
                }
                // Beyond every storable time: all of them.
                Err(_) => client.execute("DELETE FROM idempotency", &[]).await?,
            };
            Ok(removed)
        })
    }

    /// Claims with `FOR UPDATE SKIP LOCKED` and leases the rows until `now_ms + lease_ms`
    /// (exclusive: claimable again at that time) in the same statement. A lease of 0 leases
    /// nothing, like a single-process store.
    async fn outbox_claim(
        &self,
        now_ms: u64,
        limit_: usize,
        lease_ms: u64,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        if limit_ == 0 {
            return Ok(Vec::new());
        }
        let now = ms(now_ms);
        let leased_until = (lease_ms > 0).then(|| ms(now_ms.saturating_add(lease_ms)));
        let max = limit(limit_);
        retrying!(self, "outbox_claim", |client| claim_once(
            &mut client,
            now,
            leased_until,
            max
        ))
    }

    /// The earliest time a pending entry can be claimed: its due time, or the end of its
    /// lease when another worker holds it (so idle instances do not poll a leased entry).
    async fn outbox_next_due(&self) -> Result<Option<u64>, StoreError> {
        retrying!(self, "outbox_next_due", |client| async {
            let row = client
                .query_one(
                    "SELECT min(GREATEST(next_attempt_ms, COALESCE(leased_until_ms, 0))) \
                     FROM outbox WHERE state = 'pending'",
                    &[],
                )
                .await?;
            let due: Option<i64> = row.try_get(0)?;
            Ok(due.map(|d| u64::try_from(d).unwrap_or(0)))
        })
    }

    async fn outbox_record(
        &self,
        id: &str,
        attempt: Attempt,
        next: NextStep,
    ) -> Result<(), StoreError> {
        if id.contains('\0') {
            return Err(StoreError::Io("no such outbox entry".into()));
        }
        let (state, failed, next_attempt_ms) = match next {
            NextStep::Delivered => (OutboxState::Delivered, false, None),
            NextStep::RetryAt(at) => (OutboxState::Pending, true, Some(ms(at))),
            NextStep::Dead => (OutboxState::Dead, true, None),
        };
        let change = RecordChange {
            id,
            state: state_name(state),
            failed,
            next_attempt_ms,
            at_ms: ms(attempt.at_ms),
            latency_ms: ms(attempt.latency_ms),
            delivered: attempt.delivered,
            status: attempt.status.map(i32::from),
            // Backend text may hold anything; PostgreSQL text cannot hold NUL.
            detail: attempt.detail.replace('\0', "\u{fffd}"),
        };
        retrying!(self, "outbox_record", |client| record_once(
            &mut client,
            &change
        ))
    }

    async fn outbox_get(&self, id: &str) -> Result<Option<(OutboxItem, Vec<Attempt>)>, StoreError> {
        if id.contains('\0') {
            return Ok(None);
        }
        retrying!(self, "outbox_get", |client| get_outbox_once(
            &mut client,
            id
        ))
    }

    async fn outbox_list(
        &self,
        state: Option<OutboxState>,
        limit_: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let state = state.map(state_name);
        let max = limit(limit_);
        retrying!(self, "outbox_list", |client| async {
            let stmt = client.prepare_cached(OUTBOX_LIST).await?;
            client
                .query(&stmt, &[&state, &max])
                .await?
                .iter()
                .map(outbox_from_row)
                .collect::<Result<Vec<_>, _>>()
        })
    }

    async fn outbox_requeue(&self, id: &str, now_ms: u64) -> Result<bool, StoreError> {
        if id.contains('\0') {
            return Ok(false);
        }
        let now = ms(now_ms);
        retrying!(self, "outbox_requeue", |client| async {
            let changed = client
                .execute(
                    "UPDATE outbox SET state = 'pending', failures = 0, next_attempt_ms = $2, \
                     leased_until_ms = NULL WHERE id = $1 AND state = 'dead'",
                    &[&id, &now],
                )
                .await?;
            Ok(changed == 1)
        })
    }

    async fn outbox_backlog(&self) -> Result<(u64, u64), StoreError> {
        retrying!(self, "outbox_backlog", |client| async {
            let row = client
                .query_one(
                    "SELECT count(*) FILTER (WHERE state = 'pending'), \
                            count(*) FILTER (WHERE state = 'dead') \
                     FROM outbox WHERE state <> 'delivered'",
                    &[],
                )
                .await?;
            Ok((count(&row, 0)?, count(&row, 1)?))
        })
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        retrying!(self, "counts", |client| async {
            let row = client
                .query_one(
                    "SELECT (SELECT count(*) FROM orders), \
                            (SELECT count(*) FROM idempotency), \
                            (SELECT count(*) FROM outbox), \
                            (SELECT count(*) FROM outbox WHERE state = 'pending'), \
                            (SELECT count(*) FROM outbox WHERE state = 'dead')",
                    &[],
                )
                .await?;
            Ok(StoreCounts {
                orders: count(&row, 0)?,
                idempotency_records: count(&row, 1)?,
                outbox_entries: count(&row, 2)?,
                outbox_pending: count(&row, 3)?,
                outbox_dead: count(&row, 4)?,
            })
        })
    }

    /// Every commit is durable when COMMIT returns: nothing is left to flush.
    async fn flush(&self) -> Result<(), StoreError> {
        Ok(())
    }

    async fn idempotency_after(
        &self,
        after: Option<&IdempotencyKey>,
        limit_: usize,
    ) -> Result<Vec<(IdempotencyKey, IdempotencyRecord)>, StoreError> {
        let (app_id, request_id) = match after {
            Some(k) => (
                Some(text(&k.app_id, "app_id")?),
                Some(text(&k.request_id, "request_id")?),
            ),
            None => (None, None),
        };
        let max = limit(limit_);
        retrying!(self, "idempotency_after", |client| async {
            let stmt = client.prepare_cached(IDEMPOTENCY_AFTER).await?;
            client
                .query(&stmt, &[&app_id, &request_id, &max])
                .await?
                .iter()
                .map(|row| {
                    let key = IdempotencyKey {
                        app_id: row.try_get(0)?,
                        request_id: row.try_get(1)?,
                    };
                    let record = idempotency_from_row(row, 2, &key.request_id)?;
                    Ok((key, record))
                })
                .collect()
        })
    }

    async fn outbox_after(
        &self,
        after: Option<&str>,
        limit_: usize,
    ) -> Result<Vec<(OutboxItem, Vec<Attempt>)>, StoreError> {
        let after = after.map(|a| text(a, "event id")).transpose()?;
        let max = limit(limit_);
        retrying!(self, "outbox_after", |client| outbox_after_once(
            &mut client,
            after,
            max
        ))
    }

    /// One statement: insert the marker, or take over an expired one (by the database's
    /// clock, so the instances' clocks need not agree). A concurrent claim of the same key
    /// waits for this one's row, then finds it live.
    async fn claim_in_flight(
        &self,
        key: &IdempotencyKey,
        owner: &str,
        ttl: Duration,
    ) -> Result<InFlightClaim, StoreError> {
        let app_id = text(&key.app_id, "app_id")?;
        let request_id = text(&key.request_id, "request_id")?;
        let ttl_secs = ttl.as_secs_f64();
        let row = retrying!(self, "claim_in_flight", |client| async {
            let stmt = client
                .prepare_cached(
                    "INSERT INTO in_flight (app_id, request_id, owner, expires_at) \
                     VALUES ($1, $2, $3, clock_timestamp() + make_interval(secs => $4)) \
                     ON CONFLICT (app_id, request_id) DO UPDATE \
                     SET owner = EXCLUDED.owner, expires_at = EXCLUDED.expires_at \
                     WHERE in_flight.expires_at <= clock_timestamp() \
                     RETURNING (xmax <> 0)",
                )
                .await?;
            Ok(client
                .query_opt(&stmt, &[&app_id, &request_id, &owner, &ttl_secs])
                .await?)
        })?;
        let Some(row) = row else {
            return Ok(InFlightClaim::Held);
        };
        let took_over: bool = row
            .try_get(0)
            .map_err(|e| db_error("claim_in_flight", &e))?;
        if took_over {
            tracing::warn!(
                request_id = %key.request_id,
                "took over the expired in-flight marker of a request id (its instance stopped \
                 or took longer than the marker's lifetime)"
            );
        }
        Ok(InFlightClaim::Claimed)
    }

    async fn release_in_flight(&self, key: &IdempotencyKey, owner: &str) -> Result<(), StoreError> {
        if key.app_id.contains('\0') || key.request_id.contains('\0') {
            return Ok(());
        }
        retrying!(self, "release_in_flight", |client| async {
            let stmt = client
                .prepare_cached(
                    "DELETE FROM in_flight WHERE app_id = $1 AND request_id = $2 AND owner = $3",
                )
                .await?;
            client
                .execute(&stmt, &[&key.app_id, &key.request_id, &owner])
                .await?;
            Ok(())
        })
    }

    async fn import(&self, batch: ImportBatch) -> Result<(), StoreError> {
        let batch = PgImport::new(batch)?;
        retrying!(self, "import", |client| async {
            import_once(&mut client, &batch).await.map_err(import_error)
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn redacts_url_passwords() {
        assert_eq!(
            redact_url("postgres://fast:s3cret@db.example:5432/fast"),
            "postgres://fast:***@db.example:5432/fast"
        );
        assert_eq!(
            redact_url("postgresql://fast@db/fast?sslmode=disable&password=x&a=b"),
            "postgresql://fast@db/fast?sslmode=disable&password=***&a=b"
        );
        assert_eq!(
            redact_url("postgres://u:p@ss:w@rd@h/db"),
            "postgres://u:***@h/db"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test"
        );
        assert_eq!(
            redact_url("host=db user=fast password=s3cret dbname=fast"),
            "host=db user=fast password=*** dbname=fast"
        );
        assert_eq!(
            redact_url("host=db password = 'it\\'s a secret' user=u"),
            "host=db password=*** user=u"
        );
        assert!(!redact_url("password='unterminated secret").contains("secret"));
        assert!(!redact_url("password='it''s secret' user=u").contains("secret"));
    }

    #[test]
    fn schema_names_are_plain_identifiers() {
        assert!(check_schema_name("fs_test_0a9f").is_ok());
        assert!(check_schema_name("_x").is_ok());
        for bad in ["", "1abc", "Upper", "a-b", "a b", "a;drop", &"x".repeat(64)] {
            assert!(check_schema_name(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn migrations_are_numbered_in_order() {
        for (i, m) in MIGRATIONS.iter().enumerate() {
            assert_eq!(usize::try_from(m.version).unwrap(), i + 1);
            assert!(m.name.starts_with(&format!("{:04}_", m.version)));
        }
    }
}
