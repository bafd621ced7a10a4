//! The sled implementation of [`Store`].
//!
//! Layout (database in `<data_dir>/sled-v1/`):
//! - `v1.orders`: Fast order id → encoded [`OrderRecord`]
//! - `v1.order_ext`: seller external id → Fast order id (raw UTF-8)
//! - `v1.idem`: `app_id` + `0x00` + `request_id` → encoded [`IdempotencyRecord`]
//! - `v1.idem_time`: `created_at_ms` (big-endian) + idem key → empty (pruning index)
//! - `v1.outbox`: entry id → encoded [`OutboxItem`] (entry + delivery state)
//! - `v1.outbox_due`: `next_attempt_ms` (big-endian) + entry id → empty (pending entries)
//! - `v1.outbox_order`: order id + `0x00` + sequence (big-endian) → entry id (undelivered
//!   entries; the first key of an order is the only one that may be delivered)
//! - `v1.outbox_dead`: entry id → empty (dead letters)
//! - `v1.outbox_attempts`: entry id + `0x00` + attempt number (big-endian) → encoded [`Attempt`]
//! - `v1.outbox_delivered`: delivery time (big-endian) + entry id → empty (delivered
//!   entries, for pruning; built at open for a store written before it existed)
//!
//! Encoded values are a format byte ([`FORMAT`](codec::FORMAT)) followed by a
//! length-prefixed binary layout: integers big-endian, byte strings as a `u64` big-endian
//! length plus the bytes.
//!
//! Every commit is one multi-tree transaction, made durable by a group-commit flusher
//! thread that serves all queued commits with one `Db::flush`.

mod codec;
mod commit;
mod flusher;
mod import;
mod keys;
mod outbox;
mod prune;
mod stats;
#[cfg(test)]
mod tests;
mod trees;

use std::path::{Path, PathBuf};
use std::sync::Arc;

use async_trait::async_trait;

use self::codec::encode;
use self::commit::EncodedCommit;
use self::flusher::Flusher;
use self::import::EncodedImport;
use self::trees::Trees;
use super::{
    Attempt, Commit, IdempotencyKey, IdempotencyRecord, ImportBatch, NextStep, OrderRecord,
    OutboxItem, OutboxState, Store, StoreCounts, StoreError, StoreStats,
};

/// Folder of this on-disk format inside the data directory.
const DB_DIR: &str = "sled-v1";

/// A [`Store`] backed by sled, with group commit.
pub struct SledStore {
    trees: Arc<Trees>,
    /// Dropped last: joining its thread releases the database (and its directory lock).
    flusher: Flusher,
}

impl SledStore {
    /// Opens (or creates) the database in `<data_dir>/sled-v1/`.
    ///
    /// Returns [`StoreError::Locked`] when another process holds the directory.
    pub fn open(data_dir: &Path, cache_capacity_bytes: u64) -> Result<SledStore, StoreError> {
        std::fs::create_dir_all(data_dir)
            .map_err(|e| StoreError::Io(format!("cannot create {}: {e}", data_dir.display())))?;
        let path = data_dir.join(DB_DIR);
        let db = sled::Config::new()
            .path(&path)
            .cache_capacity(cache_capacity_bytes)
            .mode(sled::Mode::LowSpace)
            .open()
            .map_err(|e| open_error(&path, e))?;
        let trees = Arc::new(Trees::open(&db)?);
        let flusher = Flusher::start(db)?;
        Ok(SledStore { trees, flusher })
    }

    /// [`SledStore::open`] on a blocking thread, off the async workers (opening reads the
    /// log).
    pub async fn open_blocking(
        data_dir: PathBuf,
        cache_capacity_bytes: u64,
    ) -> Result<SledStore, StoreError> {
        blocking(move || SledStore::open(&data_dir, cache_capacity_bytes)).await
    }

    /// Whether `data_dir` holds a store of this format (without opening or creating it).
    pub fn exists_in(data_dir: &Path) -> bool {
        data_dir.join(DB_DIR).is_dir()
    }

    /// Runs `f` on the trees in a blocking task.
    async fn with_trees<T, F>(&self, f: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: FnOnce(&Trees) -> Result<T, StoreError> + Send + 'static,
    {
        let trees = Arc::clone(&self.trees);
        blocking(move || f(&trees)).await
    }
}

/// Maps an open error: a held file lock is [`StoreError::Locked`], the rest is I/O.
fn open_error(path: &Path, e: sled::Error) -> StoreError {
    match e {
        sled::Error::Io(io) if io.to_string().contains("could not acquire lock") => {
            StoreError::Locked(path.display().to_string())
        }
        other => StoreError::Io(format!("cannot open {}: {other}", path.display())),
    }
}

/// Runs blocking sled work off the async workers, inside the caller's tracing span.
async fn blocking<T, F>(f: F) -> Result<T, StoreError>
where
    T: Send + 'static,
    F: FnOnce() -> Result<T, StoreError> + Send + 'static,
{
    let span = tracing::Span::current();
    tokio::task::spawn_blocking(move || span.in_scope(f))
        .await
        .map_err(|e| StoreError::Io(format!("blocking store task failed: {e}")))?
}

#[async_trait]
impl Store for SledStore {
    async fn get_order(&self, id: &str) -> Result<Option<OrderRecord>, StoreError> {
        let id = id.to_owned();
        self.with_trees(move |t| t.get_order(&id)).await
    }

