//! Fast's whole checkout against the real server, totals to the cent (docs/pricing.md).

use crate::helpers::*;
use serde_json::{json, Value};

const LINE_ITEM: &str = "UPDATE_ORDER_SEGMENT_TYPE_LINE_ITEM";
const COUPON: &str = "UPDATE_ORDER_SEGMENT_TYPE_COUPON";
const BILLING: &str = "UPDATE_ORDER_SEGMENT_TYPE_BILLING_ADDRESS";
const SHIPPING_ADDRESS: &str = "UPDATE_ORDER_SEGMENT_TYPE_SHIPPING_ADDRESS";
const SHIPPING_OPTION: &str = "UPDATE_ORDER_SEGMENT_TYPE_SHIPPING_OPTION";
const ORDER_STATUS: &str = "UPDATE_ORDER_SEGMENT_TYPE_ORDER_STATUS";
const CONVERT: &str = "UPDATE_ORDER_SEGMENT_TYPE_CONVERT_CART_TO_ORDER";

/// The order's totals as `[sub_total, total_discounts, total_tax, total_shipping, total_amount]`.
fn totals(order: &Value) -> [&str; 5] {
    [
        money(&order["sub_total"]),
        money(&order["total_discounts"]),
        money(&order["total_tax"]),
        money(&order["total_shipping"]),
        money(&order["total_amount"]),
    ]
}

fn assert_totals(order: &Value, expected: [&str; 5], step: &str) {
    assert_eq!(
        totals(order),
        expected,
        "{step}: wrong order totals [sub_total, total_discounts, total_tax, total_shipping, \
         total_amount]"
    );
}

/// The line with Fast line id `id`.
fn line<'a>(order: &'a Value, id: &str) -> &'a Value {
    order["lines"]
        .as_array()
        .and_then(|lines| lines.iter().find(|l| l["id"]["value"] == id))
        .unwrap_or_else(|| panic!("the order has no line {id}: {order}"))
}

/// Asserts a line's `[unit_price, subtotal_amount, line_discount_amount,
/// discounted_unit_price, tax_amount, total_amount]`.
fn assert_line(order: &Value, id: &str, expected: [&str; 6], step: &str) {
    let l = line(order, id);
    let got = [
        money(&l["unit_price"]),
        money(&l["subtotal_amount"]),
        money(&l["line_discount_amount"]),
        money(&l["discounted_unit_price"]),
        money(&l["tax_amount"]),
        money(&l["total_amount"]),
    ];
    assert_eq!(
        got, expected,
        "{step}: line {id} has wrong [unit_price, subtotal_amount, line_discount_amount, \
         discounted_unit_price, tax_amount, total_amount]"
    );
}

/// Asserts a line's `discounts[]` as `(code, total_amount)`, each USER / REGULAR and applied.
fn assert_line_discounts(order: &Value, id: &str, expected: &[(&str, &str)], step: &str) {
    let list = line(order, id)["discounts"]
        .as_array()
        .unwrap_or_else(|| panic!("{step}: line {id} has no discounts[] array"));
    let got: Vec<(&str, &str)> = list
        .iter()
        .map(|d| {
            assert_eq!(
                (&d["origin"], &d["type"], &d["applied"]),
                (
                    &json!("DISCOUNT_ORIGIN_USER"),
                    &json!("DISCOUNT_TYPE_REGULAR"),
                    &json!(true)
                ),
                "{step}: a coupon on line {id} must be an applied USER/REGULAR discount: {d}"
            );
            (d["code"].as_str().unwrap_or(""), money(&d["total_amount"]))
        })
        .collect();
    assert_eq!(
        got, expected,
        "{step}: line {id} has wrong discounts[] (code, total_amount)"
    );
}

/// The order-level `coupons[]` as `(code, applied, total_amount)`.
fn coupons(order: &Value) -> Vec<(String, bool, String)> {
    order["coupons"]
        .as_array()
        .unwrap_or_else(|| panic!("the order has no coupons[] array: {order}"))
        .iter()
        .map(|c| {
            (
                c["code"].as_str().unwrap_or("").to_string(),
                c["applied"].as_bool().unwrap_or(false),
                money(&c["total_amount"]).to_string(),
            )
        })
        .collect()
}

/// Asserts the `status[]` of an update answer as `(updated, status, reason_code)`; a failed
/// entry must also carry a message.
fn assert_segments(resp: &Resp, expected: &[(&str, bool, Option<&str>)], step: &str) {
    let body = resp.json();
    let list = body["order"]["status"]
        .as_array()
        .unwrap_or_else(|| panic!("{step}: the update answer has no order.status[]: {body}"));
    let got: Vec<(&str, bool, Option<&str>)> = list
        .iter()
        .map(|s| {
            let ok = s["status"]
                .as_bool()
                .unwrap_or_else(|| panic!("{step}: status[] entry without a bool status: {s}"));
            if !ok {
                assert!(
                    s["message"].as_str().is_some_and(|m| !m.is_empty()),
                    "{step}: a failed segment must say why in `message`: {s}"
                );
            }
            (
                s["updated"].as_str().unwrap_or(""),
                ok,
                s["reason_code"].as_str(),
            )
        })
        .collect();
    assert_eq!(
        got, expected,
        "{step}: wrong status[] entries (updated, status, reason_code)"
    );
}

/// The shipping options of a plan (`available_options` or `[selected_option]`) as
/// `(external_id, cost, tax, total)`.
fn options(list: &Value) -> Vec<(&str, &str, &str, &str)> {
    list.as_array()
        .unwrap_or_else(|| panic!("expected a list of shipping options, got {list}"))
        .iter()
        .map(|o| {
            (
                o["external_id"].as_str().unwrap_or(""),
                money(&o["cost"]),
                money(&o["tax"]),
                money(&o["total"]),
            )
        })
        .collect()
}

fn read_body(fast_id: &str) -> Value {
    json!({"type": "ENTITY_TYPE_ORDER", "app_id": "test-app",
           "order": {"order_id": {"value": fast_id}}})
}

/// Reads an order by Fast id; it must exist.
async fn read_order(app: &TestApp, fast_id: &str, step: &str) -> Value {
    let r = app.post("read", &read_body(fast_id)).await;
    assert_eq!(
        r.status,
        200,
        "{step}: reading order {fast_id} failed: {}",
        String::from_utf8_lossy(&r.bytes)
    );
    r.order()
}

/// Posts an update that must be answered 200.
async fn update(app: &TestApp, body: &Value, step: &str) -> Resp {
    let r = app.post("update", body).await;
    assert_eq!(
        r.status,
        200,
        "{step}: update must answer 200: {}",
        String::from_utf8_lossy(&r.bytes)
    );
    r
}

/// Asserts an rpcStatus error answer: HTTP status, gRPC code, `details: []`, and a message
/// that contains `mentions`.
fn assert_rpc_error(resp: &Resp, http: u16, code: i64, mentions: &str, step: &str) {
    let body = resp.json();
    assert_eq!(resp.status, http, "{step}: wrong HTTP status, body {body}");
    let mut keys: Vec<&str> = body
        .as_object()
        .map(|o| o.keys().map(String::as_str).collect())
        .unwrap_or_default();
    keys.sort_unstable();
    assert_eq!(
        keys,
        ["code", "details", "message"],
        "{step}: an error body must be exactly an rpcStatus {{code, message, details}}: {body}"
    );
    assert_eq!(
        body["code"],
        json!(code),
        "{step}: wrong gRPC code in {body}"
    );
    assert_eq!(
        body["details"],
        json!([]),
        "{step}: details must be [] in {body}"
    );
    let message = body["message"].as_str().unwrap_or("");
    assert!(
        message.contains(mentions),
        "{step}: the error message must name `{mentions}`, got {message:?}"
    );
}

/// A created cart is priced from the catalog and readable by both ids.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_then_read_by_fast_id_and_by_seller_id() {
    let app = spawn_app().await;
    let created = app
        .post(
            "create",
            &create_body("r-1", "F-1", &[("L-1", "hoodie-01", 2)]),
        )
        .await;
    assert_eq!(
        created.status,
        200,
        "{}",
        String::from_utf8_lossy(&created.bytes)
    );
    let order = created.order();
    assert_eq!(money(&order["sub_total"]), "65.98");
    let seller_id = order["external_id"].as_str().unwrap().to_string();
    let by_fast = app
        .post(
            "read",
            &json!({"type": "ENTITY_TYPE_ORDER", "order": {"order_id": {"value": "F-1"}}}),
        )
        .await;
    let by_seller = app
        .post(
            "read",
            &json!({"type": "ENTITY_TYPE_ORDER", "order": {"external_order_id": seller_id}}),
        )
        .await;
    assert_eq!(by_fast.order(), order);
    assert_eq!(by_seller.order(), order);
}

