//! Pruning: expired idempotency records and delivered outbox entries past their retention,
//! a bounded number per call, each removed in its own short transaction with its indexes.
//!
//! sled reuses the space of removed values for new writes (its segments are cleaned as they
//! empty), so a store whose writes and removals balance stops growing; its files do not
//! shrink.

use sled::Transactional;

use super::codec::{corrupt, decode};
use super::keys::delivered_key;
use super::trees::{io_error, tx_error, Trees, IDEM_TIME, OUTBOX, OUTBOX_DELIVERED};
use crate::store::{delivered_at, OutboxItem, OutboxState, StoreError};

impl Trees {
    /// Removes at most `limit` idempotency records indexed before `before_ms`; returns how
    /// many.
    pub(super) fn prune_idempotency(
        &self,
        before_ms: u64,
        limit: usize,
    ) -> Result<u64, StoreError> {
        let mut removed = 0;
        for entry in self.idem_time.range(..before_ms.to_be_bytes()).take(limit) {
            let (time_key, _) = entry.map_err(io_error)?;
            let key = time_key
                .get(8..)
                .ok_or_else(|| corrupt(IDEM_TIME, &time_key, "key shorter than its timestamp"))?;
            let existed = (&self.idem, &self.idem_time)
                .transaction(|(idem, idem_time)| {
                    idem_time.remove(&*time_key)?;
                    Ok(idem.remove(key)?.is_some())
                })
                .map_err(tx_error)?;
            removed += u64::from(existed);
        }
        Ok(removed)
    }

    /// Removes at most `limit` delivered entries indexed as delivered before `before_ms`,
    /// with their attempt logs; returns how many. An index key whose entry is no longer
    /// delivered (or gone) is dropped without counting.
    pub(super) fn prune_outbox(&self, before_ms: u64, limit: usize) -> Result<u64, StoreError> {
        let mut removed = 0;
        for entry in self
            .outbox_delivered
            .range(..before_ms.to_be_bytes())
            .take(limit)
        {
            let (index_key, _) = entry.map_err(io_error)?;
            let id = index_key
                .get(8..)
                .ok_or_else(|| corrupt(OUTBOX_DELIVERED, &index_key, "short key"))?;
            // A delivered entry gets no more attempts: its log is complete.
            let mut prefix = id.to_vec();
            prefix.push(0);
            let attempt_keys = self
                .outbox_attempts
                .scan_prefix(&prefix)
                .keys()
                .collect::<Result<Vec<_>, _>>()
                .map_err(io_error)?;
            let gone = (&self.outbox, &self.outbox_delivered, &self.outbox_attempts)
                .transaction(|(outbox, delivered, attempts)| {
                    delivered.remove(&*index_key)?;
                    let Some(raw) = outbox.get(id)? else {
                        return Ok(false);
                    };
                    let item: OutboxItem = decode(OUTBOX, id, &raw)
                        .map_err(sled::transaction::ConflictableTransactionError::Abort)?;
                    if item.state != OutboxState::Delivered {
                        return Ok(false);
                    }
                    outbox.remove(id)?;
                    for k in &attempt_keys {
                        attempts.remove(k)?;
                    }
                    Ok(true)
                })
                .map_err(tx_error)?;
            removed += u64::from(gone);
        }
        Ok(removed)
    }

    /// Indexes the delivered entries of a store written before the delivered index existed
    /// (once: while the index is empty); returns how many it indexed.
    pub(super) fn index_delivered(&self) -> Result<u64, StoreError> {
        if !self.outbox_delivered.is_empty() {
            return Ok(0);
        }
        let mut indexed = 0;
        for kv in self.outbox.iter() {
            let (k, v) = kv.map_err(io_error)?;
            let item: OutboxItem = decode(OUTBOX, &k, &v)?;
            if item.state == OutboxState::Delivered {
                let attempts = self.outbox_attempts(&item.entry.id)?;
                let at = delivered_at(&item, &attempts);
                self.outbox_delivered
                    .insert(delivered_key(at, &item.entry.id), &[][..])
                    .map_err(io_error)?;
                indexed += 1;
            }
        }
        Ok(indexed)
    }
}
