//! Exactly-once handling of `request_id` (docs/idempotency.md; IDEM-01…15).
//!
//! Fast retries any call at any time, and a retry that runs twice adds a second line or
//! charges a second time. Every test here talks HTTP to a real server and checks both the
//! answers (status, exact bytes, `Idempotent-Replayed`) and the stored state behind them.

use crate::helpers::*;
use fast_seller::store::StoreCounts;
use serde_json::{json, Value};
use std::collections::{BTreeMap, BTreeSet};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

/// Seven days, the default retention of idempotency records (docs/idempotency.md#retention).
const RETENTION_MS: u64 = 7 * 24 * 3600 * 1000;

// ---- helpers ----

fn is_replay(r: &Resp) -> bool {
    r.header("Idempotent-Replayed") == Some("true")
}

/// Asserts a first execution: 200 and no replay marker.
fn assert_first(r: &Resp, what: &str) {
    assert_eq!(r.status, 200, "{what} should succeed: {}", show(r));
    assert!(
        r.header("Idempotent-Replayed").is_none(),
        "{what} is a first execution but carries Idempotent-Replayed: {:?}",
        r.header("Idempotent-Replayed")
    );
}

/// Asserts `again` is a replay of `first`: same status, byte-identical body, replay marker.
fn assert_replay_of(again: &Resp, first: &Resp, what: &str) {
    assert_eq!(
        again.status,
        first.status,
        "{what}: a replay must keep the first status; got {}",
        show(again)
    );
    assert!(
        again.bytes == first.bytes,
        "{what}: a replay must return the first answer byte for byte\n first: {}\n again: {}",
        show(first),
        show(again)
    );
    assert_eq!(
        again.header("Idempotent-Replayed"),
        Some("true"),
        "{what}: a replay must carry `Idempotent-Replayed: true`"
    );
}

/// Asserts an rpcStatus error with the given HTTP status and gRPC code.
fn assert_rpc(r: &Resp, status: u16, code: i64, what: &str) {
    assert_eq!(r.status, status, "{what}: wrong status: {}", show(r));
    let body = r.json();
    assert_eq!(
        body["code"].as_i64(),
        Some(code),
        "{what}: rpcStatus code should be {code}: {}",
        show(r)
    );
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{what}: rpcStatus needs a message: {}",
        show(r)
    );
    assert_eq!(
        body["details"],
        json!([]),
        "{what}: rpcStatus needs `details: []`: {}",
        show(r)
    );
}

fn read_body(fast_id: &str) -> Value {
    json!({"type": "ENTITY_TYPE_ORDER", "app_id": "test-app", "order": {"order_id": {"value": fast_id}}})
}

/// The stored order, read back through the API.
async fn read_order(app: &TestApp, fast_id: &str) -> Value {
    let r = app.post("read", &read_body(fast_id)).await;
    assert_eq!(
        r.status,
        200,
        "reading order {fast_id} failed: {}",
        show(&r)
    );
    r.order()
}

async fn counts(app: &TestApp) -> StoreCounts {
    app.service.store().counts().await.expect("store counts")
}

/// Fast line ids of an order, in order.
fn line_ids(order: &Value) -> Vec<String> {
    order["lines"]
        .as_array()
        .map(|lines| {
            lines
                .iter()
                .map(|l| l["id"]["value"].as_str().unwrap_or("<no id>").to_string())
                .collect()
        })
        .unwrap_or_default()
}

/// An update adding (or setting) Fast line `line_id` of `product` to `quantity`.
fn add_line(request_id: &str, fast_id: &str, line_id: &str, product: &str, quantity: i64) -> Value {
    update_body(
        request_id,
        fast_id,
        json!({"items": [{"item_id": {"value": line_id}, "external_product_id": product, "quantity": quantity}]}),
    )
}

fn with_app_id(mut body: Value, app_id: &str) -> Value {
    body["app_id"] = json!(app_id);
    body
}

