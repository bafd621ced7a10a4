//! The use cases behind Fast's four endpoints: parse the request, run it at most once per
//! `request_id`, merge it into the stored order through the pure domain, and commit the
//! order with the stored answer in one durable store commit. No HTTP types here.

pub mod admin;
mod fingerprint;
mod in_flight;
mod keyed_lock;
pub mod orders;

pub use keyed_lock::{KeyGuard, KeyedLocks};

use crate::clock::Clock;
use crate::domain::manage::Ledger;
use crate::domain::{self, Catalog, DomainError, IdSource};
use crate::metrics::Metrics;
use crate::protocol::{
    CreateRequest, DeleteRequest, EntityType, FastOrder, Header, Id, OrderLookup, OrderResponse,
    OrderResponseSegment, OrderStatus, ReadRequest, SegmentStatus, ShippingZone,
    ShippingZonesResponse, ShippingZonesSegment, UpdateRequest,
};
use crate::store::{
    Commit, IdempotencyKey, IdempotencyRecord, OrderRecord, OrderWrite, OutboxEntry, Store,
    StoreError,
};
use serde::{Deserialize, Serialize};
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;
use tracing::Span;

/// Why a request failed; `http::error` maps each kind to a status and an rpcStatus body.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Malformed JSON or a wrong shape (names the field when it can).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// Well-formed but refused by the domain.
    #[error("{0}")]
    Unprocessable(String),
    /// The request_id was used before with a different body.
    #[error("request_id {0} was already used with a different request body")]
    RequestIdReused(String),
    /// The entity type is not served by this endpoint.
    #[error("{0}")]
    Unimplemented(String),
    /// Another instance sharing the store recorded this request_id first (internal: the
    /// request is answered with that record).
    #[error("the request was recorded concurrently")]
    AlreadyRecorded,
    /// The request conflicts with the current state (e.g. retrying an event that is not dead).
    #[error("{0}")]
    Conflict(String),
    /// The caller's credentials do not cover this request.
    #[error("authentication failed: {0}")]
    Unauthenticated(String),
    /// A request with the same request_id is still running.
    #[error("a request with request_id {0} is still in progress; retry shortly")]
    InFlight(String),
    /// The store could not commit or read; nothing was changed.
    #[error("storage unavailable")]
    Unavailable(#[source] StoreError),
    /// A bug or corrupt data: the client sees no details.
    #[error("internal error: {0}")]
    Internal(String),
}

impl From<DomainError> for ServiceError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid { .. } => ServiceError::BadRequest(e.to_string()),
            DomainError::Unprocessable { .. } => ServiceError::Unprocessable(e.to_string()),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt(m) => ServiceError::Internal(m),
            other => ServiceError::Unavailable(other),
        }
    }
}

/// Who is calling, as authentication established it.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The app id a Fast JWT was issued for (its audience), when the scheme carries one.
    pub app_id: Option<String>,
}

impl Caller {
    /// The app id in the token must match the request's `app_id` when both are present.
    fn check(&self, header: &Header) -> Result<(), ServiceError> {
        match (&self.app_id, &header.app_id) {
            (Some(authenticated), Some(claimed)) if authenticated != claimed => {
                Err(ServiceError::Unauthenticated(
                    "app id mismatch: the request's app_id is not the token's audience".into(),
                ))
            }
            _ => Ok(()),
        }
    }
}

/// What goes back to Fast: the exact bytes, and whether they are a stored replay.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub replayed: bool,
}

