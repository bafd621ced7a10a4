//! The bodies of Fast's order-management calls (README "Order management"), built from our records. The
//! service posts them (through the outbox) as they are.

use super::codes::{BusinessEventType, CancelReason, RefundMethod, RefundReason};
use super::refund::Refund;
use super::{fast_order_id, ManageError};
use crate::protocol::{FastOrder, Id, Money, OrderStatus};
use serde::{Deserialize, Serialize};

/// `POST /v1/external/orders/{order_id}`: cancel the whole order.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CancelOrderBody {
    pub order_id: Id,
    pub reason: CancelReason,
    pub notes: String,
}

/// A Fast line reference with an int64 quantity (written as a string, as Fast's own
/// outbound examples do).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct WireLine {
    pub id: Id,
    #[serde(with = "super::codes::int64_text")]
    pub quantity: i64,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundOrderLine {
    pub line: WireLine,
    pub reason: RefundReason,
}

/// `POST /v1/external/orders/{order_id}/refund`. As in the Magento integration: `amount`
/// is the whole refund (incl. tax and shipping), `tax_amount` all its tax, and
/// `shipping_amount` shipping incl. its tax.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct RefundOrderBody {
    pub order_id: Id,
    pub external_refund_id: String,
    pub reason: RefundReason,
    pub note: String,
    pub method: RefundMethod,
    pub amount: Money,
    pub tax_amount: Money,
    pub shipping_amount: Money,
    pub order_lines: Vec<RefundOrderLine>,
}

/// `ShippingInfo` of a FULFILLMENT event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct ShippingInfo {
    /// The shipment plan holding every shipped line, when there is exactly one.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub plan_id: Option<Id>,
    pub tracking_number: String,
    pub carrier: String,
    /// `YYYY-MM-DD`, or empty when unknown (as Magento sent it).
    pub estimated_delivery_date: String,
    pub order_lines: Vec<WireLine>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfillmentEvent {
    pub order_id: Id,
    pub shipment: ShippingInfo,
    pub status: OrderStatus,
}

/// `POST /v1/external/orders/{order_id}/business_event`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct BusinessEventBody {
    pub order_id: Id,
    pub event_type: BusinessEventType,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub fulfillment: Option<FulfillmentEvent>,
}

/// Fast's refund call for a recorded refund.
pub fn fast_refund_body(
    order: &FastOrder,
    refund: &Refund,
) -> Result<RefundOrderBody, ManageError> {
    let calc = &refund.calculation;
    Ok(RefundOrderBody {
        order_id: fast_order_id(order)?,
        external_refund_id: refund.external_refund_id.clone(),
        reason: refund.reason,
        note: refund.note.clone().unwrap_or_default(),
        method: refund.method,
        amount: calc.totals.total,
        tax_amount: calc.totals.tax,
        shipping_amount: calc.shipping.amount_incl_tax,
        order_lines: calc
            .lines
            .iter()
            .map(|l| RefundOrderLine {
                line: WireLine {
                    id: l.line_id.clone(),
                    quantity: l.quantity,
                },
                reason: l.reason,
            })
            .collect(),
    })
}
