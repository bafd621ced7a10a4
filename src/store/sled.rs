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
//!
//! Encoded values are a format byte ([`FORMAT`]) followed by a length-prefixed binary
//! layout: integers big-endian, byte strings as a `u64` big-endian length plus the bytes.
//!
//! Every commit is one multi-tree transaction, made durable by a group-commit flusher
//! thread that serves all queued commits with one `Db::flush`.

use std::ops::Bound;
use std::path::Path;
use std::sync::{mpsc, Arc};
use std::thread::JoinHandle;

use async_trait::async_trait;
use sled::transaction::{abort, ConflictableTransactionError, TransactionError, TransactionalTree};
use sled::Transactional;
use tokio::sync::oneshot;

use super::{
    Attempt, Commit, IdempotencyKey, IdempotencyRecord, ImportBatch, NextStep, OrderRecord,
    OutboxEntry, OutboxItem, OutboxState, Store, StoreCounts, StoreError,
};

/// Folder of this on-disk format inside the data directory.
const DB_DIR: &str = "sled-v1";
/// Leading byte of every encoded value.
const FORMAT: u8 = 1;

const ORDERS: &str = "v1.orders";
const ORDER_EXT: &str = "v1.order_ext";
const IDEM: &str = "v1.idem";
const IDEM_TIME: &str = "v1.idem_time";
const OUTBOX: &str = "v1.outbox";
const OUTBOX_DUE: &str = "v1.outbox_due";
const OUTBOX_ORDER: &str = "v1.outbox_order";
const OUTBOX_DEAD: &str = "v1.outbox_dead";
const OUTBOX_ATTEMPTS: &str = "v1.outbox_attempts";

/// One request for the flusher: completed once a flush covering it has finished.
type FlushWaiter = oneshot::Sender<Result<(), String>>;

/// A [`Store`] backed by sled, with group commit.
pub struct SledStore {
    trees: Arc<Trees>,
    /// Queue of the flusher thread; `None` only while dropping.
    flush_tx: Option<mpsc::Sender<FlushWaiter>>,
    flusher: Option<JoinHandle<()>>,
}