/// Creates an empty cart `fast_id` and returns the answer.
async fn create_cart(app: &TestApp, request_id: &str, fast_id: &str) -> Resp {
    let r = app
        .post("create", &create_body(request_id, fast_id, &[]))
        .await;
    assert_first(&r, &format!("creating cart {fast_id}"));
    r
}

// ---- IDEM-01, 03, 04, 05 ----

/// IDEM-01: Fast retries when an answer is lost; the retry must get the first answer again,
/// byte for byte and marked as a replay, and must change nothing.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn repeated_create_update_and_delete_are_replayed_byte_for_byte() {
    let app = spawn_app().await;
    let create = create_body("c-1", "F-1", &[("L-1", "hoodie-01", 1)]);

    let first = app.post("create", &create).await;
    assert_first(&first, "first create");
    let order_after_first = read_order(&app, "F-1").await;
    let counts_after_first = counts(&app).await;
    let again = app.post("create", &create).await;
    assert_replay_of(&again, &first, "repeated create");
    assert_eq!(
        read_order(&app, "F-1").await,
        order_after_first,
        "a replayed create changed the order"
    );
    assert_eq!(
        counts(&app).await,
        counts_after_first,
        "a replayed create changed the store"
    );

    let update = add_line("u-1", "F-1", "L-2", "mug-01", 2);
    let first = app.post("update", &update).await;
    assert_first(&first, "first update");
    let order_after_first = read_order(&app, "F-1").await;
    assert_eq!(
        line_ids(&order_after_first),
        ["L-1", "L-2"],
        "the update did not add its line"
    );
    let counts_after_first = counts(&app).await;
    let again = app.post("update", &update).await;
    assert_replay_of(&again, &first, "repeated update");
    assert_eq!(
        read_order(&app, "F-1").await,
        order_after_first,
        "a replayed update changed the order"
    );
    assert_eq!(
        counts(&app).await,
        counts_after_first,
        "a replayed update changed the store"
    );

    let delete = json!({"type": "ENTITY_TYPE_ORDER", "app_id": "test-app", "request_id": {"value": "d-1"},
                        "order": {"order_id": {"value": "F-1"}}});
    let first = app.post("delete", &delete).await;
    assert_first(&first, "first delete");
    assert_eq!(first.json(), json!({}), "delete answers {{}}");
    let order_after_first = read_order(&app, "F-1").await;
    let counts_after_first = counts(&app).await;
    let again = app.post("delete", &delete).await;
    assert_replay_of(&again, &first, "repeated delete");
    assert_eq!(
        read_order(&app, "F-1").await,
        order_after_first,
        "a replayed delete changed the order"
    );
    assert_eq!(
        counts(&app).await,
        counts_after_first,
        "a replayed delete changed the store"
    );
}

/// IDEM-03: reusing a request_id for a different request is a client bug; executing it would
/// lose the first answer, replaying would hide the change. 422, nothing touched, and the
/// original request still gets its original answer afterwards.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn same_request_id_with_a_different_body_is_refused_and_changes_nothing() {
    let app = spawn_app().await;
    create_cart(&app, "c-3", "F-3").await;
    let original = add_line("u-3", "F-3", "L-a", "mug-01", 1);
    let first = app.post("update", &original).await;
    assert_first(&first, "original update");
    let order_before = read_order(&app, "F-3").await;
    let counts_before = counts(&app).await;

    let different = add_line("u-3", "F-3", "L-b", "mug-01", 1);
    let refused = app.post("update", &different).await;
    assert_rpc(&refused, 422, 9, "same request_id, different body");
    assert!(
        refused.header("Idempotent-Replayed").is_none(),
        "a refusal is not a replay but carries Idempotent-Replayed"
    );
    assert_eq!(
        read_order(&app, "F-3").await,
        order_before,
        "the refused request changed the order"
    );
    assert_eq!(
        counts(&app).await,
        counts_before,
        "the refused request changed the store"
    );

    let retry = app.post("update", &original).await;
    assert_replay_of(&retry, &first, "the original request after a refused reuse");
}

