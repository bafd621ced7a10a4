//! Merchant order management (issue #5) through `/admin/v1/orders…`, against [`FakeFast`]:
//! a loopback stand-in for Fast's order-management API that checks nothing itself but
//! records every call (path, the auth and idempotency headers, the JSON body) and can be
//! told to fail. The server's outbox delivers the calls in the background (a fast poll on
//! the manual clock), so a test acts, then waits for the calls it expects.

use crate::helpers::{create_body, money, spawn_app_with, update_body, Resp, TestApp};
use actix_web::{web, App, HttpRequest, HttpResponse, HttpServer};
use fast_seller::config::{Secret, Settings};
use serde_json::{json, Value};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

const ADMIN_TOKEN: &str = "admin-token-0123456789";
const FAST_TOKEN: &str = "fast-access-token";
const WAIT: Duration = Duration::from_secs(15);

/// One call Fast received.
#[derive(Debug, Clone)]
struct FastCallSeen {
    path: String,
    app: Option<String>,
    auth: Option<String>,
    record_id: Option<String>,
    body: Value,
    /// The status Fast answered.
    status: u16,
}

#[derive(Default)]
struct FakeState {
    calls: Vec<FastCallSeen>,
    /// Answer this status (instead of 200 `{}`) while set.
    fail_with: Option<u16>,
}

struct FakeFast {
    base: String,
    state: Arc<Mutex<FakeState>>,
    handle: actix_web::dev::ServerHandle,
}