/// Fast's whole checkout priced to the cent (docs/pricing.md): a wrong cent is a wrong charge.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn full_checkout_from_create_to_delete_is_priced_to_the_cent() {
    let app = spawn_app().await;

    // 1. Create: hoodie 32.99 × 1 + tee (M) 20.00 × 2 = 72.99; no address → default rate 0.
    let create = json!({
        "type": "ENTITY_TYPE_ORDER",
        "app_id": "test-app",
        "request_id": {"value": "co-1"},
        "order": {"is_cart": true, "order": {
            "id": {"value": "F-100"},
            "order_type": "ORDER_TYPE_CART",
            "status": "ORDER_STATUS_CART",
            "bill_to": {},
            "lines": [
                {"id": {"value": "L-1"}, "external_product_id": "hoodie-01", "quantity": 1,
                 "subtotal_amount": "0.00", "tax_amount": "0.00", "total_amount": "0.00"},
                {"id": {"value": "L-2"}, "external_product_id": "tee-01",
                 "external_variant_id": "tee-01-M", "quantity": 2,
                 "subtotal_amount": "0.00", "tax_amount": "0.00", "total_amount": "0.00"}
            ]
        }}
    });
    let created = app.post("create", &create).await;
    assert_eq!(
        created.status,
        200,
        "create: {}",
        String::from_utf8_lossy(&created.bytes)
    );
    let body = created.json();
    assert_eq!(body["type"], "ENTITY_TYPE_ORDER", "create must echo type");
    assert_eq!(
        body["request_id"]["value"], "co-1",
        "create must echo request_id"
    );
    let order = created.order();
    assert_eq!(
        order["id"]["value"], "F-100",
        "create must echo Fast's order id"
    );
    let seller_id = order["external_id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| panic!("create must assign a seller external_id: {order}"))
        .to_string();
    assert_eq!(
        (
            &order["order_type"],
            &order["status"],
            &order["currency_code"]
        ),
        (
            &json!("ORDER_TYPE_CART"),
            &json!("ORDER_STATUS_CART"),
            &json!("USD")
        ),
        "a new cart is a USD CART"
    );
    let tee = line(&order, "L-2");
    assert_eq!(
        (
            &tee["external_variant_id"],
            &tee["name"],
            &tee["fulfillment_mode"]
        ),
        (
            &json!("tee-01-M"),
            &json!("Fast Tee (M)"),
            &json!("ITEM_FULFILLMENT_MODEL_PHYSICAL")
        ),
        "the tee line must be hydrated from variant tee-01-M"
    );
    assert!(
        tee["external_id"].as_str().is_some_and(|s| !s.is_empty()),
        "each line needs a seller external_id: {tee}"
    );
    assert_line(
        &order,
        "L-1",
        ["32.99", "32.99", "0.00", "32.99", "0.00", "32.99"],
        "create",
    );
    assert_line(
        &order,
        "L-2",
        ["20.00", "40.00", "0.00", "20.00", "0.00", "40.00"],
        "create",
    );
    assert_totals(&order, ["72.99", "0.00", "0.00", "0.00", "72.99"], "create");

    // 2. Read by the seller id, as Fast does when checkout starts.
    let read = app
        .post(
            "read",
            &json!({"type": "ENTITY_TYPE_ORDER", "app_id": "test-app",
                    "order": {"is_cart": true, "external_order_id": seller_id}}),
        )
        .await;
    assert_eq!(
        read.status, 200,
        "read by external_order_id must find the cart"
    );
    assert_eq!(
        read.order(),
        order,
        "a read must return the cart exactly as created"
    );

    // 3. bill_to in California: no plan yet, so both lines are taxed by bill_to at 7.25%.
    //    L-1 32.99 × 0.0725 = 2.391775 → 2.39; L-2 40.00 × 0.0725 = 2.90; tax 5.29;
    //    total 72.99 + 5.29 = 78.28.
    let bill_to = json!({"bill_to": {
        "first_name": "Ada", "last_name": "Lovelace", "address_1": "1 Market St",
        "city_locality": "San Francisco", "state_province_code": "CA", "country": "US",
        "country_code": "US", "postal_code": "94105"}});
    let r = update(&app, &update_body("co-3", "F-100", bill_to), "bill_to").await;
    assert_segments(&r, &[(BILLING, true, None)], "bill_to");
    let order = r.order();
    assert_eq!(
        order["bill_to"]["state_province_code"], "CA",
        "bill_to must be stored"
    );
    assert_line(
        &order,
        "L-1",
        ["32.99", "32.99", "0.00", "32.99", "2.39", "35.38"],
        "bill_to",
    );
    assert_line(
        &order,
        "L-2",
        ["20.00", "40.00", "0.00", "20.00", "2.90", "42.90"],
        "bill_to",
    );
    assert_totals(
        &order,
        ["72.99", "0.00", "5.29", "0.00", "78.28"],
        "bill_to",
    );

    // 4. Ship both lines to New York: tax now by ship-to at 8.875%.
    //    L-1 32.99 × 0.08875 = 2.9278625 → 2.93; L-2 40.00 × 0.08875 = 3.55; tax 6.48.
    //    Plan subtotal 72.99 < free_over 100 → std 5.00 (cheapest, pre-selected), express 15.00.
    //    total 72.99 + 6.48 + 5.00 = 84.47.
    let shipments = json!({"shipments": [{
        "ship_to": {"first_name": "Ada", "address_1": "350 5th Ave", "city_locality": "New York",
                    "state_province_code": "NY", "country": "US", "country_code": "US",
                    "postal_code": "10118"},
        "line_refs": [{"id": {"value": "L-1"}, "quantity": 1},
                      {"id": {"value": "L-2"}, "quantity": 2}]
    }]});
    let r = update(&app, &update_body("co-4", "F-100", shipments), "shipments").await;
    assert_segments(&r, &[(SHIPPING_ADDRESS, true, None)], "shipments");
    let order = r.order();
    let plans = order["shipment_plans"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        plans.len(),
        1,
        "one shipments entry makes one plan: {order}"
    );
    let plan = &plans[0];
    let plan_id = plan["external_id"]
        .as_str()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| panic!("a plan needs a seller external_id: {plan}"))
        .to_string();
    assert_eq!(
        plan["ship_to"]["state_province_code"], "NY",
        "the plan keeps its ship_to"
    );
    let refs: Vec<&Value> = plan["lines"]
        .as_array()
        .map(|l| l.iter().map(|r| &r["id"]["value"]).collect())
        .unwrap_or_default();
    assert_eq!(
        refs,
        [&json!("L-1"), &json!("L-2")],
        "the plan holds both lines"
    );
    assert_eq!(
        options(&plan["available_options"]),
        [
            ("std", "5.00", "0.00", "5.00"),
            ("express", "15.00", "0.00", "15.00")
        ],
        "US options are std and express in catalog order (intl does not ship to US)"
    );
    assert_eq!(
        plan["selected_option"]["external_id"], "std",
        "a new plan pre-selects its cheapest option"
    );
    assert_line(
        &order,
        "L-1",
        ["32.99", "32.99", "0.00", "32.99", "2.93", "35.92"],
        "shipments",
    );
    assert_line(
        &order,
        "L-2",
        ["20.00", "40.00", "0.00", "20.00", "3.55", "43.55"],
        "shipments",
    );
    assert_totals(
        &order,
        ["72.99", "0.00", "6.48", "5.00", "84.47"],
        "shipments",
    );

    // 5. Select express by plan external_id and option id: shipping 15.00;
    //    total 72.99 + 6.48 + 15.00 = 94.47.
    let select = json!({"shipping_option": {"plan_id": {"value": plan_id},
                                             "option_id": {"value": "express"}}});
    let r = update(
        &app,
        &update_body("co-5", "F-100", select),
        "shipping_option",
    )
    .await;
    assert_segments(&r, &[(SHIPPING_OPTION, true, None)], "shipping_option");
    let order = r.order();
    let selected = &order["shipment_plans"][0]["selected_option"];
    assert_eq!(
        (&selected["external_id"], &selected["name"]),
        (&json!("express"), &json!("Express")),
        "express must now be selected"
    );
    assert_totals(
        &order,
        ["72.99", "0.00", "6.48", "15.00", "94.47"],
        "shipping_option",
    );

    // 6. SAVE10 (10%, per line, rounded half away from zero):
    //    L-1 32.99 × 10% = 3.299 → 3.30, net 29.69, tax 29.69 × 0.08875 = 2.6349875 → 2.63;
    //    L-2 40.00 × 10% = 4.00, net 36.00, tax 36.00 × 0.08875 = 3.195 → 3.20 (half up),
    //    discounted unit 36.00 / 2 = 18.00. Discounts 7.30, tax 5.83;
    //    total 72.99 − 7.30 + 5.83 + 15.00 = 86.52.
    let r = update(
        &app,
        &update_body("co-6", "F-100", json!({"coupon": {"code": "SAVE10"}})),
        "coupon",
    )
    .await;
    assert_segments(&r, &[(COUPON, true, None)], "coupon");
    let order = r.order();
    assert_eq!(
        coupons(&order),
        [("SAVE10".to_string(), true, "7.30".to_string())],
        "SAVE10 is applied for 3.30 + 4.00"
    );
    assert_line(
        &order,
        "L-1",
        ["32.99", "32.99", "3.30", "29.69", "2.63", "32.32"],
        "coupon",
    );
    assert_line(
        &order,
        "L-2",
        ["20.00", "40.00", "4.00", "18.00", "3.20", "39.20"],
        "coupon",
    );
    assert_line_discounts(&order, "L-1", &[("SAVE10", "3.30")], "coupon");
    assert_line_discounts(&order, "L-2", &[("SAVE10", "4.00")], "coupon");
    assert_totals(
        &order,
        ["72.99", "7.30", "5.83", "15.00", "86.52"],
        "coupon",
    );

    // 7. Items: add L-3 (mug-01 12.50 × 2; physical, so it joins the existing plan — README's
    //    documented choice) and L-4 (ebook-01 9.99, digital: no plan holds it, so it is taxed
    //    by bill_to CA), and set L-2 to 4.
    //    L-1 unchanged: −3.30, net 29.69, tax 2.63;
    //    L-2 80.00, −8.00, net 72.00, tax 72.00 × 0.08875 = 6.39;
    //    L-3 25.00, −2.50, net 22.50, tax 22.50 × 0.08875 = 1.996875 → 2.00;
    //    L-4 9.99, −1.00 (0.999 → 1.00), net 8.99, tax 8.99 × 0.0725 = 0.651775 → 0.65.
    //    sub_total 32.99 + 80.00 + 25.00 + 9.99 = 147.98, discounts 14.80,
    //    tax 2.63 + 6.39 + 2.00 + 0.65 = 11.67. Plan subtotal 29.69 + 72.00 + 22.50 = 124.19
    //    ≥ 100, so std becomes free, but express stays selected:
    //    total 147.98 − 14.80 + 11.67 + 15.00 = 159.85.
    let items = json!({"items": [
        {"item_id": {"value": "L-3"}, "external_product_id": "mug-01", "quantity": 2},
        {"item_id": {"value": "L-4"}, "external_product_id": "ebook-01", "quantity": 1},
        {"item_id": {"value": "L-2"}, "quantity": 4}
    ]});
    let r = update(&app, &update_body("co-7", "F-100", items), "items").await;
    assert_segments(&r, &[(LINE_ITEM, true, None)], "items");
    let order = r.order();
    assert_eq!(
        order["lines"].as_array().map(Vec::len),
        Some(4),
        "items must add L-3 and L-4: {order}"
    );
    let mug = line(&order, "L-3");
    assert_eq!(
        (&mug["external_product_id"], &mug["name"], &mug["quantity"]),
        (&json!("mug-01"), &json!("Checkout Mug"), &json!(2)),
        "L-3 must be the mug, quantity 2"
    );
    assert!(
        mug["external_id"].as_str().is_some_and(|s| !s.is_empty()),
        "an added line needs a seller external_id: {mug}"
    );
    assert_eq!(
        line(&order, "L-4")["fulfillment_mode"],
        "ITEM_FULFILLMENT_MODEL_DIGITAL",
        "L-4 must be the e-book"
    );
    assert_line(
        &order,
        "L-1",
        ["32.99", "32.99", "3.30", "29.69", "2.63", "32.32"],
        "items",
    );
    assert_line(
        &order,
        "L-2",
        ["20.00", "80.00", "8.00", "18.00", "6.39", "78.39"],
        "items",
    );
    assert_line(
        &order,
        "L-3",
        ["12.50", "25.00", "2.50", "11.25", "2.00", "24.50"],
        "items",
    );
    assert_line(
        &order,
        "L-4",
        ["9.99", "9.99", "1.00", "8.99", "0.65", "9.64"],
        "items",
    );
    let plan = &order["shipment_plans"][0];
    assert_eq!(
        plan["lines"],
        json!([{"id": {"value": "L-1"}, "quantity": 1}, {"id": {"value": "L-2"}, "quantity": 4},
               {"id": {"value": "L-3"}, "quantity": 2}]),
        "the plan's line refs follow the new quantities and take the new physical line only"
    );
    assert_eq!(
        options(&plan["available_options"]),
        [
            ("std", "0.00", "0.00", "0.00"),
            ("express", "15.00", "0.00", "15.00")
        ],
        "std is free once the plan's discounted subtotal (124.19) reaches free_over 100"
    );
    assert_eq!(
        plan["selected_option"]["external_id"], "express",
        "the shopper's choice stays"
    );
    assert_eq!(
        coupons(&order),
        [("SAVE10".to_string(), true, "14.80".to_string())],
        "SAVE10 now covers 3.30 + 8.00 + 2.50 + 1.00"
    );
    assert_totals(
        &order,
        ["147.98", "14.80", "11.67", "15.00", "159.85"],
        "items",
    );

    // 8. Convert (UPDATE_AND_CONVERT): PENDING, ORDER_TYPE_ORDER, same money.
    let convert = json!({"convert_cart_to_order": true,
                         "convert_mode": "CART_TO_ORDER_CONVERT_UPDATE_AND_CONVERT"});
    let r = update(&app, &update_body("co-8", "F-100", convert), "convert").await;
    assert_segments(&r, &[(CONVERT, true, None)], "convert");
    let order = r.order();
    assert_eq!(
        (&order["status"], &order["order_type"]),
        (&json!("ORDER_STATUS_PENDING"), &json!("ORDER_TYPE_ORDER")),
        "conversion makes a PENDING order"
    );
    assert_totals(
        &order,
        ["147.98", "14.80", "11.67", "15.00", "159.85"],
        "convert",
    );

    // 9. Post-conversion status updates carry only external_id (docs/protocol.md#update).
    let status_update = |rid: &str, status: &str| {
        json!({"type": "ENTITY_TYPE_ORDER", "app_id": "test-app", "request_id": {"value": rid},
               "order": {"external_id": seller_id, "convert_cart_to_order": true,
                         "status": status}})
    };
    let r = update(
        &app,
        &status_update("co-9", "ORDER_STATUS_BOOKED"),
        "booked",
    )
    .await;
    assert_segments(
        &r,
        &[(ORDER_STATUS, true, None), (CONVERT, true, None)],
        "booked",
    );
    let order = r.order();
    assert_eq!(order["status"], "ORDER_STATUS_BOOKED", "PENDING → BOOKED");
    assert_eq!(order["order_type"], "ORDER_TYPE_ORDER", "still an order");
    assert_totals(
        &order,
        ["147.98", "14.80", "11.67", "15.00", "159.85"],
        "booked",
    );
    let r = update(
        &app,
        &status_update("co-10", "ORDER_STATUS_PENDING_FULFILLMENT"),
        "pending fulfillment",
    )
    .await;
    assert_segments(
        &r,
        &[(ORDER_STATUS, true, None), (CONVERT, true, None)],
        "pending fulfillment",
    );
    assert_eq!(
        r.order()["status"],
        "ORDER_STATUS_PENDING_FULFILLMENT",
        "BOOKED → PENDING_FULFILLMENT"
    );
    let stored = read_order(&app, "F-100", "after status updates").await;
    assert_eq!(
        stored,
        r.order(),
        "the stored order must be the one answered"
    );

    // 10. Delete answers exactly {}; the order is kept, marked DELETED; deleting again is {}.
    let delete = app
        .post(
            "delete",
            &json!({"type": "ENTITY_TYPE_ORDER", "app_id": "test-app",
                    "request_id": {"value": "co-11"},
                    "order": {"external_id": seller_id}}),
        )
        .await;
    assert_eq!(
        (delete.status, delete.bytes.as_slice()),
        (200, &b"{}"[..]),
        "delete answers exactly {{}}"
    );
    let deleted = read_order(&app, "F-100", "after delete").await;
    assert_eq!(
        deleted["status"], "ORDER_STATUS_DELETED",
        "a deleted order is kept, marked DELETED"
    );
    assert_totals(
        &deleted,
        ["147.98", "14.80", "11.67", "15.00", "159.85"],
        "after delete",
    );
    let again = app
        .post(
            "delete",
            &json!({"type": "ENTITY_TYPE_ORDER", "app_id": "test-app",
                    "request_id": {"value": "co-12"},
                    "order": {"order_id": {"value": "F-100"}}}),
        )
        .await;
    assert_eq!(
        (again.status, again.bytes.as_slice()),
        (200, &b"{}"[..]),
        "a second delete answers {{}} too"
    );

    // Fast clears the shopper's storefront cart after a cart-page checkout: a cart this
    // server never held is gone already, so the delete answers {} (never 404), every time.
    for attempt in ["co-13", "co-13", "co-14"] {
        let storefront = app
            .post(
                "delete",
                &json!({"type": "ENTITY_TYPE_ORDER", "app_id": "test-app",
                        "request_id": {"value": attempt},
                        "order": {"is_cart": true, "external_id": "storefront-cart-77"}}),
            )
            .await;
        assert_eq!(
            (storefront.status, storefront.bytes.as_slice()),
            (200, &b"{}"[..]),
            "{attempt}: a delete of a cart this server does not hold answers {{}}"
        );
    }
    let r = app
        .post(
            "read",
            &json!({"type": "ENTITY_TYPE_ORDER", "app_id": "test-app",
                    "order": {"external_id": "storefront-cart-77"}}),
        )
        .await;
    assert_eq!(r.status, 404, "and nothing was created: {}", show(&r));
}