/// IDEM-04: the fingerprint covers the endpoint, so a create's request_id reused on an update
/// (or a delete) is a different request, not a replay of the create.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_create_request_id_reused_on_update_or_delete_is_refused() {
    let app = spawn_app().await;
    let created = create_cart(&app, "c-4", "F-4").await;
    let order_before = read_order(&app, "F-4").await;
    let counts_before = counts(&app).await;

    let update = app
        .post("update", &add_line("c-4", "F-4", "L-1", "mug-01", 1))
        .await;
    assert_rpc(&update, 422, 9, "create's request_id on update");
    let delete = app
        .post(
            "delete",
            &json!({"type": "ENTITY_TYPE_ORDER", "app_id": "test-app", "request_id": {"value": "c-4"},
                    "order": {"order_id": {"value": "F-4"}}}),
        )
        .await;
    assert_rpc(&delete, 422, 9, "create's request_id on delete");
    assert_eq!(
        read_order(&app, "F-4").await,
        order_before,
        "a refused reuse changed the order"
    );
    assert_eq!(
        counts(&app).await,
        counts_before,
        "a refused reuse changed the store"
    );

    let again = app.post("create", &create_body("c-4", "F-4", &[])).await;
    assert_replay_of(
        &again,
        &created,
        "the create itself after the refused reuses",
    );
}

/// IDEM-05: Fast (or a proxy) may re-serialise a retry; the same JSON with other key order and
/// whitespace is the same request. But money is compared as text: "29.990" is not "29.99".
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fingerprint_ignores_key_order_and_whitespace_but_not_money_text() {
    let app = spawn_app().await;
    let compact = br#"{"type":"ENTITY_TYPE_ORDER","app_id":"test-app","request_id":{"value":"c-5"},"order":{"is_cart":true,"order":{"id":{"value":"F-5"},"order_type":"ORDER_TYPE_CART","status":"ORDER_STATUS_CART","bill_to":{},"lines":[{"id":{"value":"L-1"},"external_product_id":"hoodie-01","quantity":1,"subtotal_amount":"29.99","tax_amount":"0.00","total_amount":"29.99"}]}}}"#;
    let reordered = b"{\r\n\t\"order\" : {\n    \"order\": {\n      \"lines\": [ {\n        \"total_amount\": \"29.99\",  \"tax_amount\":\"0.00\",\n        \"subtotal_amount\" :\"29.99\", \"quantity\": 1,\n        \"external_product_id\": \"hoodie-01\", \"id\": { \"value\": \"L-1\" }\n      } ],\n      \"bill_to\": { },\n      \"status\": \"ORDER_STATUS_CART\", \"order_type\": \"ORDER_TYPE_CART\",\n      \"id\": {\"value\": \"F-5\"}\n    },\n    \"is_cart\": true\n  },\n  \"request_id\": {\"value\": \"c-5\"},\n  \"app_id\": \"test-app\",\n  \"type\": \"ENTITY_TYPE_ORDER\"\n}\n";
    let first = app
        .post_raw("create", compact.to_vec(), "application/json")
        .await;
    assert_first(&first, "compact create");
    let again = app
        .post_raw("create", reordered.to_vec(), "application/json")
        .await;
    assert_replay_of(
        &again,
        &first,
        "the same create with reordered keys and other whitespace",
    );

    let counts_before = counts(&app).await;
    let order_before = read_order(&app, "F-5").await;
    let changed_money = String::from_utf8(compact.to_vec()).unwrap().replacen(
        r#""subtotal_amount":"29.99""#,
        r#""subtotal_amount":"29.990""#,
        1,
    );
    let refused = app
        .post_raw("create", changed_money.into_bytes(), "application/json")
        .await;
    assert_rpc(
        &refused,
        422,
        9,
        "the same create with subtotal 29.990 instead of 29.99",
    );
    assert_eq!(
        read_order(&app, "F-5").await,
        order_before,
        "the refused create changed the order"
    );
    assert_eq!(
        counts(&app).await,
        counts_before,
        "the refused create changed the store"
    );

    let update = br#"{"type":"ENTITY_TYPE_ORDER","app_id":"test-app","request_id":{"value":"u-5"},"order":{"order_id":{"value":"F-5"},"is_cart":true,"items":[{"item_id":{"value":"L-2"},"external_product_id":"mug-01","quantity":3}]}}"#;
    let update_reordered = b"{ \"order\": { \"items\": [ { \"quantity\": 3, \"external_product_id\": \"mug-01\",\n \"item_id\": { \"value\": \"L-2\" } } ], \"is_cart\": true, \"order_id\": { \"value\": \"F-5\" } },\n \"request_id\": { \"value\": \"u-5\" }, \"app_id\": \"test-app\", \"type\": \"ENTITY_TYPE_ORDER\" }";
    let first = app
        .post_raw("update", update.to_vec(), "application/json")
        .await;
    assert_first(&first, "compact update");
    let again = app
        .post_raw("update", update_reordered.to_vec(), "application/json")
        .await;
    assert_replay_of(
        &again,
        &first,
        "the same update with reordered keys and other whitespace",
    );
    assert_eq!(
        line_ids(&read_order(&app, "F-5").await),
        ["L-1", "L-2"],
        "wrong lines after the update and its replay"
    );
}

