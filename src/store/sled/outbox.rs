//! The outbox trees: the per-order heads, due and dead indexes and the attempt logs, kept in
//! step with every entry change.

use sled::transaction::ConflictableTransactionError;
use sled::Transactional;

use super::codec::{corrupt, decode, encode};
use super::keys::{attempt_key, delivered_key, due_key, order_key};
use super::trees::{
    get, io_error, keys_after, tx_error, Trees, OUTBOX, OUTBOX_ATTEMPTS, OUTBOX_DUE,
};
use crate::store::{Attempt, OutboxItem, OutboxState, StoreError};

/// An attempt to log: its time and its encoding.
pub(super) type LoggedAttempt = (u64, Vec<u8>);

/// How [`Trees::outbox_update`] changes one entry.
pub(super) type OutboxChange<'a> =
    dyn Fn(&OutboxItem) -> Option<(OutboxItem, Option<LoggedAttempt>)> + 'a;

impl Trees {
    pub(super) fn outbox_item(&self, id: &[u8]) -> Result<Option<OutboxItem>, StoreError> {
        get(&self.outbox, OUTBOX, id)
    }

    /// The entry id at the head of an order's undelivered events.
    fn order_head(&self, order_id: &str) -> Result<Option<sled::IVec>, StoreError> {
        let mut prefix = order_id.as_bytes().to_vec();
        prefix.push(0);
        match self.outbox_order.scan_prefix(&prefix).next() {
            Some(entry) => Ok(Some(entry.map_err(io_error)?.1)),
            None => Ok(None),
        }
    }

    pub(super) fn outbox_due(
        &self,
        now_ms: u64,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        let mut out = Vec::new();
        // Keys are the due time followed by the id: everything below `now + 1` is due.
        for entry in self
            .outbox_due
            .range(..now_ms.saturating_add(1).to_be_bytes())
        {
            if out.len() >= limit {
                break;
            }
            let (key, _) = entry.map_err(io_error)?;
            let id = key
                .get(8..)
                .ok_or_else(|| corrupt(OUTBOX_DUE, &key, "short key"))?;
            let Some(item) = self.outbox_item(id)? else {
                return Err(corrupt(OUTBOX_DUE, &key, "points to a missing entry"));
            };
            let head = self.order_head(&item.entry.order_id)?;
            if head.as_deref() == Some(id) {
                out.push(item);
            }
        }
        Ok(out)
    }

    pub(super) fn outbox_next_due(&self) -> Result<Option<u64>, StoreError> {
        let Some(entry) = self.outbox_due.iter().next() else {
            return Ok(None);
        };
        let (key, _) = entry.map_err(io_error)?;
        let ts: [u8; 8] = key
            .get(..8)
            .and_then(|b| b.try_into().ok())
            .ok_or_else(|| corrupt(OUTBOX_DUE, &key, "short key"))?;
        Ok(Some(u64::from_be_bytes(ts)))
    }

    /// Applies `change` to one entry (which returns the new item and an encoded attempt to
    /// log, or `None` to leave it alone) and keeps every index in step, in one transaction.
    /// Returns whether the entry was changed.
    pub(super) fn outbox_update(
        &self,
        id: &str,
        change: &OutboxChange<'_>,
    ) -> Result<bool, StoreError> {
        (
            &self.outbox,
            &self.outbox_due,
            &self.outbox_order,
            &self.outbox_dead,
            &self.outbox_attempts,
            &self.outbox_delivered,
        )
            .transaction(|(outbox, due, by_order, dead, attempts, delivered)| {
                let Some(raw) = outbox.get(id.as_bytes())? else {
                    return Ok(false);
                };
                let old: OutboxItem = decode(OUTBOX, id.as_bytes(), &raw)
                    .map_err(ConflictableTransactionError::Abort)?;
                let Some((new, attempt)) = change(&old) else {
                    return Ok(false);
                };
                if old.state == OutboxState::Pending {
                    due.remove(due_key(old.next_attempt_ms, id))?;
                }
                match new.state {
                    OutboxState::Pending => {
                        due.insert(due_key(new.next_attempt_ms, id), &[][..])?;
                        dead.remove(id.as_bytes())?;
                    }
                    OutboxState::Dead => {
                        dead.insert(id.as_bytes(), &[][..])?;
                    }
                    OutboxState::Delivered => {
                        dead.remove(id.as_bytes())?;
                        by_order.remove(order_key(&new.entry.order_id, new.entry.sequence))?;
                        if old.state != OutboxState::Delivered {
                            // Retention runs from the delivering attempt.
                            let at = attempt.as_ref().map_or(new.next_attempt_ms, |a| a.0);
                            delivered.insert(delivered_key(at, id), &[][..])?;
                        }
                    }
                }
                if let Some((_, a)) = &attempt {
                    attempts.insert(attempt_key(id, new.attempts), a.as_slice())?;
                }
                let value = encode(&new).map_err(ConflictableTransactionError::Abort)?;
                outbox.insert(id.as_bytes(), value)?;
                Ok(true)
            })
            .map_err(tx_error)
    }

    pub(super) fn outbox_attempts(&self, id: &str) -> Result<Vec<Attempt>, StoreError> {
        let mut prefix = id.as_bytes().to_vec();
        prefix.push(0);
        self.outbox_attempts
            .scan_prefix(&prefix)
            .map(|entry| {
                let (k, v) = entry.map_err(io_error)?;
                decode(OUTBOX_ATTEMPTS, &k, &v)
            })
            .collect()
    }

    pub(super) fn outbox_list(
        &self,
        state: Option<OutboxState>,
        limit: usize,
    ) -> Result<Vec<OutboxItem>, StoreError> {
        // Dead letters have their own index; other states are filtered from the full list.
        let keys = match state {
            Some(OutboxState::Dead) => self.outbox_dead.iter(),
            _ => self.outbox.iter(),
        };
        let mut out = Vec::new();
        for entry in keys {
            if out.len() >= limit {
                break;
            }
            let (key, _) = entry.map_err(io_error)?;
            if let Some(item) = self.outbox_item(&key)? {
                if state.is_none_or(|s| s == item.state) {
                    out.push(item);
                }
            }
        }
        Ok(out)
    }
    pub(super) fn outbox_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<(OutboxItem, Vec<Attempt>)>, StoreError> {
        keys_after(&self.outbox, after.map(str::as_bytes))
            .take(limit)
            .map(|kv| {
                let (k, v) = kv.map_err(io_error)?;
                let item: OutboxItem = decode(OUTBOX, &k, &v)?;
                let attempts = self.outbox_attempts(&item.entry.id)?;
                Ok((item, attempts))
            })
            .collect()
    }
}
