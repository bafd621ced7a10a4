//! [`Store::import`](crate::store::Store::import): rows of another store written verbatim
//! with every index, in one transaction; any key already stored aborts it.

use sled::transaction::abort;
use sled::Transactional;

use super::codec::encode;
use super::keys::{attempt_key, delivered_key, due_key, idem_entry, order_key};
use super::trees::{tx_error, Trees};
use crate::store::{delivered_at, ImportBatch, OutboxItem, OutboxState, StoreError};

impl Trees {
    /// Writes `batch` with every index, in one transaction; any existing key aborts it.
    pub(super) fn import(&self, batch: &EncodedImport) -> Result<(), StoreError> {
        (
            &self.orders,
            &self.order_ext,
            &self.idem,
            &self.idem_time,
            &self.outbox,
            &self.outbox_due,
            &self.outbox_order,
            &self.outbox_dead,
            &self.outbox_attempts,
            &self.outbox_delivered,
        )
            .transaction(
                |(
                    orders,
                    order_ext,
                    idem,
                    idem_time,
                    outbox,
                    due,
                    by_order,
                    dead,
                    attempts,
                    delivered,
                )| {
                    for (id, external_ids, value) in &batch.orders {
                        if orders.insert(id.as_bytes(), value.as_slice())?.is_some() {
                            return abort(StoreError::Conflict);
                        }
                        for ext in external_ids {
                            order_ext.insert(ext.as_bytes(), id.as_bytes())?;
                        }
                    }
                    for (key, time_key, value) in &batch.idempotency {
                        if idem.insert(key.as_slice(), value.as_slice())?.is_some() {
                            return abort(StoreError::Conflict);
                        }
                        idem_time.insert(time_key.as_slice(), &[][..])?;
                    }
                    for e in &batch.outbox {
                        let id = e.item.entry.id.as_str();
                        if outbox.insert(id.as_bytes(), e.value.as_slice())?.is_some() {
                            return abort(StoreError::Conflict);
                        }
                        match e.item.state {
                            OutboxState::Pending => {
                                due.insert(due_key(e.item.next_attempt_ms, id), &[][..])?;
                            }
                            OutboxState::Dead => {
                                dead.insert(id.as_bytes(), &[][..])?;
                            }
                            OutboxState::Delivered => {
                                delivered.insert(delivered_key(e.delivered_at, id), &[][..])?;
                            }
                        }
                        if e.item.state != OutboxState::Delivered {
                            by_order.insert(
                                order_key(&e.item.entry.order_id, e.item.entry.sequence),
                                id.as_bytes(),
                            )?;
                        }
                        for (number, a) in (1u32..).zip(&e.attempts) {
                            attempts.insert(attempt_key(id, number), a.as_slice())?;
                        }
                    }
                    Ok(())
                },
            )
            .map_err(tx_error)
    }
}

/// An [`ImportBatch`] encoded up front (the transaction closure may run several times).
pub(super) struct EncodedImport {
    /// Order id, external ids, encoded record.
    orders: Vec<(String, Vec<String>, Vec<u8>)>,
    /// Idem key, time-index key, encoded record.
    idempotency: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    outbox: Vec<EncodedImportedEntry>,
}

struct EncodedImportedEntry {
    item: OutboxItem,
    /// The encoded item.
    value: Vec<u8>,
    attempts: Vec<Vec<u8>>,
    /// When it was delivered, for a delivered entry (see [`delivered_at`]).
    delivered_at: u64,
}

impl EncodedImport {
    pub(super) fn new(batch: ImportBatch) -> Result<EncodedImport, StoreError> {
        Ok(EncodedImport {
            orders: batch
                .orders
                .into_iter()
                .map(|o| {
                    let value = encode(&o)?;
                    Ok((o.id, o.external_ids, value))
                })
                .collect::<Result<_, StoreError>>()?,
            idempotency: batch
                .idempotency
                .iter()
                .map(|(key, record)| idem_entry(key, record))
                .collect::<Result<_, _>>()?,
            outbox: batch
                .outbox
                .into_iter()
                .map(|(item, attempts)| {
                    Ok(EncodedImportedEntry {
                        value: encode(&item)?,
                        delivered_at: delivered_at(&item, &attempts),
                        item,
                        attempts: attempts.iter().map(encode).collect::<Result<_, _>>()?,
                    })
                })
                .collect::<Result<_, StoreError>>()?,
        })
    }
}