/// A merchant catalog exercising every pricing rule of docs/pricing.md where rounding bites.
const PRICING_CATALOG: &str = r#"{
  "currency": "USD",
  "products": [
    {"id": "alpha", "name": "Alpha", "fulfillment": "physical", "price": "10.10"},
    {"id": "bravo", "name": "Bravo", "fulfillment": "physical", "price": "9.30"},
    {"id": "charlie", "name": "Charlie", "fulfillment": "physical", "price": "15.15"}
  ],
  "tax": {"default_rate": "0.10", "rates": {"DE": "0.19", "US": "0.06", "US-NY": "0.045"},
          "shipping_taxable": true},
  "shipping": [
    {"id": "std", "name": "Standard", "cost": "7.00", "countries": ["US", "DE"],
     "free_over": "40.00"},
    {"id": "courier", "name": "Courier", "cost": "12.00", "countries": ["US"]}
  ],
  "coupons": [
    {"code": "PCT15", "percent_off": "15"},
    {"code": "AMT10", "amount_off": "10.00"},
    {"code": "BIG5", "amount_off": "5.00", "min_subtotal": "100.00"}
  ]
}"#;

/// Every pricing rule on a merchant catalog, pinned where a naive version is off by a cent.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn coupons_tax_rates_and_free_shipping_follow_the_contract_to_the_cent() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let path = dir.path().join("catalog.json");
    std::fs::write(&path, PRICING_CATALOG).expect("catalog written");
    let app = spawn_app_with(move |s| s.catalog = Some(path)).await;
    let fid = "F-200";

    // A. alpha 10.10 × 1, bravo 9.30 × 2 = 18.60, charlie 15.15 × 1: sub_total 43.85.
    //    No address → default_rate 10%: 1.01, 1.86, 1.515 → 1.52; tax 4.39; total 48.24.
    let created = app
        .post(
            "create",
            &create_body(
                "p-1",
                fid,
                &[("A", "alpha", 1), ("B", "bravo", 2), ("C", "charlie", 1)],
            ),
        )
        .await;
    assert_eq!(
        created.status,
        200,
        "create: {}",
        String::from_utf8_lossy(&created.bytes)
    );
    let order = created.order();
    assert_line(
        &order,
        "A",
        ["10.10", "10.10", "0.00", "10.10", "1.01", "11.11"],
        "default rate",
    );
    assert_line(
        &order,
        "B",
        ["9.30", "18.60", "0.00", "9.30", "1.86", "20.46"],
        "default rate",
    );
    assert_line(
        &order,
        "C",
        ["15.15", "15.15", "0.00", "15.15", "1.52", "16.67"],
        "default rate",
    );
    assert_totals(
        &order,
        ["43.85", "0.00", "4.39", "0.00", "48.24"],
        "default rate",
    );

    // B. bill_to DE-BY: no "DE-BY" rate, so the country rate DE 19% applies:
    //    10.10 × 0.19 = 1.919 → 1.92; 18.60 × 0.19 = 3.534 → 3.53; 15.15 × 0.19 = 2.8785 → 2.88;
    //    tax 8.33; total 52.18.
    let bill_to = json!({"bill_to": {"country_code": "DE", "state_province_code": "BY",
                                     "city_locality": "München"}});
    let r = update(&app, &update_body("p-2", fid, bill_to), "country rate").await;
    assert_segments(&r, &[(BILLING, true, None)], "country rate");
    let order = r.order();
    assert_eq!(
        [
            &line(&order, "A")["tax_amount"],
            &line(&order, "B")["tax_amount"],
            &line(&order, "C")["tax_amount"]
        ],
        [&json!("1.92"), &json!("3.53"), &json!("2.88")],
        "country rate: each line taxed at DE 19%"
    );
    assert_totals(
        &order,
        ["43.85", "0.00", "8.33", "0.00", "52.18"],
        "country rate",
    );

    // C. Ship everything to US-NY: the subdivision rate 4.5% wins over US 6% and over bill_to:
    //    10.10 × 0.045 = 0.4545 → 0.45; 18.60 × 0.045 = 0.837 → 0.84; 15.15 × 0.045 = 0.68175
    //    → 0.68; tax 1.97. Plan subtotal 43.85 ≥ free_over 40 → std free (pre-selected);
    //    courier 12.00 + tax 12.00 × 0.045 = 0.54 → 12.54. total 43.85 + 1.97 = 45.82.
    let shipments = json!({"shipments": [{
        "ship_to": {"country_code": "US", "state_province_code": "NY", "city_locality": "Albany"},
        "line_refs": [{"id": {"value": "A"}, "quantity": 1}, {"id": {"value": "B"}, "quantity": 2},
                      {"id": {"value": "C"}, "quantity": 1}]
    }]});
    let r = update(
        &app,
        &update_body("p-3", fid, shipments),
        "subdivision rate",
    )
    .await;
    assert_segments(&r, &[(SHIPPING_ADDRESS, true, None)], "subdivision rate");
    let order = r.order();
    assert_line(
        &order,
        "A",
        ["10.10", "10.10", "0.00", "10.10", "0.45", "10.55"],
        "subdivision rate",
    );
    assert_line(
        &order,
        "B",
        ["9.30", "18.60", "0.00", "9.30", "0.84", "19.44"],
        "subdivision rate",
    );
    assert_line(
        &order,
        "C",
        ["15.15", "15.15", "0.00", "15.15", "0.68", "15.83"],
        "subdivision rate",
    );
    let plan = &order["shipment_plans"][0];
    assert_eq!(
        options(&plan["available_options"]),
        [
            ("std", "0.00", "0.00", "0.00"),
            ("courier", "12.00", "0.54", "12.54")
        ],
        "free_over reached: std is free; courier's shipping is taxed at the ship-to rate"
    );
    assert_eq!(
        plan["selected_option"]["external_id"], "std",
        "the cheapest option is pre-selected"
    );
    assert_totals(
        &order,
        ["43.85", "0.00", "1.97", "0.00", "45.82"],
        "subdivision rate",
    );

    // D. PCT15, per line, rounded half away from zero: 10.10 × 15% = 1.515 → 1.52;
    //    18.60 × 15% = 2.79; 15.15 × 15% = 2.2725 → 2.27; discounts 6.58 (15% of 43.85 would be
    //    6.5775 → 6.58 as well, but per line is the rule). Nets 8.58, 15.81, 12.88;
    //    bravo's discounted unit 15.81 / 2 = 7.905 → 7.91. Taxes 8.58 × 0.045 = 0.3861 → 0.39;
    //    15.81 × 0.045 = 0.71145 → 0.71; 12.88 × 0.045 = 0.5796 → 0.58. The plan's discounted
    //    subtotal 37.27 < 40: free shipping is lost, std costs 7.00 + tax 7.00 × 0.045 = 0.315
    //    → 0.32. total_tax 1.68 + 0.32 = 2.00; total 43.85 − 6.58 + 2.00 + 7.00 = 46.27.
    let r = update(
        &app,
        &update_body("p-4", fid, json!({"coupon": {"code": "PCT15"}})),
        "percent coupon",
    )
    .await;
    assert_segments(&r, &[(COUPON, true, None)], "percent coupon");
    let order = r.order();
    assert_line(
        &order,
        "A",
        ["10.10", "10.10", "1.52", "8.58", "0.39", "8.97"],
        "percent coupon",
    );
    assert_line(
        &order,
        "B",
        ["9.30", "18.60", "2.79", "7.91", "0.71", "16.52"],
        "percent coupon",
    );
    assert_line(
        &order,
        "C",
        ["15.15", "15.15", "2.27", "12.88", "0.58", "13.46"],
        "percent coupon",
    );
    assert_line_discounts(&order, "A", &[("PCT15", "1.52")], "percent coupon");
    assert_line_discounts(&order, "B", &[("PCT15", "2.79")], "percent coupon");
    assert_line_discounts(&order, "C", &[("PCT15", "2.27")], "percent coupon");
    let plan = &order["shipment_plans"][0];
    assert_eq!(
        options(&plan["available_options"]),
        [
            ("std", "7.00", "0.32", "7.32"),
            ("courier", "12.00", "0.54", "12.54")
        ],
        "free shipping is lost once the coupon brings the plan below free_over"
    );
    assert_eq!(
        options(&json!([plan["selected_option"]])),
        [("std", "7.00", "0.32", "7.32")],
        "std stays selected, now at cost 7.00 + taxable shipping 0.32"
    );
    assert_totals(
        &order,
        ["43.85", "6.58", "2.00", "7.00", "46.27"],
        "percent coupon",
    );

    // E. AMT10 over 10.10 / 18.60 / 15.15 (sum 43.85), computed on the undiscounted subtotals:
    //    exact shares 2.30330…, 4.24173…, 3.45496… → truncated 2.30, 4.24, 3.45 = 9.99; the one
    //    cent left goes to the largest remainder (charlie, 0.00496) → 2.30, 4.24, 3.46.
    //    (Rounding each share would give 9.99; "earliest line first" would pick alpha.)
    //    Line discounts 3.82, 7.03, 5.73 = 16.58; nets 6.28, 11.57, 9.42; bravo's unit
    //    11.57 / 2 = 5.785 → 5.79. Taxes 6.28 × 0.045 = 0.2826 → 0.28; 11.57 × 0.045 = 0.52065
    //    → 0.52; 9.42 × 0.045 = 0.4239 → 0.42; + shipping tax 0.32 = 1.54.
    //    total 43.85 − 16.58 + 1.54 + 7.00 = 35.81.
    let r = update(
        &app,
        &update_body("p-5", fid, json!({"coupon": {"code": "AMT10"}})),
        "amount coupon",
    )
    .await;
    assert_segments(&r, &[(COUPON, true, None)], "amount coupon");
    let order = r.order();
    assert_line_discounts(
        &order,
        "A",
        &[("PCT15", "1.52"), ("AMT10", "2.30")],
        "amount coupon",
    );
    assert_line_discounts(
        &order,
        "B",
        &[("PCT15", "2.79"), ("AMT10", "4.24")],
        "amount coupon",
    );
    assert_line_discounts(
        &order,
        "C",
        &[("PCT15", "2.27"), ("AMT10", "3.46")],
        "amount coupon",
    );
    assert_line(
        &order,
        "A",
        ["10.10", "10.10", "3.82", "6.28", "0.28", "6.56"],
        "amount coupon",
    );
    assert_line(
        &order,
        "B",
        ["9.30", "18.60", "7.03", "5.79", "0.52", "12.09"],
        "amount coupon",
    );
    assert_line(
        &order,
        "C",
        ["15.15", "15.15", "5.73", "9.42", "0.42", "9.84"],
        "amount coupon",
    );
    assert_eq!(
        coupons(&order),
        [
            ("PCT15".to_string(), true, "6.58".to_string()),
            ("AMT10".to_string(), true, "10.00".to_string())
        ],
        "both coupons applied; AMT10's shares sum exactly to 10.00"
    );
    assert_totals(
        &order,
        ["43.85", "16.58", "1.54", "7.00", "35.81"],
        "amount coupon",
    );

    // F. BIG5 needs a sub_total of 100.00 (43.85 here): refused, nothing changes.
    let r = update(
        &app,
        &update_body("p-6", fid, json!({"coupon": {"code": "BIG5"}})),
        "min_subtotal",
    )
    .await;
    assert_segments(
        &r,
        &[(COUPON, false, Some("COUPON_NOT_APPLICABLE"))],
        "min_subtotal",
    );
    let order = r.order();
    assert_eq!(
        coupons(&order).len(),
        2,
        "BIG5 must not be added: {:?}",
        coupons(&order)
    );
    assert_totals(
        &order,
        ["43.85", "16.58", "1.54", "7.00", "35.81"],
        "min_subtotal",
    );
    assert_eq!(
        read_order(&app, fid, "min_subtotal").await,
        order,
        "the stored order is the answered one"
    );

    // G. Removing AMT10 gives back step D exactly; removing PCT15 too brings free shipping back.
    let r = update(
        &app,
        &update_body(
            "p-7",
            fid,
            json!({"coupon": {"code": "AMT10", "remove": true}}),
        ),
        "remove AMT10",
    )
    .await;
    assert_segments(&r, &[(COUPON, true, None)], "remove AMT10");
    let order = r.order();
    assert_line_discounts(&order, "B", &[("PCT15", "2.79")], "remove AMT10");
    assert_totals(
        &order,
        ["43.85", "6.58", "2.00", "7.00", "46.27"],
        "remove AMT10",
    );
    let r = update(
        &app,
        &update_body(
            "p-8",
            fid,
            json!({"coupon": {"code": "PCT15", "remove": true}}),
        ),
        "remove PCT15",
    )
    .await;
    let order = r.order();
    assert_eq!(coupons(&order), [], "no coupon is left");
    assert_eq!(
        options(&json!([order["shipment_plans"][0]["selected_option"]])),
        [("std", "0.00", "0.00", "0.00")],
        "free shipping is reached again at 43.85"
    );
    assert_totals(
        &order,
        ["43.85", "0.00", "1.97", "0.00", "45.82"],
        "remove PCT15",
    );
}

