//! Vendure 3 over its Admin GraphQL API: a typed client ([`VendureClient`]), the catalog
//! snapshot mapped to what fast-seller prices with ([`VendureCatalog`]), and order placement
//! idempotent by Fast order id. The GraphQL documents are the verified ones of
//! `integrations/vendure/graphql/`; the pricing rules live in
//! [`crate::domain::vendure_pricing`].

mod bridge;
mod catalog;
mod client;
mod orders;
mod probe;
mod snapshot;

pub use bridge::{SyncError, Synced, VendureBridge, PLACEMENTS_AT_ONCE, PLACEMENT_TIMEOUT};
pub use catalog::{
    Channel, OptionRef, ShippingMethod, Stock, TaxCategory, TaxRate, TaxZoneStrategy, Unmapped,
    Variant, VendureCatalog, VendurePromotion, Zone,
};
pub use client::{Auth, VendureClient};
pub use orders::{Address, Customer, OrderLine, PlaceOrder, Placed};
pub use snapshot::{Snapshot, SnapshotError, SNAPSHOT_FILE};

/// Everything that can go wrong talking to Vendure. Stable variants: callers match on them
/// (retry a [`VendureError::Transient`], report the others).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum VendureError {
    /// Network failure, timeout, HTTP 5xx or 429: worth retrying later.
    #[error("Vendure unreachable or failing ({0}); retry later")]
    Transient(String),
    /// Any other HTTP status without a GraphQL answer.
    #[error("{operation}: HTTP {status}: {body}")]
    Http {
        operation: String,
        status: u16,
        body: String,
    },
    /// Not authenticated or not allowed (`FORBIDDEN`), or the login was refused.
    #[error("{operation}: not allowed: {message}")]
    Forbidden { operation: String, message: String },
    /// `errors[]` of a GraphQL answer (`code` from `extensions.code`, absent on some, e.g. a
    /// unique-constraint violation).
    #[error("{operation}: {message}")]
    GraphQl {
        operation: String,
        code: Option<String>,
        message: String,
    },
    /// A business error answered as a result type (`__typename`, `errorCode`), HTTP 200.
    #[error("{operation}: {typename} ({error_code}): {message}")]
    Result {
        operation: String,
        typename: String,
        error_code: String,
        message: String,
    },
    /// An answer whose shape is not the one the document asks for.
    #[error("{operation}: unexpected answer: {message}")]
    Decode { operation: String, message: String },
    /// Something the caller named does not exist in Vendure (a SKU, a shipping method).
    #[error("{what} not found in Vendure")]
    NotFound { what: String },
    /// Vendure holds fewer units than asked for.
    #[error("insufficient stock for {sku}: {available} available")]
    InsufficientStock { sku: String, available: i64 },
    /// The server is configured in a way fast-seller cannot work with.
    #[error("unsupported Vendure configuration: {0}")]
    Unsupported(String),
}

impl VendureError {
    pub fn is_transient(&self) -> bool {
        matches!(self, VendureError::Transient(_))
    }
}