// ---- IDEM-08, 09, 10 ----

/// IDEM-08: a replay is the stored answer, never a recomputation: even after another request
/// changed the order, repeating the first returns what it answered then.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replay_returns_the_original_answer_even_after_the_order_changed() {
    let app = spawn_app().await;
    create_cart(&app, "c-8", "F-8").await;
    let a = add_line("u-8a", "F-8", "L-a", "mug-01", 1);
    let first_a = app.post("update", &a).await;
    assert_first(&first_a, "update A");
    assert_eq!(
        line_ids(&first_a.order()),
        ["L-a"],
        "update A's answer should hold its line"
    );
    let b = app
        .post("update", &add_line("u-8b", "F-8", "L-b", "hoodie-01", 2))
        .await;
    assert_first(&b, "update B");
    assert_eq!(
        line_ids(&read_order(&app, "F-8").await),
        ["L-a", "L-b"],
        "update B was not applied"
    );

    let replay_a = app.post("update", &a).await;
    assert_replay_of(&replay_a, &first_a, "update A repeated after update B");
    assert_eq!(
        line_ids(&replay_a.order()),
        ["L-a"],
        "the replay of A shows the current order instead of A's answer"
    );
}

/// IDEM-09: a request_id that cannot be a key (empty, over 255 characters, not a string
/// wrapper) is refused with 400 before anything runs; reads need no request_id at all.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn malformed_request_ids_are_refused_and_reads_need_none() {
    let app = spawn_app().await;
    create_cart(&app, "c-9", "F-9").await;
    let order_before = read_order(&app, "F-9").await;
    let counts_before = counts(&app).await;

    let bad_ids = [
        ("empty", json!({"value": ""})),
        ("300 characters", json!({"value": "x".repeat(300)})),
        ("a number", json!(12345)),
    ];
    for (what, bad) in &bad_ids {
        let mut update = add_line("placeholder", "F-9", "L-bad", "mug-01", 1);
        update["request_id"] = bad.clone();
        let r = app.post("update", &update).await;
        assert_rpc(&r, 400, 3, &format!("update with request_id {what}"));

        let mut create = create_body("placeholder", "F-9-new", &[]);
        create["request_id"] = bad.clone();
        let r = app.post("create", &create).await;
        assert_rpc(&r, 400, 3, &format!("create with request_id {what}"));

        let mut delete = json!({"type": "ENTITY_TYPE_ORDER", "app_id": "test-app", "order": {"order_id": {"value": "F-9"}}});
        delete["request_id"] = bad.clone();
        let r = app.post("delete", &delete).await;
        assert_rpc(&r, 400, 3, &format!("delete with request_id {what}"));
    }
    assert_eq!(
        read_order(&app, "F-9").await,
        order_before,
        "a refused request changed the order"
    );
    assert_eq!(
        counts(&app).await,
        counts_before,
        "a refused request changed the store"
    );

    let read = app.post("read", &read_body("F-9")).await;
    assert_eq!(
        read.status,
        200,
        "a read without request_id should be served: {}",
        show(&read)
    );
    assert_eq!(
        read.order()["id"]["value"],
        "F-9",
        "the read returned the wrong order"
    );
    assert!(
        read.header("Idempotent-Replayed").is_none(),
        "a read is never a replay"
    );
}

