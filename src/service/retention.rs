//! Retention: expired idempotency records and delivered outbox entries past their retention
//! are removed, in bounded batches so that no store call holds locks for long and the
//! server keeps answering meanwhile; and what the store then holds, for `/metrics`.

use super::{Service, ServiceError};
use crate::store::{StoreError, StoreStats};
use std::time::Duration;

/// Rows removed per store call.
const BATCH: usize = 500;

/// What one pruning pass removed.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pruned {
    pub idempotency_records: u64,
    pub outbox_entries: u64,
}

impl Service {
    /// Removes every idempotency record older than its retention and every delivered outbox
    /// entry delivered longer ago than its retention.
    pub async fn prune(&self) -> Result<Pruned, ServiceError> {
        Ok(Pruned {
            idempotency_records: self.prune_idempotency().await?,
            outbox_entries: self.prune_outbox().await?,
        })
    }

    /// Deletes idempotency records older than the retention; returns how many.
    pub async fn prune_idempotency(&self) -> Result<u64, ServiceError> {
        let before = self.cutoff(self.settings.idempotency_retention);
        let store = &self.store;
        Ok(in_batches(|| store.prune_idempotency(before, BATCH)).await?)
    }

    /// Deletes delivered outbox entries delivered before the retention; returns how many.
    pub async fn prune_outbox(&self) -> Result<u64, ServiceError> {
        let before = self.cutoff(self.settings.outbox_retention);
        let store = &self.store;
        Ok(in_batches(|| store.prune_outbox(before, BATCH)).await?)
    }

    /// What the store holds (a full read of it), also set on the store gauges of
    /// `/metrics`.
    pub async fn store_stats(&self) -> Result<StoreStats, ServiceError> {
        let stats = self.store.stats().await?;
        self.metrics.set_store(&stats);
        Ok(stats)
    }

    /// The time before which data kept for `retention` has expired.
    fn cutoff(&self, retention: Duration) -> u64 {
        let retention = u64::try_from(retention.as_millis()).unwrap_or(u64::MAX);
        self.clock.now_ms().saturating_sub(retention)
    }
}

/// Runs `batch` until it removes less than a full batch; returns the total.
async fn in_batches<F, Fut>(mut batch: F) -> Result<u64, StoreError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<u64, StoreError>>,
{
    let mut total = 0;
    loop {
        let removed = batch().await?;
        total += removed;
        if removed < BATCH as u64 {
            return Ok(total);
        }
        // Let requests waiting for the store go first.
        tokio::task::yield_now().await;
    }
}
