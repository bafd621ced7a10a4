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
//!    `version` field; `None` skips the check. Map [`ManageError::VersionMismatch`] to 409
//!    and return `current`;
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
//!    errors map through [`ManageError::http_status`].
//!
//! Reads (`GET` an order's management state) just return the stored pair. A retry with the
//! same request id must be answered from the idempotency record, not re-applied (a second
//! capture, say, is refused here).
//!
//! # Decisions where the issue is silent
//!
//! - **Statuses.** Cancel: PENDING, HOLD, BOOKED, PENDING_FULFILLMENT (contract §4:
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

mod cancel;
mod codes;
mod fast;
mod fulfil;
mod refund;
#[cfg(test)]
mod tests;

pub use cancel::{cancel, CancelOutcome, CancelRequest, CanceledLine, Cancellation, MoneyDelta};
pub use codes::{
    parse_cancel_reason, BusinessEventType, CancelReason, RefundMethod, RefundReason, RestockType,
    SeedCancelCode,
};
pub use fast::{
    fast_refund_body, BusinessEventBody, CancelOrderBody, FulfillmentEvent, RefundOrderBody,
    RefundOrderLine, ShippingInfo, WireLine,
};
pub use fulfil::{capture, fulfil, FulfilOutcome, FulfilRequest, Fulfilment};
pub use refund::{
    calculation_for_total, refund_calculate, refund_create, Refund, RefundCalculation,
    RefundLineCalc, RefundLineRequest, RefundRequest, RefundTotals, ShippingRefund,
    ShippingRefundCalc,
};

use super::pricing::{line_subtotal, round, set_line_money, set_totals, Sums};
use super::status::can_move;
use crate::protocol::{FastOrder, Id, Money, OrderLine, OrderStatus};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

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

/// The order's totals at one moment (audit before/after).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Totals {
    pub sub_total: Money,
    pub total_discounts: Money,
    pub total_tax: Money,
    pub total_shipping: Money,
    pub total_amount: Money,
}

impl Totals {
    pub fn of(order: &FastOrder) -> Totals {
        Totals {
            sub_total: order.sub_total.unwrap_or_default(),
            total_discounts: order.total_discounts.unwrap_or_default(),
            total_tax: order.total_tax.unwrap_or_default(),
            total_shipping: order.total_shipping.unwrap_or_default(),
            total_amount: order.total_amount.unwrap_or_default(),
        }
    }
}

/// What happened to one line (by Fast line id).
///
/// Invariants: the order line's `quantity == ordered − canceled`;
/// `refunded ≤ fulfilled ≤ ordered − canceled`; `returned ≤ refunded`;
/// `refund_canceled ≤ canceled`.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LineLedger {
    pub line_id: Id,
    /// Quantity when order management first saw the line.
    pub ordered: i64,
    /// Units taken off the order: by cancels and by refunds with restock `cancel`.
    pub canceled: i64,
    /// Of `canceled`, the units whose money was refunded (restock `cancel`).
    pub refund_canceled: i64,
    pub fulfilled: i64,
    /// Fulfilled units refunded (restock `return` or `no_restock`).
    pub refunded: i64,
    /// Of `refunded`, the units restocked as returns.
    pub returned: i64,
    /// All money refunded on this line, excl. tax (both kinds of refund).
    pub refunded_amount: Money,
    /// All tax refunded on this line.
    pub refunded_tax: Money,
    /// Of `refunded_amount` / `refunded_tax`, the part for refund-canceled units.
    pub cancel_refunded_amount: Money,
    pub cancel_refunded_tax: Money,
}

impl LineLedger {
    /// Money refunded for units still on the line (excl. tax, tax).
    fn in_line_refunded(&self) -> (Decimal, Decimal) {
        (
            self.refunded_amount.0 - self.cancel_refunded_amount.0,
            self.refunded_tax.0 - self.cancel_refunded_tax.0,
        )
    }

