//! The `create` step: a new cart with one line.

use super::checks::{enum_name, id_value, list, quantity};
use super::session::Session;
use super::{INV_CONVERSION, INV_LINES};

use crate::protocol::OrderStatus;
use crate::tapes::compare;
use serde_json::{json, Value};

/// Creates the cart with one line `L-1`; replays the create when asked.
pub(super) async fn create_cart(s: &mut Session<'_>, replay: bool) -> Option<Value> {
    let rid = s.next_request_id();
    let body = json!({"type": "ENTITY_TYPE_ORDER", "app_id": s.opts.app_id,
        "request_id": {"value": rid},
        "order": {"is_cart": true, "order": {"id": {"value": s.fast_id},
            "order_type": "ORDER_TYPE_CART", "status": "ORDER_STATUS_CART", "bill_to": {},
            "lines": [s.line("L-1")]}}});
    let (answer, sent) = s.send("create", "create", &body, 200).await?;
    s.order_checks("create", &answer, Some(&rid));
    if let Some(order) = answer.pointer("/order/order") {
        let lines = list(order, "lines");
        let l1 = lines
            .iter()
            .filter(|l| id_value(l.get("id")) == Some("L-1"))
            .count();
        let qty = lines
            .iter()
            .find(|l| id_value(l.get("id")) == Some("L-1"))
            .and_then(quantity);
        s.require(
            "create",
            INV_LINES,
            lines.len() == 1 && l1 == 1 && qty == Some(1),
            format!(
                "one line L-1 × 1 was sent; the cart has {} lines (L-1 quantity {qty:?})",
                lines.len()
            ),
        );
        let status = enum_name(
            order.get("status"),
            OrderStatus::from_name,
            OrderStatus::from_number,
        );
        s.require(
            "create",
            INV_CONVERSION,
            matches!(status, Some(OrderStatus::Cart) | None),
            format!(
                "a new cart must be ORDER_STATUS_CART, got {}",
                compare::show(order.get("status"))
            ),
        );
    }
    s.last_order = answer.pointer("/order/order").cloned();
    if replay {
        s.replay_check("create", &sent, &answer).await;
    }
    Some(answer)
}
