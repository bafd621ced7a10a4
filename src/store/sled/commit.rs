//! One [`Commit`] as one multi-tree transaction (the flusher makes it durable afterwards).

use sled::transaction::{abort, ConflictableTransactionError, TransactionalTree};
use sled::Transactional;

use super::codec::{decode, encode};
use super::keys::{due_key, idem_entry, order_key};
use super::trees::{tx_error, Trees, TxResult, ORDERS};
use crate::store::{Commit, OrderRecord, OutboxItem, OutboxState, StoreError};

impl Trees {
    pub(super) fn commit(&self, batch: &EncodedCommit) -> Result<(), StoreError> {
        (
            &self.orders,
            &self.order_ext,
            &self.idem,
            &self.idem_time,
            &self.outbox,
            &self.outbox_due,
            &self.outbox_order,
        )
            .transaction(
                |(orders, order_ext, idem, idem_time, outbox, due, by_order)| {
                    if let Some((key, time_key, value)) = &batch.idempotency {
                        if idem.get(key)?.is_some() {
                            return abort(StoreError::DuplicateRequest);
                        }
                        idem.insert(key.as_slice(), value.as_slice())?;
                        idem_time.insert(time_key.as_slice(), &[][..])?;
                    }
                    if let Some(order) = &batch.order {
                        write_order(orders, order_ext, order)?;
                    }
                    for e in &batch.outbox {
                        outbox.insert(e.id.as_bytes(), e.value.as_slice())?;
                        due.insert(e.due_key.as_slice(), &[][..])?;
                        by_order.insert(e.order_key.as_slice(), e.id.as_bytes())?;
                    }
                    Ok(())
                },
            )
            .map_err(tx_error)
    }
}

/// Checks the expected version, then writes the order and indexes its external ids.
fn write_order(
    orders: &TransactionalTree,
    order_ext: &TransactionalTree,
    order: &EncodedOrder,
) -> TxResult<()> {
    let stored = orders.get(order.id.as_bytes())?;
    let stored_version = match &stored {
        Some(v) => Some(
            decode::<OrderRecord>(ORDERS, order.id.as_bytes(), v)
                .map_err(ConflictableTransactionError::Abort)?
                .version,
        ),
        None => None,
    };
    if stored_version != order.expected_version {
        return abort(StoreError::Conflict);
    }
    orders.insert(order.id.as_bytes(), order.value.as_slice())?;
    for ext in &order.external_ids {
        order_ext.insert(ext.as_bytes(), order.id.as_bytes())?;
    }
    Ok(())
}

/// A [`Commit`] with every value encoded up front, so the transaction closure only reads
/// and writes (it may run several times).
pub(super) struct EncodedCommit {
    order: Option<EncodedOrder>,
    /// Idem key, time-index key, encoded record.
    idempotency: Option<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    outbox: Vec<EncodedOutbox>,
}

/// An outbox entry as first queued, with its index keys.
struct EncodedOutbox {
    id: String,
    value: Vec<u8>,
    due_key: Vec<u8>,
    order_key: Vec<u8>,
}

struct EncodedOrder {
    id: String,
    external_ids: Vec<String>,
    expected_version: Option<u64>,
    value: Vec<u8>,
}

impl EncodedCommit {
    pub(super) fn new(commit: Commit) -> Result<EncodedCommit, StoreError> {
        let order = commit
            .order
            .map(|w| {
                Ok::<_, StoreError>(EncodedOrder {
                    value: encode(&w.record)?,
                    id: w.record.id,
                    external_ids: w.record.external_ids,
                    expected_version: w.expected_version,
                })
            })
            .transpose()?;
        let idempotency = commit
            .idempotency
            .map(|(key, record)| idem_entry(&key, &record))
            .transpose()?;
        let outbox = commit
            .outbox
            .into_iter()
            .map(|entry| {
                Ok(EncodedOutbox {
                    due_key: due_key(entry.created_at_ms, &entry.id),
                    order_key: order_key(&entry.order_id, entry.sequence),
                    value: encode(&OutboxItem {
                        state: OutboxState::Pending,
                        attempts: 0,
                        failures: 0,
                        next_attempt_ms: entry.created_at_ms,
                        entry: entry.clone(),
                    })?,
                    id: entry.id,
                })
            })
            .collect::<Result<_, StoreError>>()?;
        Ok(EncodedCommit {
            order,
            idempotency,
            outbox,
        })
    }
}