/// IDEM-10: request ids are scoped by app: two apps (or tenants) that happen to pick the same
/// request_id must not see each other's answers or be refused as a reuse.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_same_request_id_under_two_app_ids_runs_twice() {
    let app = spawn_app().await;
    create_cart(&app, "c-10", "F-10").await;
    let counts_before = counts(&app).await;
    let from_a = with_app_id(add_line("shared", "F-10", "L-a", "mug-01", 1), "app-a");
    let from_b = with_app_id(add_line("shared", "F-10", "L-b", "mug-01", 1), "app-b");

    let a = app.post("update", &from_a).await;
    assert_first(&a, "app-a's update");
    let b = app.post("update", &from_b).await;
    assert_first(&b, "app-b's update with app-a's request_id");
    assert_eq!(line_ids(&a.order()), ["L-a"], "app-a's answer is wrong");
    assert_eq!(
        line_ids(&b.order()),
        ["L-a", "L-b"],
        "app-b's update did not run on its own"
    );
    assert_eq!(
        counts(&app).await.idempotency_records,
        counts_before.idempotency_records + 2,
        "each app's request needs its own idempotency record"
    );

    assert_replay_of(&app.post("update", &from_a).await, &a, "app-a's repeat");
    assert_replay_of(&app.post("update", &from_b).await, &b, "app-b's repeat");
}

// ---- IDEM-11, 14 ----

/// IDEM-11: records are kept 7 days (Fast may retry long after), then pruned; after pruning
/// the same request runs again, and the merge rules still keep it from duplicating a line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn records_are_kept_seven_days_then_the_request_runs_anew() {
    let app = spawn_app().await;
    let create = create_body("c-11", "F-11", &[]);
    let created = app.post("create", &create).await;
    assert_first(&created, "create");
    let update = add_line("u-11", "F-11", "L-1", "mug-01", 2);
    let first = app.post("update", &update).await;
    assert_first(&first, "update");
    assert_eq!(
        counts(&app).await.idempotency_records,
        2,
        "create and update should leave 2 records"
    );

    app.clock.advance_ms(RETENTION_MS - 1_000);
    let pruned = app.service.prune_idempotency().await.expect("prune");
    assert_eq!(
        pruned, 0,
        "prune at 7 days - 1 s removed records still inside the retention"
    );
    assert_eq!(
        counts(&app).await.idempotency_records,
        2,
        "records vanished before 7 days"
    );
    assert_replay_of(
        &app.post("update", &update).await,
        &first,
        "the update repeated at 7 days - 1 s",
    );
    assert_replay_of(
        &app.post("create", &create).await,
        &created,
        "the create repeated at 7 days - 1 s",
    );

    app.clock.advance_ms(2_000);
    let pruned = app.service.prune_idempotency().await.expect("prune");
    assert_eq!(pruned, 2, "prune past 7 days should remove both records");
    assert_eq!(
        counts(&app).await.idempotency_records,
        0,
        "expired records are still stored"
    );

    let rerun = app.post("update", &update).await;
    assert_first(&rerun, "the update repeated after its record expired");
    let order = read_order(&app, "F-11").await;
    assert_eq!(
        line_ids(&order),
        ["L-1"],
        "re-running an add of an existing Fast line id duplicated it"
    );
    assert_eq!(
        order["lines"][0]["quantity"].as_i64(),
        Some(2),
        "the line's quantity changed"
    );
    let recreate = app.post("create", &create).await;
    assert_first(&recreate, "the create repeated after its record expired");
    assert_eq!(
        recreate.order()["external_id"],
        created.order()["external_id"],
        "a re-run create must answer with the existing cart"
    );
    let c = counts(&app).await;
    assert_eq!(c.orders, 1, "a re-run create made a second cart");
    assert_eq!(
        c.idempotency_records, 2,
        "the re-runs should store fresh records"
    );
}

