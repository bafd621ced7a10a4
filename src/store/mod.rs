//! The store: where orders, idempotency records and outbox entries live.
//!
//! The trait exposes *units of atomicity*, never raw transactions: one [`Commit`] writes an
//! order, the idempotency record of the request that changed it and any outbox entries
//! together, and makes them durable before it returns. sled is the first implementation;
//! a PostgreSQL one must fit the same trait without changing callers.
//!
//! The store does not look inside an order: it keeps the serialized order bytes plus the ids
//! it must index (the Fast order id as primary key, and every seller `external_id` the order
//! was ever known by).

mod compress;
pub mod copy;
/// The PostgreSQL store (for several instances sharing one database).
pub mod postgres;
pub mod sled;

use std::time::Duration;

use async_trait::async_trait;

/// One stored order: the serialized domain order plus what the store indexes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OrderRecord {
    /// Fast's order id (`order.id.value`): the primary key.
    pub id: String,
    /// Seller ids that find this order, current one first. Old ones stay findable.
    pub external_ids: Vec<String>,
    /// Bumped by the caller on every commit; the store checks it (optimistic concurrency).
    pub version: u64,
    /// The serialized order, opaque to the store.
    pub body: Vec<u8>,
}

/// Key of an idempotency record: Fast's `request_id`, scoped by the `app_id` it came with.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct IdempotencyKey {
    pub app_id: String,
    pub request_id: String,
}

/// The stored answer to a mutating request, replayed byte for byte on a repeat.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdempotencyRecord {
    /// SHA-256 of the endpoint and the canonical request body.
    pub fingerprint: [u8; 32],
    /// HTTP status of the first answer.
    pub status: u16,
    /// Exact bytes of the first answer.
    pub body: Vec<u8>,
    /// When it was written, in milliseconds since the Unix epoch (drives retention).
    pub created_at_ms: u64,
}

/// An event for the merchant's commerce backend, written with the change that caused it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxEntry {
    /// Stable event id (UUIDv7, so key order is creation order).
    pub id: String,
    /// Fast order id the event belongs to.
    pub order_id: String,
    /// Per-order counter from 1; events of one order are delivered in this order.
    pub sequence: u64,
    /// `order.converted`, `order.status_changed`, …
    pub event_type: String,
    /// The serialized event.
    pub body: Vec<u8>,
    pub created_at_ms: u64,
}

/// Where an outbox entry stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OutboxState {
    /// Waiting for its next attempt (or for an earlier event of its order).
    Pending,
    Delivered,
    /// Attempts exhausted or refused for good; blocks later events of its order until retried.
    Dead,
}

impl OutboxState {
    pub fn as_str(self) -> &'static str {
        match self {
            OutboxState::Pending => "pending",
            OutboxState::Delivered => "delivered",
            OutboxState::Dead => "dead",
        }
    }

    /// The inverse of [`OutboxState::as_str`].
    pub fn parse(name: &str) -> Option<OutboxState> {
        [
            OutboxState::Pending,
            OutboxState::Delivered,
            OutboxState::Dead,
        ]
        .into_iter()
        .find(|s| s.as_str() == name)
    }
}

/// An outbox entry with its delivery state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxItem {
    pub entry: OutboxEntry,
    pub state: OutboxState,
    /// Attempts made in all (numbering of the attempt log).
    pub attempts: u32,
    /// Failed attempts since the entry was (re)queued: the step of the retry schedule.
    pub failures: u32,
    /// When the next attempt is due (ms since the epoch); meaningful while pending.
    pub next_attempt_ms: u64,
}

/// One delivery attempt, as logged.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Attempt {
    pub at_ms: u64,
    pub latency_ms: u64,
    pub delivered: bool,
    /// The backend's HTTP status, when it has one.
    pub status: Option<u16>,
    /// What happened, for people (never a secret).
    pub detail: String,
}

/// What follows an attempt.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NextStep {
    Delivered,
    RetryAt(u64),
    /// Try again then, without taking a step of the retry schedule (the attempt could not
    /// be made: its destination is not configured).
    WaitUntil(u64),
    Dead,
}

impl NextStep {
    /// The state the entry is in afterwards.
    pub fn state(self) -> OutboxState {
        match self {
            NextStep::Delivered => OutboxState::Delivered,
            NextStep::RetryAt(_) | NextStep::WaitUntil(_) => OutboxState::Pending,
            NextStep::Dead => OutboxState::Dead,
        }
    }

    /// Whether the attempt failed (and so takes a step of the retry schedule).
    pub fn failed(self) -> bool {
        matches!(self, NextStep::RetryAt(_) | NextStep::Dead)
    }

