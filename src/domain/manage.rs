//! Merchant order management after checkout: cancel, refund (calculate, then create),
//! fulfil and capture. Pure like the rest of `domain`: values in, values out; no I/O, no
//! clock (`now_ms` is a parameter), no id generation (ids are parameters).
//!
//! # State
//!
//! Each managed order has a [`Ledger`] stored next to it (serde, `Default` for an order
//! never managed). The ledger holds what the order snapshot cannot: per line the quantities
//! ordered / canceled / fulfilled / refunded / returned and the money refunded; shipping
//! refunded; the list of cancellations, refunds and fulfilments; `captured`; the `version`
//! counter; and the audit log. Every successful action returns a new `(FastOrder, Ledger)`
//! pair: store **both, atomically**, or neither.
//!
//! # How the service layer calls this
//!
//! For every mutating call (HTTP/CLI), in one store transaction per order:
//!
//! 1. load `(order, ledger)` (a missing ledger is `Ledger::default()`);
//! 2. [`check_version`]`(&ledger, if_match)` — `if_match` from an `If-Match` header or a
//!    `version` field; `None` skips the check. [`ManageError::VersionMismatch`] is a
//!    conflict and carries `current`;
//! 3. call the action:
//!    - [`cancel`]`(&order, &ledger, &CancelRequest, now_ms)` →
//!      `(order, ledger, CancelOutcome)`;
//!    - [`refund_calculate`]`(&order, &ledger, &RefundRequest)` → [`RefundCalculation`]
//!      (read-only: store nothing; hand it to the merchant);
//!    - [`refund_create`]`(&order, &ledger, &RefundRequest, &expected, refund_id, now_ms)` →
//!      `(order, ledger, Refund)`, where `expected` is the calculation the merchant saw
//!      (sent back in the create request) and `refund_id` a fresh id (uuid);
//!    - [`fulfil`]`(&order, &ledger, &FulfilRequest, now_ms, fulfilment_id)` →
//!      `(order, ledger, FulfilOutcome)`;
//!    - [`capture`]`(&order, &ledger, &Actor, now_ms)` → `(order, ledger, BusinessEventBody)`;
//! 4. store the returned order and ledger together, plus an outbox entry for the Fast call:
//!    - cancel: `outcome.fast_cancel` (`Some` only when the whole order became
//!      `ORDER_STATUS_CANCELED`) → `POST /v1/external/orders/{order_id}`;
//!    - refund: [`fast_refund_body`]`(&order, &refund)` →
//!      `POST /v1/external/orders/{order_id}/refund`;
//!    - fulfil: `outcome.event` → `POST /v1/external/orders/{order_id}/business_event`;
//!    - capture: the returned body → the same business-event path;
//! 5. answer with the full order snapshot and the ledger (its `version` is the new ETag);
//!    each error names its [`ErrorKind`](crate::domain::ErrorKind) and a stable code.
//!
//! Reads (`GET` an order's management state) just return the stored pair. A retry with the
//! same request id must be answered from the idempotency record, not re-applied (a second
//! capture, say, is refused here).
//!
//! # Decisions where the issue is silent
//!
//! - **Statuses.** Cancel: PENDING, HOLD, BOOKED, PENDING_FULFILLMENT (docs/pricing.md "Status machine":
//!   "CANCELED from any state before FULFILLED"). A CART is refused: it is the shopper's
//!   open checkout on Fast, there is no order or payment to cancel yet, and Fast's cancel
//!   call takes an order; an abandoned cart ends with Fast's own delete. Fulfil: BOOKED and
//!   PENDING_FULFILLMENT (PENDING is still awaiting payment, HOLD is on hold). Capture:
//!   anything converted and not CANCELED/DELETED. Refund: anything converted and not DELETED
//!   (a canceled order may still have shipping or fulfilled units to refund).
//! - **Status changes made here are facts**, not Fast's requested moves: a fulfilment that
//!   ships everything left moves BOOKED or PENDING_FULFILLMENT to FULFILLED; a cancel (or
//!   refund with restock `cancel`) that leaves only fulfilled units moves the order to
//!   FULFILLED; one that leaves nothing moves it to CANCELED.
//! - **Fast marked it FULFILLED.** If Fast's status update put the order in FULFILLED or
//!   COMPLETE without our fulfil, every remaining unit counts as fulfilled.
//! - **Lines canceled to 0 stay** on the order with quantity 0 and zero amounts: their Fast
//!   line ids are still referenced by Fast, refunds and audit. The ledger keeps `ordered`.
//! - **Cancel money.** Unit prices, discounts and taxes are taken from the order as it
//!   stands (no catalog lookup): `subtotal = unit_price × remaining` and the line's
//!   discount and tax scale by `remaining / current`, half away from zero; the line's
//!   coupon entries (`discounts[]`) are re-split over the new discount and the order's
//!   `coupons[].total_amount` follow. Shipping (and its tax) stays unless every unit is
//!   canceled. `cancel_total` = the canceled units' subtotal − discount + tax (+ shipping and
//!   its tax when everything is canceled). On a line with refunds of fulfilled units, those
//!   units keep exactly what was refunded on them and the other staying units their pro-rata
//!   share of the rest: every cent of a line ends up refunded, canceled or still owed.
//! - **Refund money.** Fulfilled units (`return`/`no_restock`) are refunded pro rata of
//!   what is left unrefunded on the line: `round(left × q / units_left)`, so the last unit
//!   takes the exact remainder and a line's refunds sum to exactly what it costs. Unfulfilled
//!   units (`cancel`) are a cancel of those units, and refund exactly what the cancel takes
//!   off the line. A refund with restock `cancel` never removes shipping from the order:
//!   shipping is refunded only when asked for (`Full`, or an amount excl. tax, its tax pro
//!   rata with the same last-remainder rule).
//! - **Restock default.** A refund line without a restock type gets `no_restock` when it
//!   fits in the fulfilled refundable units, else `cancel` when it fits in the unfulfilled
//!   ones. Lines with no fulfilment mode count as physical.
//! - **Capture** does not gate refunds (sellers without configurable capture never send it).
//!   A second capture is an error, not a no-op: it would be a second Fast call.
//! - **Partial cancels are not sent to Fast** (its cancel takes a whole order); to return
//!   money for unfulfilled units, refund them with restock `cancel`, which Fast sees as a
//!   refund with `order_lines`.
//! - **Refund body to Fast** follows the Magento integration: `amount` is the refund total
//!   (incl. tax and shipping), `tax_amount` all tax (lines and shipping), `shipping_amount`
//!   shipping incl. its tax. Quantities go out as int64 strings.
//! - **Fulfilment in the snapshot:** each line's `quantity_fulfilled` (an `OrderLine` field
//!   of the wire format) is set. The FULFILLMENT event's `fulfillment.status` is the order's
//!   status after the fulfilment (FULFILLED once everything shipped).
//! - **Ids.** The order must have its Fast id; every line must have an id (Fast gives them,
//!   create assigns them). A request naming a line twice is refused. Refund ids and
//!   external refund ids are unique per order; so are fulfilment ids.