async fn fake_handler(
    req: HttpRequest,
    body: web::Bytes,
    state: web::Data<Arc<Mutex<FakeState>>>,
) -> HttpResponse {
    let header = |name: &str| {
        req.headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut st = state.lock().unwrap();
    let status = st.fail_with.unwrap_or(200);
    st.calls.push(FastCallSeen {
        path: req.path().to_string(),
        app: header("x-fast-app"),
        auth: header("x-fast-app-auth"),
        record_id: header("x-fast-record-id"),
        body: serde_json::from_slice(&body).unwrap_or(Value::Null),
        status,
    });
    match st.fail_with {
        Some(code) => HttpResponse::build(actix_web::http::StatusCode::from_u16(code).unwrap())
            .json(json!({"code": 14, "message": "down", "details": []})),
        None => HttpResponse::Ok().json(json!({})),
    }
}

impl FakeFast {
    async fn start() -> FakeFast {
        let state = Arc::new(Mutex::new(FakeState::default()));
        let data = web::Data::new(state.clone());
        let server = HttpServer::new(move || {
            App::new()
                .app_data(data.clone())
                .default_service(web::to(fake_handler))
        })
        .workers(1)
        .disable_signals()
        .bind("127.0.0.1:0")
        .unwrap();
        let port = server.addrs()[0].port();
        let server = server.run();
        let handle = server.handle();
        tokio::spawn(server);
        FakeFast {
            base: format!("http://127.0.0.1:{port}/v1"),
            state,
            handle,
        }
    }

    fn calls(&self) -> Vec<FastCallSeen> {
        self.state.lock().unwrap().calls.clone()
    }

    /// Calls Fast accepted.
    fn accepted(&self) -> Vec<FastCallSeen> {
        self.calls()
            .into_iter()
            .filter(|c| c.status == 200)
            .collect()
    }

    fn fail_with(&self, status: Option<u16>) {
        self.state.lock().unwrap().fail_with = status;
    }

    /// Waits until Fast accepted `n` calls; fails on more.
    async fn wait_accepted(&self, n: usize) -> Vec<FastCallSeen> {
        let start = Instant::now();
        loop {
            let accepted = self.accepted();
            if accepted.len() >= n {
                tokio::time::sleep(Duration::from_millis(100)).await;
                let accepted = self.accepted();
                assert_eq!(accepted.len(), n, "Fast got more calls than expected");
                return accepted;
            }
            assert!(
                start.elapsed() < WAIT,
                "Fast accepted {} calls, expected {n}: {:#?}",
                accepted.len(),
                self.calls()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

impl Drop for FakeFast {
    fn drop(&mut self) {
        let handle = self.handle.clone();
        tokio::spawn(async move { handle.stop(false).await });
    }
}

/// A server whose Fast API is `fake`, with the admin API on.
async fn spawn(fake: &FakeFast) -> TestApp {
    spawn_with(fake, |s| s.app_id = Some("configured-app".into())).await
}

async fn spawn_with(fake: &FakeFast, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let base = fake.base.clone();
    spawn_app_with(move |s| {
        s.admin_token = Some(Secret::new(ADMIN_TOKEN));
        s.fast_api_url = base;
        s.fast_api_token = Some(Secret::new(FAST_TOKEN));
        s.outbox.poll_interval = Duration::from_millis(20);
        tweak(s);
    })
    .await
}

/// Calls the admin API: `method` on `/admin/v1{path}` with an optional JSON body.
async fn admin(
    app: &TestApp,
    method: &str,
    path: &str,
    body: Option<&Value>,
    headers: &[(&str, &str)],
) -> Resp {
    let url = format!("{}/admin/v1{path}", app.base);
    let mut req = match method {
        "GET" => app.client.get(url),
        _ => app.client.post(url),
    }
    .bearer_auth(ADMIN_TOKEN);
    for (k, v) in headers {
        req = req.header(*k, *v);
    }
    if let Some(b) = body {
        req = req
            .header("content-type", "application/json")
            .body(serde_json::to_vec(b).unwrap());
    }
    let r = req.send().await.expect("request sent");
    Resp {
        status: r.status().as_u16(),
        headers: r.headers().clone(),
        bytes: r.bytes().await.expect("body").to_vec(),
    }
}

fn ok(r: &Resp, what: &str) -> Value {
    assert_eq!(
        r.status,
        200,
        "{what}: {}",
        String::from_utf8_lossy(&r.bytes)
    );
    r.json()
}

fn refused(r: &Resp, status: u16, what: &str) -> String {
    assert_eq!(
        r.status,
        status,
        "{what}: {}",
        String::from_utf8_lossy(&r.bytes)
    );
    let body = r.json();
    assert!(body["code"].is_i64(), "{what}: an rpcStatus body: {body}");
    body["message"].as_str().unwrap_or_default().to_string()
}

/// A booked order `fast_id` billed in California (7.25 %): L-1 two mugs (physical, 12.50),
/// L-2 one e-book (digital, 9.99). Sub-total 34.99, tax 1.81 + 0.72, total 37.52.
async fn booked_order(app: &TestApp, fast_id: &str) -> Value {
    let r = app
        .post(
            "create",
            &create_body(
                &format!("{fast_id}-c"),
                fast_id,
                &[("L-1", "mug-01", 2), ("L-2", "ebook-01", 1)],
            ),
        )
        .await;
    let seller_id = r.order()["external_id"].clone();
    let steps = [
        json!({"bill_to": {"first_name": "Ada", "email": format!("{fast_id}@example.com"),
               "address_1": "1 Market St", "city_locality": "San Francisco",
               "state_province_code": "CA", "country": "US", "country_code": "US",
               "postal_code": "94105"}}),
        json!({"convert_cart_to_order": true}),
    ];
    for (i, segment) in steps.into_iter().enumerate() {
        let r = app
            .post(
                "update",
                &update_body(&format!("{fast_id}-u{i}"), fast_id, segment),
            )
            .await;
        ok(&r, "checkout");
    }
    let r = app
        .post(
            "update",
            &json!({"type": "ENTITY_TYPE_ORDER", "app_id": "test-app",
                    "request_id": {"value": format!("{fast_id}-booked")},
                    "order": {"external_id": seller_id, "convert_cart_to_order": true,
                              "status": "ORDER_STATUS_BOOKED"}}),
        )
        .await;
    let order = r.order();
    assert_eq!(order["status"], "ORDER_STATUS_BOOKED");
    assert_eq!(money(&order["total_amount"]), "37.52");
    order
}

/// A fake Fast, a server using it, and [`booked_order`] `fast_id` on it.
async fn with_booked_order(fast_id: &str) -> (FakeFast, TestApp) {
    let fake = FakeFast::start().await;
    let app = spawn(&fake).await;
    booked_order(&app, fast_id).await;
    (fake, app)
}

/// POSTs an admin action that must succeed; returns its answer.
async fn post_ok(app: &TestApp, path: &str, body: &Value) -> Value {
    ok(&admin(app, "POST", path, Some(body), &[]).await, path)
}

/// [`booked_order`], then everything shipped.
async fn shipped_order(app: &TestApp, fast_id: &str) {
    booked_order(app, fast_id).await;
    let body = json!({"carrier": "UPS", "tracking_number": "T"});
    post_ok(app, &format!("/orders/{fast_id}/fulfillments"), &body).await;
}

fn forwarded_types(app: &TestApp) -> Vec<String> {
    let text = std::fs::read_to_string(app.data_dir.join("forwarded.jsonl")).unwrap_or_default();
    text.lines()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["type"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect()
}

/// Waits until the commerce backend (file) got `types`, in this order.
async fn wait_forwarded(app: &TestApp, types: &[&str]) {
    let start = Instant::now();
    while forwarded_types(app) != types {
        assert!(
            start.elapsed() < WAIT,
            "forwarded {:?}, expected {types:?}",
            forwarded_types(app)
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn partial_then_full_cancel_reaches_fast_and_the_backend() {
    let (fake, app) = with_booked_order("F-C1").await;
    let shown = ok(&admin(&app, "GET", "/orders/F-C1", None, &[]).await, "show");
    let v0 = shown["version"].as_u64().unwrap();

    // Partial: one mug. 12.50 and 0.90 of tax leave (the staying mug keeps 0.91, 1.81 × 1/2
    // half away from zero).
    let body = json!({"lines": [{"line_id": "L-1", "quantity": 1}],
                      "reason": "CANCEL_REASON_CODE_CUSTOMER_INITIATED",
                      "note": "changed mind", "employee_id": "emp-7", "source": "CSR"});
    let r = ok(
        &admin(&app, "POST", "/orders/F-C1/cancel", Some(&body), &[]).await,
        "partial cancel",
    );
    assert_eq!(r["version"].as_u64(), Some(v0 + 1), "the version moves");
    assert_eq!(r["status"], "ORDER_STATUS_BOOKED");
    assert_eq!(r["order"]["lines"][0]["quantity"], json!(1));
    assert_eq!(money(&r["order"]["sub_total"]), "22.49");
    assert_eq!(money(&r["result"]["cancel_total"]), "13.40");
    assert_eq!(money(&r["order"]["total_amount"]), "24.12");
    let audit = &r["management"]["audit"];
    assert_eq!(audit.as_array().map(Vec::len), Some(1));
    assert_eq!(audit[0]["actor"]["employee_id"], "emp-7");
    assert_eq!(audit[0]["actor"]["source"], "CSR");
    assert_eq!(money(&audit[0]["totals_before"]["total_amount"]), "37.52");
    assert_eq!(money(&audit[0]["totals_after"]["total_amount"]), "24.12");

    // Whole order, with a seed code: Fast gets its cancel call, once.
    let body = json!({"seed_code": 4, "note": "out of stock"});
    let r = ok(
        &admin(&app, "POST", "/orders/F-C1/cancel", Some(&body), &[]).await,
        "full cancel",
    );
    assert_eq!(r["status"], "ORDER_STATUS_CANCELED");
    assert_eq!(money(&r["order"]["total_amount"]), "0.00");
    let calls = fake.wait_accepted(1).await;
    assert_eq!(calls[0].path, "/v1/external/orders/F-C1");
    assert_eq!(calls[0].app.as_deref(), Some("configured-app"));
    assert_eq!(calls[0].auth.as_deref(), Some(FAST_TOKEN));
    assert!(calls[0].record_id.is_some(), "a stable record id per call");
    assert_eq!(calls[0].body["order_id"]["value"], "F-C1");
    assert_eq!(calls[0].body["reason"], "CANCEL_REASON_CODE_NO_STOCK");
    wait_forwarded(
        &app,
        &[
            "order.converted",
            "order.status_changed",
            "order.canceled",
            "order.canceled",
        ],
    )
    .await;

    // The status machine forbids more.
    let msg = refused(
        &admin(&app, "POST", "/orders/F-C1/cancel", Some(&json!({})), &[]).await,
        409,
        "cancel of a canceled order",
    );
    assert!(msg.contains("already canceled"), "{msg}");
    // A cart cannot be canceled by the merchant.
    app.post(
        "create",
        &create_body("cart-c", "F-CART", &[("L-1", "mug-01", 1)]),
    )
    .await;
    refused(
        &admin(&app, "POST", "/orders/F-CART/cancel", Some(&json!({})), &[]).await,
        409,
        "cancel of a cart",
    );
    refused(
        &admin(&app, "POST", "/orders/NOPE/cancel", Some(&json!({})), &[]).await,
        404,
        "unknown order",
    );
    // A body without a Content-Type is refused, not dropped (it would cancel everything).
    let r = app
        .client
        .post(format!("{}/admin/v1/orders/F-CART/cancel", app.base))
        .bearer_auth(ADMIN_TOKEN)
        .body(r#"{"lines": [{"line_id": "L-1", "quantity": 1}]}"#)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 415, "a body without a Content-Type");
    // A misspelt field is refused, naming it, rather than ignored.
    let msg = refused(
        &admin(
            &app,
            "POST",
            "/orders/F-CART/cancel",
            Some(&json!({"reson": "NO_STOCK"})),
            &[],
        )
        .await,
        400,
        "a misspelt field",
    );
    assert!(msg.contains("reson: unknown field"), "{msg}");
    let msg = refused(
        &admin(
            &app,
            "POST",
            "/orders/F-CART/cancel",
            Some(&json!({"lines": [{"line_id": "L-1", "qty": 1}]})),
            &[],
        )
        .await,
        400,
        "a misspelt line field",
    );
    assert!(msg.contains("lines[0].qty: unknown field"), "{msg}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn refunds_follow_the_restock_rules_and_are_idempotent() {
    let (fake, app) = with_booked_order("F-R1").await;

    // Nothing shipped yet: an unfulfilled mug can only be canceled.
    let body = json!({"lines": [{"line_id": "L-1", "quantity": 1, "restock": "return"}]});
    let msg = refused(
        &admin(
            &app,
            "POST",
            "/orders/F-R1/refunds/calculate",
            Some(&body),
            &[],
        )
        .await,
        422,
        "return of an unfulfilled unit",
    );
    assert!(msg.contains("restock `return`"), "{msg}");
    let body = json!({"lines": [{"line_id": "L-1", "quantity": 1, "restock": "cancel"}]});
    let calc = post_ok(&app, "/orders/F-R1/refunds/calculate", &body).await;
    assert_eq!(money(&calc["calculation"]["totals"]["total"]), "13.40");

    // Ship everything, then refund: physical may return, digital may not.
    post_ok(
        &app,
        "/orders/F-R1/fulfillments",
        &json!({"carrier": "UPS", "tracking_number": "1Z999"}),
    )
    .await;
    let digital = json!({"lines": [{"line_id": "L-2", "quantity": 1, "restock": "return"}]});
    refused(
        &admin(
            &app,
            "POST",
            "/orders/F-R1/refunds/calculate",
            Some(&digital),
            &[],
        )
        .await,
        422,
        "return of a digital line",
    );
    let body = json!({"lines": [{"line_id": "L-1", "quantity": 1, "restock": "return"},
                                {"line_id": "L-2", "quantity": 1}],
                      "reason": "REFUND_REASON_CODE_DAMAGED_PRODUCT", "note": "broken"});
    let calc = post_ok(&app, "/orders/F-R1/refunds/calculate", &body).await;
    let lines = &calc["calculation"]["lines"];
    assert_eq!(lines[0]["restock"], "return");
    assert_eq!(
        lines[1]["restock"], "no_restock",
        "digital defaults to no_restock"
    );
    assert_eq!(money(&lines[0]["amount_incl_tax"]), "13.41");
    assert_eq!(money(&lines[1]["amount_incl_tax"]), "10.71");
    assert_eq!(money(&calc["calculation"]["totals"]["total"]), "24.12");

    let mut create = body.clone();
    create["calculation"] = calc["calculation"].clone();
    let key = [("idempotency-key", "refund-1")];
    let first = admin(&app, "POST", "/orders/F-R1/refunds", Some(&create), &key).await;
    let r = ok(&first, "create");
    assert_eq!(
        money(&r["result"]["calculation"]["totals"]["total"]),
        "24.12"
    );
    let again = admin(&app, "POST", "/orders/F-R1/refunds", Some(&create), &key).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.bytes, first.bytes, "a retry gets the same answer");
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let mut other = create.clone();
    other["note"] = json!("different");
    refused(
        &admin(&app, "POST", "/orders/F-R1/refunds", Some(&other), &key).await,
        422,
        "the key reused with another body",
    );

    // Fast: the fulfilment event, then one refund with its lines, to the cent.
    let calls = fake.wait_accepted(2).await;
    assert_eq!(calls[0].path, "/v1/external/orders/F-R1/business_event");
    let refund = &calls[1];
    assert_eq!(refund.path, "/v1/external/orders/F-R1/refund");
    assert_eq!(refund.body["amount"], "24.12");
    assert_eq!(refund.body["tax_amount"], "1.63");
    assert_eq!(refund.body["shipping_amount"], "0.00");
    assert_eq!(refund.body["reason"], "REFUND_REASON_CODE_DAMAGED_PRODUCT");
    assert_eq!(refund.body["order_lines"][0]["line"]["id"]["value"], "L-1");
    assert_eq!(refund.body["order_lines"][0]["line"]["quantity"], "1");
    assert!(refund.body["external_refund_id"]
        .as_str()
        .is_some_and(|s| !s.is_empty()));
    wait_forwarded(
        &app,
        &[
            "order.converted",
            "order.status_changed",
            "order.fulfilled",
            "order.refunded",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn over_refund_and_double_refund_are_refused() {
    let fake = FakeFast::start().await;
    let app = spawn(&fake).await;
    shipped_order(&app, "F-R2").await;
    let too_many = json!({"lines": [{"line_id": "L-1", "quantity": 3}]});
    refused(
        &admin(
            &app,
            "POST",
            "/orders/F-R2/refunds/calculate",
            Some(&too_many),
            &[],
        )
        .await,
        422,
        "more units than ordered",
    );
    let all = json!({"lines": [{"line_id": "L-1", "quantity": 2}, {"line_id": "L-2", "quantity": 1}],
                     "amount": "37.52"});
    ok(
        &admin(&app, "POST", "/orders/F-R2/refunds", Some(&all), &[]).await,
        "refund all",
    );
    // The same refund again (no idempotency key): nothing is left to refund.
    refused(
        &admin(&app, "POST", "/orders/F-R2/refunds", Some(&all), &[]).await,
        422,
        "double refund",
    );
    // A create that no longer matches what was calculated.
    let stale = json!({"lines": [{"line_id": "L-1", "quantity": 1}], "amount": "13.41"});
    refused(
        &admin(&app, "POST", "/orders/F-R2/refunds", Some(&stale), &[]).await,
        422,
        "refund of a fully refunded line",
    );
    let no_calc = json!({"lines": [{"line_id": "L-1", "quantity": 1}]});
    refused(
        &admin(&app, "POST", "/orders/F-R2/refunds", Some(&no_calc), &[]).await,
        400,
        "create without the calculation",
    );
    let shown = ok(&admin(&app, "GET", "/orders/F-R2", None, &[]).await, "show");
    assert_eq!(
        shown["management"]["refunds"].as_array().map(Vec::len),
        Some(1)
    );
    fake.wait_accepted(2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_refunds_never_exceed_what_was_paid() {
    let fake = FakeFast::start().await;
    let app = spawn(&fake).await;
    shipped_order(&app, "F-R3").await;
    // 12 merchants refund one mug each at once, all having seen the first calculation.
    let body = json!({"lines": [{"line_id": "L-1", "quantity": 1}], "amount": "13.41"});
    let app = Arc::new(app);
    let tasks: Vec<_> = (0..12)
        .map(|_| {
            let app = app.clone();
            let body = body.clone();
            tokio::spawn(async move {
                admin(&app, "POST", "/orders/F-R3/refunds", Some(&body), &[]).await
            })
        })
        .collect();
    let mut succeeded = 0;
    for t in tasks {
        let r = t.await.unwrap();
        match r.status {
            200 => succeeded += 1,
            409 | 422 => {}
            other => panic!("unexpected {other}: {}", String::from_utf8_lossy(&r.bytes)),
        }
    }
    assert_eq!(succeeded, 1, "only the first matches its calculation");
    let shown = ok(&admin(&app, "GET", "/orders/F-R3", None, &[]).await, "show");
    let refunds = shown["management"]["refunds"]
        .as_array()
        .cloned()
        .unwrap_or_default();
    assert_eq!(refunds.len(), 1);
    assert_eq!(
        money(&refunds[0]["calculation"]["totals"]["total"]),
        "13.41"
    );
    // The second mug takes the exact remainder; then nothing is left on the line.
    let rest = json!({"lines": [{"line_id": "L-1", "quantity": 1}], "amount": "13.40"});
    ok(
        &admin(&app, "POST", "/orders/F-R3/refunds", Some(&rest), &[]).await,
        "second mug",
    );
    refused(
        &admin(&app, "POST", "/orders/F-R3/refunds", Some(&rest), &[]).await,
        422,
        "a third mug",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fulfilment_and_capture_become_business_events() {
    let (fake, app) = with_booked_order("F-F1").await;
    let part = json!({"lines": [{"line_id": "L-1", "quantity": 1}], "carrier": "UPS",
                      "tracking_number": "1Z1", "estimated_delivery_date": "2026-01-05"});
    let r = ok(
        &admin(&app, "POST", "/orders/F-F1/fulfillments", Some(&part), &[]).await,
        "partial fulfil",
    );
    assert_eq!(r["status"], "ORDER_STATUS_BOOKED", "units are left to ship");
    refused(
        &admin(&app, "POST", "/orders/F-F1/fulfillments",
               Some(&json!({"carrier": "UPS", "tracking_number": "x", "estimated_delivery_date": "soon"})), &[]).await,
        400,
        "a bad date",
    );
    let r = post_ok(
        &app,
        "/orders/F-F1/fulfillments",
        &json!({"carrier": "FedEx", "tracking_number": "77"}),
    )
    .await;
    assert_eq!(r["status"], "ORDER_STATUS_FULFILLED");
    refused(
        &admin(
            &app,
            "POST",
            "/orders/F-F1/fulfillments",
            Some(&json!({"carrier": "FedEx", "tracking_number": "78"})),
            &[],
        )
        .await,
        409,
        "nothing left to fulfil",
    );
    ok(
        &admin(&app, "POST", "/orders/F-F1/capture", None, &[]).await,
        "capture",
    );
    refused(
        &admin(&app, "POST", "/orders/F-F1/capture", None, &[]).await,
        409,
        "a second capture",
    );

    let calls = fake.wait_accepted(3).await;
    for c in &calls {
        assert_eq!(c.path, "/v1/external/orders/F-F1/business_event");
        assert_eq!(c.body["order_id"]["value"], "F-F1");
    }
    assert_eq!(
        calls[0].body["event_type"],
        "BUSINESS_EVENT_TYPE_FULFILLMENT"
    );
    let shipment = &calls[0].body["fulfillment"]["shipment"];
    assert_eq!(shipment["carrier"], "UPS");
    assert_eq!(shipment["tracking_number"], "1Z1");
    assert_eq!(shipment["estimated_delivery_date"], "2026-01-05");
    assert_eq!(
        shipment["order_lines"],
        json!([{"id": {"value": "L-1"}, "quantity": "1"}])
    );
    assert_eq!(
        calls[0].body["fulfillment"]["status"],
        "ORDER_STATUS_BOOKED"
    );
    assert_eq!(
        calls[1].body["fulfillment"]["status"],
        "ORDER_STATUS_FULFILLED"
    );
    assert_eq!(
        calls[2].body["event_type"],
        "BUSINESS_EVENT_TYPE_CLEAR_TO_COLLECT_PAYMENT"
    );
    assert!(calls[2].body.get("fulfillment").is_none());
    wait_forwarded(
        &app,
        &[
            "order.converted",
            "order.status_changed",
            "order.fulfilled",
            "order.fulfilled",
        ],
    )
    .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_down_for_a_while_then_every_call_arrives_once_in_order() {
    let fake = FakeFast::start().await;
    fake.fail_with(Some(503));
    let app = spawn(&fake).await;
    booked_order(&app, "F-D1").await;
    for (path, body) in [
        (
            "/orders/F-D1/fulfillments",
            json!({"lines": [{"line_id": "L-1", "quantity": 1}], "carrier": "UPS", "tracking_number": "a"}),
        ),
        (
            "/orders/F-D1/fulfillments",
            json!({"carrier": "UPS", "tracking_number": "b"}),
        ),
        (
            "/orders/F-D1/refunds",
            json!({"lines": [{"line_id": "L-2", "quantity": 1}], "amount": "10.71"}),
        ),
    ] {
        ok(&admin(&app, "POST", path, Some(&body), &[]).await, path);
    }
    // Fast refuses the first call for a while; nothing behind it jumps the queue.
    let start = Instant::now();
    while fake.calls().is_empty() {
        assert!(start.elapsed() < WAIT, "the first call is attempted");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        fake.calls()
            .iter()
            .all(|c| c.record_id == fake.calls()[0].record_id),
        "only the head of the order's queue is tried while Fast is down"
    );
    fake.fail_with(None);
    // Past the first retry (5 s + jitter), the queue drains.
    app.clock.advance_ms(10_000);
    let accepted = fake.wait_accepted(3).await;
    let tracking: Vec<&Value> = accepted
        .iter()
        .map(|c| &c.body["fulfillment"]["shipment"]["tracking_number"])
        .collect();
    assert_eq!(tracking[..2], [&json!("a"), &json!("b")]);
    assert!(accepted[2].path.ends_with("/refund"));
    let ids: std::collections::HashSet<_> = accepted.iter().map(|c| c.record_id.clone()).collect();
    assert_eq!(ids.len(), 3, "each call once");
    // The refused attempts carried the same record id as the one that got through.
    let first_id = accepted[0].record_id.clone();
    assert!(fake
        .calls()
        .iter()
        .filter(|c| c.status == 503)
        .all(|c| c.record_id == first_id));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stale_if_match_is_refused() {
    let (_fake, app) = with_booked_order("F-V1").await;
    let shown_resp = admin(&app, "GET", "/orders/F-V1", None, &[]).await;
    let shown = ok(&shown_resp, "show");
    let v = shown["version"].as_u64().unwrap();
    assert_eq!(shown_resp.header("etag"), Some(format!("\"{v}\"").as_str()));
    let stale = (v - 1).to_string();
    let body = json!({"lines": [{"line_id": "L-1", "quantity": 1}]});
    let msg = refused(
        &admin(
            &app,
            "POST",
            "/orders/F-V1/cancel",
            Some(&body),
            &[("if-match", &stale)],
        )
        .await,
        409,
        "stale If-Match",
    );
    assert!(msg.contains("stale"), "{msg}");
    let stale_resp = admin(
        &app,
        "POST",
        "/orders/F-V1/cancel",
        Some(&body),
        &[("if-match", "0")],
    )
    .await;
    assert_eq!(stale_resp.status, 409);
    assert_eq!(
        stale_resp.header("retry-after"),
        None,
        "a stale version is no reason to wait and retry"
    );
    assert_eq!(
        stale_resp.json()["details"],
        json!([{
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": "version_mismatch",
            "domain": "fast-seller",
        }]),
        "the merchant API names the cause with a stable code"
    );
    let current = format!("\"{v}\"");
    let action = admin(
        &app,
        "POST",
        "/orders/F-V1/cancel",
        Some(&body),
        &[("if-match", &current)],
    )
    .await;
    let r = ok(&action, "current If-Match");
    assert_eq!(
        action.header("etag"),
        Some(format!("\"{}\"", v + 1).as_str())
    );
    assert_eq!(r["version"].as_u64(), Some(v + 1));
    let next = admin(&app, "GET", "/orders/F-V1", None, &[]).await;
    assert_eq!(next.header("etag"), Some(format!("\"{}\"", v + 1).as_str()));
    // The version the merchant saw is now stale too.
    refused(
        &admin(
            &app,
            "POST",
            "/orders/F-V1/cancel",
            Some(&body),
            &[("if-match", &current)],
        )
        .await,
        409,
        "the same If-Match twice",
    );
    refused(
        &admin(
            &app,
            "POST",
            "/orders/F-V1/cancel",
            Some(&body),
            &[("if-match", "abc")],
        )
        .await,
        400,
        "a malformed If-Match",
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn orders_are_listed_filtered_and_paged() {
    let fake = FakeFast::start().await;
    let app = spawn(&fake).await;
    for id in ["F-L1", "F-L2", "F-L3"] {
        booked_order(&app, id).await;
    }
    app.post(
        "create",
        &create_body("l-cart", "F-L0", &[("L-1", "mug-01", 1)]),
    )
    .await;
    ok(
        &admin(&app, "POST", "/orders/F-L2/cancel", Some(&json!({})), &[]).await,
        "cancel",
    );

    let ids = |r: &Value| -> Vec<String> {
        r["orders"]
            .as_array()
            .unwrap()
            .iter()
            .map(|o| o["id"].as_str().unwrap().to_string())
            .collect()
    };
    let all = ok(&admin(&app, "GET", "/orders", None, &[]).await, "list");
    assert_eq!(ids(&all), ["F-L0", "F-L1", "F-L2", "F-L3"]);
    assert!(all.get("next_cursor").is_none());
    let booked = ok(
        &admin(&app, "GET", "/orders?status=booked", None, &[]).await,
        "booked",
    );
    assert_eq!(ids(&booked), ["F-L1", "F-L3"]);
    let canceled = ok(
        &admin(
            &app,
            "GET",
            "/orders?status=ORDER_STATUS_CANCELED",
            None,
            &[],
        )
        .await,
        "canceled",
    );
    assert_eq!(ids(&canceled), ["F-L2"]);
    assert_eq!(canceled["orders"][0]["email"], "F-L2@example.com");
    let by_email = ok(
        &admin(&app, "GET", "/orders?q=f-l3%40EXAMPLE", None, &[]).await,
        "q",
    );
    assert_eq!(ids(&by_email), ["F-L3"]);
    let page1 = ok(
        &admin(&app, "GET", "/orders?limit=2", None, &[]).await,
        "page 1",
    );
    assert_eq!(ids(&page1), ["F-L0", "F-L1"]);
    let cursor = page1["next_cursor"].as_str().unwrap();
    let page2 = ok(
        &admin(
            &app,
            "GET",
            &format!("/orders?limit=2&cursor={cursor}"),
            None,
            &[],
        )
        .await,
        "page 2",
    );
    assert_eq!(ids(&page2), ["F-L2", "F-L3"]);
    // All were created at the test clock's start (2026-01-01).
    let none = ok(
        &admin(&app, "GET", "/orders?created_from=2026-01-02", None, &[]).await,
        "later",
    );
    assert_eq!(ids(&none), Vec::<String>::new());
    let day = ok(
        &admin(
            &app,
            "GET",
            "/orders?created_from=2026-01-01&created_to=2026-01-02",
            None,
            &[],
        )
        .await,
        "that day",
    );
    assert_eq!(ids(&day).len(), 4);
    refused(
        &admin(&app, "GET", "/orders?status=shipped", None, &[]).await,
        400,
        "unknown status",
    );
    refused(
        &admin(&app, "GET", "/orders?created_from=yesterday", None, &[]).await,
        400,
        "bad date",
    );
    let msg = refused(
        &admin(&app, "GET", "/orders?limit=many", None, &[]).await,
        400,
        "a limit that is no number",
    );
    assert!(msg.contains("query string"), "{msg}");

    // Show: by Fast id or seller id, with the history.
    let shown = ok(&admin(&app, "GET", "/orders/F-L2", None, &[]).await, "show");
    let seller_id = shown["order"]["external_id"].as_str().unwrap().to_string();
    let by_seller = ok(
        &admin(&app, "GET", &format!("/orders/{seller_id}"), None, &[]).await,
        "show by seller id",
    );
    assert_eq!(by_seller["id"], "F-L2");
    assert_eq!(shown["management"]["audit"][0]["action"], "cancel");
    assert_eq!(
        shown["management"]["audit"][0]["actor"]["source"],
        "admin-api"
    );

    // Without the bearer token: 401.
    let r = app.get("/admin/v1/orders").await;
    assert_eq!(r.status, 401);
}

/// Runs `fast-seller orders <args>` against `app`; returns (exit code, stdout, stderr).
async fn orders_cli(app: &TestApp, args: &[&str]) -> (i32, String, String) {
    orders_cli_with(&app.base, args, Some(ADMIN_TOKEN)).await
}

/// Runs `fast-seller orders <args> --url base` with `token` as FAST_SELLER_ADMIN_TOKEN.
async fn orders_cli_with(base: &str, args: &[&str], token: Option<&str>) -> (i32, String, String) {
    let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fast-seller"));
    cmd.arg("orders")
        .args(args)
        .args(["--url", base])
        .env_remove("FAST_SELLER_ADMIN_TOKEN")
        .stdin(std::process::Stdio::null());
    if let Some(token) = token {
        cmd.env("FAST_SELLER_ADMIN_TOKEN", token);
    }
    let out = tokio::task::spawn_blocking(move || cmd.output())
        .await
        .unwrap()
        .expect("the binary runs");
    (
        out.status.code().unwrap_or(-1),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

fn cli_json(out: &(i32, String, String), what: &str) -> Value {
    assert_eq!(out.0, 0, "{what}: {}", out.2);
    serde_json::from_str(&out.1).unwrap_or_else(|e| panic!("{what}: {e}: {}", out.1))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_orders_commands_drive_the_merchant_api() {
    let (fake, app) = with_booked_order("F-CLI").await;

    let list = cli_json(
        &orders_cli(&app, &["list", "--status", "booked", "--json"]).await,
        "list",
    );
    assert_eq!(list["orders"][0]["id"], "F-CLI");
    let shown = cli_json(&orders_cli(&app, &["show", "F-CLI"]).await, "show");
    let v = shown["version"].as_u64().unwrap().to_string();

    let canceled = cli_json(
        &orders_cli(
            &app,
            &[
                "cancel",
                "F-CLI",
                "--line",
                "L-1=1",
                "--reason",
                "seed:1",
                "--note",
                "n",
                "--employee-id",
                "e-1",
                "--if-match",
                &v,
            ],
        )
        .await,
        "cancel",
    );
    assert_eq!(canceled["order"]["lines"][0]["quantity"], json!(1));
    let audit = &canceled["management"]["audit"][0];
    assert_eq!(audit["actor"]["source"], "cli");
    assert_eq!(audit["actor"]["employee_id"], "e-1");
    let stale = orders_cli(
        &app,
        &["cancel", "F-CLI", "--line", "L-1=1", "--if-match", &v],
    )
    .await;
    assert_eq!(stale.0, 1, "a stale version fails");
    assert!(stale.2.contains("409"), "{}", stale.2);

    let fulfilled = cli_json(
        &orders_cli(
            &app,
            &[
                "fulfil",
                "F-CLI",
                "--carrier",
                "UPS",
                "--tracking-number",
                "1Z",
                "--estimated-delivery-date",
                "2026-01-09",
            ],
        )
        .await,
        "fulfil",
    );
    assert_eq!(fulfilled["status"], "ORDER_STATUS_FULFILLED");
    let dry = cli_json(
        &orders_cli(
            &app,
            &["refund", "F-CLI", "--line", "L-1=1:return", "--dry-run"],
        )
        .await,
        "refund --dry-run",
    );
    assert_eq!(money(&dry["calculation"]["totals"]["total"]), "13.41");
    let refunded = cli_json(
        &orders_cli(
            &app,
            &[
                "refund",
                "F-CLI",
                "--line",
                "L-1=1:return",
                "--reason",
                "unsatisfied",
                "--idempotency-key",
                "cli-r1",
            ],
        )
        .await,
        "refund",
    );
    assert_eq!(
        money(&refunded["result"]["calculation"]["totals"]["total"]),
        "13.41"
    );
    cli_json(&orders_cli(&app, &["capture", "F-CLI"]).await, "capture");
    let bad = orders_cli(&app, &["cancel", "F-CLI", "--line", "L-1"]).await;
    assert_eq!(bad.0, 1);
    assert!(bad.2.contains("LINE_ID=QTY"), "{}", bad.2);

    // Fast: the fulfilment, the refund, the capture; the partial cancel stays local.
    let calls = fake.wait_accepted(3).await;
    let paths: Vec<&str> = calls.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/v1/external/orders/F-CLI/business_event",
            "/v1/external/orders/F-CLI/refund",
            "/v1/external/orders/F-CLI/business_event"
        ]
    );
    assert_eq!(calls[1].body["reason"], "REFUND_REASON_CODE_UNSATISFIED");
}

/// Without a configured app id, Fast's calls carry the app id Fast created the order with; a
/// bare API root gets Fast's `/v1`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fast_calls_fall_back_to_the_orders_app_id() {
    let fake = FakeFast::start().await;
    let root = fake.base.trim_end_matches("/v1").to_string();
    let app = spawn_with(&fake, move |s| s.fast_api_url = root).await;
    booked_order(&app, "F-APP").await;
    post_ok(&app, "/orders/F-APP/cancel", &json!({})).await;
    let calls = fake.wait_accepted(1).await;
    assert_eq!(calls[0].path, "/v1/external/orders/F-APP");
    assert_eq!(
        calls[0].app.as_deref(),
        Some("test-app"),
        "the create's app_id"
    );
    assert_eq!(calls[0].body["order_id"]["value"], "F-APP");
}

/// Shipping is refunded only when asked for, in full or by amount, never beyond what is left.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn shipping_is_refunded_in_full_or_by_amount_once() {
    let fake = FakeFast::start().await;
    let app = spawn(&fake).await;
    let id = "F-S1";
    app.post(
        "create",
        &create_body("s-c", id, &[("L-1", "mug-01", 2), ("L-2", "ebook-01", 1)]),
    )
    .await;
    let ship_to = json!({"first_name": "Ada", "address_1": "1 Market St",
                         "city_locality": "San Francisco", "state_province_code": "CA",
                         "country": "US", "country_code": "US", "postal_code": "94105"});
    let steps = [
        json!({"bill_to": ship_to}),
        json!({"shipments": [{"ship_to": ship_to,
                              "line_refs": [{"id": {"value": "L-1"}, "quantity": 2}]}]}),
        json!({"convert_cart_to_order": true}),
        json!({"status": "ORDER_STATUS_BOOKED"}),
    ];
    let mut order = Value::Null;
    for (i, segment) in steps.into_iter().enumerate() {
        order = app
            .post("update", &update_body(&format!("s-u{i}"), id, segment))
            .await
            .order();
    }
    assert_eq!(money(&order["total_shipping"]), "5.00", "{order}");
    assert_eq!(money(&order["total_amount"]), "42.52");
    post_ok(
        &app,
        "/orders/F-S1/fulfillments",
        &json!({"carrier": "UPS", "tracking_number": "1"}),
    )
    .await;

    let part = json!({"shipping": {"amount": "2.00"}, "reason": "WRONG_SHIPPING"});
    let calc = post_ok(&app, "/orders/F-S1/refunds/calculate", &part).await;
    let shipping = &calc["calculation"]["shipping"];
    assert_eq!(money(&shipping["refundable_amount"]), "5.00");
    assert_eq!(money(&shipping["amount_incl_tax"]), "2.00");
    let mut create = part.clone();
    create["amount"] = json!("2.00");
    post_ok(&app, "/orders/F-S1/refunds", &create).await;
    let rest = json!({"shipping": "full"});
    let calc = post_ok(&app, "/orders/F-S1/refunds/calculate", &rest).await;
    assert_eq!(money(&calc["calculation"]["totals"]["total"]), "3.00");
    let mut create = rest.clone();
    create["calculation"] = calc["calculation"].clone();
    post_ok(&app, "/orders/F-S1/refunds", &create).await;
    refused(
        &admin(
            &app,
            "POST",
            "/orders/F-S1/refunds/calculate",
            Some(&part),
            &[],
        )
        .await,
        422,
        "shipping already refunded",
    );

    let calls = fake.wait_accepted(3).await;
    assert_eq!(calls[1].body["shipping_amount"], "2.00");
    assert_eq!(calls[1].body["amount"], "2.00");
    assert_eq!(calls[1].body["reason"], "REFUND_REASON_CODE_WRONG_SHIPPING");
    assert_eq!(calls[2].body["shipping_amount"], "3.00");
    assert_eq!(calls[2].body["order_lines"], json!([]));
}

/// The merchant API on the PostgreSQL store: an action with an `Idempotency-Key` applies once
/// and its replay is byte-identical there too.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn merchant_actions_are_idempotent_on_postgres() {
    let schema = crate::pg::PgSchema::create().await;
    let url = schema.url();
    let fake = FakeFast::start().await;
    let app = spawn_with(&fake, move |s| {
        s.store = fast_seller::config::StoreConfig::Postgres {
            url: Secret::new(url),
            pool_size: 4,
        };
    })
    .await;
    booked_order(&app, "F-PG").await;
    let body = json!({"lines": [{"line_id": "L-1", "quantity": 1}], "note": "pg"});
    let key = [("idempotency-key", "pg-cancel-1")];
    let first = admin(&app, "POST", "/orders/F-PG/cancel", Some(&body), &key).await;
    let answer = ok(&first, "cancel on PostgreSQL");
    assert_eq!(answer["order"]["lines"][0]["quantity"], json!(1));
    let again = admin(&app, "POST", "/orders/F-PG/cancel", Some(&body), &key).await;
    assert_eq!(again.bytes, first.bytes);
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let shown = ok(&admin(&app, "GET", "/orders/F-PG", None, &[]).await, "show");
    assert_eq!(
        shown["management"]["cancellations"]
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    post_ok(&app, "/orders/F-PG/cancel", &json!({})).await;
    let calls = fake.wait_accepted(1).await;
    assert_eq!(calls[0].path, "/v1/external/orders/F-PG");
}

/// The merchant API's idempotency scope is not an app id Fast may use.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_merchant_scope_is_no_app_id_for_fast() {
    let fake = FakeFast::start().await;
    let app = spawn(&fake).await;
    let mut body = create_body("scope-1", "F-SCOPE", &[("L-1", "mug-01", 1)]);
    body["app_id"] = json!("fast-seller:admin");
    let r = app.post("create", &body).await;
    let msg = refused(&r, 400, "the reserved app id");
    assert!(msg.contains("reserved"), "{msg}");
    assert_eq!(
        r.json()["details"],
        json!([]),
        "Fast's endpoints keep details: []"
    );
}

/// A whole-order cancel from the command line needs a reason (the error lists them) and a
/// confirmation; `list` prints a table; token problems say where the problem is.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cli_confirms_whole_order_cancels_and_names_token_problems() {
    let (_fake, app) = with_booked_order("F-CONF").await;
    let no_reason = orders_cli(&app, &["cancel", "F-CONF"]).await;
    assert_eq!(no_reason.0, 1, "{no_reason:?}");
    assert!(
        no_reason.2.contains("needs --reason") && no_reason.2.contains("customer_initiated"),
        "{}",
        no_reason.2
    );
    let no_yes = orders_cli(&app, &["cancel", "F-CONF", "--reason", "no_stock"]).await;
    assert_eq!(no_yes.0, 1);
    assert!(no_yes.2.contains("needs --yes"), "{}", no_yes.2);
    let bogus = orders_cli(&app, &["cancel", "F-CONF", "--reason", "bogus", "--yes"]).await;
    assert_eq!(bogus.0, 1);
    assert!(
        bogus.2.contains("not a cancel reason") && bogus.2.contains("no_stock"),
        "{}",
        bogus.2
    );

    let table = orders_cli(&app, &["list"]).await;
    assert_eq!(table.0, 0, "{}", table.2);
    let mut lines = table.1.lines();
    let header: Vec<&str> = lines
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(header[..3], ["ID", "SELLER", "ID"], "{}", table.1);
    let row = lines.next().unwrap_or_default();
    assert!(
        row.starts_with("F-CONF ") && row.contains(" booked "),
        "{}",
        table.1
    );

    let canceled = cli_json(
        &orders_cli(&app, &["cancel", "F-CONF", "--reason", "no_stock", "--yes"]).await,
        "cancel --yes",
    );
    assert_eq!(canceled["status"], "ORDER_STATUS_CANCELED");

    let unset = orders_cli_with(&app.base, &["list"], None).await;
    assert_eq!(unset.0, 1);
    assert!(
        unset.2.contains("FAST_SELLER_ADMIN_TOKEN is not set here"),
        "{}",
        unset.2
    );
    let wrong = orders_cli_with(&app.base, &["list"], Some("not-the-token-at-all")).await;
    assert_eq!(wrong.0, 1);
    assert!(wrong.2.contains("refused the token"), "{}", wrong.2);
    let off = crate::helpers::spawn_app().await;
    let disabled = orders_cli_with(&off.base, &["list"], Some(ADMIN_TOKEN)).await;
    assert_eq!(disabled.0, 1);
    assert!(
        disabled.2.contains("has no FAST_SELLER_ADMIN_TOKEN"),
        "{}",
        disabled.2
    );
    for out in [&unset, &wrong, &disabled] {
        assert!(
            !out.2.contains("--url"),
            "no flag the user did not pass: {}",
            out.2
        );
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_payment_ledger_follows_cancels_captures_and_refunds() {
    let (_fake, app) = with_booked_order("F-PAY").await;
    let pay = |v: &Value| -> [String; 5] {
        ["charged", "canceled", "refunded", "kept", "refundable"]
            .map(|k| money(&v["payment"][k]).to_string())
    };
    let shown = ok(
        &admin(&app, "GET", "/orders/F-PAY", None, &[]).await,
        "show",
    );
    assert_eq!(pay(&shown), ["37.52", "0.00", "0.00", "37.52", "37.52"]);
    assert_eq!(shown["payment"]["currency_code"], "USD");
    assert!(shown["payment"]["charged_at_ms"].is_u64(), "{shown}");
    assert_eq!(shown["payment"]["captured"], false);

    // Before capture, refunding an unfulfilled mug cancels it: nothing is refunded.
    let body = json!({"lines": [{"line_id": "L-1", "quantity": 1, "restock": "cancel"}],
                      "amount": "13.40"});
    let r = post_ok(&app, "/orders/F-PAY/refunds", &body).await;
    assert_eq!(pay(&r), ["37.52", "13.40", "0.00", "24.12", "24.12"]);
    assert_eq!(money(&r["result"]["canceled"]), "13.40");
    let c = &r["management"]["cancellations"][0];
    assert_eq!(c["refund_id"], r["result"]["id"]);

    // After capture the other mug's refund returns its money.
    post_ok(&app, "/orders/F-PAY/capture", &json!({})).await;
    let body = json!({"lines": [{"line_id": "L-1", "quantity": 1, "restock": "cancel"}],
                      "amount": "13.41"});
    let r = post_ok(&app, "/orders/F-PAY/refunds", &body).await;
    assert_eq!(pay(&r), ["37.52", "13.40", "13.41", "10.71", "10.71"]);
    assert_eq!(r["payment"]["captured"], true);
    assert!(r["result"].get("canceled").is_none(), "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_a_fast_token_calls_wait_and_never_go_dead() {
    let fake = FakeFast::start().await;
    let app = spawn_with(&fake, |s| {
        s.app_id = Some("configured-app".into());
        s.fast_api_token = None;
    })
    .await;
    booked_order(&app, "F-NT").await;
    let body = json!({"reason": "CANCEL_REASON_CODE_NO_STOCK"});
    post_ok(&app, "/orders/F-NT/cancel", &body).await;

    // Well past the whole retry schedule (about 75.6 h): the call waits, it is not dead.
    let store = app.service.store();
    for _ in 0..100 {
        app.clock.advance_ms(3_600_000);
        app.outbox.run_once().await.expect("run_once");
    }
    let pending = store
        .outbox_list(Some(fast_seller::store::OutboxState::Pending), 100)
        .await
        .unwrap();
    let call = pending
        .iter()
        .find(|i| i.entry.event_type == "fast.cancel")
        .expect("the cancel call is still pending");
    assert_eq!(
        call.failures, 0,
        "waiting takes no step of the retry schedule"
    );
    assert!(
        call.attempts >= 50,
        "looked at every hour: {}",
        call.attempts
    );
    let (_, attempts) = store.outbox_get(&call.entry.id).await.unwrap().unwrap();
    let why = &attempts.last().unwrap().detail;
    assert!(why.contains("FAST_SELLER_FAST_API_TOKEN"), "{why}");
    let (_, dead) = store.outbox_backlog().await.unwrap();
    assert_eq!(dead, 0);
    assert!(fake.calls().is_empty(), "nothing was sent without a token");
}
