//! The `read` steps: reading the cart back, and an order that does not exist.

use super::checks::{differences, order_of, summarize};
use super::session::Session;
use super::{Outcome, INV_HTTP_STATUS, INV_READ_CONSISTENT, INV_UNKNOWN_ORDER};

use serde_json::{json, Value};

/// Reads the order (by Fast id, or by seller id) and compares it with the last answer.
pub(super) async fn read_check(
    s: &mut Session<'_>,
    step: &str,
    by_seller: Option<&str>,
) -> Option<Value> {
    let mut lookup = serde_json::Map::new();
    lookup.insert("is_cart".into(), Value::Bool(true));
    match by_seller {
        Some(key) => {
            let seller = s.seller_id.clone().unwrap_or_default();
            lookup.insert(key.into(), Value::String(seller));
        }
        None => {
            lookup.insert("order_id".into(), json!({"value": s.fast_id}));
        }
    }
    let lookup = Value::Object(lookup);
    let body = json!({"type": "ENTITY_TYPE_ORDER", "app_id": s.opts.app_id, "order": lookup});
    let (answer, _) = s.send(step, "read", &body, 200).await?;
    s.order_checks(step, &answer, None);
    let read = order_of(&answer);
    if let Some(last) = s.last_order.clone() {
        let diffs = differences(&last, &read);
        s.require(
            step,
            INV_READ_CONSISTENT,
            diffs.is_empty(),
            format!(
                "the read order differs from the last answer: {}",
                summarize(&diffs)
            ),
        );
    }
    Some(read)
}

pub(super) async fn unknown_order(s: &mut Session<'_>) {
    let body = json!({"type": "ENTITY_TYPE_ORDER", "app_id": s.opts.app_id,
                      "order": {"order_id": {"value": format!("{}-missing", s.fast_id)}}});
    match s.post("read", body.to_string().into_bytes()).await {
        Ok(a) if a.status == 404 => {
            s.check("read unknown order", INV_UNKNOWN_ORDER, Outcome::Pass, "")
        }
        Ok(a) => s.check(
            "read unknown order",
            INV_UNKNOWN_ORDER,
            Outcome::Warn,
            format!("an unknown order should answer 404, got HTTP {}", a.status),
        ),
        Err(e) => s.check(
            "read unknown order",
            INV_HTTP_STATUS,
            Outcome::Fail,
            e.to_string(),
        ),
    }
}