    async fn find_order_by_external_id(
        &self,
        external_id: &str,
    ) -> Result<Option<OrderRecord>, StoreError> {
        let ext = external_id.to_owned();
        self.with_trees(move |t| t.find_order_by_external_id(&ext))
            .await
    }

    async fn orders_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        let after = after.map(str::to_owned);
        self.with_trees(move |t| t.orders_after(after.as_deref(), limit))
            .await
    }

    async fn get_idempotency(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let key = key.clone();
        self.with_trees(move |t| t.get_idempotency(&key)).await
    }

    async fn commit(&self, commit: Commit) -> Result<(), StoreError> {
        let batch = EncodedCommit::new(commit)?;
        self.with_trees(move |t| t.commit(&batch)).await?;
        self.flusher.flush().await
    }

    async fn prune_idempotency(&self, before_ms: u64, limit: usize) -> Result<u64, StoreError> {
        let removed = self
            .with_trees(move |t| t.prune_idempotency(before_ms, limit))
            .await?;
        self.flusher.flush().await?;
        Ok(removed)
    }

    async fn prune_outbox(&self, before_ms: u64, limit: usize) -> Result<u64, StoreError> {
        let removed = self
            .with_trees(move |t| t.prune_outbox(before_ms, limit))
            .await?;
        self.flusher.flush().await?;
        Ok(removed)
    }

    /// One process owns a sled store and its single worker claims sequentially: no lease.
    async fn outbox_claim(
        &self,
        now_ms: u64,
        limit: usize,
        _lease_ms: u64,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let due = self
            .with_trees(move |t| t.outbox_due(now_ms, limit))
            .await?;
        // A commit is visible before its group flush ends: never hand out an event whose commit
        // a crash could still undo. A flush started after the read covers all it returned.
        if !due.is_empty() {
            self.flusher.flush().await?;
        }
        Ok(due)
    }

    async fn outbox_next_due(&self) -> Result<Option<u64>, StoreError> {
        self.with_trees(|t| t.outbox_next_due()).await
    }

    async fn outbox_record(
        &self,
        id: &str,
        attempt: Attempt,
        next: NextStep,
    ) -> Result<(), StoreError> {
        let id = id.to_owned();
        let encoded = encode(&attempt)?;
        let at_ms = attempt.at_ms;
        let found = self
            .with_trees(move |t| {
                t.outbox_update(&id, &|old| {
                    let mut new = old.clone();
                    new.attempts = old.attempts.saturating_add(1);
                    new.state = next.state();
                    if next.failed() {
                        new.failures = old.failures.saturating_add(1);
                    }
                    if let Some(at) = next.retry_at() {
                        new.next_attempt_ms = at;
                    }
                    Some((new, Some((at_ms, encoded.clone()))))
                })
            })
            .await?;
        if !found {
            return Err(StoreError::Io("no such outbox entry".into()));
        }
        self.flusher.flush().await
    }

    async fn outbox_get(&self, id: &str) -> Result<Option<(OutboxItem, Vec<Attempt>)>, StoreError> {
        let id = id.to_owned();
        self.with_trees(move |t| match t.outbox_item(id.as_bytes())? {
            None => Ok(None),
            Some(item) => Ok(Some((item, t.outbox_attempts(&id)?))),
        })
        .await
    }

    async fn outbox_list(
        &self,
        state: Option<OutboxState>,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        self.with_trees(move |t| t.outbox_list(state, limit)).await
    }

    async fn outbox_requeue(&self, id: &str, now_ms: u64) -> Result<bool, StoreError> {
        let id = id.to_owned();
        let requeued = self
            .with_trees(move |t| {
                t.outbox_update(&id, &|old| {
                    (old.state == OutboxState::Dead).then(|| {
                        let mut new = old.clone();
                        new.state = OutboxState::Pending;
                        new.failures = 0;
                        new.next_attempt_ms = now_ms;
                        (new, None)
                    })
                })
            })
            .await?;
        self.flusher.flush().await?;
        Ok(requeued)
    }

    async fn outbox_backlog(&self) -> Result<(u64, u64), StoreError> {
        self.with_trees(|t| Ok((t.outbox_due.len() as u64, t.outbox_dead.len() as u64)))
            .await
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.with_trees(|t| Ok(t.counts())).await
    }

    async fn stats(&self) -> Result<StoreStats, StoreError> {
        self.with_trees(|t| t.stats()).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.flusher.flush().await
    }

    async fn idempotency_after(
        &self,
        after: Option<&IdempotencyKey>,
        limit: usize,
    ) -> Result<Vec<(IdempotencyKey, IdempotencyRecord)>, StoreError> {
        let after = after.cloned();
        self.with_trees(move |t| t.idempotency_after(after.as_ref(), limit))
            .await
    }

    async fn outbox_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(OutboxItem, Vec<Attempt>)>, StoreError> {
        let after = after.map(str::to_owned);
        self.with_trees(move |t| t.outbox_after(after.as_deref(), limit))
            .await
    }

    async fn import(&self, batch: ImportBatch) -> Result<(), StoreError> {
        let batch = EncodedImport::new(batch)?;
        self.with_trees(move |t| t.import(&batch)).await?;
        self.flusher.flush().await
    }
}
