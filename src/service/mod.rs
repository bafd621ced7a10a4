//! The use cases: Fast's four calls (`checkout`) and the merchant's actions (`orders`,
//! `admin`), each run at most once per request id (`idempotency`) around one unit of work
//! (`unit_of_work`: lock the order, read it, merge through the pure domain, commit the order
//! with its stored answer and outbox entries in one durable store commit). `records` is the
//! order as stored. No HTTP types here.

pub mod admin;
mod checkout;
mod error;
mod idempotency;
pub mod orders;
pub mod platform;
mod records;
mod retention;
mod unit_of_work;

pub use error::ServiceError;
pub use idempotency::{KeyGuard, KeyedLocks};
pub use retention::Pruned;

use crate::catalog::SharedCatalog;
use crate::clock::Clock;
use crate::domain::limits::Limits;
use crate::metrics::Metrics;
use crate::store::{IdempotencyKey, Store};
use platform::Platform;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::Notify;

/// Who is calling, as authentication established it.
#[derive(Debug, Clone, Default)]
pub struct Caller {
    /// The app id a Fast JWT was issued for (its audience), when the scheme carries one.
    pub app_id: Option<String>,
}

/// What goes back to the caller: the exact bytes, whether they are a stored replay, and the
/// order's version when the answer is a merchant's view of one order (its `ETag`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Reply {
    pub status: u16,
    pub body: Vec<u8>,
    pub replayed: bool,
    pub version: Option<u64>,
}

impl Reply {
    pub(crate) fn ok(body: Vec<u8>) -> Reply {
        Reply {
            status: 200,
            body,
            replayed: false,
            version: None,
        }
    }
}

#[derive(Debug, Clone)]
pub struct ServiceSettings {
    /// How long idempotency records are kept.
    pub idempotency_retention: Duration,
    /// How long delivered outbox entries are kept after their delivery.
    pub outbox_retention: Duration,
    /// How long a duplicate waits for the first request with its request_id.
    pub in_flight_wait: Duration,
    /// How big one order may grow.
    pub limits: Limits,
}

impl Default for ServiceSettings {
    fn default() -> Self {
        ServiceSettings {
            idempotency_retention: Duration::from_secs(7 * 24 * 3600),
            outbox_retention: Duration::from_secs(7 * 24 * 3600),
            in_flight_wait: Duration::from_secs(5),
            limits: Limits::default(),
        }
    }
}

pub struct Service {
    store: Arc<dyn Store>,
    catalog: Arc<SharedCatalog>,
    /// The commerce platform, when there is one (`--backend vendure`).
    platform: Option<Arc<dyn Platform>>,
    clock: Arc<dyn Clock>,
    settings: ServiceSettings,
    in_flight: KeyedLocks<IdempotencyKey>,
    orders: KeyedLocks<String>,
    /// Wakes the outbox worker when a commit queued events.
    outbox_wake: Arc<Notify>,
    metrics: Arc<Metrics>,
}

impl Service {
    pub fn new(
        store: Arc<dyn Store>,
        catalog: Arc<SharedCatalog>,
        clock: Arc<dyn Clock>,
        settings: ServiceSettings,
        outbox_wake: Arc<Notify>,
        metrics: Arc<Metrics>,
    ) -> Service {
        Service {
            store,
            catalog,
            platform: None,
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

    /// Answers what Fast asks of the commerce platform (a shopper by e-mail) from `platform`.
    pub fn with_platform(mut self, platform: Arc<dyn Platform>) -> Service {
        self.platform = Some(platform);
        self
    }

    /// The catalog carts are priced with.
    pub fn catalog(&self) -> &Arc<SharedCatalog> {
        &self.catalog
    }
}