mod audit;
mod cancel;
mod checks;
mod codes;
mod error;
mod fast;
mod fulfil;
mod ledger;
mod money;
mod payment;
mod refund;
#[cfg(test)]
mod tests;

pub use audit::{AuditAction, AuditEntry, Totals};
pub use cancel::{cancel, CancelOutcome, CancelRequest, CanceledLine, Cancellation, MoneyDelta};
pub use codes::{
    parse_cancel_reason, BusinessEventType, CancelReason, RefundMethod, RefundReason, RestockType,
    SeedCancelCode,
};
pub use error::ManageError;
pub use fast::{
    fast_refund_body, BusinessEventBody, CancelOrderBody, FulfillmentEvent, RefundOrderBody,
    RefundOrderLine, ShippingInfo, WireLine,
};
pub use fulfil::{capture, fulfil, FulfilOutcome, FulfilRequest, Fulfilment};
pub use ledger::{Ledger, LineLedger};
pub use payment::{payment, record_charge, Charge, Payment};
pub use refund::{
    calculation_for_total, refund_calculate, refund_create, Refund, RefundCalculation,
    RefundLineCalc, RefundLineRequest, RefundRequest, RefundTotals, ShippingRefund,
    ShippingRefundCalc,
};

use super::status::can_move;
use crate::protocol::{FastOrder, Id, OrderStatus};
use ledger::all_fulfilled;
use serde::{Deserialize, Serialize};

/// Longest free text (notes) accepted.
pub const MAX_NOTE_LEN: usize = 2000;
/// Longest short text (employee id, source, sub-reason, carrier, tracking number, ids).
pub const MAX_SHORT_LEN: usize = 255;

/// Who made a change and from where (the seed's `employeeId` and `source`: "CSR", "POS",
/// "cli", …). Both optional.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Actor {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub employee_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
}

/// A Fast line id and a quantity (cancel, fulfil and the answers' line lists).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineQuantity {
    pub line_id: Id,
    pub quantity: i64,
}

/// Optimistic concurrency: `if_match` is the version the caller last saw (`None`: no
/// check). A stale one is refused with the current version.
pub fn check_version(ledger: &Ledger, if_match: Option<u64>) -> Result<(), ManageError> {
    match if_match {
        Some(expected) if expected != ledger.version => Err(ManageError::VersionMismatch {
            current: ledger.version,
            expected,
        }),
        _ => Ok(()),
    }
}

/// The order's status; none or UNSPECIFIED count as a cart (as in checkout).
pub fn status_of(order: &FastOrder) -> OrderStatus {
    match order.status {
        None | Some(OrderStatus::Unspecified) => OrderStatus::Cart,
        Some(s) => s,
    }
}

pub(crate) fn fast_order_id(order: &FastOrder) -> Result<Id, ManageError> {
    order
        .id
        .clone()
        .filter(|id| !id.0.trim().is_empty())
        .ok_or(ManageError::MissingOrderId)
}

/// Whether the status machine lets the merchant cancel (units of) an order now.
pub(crate) fn cancel_allowed(status: OrderStatus, action: &'static str) -> Result<(), ManageError> {
    let why = match status {
        OrderStatus::Cart => {
            "a cart is the shopper's open checkout on Fast: there is no order or payment to \
             cancel yet, and Fast ends abandoned carts itself (delete)"
        }
        OrderStatus::Canceled => "it is already canceled",
        OrderStatus::Deleted => "Fast deleted it",
        _ if can_move(status, OrderStatus::Canceled) => return Ok(()),
        _ => {
            "cancel is only possible before fulfilment (PENDING, HOLD, BOOKED, PENDING_FULFILLMENT)"
        }
    };
    Err(ManageError::StatusForbids {
        action,
        status,
        why: why.into(),
    })
}

/// After units left the order (before fulfilment): nothing left → CANCELED; only
/// fulfilled units left → FULFILLED; else unchanged.
pub(crate) fn settle_status(order: &mut FastOrder, ledger: &Ledger) {
    if order.lines.iter().all(|l| l.quantity.0 == 0) {
        order.status = Some(OrderStatus::Canceled);
        return;
    }
    if all_fulfilled(order, ledger) {
        order.status = Some(OrderStatus::Fulfilled);
    }
}