/// IDEM-14: Fast may send the same line again under a new request_id; the seller keys lines by
/// Fast's line id, so the second add must not create a second line.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_request_ids_adding_the_same_fast_line_make_one_line() {
    let app = spawn_app().await;
    create_cart(&app, "c-14", "F-14").await;
    let first = app
        .post("update", &add_line("u-14a", "F-14", "L-1", "mug-01", 1))
        .await;
    assert_first(&first, "first add");
    let second = app
        .post("update", &add_line("u-14b", "F-14", "L-1", "mug-01", 1))
        .await;
    assert_first(&second, "second add under another request_id");
    let order = read_order(&app, "F-14").await;
    assert_eq!(
        line_ids(&order),
        ["L-1"],
        "the same Fast line id was added twice"
    );
    assert_eq!(
        order["lines"][0]["quantity"].as_i64(),
        Some(1),
        "the line's quantity grew"
    );
    assert_eq!(
        money(&order["sub_total"]),
        "12.50",
        "the sub_total counts the line twice"
    );
}

// ---- concurrency: IDEM-02, IDEM-15, concurrent duplicates ----

/// Concurrent duplicates: Fast may time out and retry while the first call still runs. All
/// copies must get the first answer, and the work must happen exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_duplicates_get_one_answer_and_one_effect() {
    let app = spawn_app().await;
    // A cart of 150 lines makes each merge take a while, so the copies overlap the first.
    let filler: Vec<String> = (0..150).map(|k| format!("P-{k}")).collect();
    let lines: Vec<(&str, &str, i64)> = filler
        .iter()
        .map(|id| (id.as_str(), "sticker-01", 1))
        .collect();
    let created = app
        .post("create", &create_body("c-dup", "F-dup", &lines))
        .await;
    assert_first(&created, "creating the 150-line cart");
    let counts_before = counts(&app).await;
    let body = serde_json::to_vec(&add_line("u-dup", "F-dup", "L-1", "hoodie-01", 3)).unwrap();
    let barrier = Arc::new(tokio::sync::Barrier::new(8));
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let (client, base, body, barrier) = (
                app.client.clone(),
                app.base.clone(),
                body.clone(),
                barrier.clone(),
            );
            tokio::spawn(async move {
                barrier.wait().await;
                post(&client, &base, "update", body)
                    .await
                    .expect("request sent and answered")
            })
        })
        .collect();
    let mut answers = Vec::new();
    for t in tasks {
        answers.push(t.await.expect("task"));
    }
    for (i, r) in answers.iter().enumerate() {
        assert_eq!(
            r.status,
            200,
            "copy {i} of a concurrent duplicate failed: {}",
            show(r)
        );
        assert!(
            r.bytes == answers[0].bytes,
            "copies 0 and {i} got different bodies:\n{}\n{}",
            show(&answers[0]),
            show(r)
        );
    }
    let executions = answers.iter().filter(|r| !is_replay(r)).count();
    assert_eq!(
        executions, 1,
        "{executions} of 8 concurrent copies were executed (not replays)"
    );
    let order = read_order(&app, "F-dup").await;
    let ids = line_ids(&order);
    assert_eq!(
        ids.len(),
        151,
        "the cart should hold its 150 lines plus L-1: {ids:?}"
    );
    assert_eq!(
        ids.iter().filter(|id| id.as_str() == "L-1").count(),
        1,
        "L-1 is not in the cart exactly once"
    );
    assert_eq!(
        order["lines"][150]["quantity"].as_i64(),
        Some(3),
        "L-1 has the wrong quantity"
    );
    assert_eq!(
        counts(&app).await.idempotency_records,
        counts_before.idempotency_records + 1,
        "one request_id must leave exactly one record"
    );
}