    /// Refunds on units still on the line, for [`scale_line`].
    fn refunded_in_line(&self) -> Refunded {
        let (net, tax) = self.in_line_refunded();
        Refunded {
            units: self.refunded,
            net,
            tax,
        }
    }
}

/// Which action an audit entry records.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AuditAction {
    Cancel,
    Refund,
    Fulfil,
    Capture,
}

/// One change: when, who, what (the action's record as JSON), totals and status around it.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    /// The ledger version this change produced.
    pub version: u64,
    pub at_ms: u64,
    pub actor: Actor,
    pub action: AuditAction,
    pub detail: Value,
    pub status_before: OrderStatus,
    pub status_after: OrderStatus,
    pub totals_before: Totals,
    pub totals_after: Totals,
}

/// Everything order management knows about one order beyond its snapshot.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Ledger {
    /// Bumped by every successful action; 0 for an order never managed.
    pub version: u64,
    #[serde(default)]
    pub lines: Vec<LineLedger>,
    /// Shipping refunded, excl. tax.
    #[serde(default)]
    pub shipping_refunded: Money,
    #[serde(default)]
    pub shipping_tax_refunded: Money,
    #[serde(default)]
    pub cancellations: Vec<Cancellation>,
    #[serde(default)]
    pub refunds: Vec<Refund>,
    #[serde(default)]
    pub fulfilments: Vec<Fulfilment>,
    #[serde(default)]
    pub captured: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_at_ms: Option<u64>,
    #[serde(default)]
    pub audit: Vec<AuditEntry>,
}

impl Ledger {
    /// Whether order management never touched the order.
    pub fn is_untouched(&self) -> bool {
        self == &Ledger::default()
    }

    pub fn line(&self, id: &Id) -> Option<&LineLedger> {
        self.lines.iter().find(|l| &l.line_id == id)
    }

    fn line_mut(&mut self, id: &Id) -> Option<&mut LineLedger> {
        self.lines.iter_mut().find(|l| &l.line_id == id)
    }

    /// Money refunded so far over all refunds (lines incl. tax, shipping incl. tax).
    pub fn total_refunded(&self) -> Money {
        Money(
            self.refunds
                .iter()
                .map(|r| r.calculation.totals.total.0)
                .sum(),
        )
    }
}

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
    #[error("payment was already cleared for capture (at {at_ms} ms)")]
    AlreadyCaptured { at_ms: u64 },
}

