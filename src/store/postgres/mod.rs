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
//! Isolation (what it promises: `docs/idempotency.md`, "No lost updates"): every transaction
//! runs at READ COMMITTED and relies on row locks and unique indexes, not on SERIALIZABLE:
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
use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use tokio_postgres::NoTls;

use self::commit::{commit_error, commit_once, PgCommit};
pub use self::error::redact_url;
use self::error::{db_error, pool_error, with_causes};
use self::import::{import_error, import_once, PgImport};
use self::outbox::{
    claim_once, get_outbox_once, outbox_after_once, prune_once, record_once, RecordChange,
};
use self::rows::{
    count, idempotency_from_row, limit, ms, order_from_row, outbox_from_row, text,
    IDEMPOTENCY_AFTER, ORDERS_AFTER, ORDER_BY_EXTERNAL_ID, ORDER_BY_ID, OUTBOX_LIST,
};
use self::stats::stats_once;
use super::{
    Attempt, Commit, IdempotencyKey, IdempotencyRecord, ImportBatch, InFlightClaim, NextStep,
    OrderRecord, OutboxItem, OutboxState, Store, StoreCounts, StoreError, StoreStats,
};

/// Retries of a transaction that hit a serialization failure or a deadlock.
pub const MAX_RETRIES: u32 = 5;
/// Limit for opening one connection (when the URL sets none).
const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// Longest wait for a free pooled connection.
const POOL_WAIT: Duration = Duration::from_secs(10);

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

/// Runs `$body` (a future using the pooled connection `$client`) and retries it on a fresh
/// connection after a serialization failure or a deadlock, at most [`MAX_RETRIES`] times.
macro_rules! retrying {
    ($store:expr, $op:expr, |$client:ident| $body:expr) => {{
        use $crate::store::postgres::error::{backoff, db_error, is_retryable, Fail};
        use $crate::store::postgres::MAX_RETRIES;
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
                    break Err($crate::store::StoreError::Io(format!(
                        "{op}: the database stayed busy (serialization failures or deadlocks, {MAX_RETRIES} retries)"
                    )));
                }
                Err(Fail::Db(e)) => break Err(db_error(op, &e)),
                Err(Fail::Store(e)) => break Err(e),
            }
        }
    }};
}

// After the macro: the modules below use it.
mod commit;
mod error;
mod import;
mod migrate;
mod outbox;
mod rows;
mod stats;

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
        if commit.is_empty() {
            return Ok(());
        }
        retrying!(self, "commit", |client| async {
            commit_once(&mut client, &commit)
                .await
                .map_err(commit_error)
        })
    }

    async fn prune_idempotency(&self, before_ms: u64, limit_: usize) -> Result<u64, StoreError> {
        // Beyond every storable time: all of them.
        let sql = if i64::try_from(before_ms).is_ok() {
            "DELETE FROM idempotency WHERE (app_id, request_id) IN ( \
                 SELECT app_id, request_id FROM idempotency WHERE created_at_ms < $1 \
                 ORDER BY created_at_ms LIMIT $2 FOR UPDATE SKIP LOCKED)"
        } else {
            "DELETE FROM idempotency WHERE (app_id, request_id) IN ( \
                 SELECT app_id, request_id FROM idempotency WHERE created_at_ms <= $1 \
                 ORDER BY created_at_ms LIMIT $2 FOR UPDATE SKIP LOCKED)"
        };
        let before = ms(before_ms);
        let max = limit(limit_);
        retrying!(self, "prune_idempotency", |client| async {
            // Markers left by crashed instances (a live request keeps its own).
            client
                .execute(
                    "DELETE FROM in_flight WHERE expires_at < clock_timestamp()",
                    &[],
                )
                .await?;
            let stmt = client.prepare_cached(sql).await?;
            Ok(client.execute(&stmt, &[&before, &max]).await?)
        })
    }

    async fn prune_outbox(&self, before_ms: u64, limit_: usize) -> Result<u64, StoreError> {
        let before = ms(before_ms);
        let max = limit(limit_);
        retrying!(self, "prune_outbox", |client| prune_once(
            &mut client,
            before,
            max
        ))
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
        let change = RecordChange::new(id, &attempt, next);
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
        let state = state.map(OutboxState::as_str);
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

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        retrying!(self, "stats", |client| stats_once(&mut client))
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
    fn schema_names_are_plain_identifiers() {
        assert!(check_schema_name("fs_test_0a9f").is_ok());
        assert!(check_schema_name("_x").is_ok());
        for bad in ["", "1abc", "Upper", "a-b", "a b", "a;drop", &"x".repeat(64)] {
            assert!(check_schema_name(bad).is_err(), "{bad}");
        }
    }
}
