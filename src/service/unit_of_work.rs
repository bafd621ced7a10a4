//! The unit of work every mutation runs in: take the request's idempotency slot (`begin`),
//! lock the order, read it (`find`), turn it into its next version, and commit that version
//! with the answer's idempotency record and outbox entries in one durable store commit
//! (`commit`), retrying when another instance won the race (`retry_on_conflict`); a request
//! another instance recorded first is answered with that record (`finish`).

use super::idempotency::in_flight::{self, Marker};
use super::idempotency::{KeyGuard, Stamp};
use super::records::Loaded;
use super::{Reply, Service, ServiceError};
use crate::domain::ErrorKind;
use crate::metrics::Metrics;
use crate::protocol::{OrderLookup, OrderStatus};
use crate::store::{Commit, IdempotencyKey, StoreError};
use tracing::Span;

/// How often a commit is retried after a version conflict (another instance won the race).
/// Two instances merging into one cart each win about every other round, so 3 tries left
/// some 1 in 8 contended updates to a 503; 10 leave about 1 in 1,000.
const CONFLICT_RETRIES: usize = 10;

/// What `begin` decided.
pub(super) enum Begin {
    Replay(Reply),
    /// Go ahead, holding the request id (in this process, and across instances when the
    /// store is shared) until the value is dropped.
    Run(Option<Stamp>, Option<Slot>),
}

/// What one try of a modification commits and answers.
pub(super) struct Change {
    pub(super) commit: Commit,
    /// The status the order enters, if it changes (counted once committed).
    pub(super) entered: Option<OrderStatus>,
    pub(super) reply: Reply,
}

/// The held request id.
pub(super) type Slot = (KeyGuard<IdempotencyKey>, Option<Box<Marker>>);

impl Service {
    /// First half of exactly-once: waits for the key's slot (in this process, then across
    /// instances sharing the store), then replays the stored answer, refuses a different body,
    /// or goes ahead holding the slot. No stamp: the request runs every time.
    pub(super) async fn begin(&self, stamp: Option<Stamp>) -> Result<Begin, ServiceError> {
        let Some(stamp) = stamp else {
            return Ok(Begin::Run(None, None));
        };
        let deadline = tokio::time::Instant::now() + self.settings.in_flight_wait;
        let slot = self
            .in_flight
            .acquire(&stamp.key, self.settings.in_flight_wait)
            .await
            .ok_or_else(|| ServiceError::InFlight(stamp.key.request_id.clone()))?;
        if let Some(record) = self.store.get_idempotency(&stamp.key).await? {
            return stamp.replay(record).map(Begin::Replay);
        }
        let marker = match in_flight::claim(&self.store, &stamp.key, deadline).await? {
            in_flight::Claimed::Run(marker) => marker.map(Box::new),
            in_flight::Claimed::Recorded(record) => return stamp.replay(record).map(Begin::Replay),
        };
        Ok(Begin::Run(Some(stamp), Some((slot, marker))))
    }

    /// When another instance recorded the same request_id first, its answer is the answer.
    pub(super) async fn finish(
        &self,
        stamp: Option<&Stamp>,
        result: Result<Reply, ServiceError>,
    ) -> Result<Reply, ServiceError> {
        let (Err(ServiceError::AlreadyRecorded), Some(stamp)) = (&result, stamp) else {
            return result;
        };
        match self.store.get_idempotency(&stamp.key).await? {
            Some(record) => stamp.replay(record),
            None => Err(ServiceError::Unavailable(StoreError::Conflict)),
        }
    }

    /// Second half: the answer's idempotency record goes into the same commit as the change.
    pub(super) async fn commit(
        &self,
        mut commit: Commit,
        stamp: Option<&Stamp>,
        body: &[u8],
    ) -> Result<(), ServiceError> {
        if let Some(s) = stamp {
            commit.idempotency = Some(s.record(body, self.clock.now_ms()));
        }
        if commit.order.is_none() && commit.idempotency.is_none() {
            return Ok(());
        }
        let events = !commit.outbox.is_empty();
        let _timer = self.metrics.commit_seconds.start_timer();
        self.store.commit(commit).await.map_err(|e| match e {
            StoreError::DuplicateRequest => ServiceError::AlreadyRecorded,
            other => other.into(),
        })?;
        if events {
            self.outbox_wake.notify_one();
        }
        Ok(())
    }

    pub(super) async fn lock_order(&self, id: &str) -> Result<KeyGuard<String>, ServiceError> {
        self.orders
            .acquire(&id.to_string(), self.settings.in_flight_wait)
            .await
            .ok_or(ServiceError::Unavailable(StoreError::Conflict))
    }

    /// Finds an order by Fast id, then by seller id.
    pub(super) async fn find(&self, lookup: &OrderLookup) -> Result<Loaded, ServiceError> {
        let mut record = None;
        if let Some(id) = lookup.fast_id() {
            record = self.store.get_order(id).await?;
        }
        if record.is_none() {
            if let Some(ext) = lookup.seller_id() {
                record = self.store.find_order_by_external_id(ext).await?;
            }
        }
        if lookup.fast_id().is_none() && lookup.seller_id().is_none() {
            return Err(ServiceError::invalid(
                "order_id_missing",
                "order: order_id, external_id or external_order_id is required",
            ));
        }
        let record = record.ok_or_else(|| ServiceError::Refused {
            kind: ErrorKind::NotFound,
            code: "order_not_found",
            message: format!(
                "no order with {}",
                lookup
                    .fast_id()
                    .map(|id| format!("order_id {id}"))
                    .or_else(|| lookup.seller_id().map(|id| format!("external_id {id}")))
                    .unwrap_or_default()
            ),
        })?;
        Span::current().record("order_id", record.id.as_str());
        Loaded::decode(record)
    }

    /// Read-modify-commit of one stored order under its lock, the order re-read on every
    /// try: `f` turns the loaded order into its [`Change`].
    pub(super) async fn modify(
        &self,
        lookup: &OrderLookup,
        stamp: Option<&Stamp>,
        f: impl Fn(&Loaded) -> Result<Change, ServiceError>,
    ) -> Result<Reply, ServiceError> {
        let found = self.find(lookup).await?;
        let _order_lock = self.lock_order(&found.record.id).await?;
        retry_on_conflict(|| async {
            // Read under the lock: another request may have changed it meanwhile.
            let loaded = self.find(lookup).await?;
            let change = f(&loaded)?;
            self.commit(change.commit, stamp, &change.reply.body)
                .await?;
            if let Some(status) = change.entered {
                Metrics::inc(&self.metrics.order_status, &[status.name()]);
            }
            Ok(change.reply)
        })
        .await
    }
}

/// Runs `attempt` again when the store reports a version conflict (another writer won the
/// race; with sled in one process the order lock makes this rare), a bounded number of times.
pub(super) async fn retry_on_conflict<F, Fut>(mut attempt: F) -> Result<Reply, ServiceError>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Reply, ServiceError>>,
{
    for _ in 1..CONFLICT_RETRIES {
        match attempt().await {
            Err(ServiceError::Unavailable(StoreError::Conflict)) => continue,
            other => return other,
        }
    }
    attempt().await
}