    /// When the next attempt is due, for a retry.
    pub fn retry_at(self) -> Option<u64> {
        match self {
            NextStep::RetryAt(at) | NextStep::WaitUntil(at) => Some(at),
            NextStep::Delivered | NextStep::Dead => None,
        }
    }
}

/// The write half of an order change.
#[derive(Debug, Clone)]
pub struct OrderWrite {
    pub record: OrderRecord,
    /// `None`: the order must not exist yet. `Some(v)`: the stored version must be `v`.
    pub expected_version: Option<u64>,
}

/// Everything one request changes, committed atomically and durably.
#[derive(Debug, Clone, Default)]
pub struct Commit {
    pub order: Option<OrderWrite>,
    pub idempotency: Option<(IdempotencyKey, IdempotencyRecord)>,
    pub outbox: Vec<OutboxEntry>,
}

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    /// The expected version did not match (or the order already exists on a create).
    #[error("the order changed concurrently (version conflict)")]
    Conflict,
    /// The idempotency key was already recorded by another writer.
    #[error("the request id was already recorded")]
    DuplicateRequest,
    /// Stored bytes could not be decoded: never silently dropped.
    #[error("stored data is corrupt: {0}")]
    Corrupt(String),
    /// The data directory is held by another process.
    #[error("the data directory {0} is locked by another fast-seller process")]
    Locked(String),
    /// Any I/O or engine failure; the commit did not happen (or is not durable).
    #[error("storage failure: {0}")]
    Io(String),
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// The order with this Fast id.
    async fn get_order(&self, id: &str) -> Result<Option<OrderRecord>, StoreError>;
    /// The order that ever carried this seller `external_id`.
    async fn find_order_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<OrderRecord>, StoreError>;
    /// Orders with an id above `after` (all when `None`), by id, at most `limit`: the
    /// merchant's order listing and store-to-store copies page through this.
    async fn orders_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OrderRecord>, StoreError>;
    async fn get_idempotency(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError>;
    /// Writes everything in `commit` in one transaction and returns only once it is durable
    /// (flushed to disk). Either all of it is visible afterwards, or none of it.
    async fn commit(&self, commit: Commit) -> Result<(), StoreError>;
    /// Deletes at most `limit` idempotency records created before `before_ms`; returns how
    /// many. Bounded so that no call holds locks for long: callers repeat it while it
    /// returns `limit`.
    async fn prune_idempotency(&self, before_ms: u64, limit: usize) -> Result<u64, StoreError>;
    /// Deletes at most `limit` delivered outbox entries whose delivery ([`delivered_at`])
    /// happened before `before_ms`, with their attempt logs; returns how many. Pending and
    /// dead entries are never pruned. Callers repeat it while it returns `limit`.
    async fn prune_outbox(&self, before_ms: u64, limit: usize) -> Result<u64, StoreError>;
    /// Claims pending entries due at `now_ms` that are the oldest undelivered event of their
    /// order (per-order FIFO), oldest due first, at most `limit`, for `lease_ms`: until then
    /// no other worker (of another instance sharing the store) claims them. A single-process
    /// store may ignore the lease.
    async fn outbox_claim(
        &self,
        now_ms: u64,
        limit: usize,
        lease_ms: u64,
    ) -> Result<Vec<OutboxItem>, StoreError>;
    /// When the earliest pending entry is due, if any.
    async fn outbox_next_due(&self) -> Result<Option<u64>, StoreError>;
    /// Logs an attempt and moves the entry on (delivered, rescheduled or dead), durably.
    async fn outbox_record(
        &self,
        id: &str,
        attempt: Attempt,
        next: NextStep,
    ) -> Result<(), StoreError>;
    /// One entry with its attempt log.
    async fn outbox_get(&self, id: &str) -> Result<Option<(OutboxItem, Vec<Attempt>)>, StoreError>;
    /// Entries in one state (all states when `None`), oldest first, at most `limit`.
    async fn outbox_list(
        &self,
        state: Option<OutboxState>,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError>;
    /// Puts a dead entry back in the queue, due at `now_ms`, with a fresh schedule; its
    /// history stays. Returns false if the entry is not dead.
    async fn outbox_requeue(&self, id: &str, now_ms: u64) -> Result<bool, StoreError>;
    /// Pending and dead outbox entries (cheap: for `/readyz` and the logs).
    async fn outbox_backlog(&self) -> Result<(u64, u64), StoreError>;
    /// Counts stored orders, idempotency records and outbox entries (health detail, tests).
    async fn counts(&self) -> Result<StoreCounts, StoreError>;
    /// Rows and bytes per kind of stored data, and the bytes on disk. Reads every row: for
    /// operators and the hourly gauges, never per request.
    async fn stats(&self) -> Result<StoreStats, StoreError>;
    /// Makes every earlier write durable (shutdown).
    async fn flush(&self) -> Result<(), StoreError>;
    /// Idempotency records with a key above `after` (all when `None`), by `app_id` then
    /// `request_id` (bytewise), at most `limit`: store-to-store copies page through this.
    async fn idempotency_after(
        &self,
        after: Option<&IdempotencyKey>,
        limit: usize,
    ) -> Result<Vec<(IdempotencyKey, IdempotencyRecord)>, StoreError>;
    /// Outbox entries with an id above `after` (all when `None`), by id, at most `limit`,
    /// each with its attempt log: store-to-store copies page through this.
    async fn outbox_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(OutboxItem, Vec<Attempt>)>, StoreError>;
    /// Writes the rows of `batch` exactly as given (versions, delivery states, counters and
    /// attempt logs; no lease) in one transaction, durably. A row whose key is already stored
    /// fails the whole batch with [`StoreError::Conflict`]; nothing is overwritten.
    async fn import(&self, batch: ImportBatch) -> Result<(), StoreError>;
    /// Marks `key` as being executed by `owner` for `ttl`, for the other instances sharing the
    /// store: [`InFlightClaim::Claimed`] when the marker is `owner`'s now (new, or taken over
    /// from an expired one), [`InFlightClaim::Held`] while another live marker exists. A store
    /// that only one process opens answers [`InFlightClaim::NotShared`]: the caller's
    /// in-process lock is all it needs.
    async fn claim_in_flight(
        &self,
        _key: &IdempotencyKey,
        _owner: &str,
        _ttl: Duration,
    ) -> Result<InFlightClaim, StoreError> {
        Ok(InFlightClaim::NotShared)
    }
    /// Removes `owner`'s marker of `key`, if it still holds it.
    async fn release_in_flight(
        &self,
        _key: &IdempotencyKey,
        _owner: &str,
    ) -> Result<(), StoreError> {
        Ok(())
    }
}

/// The answer of [`Store::claim_in_flight`].
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InFlightClaim {
    /// The marker is the caller's until it releases it or it expires.
    Claimed,
    /// Another instance is executing the request (its marker has not expired).
    Held,
    /// Only one process uses the store: no marker is kept.
    NotShared,
}

/// Rows for [`Store::import`], as the `…_after` methods of another store return them.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ImportBatch {
    pub orders: Vec<OrderRecord>,
    pub idempotency: Vec<(IdempotencyKey, IdempotencyRecord)>,
    /// Entries with their attempt log, oldest attempt first.
    pub outbox: Vec<(OutboxItem, Vec<Attempt>)>,
}