/// Fast shows the shopper which change was refused, so a failed segment must change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_segment_changes_nothing_while_the_others_apply() {
    let app = spawn_app().await;
    let fid = "F-300";
    let create = json!({
        "type": "ENTITY_TYPE_ORDER", "app_id": "test-app", "request_id": {"value": "s-1"},
        "order": {"is_cart": true, "order": {"id": {"value": fid}, "lines": [
            {"id": {"value": "L-1"}, "external_product_id": "hoodie-01", "quantity": 1},
            {"id": {"value": "L-2"}, "external_variant_id": "tee-01-M", "quantity": 2}
        ]}}
    });
    let created = app.post("create", &create).await;
    assert_eq!(
        created.status,
        200,
        "create: {}",
        String::from_utf8_lossy(&created.bytes)
    );
    assert_totals(
        &created.order(),
        ["72.99", "0.00", "0.00", "0.00", "72.99"],
        "create",
    );

    // Each step: the update answer, then a read that must show exactly the answered order.
    async fn step(app: &TestApp, rid: &str, segment: Value, name: &str) -> Value {
        let r = update(app, &update_body(rid, "F-300", segment), name).await;
        let answered = r.order();
        let stored = read_order(app, "F-300", name).await;
        assert_eq!(
            stored, answered,
            "{name}: a later read must show the answered order"
        );
        r.json()
    }
    fn statuses(body: &Value) -> Vec<(&str, bool, Option<&str>)> {
        body["order"]["status"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|s| {
                        (
                            s["updated"].as_str().unwrap_or(""),
                            s["status"].as_bool().unwrap_or(true),
                            s["reason_code"].as_str(),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }
    fn quantities(order: &Value) -> Vec<(&str, i64)> {
        order["lines"]
            .as_array()
            .map(|l| {
                l.iter()
                    .map(|x| {
                        (
                            x["id"]["value"].as_str().unwrap_or(""),
                            x["quantity"].as_i64().unwrap_or(-1),
                        )
                    })
                    .collect()
            })
            .unwrap_or_default()
    }

    // a. Unknown product on add → PRODUCT_NOT_FOUND; SAVE10 in the same request applies:
    //    discounts 3.30 + 4.00 = 7.30, total 72.99 − 7.30 = 65.69.
    let body = step(
        &app,
        "s-2",
        json!({"items": [{"item_id": {"value": "L-9"}, "external_product_id": "no-such-product",
                          "quantity": 1}],
               "coupon": {"code": "SAVE10"}}),
        "unknown product",
    )
    .await;
    assert_eq!(
        statuses(&body),
        [
            (LINE_ITEM, false, Some("PRODUCT_NOT_FOUND")),
            (COUPON, true, None)
        ],
        "unknown product: wrong status[]"
    );
    let order = &body["order"]["order"];
    assert_eq!(
        quantities(order),
        [("L-1", 1), ("L-2", 2)],
        "unknown product: no line may be added"
    );
    assert_totals(
        order,
        ["72.99", "7.30", "0.00", "0.00", "65.69"],
        "unknown product",
    );

    // b. 51 tees of tee-01-M (stock 50) → INSUFFICIENT_STOCK; bill_to CA applies:
    //    29.69 × 0.0725 = 2.152525 → 2.15, 36.00 × 0.0725 = 2.61; total 65.69 + 4.76 = 70.45.
    let body = step(
        &app,
        "s-3",
        json!({"items": [{"item_id": {"value": "L-2"}, "quantity": 51}],
               "bill_to": {"first_name": "Ada", "country_code": "US",
                           "state_province_code": "CA"}}),
        "stock",
    )
    .await;
    assert_eq!(
        statuses(&body),
        [
            (LINE_ITEM, false, Some("INSUFFICIENT_STOCK")),
            (BILLING, true, None)
        ],
        "stock: wrong status[]"
    );
    let order = &body["order"]["order"];
    assert_eq!(
        quantities(order),
        [("L-1", 1), ("L-2", 2)],
        "stock: L-2 must keep quantity 2"
    );
    assert_totals(order, ["72.99", "7.30", "4.76", "0.00", "70.45"], "stock");

    // c. Quantity 100001 of the (unlimited) mug → INVALID_QUANTITY; shipping to NY applies:
    //    29.69 × 0.08875 = 2.6349875 → 2.63, 36.00 × 0.08875 = 3.195 → 3.20; std 5.00;
    //    total 65.69 + 5.83 + 5.00 = 76.52.
    let body = step(
        &app,
        "s-4",
        json!({"items": [{"item_id": {"value": "L-9"}, "external_product_id": "mug-01",
                          "quantity": 100001}],
               "shipments": [{"ship_to": {"country_code": "US", "state_province_code": "NY"},
                              "line_refs": [{"id": {"value": "L-1"}}, {"id": {"value": "L-2"}}]}]}),
        "quantity",
    )
    .await;
    assert_eq!(
        statuses(&body),
        [
            (LINE_ITEM, false, Some("INVALID_QUANTITY")),
            (SHIPPING_ADDRESS, true, None)
        ],
        "quantity: wrong status[]"
    );
    let order = &body["order"]["order"];
    assert_eq!(
        quantities(order),
        [("L-1", 1), ("L-2", 2)],
        "quantity: no mug line may be added"
    );
    assert_totals(
        order,
        ["72.99", "7.30", "5.83", "5.00", "76.52"],
        "quantity",
    );
    let plan_id = order["shipment_plans"][0]["external_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // d. Unknown coupon → COUPON_NOT_FOUND; L-1 → 2 applies: 65.98 − 6.60 (6.598 → 6.60),
    //    tax 59.38 × 0.08875 = 5.269975 → 5.27; L-2 unchanged (−4.00, 3.20).
    //    sub 105.98, discounts 10.60, tax 8.47, plan 95.38 < 100 → std 5.00; total 108.85.
    let body = step(
        &app,
        "s-5",
        json!({"items": [{"item_id": {"value": "L-1"}, "quantity": 2}],
               "coupon": {"code": "NOPE"}}),
        "coupon",
    )
    .await;
    assert_eq!(
        statuses(&body),
        [
            (LINE_ITEM, true, None),
            (COUPON, false, Some("COUPON_NOT_FOUND"))
        ],
        "coupon: wrong status[]"
    );
    let order = &body["order"]["order"];
    assert_eq!(
        coupons(order),
        [("SAVE10".to_string(), true, "10.60".to_string())],
        "coupon: only SAVE10 may be on the order"
    );
    assert_totals(
        order,
        ["105.98", "10.60", "8.47", "5.00", "108.85"],
        "coupon",
    );

    // e. Shipping to Japan (no option ships there) → ADDRESS_NOT_SHIPPABLE, the NY plan stays;
    //    selecting express on it applies: total 105.98 − 10.60 + 8.47 + 15.00 = 118.85.
    let body = step(
        &app,
        "s-6",
        json!({"shipments": [{"ship_to": {"country_code": "JP"},
                              "line_refs": [{"id": {"value": "L-1"}}]}],
               "shipping_option": {"plan_id": {"value": plan_id},
                                   "option_id": {"value": "express"}}}),
        "address",
    )
    .await;
    assert_eq!(
        statuses(&body),
        [
            (SHIPPING_ADDRESS, false, Some("ADDRESS_NOT_SHIPPABLE")),
            (SHIPPING_OPTION, true, None)
        ],
        "address: wrong status[]"
    );
    let order = &body["order"]["order"];
    let plan = &order["shipment_plans"][0];
    assert_eq!(
        (
            &plan["ship_to"]["state_province_code"],
            &plan["external_id"]
        ),
        (&json!("NY"), &json!(plan_id)),
        "address: the NY plan must stay"
    );
    assert_eq!(
        order["shipment_plans"].as_array().map(Vec::len),
        Some(1),
        "address: no second plan"
    );
    assert_totals(
        order,
        ["105.98", "10.60", "8.47", "15.00", "118.85"],
        "address",
    );

    // f. Unknown option → SHIPPING_OPTION_NOT_FOUND, express stays; L-2 → 1 applies:
    //    L-2 20.00 − 2.00, tax 18.00 × 0.08875 = 1.5975 → 1.60. sub 85.98, discounts 8.60,
    //    tax 5.27 + 1.60 = 6.87; total 85.98 − 8.60 + 6.87 + 15.00 = 99.25.
    let body = step(
        &app,
        "s-7",
        json!({"items": [{"item_id": {"value": "L-2"}, "quantity": 1}],
               "shipping_option": {"plan_id": {"value": plan_id},
                                   "option_id": {"value": "teleport"}}}),
        "option",
    )
    .await;
    assert_eq!(
        statuses(&body),
        [
            (LINE_ITEM, true, None),
            (SHIPPING_OPTION, false, Some("SHIPPING_OPTION_NOT_FOUND"))
        ],
        "option: wrong status[]"
    );
    let order = &body["order"]["order"];
    assert_eq!(
        order["shipment_plans"][0]["selected_option"]["external_id"], "express",
        "option: express must stay selected"
    );
    assert_totals(order, ["85.98", "8.60", "6.87", "15.00", "99.25"], "option");

    // g. BOOKED on a cart → INVALID_TRANSITION, still a CART; the new bill_to applies.
    let body = step(
        &app,
        "s-8",
        json!({"bill_to": {"first_name": "Grace", "country_code": "US",
                           "state_province_code": "CA"},
               "status": "ORDER_STATUS_BOOKED"}),
        "transition",
    )
    .await;
    assert_eq!(
        statuses(&body),
        [
            (BILLING, true, None),
            (ORDER_STATUS, false, Some("INVALID_TRANSITION"))
        ],
        "transition: wrong status[]"
    );
    let order = &body["order"]["order"];
    assert_eq!(
        (
            &order["status"],
            &order["order_type"],
            &order["bill_to"]["first_name"]
        ),
        (
            &json!("ORDER_STATUS_CART"),
            &json!("ORDER_TYPE_CART"),
            &json!("Grace")
        ),
        "transition: the cart stays a cart, with the new bill_to"
    );
    assert_eq!(quantities(order), [("L-1", 2), ("L-2", 1)], "final lines");
    assert_totals(
        order,
        ["85.98", "8.60", "6.87", "15.00", "99.25"],
        "transition",
    );
}

/// Fast's contract grows: fields we do not model must come back byte for byte, never reformatted.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unknown_fields_come_back_with_the_same_json_text() {
    let app = spawn_app().await;
    const ORDER_X: &str =
        r#""x_order":{"big":12345678901234567890123,"ratio":1.10,"list":[1.10,"a",null,true]}"#;
    const NOTE: &str = r#""user_note":"ring twice""#;
    const LINE_X: &str =
        r#""x_line":{"engraving":"Ada","weight":1.10,"serial":98765432109876543210987}"#;
    const BILL_X: &str = r#""x_bill":{"vat_id":"DE123","n":1.10,"big":12345678901234567890123}"#;
    const SHIP_X: &str = r#""x_ship":{"door_code":"42","n":1.10,"big":12345678901234567890123}"#;
    let has = |bytes: &[u8], text: &str| String::from_utf8_lossy(bytes).contains(text);

    let create = format!(
        r#"{{"type":"ENTITY_TYPE_ORDER","app_id":"test-app","request_id":{{"value":"x-1"}},
        "order":{{"is_cart":true,"order":{{"id":{{"value":"F-400"}},"order_type":"ORDER_TYPE_CART",
        "status":"ORDER_STATUS_CART","bill_to":{{}},{NOTE},{ORDER_X},
        "lines":[{{"id":{{"value":"L-1"}},"external_product_id":"mug-01","quantity":1,
        {LINE_X}}}]}}}}}}"#
    );
    let created = app
        .post_raw("create", create.into_bytes(), "application/json")
        .await;
    assert_eq!(
        created.status,
        200,
        "create: {}",
        String::from_utf8_lossy(&created.bytes)
    );
    for text in [NOTE, ORDER_X, LINE_X] {
        assert!(
            has(&created.bytes, text),
            "the create answer lost or changed {text}"
        );
    }

    let bill = format!(
        r#"{{"type":"ENTITY_TYPE_ORDER","request_id":{{"value":"x-2"}},
        "order":{{"order_id":{{"value":"F-400"}},
        "bill_to":{{"first_name":"Ada","country_code":"US","state_province_code":"CA",
        {BILL_X}}}}}}}"#
    );
    let r = app
        .post_raw("update", bill.into_bytes(), "application/json")
        .await;
    assert_eq!(
        r.status,
        200,
        "bill_to: {}",
        String::from_utf8_lossy(&r.bytes)
    );
    assert!(
        has(&r.bytes, BILL_X),
        "the bill_to answer lost or changed {BILL_X}"
    );

    let ship = format!(
        r#"{{"type":"ENTITY_TYPE_ORDER","request_id":{{"value":"x-3"}},
        "order":{{"order_id":{{"value":"F-400"}},
        "shipments":[{{"ship_to":{{"country_code":"US","state_province_code":"NY",{SHIP_X}}},
        "line_refs":[{{"id":{{"value":"L-1"}},"quantity":1}}]}}]}}}}"#
    );
    let r = app
        .post_raw("update", ship.into_bytes(), "application/json")
        .await;
    assert_eq!(
        r.status,
        200,
        "shipments: {}",
        String::from_utf8_lossy(&r.bytes)
    );
    assert!(
        has(&r.bytes, SHIP_X),
        "the shipments answer lost or changed {SHIP_X}"
    );
    // One more recomputation (a coupon) must not disturb any of them.
    let r = update(
        &app,
        &update_body("x-4", "F-400", json!({"coupon": "SAVE10"})),
        "coupon",
    )
    .await;
    assert_segments(&r, &[(COUPON, true, None)], "coupon");

    let read = app.post("read", &read_body("F-400")).await;
    assert_eq!(
        read.status,
        200,
        "read: {}",
        String::from_utf8_lossy(&read.bytes)
    );
    for text in [NOTE, ORDER_X, LINE_X, BILL_X, SHIP_X] {
        assert!(
            has(&read.bytes, text),
            "a read must return {text} unchanged, got {}",
            String::from_utf8_lossy(&read.bytes)
        );
    }
    let order = read.order();
    assert!(
        order["bill_to"].get("x_bill").is_some()
            && order["shipment_plans"][0]["ship_to"]
                .get("x_ship")
                .is_some(),
        "the address extras must stay on their own addresses: {order}"
    );
    // The unknown fields ride along; the money is still computed: mug 12.50 − 1.25,
    // tax 11.25 × 0.08875 = 0.9984375 → 1.00, std 5.00: 12.50 − 1.25 + 1.00 + 5.00 = 17.25.
    assert_totals(&order, ["12.50", "1.25", "1.00", "5.00", "17.25"], "read");
}

