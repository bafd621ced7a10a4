//! The payment ledger of an order: what Fast charged, whether the payment was captured, and
//! where every cent of the charge went since. Each cent is exactly one of
//!
//! - **kept**: still owed by the shopper and not refunded (the order's total now, less what
//!   was refunded on units still on it and on shipping);
//! - **canceled**: no longer owed, taken off the order by a cancel, or by a refund of
//!   unfulfilled units before capture (a cancel of those units, recorded as one);
//! - **refunded**: returned to the shopper (refunds of fulfilled units and shipping, and
//!   after capture refunds of unfulfilled units).
//!
//! So `charged = kept + canceled + refunded`, and a refund may return at most
//! `refundable = charged − canceled − refunded`.

use super::ledger::Ledger;
use super::{status_of, ManageError};
use crate::protocol::{FastOrder, Money, OrderStatus};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

/// What Fast charged, recorded when the cart became an order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Charge {
    /// The order's total at conversion.
    pub amount: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency_code: Option<String>,
    pub at_ms: u64,
}

/// The payment ledger as the merchant sees it (order answers, the console).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Payment {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub currency_code: Option<String>,
    /// What Fast charged. For an order converted before charges were recorded, worked out
    /// as `kept + canceled + refunded` (and `charged_at_ms` is absent).
    pub charged: Money,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charged_at_ms: Option<u64>,
    /// Whether the clear-to-collect business event was applied.
    pub captured: bool,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub captured_at_ms: Option<u64>,
    /// No longer owed: cancels, and refunds of unfulfilled units before capture.
    pub canceled: Money,
    /// Returned to the shopper.
    pub refunded: Money,
    /// Kept by the merchant: the order's total now, less refunds on what is still on it.
    pub kept: Money,
    /// What refunds may still return: `charged − canceled − refunded`.
    pub refundable: Money,
}

/// The payment ledger of `order` with its management `ledger`.
pub fn payment(order: &FastOrder, ledger: &Ledger) -> Payment {
    let canceled: Decimal = ledger
        .cancellations
        .iter()
        .map(|c| c.cancel_total.total.0)
        .sum();
    let refunded = ledger.total_refunded().0;
    let kept = kept(order, ledger);
    let charged = ledger
        .charge
        .as_ref()
        .map_or(kept + canceled + refunded, |c| c.amount.0);
    Payment {
        currency_code: ledger
            .charge
            .as_ref()
            .and_then(|c| c.currency_code.clone())
            .or_else(|| order.currency_code.clone()),
        charged: Money(charged),
        charged_at_ms: ledger.charge.as_ref().map(|c| c.at_ms),
        captured: ledger.captured,
        captured_at_ms: ledger.captured_at_ms,
        canceled: Money(canceled),
        refunded: Money(refunded),
        kept: Money(kept),
        refundable: Money(charged - canceled - refunded),
    }
}

/// The order's total less what was refunded on the units still on it and on shipping.
fn kept(order: &FastOrder, ledger: &Ledger) -> Decimal {
    let in_lines: Decimal = ledger
        .lines
        .iter()
        .map(|l| {
            let (net, tax) = l.in_line_refunded();
            net + tax
        })
        .sum();
    order.total_amount.unwrap_or_default().0
        - in_lines
        - ledger.shipping_refunded.0
        - ledger.shipping_tax_refunded.0
}

/// Records what Fast charged when `after` is the conversion of the cart `before` (once: a
/// ledger that has a charge keeps it).
pub fn record_charge(ledger: &mut Ledger, before: &FastOrder, after: &FastOrder, now_ms: u64) {
    let converted = |o: &FastOrder| {
        !matches!(
            status_of(o),
            OrderStatus::Cart | OrderStatus::Deleted | OrderStatus::Unspecified
        )
    };
    if ledger.charge.is_none() && !converted(before) && converted(after) {
        ledger.charge = Some(Charge {
            amount: after.total_amount.unwrap_or_default(),
            currency_code: after.currency_code.clone(),
            at_ms: now_ms,
        });
    }
}

/// A refund returning `amount` must fit in what is refundable.
pub(crate) fn check_refundable(
    order: &FastOrder,
    ledger: &Ledger,
    amount: Decimal,
) -> Result<(), ManageError> {
    let p = payment(order, ledger);
    if amount > p.refundable.0 {
        return Err(ManageError::ExceedsPaid {
            what: "what Fast charged less what was canceled and refunded".into(),
            refunded: Money(p.refunded.0 + amount),
            paid: Money(p.charged.0 - p.canceled.0),
        });
    }
    Ok(())
}
