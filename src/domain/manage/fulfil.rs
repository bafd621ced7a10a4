//! Fulfilment (the FULFILLMENT business event) and capture (CLEAR_TO_COLLECT_PAYMENT).

use super::audit::{commit, to_detail, AuditAction};
use super::checks::{check_actor, check_text, unfulfilled_targets, UnitAction};
use super::codes::BusinessEventType;
use super::fast::{BusinessEventBody, FulfillmentEvent, ShippingInfo, WireLine};
use super::ledger::{all_fulfilled, reconcile, Ledger};
use super::{fast_order_id, status_of, Actor, LineQuantity, ManageError, MAX_SHORT_LEN};
use crate::protocol::{FastOrder, Id, OrderStatus};
use serde::{Deserialize, Serialize};
use serde_json::Value;

/// A shipment (or a digital delivery) of some or all remaining units.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfilRequest {
    /// `None`: every unit not yet fulfilled or canceled.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub lines: Option<Vec<LineQuantity>>,
    #[serde(default)]
    pub carrier: String,
    #[serde(default)]
    pub tracking_number: String,
    /// `YYYY-MM-DD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_delivery_date: Option<String>,
    #[serde(default, flatten)]
    pub actor: Actor,
}

/// A recorded fulfilment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Fulfilment {
    pub id: String,
    /// The ledger version it produced.
    pub version: u64,
    pub created_at_ms: u64,
    pub lines: Vec<LineQuantity>,
    pub carrier: String,
    pub tracking_number: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub estimated_delivery_date: Option<String>,
    pub actor: Actor,
    /// Whether this fulfilment shipped everything left (the order is now FULFILLED).
    pub complete: bool,
}

/// What a fulfilment did and what to tell Fast.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FulfilOutcome {
    pub fulfilment: Fulfilment,
    /// The `ShippingInfo` of the event (also inside `event`).
    pub shipping_info: ShippingInfo,
    /// The FULFILLMENT business event to post to Fast.
    pub event: BusinessEventBody,
    /// The order's status afterwards.
    pub status: OrderStatus,
}

/// Fulfils the given line quantities, or everything left. Only from BOOKED or
/// PENDING_FULFILLMENT; once every remaining unit is fulfilled the order is FULFILLED.
/// Sets each line's `quantity_fulfilled` in the snapshot.
pub fn fulfil(
    order: &FastOrder,
    ledger: &Ledger,
    req: &FulfilRequest,
    now_ms: u64,
    fulfilment_id: &str,
) -> Result<(FastOrder, Ledger, FulfilOutcome), ManageError> {
    let order_id = fast_order_id(order)?;
    fulfil_allowed(status_of(order))?;
    check_request(ledger, req, fulfilment_id)?;

    let mut led = reconcile(order, ledger)?;
    let targets = unfulfilled_targets(order, &led, req.lines.as_deref(), UnitAction::Fulfil)?;
    let mut after = order.clone();
    let shipped = ship(&mut after, &mut led, targets);
    let complete = all_fulfilled(&after, &led);
    if complete {
        after.status = Some(OrderStatus::Fulfilled);
    }
    let status_after = status_of(&after);

    let shipping_info = shipping_info(&after, req, &shipped);
    let record = Fulfilment {
        id: fulfilment_id.into(),
        version: led.version + 1,
        created_at_ms: now_ms,
        lines: shipped,
        carrier: req.carrier.clone(),
        tracking_number: req.tracking_number.clone(),
        estimated_delivery_date: req.estimated_delivery_date.clone(),
        actor: req.actor.clone(),
        complete,
    };
    commit(
        &mut led,
        order,
        &after,
        AuditAction::Fulfil,
        &req.actor,
        to_detail(&record),
        now_ms,
    );
    led.fulfilments.push(record.clone());
    let event = BusinessEventBody {
        order_id: order_id.clone(),
        event_type: BusinessEventType::Fulfillment,
        fulfillment: Some(FulfillmentEvent {
            order_id,
            shipment: shipping_info.clone(),
            status: status_after,
        }),
    };
    let outcome = FulfilOutcome {
        fulfilment: record,
        shipping_info,
        event,
        status: status_after,
    };
    Ok((after, led, outcome))
}

/// Fulfilment is possible from BOOKED and PENDING_FULFILLMENT only.
fn fulfil_allowed(status: OrderStatus) -> Result<(), ManageError> {
    let why = match status {
        OrderStatus::Booked | OrderStatus::PendingFulfillment => return Ok(()),
        OrderStatus::Cart => "a cart has not been bought yet",
        OrderStatus::Pending => "it is still awaiting payment",
        OrderStatus::Hold => "it is on hold",
        OrderStatus::Fulfilled | OrderStatus::Complete => "everything is already fulfilled",
        OrderStatus::Canceled => "it is canceled",
        OrderStatus::Deleted | OrderStatus::Unspecified => "Fast deleted it",
    };
    Err(ManageError::StatusForbids {
        action: "fulfil",
        status,
        why: why.into(),
    })
}