/// IDEM-02, the duplicate storm: 100 request ids each sent 10 times in random order by 16
/// concurrent clients. Every line must land exactly once, every copy must get the same bytes,
/// and the server must never fail (a 5xx would make Fast retry into a state it cannot see).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicate_storm_applies_each_request_once() {
    const CARTS: usize = 10;
    const IDS: usize = 100;
    const COPIES: usize = 10;
    const CLIENTS: usize = 16;
    let app = spawn_app().await;
    for c in 0..CARTS {
        create_cart(&app, &format!("storm-create-{c}"), &format!("F-storm-{c}")).await;
    }
    let bodies: Arc<Vec<Vec<u8>>> = Arc::new(
        (0..IDS)
            .map(|n| {
                let body = add_line(
                    &format!("storm-{n}"),
                    &format!("F-storm-{}", n % CARTS),
                    &format!("line-{n}"),
                    "sticker-01",
                    1,
                );
                serde_json::to_vec(&body).unwrap()
            })
            .collect(),
    );
    let mut schedule: Vec<usize> = (0..IDS)
        .flat_map(|n| std::iter::repeat_n(n, COPIES))
        .collect();
    XorShift(0x9E37_79B9_7F4A_7C15).shuffle(&mut schedule);
    let schedule = Arc::new(schedule);
    let cursor = Arc::new(AtomicUsize::new(0));

    let tasks: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let (client, base) = (app.client.clone(), app.base.clone());
            let (bodies, schedule, cursor) = (bodies.clone(), schedule.clone(), cursor.clone());
            tokio::spawn(async move {
                let mut out = Vec::new();
                loop {
                    let i = cursor.fetch_add(1, Ordering::SeqCst);
                    let Some(&n) = schedule.get(i) else { break };
                    let (r, retried) =
                        send_retrying(&client, &base, "update", &bodies[n], &[409]).await;
                    out.push((n, r, retried));
                }
                out
            })
        })
        .collect();
    let mut answers: BTreeMap<usize, Vec<Resp>> = BTreeMap::new();
    let mut lost_connections: BTreeMap<usize, usize> = BTreeMap::new();
    let (mut conflicts, mut transport) = (0, 0);
    for t in tasks {
        for (n, r, retried) in t.await.expect("client task") {
            conflicts += retried.statuses;
            transport += retried.transport;
            *lost_connections.entry(n).or_default() += retried.transport;
            answers.entry(n).or_default().push(r);
        }
    }

    assert_eq!(answers.len(), IDS, "not every request id got answers");
    for (n, rs) in &answers {
        assert_eq!(rs.len(), COPIES, "storm-{n}: wrong number of answers");
        for r in rs {
            assert!(r.status < 500, "storm-{n}: server error: {}", show(r));
            assert_eq!(
                r.status,
                200,
                "storm-{n}: not answered with 200: {}",
                show(r)
            );
            assert!(
                r.bytes == rs[0].bytes,
                "storm-{n}: two 200 answers differ:\n{}\n{}",
                show(&rs[0]),
                show(r)
            );
        }
        // Exactly one copy ran; only when a connection was lost may its answer be the one
        // that never arrived (the retry then got the replay).
        let executions = rs.iter().filter(|r| !is_replay(r)).count();
        let lost = lost_connections.get(n).copied().unwrap_or(0);
        assert!(
            executions == 1 || (executions == 0 && lost > 0),
            "storm-{n} was executed {executions} times (answers without Idempotent-Replayed)"
        );
    }

    let mut seen: BTreeMap<String, usize> = BTreeMap::new();
    for c in 0..CARTS {
        for id in line_ids(&read_order(&app, &format!("F-storm-{c}")).await) {
            let n: usize = id
                .strip_prefix("line-")
                .and_then(|s| s.parse().ok())
                .unwrap_or_else(|| panic!("cart {c} holds an unexpected line {id}"));
            assert_eq!(n % CARTS, c, "line {id} landed in cart {c}");
            *seen.entry(id).or_default() += 1;
        }
    }
    let total: usize = seen.values().sum();
    assert_eq!(
        total, IDS,
        "the 10 carts hold {total} lines in all, expected {IDS}"
    );
    let doubled: Vec<_> = seen.iter().filter(|(_, &k)| k > 1).collect();
    assert!(
        doubled.is_empty(),
        "lines present more than once: {doubled:?}"
    );
    let c = counts(&app).await;
    assert_eq!(
        c.idempotency_records,
        (IDS + CARTS) as u64,
        "idempotency records ≠ one per request id"
    );
    assert_eq!(
        c.orders, CARTS as u64,
        "the storm changed the number of orders"
    );
    eprintln!(
        "duplicate storm: {conflicts} answers were 409, {transport} connections lost; all retried"
    );
}