impl Reply {
    fn ok(body: Vec<u8>) -> Reply {
        Reply {
            status: 200,
            body,
            replayed: false,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// How long idempotency records are kept.
    pub idempotency_retention: Duration,
    /// How long a duplicate waits for the first request with its request_id.
    pub in_flight_wait: Duration,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        ServiceSettings {
            idempotency_retention: Duration::from_secs(7 * 24 * 3600),
            in_flight_wait: Duration::from_secs(5),
        }
    }
}

/// How often a commit is retried after a version conflict (another instance won the race).
/// Two instances merging into one cart each win about every other round, so 3 tries left
/// some 1 in 8 contended updates to a 503; 10 leave about 1 in 1,000.
const CONFLICT_RETRIES: usize = 10;

pub struct Service {
    store: Arc<dyn Store>,
    catalog: Arc<Catalog>,
    clock: Arc<dyn Clock>,
    settings: ServiceSettings,
    in_flight: KeyedLocks<IdempotencyKey>,
    orders: KeyedLocks<String>,
    /// Wakes the outbox worker when a commit queued events.
    outbox_wake: Arc<Notify>,
    metrics: Arc<Metrics>,
}

/// The order as stored: Fast's order plus the seller's bookkeeping.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct StoredOrder {
    order: FastOrder,
    created_at_ms: u64,
    updated_at_ms: u64,
    /// Sequence number of the last outbox event of this order.
    #[serde(default)]
    events: u64,
    /// The `app_id` Fast created the order with: `X-Fast-App` of the calls about it when
    /// the server has no app id configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    app_id: Option<String>,
    /// What merchant order management did to it (`orders`); empty until then.
    #[serde(default, skip_serializing_if = "Ledger::is_untouched")]
    ledger: Ledger,
}

/// An outbox event as the commerce backend receives it (contract §7).
#[derive(Debug, Serialize)]
struct OutboxEvent<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    order_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<&'a str>,
    sequence: u64,
    occurred_at: String,
    order: &'a FastOrder,
    /// The merchant action's record (cancellation, refund, fulfilment), for its events.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a serde_json::Value>,
}

/// A loaded order with the version it was read at.
struct Loaded {
    stored: StoredOrder,
    record: OrderRecord,
}

/// Idempotency of one request: its key and fingerprint.
struct Stamp {
    key: IdempotencyKey,
    fingerprint: [u8; 32],
}

struct UuidIds;

impl IdSource for UuidIds {
    fn new_id(&mut self) -> String {
        uuid::Uuid::new_v4().to_string()
    }
}

/// serde_json's own recursion limit, applied to the whole body.
const MAX_NESTING: usize = 128;