/// Fast and its older docs send both forms: seed and numeric inputs must work, answers use names.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn seed_forms_and_numeric_enums_are_accepted_and_answered_with_names() {
    let app = spawn_app().await;
    // Create: tee-01-S 20.00 × "2" = 40.00, enums as numbers.
    let created = app
        .post(
            "create",
            &json!({"entity_type": "ENTITY_ORDER", "request_id": "seed-1", "app_id": "test-app",
                    "order": {"is_cart": true, "order": {
                        "id": {"value": "F-500"}, "order_type": 1, "status": "1",
                        "lines": [{"id": "L-1", "external_product_id": "tee-01",
                                   "external_variant_id": "tee-01-S", "quantity": "2"}]}}}),
        )
        .await;
    assert_eq!(
        created.status,
        200,
        "create: {}",
        String::from_utf8_lossy(&created.bytes)
    );
    let body = created.json();
    assert_eq!(
        (&body["type"], &body["request_id"]),
        (&json!("ENTITY_TYPE_ORDER"), &json!({"value": "seed-1"})),
        "entity_type is answered as type, the request id is echoed"
    );
    let order = created.order();
    assert_eq!(
        (
            &order["order_type"],
            &order["status"],
            &line(&order, "L-1")["quantity"]
        ),
        (
            &json!("ORDER_TYPE_CART"),
            &json!("ORDER_STATUS_CART"),
            &json!(2)
        ),
        "enums come back as names, quantity as the number 2"
    );
    assert_totals(&order, ["40.00", "0.00", "0.00", "0.00", "40.00"], "create");
    let seller_id = order["external_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();

    // Seed update: items[].id as a plain string (L-1 → 3; "sticker-01" unknown → a new line of
    // that product, quantity 1), coupon as a plain string, no request_id.
    //    60.00 − 6.00; 5.99 − 0.60 (0.599 → 0.60); sub 65.99, discounts 6.60, total 59.39.
    let r = update(
        &app,
        &json!({"entity_type": "ENTITY_ORDER",
                "order": {"order_id": "F-500",
                          "items": [{"id": "L-1", "quantity": 3}, {"id": "sticker-01"}],
                          "coupon": "SAVE10"}}),
        "seed update",
    )
    .await;
    assert_segments(
        &r,
        &[(LINE_ITEM, true, None), (COUPON, true, None)],
        "seed update",
    );
    let order = r.order();
    assert_eq!(
        (
            &line(&order, "sticker-01")["external_product_id"],
            &line(&order, "sticker-01")["quantity"]
        ),
        (&json!("sticker-01"), &json!(1)),
        "an unknown plain item id names its product; quantity defaults to 1"
    );
    assert_line(
        &order,
        "L-1",
        ["20.00", "60.00", "6.00", "18.00", "0.00", "54.00"],
        "seed update",
    );
    assert_line(
        &order,
        "sticker-01",
        ["5.99", "5.99", "0.60", "5.39", "0.00", "5.39"],
        "seed update",
    );
    assert_totals(
        &order,
        ["65.99", "6.60", "0.00", "0.00", "59.39"],
        "seed update",
    );

    // Numeric forms: type 1, quantity "2", convert_mode 2 (UPDATE_AND_CONVERT).
    //    40.00 − 4.00 + 5.99 − 0.60: sub 45.99, discounts 4.60, total 41.39.
    let r = update(
        &app,
        &json!({"type": 1, "request_id": {"value": "seed-3"},
                "order": {"order_id": {"value": "F-500"}, "is_cart": true,
                          "items": [{"item_id": {"value": "L-1"}, "quantity": "2"}],
                          "convert_cart_to_order": true, "convert_mode": 2}}),
        "numeric convert",
    )
    .await;
    assert_segments(
        &r,
        &[(LINE_ITEM, true, None), (CONVERT, true, None)],
        "numeric convert",
    );
    let order = r.order();
    assert_eq!(
        (
            &order["status"],
            &order["order_type"],
            &line(&order, "L-1")["quantity"]
        ),
        (
            &json!("ORDER_STATUS_PENDING"),
            &json!("ORDER_TYPE_ORDER"),
            &json!(2)
        ),
        "numeric convert: names out, quantity \"2\" read as 2"
    );
    assert_totals(
        &order,
        ["45.99", "4.60", "0.00", "0.00", "41.39"],
        "numeric convert",
    );

    // "status": 4 is BOOKED, "5" is PENDING_FULFILLMENT; answered by name.
    for (rid, status, name) in [
        ("seed-4", json!(4), "ORDER_STATUS_BOOKED"),
        ("seed-5", json!("5"), "ORDER_STATUS_PENDING_FULFILLMENT"),
    ] {
        let r = update(
            &app,
            &json!({"type": "1", "request_id": {"value": rid},
                    "order": {"external_id": seller_id, "convert_cart_to_order": true,
                              "status": status}}),
            name,
        )
        .await;
        assert_segments(
            &r,
            &[(ORDER_STATUS, true, None), (CONVERT, true, None)],
            name,
        );
        assert_eq!(
            r.order()["status"],
            name,
            "status {status} must be answered as {name}"
        );
        let text = String::from_utf8_lossy(&r.bytes);
        assert!(
            !text.contains(&format!("\"status\":{status}")),
            "enum numbers must never be echoed: {text}"
        );
    }
}