/// The fulfilment id (given, short, new on this order) and the request's texts and date.
fn check_request(
    ledger: &Ledger,
    req: &FulfilRequest,
    fulfilment_id: &str,
) -> Result<(), ManageError> {
    if fulfilment_id.trim().is_empty() {
        return Err(ManageError::InvalidField {
            field: "fulfilment_id".into(),
            message: "must not be empty".into(),
        });
    }
    check_text("fulfilment_id", Some(fulfilment_id), MAX_SHORT_LEN)?;
    if ledger.fulfilments.iter().any(|f| f.id == fulfilment_id) {
        return Err(ManageError::DuplicateId {
            kind: "fulfilment",
            id: fulfilment_id.into(),
        });
    }
    check_actor(&req.actor)?;
    check_text("carrier", Some(&req.carrier), MAX_SHORT_LEN)?;
    check_text("tracking_number", Some(&req.tracking_number), MAX_SHORT_LEN)?;
    match &req.estimated_delivery_date {
        Some(date) if !is_date(date) => Err(ManageError::InvalidDate {
            value: date.clone(),
        }),
        _ => Ok(()),
    }
}

/// Counts the target units as fulfilled in the ledger and sets each line's
/// `quantity_fulfilled` in the snapshot. Returns what shipped.
fn ship(
    after: &mut FastOrder,
    led: &mut Ledger,
    targets: Vec<(usize, Id, i64)>,
) -> Vec<LineQuantity> {
    let mut shipped = Vec::with_capacity(targets.len());
    for (idx, id, quantity) in targets {
        let Some(entry) = led.line_mut(&id) else {
            continue;
        };
        entry.fulfilled += quantity;
        let total = entry.fulfilled;
        if let Some(line) = after.lines.get_mut(idx) {
            line.extra
                .insert("quantity_fulfilled".into(), Value::from(total));
        }
        shipped.push(LineQuantity {
            line_id: id,
            quantity,
        });
    }
    shipped
}

/// The shipment as Fast's FULFILLMENT event describes it.
fn shipping_info(after: &FastOrder, req: &FulfilRequest, shipped: &[LineQuantity]) -> ShippingInfo {
    ShippingInfo {
        plan_id: single_plan(after, shipped),
        tracking_number: req.tracking_number.clone(),
        carrier: req.carrier.clone(),
        estimated_delivery_date: req.estimated_delivery_date.clone().unwrap_or_default(),
        order_lines: shipped
            .iter()
            .map(|l| WireLine {
                id: l.line_id.clone(),
                quantity: l.quantity,
            })
            .collect(),
    }
}

/// Tells Fast to collect the payment (CLEAR_TO_COLLECT_PAYMENT), once. The order itself is
/// unchanged; the ledger records `captured`. A second capture is refused
/// ([`ManageError::AlreadyCaptured`]) rather than ignored: it would be a second Fast call.
pub fn capture(
    order: &FastOrder,
    ledger: &Ledger,
    actor: &Actor,
    now_ms: u64,
) -> Result<(FastOrder, Ledger, BusinessEventBody), ManageError> {
    let order_id = fast_order_id(order)?;
    let status = status_of(order);
    let why = match status {
        OrderStatus::Cart | OrderStatus::Unspecified => Some("a cart has no payment yet"),
        OrderStatus::Canceled => Some("it is canceled"),
        OrderStatus::Deleted => Some("Fast deleted it"),
        _ => None,
    };
    if let Some(why) = why {
        return Err(ManageError::StatusForbids {
            action: "capture",
            status,
            why: why.into(),
        });
    }
    if ledger.captured {
        return Err(ManageError::AlreadyCaptured {
            at_ms: ledger.captured_at_ms.unwrap_or_default(),
        });
    }
    check_actor(actor)?;
    let mut led = ledger.clone();
    led.captured = true;
    led.captured_at_ms = Some(now_ms);
    let detail = serde_json::json!({ "captured": true });
    commit(
        &mut led,
        order,
        order,
        AuditAction::Capture,
        actor,
        detail,
        now_ms,
    );
    let body = BusinessEventBody {
        order_id,
        event_type: BusinessEventType::ClearToCollectPayment,
        fulfillment: None,
    };
    Ok((order.clone(), led, body))
}

/// The id of the one shipment plan holding every shipped line, if there is one.
fn single_plan(order: &FastOrder, shipped: &[LineQuantity]) -> Option<Id> {
    let mut found: Option<&Id> = None;
    for l in shipped {
        let plan = order
            .shipment_plans
            .iter()
            .find(|p| p.lines.iter().any(|r| r.id == l.line_id))?;
        let id = plan.id.as_ref()?;
        match found {
            Some(f) if f != id => return None,
            _ => found = Some(id),
        }
    }
    found.cloned()
}

/// Whether `text` is a real calendar date `YYYY-MM-DD`.
pub(crate) fn is_date(text: &str) -> bool {
    let b = text.as_bytes();
    if b.len() != 10 || b.get(4) != Some(&b'-') || b.get(7) != Some(&b'-') {
        return false;
    }
    let num = |range: std::ops::Range<usize>| -> Option<u32> {
        let part = text.get(range)?;
        if !part.bytes().all(|c| c.is_ascii_digit()) {
            return None;
        }
        part.parse().ok()
    };
    let (Some(y), Some(m), Some(d)) = (num(0..4), num(5..7), num(8..10)) else {
        return false;
    };
    let leap = (y % 4 == 0 && y % 100 != 0) || y % 400 == 0;
    let days = match m {
        1 | 3 | 5 | 7 | 8 | 10 | 12 => 31,
        4 | 6 | 9 | 11 => 30,
        2 if leap => 29,
        2 => 28,
        _ => return false,
    };
    y >= 1 && (1..=days).contains(&d)
}
