//! The `update` steps: billing and shipping addresses, a shipping option, an added item,
//! conversion to an order, and the status updates after it.

use super::checks::{enum_name, id_value, list, order_of};
use super::session::Session;
use super::{INV_CONVERSION, INV_LINES, INV_OPTION_SELECTED, INV_SHIPMENT_PLANS};

use crate::protocol::{OrderStatus, OrderType, SegmentType};
use crate::tapes::compare;
use serde_json::{json, Value};

pub(super) async fn bill_to(s: &mut Session<'_>, replay: bool) -> Option<Value> {
    let addr = s.address("CA", "San Francisco", "94105");
    s.update(
        "update_bill_to",
        json!({"bill_to": addr}),
        &[SegmentType::BillingAddress],
        replay,
    )
    .await
}

pub(super) async fn shipments(s: &mut Session<'_>) -> Option<Value> {
    let addr = s.address("NY", "New York", "10118");
    let line_refs: Vec<Value> = s
        .last_order
        .as_ref()
        .map(|o| list(o, "lines"))
        .unwrap_or_default()
        .iter()
        .filter_map(|l| {
            Some(json!({"id": {"value": id_value(l.get("id"))?},
                        "quantity": l.get("quantity").cloned().unwrap_or(json!(1))}))
        })
        .collect();
    let answer = s
        .update(
            "update_shipment_contact",
            json!({"shipments": [{"ship_to": addr, "line_refs": line_refs}]}),
            &[SegmentType::ShippingAddress],
            false,
        )
        .await?;
    let order = order_of(&answer);
    let plans = list(&order, "shipment_plans");
    let mut problems = Vec::new();
    if plans.is_empty() {
        problems.push("no shipment_plans after a shipping address".to_string());
    }
    for (p, plan) in plans.iter().enumerate() {
        if list(plan, "available_options").is_empty() {
            problems.push(format!("shipment_plans[{p}] has no available_options"));
        }
        if !plan.get("selected_option").is_some_and(Value::is_object) {
            problems.push(format!("shipment_plans[{p}] has no selected_option"));
        }
        if plan
            .get("external_id")
            .and_then(Value::as_str)
            .unwrap_or("")
            .is_empty()
            && id_value(plan.get("id")).is_none()
        {
            problems.push(format!(
                "shipment_plans[{p}] has neither external_id nor id"
            ));
        }
    }
    s.require(
        "update_shipment_contact",
        INV_SHIPMENT_PLANS,
        problems.is_empty(),
        problems.join("; "),
    );
    Some(answer)
}

/// Selects an option of the first plan (another than the pre-selected one if any).
pub(super) async fn select_option(s: &mut Session<'_>, replay: bool) -> Option<Value> {
    let order = s.last_order.clone()?;
    let plan = list(&order, "shipment_plans").first()?.clone();
    let plan_id = plan
        .get("external_id")
        .and_then(Value::as_str)
        .filter(|s| !s.is_empty())
        .or_else(|| id_value(plan.get("id")))?
        .to_string();
    let option_key = |o: &Value| -> Option<String> {
        o.get("external_id")
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .or_else(|| id_value(o.get("id")))
            .map(str::to_string)
    };
    let selected = plan.get("selected_option").and_then(option_key);
    let options: Vec<String> = list(&plan, "available_options")
        .iter()
        .filter_map(option_key)
        .collect();
    let choice = options
        .iter()
        .find(|o| Some(*o) != selected.as_ref())
        .or_else(|| options.first())?
        .clone();
    let answer = s
        .update(
            "update_shipping_option",
            json!({"shipping_option": {"plan_id": {"value": plan_id},
                   "option_id": {"value": choice}, "external_option_id": choice}}),
            &[SegmentType::ShippingOption],
            replay,
        )
        .await?;
    let now = answer
        .pointer("/order/order/shipment_plans/0/selected_option")
        .and_then(option_key);
    s.require(
        "update_shipping_option",
        INV_OPTION_SELECTED,
        now.as_deref() == Some(choice.as_str()),
        format!("option {choice:?} was selected, the plan's selected_option is {now:?}"),
    );
    Some(answer)
}

/// Adds line `L-2` (Fast's batching) and replays the update: no duplicated line.
pub(super) async fn add_item(s: &mut Session<'_>) -> Option<Value> {
    let mut item = json!({"item_id": {"value": "L-2"}, "external_product_id": s.opts.product_id,
                          "quantity": 1});
    if let (Some(v), Some(o)) = (&s.opts.variant_id, item.as_object_mut()) {
        o.insert("external_variant_id".into(), json!(v));
    }
    let answer = s
        .update(
            "add_item",
            json!({"items": [item]}),
            &[SegmentType::LineItem],
            true,
        )
        .await?;
    let order = order_of(&answer);
    let ids: Vec<&str> = list(&order, "lines")
        .iter()
        .filter_map(|l| id_value(l.get("id")))
        .collect();
    s.require(
        "add_item",
        INV_LINES,
        ids.iter().filter(|i| **i == "L-1").count() == 1
            && ids.iter().filter(|i| **i == "L-2").count() == 1,
        format!("lines L-1 and L-2 expected once each, the order has {ids:?}"),
    );
    Some(answer)
}

pub(super) async fn convert(s: &mut Session<'_>) -> Option<Value> {
    let answer = s
        .update(
            "convert_cart_to_order",
            json!({"convert_cart_to_order": true,
                   "convert_mode": "CART_TO_ORDER_CONVERT_UPDATE_AND_CONVERT"}),
            &[SegmentType::ConvertCartToOrder],
            true,
        )
        .await?;
    let order = order_of(&answer);
    let otype = enum_name(
        order.get("order_type"),
        OrderType::from_name,
        OrderType::from_number,
    );
    let status = enum_name(
        order.get("status"),
        OrderStatus::from_name,
        OrderStatus::from_number,
    );
    s.require(
        "convert_cart_to_order",
        INV_CONVERSION,
        otype == Some(OrderType::Order) && status.is_some_and(|s| s != OrderStatus::Cart),
        format!(
            "a converted cart must be ORDER_TYPE_ORDER and no longer CART, got order_type {} status {}",
            compare::show(order.get("order_type")),
            compare::show(order.get("status"))
        ),
    );
    Some(answer)
}

/// A post-conversion status update as Fast sends it: only `external_id`.
pub(super) async fn status_update(s: &mut Session<'_>, status: OrderStatus) -> Option<Value> {
    let rid = s.next_request_id();
    let step = format!("status {}", status.name());
    let body = json!({"type": "ENTITY_TYPE_ORDER", "app_id": s.opts.app_id,
        "request_id": {"value": rid},
        "order": {"external_id": s.seller_id.clone().unwrap_or_default(),
                  "convert_cart_to_order": true, "status": status.name()}});
    let answer = s
        .update_body(&step, &body, &rid, &[SegmentType::OrderStatus], false)
        .await?;
    let got = enum_name(
        answer.pointer("/order/order/status"),
        OrderStatus::from_name,
        OrderStatus::from_number,
    );
    s.require(
        &step,
        INV_CONVERSION,
        got == Some(status),
        format!(
            "status {} expected, got {}",
            status.name(),
            compare::show(answer.pointer("/order/order/status"))
        ),
    );
    Some(answer)
}