/// A refused create must say which field is wrong, and a repeated create never makes a second cart.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn create_refuses_non_carts_and_unknown_products_and_never_makes_a_second_cart() {
    let app = spawn_app().await;
    let mut not_cart = create_body("c-1", "F-600", &[("L-1", "hoodie-01", 1)]);
    not_cart["order"]["is_cart"] = json!(false);
    let r = app.post("create", &not_cart).await;
    assert_rpc_error(&r, 422, 3, "is_cart", "is_cart false");

    let r = app
        .post(
            "create",
            &create_body("c-2", "F-601", &[("L-1", "ghost-99", 1)]),
        )
        .await;
    assert_rpc_error(&r, 422, 3, "lines[0]", "unknown product in line 0");
    let r = app
        .post(
            "create",
            &create_body(
                "c-3",
                "F-602",
                &[("L-1", "mug-01", 1), ("L-2", "ghost-99", 1)],
            ),
        )
        .await;
    assert_rpc_error(&r, 422, 3, "lines[1]", "unknown product in line 1");
    let greedy = json!({"type": "ENTITY_TYPE_ORDER", "request_id": {"value": "c-4"},
        "order": {"is_cart": true, "order": {"id": {"value": "F-603"},
            "lines": [{"id": {"value": "L-1"}, "external_variant_id": "tee-01-M",
                       "quantity": 51}]}}});
    let r = app.post("create", &greedy).await;
    assert_rpc_error(&r, 422, 3, "lines[0]", "51 tees with 50 in stock");
    for fid in ["F-600", "F-601", "F-602", "F-603"] {
        let r = app.post("read", &read_body(fid)).await;
        assert_eq!(
            r.status, 404,
            "a refused create must store nothing, but {fid} exists"
        );
    }

    let first = app
        .post(
            "create",
            &create_body("c-5", "F-610", &[("L-1", "hoodie-01", 1)]),
        )
        .await;
    assert_eq!(
        first.status,
        200,
        "create: {}",
        String::from_utf8_lossy(&first.bytes)
    );
    let second = app
        .post(
            "create",
            &create_body("c-6", "F-610", &[("L-1", "mug-01", 5)]),
        )
        .await;
    assert_eq!(
        second.status,
        200,
        "a repeated create answers 200: {}",
        String::from_utf8_lossy(&second.bytes)
    );
    assert_eq!(
        second.json()["request_id"]["value"],
        "c-6",
        "the repeat is answered with its own request_id"
    );
    assert_eq!(
        second.order(),
        first.order(),
        "a repeated create must return the first cart unchanged"
    );
    assert_eq!(
        read_order(&app, "F-610", "after repeat").await,
        first.order(),
        "the stored cart is the first one"
    );
    let counts = app.service.store().counts().await.expect("store counts");
    assert_eq!(
        counts.orders, 1,
        "exactly one order may exist after refusals and a repeated create"
    );
}