/// Whether arrays and objects in `body` nest deeper than `limit` (brackets inside strings
/// do not count).
fn nesting_exceeds(body: &[u8], limit: usize) -> bool {
    let (mut depth, mut in_string, mut escaped) = (0usize, false, false);
    for &b in body {
        if in_string {
            match (escaped, b) {
                (true, _) => escaped = false,
                (false, b'\\') => escaped = true,
                (false, b'"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match b {
            b'"' => in_string = true,
            b'[' | b'{' => {
                depth += 1;
                if depth > limit {
                    return true;
                }
            }
            b']' | b'}' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    false
}

/// Parses a body into `T`, naming the offending field on failure.
fn parse<T: serde::de::DeserializeOwned>(body: &[u8]) -> Result<T, ServiceError> {
    // serde_json skips ignored fields without checking their UTF-8: check the whole body.
    std::str::from_utf8(body).map_err(|e| {
        ServiceError::BadRequest(format!(
            "malformed JSON: invalid UTF-8 at byte {}",
            e.valid_up_to()
        ))
    })?;
    // Nor do they count toward its nesting limit: hold the whole body to it.
    if nesting_exceeds(body, MAX_NESTING) {
        return Err(ServiceError::BadRequest(format!(
            "malformed JSON: nested deeper than {MAX_NESTING} levels"
        )));
    }
    let mut de = serde_json::Deserializer::from_slice(body);
    let value: T = serde_path_to_error::deserialize(&mut de).map_err(|e| {
        let path = e.path().to_string();
        let inner = e.into_inner();
        if inner.is_syntax() || inner.is_eof() {
            ServiceError::BadRequest(format!("malformed JSON: {inner}"))
        } else if path == "." {
            // The envelope fields are flattened into each request type, which hides their
            // path: look at them on their own to name the field.
            envelope_error(body)
                .unwrap_or_else(|| ServiceError::BadRequest(format!("invalid request: {inner}")))
        } else {
            ServiceError::BadRequest(format!("{path}: {inner}"))
        }
    })?;
    de.end()
        .map_err(|e| ServiceError::BadRequest(format!("malformed JSON: {e}")))?;
    Ok(value)
}

/// The error of the envelope fields (`type`, `request_id`, `app_id`) with its path, if any.
fn envelope_error(body: &[u8]) -> Option<ServiceError> {
    let mut de = serde_json::Deserializer::from_slice(body);
    let e = serde_path_to_error::deserialize::<_, Header>(&mut de).err()?;
    let path = e.path().to_string();
    Some(ServiceError::BadRequest(format!(
        "{path}: {}",
        e.into_inner()
    )))
}

fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ServiceError> {
    serde_json::to_vec(value).map_err(|e| ServiceError::Internal(format!("encoding: {e}")))
}

fn require_orders(header: &Header, verb: &str) -> Result<(), ServiceError> {
    match header.entity() {
        EntityType::Order => Ok(()),
        other => Err(ServiceError::Unimplemented(format!(
            "{verb} of {} is not supported",
            other.name()
        ))),
    }
}

fn order_response(
    request_id: Option<&Id>,
    order: &FastOrder,
    status: Option<&[SegmentStatus]>,
) -> Result<Vec<u8>, ServiceError> {
    encode(&OrderResponse {
        entity_type: EntityType::Order,
        request_id,
        order: OrderResponseSegment { order, status },
    })
}

/// The four operations Fast calls.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verb {
    Create,
    Read,
    Update,
    Delete,
}

impl Verb {
    pub fn parse(name: &str) -> Option<Verb> {
        match name {
            "create" => Some(Verb::Create),
            "read" => Some(Verb::Read),
            "update" => Some(Verb::Update),
            "delete" => Some(Verb::Delete),
            _ => None,
        }
    }
}

impl Service {
    /// Runs one Fast call on its raw body, for an authenticated `caller`.
    pub async fn handle(
        &self,
        verb: Verb,
        body: &[u8],
        caller: &Caller,
    ) -> Result<Reply, ServiceError> {
        match verb {
            Verb::Create => self.create(body, caller).await,
            Verb::Read => self.read(body, caller).await,
            Verb::Update => self.update(body, caller).await,
            Verb::Delete => self.delete(body, caller).await,
        }
    }

    pub fn new(
        store: Arc<dyn Store>,
        catalog: Arc<Catalog>,
        clock: Arc<dyn Clock>,
        settings: ServiceSettings,
        outbox_wake: Arc<Notify>,
        metrics: Arc<Metrics>,
    ) -> Service {
        Service {
            store,
            catalog,
            clock,
            settings,
            in_flight: KeyedLocks::default(),
            orders: KeyedLocks::default(),
            outbox_wake,
            metrics,
        }
    }

    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// `POST /fast/v1/create`: a new cart, or the existing one for the same Fast order id.
    pub async fn create(&self, body: &[u8], caller: &Caller) -> Result<Reply, ServiceError> {
        let req: CreateRequest = parse(body)?;
        require_orders(&req.header, "create")?;
        caller.check(&req.header)?;
        let fast_id = req
            .order
            .order
            .id
            .as_ref()
            .map(|i| i.0.clone())
            .unwrap_or_default();
        record_ids(&req.header, Some(&fast_id));
        let (stamp, _slot) = match self.begin("create", body, &req.header).await? {
            Begin::Replay(reply) => return Ok(reply),
            Begin::Run(stamp, slot) => (stamp, slot),
        };
        let order = domain::create_cart(
            req.order.order.clone(),
            req.order.is_cart,
            &self.catalog,
            &mut UuidIds,
        )?;
        let _order_lock = self.lock_order(&fast_id).await?;
        let request_id = req.header.request_id.as_ref();
        let result = retry_on_conflict(|| async {
            if let Some(existing) = self.store.get_order(&fast_id).await? {
                // Never a second cart: answer with the order we already have.
                let loaded = decode(existing)?;
                let body = order_response(request_id, &loaded.stored.order, None)?;
                self.commit(Commit::default(), stamp.as_ref(), &body)
                    .await?;
                return Ok(Reply::ok(body));
            }
            let now = self.clock.now_ms();
            let stored = StoredOrder {
                order: order.clone(),
                created_at_ms: now,
                updated_at_ms: now,
                events: 0,
                app_id: req.header.app_id.clone().filter(|a| !a.is_empty()),
                ledger: Ledger::default(),
            };
            let body = order_response(request_id, &stored.order, None)?;
            let write = OrderWrite {
                record: to_record(&stored, 1, &[])?,
                expected_version: None,
            };
            let commit = Commit {
                order: Some(write),
                ..Commit::default()
            };
            self.commit(commit, stamp.as_ref(), &body).await?;
            Metrics::inc(&self.metrics.order_status, &[OrderStatus::Cart.name()]);
            Ok(Reply::ok(body))
        })
        .await;
        self.finish(stamp.as_ref(), result).await
    }

    /// `POST /fast/v1/read`: an order by Fast or seller id, or the shipping zones.
    pub async fn read(&self, body: &[u8], caller: &Caller) -> Result<Reply, ServiceError> {
        let req: ReadRequest = parse(body)?;
        caller.check(&req.header)?;
        record_ids(&req.header, None);
        match req.header.entity() {
            EntityType::ShippingZones => {
                let zones = self.shipping_zones();
                let body = encode(&ShippingZonesResponse {
                    entity_type: EntityType::ShippingZones,
                    request_id: req.header.request_id.as_ref(),
                    shipping_zones: ShippingZonesSegment {
                        shipping_zones: zones,
                    },
                })?;
                Ok(Reply::ok(body))
            }
            EntityType::Order => {
                let lookup = req.order.ok_or_else(|| {
                    ServiceError::BadRequest("order: the order segment is required".into())
                })?;
                let loaded = self.find(&lookup).await?;
                let body =
                    order_response(req.header.request_id.as_ref(), &loaded.stored.order, None)?;
                Ok(Reply::ok(body))
            }
            other => Err(ServiceError::Unimplemented(format!(
                "read of {} is not supported",
                other.name()
            ))),
        }
    }

    /// `POST /fast/v1/update`: merges the incremental segments into the stored order.
    pub async fn update(&self, body: &[u8], caller: &Caller) -> Result<Reply, ServiceError> {
        let req: UpdateRequest = parse(body)?;
        require_orders(&req.header, "update")?;
        caller.check(&req.header)?;
        domain::validate_update(&req.order)?;
        record_ids(&req.header, req.order.order_id.as_ref().map(Id::as_str));
        let (stamp, _slot) = match self.begin("update", body, &req.header).await? {
            Begin::Replay(reply) => return Ok(reply),
            Begin::Run(stamp, slot) => (stamp, slot),
        };
        let request_id = req.header.request_id.as_ref();
        let result = self
            .modify(&req.order.lookup(), stamp.as_ref(), |order| {
                let outcome = domain::apply_update(order, &req.order, &self.catalog, &mut UuidIds);
                for failed in outcome.statuses.iter().filter(|s| !s.status) {
                    let reason = failed.reason_code.unwrap_or("UNKNOWN");
                    Metrics::inc(
                        &self.metrics.segment_failures,
                        &[failed.updated.name(), reason],
                    );
                }
                let body = order_response(request_id, &outcome.order, Some(&outcome.statuses))?;
                Ok((outcome.order, body))
            })
            .await;
        self.finish(stamp.as_ref(), result).await
    }

    /// `POST /fast/v1/delete`: marks the order DELETED (kept for audit) and answers `{}`.
    pub async fn delete(&self, body: &[u8], caller: &Caller) -> Result<Reply, ServiceError> {
        let req: DeleteRequest = parse(body)?;
        require_orders(&req.header, "delete")?;
        caller.check(&req.header)?;
        record_ids(&req.header, req.order.fast_id());
        let (stamp, _slot) = match self.begin("delete", body, &req.header).await? {
            Begin::Replay(reply) => return Ok(reply),
            Begin::Run(stamp, slot) => (stamp, slot),
        };
        let result = self
            .modify(&req.order, stamp.as_ref(), |order| {
                Ok((domain::delete(order), b"{}".to_vec()))
            })
            .await;
        self.finish(stamp.as_ref(), result).await
    }

    /// Read-merge-commit of one stored order under its lock: `f` turns the stored order into
    /// the new one and the answer's bytes; the commit carries the answer's idempotency
    /// record and any outbox event.
    async fn modify(
        &self,
        lookup: &OrderLookup,
        stamp: Option<&Stamp>,
        f: impl Fn(&FastOrder) -> Result<(FastOrder, Vec<u8>), ServiceError>,
    ) -> Result<Reply, ServiceError> {
        let found = self.find(lookup).await?;
        let _order_lock = self.lock_order(&found.record.id).await?;
        retry_on_conflict(|| async {
            // Read under the lock: another request may have changed it meanwhile.
            let loaded = self.find(lookup).await?;
            let (order, body) = f(&loaded.stored.order)?;
            let entered = order
                .status
                .filter(|s| Some(*s) != loaded.stored.order.status);
            let change = self.change(&loaded, order)?;
            self.commit(change, stamp, &body).await?;
            if let Some(status) = entered {
                Metrics::inc(&self.metrics.order_status, &[status.name()]);
            }
            Ok(Reply::ok(body))
        })
        .await
    }

    /// Deletes idempotency records older than the retention; returns how many.
    pub async fn prune_idempotency(&self) -> Result<u64, ServiceError> {
        let retention =
            u64::try_from(self.settings.idempotency_retention.as_millis()).unwrap_or(u64::MAX);
        let before = self.clock.now_ms().saturating_sub(retention);
        Ok(self.store.prune_idempotency(before).await?)
    }

    fn shipping_zones(&self) -> Vec<ShippingZone> {
        let mut zones: Vec<ShippingZone> = Vec::new();
        for country in self
            .catalog
            .shipping
            .iter()
            .flat_map(|r| r.countries.iter())
        {
            if !zones.iter().any(|z| &z.country_iso2 == country) {
                zones.push(ShippingZone {
                    country_iso2: country.clone(),
                    subdivision_iso2: String::new(),
                });
            }
        }
        zones
    }

    /// First half of exactly-once: wait for any request with the same id still in flight,
    /// then replay its stored answer, refuse a different body, or go ahead holding the slot.
    async fn begin(
        &self,
        endpoint: &str,
        body: &[u8],
        header: &Header,
    ) -> Result<Begin, ServiceError> {
        let Some(request_id) = header.request_id.as_ref() else {
            return Ok(Begin::Run(None, None));
        };
        if request_id.0.trim().is_empty() {
            return Err(ServiceError::BadRequest(
                "request_id: must not be empty".into(),
            ));
        }
        let app_id = header.app_id.clone().unwrap_or_default();
        if app_id.contains('\0') || app_id.len() > crate::protocol::MAX_ID_LEN {
            return Err(ServiceError::BadRequest("app_id: invalid".into()));
        }
        if app_id == orders::ADMIN_SCOPE {
            return Err(ServiceError::BadRequest(format!(
                "app_id: `{app_id}` is reserved for the merchant API"
            )));
        }
        let key = IdempotencyKey {
            app_id,
            request_id: request_id.0.clone(),
        };
        let value: serde_json::Value = parse(body)?;
        let fingerprint = fingerprint::fingerprint(endpoint, &value);
        self.begin_stamp(Stamp { key, fingerprint }).await
    }

    /// Waits for the key's slot (in this process, then across instances sharing the store),
    /// then replays, refuses a different body, or goes ahead holding it.
    async fn begin_stamp(&self, stamp: Stamp) -> Result<Begin, ServiceError> {
        let deadline = tokio::time::Instant::now() + self.settings.in_flight_wait;
        let slot = self
            .in_flight
            .acquire(&stamp.key, self.settings.in_flight_wait)
            .await
            .ok_or_else(|| ServiceError::InFlight(stamp.key.request_id.clone()))?;
        if let Some(record) = self.store.get_idempotency(&stamp.key).await? {
            return replay(record, stamp);
        }
        let marker = match in_flight::claim(&self.store, &stamp.key, deadline).await? {
            in_flight::Claimed::Run(marker) => marker.map(Box::new),
            in_flight::Claimed::Recorded(record) => return replay(record, stamp),
        };
        Ok(Begin::Run(Some(stamp), Some((slot, marker))))
    }

    /// When another instance recorded the same request_id first, its answer is the answer.
    async fn finish(
        &self,
        stamp: Option<&Stamp>,
        result: Result<Reply, ServiceError>,
    ) -> Result<Reply, ServiceError> {
        let (Err(ServiceError::AlreadyRecorded), Some(stamp)) = (&result, stamp) else {
            return result;
        };
        match self.store.get_idempotency(&stamp.key).await? {
            Some(record) if record.fingerprint == stamp.fingerprint => Ok(Reply {
                status: record.status,
                body: record.body,
                replayed: true,
            }),
            Some(_) => Err(ServiceError::RequestIdReused(stamp.key.request_id.clone())),
            None => Err(ServiceError::Unavailable(StoreError::Conflict)),
        }
    }

    /// Second half: the answer's idempotency record goes into the same commit as the change.
    async fn commit(
        &self,
        mut commit: Commit,
        stamp: Option<&Stamp>,
        body: &[u8],
    ) -> Result<(), ServiceError> {
        if let Some(s) = stamp {
            commit.idempotency = Some((
                s.key.clone(),
                IdempotencyRecord {
                    fingerprint: s.fingerprint,
                    status: 200,
                    body: body.to_vec(),
                    created_at_ms: self.clock.now_ms(),
                },
            ));
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

    async fn lock_order(&self, id: &str) -> Result<KeyGuard<String>, ServiceError> {
        self.orders
            .acquire(&id.to_string(), self.settings.in_flight_wait)
            .await
            .ok_or(ServiceError::Unavailable(StoreError::Conflict))
    }

    /// Finds an order by Fast id, then by seller id (contract §4, protocol §1.13).
    async fn find(&self, lookup: &OrderLookup) -> Result<Loaded, ServiceError> {
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
            return Err(ServiceError::BadRequest(
                "order: order_id, external_id or external_order_id is required".into(),
            ));
        }
        let record = record.ok_or_else(|| {
            ServiceError::NotFound(format!(
                "no order with {}",
                lookup
                    .fast_id()
                    .map(|id| format!("order_id {id}"))
                    .or_else(|| lookup.seller_id().map(|id| format!("external_id {id}")))
                    .unwrap_or_default()
            ))
        })?;
        Span::current().record("order_id", record.id.as_str());
        decode(record)
    }

    /// The commit that turns `loaded` into `order`: nothing when it did not change, else the
    /// new version and, for a conversion or a later status change, its outbox event.
    fn change(&self, loaded: &Loaded, order: FastOrder) -> Result<Commit, ServiceError> {
        if order == loaded.stored.order {
            return Ok(Commit::default());
        }
        let now = self.clock.now_ms();
        let mut stored = StoredOrder {
            order,
            created_at_ms: loaded.stored.created_at_ms,
            updated_at_ms: now,
            events: loaded.stored.events,
            app_id: loaded.stored.app_id.clone(),
            ledger: loaded.stored.ledger.clone(),
        };
        let mut outbox = Vec::new();
        if let Some(event_type) = domain::event_for(&loaded.stored.order, &stored.order) {
            stored.events += 1;
            outbox.push(outbox_entry(
                &stored,
                &loaded.record.id,
                event_type,
                now,
                None,
            )?);
        }
        let version = loaded.record.version;
        Ok(Commit {
            order: Some(OrderWrite {
                record: to_record(&stored, version + 1, &loaded.record.external_ids)?,
                expected_version: Some(version),
            }),
            idempotency: None,
            outbox,
        })
    }
}

enum Begin {
    Replay(Reply),
    /// Go ahead, holding the request id (in this process, and across instances when the
    /// store is shared) until the value is dropped.
    Run(
        Option<Stamp>,
        Option<(KeyGuard<IdempotencyKey>, Option<Box<in_flight::Marker>>)>,
    ),
}

/// The stored answer to a repeat, or a refusal when the body differs.
fn replay(record: IdempotencyRecord, stamp: Stamp) -> Result<Begin, ServiceError> {
    if record.fingerprint != stamp.fingerprint {
        return Err(ServiceError::RequestIdReused(stamp.key.request_id));
    }
    Ok(Begin::Replay(Reply {
        status: record.status,
        body: record.body,
        replayed: true,
    }))
}

fn record_ids(header: &Header, order_id: Option<&str>) {
    let span = Span::current();
    if let Some(r) = &header.request_id {
        span.record("request_id", r.as_str());
    }
    if let Some(o) = order_id.filter(|o| !o.is_empty()) {
        span.record("order_id", o);
    }
}

/// Runs `attempt` again when the store reports a version conflict (another writer won the
/// race; with sled in one process the order lock makes this rare), a bounded number of times.
async fn retry_on_conflict<F, Fut>(mut attempt: F) -> Result<Reply, ServiceError>
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

fn outbox_entry(
    stored: &StoredOrder,
    order_id: &str,
    event_type: &'static str,
    now_ms: u64,
    detail: Option<&serde_json::Value>,
) -> Result<OutboxEntry, ServiceError> {
    let id = uuid::Uuid::now_v7().to_string();
    let occurred_at = crate::clock::rfc3339_ms(now_ms);
    let body = encode(&OutboxEvent {
        id: &id,
        event_type,
        order_id,
        external_id: stored.order.external_id.as_deref(),
        sequence: stored.events,
        occurred_at,
        order: &stored.order,
        detail,
    })?;
    Ok(OutboxEntry {
        id,
        order_id: order_id.to_string(),
        sequence: stored.events,
        event_type: event_type.to_string(),
        body,
        created_at_ms: now_ms,
    })
}

fn decode(record: OrderRecord) -> Result<Loaded, ServiceError> {
    let stored: StoredOrder = serde_json::from_slice(&record.body).map_err(|e| {
        ServiceError::Internal(format!("stored order {} is unreadable: {e}", record.id))
    })?;
    Ok(Loaded { stored, record })
}

fn to_record(
    stored: &StoredOrder,
    version: u64,
    known: &[String],
) -> Result<OrderRecord, ServiceError> {
    let id = stored
        .order
        .id
        .as_ref()
        .map(|i| i.0.clone())
        .unwrap_or_default();
    let mut external_ids: Vec<String> = stored.order.external_id.iter().cloned().collect();
    for old in known {
        if !external_ids.contains(old) {
            external_ids.push(old.clone());
        }
    }
    Ok(OrderRecord {
        id,
        external_ids,
        version,
        body: encode(stored)?,
    })
}