impl ManageError {
    /// The HTTP status the service should answer with: 400 malformed input, 409 a conflict
    /// with the order's state (a stale `If-Match` too), 422 well-formed but not possible.
    pub fn http_status(&self) -> u16 {
        use ManageError::*;
        match self {
            VersionMismatch { .. }
            | StatusForbids { .. }
            | AlreadyCaptured { .. }
            | LedgerOutOfSync { .. }
            | RefundMismatch { .. }
            | DuplicateId { .. } => 409,
            InvalidQuantity { .. }
            | InvalidDate { .. }
            | InvalidField { .. }
            | NegativeAmount { .. }
            | NoLines { .. }
            | DuplicateLine { .. }
            | EmptyRefund => 400,
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
            | NothingToFulfil => 422,
        }
    }
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

// ---- shared helpers ----------------------------------------------------------------------

/// `round(amount × part / whole)`; 0 when `whole` is not positive.
pub(crate) fn pro_rata(amount: Decimal, part: i64, whole: i64) -> Decimal {
    if whole <= 0 {
        return Decimal::ZERO;
    }
    round(amount * Decimal::from(part) / Decimal::from(whole))
}

/// A share of what is left, by the last-remainder rule: `left` itself when `part` is all
/// of `whole` (so the shares sum exactly to what there was), else `round(left × part /
/// whole)`; 0 when `whole` is not positive.
pub(crate) fn share_of_left(left: Decimal, part: Decimal, whole: Decimal) -> Decimal {
    if part == whole {
        left
    } else if whole > Decimal::ZERO {
        round(left * part / whole)
    } else {
        Decimal::ZERO
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

/// Money of a line as it stands.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LineMoney {
    pub subtotal: Decimal,
    pub discount: Decimal,
    pub tax: Decimal,
}

impl LineMoney {
    pub fn of(line: &OrderLine) -> LineMoney {
        let subtotal = line
            .subtotal_amount
            .map_or_else(|| line_subtotal(line), |m| m.0);
        LineMoney {
            subtotal,
            discount: line.line_discount_amount.unwrap_or_default().0,
            tax: line.tax_amount.unwrap_or_default().0,
        }
    }

    pub fn net(&self) -> Decimal {
        self.subtotal - self.discount
    }
}

/// The tax on shipping: the order's tax minus its lines' tax.
pub(crate) fn shipping_tax_of(order: &FastOrder) -> Decimal {
    let lines: Decimal = order.lines.iter().map(|l| LineMoney::of(l).tax).sum();
    order.total_tax.unwrap_or_default().0 - lines
}

/// The ledger brought up to date with the order: a line never seen gets an entry; a line
/// whose quantity no longer matches is refused; if Fast put the order in FULFILLED or
/// COMPLETE, every remaining unit counts as fulfilled.
pub(crate) fn reconcile(order: &FastOrder, ledger: &Ledger) -> Result<Ledger, ManageError> {
    let mut led = ledger.clone();
    let done = matches!(
        status_of(order),
        OrderStatus::Fulfilled | OrderStatus::Complete
    );
    for (index, line) in order.lines.iter().enumerate() {
        let id = line
            .id
            .clone()
            .filter(|id| !id.0.is_empty())
            .ok_or(ManageError::LineWithoutId { index })?;
        let qty = line.quantity.0;
        let at = match led.lines.iter().position(|l| l.line_id == id) {
            Some(at) => at,
            None => {
                led.lines.push(LineLedger {
                    line_id: id.clone(),
                    ordered: qty,
                    ..Default::default()
                });
                led.lines.len() - 1
            }
        };
        let Some(entry) = led.lines.get_mut(at) else {
            continue;
        };
        if entry.ordered - entry.canceled != qty {
            return Err(ManageError::LedgerOutOfSync {
                line: id.0,
                order_quantity: qty,
                ledger_quantity: entry.ordered - entry.canceled,
            });
        }
        if done && entry.fulfilled < qty {
            entry.fulfilled = qty;
        }
    }
    Ok(led)
}

/// Fulfilled units of a line per the ledger.
pub(crate) fn fulfilled_of(ledger: &Ledger, id: &Id) -> i64 {
    ledger.line(id).map_or(0, |l| l.fulfilled)
}

/// What a line lost when scaled down (all positive for a reduction).
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct LineDelta {
    pub subtotal: Decimal,
    pub discount: Decimal,
    pub tax: Decimal,
}

impl LineDelta {
    pub fn net(&self) -> Decimal {
        self.subtotal - self.discount
    }
}

/// Refunds already made on units that stay on a line: units, money excl. tax, tax.
#[derive(Debug, Clone, Copy, Default)]
pub(crate) struct Refunded {
    pub units: i64,
    pub net: Decimal,
    pub tax: Decimal,
}

/// Reduces line `idx` to `remaining` units without looking prices up: subtotal from the
/// unit price, discount and tax scaled by `remaining / current` (half away from zero), the
/// line's discount entries re-split and the order's coupon totals and plan references
/// adjusted. On a line with refunds, the refunded units keep exactly what was refunded on
/// them and the other staying units their pro-rata share of the rest, so every cent ends up
/// refunded, canceled or still on the line. Order totals are not touched
/// ([`recompute_totals`]).
pub(crate) fn scale_line(
    order: &mut FastOrder,
    idx: usize,
    remaining: i64,
    refunded: Refunded,
) -> LineDelta {
    let Some(line) = order.lines.get_mut(idx) else {
        return LineDelta::default();
    };
    let current = line.quantity.0;
    let before = LineMoney::of(line);
    let subtotal = match line.unit_price {
        Some(p) => round(p.0 * Decimal::from(remaining)),
        None => pro_rata(before.subtotal, remaining, current),
    };
    let (discount, tax) = if refunded.units <= 0 {
        (
            pro_rata(before.discount, remaining, current).min(subtotal),
            pro_rata(before.tax, remaining, current),
        )
    } else {
        let units = current - refunded.units;
        let kept = remaining - refunded.units;
        let net = refunded.net + pro_rata(before.net() - refunded.net, kept, units);
        let tax = refunded.tax + pro_rata(before.tax - refunded.tax, kept, units);
        ((subtotal - net).max(Decimal::ZERO).min(subtotal), tax)
    };

    // Re-split the line's coupon entries over the new discount.
    let weights: Vec<Decimal> = line
        .discounts
        .iter()
        .map(|d| d.total_amount.unwrap_or_default().0)
        .collect();
    let mut coupon_deltas: Vec<(String, Decimal)> = Vec::new();
    if weights.iter().sum::<Decimal>() > Decimal::ZERO {
        let shares = super::pricing::allocate(discount, &weights);
        for (entry, share) in line.discounts.iter_mut().zip(shares) {
            let old = entry.total_amount.unwrap_or_default().0;
            if old != share {
                coupon_deltas.push((entry.code.clone(), old - share));
                entry.total_amount = Some(Money(share));
            }
        }
    }

    line.quantity.0 = remaining;
    set_line_money(line, subtotal, discount, tax);
    let line_id = line.id.clone();

    for (code, delta) in coupon_deltas {
        if let Some(c) = order.coupons.iter_mut().find(|c| c.code == code) {
            if let Some(total) = c.total_amount.as_mut() {
                total.0 -= delta;
            }
        }
    }
    if let Some(id) = line_id {
        for r in order
            .shipment_plans
            .iter_mut()
            .flat_map(|p| p.lines.iter_mut())
            .filter(|r| r.id == id && r.quantity.is_some())
        {
            r.quantity = Some(crate::protocol::Int64(remaining));
        }
    }

    LineDelta {
        subtotal: before.subtotal - subtotal,
        discount: before.discount - discount,
        tax: before.tax - tax,
    }
}

/// Rewrites the order's totals from its lines plus the given shipping and shipping tax.
pub(crate) fn recompute_totals(order: &mut FastOrder, shipping: Decimal, shipping_tax: Decimal) {
    let mut sums = Sums {
        shipping,
        shipping_tax,
        ..Sums::default()
    };
    for line in &order.lines {
        let m = LineMoney::of(line);
        sums.sub_total += m.subtotal;
        sums.discounts += m.discount;
        sums.line_tax += m.tax;
    }
    set_totals(order, sums);
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

/// Whether every unit left on the order is fulfilled per the ledger.
pub(crate) fn all_fulfilled(order: &FastOrder, ledger: &Ledger) -> bool {
    order.lines.iter().all(|l| {
        l.id.as_ref()
            .is_some_and(|id| fulfilled_of(ledger, id) >= l.quantity.0)
    })
}

/// Bumps the version and appends the audit entry. Returns the new version.
pub(crate) fn commit(
    ledger: &mut Ledger,
    before: &FastOrder,
    after: &FastOrder,
    action: AuditAction,
    actor: &Actor,
    detail: Value,
    now_ms: u64,
) -> u64 {
    ledger.version += 1;
    ledger.audit.push(AuditEntry {
        version: ledger.version,
        at_ms: now_ms,
        actor: actor.clone(),
        action,
        detail,
        status_before: status_of(before),
        status_after: status_of(after),
        totals_before: Totals::of(before),
        totals_after: Totals::of(after),
    });
    ledger.version
}

/// A record as JSON for the audit log.
pub(crate) fn to_detail<T: Serialize>(record: &T) -> Value {
    serde_json::to_value(record).unwrap_or(Value::Null)
}

/// Refuses over-long text.
pub(crate) fn check_text(field: &str, value: Option<&str>, max: usize) -> Result<(), ManageError> {
    match value {
        Some(v) if v.chars().count() > max => Err(ManageError::InvalidField {
            field: field.into(),
            message: format!("longer than {max} characters"),
        }),
        _ => Ok(()),
    }
}

pub(crate) fn check_actor(actor: &Actor) -> Result<(), ManageError> {
    check_text("employee_id", actor.employee_id.as_deref(), MAX_SHORT_LEN)?;
    check_text("source", actor.source.as_deref(), MAX_SHORT_LEN)
}

/// Finds the order line with this id.
pub(crate) fn line_index(order: &FastOrder, id: &Id) -> Result<usize, ManageError> {
    order
        .lines
        .iter()
        .position(|l| l.id.as_ref() == Some(id))
        .ok_or_else(|| ManageError::UnknownLine { line: id.0.clone() })
}

/// What happens to the units [`unfulfilled_targets`] picks.
#[derive(Debug, Clone, Copy)]
pub(crate) enum UnitAction {
    Cancel,
    Fulfil,
}

impl UnitAction {
    fn name(self) -> &'static str {
        match self {
            UnitAction::Cancel => "cancel",
            UnitAction::Fulfil => "fulfil",
        }
    }

    fn nothing_left(self) -> ManageError {
        match self {
            UnitAction::Cancel => ManageError::NothingToCancel,
            UnitAction::Fulfil => ManageError::NothingToFulfil,
        }
    }

    fn exceeds(self, line: &Id, requested: i64, available: i64) -> ManageError {
        let (line, available) = (line.0.clone(), available.max(0));
        match self {
            UnitAction::Cancel => ManageError::ExceedsCancelable {
                line,
                requested,
                available,
            },
            UnitAction::Fulfil => ManageError::ExceedsFulfillable {
                line,
                requested,
                available,
            },
        }
    }
}

/// `(line index, line id, quantity)` of the units a cancel or a fulfilment takes: the given
/// line quantities, or (`None`) every unit on the order not yet fulfilled. Each must fit in
/// what is left unfulfilled on its line.
pub(crate) fn unfulfilled_targets(
    order: &FastOrder,
    ledger: &Ledger,
    lines: Option<&[LineQuantity]>,
    action: UnitAction,
) -> Result<Vec<(usize, Id, i64)>, ManageError> {
    let left = |idx: usize, id: &Id| {
        order.lines.get(idx).map_or(0, |l| l.quantity.0) - fulfilled_of(ledger, id)
    };
    let Some(lines) = lines else {
        let all: Vec<(usize, Id, i64)> = order
            .lines
            .iter()
            .enumerate()
            .filter_map(|(idx, l)| {
                let id = l.id.clone()?;
                let n = left(idx, &id);
                (n > 0).then_some((idx, id, n))
            })
            .collect();
        if all.is_empty() {
            return Err(action.nothing_left());
        }
        return Ok(all);
    };
    if lines.is_empty() {
        return Err(ManageError::NoLines {
            action: action.name(),
        });
    }
    check_unique(lines.iter().map(|l| &l.line_id))?;
    let mut out = Vec::with_capacity(lines.len());
    for l in lines {
        let idx = line_index(order, &l.line_id)?;
        if l.quantity < 1 {
            return Err(ManageError::InvalidQuantity {
                line: l.line_id.0.clone(),
                quantity: l.quantity,
            });
        }
        let n = left(idx, &l.line_id);
        if l.quantity > n {
            return Err(action.exceeds(&l.line_id, l.quantity, n));
        }
        out.push((idx, l.line_id.clone(), l.quantity));
    }
    Ok(out)
}

/// Refuses a line named twice.
pub(crate) fn check_unique<'a>(ids: impl Iterator<Item = &'a Id>) -> Result<(), ManageError> {
    let mut seen: Vec<&Id> = Vec::new();
    for id in ids {
        if seen.contains(&id) {
            return Err(ManageError::DuplicateLine { line: id.0.clone() });
        }
        seen.push(id);
    }
    Ok(())
}
