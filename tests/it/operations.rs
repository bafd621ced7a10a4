//! What an operator relies on: metrics that move with traffic, and an API document that
//! matches the server.

use crate::helpers::*;
use serde_json::{json, Value};

/// The value of one sample line of the Prometheus text (0 when absent).
fn sample(text: &str, series: &str) -> f64 {
    text.lines()
        .find_map(|l| {
            l.strip_prefix(series)
                .and_then(|rest| rest.trim().parse().ok())
        })
        .unwrap_or(0.0)
}

/// A checkout moves the request, replay, segment-failure, order-status and commit metrics,
/// and no label carries an order or request id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn metrics_follow_a_checkout_and_carry_no_ids() {
    let app = spawn_app().await;
    let before = String::from_utf8(app.get("/metrics").await.bytes).unwrap();
    assert!(
        before.contains("fast_seller_build_info{version="),
        "{before}"
    );

    let create = create_body("metrics-r1", "metrics-F1", &[("metrics-L1", "mug-01", 1)]);
    assert_eq!(app.post("create", &create).await.status, 200);
    assert_eq!(app.post("create", &create).await.status, 200, "replay");
    let bad_coupon = update_body(
        "metrics-r2",
        "metrics-F1",
        json!({"coupon": {"code": "NOPE"}}),
    );
    assert_eq!(app.post("update", &bad_coupon).await.status, 200);
    let convert = update_body(
        "metrics-r3",
        "metrics-F1",
        json!({"convert_cart_to_order": true}),
    );
    assert_eq!(app.post("update", &convert).await.status, 200);
    let read = json!({"type": "ENTITY_TYPE_ORDER", "order": {"order_id": {"value": "missing"}}});
    assert_eq!(app.post("read", &read).await.status, 404);

    let r = app.get("/metrics").await;
    assert_eq!(r.status, 200);
    assert!(r
        .header("content-type")
        .unwrap_or("")
        .starts_with("text/plain"));
    let text = String::from_utf8(r.bytes).unwrap();
    let expect = [
        (
            r#"fast_seller_http_requests_total{endpoint="create",status="200"}"#,
            2.0,
        ),
        (
            r#"fast_seller_http_requests_total{endpoint="update",status="200"}"#,
            2.0,
        ),
        (
            r#"fast_seller_http_requests_total{endpoint="read",status="404"}"#,
            1.0,
        ),
        (
            r#"fast_seller_idempotent_replays_total{endpoint="create"}"#,
            1.0,
        ),
        (
            r#"fast_seller_segment_failures_total{reason="COUPON_NOT_FOUND",segment="UPDATE_ORDER_SEGMENT_TYPE_COUPON"}"#,
            1.0,
        ),
        (
            r#"fast_seller_orders_total{status="ORDER_STATUS_CART"}"#,
            1.0,
        ),
        (
            r#"fast_seller_orders_total{status="ORDER_STATUS_PENDING"}"#,
            1.0,
        ),
        ("fast_seller_store_commit_duration_seconds_count", 3.0),
    ];
    for (series, value) in expect {
        assert_eq!(sample(&text, series), value, "{series} in\n{text}");
    }
    assert!(
        text.contains(r#"fast_seller_http_request_duration_seconds_bucket{endpoint="update""#),
        "latency histogram by endpoint missing"
    );
    for id in ["metrics-F1", "metrics-L1", "metrics-r1", "missing"] {
        assert!(
            !text.contains(id),
            "metric labels must not carry ids ({id})"
        );
    }
}

/// The served document is the committed `docs/openapi.json`, and every documented operation
/// exists on the server (answers something other than "no such endpoint" or 405).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_openapi_document_matches_the_routes_and_the_docs_page_is_offline() {
    let app = spawn_app().await;
    let served = app.get("/openapi.json").await;
    assert_eq!(served.status, 200);
    let committed: Value = serde_json::from_str(include_str!("../../docs/openapi.json")).unwrap();
    assert_eq!(
        served.json(),
        committed,
        "served and committed documents drifted"
    );

    let paths = committed["paths"].as_object().expect("paths");
    assert!(paths.len() >= 13, "every endpoint is documented");
    // The merchant console (`/console…`) serves HTML pages and forms to people, not an API:
    // it is left out of the document on purpose (README, "The merchant console").
    assert!(
        paths.keys().all(|p| !p.starts_with("/console")),
        "the console's pages are not API operations"
    );
    for (path, ops) in paths {
        let concrete = path.replace("{id}", "no-such-event");
        for method in ops.as_object().expect("operations").keys() {
            let url = format!("{}{concrete}", app.base);
            let req = match method.as_str() {
                "get" => app.client.get(&url),
                "post" => app
                    .client
                    .post(&url)
                    .header("content-type", "application/json")
                    .body("{}"),
                other => panic!("undocumented method {other} in the test"),
            };
            let r = req.send().await.unwrap();
            let status = r.status().as_u16();
            let body = r.text().await.unwrap_or_default();
            assert_ne!(status, 405, "{method} {path} is documented but not routed");
            assert!(
                !(status == 404 && body.contains("no such endpoint")),
                "{method} {path} is documented but not routed"
            );
        }
    }
    let page = app.get("/docs").await;
    assert_eq!(page.status, 200);
    let html = String::from_utf8(page.bytes).unwrap();
    assert!(
        html.contains("openapi.json"),
        "the page renders the served document"
    );
    assert!(
        !html.contains("https://"),
        "the docs page must work offline (no CDN)"
    );
    // With a trailing slash: the same page (reqwest follows the redirect).
    let slash = app.get("/docs/").await;
    assert_eq!(slash.status, 200, "/docs/ answers like /docs");
    assert_eq!(String::from_utf8(slash.bytes).unwrap(), html);
}

/// `serve --record DIR` writes what Fast sent and what we answered as tapes, without the
/// bearer token, and the tapes replay green against a fresh server.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn recorded_traffic_becomes_tapes_that_replay() {
    let tapes = tempfile::tempdir().unwrap();
    let dir = tapes.path().to_path_buf();
    let app = spawn_app_with(|s| s.record = Some(dir.clone())).await;
    let create = create_body("rec-r1", "rec-F1", &[("rec-L1", "mug-01", 2)]);
    let r = app
        .client
        .post(format!("{}/fast/v1/create", app.base))
        .header("content-type", "application/json")
        .header("authorization", "Bearer not-a-real-token-but-secret")
        .body(serde_json::to_vec(&create).unwrap())
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let coupon = update_body("rec-r2", "rec-F1", json!({"coupon": {"code": "SAVE10"}}));
    assert_eq!(app.post("update", &coupon).await.status, 200);

    let tape = dir.join("rec-F1.jsonl");
    let text = std::fs::read_to_string(&tape).expect("a tape named after the Fast order id");
    assert_eq!(
        text.lines().filter(|l| l.contains("\"step\"")).count(),
        2,
        "{text}"
    );
    assert!(
        !text.contains("not-a-real-token-but-secret"),
        "secrets must be scrubbed"
    );

    let report = fast_seller::cli::tapes::replay(&[tape], None, Default::default())
        .await
        .unwrap();
    assert!(report.passed(), "{}", report.render());
}