/// IDEM-15, lost updates: 800 different requests add 800 lines to one cart at once. A merge
/// that reads the order, then writes it back without a lock or version check, loses lines.
/// A 503 (with Retry-After, nothing applied) is retried as Fast would: this test is about
/// what ends up in the cart, not about how long the order lock makes a request wait.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_updates_to_one_cart_lose_nothing() {
    const CLIENTS: usize = 16;
    const PER_CLIENT: usize = 50;
    // 800 lines: above the default max_order_lines (500), which this test is not about.
    let app = spawn_app_with(|s| s.limits.lines = CLIENTS * PER_CLIENT).await;
    create_cart(&app, "c-15", "F-15").await;
    let tasks: Vec<_> = (0..CLIENTS)
        .map(|t| {
            let (client, base) = (app.client.clone(), app.base.clone());
            tokio::spawn(async move {
                let mut failures = Vec::new();
                let mut retried = 0;
                for k in 0..PER_CLIENT {
                    // sticker-01: small lines (no description or image) and stock 1000.
                    let body = add_line(
                        &format!("u-15-{t}-{k}"),
                        "F-15",
                        &format!("L-{t}-{k}"),
                        "sticker-01",
                        1,
                    );
                    let body = serde_json::to_vec(&body).unwrap();
                    let (r, n) = send_retrying(&client, &base, "update", &body, &[409, 503]).await;
                    retried += n.statuses + n.transport;
                    if r.status != 200 {
                        failures.push(format!("u-15-{t}-{k}: {}", show(&r)));
                    }
                }
                (failures, retried)
            })
        })
        .collect();
    let mut failures = Vec::new();
    let mut retried = 0;
    for t in tasks {
        let (f, n) = t.await.expect("client task");
        failures.extend(f);
        retried += n;
    }
    assert!(
        failures.is_empty(),
        "{} updates failed, first: {:?}",
        failures.len(),
        failures.first()
    );

    let ids = line_ids(&read_order(&app, "F-15").await);
    let distinct: BTreeSet<&String> = ids.iter().collect();
    assert_eq!(distinct.len(), ids.len(), "some lines are present twice");
    let expected: BTreeSet<String> = (0..CLIENTS)
        .flat_map(|t| (0..PER_CLIENT).map(move |k| format!("L-{t}-{k}")))
        .collect();
    let missing: Vec<_> = expected
        .iter()
        .filter(|id| !distinct.contains(id))
        .collect();
    assert!(
        missing.is_empty(),
        "{} of 800 lines were lost, e.g. {:?}",
        missing.len(),
        missing.first()
    );
    assert_eq!(
        ids.len(),
        CLIENTS * PER_CLIENT,
        "the cart holds lines nobody added"
    );
    eprintln!("lost-update check: {retried} attempts were retried (409, 503 or lost connection)");
}
