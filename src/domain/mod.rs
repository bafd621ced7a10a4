//! The order domain: catalog lookups, pricing, the incremental merge of updates and the
//! status machine. Pure code: values in, values out, no I/O, no clock, no randomness (ids
//! come from an [`IdSource`] the caller passes in).

pub mod catalog;
pub mod checkout;
pub mod error;
pub mod limits;
pub mod pricing;
pub mod status;
pub mod vendure_pricing;

pub use catalog::{Catalog, CatalogError};
pub use checkout::{apply_update, create_cart, delete, event_for, validate_update, UpdateOutcome};
pub use error::{DomainError, ErrorKind};

/// Makes the ids the seller assigns (order, line and plan `external_id`s, plan ids).
pub trait IdSource {
    fn new_id(&mut self) -> String;
}

/// `reason_code` of a failed update segment (docs/pricing.md "Reason codes").
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReasonCode {
    ProductNotFound,
    InsufficientStock,
    InvalidQuantity,
    CouponNotFound,
    CouponNotApplicable,
    ShippingOptionNotFound,
    AddressNotShippable,
    InvalidTransition,
}

impl ReasonCode {
    pub fn as_str(self) -> &'static str {
        match self {
            ReasonCode::ProductNotFound => "PRODUCT_NOT_FOUND",
            ReasonCode::InsufficientStock => "INSUFFICIENT_STOCK",
            ReasonCode::InvalidQuantity => "INVALID_QUANTITY",
            ReasonCode::CouponNotFound => "COUPON_NOT_FOUND",
            ReasonCode::CouponNotApplicable => "COUPON_NOT_APPLICABLE",
            ReasonCode::ShippingOptionNotFound => "SHIPPING_OPTION_NOT_FOUND",
            ReasonCode::AddressNotShippable => "ADDRESS_NOT_SHIPPABLE",
            ReasonCode::InvalidTransition => "INVALID_TRANSITION",
        }
    }
}

/// Largest quantity a line may have.
pub const MAX_QUANTITY: i64 = 100_000;
pub mod manage;