/// Fast's address check needs the zones; unknown orders and other entities must fail clearly.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn read_errors_shipping_zones_and_unsupported_entities() {
    let app = spawn_app().await;
    let r = app.post("read", &read_body("F-nope")).await;
    assert_rpc_error(&r, 404, 5, "F-nope", "unknown Fast id");
    let r = app
        .post(
            "read",
            &json!({"type": "ENTITY_TYPE_ORDER", "order": {"external_order_id": "no-such-cart"}}),
        )
        .await;
    assert_rpc_error(&r, 404, 5, "no-such-cart", "unknown seller id");

    let r = app
        .post(
            "read",
            &json!({"type": "ENTITY_TYPE_SHIPPING_ZONES", "app_id": "test-app",
                    "request_id": {"value": "z-1"}, "shipping_zones": {}}),
        )
        .await;
    assert_eq!(
        r.status,
        200,
        "zones: {}",
        String::from_utf8_lossy(&r.bytes)
    );
    let body = r.json();
    assert_eq!(
        body["type"], "ENTITY_TYPE_SHIPPING_ZONES",
        "the zones read echoes its type"
    );
    let mut countries: Vec<&str> = body["shipping_zones"]["shipping_zones"]
        .as_array()
        .unwrap_or_else(|| panic!("no shipping_zones.shipping_zones[] in {body}"))
        .iter()
        .map(|z| z["country_iso2"].as_str().unwrap_or(""))
        .collect();
    countries.sort_unstable();
    assert_eq!(
        countries,
        ["CA", "DE", "FR", "GB", "US"],
        "the demo catalog ships to US (std, express) and CA, GB, FR, DE (intl), each once"
    );

    let created = app
        .post(
            "create",
            &create_body("z-2", "F-700", &[("L-1", "hoodie-01", 1)]),
        )
        .await;
    assert_eq!(
        created.status,
        200,
        "create: {}",
        String::from_utf8_lossy(&created.bytes)
    );
    let mut user = update_body("z-3", "F-700", json!({"coupon": {"code": "SAVE10"}}));
    user["type"] = json!("ENTITY_TYPE_USER");
    let r = app.post("update", &user).await;
    assert_rpc_error(&r, 422, 12, "ENTITY_TYPE_USER", "update of a user");
    let r = app
        .post(
            "read",
            &json!({"type": "ENTITY_TYPE_USER", "user": {"email": "a@example.com"}}),
        )
        .await;
    assert_rpc_error(&r, 422, 12, "ENTITY_TYPE_USER", "read of a user");
    assert_eq!(
        read_order(&app, "F-700", "after refused update").await,
        created.order(),
        "a refused entity type must not touch the order"
    );
}
