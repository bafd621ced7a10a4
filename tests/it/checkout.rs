//! The whole checkout of protocol.md §2.1 against the real server, totals to the cent.

use crate::helpers::*;
use serde_json::json;

/// A created cart is priced from the catalog and readable by both ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_then_read_by_fast_id_and_by_seller_id() {
    let app = spawn_app().await;
    let created = app.post("create", &create_body("r-1", "F-1", &[("L-1", "hoodie-01", 2)])).await;
    assert_eq!(created.status, 200, "{}", String::from_utf8_lossy(&created.bytes));
    let order = created.order();
    assert_eq!(money(&order["sub_total"]), "65.98");
    let seller_id = order["external_id"].as_str().unwrap().to_string();
    let by_fast = app.post("read", &json!({"type": "ENTITY_TYPE_ORDER", "order": {"order_id": {"value": "F-1"}}})).await;
    let by_seller = app
        .post("read", &json!({"type": "ENTITY_TYPE_ORDER", "order": {"external_order_id": seller_id}}))
        .await;
    assert_eq!(by_fast.order(), order);
    assert_eq!(by_seller.order(), order);
}
