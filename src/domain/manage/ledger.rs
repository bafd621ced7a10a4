//! The ledger: what order management knows about an order beyond its snapshot, per line
//! and for the order, and how it is brought up to date with the order.

use super::audit::AuditEntry;
use super::money::Refunded;
use super::payment::Charge;
use super::{status_of, Cancellation, Fulfilment, ManageError, Refund};
use crate::protocol::{FastOrder, Id, Money, OrderStatus};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

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
    pub(super) fn in_line_refunded(&self) -> (Decimal, Decimal) {
        (
            self.refunded_amount.0 - self.cancel_refunded_amount.0,
            self.refunded_tax.0 - self.cancel_refunded_tax.0,
        )
    }

    /// Refunds on units still on the line, for [`scale_line`](super::money::scale_line).
    pub(super) fn refunded_in_line(&self) -> Refunded {
        let (net, tax) = self.in_line_refunded();
        Refunded {
            units: self.refunded,
            net,
            tax,
        }
    }
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
    /// What Fast charged, recorded at conversion (absent for orders converted before).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub charge: Option<Charge>,
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

    pub(super) fn line_mut(&mut self, id: &Id) -> Option<&mut LineLedger> {
        self.lines.iter_mut().find(|l| &l.line_id == id)
    }

    /// Money refunded so far over all refunds (lines incl. tax, shipping incl. tax), less
    /// the parts that canceled unfulfilled units before capture (those are cancellations).
    pub fn total_refunded(&self) -> Money {
        Money(
            self.refunds
                .iter()
                .map(|r| r.calculation.totals.total.0 - r.canceled.0)
                .sum(),
        )
    }
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

/// Whether every unit left on the order is fulfilled per the ledger.
pub(crate) fn all_fulfilled(order: &FastOrder, ledger: &Ledger) -> bool {
    order.lines.iter().all(|l| {
        l.id.as_ref()
            .is_some_and(|id| fulfilled_of(ledger, id) >= l.quantity.0)
    })
}
