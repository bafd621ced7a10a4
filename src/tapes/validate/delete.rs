//! The `delete` step: the cart deleted, the answer's shape, and a read afterwards.

use super::checks::{enum_name, id_value};
use super::session::Session;
use super::{Outcome, INV_DELETE, INV_HTTP_STATUS, INV_REQUEST_ID_ECHO};

use crate::protocol::OrderStatus;
use crate::tapes::compare;
use serde_json::{json, Value};

pub(super) async fn delete_cart(s: &mut Session<'_>) {
    let rid = s.next_request_id();
    let body = json!({"type": "ENTITY_TYPE_ORDER", "app_id": s.opts.app_id,
        "request_id": {"value": rid},
        "order": {"is_cart": true, "order_id": {"value": s.fast_id},
                  "external_id": s.seller_id.clone().unwrap_or_default()}});
    let Some((answer, sent)) = s.send("delete", "delete", &body, 200).await else {
        return;
    };
    let empty = |v: Option<&Value>| v.is_none_or(|v| v.as_object().is_some_and(|o| o.is_empty()));
    let shape_ok = answer.as_object().is_some_and(|o| {
        o.keys()
            .all(|k| matches!(k.as_str(), "type" | "request_id" | "order"))
            && empty(o.get("order"))
    });
    s.require(
        "delete",
        INV_DELETE,
        shape_ok,
        format!(
            "delete must answer {{}} (or {{type, order: {{}}}}), got {}",
            compare::show(Some(&answer))
        ),
    );
    if let Some(rid_back) = answer.get("request_id") {
        s.require(
            "delete",
            INV_REQUEST_ID_ECHO,
            id_value(Some(rid_back)) == Some(rid.as_str()),
            format!(
                "request_id {rid:?} sent, {} answered",
                compare::show(Some(rid_back))
            ),
        );
    }
    s.replay_check("delete", &sent, &answer).await;
    let read = json!({"type": "ENTITY_TYPE_ORDER", "app_id": s.opts.app_id,
                      "order": {"order_id": {"value": s.fast_id}}});
    match s.post("read", read.to_string().into_bytes()).await {
        Ok(a) if a.status == 404 => s.check("read after delete", INV_DELETE, Outcome::Pass, ""),
        Ok(a) if a.status == 200 => {
            let status = enum_name(
                a.json().pointer("/order/order/status"),
                OrderStatus::from_name,
                OrderStatus::from_number,
            );
            s.require(
                "read after delete",
                INV_DELETE,
                status == Some(OrderStatus::Deleted),
                format!(
                    "a deleted cart must be gone (404) or ORDER_STATUS_DELETED, it reads as {}",
                    compare::show(a.json().pointer("/order/order/status"))
                ),
            );
        }
        Ok(a) => s.check(
            "read after delete",
            INV_DELETE,
            Outcome::Fail,
            format!("read after delete answered HTTP {}", a.status),
        ),
        Err(e) => s.check(
            "read after delete",
            INV_HTTP_STATUS,
            Outcome::Fail,
            e.to_string(),
        ),
    }
}
