//! Why a merchant action is refused: one variant per cause, each with its kind and a stable
//! code.

use super::codes::RestockType;
use crate::domain::ErrorKind;
use crate::protocol::{Money, OrderStatus};

/// Why an action is refused. Messages name the line and the numbers.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ManageError {
    #[error("version {expected} is stale: the order is at version {current}")]
    VersionMismatch { current: u64, expected: u64 },
    #[error("the order has no Fast order id")]
    MissingOrderId,
    #[error("cannot {action}: the order is {}; {why}", .status.name())]
    StatusForbids {
        action: &'static str,
        status: OrderStatus,
        why: String,
    },
    #[error("line {index} of the order has no id")]
    LineWithoutId { index: usize },
    #[error(
        "line {line}: the order has quantity {order_quantity} but the ledger expects \
         {ledger_quantity}; the order changed outside order management"
    )]
    LedgerOutOfSync {
        line: String,
        order_quantity: i64,
        ledger_quantity: i64,
    },
    #[error("line {line} is not on the order")]
    UnknownLine { line: String },
    #[error("line {line} is listed twice")]
    DuplicateLine { line: String },
    #[error("line {line}: quantity {quantity} must be at least 1")]
    InvalidQuantity { line: String, quantity: i64 },
    #[error("`lines` is empty: leave it out to {action} everything")]
    NoLines { action: &'static str },
    #[error("line {line}: cancel of {requested} exceeds the {available} unfulfilled and not yet canceled")]
    ExceedsCancelable {
        line: String,
        requested: i64,
        available: i64,
    },
    #[error("nothing left to cancel: every unit is fulfilled or already canceled")]
    NothingToCancel,
    #[error("line {line}: refund of {requested} exceeds the {refundable} refundable (restock `{restock}`)")]
    ExceedsRefundable {
        line: String,
        requested: i64,
        refundable: i64,
        restock: RestockType,
    },
    #[error("line {line} is already fully refunded")]
    LineFullyRefunded { line: String },
    #[error("line {line}: restock `{restock}` is not allowed: {why}")]
    RestockNotAllowed {
        line: String,
        restock: RestockType,
        why: String,
    },
    #[error("shipping refund of {requested} exceeds the {refundable} left to refund")]
    ShippingExceeds { requested: Money, refundable: Money },
    #[error("{field}: {value} must not be negative")]
    NegativeAmount { field: String, value: Money },
    #[error("the refund is empty: give lines or shipping")]
    EmptyRefund,
    #[error("the refund does not match its calculation: {field} was {expected}, is now {actual}")]
    RefundMismatch {
        field: String,
        expected: String,
        actual: String,
    },
    #[error("{what}: refunds would reach {refunded}, more than the {paid} paid")]
    ExceedsPaid {
        what: String,
        refunded: Money,
        paid: Money,
    },
    #[error("{kind} id {id} is already used on this order")]
    DuplicateId { kind: &'static str, id: String },
    #[error("line {line}: fulfilment of {requested} exceeds the {available} left to fulfil")]
    ExceedsFulfillable {
        line: String,
        requested: i64,
        available: i64,
    },
    #[error("nothing left to fulfil")]
    NothingToFulfil,
    #[error("estimated_delivery_date: `{value}` is not a date YYYY-MM-DD")]
    InvalidDate { value: String },
    #[error("{field}: {message}")]
    InvalidField { field: String, message: String },
    #[error("payment was already cleared for capture (at {})", crate::clock::rfc3339_ms(*at_ms))]
    AlreadyCaptured { at_ms: u64 },
}

impl ManageError {
    /// What kind of refusal this is: malformed input, a conflict with the order's state (a
    /// stale `If-Match` too), or well-formed but not possible.
    pub fn kind(&self) -> ErrorKind {
        use ManageError::*;
        match self {
            VersionMismatch { .. }
            | StatusForbids { .. }
            | AlreadyCaptured { .. }
            | LedgerOutOfSync { .. }
            | RefundMismatch { .. }
            | DuplicateId { .. } => ErrorKind::Conflict,
            InvalidQuantity { .. }
            | InvalidDate { .. }
            | InvalidField { .. }
            | NegativeAmount { .. }
            | NoLines { .. }
            | DuplicateLine { .. }
            | EmptyRefund => ErrorKind::Invalid,
            MissingOrderId
            | LineWithoutId { .. }
            | UnknownLine { .. }
            | ExceedsCancelable { .. }
            | NothingToCancel
            | ExceedsRefundable { .. }
            | LineFullyRefunded { .. }
            | RestockNotAllowed { .. }
            | ShippingExceeds { .. }
            | ExceedsPaid { .. }
            | ExceedsFulfillable { .. }
            | NothingToFulfil => ErrorKind::Unprocessable,
        }
    }

    /// The stable machine-readable code (README, "Error codes").
    pub fn code(&self) -> &'static str {
        use ManageError::*;
        match self {
            VersionMismatch { .. } => "version_mismatch",
            MissingOrderId => "order_without_fast_id",
            StatusForbids { .. } => "status_forbids_action",
            LineWithoutId { .. } => "line_without_id",
            LedgerOutOfSync { .. } => "ledger_out_of_sync",
            UnknownLine { .. } => "line_not_found",
            DuplicateLine { .. } => "line_listed_twice",
            InvalidQuantity { .. } => "invalid_quantity",
            NoLines { .. } => "lines_empty",
            ExceedsCancelable { .. } => "cancel_exceeds_cancelable",
            NothingToCancel => "nothing_to_cancel",
            ExceedsRefundable { .. } => "refund_exceeds_refundable",
            LineFullyRefunded { .. } => "line_fully_refunded",
            RestockNotAllowed { .. } => "restock_not_allowed",
            ShippingExceeds { .. } => "shipping_refund_exceeds_refundable",
            NegativeAmount { .. } => "negative_amount",
            EmptyRefund => "refund_empty",
            RefundMismatch { .. } => "refund_calculation_changed",
            ExceedsPaid { .. } => "refund_exceeds_paid",
            DuplicateId { .. } => "duplicate_id",
            ExceedsFulfillable { .. } => "fulfilment_exceeds_fulfillable",
            NothingToFulfil => "nothing_to_fulfil",
            InvalidDate { .. } => "invalid_date",
            InvalidField { .. } => "invalid_field",
            AlreadyCaptured { .. } => "already_captured",
        }
    }
}