/// The trees of the format, cheap to share with blocking tasks.
struct Trees {
    orders: sled::Tree,
    order_ext: sled::Tree,
    idem: sled::Tree,
    idem_time: sled::Tree,
    outbox: sled::Tree,
    outbox_due: sled::Tree,
    outbox_order: sled::Tree,
    outbox_dead: sled::Tree,
    outbox_attempts: sled::Tree,
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
        let db = Arc::new(db);
        let (flush_tx, flush_rx) = mpsc::channel();
        let flusher = std::thread::Builder::new()
            .name("sled-flusher".into())
            .spawn(move || run_flusher(&db, &flush_rx))
            .map_err(|e| StoreError::Io(format!("cannot start the flusher thread: {e}")))?;
        Ok(SledStore {
            trees,
            flush_tx: Some(flush_tx),
            flusher: Some(flusher),
        })
    }

    /// Whether `data_dir` holds a store of this format (without opening or creating it).
    pub fn exists_in(data_dir: &Path) -> bool {
        data_dir.join(DB_DIR).is_dir()
    }

    /// Waits until a flush started after this call has completed.
    async fn flush_through_flusher(&self) -> Result<(), StoreError> {
        let (tx, rx) = oneshot::channel();
        self.flush_tx
            .as_ref()
            .ok_or_else(|| StoreError::Io("the flusher has stopped".into()))?
            .send(tx)
            .map_err(|_| StoreError::Io("the flusher has stopped".into()))?;
        rx.await
            .map_err(|_| StoreError::Io("the flusher dropped a flush request".into()))?
            .map_err(|e| StoreError::Io(format!("flush failed: {e}")))
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

impl Drop for SledStore {
    /// Stops the flusher and waits for it, so the database lock is released on return.
    fn drop(&mut self) {
        self.flush_tx = None;
        if let Some(flusher) = self.flusher.take() {
            if flusher.join().is_err() {
                tracing::error!("the sled flusher thread panicked");
            }
        }
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

/// Group commit: one `flush` for every request queued meanwhile. Ends when the store drops.
fn run_flusher(db: &sled::Db, requests: &mpsc::Receiver<FlushWaiter>) {
    while let Ok(first) = requests.recv() {
        let mut waiters = vec![first];
        waiters.extend(requests.try_iter());
        let result = db.flush().map(drop).map_err(|e| e.to_string());
        if let Err(e) = &result {
            tracing::error!(error = %e, "sled flush failed");
        }
        for waiter in waiters {
            // The caller may have gone away (cancelled request); nothing to do then.
            let _ = waiter.send(result.clone());
        }
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

fn io_error(e: sled::Error) -> StoreError {
    StoreError::Io(e.to_string())
}

fn tx_error(e: TransactionError<StoreError>) -> StoreError {
    match e {
        TransactionError::Abort(e) => e,
        TransactionError::Storage(e) => io_error(e),
    }
}

type TxResult<T> = Result<T, ConflictableTransactionError<StoreError>>;

impl Trees {
    fn open(db: &sled::Db) -> Result<Trees, StoreError> {
        let tree = |name: &str| db.open_tree(name).map_err(io_error);
        Ok(Trees {
            orders: tree(ORDERS)?,
            order_ext: tree(ORDER_EXT)?,
            idem: tree(IDEM)?,
            idem_time: tree(IDEM_TIME)?,
            outbox: tree(OUTBOX)?,
            outbox_due: tree(OUTBOX_DUE)?,
            outbox_order: tree(OUTBOX_ORDER)?,
            outbox_dead: tree(OUTBOX_DEAD)?,
            outbox_attempts: tree(OUTBOX_ATTEMPTS)?,
        })
    }

    fn get_order(&self, id: &str) -> Result<Option<OrderRecord>, StoreError> {
        self.orders
            .get(id)
            .map_err(io_error)?
            .map(|v| decode(ORDERS, id.as_bytes(), &v))
            .transpose()
    }

    fn find_order_by_external_id(&self, ext: &str) -> Result<Option<OrderRecord>, StoreError> {
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

    fn orders_after(
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

    fn get_idempotency(
        &self,
        key: &IdempotencyKey,
    ) -> Result<Option<IdempotencyRecord>, StoreError> {
        let key = idem_key(key);
        self.idem
            .get(&key)
            .map_err(io_error)?
            .map(|v| decode(IDEM, &key, &v))
            .transpose()
    }

    fn commit(&self, batch: &EncodedCommit) -> Result<(), StoreError> {
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

    /// Removes the idempotency records indexed before `before_ms`; returns how many.
    fn prune_idempotency(&self, before_ms: u64) -> Result<u64, StoreError> {
        let mut removed = 0;
        for entry in self.idem_time.range(..before_ms.to_be_bytes()) {
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

    fn counts(&self) -> StoreCounts {
        let len = |t: &sled::Tree| t.len() as u64;
        StoreCounts {
            orders: len(&self.orders),
            idempotency_records: len(&self.idem),
            outbox_entries: len(&self.outbox),
            outbox_pending: len(&self.outbox_due),
            outbox_dead: len(&self.outbox_dead),
        }
    }

    fn outbox_item(&self, id: &[u8]) -> Result<Option<OutboxItem>, StoreError> {
        self.outbox
            .get(id)
            .map_err(io_error)?
            .map(|v| decode(OUTBOX, id, &v))
            .transpose()
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

    fn outbox_due(&self, now_ms: u64, limit: usize) -> Result<Vec<OutboxItem>, StoreError> {
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

    fn outbox_next_due(&self) -> Result<Option<u64>, StoreError> {
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
    fn outbox_update(&self, id: &str, change: &OutboxChange<'_>) -> Result<bool, StoreError> {
        (
            &self.outbox,
            &self.outbox_due,
            &self.outbox_order,
            &self.outbox_dead,
            &self.outbox_attempts,
        )
            .transaction(|(outbox, due, by_order, dead, attempts)| {
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
                    }
                }
                if let Some(a) = &attempt {
                    attempts.insert(attempt_key(id, new.attempts), a.as_slice())?;
                }
                outbox.insert(id.as_bytes(), encode(&new))?;
                Ok(true)
            })
            .map_err(tx_error)
    }

    fn outbox_attempts(&self, id: &str) -> Result<Vec<Attempt>, StoreError> {
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

    fn outbox_list(
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
}

impl Trees {
    fn idempotency_after(
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

    fn outbox_after(
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

    /// Writes `batch` with every index, in one transaction; any existing key aborts it.
    fn import(&self, batch: &EncodedImport) -> Result<(), StoreError> {
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
        )
            .transaction(
                |(orders, order_ext, idem, idem_time, outbox, due, by_order, dead, attempts)| {
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
                        if outbox.insert(id.as_bytes(), encode(&e.item))?.is_some() {
                            return abort(StoreError::Conflict);
                        }
                        match e.item.state {
                            OutboxState::Pending => {
                                due.insert(due_key(e.item.next_attempt_ms, id), &[][..])?;
                            }
                            OutboxState::Dead => {
                                dead.insert(id.as_bytes(), &[][..])?;
                            }
                            OutboxState::Delivered => {}
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
struct EncodedImport {
    /// Order id, external ids, encoded record.
    orders: Vec<(String, Vec<String>, Vec<u8>)>,
    /// Idem key, time-index key, encoded record.
    idempotency: Vec<(Vec<u8>, Vec<u8>, Vec<u8>)>,
    outbox: Vec<EncodedImportedEntry>,
}

struct EncodedImportedEntry {
    item: OutboxItem,
    attempts: Vec<Vec<u8>>,
}

impl EncodedImport {
    fn new(batch: ImportBatch) -> EncodedImport {
        EncodedImport {
            orders: batch
                .orders
                .into_iter()
                .map(|o| {
                    let value = encode(&o);
                    (o.id, o.external_ids, value)
                })
                .collect(),
            idempotency: batch
                .idempotency
                .iter()
                .map(|(key, record)| idem_entry(key, record))
                .collect(),
            outbox: batch
                .outbox
                .into_iter()
                .map(|(item, attempts)| EncodedImportedEntry {
                    item,
                    attempts: attempts.iter().map(encode).collect(),
                })
                .collect(),
        }
    }
}

/// The entries of `tree` with a key above `after` (all when `None`), in key order.
fn keys_after(tree: &sled::Tree, after: Option<&[u8]>) -> sled::Iter {
    match after {
        Some(a) => tree.range::<&[u8], _>((Bound::Excluded(a), Bound::Unbounded)),
        None => tree.iter(),
    }
}

/// The inverse of [`idem_key`].
fn parse_idem_key(key: &[u8]) -> Result<IdempotencyKey, StoreError> {
    let zero = key
        .iter()
        .position(|b| *b == 0)
        .ok_or_else(|| corrupt(IDEM, key, "key has no separator"))?;
    let text = |bytes: &[u8]| {
        String::from_utf8(bytes.to_vec()).map_err(|_| corrupt(IDEM, key, "key is not UTF-8"))
    };
    Ok(IdempotencyKey {
        app_id: text(&key[..zero])?,
        request_id: text(&key[zero + 1..])?,
    })
}

/// Idem key, time-index key and encoded record of one idempotency record.
fn idem_entry(key: &IdempotencyKey, record: &IdempotencyRecord) -> (Vec<u8>, Vec<u8>, Vec<u8>) {
    let key = idem_key(key);
    let mut time_key = record.created_at_ms.to_be_bytes().to_vec();
    time_key.extend_from_slice(&key);
    (key, time_key, encode(record))
}

/// How [`Trees::outbox_update`] changes one entry.
type OutboxChange<'a> = dyn Fn(&OutboxItem) -> Option<(OutboxItem, Option<Vec<u8>>)> + 'a;

fn due_key(at_ms: u64, id: &str) -> Vec<u8> {
    let mut k = at_ms.to_be_bytes().to_vec();
    k.extend_from_slice(id.as_bytes());
    k
}

fn order_key(order_id: &str, sequence: u64) -> Vec<u8> {
    let mut k = order_id.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&sequence.to_be_bytes());
    k
}

fn attempt_key(id: &str, number: u32) -> Vec<u8> {
    let mut k = id.as_bytes().to_vec();
    k.push(0);
    k.extend_from_slice(&number.to_be_bytes());
    k
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
struct EncodedCommit {
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
    fn new(commit: Commit) -> EncodedCommit {
        let order = commit.order.map(|w| EncodedOrder {
            value: encode(&w.record),
            id: w.record.id,
            external_ids: w.record.external_ids,
            expected_version: w.expected_version,
        });
        let idempotency = commit
            .idempotency
            .map(|(key, record)| idem_entry(&key, &record));
        let outbox = commit
            .outbox
            .into_iter()
            .map(|entry| EncodedOutbox {
                due_key: due_key(entry.created_at_ms, &entry.id),
                order_key: order_key(&entry.order_id, entry.sequence),
                value: encode(&OutboxItem {
                    state: OutboxState::Pending,
                    attempts: 0,
                    failures: 0,
                    next_attempt_ms: entry.created_at_ms,
                    entry: entry.clone(),
                }),
                id: entry.id,
            })
            .collect();
        EncodedCommit {
            order,
            idempotency,
            outbox,
        }
    }
}

/// `app_id` bytes + `0x00` + `request_id` bytes.
fn idem_key(key: &IdempotencyKey) -> Vec<u8> {
    let mut out = Vec::with_capacity(key.app_id.len() + 1 + key.request_id.len());
    out.extend_from_slice(key.app_id.as_bytes());
    out.push(0);
    out.extend_from_slice(key.request_id.as_bytes());
    out
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
        let batch = EncodedCommit::new(commit);
        self.with_trees(move |t| t.commit(&batch)).await?;
        self.flush_through_flusher().await
    }

    async fn prune_idempotency(&self, before_ms: u64) -> Result<u64, StoreError> {
        let removed = self
            .with_trees(move |t| t.prune_idempotency(before_ms))
            .await?;
        self.flush_through_flusher().await?;
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
            self.flush_through_flusher().await?;
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
        let encoded = encode(&attempt);
        let found = self
            .with_trees(move |t| {
                t.outbox_update(&id, &|old| {
                    let mut new = old.clone();
                    new.attempts = old.attempts.saturating_add(1);
                    match next {
                        NextStep::Delivered => new.state = OutboxState::Delivered,
                        NextStep::RetryAt(at) => {
                            new.state = OutboxState::Pending;
                            new.failures = old.failures.saturating_add(1);
                            new.next_attempt_ms = at;
                        }
                        NextStep::Dead => {
                            new.state = OutboxState::Dead;
                            new.failures = old.failures.saturating_add(1);
                        }
                    }
                    Some((new, Some(encoded.clone())))
                })
            })
            .await?;
        if !found {
            return Err(StoreError::Io("no such outbox entry".into()));
        }
        self.flush_through_flusher().await
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
        self.flush_through_flusher().await?;
        Ok(requeued)
    }

    async fn outbox_backlog(&self) -> Result<(u64, u64), StoreError> {
        self.with_trees(|t| Ok((t.outbox_due.len() as u64, t.outbox_dead.len() as u64)))
            .await
    }

    async fn counts(&self) -> Result<StoreCounts, StoreError> {
        self.with_trees(|t| Ok(t.counts())).await
    }

    async fn flush(&self) -> Result<(), StoreError> {
        self.flush_through_flusher().await
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
        let batch = EncodedImport::new(batch);
        self.with_trees(move |t| t.import(&batch)).await?;
        self.flush_through_flusher().await
    }
}

// ---- value encoding ----

/// A stored value: written after the [`FORMAT`] byte, read back by [`decode`].
trait Codec: Sized {
    fn write(&self, w: &mut Vec<u8>);
    fn read(r: &mut Reader<'_>) -> Result<Self, &'static str>;
}

fn encode<T: Codec>(value: &T) -> Vec<u8> {
    let mut out = vec![FORMAT];
    value.write(&mut out);
    out
}

/// Decodes a value of `tree` at `key`; any malformation is [`StoreError::Corrupt`].
fn decode<T: Codec>(tree: &str, key: &[u8], bytes: &[u8]) -> Result<T, StoreError> {
    let mut r = Reader(bytes);
    let value = match r.u8() {
        Ok(FORMAT) => T::read(&mut r),
        Ok(_) => Err("unknown format byte"),
        Err(e) => Err(e),
    }
    .map_err(|e| corrupt(tree, key, e))?;
    if r.0.is_empty() {
        Ok(value)
    } else {
        Err(corrupt(tree, key, "trailing bytes"))
    }
}

fn corrupt(tree: &str, key: &[u8], reason: &str) -> StoreError {
    StoreError::Corrupt(format!(
        "tree {tree}, key {:?}: {reason}",
        String::from_utf8_lossy(key)
    ))
}

fn put_u64(w: &mut Vec<u8>, v: u64) {
    w.extend_from_slice(&v.to_be_bytes());
}

/// Length-prefixed bytes (`u64` big-endian length).
fn put_bytes(w: &mut Vec<u8>, bytes: &[u8]) {
    put_u64(w, bytes.len() as u64);
    w.extend_from_slice(bytes);
}

/// A cursor over an encoded value.
struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Result<&'a [u8], &'static str> {
        if self.0.len() < n {
            return Err("truncated value");
        }
        let (head, rest) = self.0.split_at(n);
        self.0 = rest;
        Ok(head)
    }

    fn array<const N: usize>(&mut self) -> Result<[u8; N], &'static str> {
        self.take(N)?.try_into().map_err(|_| "truncated value")
    }

    fn u8(&mut self) -> Result<u8, &'static str> {
        Ok(self.array::<1>()?[0])
    }

    fn u16(&mut self) -> Result<u16, &'static str> {
        Ok(u16::from_be_bytes(self.array()?))
    }

    fn u64(&mut self) -> Result<u64, &'static str> {
        Ok(u64::from_be_bytes(self.array()?))
    }

    fn bytes(&mut self) -> Result<Vec<u8>, &'static str> {
        let len = usize::try_from(self.u64()?).map_err(|_| "length out of range")?;
        Ok(self.take(len)?.to_vec())
    }

    fn string(&mut self) -> Result<String, &'static str> {
        String::from_utf8(self.bytes()?).map_err(|_| "string is not UTF-8")
    }
}

impl Codec for OrderRecord {
    fn write(&self, w: &mut Vec<u8>) {
        put_bytes(w, self.id.as_bytes());
        put_u64(w, self.external_ids.len() as u64);
        for ext in &self.external_ids {
            put_bytes(w, ext.as_bytes());
        }
        put_u64(w, self.version);
        put_bytes(w, &self.body);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, &'static str> {
        let id = r.string()?;
        let count = r.u64()?;
        let external_ids = (0..count).map(|_| r.string()).collect::<Result<_, _>>()?;
        Ok(OrderRecord {
            id,
            external_ids,
            version: r.u64()?,
            body: r.bytes()?,
        })
    }
}

impl Codec for IdempotencyRecord {
    fn write(&self, w: &mut Vec<u8>) {
        w.extend_from_slice(&self.fingerprint);
        w.extend_from_slice(&self.status.to_be_bytes());
        put_u64(w, self.created_at_ms);
        put_bytes(w, &self.body);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, &'static str> {
        Ok(IdempotencyRecord {
            fingerprint: r.array()?,
            status: r.u16()?,
            created_at_ms: r.u64()?,
            body: r.bytes()?,
        })
    }
}

impl Codec for OutboxItem {
    fn write(&self, w: &mut Vec<u8>) {
        let e = &self.entry;
        put_bytes(w, e.id.as_bytes());
        put_bytes(w, e.order_id.as_bytes());
        put_u64(w, e.sequence);
        put_bytes(w, e.event_type.as_bytes());
        put_u64(w, e.created_at_ms);
        put_bytes(w, &e.body);
        w.push(match self.state {
            OutboxState::Pending => 0,
            OutboxState::Delivered => 1,
            OutboxState::Dead => 2,
        });
        w.extend_from_slice(&self.attempts.to_be_bytes());
        w.extend_from_slice(&self.failures.to_be_bytes());
        put_u64(w, self.next_attempt_ms);
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, &'static str> {
        let entry = OutboxEntry {
            id: r.string()?,
            order_id: r.string()?,
            sequence: r.u64()?,
            event_type: r.string()?,
            created_at_ms: r.u64()?,
            body: r.bytes()?,
        };
        let state = match r.u8()? {
            0 => OutboxState::Pending,
            1 => OutboxState::Delivered,
            2 => OutboxState::Dead,
            _ => return Err("unknown outbox state"),
        };
        Ok(OutboxItem {
            entry,
            state,
            attempts: u32::from_be_bytes(r.array()?),
            failures: u32::from_be_bytes(r.array()?),
            next_attempt_ms: r.u64()?,
        })
    }
}

impl Codec for Attempt {
    fn write(&self, w: &mut Vec<u8>) {
        put_u64(w, self.at_ms);
        put_u64(w, self.latency_ms);
        w.push(u8::from(self.delivered));
        w.extend_from_slice(&self.status.unwrap_or(0).to_be_bytes());
        put_bytes(w, self.detail.as_bytes());
    }

    fn read(r: &mut Reader<'_>) -> Result<Self, &'static str> {
        Ok(Attempt {
            at_ms: r.u64()?,
            latency_ms: r.u64()?,
            delivered: r.u8()? != 0,
            status: Some(r.u16()?).filter(|s| *s != 0),
            detail: r.string()?,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::OrderWrite;
    use tempfile::TempDir;

    const CACHE: u64 = 8 * 1024 * 1024;

    fn open(dir: &TempDir) -> SledStore {
        SledStore::open(dir.path(), CACHE).expect("open")
    }

    fn order(id: &str, external_ids: &[&str], version: u64) -> OrderRecord {
        OrderRecord {
            id: id.into(),
            external_ids: external_ids.iter().map(|s| s.to_string()).collect(),
            version,
            body: format!("{{\"id\":\"{id}\",\"v\":{version}}}").into_bytes(),
        }
    }

    fn key(request_id: &str) -> IdempotencyKey {
        IdempotencyKey {
            app_id: "app".into(),
            request_id: request_id.into(),
        }
    }

    fn answer(created_at_ms: u64) -> IdempotencyRecord {
        IdempotencyRecord {
            fingerprint: [7; 32],
            status: 201,
            // Not UTF-8: bodies are bytes.
            body: vec![0xff, 0x00, b'{', b'}'],
            created_at_ms,
        }
    }

    fn write(record: OrderRecord, expected_version: Option<u64>, request_id: &str) -> Commit {
        Commit {
            order: Some(OrderWrite {
                record,
                expected_version,
            }),
            idempotency: Some((key(request_id), answer(1_000))),
            outbox: Vec::new(),
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn second_open_of_a_held_directory_is_locked() {
        let dir = TempDir::new().unwrap();
        let first = open(&dir);
        let err = SledStore::open(dir.path(), CACHE).err().expect("must fail");
        assert!(
            matches!(&err, StoreError::Locked(p) if p.contains(DB_DIR)),
            "{err:?}"
        );
        drop(first);
        // Dropping the store releases the lock.
        drop(open(&dir));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn corrupt_values_are_reported_not_panicked() {
        let dir = TempDir::new().unwrap();
        let store = open(&dir);
        store
            .commit(write(order("o1", &["e1"], 1), None, "r1"))
            .await
            .unwrap();
        let valid = store.trees.orders.get("o1").unwrap().unwrap();

        let garbage: [&[u8]; 4] = [b"", b"\x09junk", b"\x01\x00\x00", &valid[..valid.len() - 1]];
        for bytes in garbage {
            store.trees.orders.insert("o1", bytes).unwrap();
            let err = store.get_order("o1").await.unwrap_err();
            assert!(
                matches!(&err, StoreError::Corrupt(m) if m.contains(ORDERS) && m.contains("o1")),
                "{err:?}"
            );
            let err = store.find_order_by_external_id("e1").await.unwrap_err();
            assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
            let err = store
                .commit(write(order("o1", &["e1"], 2), Some(1), "r2"))
                .await
                .unwrap_err();
            assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        }
        let mut trailing = valid.to_vec();
        trailing.push(0);
        store.trees.orders.insert("o1", trailing).unwrap();
        let err = store.get_order("o1").await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }
}
