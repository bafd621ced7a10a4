//! The trees of the on-disk format, and the reads of orders and idempotency records.

use std::ops::Bound;

use sled::transaction::{ConflictableTransactionError, TransactionError};

use super::codec::{corrupt, decode, Codec};
use super::keys::{idem_key, parse_idem_key};
use crate::store::{IdempotencyKey, IdempotencyRecord, OrderRecord, StoreCounts, StoreError};

pub(super) const ORDERS: &str = "v1.orders";
const ORDER_EXT: &str = "v1.order_ext";
pub(super) const IDEM: &str = "v1.idem";
pub(super) const IDEM_TIME: &str = "v1.idem_time";
pub(super) const OUTBOX: &str = "v1.outbox";
pub(super) const OUTBOX_DUE: &str = "v1.outbox_due";
const OUTBOX_ORDER: &str = "v1.outbox_order";
const OUTBOX_DEAD: &str = "v1.outbox_dead";
pub(super) const OUTBOX_ATTEMPTS: &str = "v1.outbox_attempts";
pub(super) const OUTBOX_DELIVERED: &str = "v1.outbox_delivered";

/// The trees of the format, cheap to share with blocking tasks.
pub(super) struct Trees {
    /// The database (for its size on disk).
    pub(super) db: sled::Db,
    pub(super) orders: sled::Tree,
    pub(super) order_ext: sled::Tree,
    pub(super) idem: sled::Tree,
    pub(super) idem_time: sled::Tree,
    pub(super) outbox: sled::Tree,
    pub(super) outbox_due: sled::Tree,
    pub(super) outbox_order: sled::Tree,
    pub(super) outbox_dead: sled::Tree,
    pub(super) outbox_attempts: sled::Tree,
    pub(super) outbox_delivered: sled::Tree,
}

pub(super) fn io_error(e: sled::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

pub(super) fn tx_error(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => io_error(e),
    }
}

/// The value of `tree` (named `name`) at `key`, decoded.
pub(super) fn get<T: Codec>(
    tree: &sled::Tree,
    name: &str,
    key: &[u8],
) -> Result<Option<T>, StoreError> {
    tree.get(key)
        .map_err(io_error)?
        .map(|v| decode(name, key, &v))
        .transpose()
}

pub(super) type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

impl Trees {
    pub(super) fn open(db: &sled::Db) -> Result<Trees, StoreError> {
        let tree = |name: &str| db.open_tree(name).map_err(io_error);
        let trees = Trees {
            db: db.clone(),
            orders: tree(ORDERS)?,
            order_ext: tree(ORDER_EXT)?,
            idem: tree(IDEM)?,
            idem_time: tree(IDEM_TIME)?,
            outbox: tree(OUTBOX)?,
            outbox_due: tree(OUTBOX_DUE)?,
            outbox_order: tree(OUTBOX_ORDER)?,
            outbox_dead: tree(OUTBOX_DEAD)?,
            outbox_attempts: tree(OUTBOX_ATTEMPTS)?,
            outbox_delivered: tree(OUTBOX_DELIVERED)?,
        };
        if trees.index_delivered()? > 0 {
            db.flush().map_err(io_error)?;
        }
        Ok(trees)
    }

    pub(super) fn get_order(&self, id: &str) -> Result<Option<OrderRecord>, StoreError> {
        get(&self.orders, ORDERS, id.as_bytes())
    }

    pub(super) fn find_order_by_external_id(
        &self,
        ext: &str,
    ) -> Result<Option<OrderRecord>, StoreError> {
        let Some(id) = self.order_ext.get(ext).map_err(io_error)? else {
            return Ok(None);
        };
        let id = std::str::from_utf8(&id)
            .map_err(|_| corrupt(ORDER_EXT, ext.as_bytes(), "order id is not UTF-8"))?;
        match self.get_order(id)? {
            Some(order) => Ok(Some(order)),
            None => Err(corrupt(
                ORDER_EXT,
                ext.as_bytes(),
                "points to a missing order",
            )),
        }
    }

    pub(super) fn orders_after(
        &self,
        after: Option<&str>,
        limit: usize,
    ) -> Result<Vec<OrderRecord>, StoreError> {
        keys_after(&self.orders, after.map(str::as_bytes))
            .take(limit)
            .map(|kv| {
                let (k, v) = kv.map_err(io_error)?;
                decode(ORDERS, &k, &v)
            })
            .collect()
    }

    pub(super) fn get_idempotency(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        get(&self.idem, IDEM, &idem_key(key))
    }

    pub(super) fn counts(&self) -> StoreCounts {
        let len = |t: &sled::Tree| t.len() as u64;
        StoreCounts {
            orders: len(&self.orders),
            idempotency_records: len(&self.idem),
            outbox_entries: len(&self.outbox),
            outbox_pending: len(&self.outbox_due),
            outbox_dead: len(&self.outbox_dead),
        }
    }

    pub(super) fn idempotency_after(
        &self,
        after: Option<&IdempotencyKey>,
        limit: usize,
    ) -> Result<Vec<(IdempotencyKey, IdempotencyRecord)>, StoreError> {
        keys_after(&self.idem, after.map(idem_key).as_deref())
            .take(limit)
            .map(|kv| {
                let (k, v) = kv.map_err(io_error)?;
                Ok((parse_idem_key(&k)?, decode(IDEM, &k, &v)?))
            })
            .collect()
    }
}

/// The entries of `tree` with a key above `after` (all when `None`), in key order.
pub(super) fn keys_after(tree: &sled::Tree, after: Option<&[u8]>) -> sled::Iter {
    match after {
        Some(a) => tree.range::<&[u8], _>((Bound::Excluded(a), Bound::Unbounded)),
        None => tree.iter(),
    }
}