/// When a delivered entry was delivered, which starts its retention: the time of its last
/// successful attempt; for an entry with no such attempt in its log (imported from a store
/// that did not keep one), its last due time.
pub fn delivered_at(item: &OutboxItem, attempts: &[Attempt]) -> u64 {
    attempts
        .iter()
        .rev()
        .find(|a| a.delivered)
        .map_or(item.next_attempt_ms, |a| a.at_ms)
}

/// Rows and bytes of one kind of stored data: a sled tree or a PostgreSQL table.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct KindStats {
    /// `orders`, `idempotency`, `outbox`, `outbox_attempts`, or an index of the store.
    pub kind: String,
    pub rows: u64,
    /// Bytes of the rows as stored (compressed bodies included as compressed): sled's keys
    /// and values, PostgreSQL's `pg_column_size` of each row.
    pub live_bytes: u64,
    /// Bytes on disk of this kind with its indexes, where the store keeps it apart
    /// (PostgreSQL); sled's trees share their files.
    pub disk_bytes: Option<u64>,
}

/// What `fast-seller store stats` and the store gauges of `/metrics` show.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct StoreStats {
    pub kinds: Vec<KindStats>,
    pub outbox_pending: u64,
    pub outbox_delivered: u64,
    pub outbox_dead: u64,
    /// Bytes the store takes on disk: sled's files, or PostgreSQL's tables with their
    /// indexes and TOAST.
    pub disk_bytes: u64,
}

impl StoreStats {
    /// Bytes of every row of every kind.
    pub fn live_bytes(&self) -> u64 {
        self.kinds.iter().map(|k| k.live_bytes).sum()
    }

    /// Disk bytes per live byte (`None` for an empty store). A ratio for people, never
    /// money.
    pub fn space_amplification(&self) -> Option<f64> {
        let live = self.live_bytes();
        (live > 0).then(|| self.disk_bytes as f64 / live as f64)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct StoreCounts {
    pub orders: u64,
    pub idempotency_records: u64,
    pub outbox_entries: u64,
    pub outbox_pending: u64,
    pub outbox_dead: u64,
}
