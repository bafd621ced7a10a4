//! The audit log: every change with its time, actor, record, and the order's status and
//! totals around it; each entry bumps the ledger's version.

use super::{status_of, Actor, Ledger};
use crate::protocol::{FastOrder, Money, OrderStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;

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
