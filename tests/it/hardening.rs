//! Bounds a hostile caller must not get past (issue 13, the attack review), against the real
//! binary: one `retry-dead` call is one pass over the dead letters, echoed values are bounded,
//! only authenticated calls are recorded.

use crate::helpers::{
    accept_loop, create_body, http_client, outbox_backlog, post, post_ok, read_request, show,
    update_body, write_answer, ServerProcess,
};
use fast_seller::signing;
use futures_util::StreamExt;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

/// Admin API token of these tests (at least 16 characters).
const ADMIN_TOKEN: &str = "hardening-admin-token-0123456789";
/// Longest wait for an expected state before a test fails.
const WAIT: Duration = Duration::from_secs(20);

/// Polls `probe` every 50 ms until it answers `Some`, failing after [`WAIT`].
async fn eventually<T, Fut>(what: &str, mut probe: impl FnMut() -> Fut) -> T
where
    Fut: std::future::Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

// ---------------------------------------------------------------------------------------------
// retry-dead is one pass
// ---------------------------------------------------------------------------------------------

/// Deliveries a receiver saw, per `webhook-id` (the event id).
type Deliveries = Arc<Mutex<HashMap<String, usize>>>;

fn total(deliveries: &Deliveries) -> usize {
    deliveries.lock().unwrap().values().sum()
}

/// A webhook endpoint that refuses every event with 400 (a permanent refusal: each delivery
/// dead-letters its event at once) and counts the deliveries of each event.
async fn refusing_receiver() -> (String, Deliveries, tokio::task::JoinHandle<()>) {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/orders", listener.local_addr().unwrap());
    let deliveries = Deliveries::default();
    let accept = accept_loop(
        listener,
        deliveries.clone(),
        |mut stream, seen| async move {
            while let Some(request) = read_request(&mut stream).await {
                let id = request.header("webhook-id").unwrap_or_default();
                *seen.lock().unwrap().entry(id).or_default() += 1;
                if !write_answer(&mut stream, 400, "").await {
                    break;
                }
            }
        },
    );
    (url, deliveries, accept)
}

/// Creates and converts Fast order `fast_id`: its event goes out once and is dead at once.
async fn convert(http: &reqwest::Client, base: &str, fast_id: &str) {
    let create = create_body(
        &format!("{fast_id}-c"),
        fast_id,
        &[("L-1", "sticker-01", 1)],
    );
    let r = post_ok(http, base, "create", &create).await;
    assert_eq!(r.status, 200, "create {fast_id}: {}", show(&r));
    let convert = update_body(
        &format!("{fast_id}-v"),
        fast_id,
        json!({"convert_cart_to_order": true}),
    );
    let r = post_ok(http, base, "update", &convert).await;
    assert_eq!(r.status, 200, "convert {fast_id}: {}", show(&r));
}

/// Item 2 of the attack review: with a receiver that refuses everything, a `retry-dead` that
/// looped "until no letter is dead" raced the worker dead-lettering them again (300 dead
/// letters gave 9,755 deliveries in 5 s). One call requeues each letter that was dead when it
/// started, once. New conversions keep coming during the call (they wake the worker, as live
/// traffic does), so a second pass would show: no event may be delivered more than twice
/// (once before, once after the call), and the deliveries after the call are the requeued
/// count, ≈ N.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_dead_requeues_each_dead_letter_once_against_a_refusing_receiver() {
    const N: usize = 300;
    /// Most conversions sent while the call runs.
    const TRAFFIC: usize = 100;
    let (url, deliveries, accept) = refusing_receiver().await;
    let dir = tempfile::TempDir::new().unwrap();
    let secret = signing::generate_secret();
    let server = ServerProcess::start_webhook(
        dir.path(),
        &url,
        &[
            ("FAST_SELLER_WEBHOOK_SECRET", secret.as_str()),
            ("FAST_SELLER_ADMIN_TOKEN", ADMIN_TOKEN),
        ],
    )
    .await;
    let base = server.base();
    let http = http_client();
    futures_util::stream::iter(0..N)
        .for_each_concurrent(8, |i| {
            let (http, base) = (&http, &base);
            async move { convert(http, base, &format!("F-D{i:03}")).await }
        })
        .await;
    let quiet = |dead: usize, delivered: usize| {
        let (http, base, deliveries) = (&http, &base, &deliveries);
        move || async move {
            let backlog = outbox_backlog(http, base).await?;
            (backlog == (0, dead as u64) && total(deliveries) == delivered).then_some(())
        }
    };
    eventually("every event to be dead-lettered", quiet(N, N)).await;

    let done = AtomicBool::new(false);
    let call = async {
        let r = http
            .post(format!("{base}/admin/v1/outbox/retry-dead"))
            .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
            .send()
            .await
            .unwrap_or_else(|e| {
                panic!(
                    "retry-dead gave no answer ({e}) after {} deliveries: it does not end",
                    total(&deliveries)
                )
            });
        done.store(true, Ordering::SeqCst);
        let status = r.status().as_u16();
        let answer: Value = r.json().await.unwrap();
        assert_eq!(status, 200, "retry-dead: {answer}");
        usize::try_from(answer["requeued"].as_u64().expect("requeued")).unwrap()
    };
    let traffic = async {
        let mut sent = 0;
        while sent < TRAFFIC && !done.load(Ordering::SeqCst) {
            convert(&http, &base, &format!("F-T{sent:03}")).await;
            sent += 1;
        }
        sent
    };
    let (requeued, sent) = tokio::join!(call, traffic);
    // Letters dead when the call started: the N, and perhaps some of the new ones.
    assert!(
        (N..=N + sent).contains(&requeued),
        "one call over {N} dead letters (and {sent} new events) requeued {requeued}"
    );
    eventually(
        "the requeued and the new events to be dead",
        quiet(N + sent, N + sent + requeued),
    )
    .await;
    // Nothing is due any more: a second pass of the call would show here.
    tokio::time::sleep(Duration::from_millis(1500)).await;
    let seen = deliveries.lock().unwrap().clone();
    let after = seen.values().sum::<usize>() - N - sent;
    let most = seen.values().copied().max().unwrap_or_default();
    assert!(
        after == requeued && most <= 2,
        "one retry-dead call over {N} dead letters caused {after} deliveries (requeued \
         {requeued}); an event went out {most} times\n{}",
        server.output()
    );
    accept.abort();
}

// ---------------------------------------------------------------------------------------------
// Reflected values are bounded
// ---------------------------------------------------------------------------------------------

/// Sends `POST <path>` with one extra header to the real binary; returns status and body.
async fn post_with_header(base: &str, path: &str, header: (&str, &str)) -> (u16, String) {
    let r = http_client()
        .post(format!("{base}{path}"))
        .header(header.0, header.1)
        .body(r#"{"type":"ENTITY_TYPE_ORDER"}"#)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {path} got no answer: {e}"));
    (r.status().as_u16(), r.text().await.unwrap())
}

/// Item 8 of the attack review: an unauthenticated 100 KB `Content-Type` was echoed whole into
/// the 415 answer and into one INFO log line. Every value a caller sends that an answer or a
/// log line quotes (Content-Type, Content-Encoding, an unknown path) is cut to 128 bytes,
/// escaped, with an ellipsis, in the answer and in the server's log.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reflected_header_values_and_paths_are_bounded_in_answers_and_logs() {
    const HUGE: usize = 100_000;
    let dir = tempfile::TempDir::new().unwrap();
    let server = ServerProcess::start_with(
        &[
            std::ffi::OsStr::new("--data-dir"),
            dir.path().as_os_str(),
            std::ffi::OsStr::new("--auth"),
            std::ffi::OsStr::new("hmac"),
        ],
        &[(
            "FAST_SELLER_HMAC_SECRETS",
            signing::generate_secret().as_str(),
        )],
    )
    .await;
    let base = server.base();
    let content_type = format!("text/evil;{}", "A".repeat(HUGE));
    let encoding = format!("evil\t{}", "B".repeat(HUGE));
    let path = format!("/fast/v1/{}", "C".repeat(HUGE / 4));
    let cases = [
        (
            "Content-Type",
            post_with_header(&base, "/fast/v1/create", ("content-type", &content_type)).await,
            415,
            format!("text/evil;{}…", "A".repeat(118)),
        ),
        (
            "Content-Encoding",
            post_with_header(&base, "/fast/v1/create", ("content-encoding", &encoding)).await,
            415,
            // The tab is escaped (two bytes) and counts as such.
            format!("evil\\t{}…", "B".repeat(122)),
        ),
        (
            "path",
            post_with_header(&base, &path, ("content-type", "application/json")).await,
            404,
            format!("/fast/v1/{}…", "C".repeat(119)),
        ),
    ];
    for (what, (status, body), want_status, shown) in &cases {
        assert_eq!(status, want_status, "{what}: {body}");
        assert!(
            body.len() < 512,
            "{what}: a {}-byte answer echoes too much: {}…",
            body.len(),
            &body[..200]
        );
        let message = serde_json::from_str::<Value>(body).unwrap()["message"]
            .as_str()
            .unwrap()
            .to_string();
        assert!(
            message.contains(shown.as_str()),
            "{what}: the message quotes the first 128 bytes, escaped, then …: {message}"
        );
    }
    // The log: every line stays small, and the refusals are there (quoted the same way).
    tokio::time::sleep(Duration::from_millis(300)).await;
    let log = server.output();
    let longest = log.lines().map(str::len).max().unwrap_or_default();
    assert!(
        longest < 2048,
        "a {longest}-byte log line: values are echoed unbounded"
    );
    for (what, _, _, shown) in &cases {
        // Its end: the log's JSON escapes the `\t` once more.
        let end = &shown[shown.len() - 40..];
        assert!(
            log.contains(end),
            "{what}: the refusal is logged with the bounded value\n{log}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// The recorder sees only authenticated calls
// ---------------------------------------------------------------------------------------------

/// `VmHWM` (peak resident memory) of process `pid`, in bytes.
fn peak_rss(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let kb: u64 = status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        .expect("VmHWM in /proc/<pid>/status");
    kb * 1024
}

/// Names of the files in `dir`.
fn files_in(dir: &std::path::Path) -> Vec<String> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect()
}

/// Item 1 of the attack review: with `--record DIR`, 50 unsigned creates wrote 51 tapes named
/// after ids the caller chose, and 24 concurrent unsigned 1 MiB bodies took the server from
/// 13 MB to 2.5 GB (the recorder parsed each body). Now a call refused with 401 writes no
/// file and its body is never parsed: unsigned and wrongly signed creates leave the record
/// directory empty, the peak RSS stays within a small multiple of the bodies in flight, and
/// one signed create still gets its tape.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_writes_only_authenticated_calls() {
    const BODY: usize = 1 << 20;
    let dir = tempfile::TempDir::new().unwrap();
    let tapes = dir.path().join("tapes");
    let secret_text = signing::generate_secret();
    let server = ServerProcess::start_with(
        &[
            std::ffi::OsStr::new("--data-dir"),
            dir.path().join("data").as_os_str(),
            std::ffi::OsStr::new("--auth"),
            std::ffi::OsStr::new("hmac"),
            std::ffi::OsStr::new("--record"),
            tapes.as_os_str(),
        ],
        &[("FAST_SELLER_HMAC_SECRETS", secret_text.as_str())],
    )
    .await;
    let base = server.base();
    let http = http_client();
    let secret = signing::WebhookSecret::parse(&secret_text).unwrap();
    let other = signing::WebhookSecret::parse(&signing::generate_secret()).unwrap();
    let now = || {
        i64::try_from(
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .unwrap()
                .as_secs(),
        )
        .unwrap()
    };
    let send = |body: Vec<u8>, signer: Option<&signing::WebhookSecret>| {
        let mut request = http
            .post(format!("{base}/fast/v1/create"))
            .header("content-type", "application/json");
        if let Some(key) = signer {
            for (name, value) in signing::headers(
                key,
                &format!("msg_{}", uuid::Uuid::new_v4().simple()),
                now(),
                &body,
            ) {
                request = request.header(name, value);
            }
        }
        async move {
            let r = request.body(body).send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };

    // 50 unsigned creates and 10 signed with a secret the server does not hold.
    for i in 0..60 {
        let body = create_body(&format!("rec-{i}"), &format!("F-REC-{i}"), &[]);
        let signer = (i >= 50).then_some(&other);
        let (status, answer) = send(serde_json::to_vec(&body).unwrap(), signer).await;
        assert_eq!(status, 401, "create {i}: {answer}");
    }
    // 24 concurrent unsigned bodies of 1 MiB: an array of half a million numbers each.
    let rss_before = peak_rss(server.pid());
    let mut huge = br#"{"type":"ENTITY_TYPE_ORDER","x":["#.to_vec();
    while huge.len() < BODY - 16 {
        huge.extend_from_slice(b"1,");
    }
    huge.extend_from_slice(b"1]}");
    let answers = futures_util::future::join_all((0..24).map(|_| send(huge.clone(), None))).await;
    for (status, answer) in &answers {
        assert_eq!(*status, 401, "{answer}");
    }
    let grown = peak_rss(server.pid()).saturating_sub(rss_before);
    let written = files_in(&tapes);
    eprintln!(
        "24 unsigned 1 MiB bodies: peak RSS +{} MB, {} tape files",
        grown >> 20,
        written.len()
    );
    assert!(
        written.is_empty(),
        "calls refused with 401 must not be recorded: {} files written: {written:?}",
        written.len()
    );
    assert!(
        grown < 24 * BODY as u64 * 4,
        "24 unsigned 1 MiB bodies raised the peak RSS by {} MB (bodies are read, never parsed)",
        grown >> 20
    );

    // A signed create is recorded, in its order's tape.
    let body =
        serde_json::to_vec(&create_body("rec-ok", "F-REC-OK", &[("L-1", "mug-01", 1)])).unwrap();
    let (status, answer) = send(body, Some(&secret)).await;
    assert_eq!(status, 200, "{answer}");
    assert_eq!(files_in(&tapes), vec!["F-REC-OK.jsonl".to_string()]);
}

// ---------------------------------------------------------------------------------------------
// Text the stores cannot hold is the caller's error
// ---------------------------------------------------------------------------------------------

/// `body` with its `"<NUL>"` string made `"a\u0000b"` (a NUL character inside).
fn with_nul(body: &Value) -> Vec<u8> {
    let text = body.to_string();
    assert!(
        text.contains("<NUL>"),
        "the case marks its field with <NUL>"
    );
    text.replacen("<NUL>", "a\\u0000b", 1).into_bytes()
}

/// Item 4 of the attack review: on PostgreSQL a NUL character in an order id, `request_id`,
/// line id, `app_id`, address field or unknown string field answered 503 with `Retry-After`
/// (so Fast would retry for ever), on sled 200. Both stores now refuse it with 400 naming the
/// field's path, before anything is stored; a clean request on the same server still works.
async fn nul_is_refused_with_400_naming_the_field(server: &ServerProcess, store: &str) {
    let base = server.base();
    let http = http_client();
    let created = create_body("z-c", "F-Z", &[("L-1", "mug-01", 1)]);
    let r = post_ok(&http, &base, "create", &created).await;
    assert_eq!(r.status, 200, "{store}: the clean create: {}", show(&r));
    let mut cases = vec![
        (
            "create",
            create_body("z-1", "<NUL>", &[("L-1", "mug-01", 1)]),
            "order.order.id.value",
        ),
        (
            "create",
            create_body("<NUL>", "F-Z-2", &[("L-1", "mug-01", 1)]),
            "request_id.value",
        ),
        (
            "create",
            create_body("z-3", "F-Z-3", &[("<NUL>", "mug-01", 1)]),
            "order.order.lines[0].id.value",
        ),
        (
            "update",
            update_body(
                "z-4",
                "F-Z",
                json!({"bill_to": {"first_name": "<NUL>", "country_code": "US"}}),
            ),
            "order.bill_to.first_name",
        ),
        (
            "update",
            update_body("z-5", "F-Z", json!({"gift_note": {"text": "<NUL>"}})),
            "order.gift_note.text",
        ),
        (
            "read",
            json!({"type": "ENTITY_TYPE_ORDER", "order": {"order_id": {"value": "<NUL>"}}}),
            "order.order_id.value",
        ),
    ];
    let mut app = update_body("z-6", "F-Z", json!({"coupon": {"code": "SAVE10"}}));
    app["app_id"] = json!("<NUL>");
    cases.push(("update", app, "app_id"));
    for (verb, body, path) in cases {
        let r = post(&http, &base, verb, with_nul(&body))
            .await
            .unwrap_or_else(|e| panic!("{store}: {verb} with a NUL in {path}: no answer: {e}"));
        let message = r.json()["message"].as_str().unwrap_or_default().to_string();
        assert!(
            r.status == 400 && message.starts_with(&format!("{path}: ")),
            "{store}: a NUL in {path} must be 400 naming the field: {}",
            show(&r)
        );
        assert!(r.header("retry-after").is_none(), "{store}: {}", show(&r));
    }
    // Nothing of it was stored: the order is as created, the NUL create left no order.
    let read = json!({"type": "ENTITY_TYPE_ORDER", "order": {"order_id": {"value": "F-Z"}}});
    let r = post_ok(&http, &base, "read", &read).await;
    assert_eq!(r.status, 200, "{store}: {}", show(&r));
    assert!(r.order()["coupons"].as_array().is_none_or(Vec::is_empty));
    assert!(r.order()["bill_to"]["first_name"].is_null(), "{}", show(&r));
    let update = update_body("z-ok", "F-Z", json!({"coupon": {"code": "SAVE10"}}));
    let r = post_ok(&http, &base, "update", &update).await;
    assert_eq!(r.status, 200, "{store}: a clean update after: {}", show(&r));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_text_is_refused_with_400_on_sled() {
    let dir = tempfile::TempDir::new().unwrap();
    let server = ServerProcess::start(dir.path()).await;
    nul_is_refused_with_400_naming_the_field(&server, "sled").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nul_text_is_refused_with_400_on_postgres() {
    let schema = crate::pg::PgSchema::create().await;
    let dir = tempfile::TempDir::new().unwrap();
    let url = schema.url();
    let server = ServerProcess::start_with(
        &[
            std::ffi::OsStr::new("--store"),
            std::ffi::OsStr::new(&url),
            std::ffi::OsStr::new("--data-dir"),
            dir.path().as_os_str(),
        ],
        &[],
    )
    .await;
    nul_is_refused_with_400_naming_the_field(&server, "PostgreSQL").await;
}

// ---------------------------------------------------------------------------------------------
// No order can poison reads
// ---------------------------------------------------------------------------------------------

/// A catalog of one product at `price` (and the demo's `mug-01` at 10.00), no tax, written
/// into `dir`.
fn catalog_file(dir: &std::path::Path, price: &str) -> std::path::PathBuf {
    let path = dir.join("catalog.json");
    let catalog = json!({
        "currency": "USD",
        "products": [
            {"id": "big", "name": "Big", "fulfillment": "physical", "price": price},
            {"id": "mug-01", "name": "Mug", "fulfillment": "physical", "price": "10.00"}
        ]
    });
    std::fs::write(&path, catalog.to_string()).unwrap();
    path
}

/// `GET /admin/v1/orders` with the admin token.
async fn admin_list(http: &reqwest::Client, base: &str) -> (u16, Value) {
    let r = http
        .get(format!("{base}/admin/v1/orders"))
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Item 3 of the attack review: a catalog price of 10,000,000,000.00 times 100,000 units was
/// stored as a total of 1e15, after which reading that order and listing every order answered
/// 500. The catalog loader refuses such a price at start-up; with the largest price it takes,
/// a create whose total leaves the storable range is 422 and an update that would is a failed
/// items segment, so the order, its reads and the listing stay as they were.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn computed_amounts_stay_in_range_and_reads_keep_working() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let catalog = catalog_file(dir.path(), "10000000000.00");
    let mut refused = ServerProcess::spawn_with(
        &[
            std::ffi::OsStr::new("--data-dir"),
            data.as_os_str(),
            std::ffi::OsStr::new("--catalog"),
            catalog.as_os_str(),
        ],
        &[],
    );
    let status = refused
        .wait_exit(WAIT)
        .await
        .expect("start-up refuses the catalog");
    assert_eq!(status.code(), Some(2), "{}", refused.output());
    assert!(
        refused
            .output()
            .contains("products[0] (big).price: must be below 10000000000"),
        "the refusal names the entry:\n{}",
        refused.output()
    );

    let catalog = catalog_file(dir.path(), "9999999999.99");
    let server = ServerProcess::start_with(
        &[
            std::ffi::OsStr::new("--data-dir"),
            data.as_os_str(),
            std::ffi::OsStr::new("--catalog"),
            catalog.as_os_str(),
        ],
        &[("FAST_SELLER_ADMIN_TOKEN", ADMIN_TOKEN)],
    )
    .await;
    let base = server.base();
    let http = http_client();
    let two_full_lines = create_body(
        "big-0",
        "F-BIG-0",
        &[("L-1", "big", 100_000), ("L-2", "big", 100_000)],
    );
    let r = post_ok(&http, &base, "create", &two_full_lines).await;
    assert_eq!(r.status, 422, "a total of 2e15 is refused: {}", show(&r));
    assert!(
        r.json()["message"]
            .as_str()
            .is_some_and(|m| m.contains("amounts must stay below 1000000000000000")),
        "{}",
        show(&r)
    );

    let one_full_line = create_body("big-1", "F-BIG-1", &[("L-1", "big", 100_000)]);
    let r = post_ok(&http, &base, "create", &one_full_line).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let total = r.order()["total_amount"].clone();
    assert_eq!(total, json!("999999999999000.00"));
    let more = update_body(
        "big-2",
        "F-BIG-1",
        json!({"items": [{"item_id": {"value": "L-2"}, "external_product_id": "big", "quantity": 1}]}),
    );
    let r = post_ok(&http, &base, "update", &more).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let status = &r.json()["order"]["status"][0];
    assert_eq!(status["status"], json!(false), "{}", show(&r));
    assert_eq!(
        status["reason_code"],
        json!("INVALID_QUANTITY"),
        "{}",
        show(&r)
    );
    assert_eq!(
        r.order()["total_amount"],
        total,
        "the failed segment changed nothing"
    );

    let read = json!({"type": "ENTITY_TYPE_ORDER", "order": {"order_id": {"value": "F-BIG-1"}}});
    let r = post_ok(&http, &base, "read", &read).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    assert_eq!(r.order()["lines"].as_array().map(Vec::len), Some(1));
    let (status, listing) = admin_list(&http, &base).await;
    assert_eq!(status, 200, "{listing}");
    assert_eq!(
        listing["orders"].as_array().map(Vec::len),
        Some(1),
        "{listing}"
    );
}

/// Item 3 (continued): one stored order that cannot be decoded (here a PostgreSQL row
/// overwritten with other JSON) made `GET /admin/v1/orders` answer 500 for every order. The
/// listing now skips it, names it in `skipped`, logs it and counts it in
/// `fast_seller_undecodable_records_total`; the other orders are listed.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_undecodable_order_is_skipped_by_the_listing() {
    let schema = crate::pg::PgSchema::create().await;
    let dir = tempfile::TempDir::new().unwrap();
    let url = schema.url();
    let server = ServerProcess::start_with(
        &[
            std::ffi::OsStr::new("--store"),
            std::ffi::OsStr::new(&url),
            std::ffi::OsStr::new("--data-dir"),
            dir.path().as_os_str(),
        ],
        &[("FAST_SELLER_ADMIN_TOKEN", ADMIN_TOKEN)],
    )
    .await;
    let base = server.base();
    let http = http_client();
    for i in 0..3 {
        let body = create_body(
            &format!("u-{i}"),
            &format!("F-U{i}"),
            &[("L-1", "mug-01", 1)],
        );
        let r = post_ok(&http, &base, "create", &body).await;
        assert_eq!(r.status, 200, "{}", show(&r));
    }
    let poisoned = crate::pg::raw_client()
        .await
        .execute(
            &format!(
                "UPDATE {}.orders SET body = convert_to('{{\"order\": 1}}', 'UTF8') WHERE id = 'F-U1'",
                schema.name
            ),
            &[],
        )
        .await
        .unwrap();
    assert_eq!(poisoned, 1);
    let (status, listing) = admin_list(&http, &base).await;
    assert_eq!(
        status, 200,
        "one bad record must not break the listing: {listing}"
    );
    let ids: Vec<&str> = listing["orders"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|o| o["id"].as_str())
        .collect();
    assert_eq!(ids, ["F-U0", "F-U2"], "{listing}");
    assert_eq!(listing["skipped"], json!(["F-U1"]), "{listing}");
    let metrics = http
        .get(format!("{base}/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains(r#"fast_seller_undecodable_records_total{kind="order"} 1"#),
        "{metrics}"
    );
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(
        server
            .output()
            .contains("undecodable order skipped in a listing"),
        "{}",
        server.output()
    );
}

// ---------------------------------------------------------------------------------------------
// Bounded order size
// ---------------------------------------------------------------------------------------------

/// The reason code and message of the first segment status of an update answer.
fn first_segment(r: &crate::helpers::Resp) -> (Value, String) {
    let status = &r.json()["order"]["status"][0];
    assert_eq!(
        status["status"],
        json!(false),
        "the segment must fail: {}",
        show(r)
    );
    (
        status["reason_code"].clone(),
        status["message"].as_str().unwrap_or_default().to_string(),
    )
}

/// Item 7 of the attack review: one cart grew to 72k lines (11.9 s per update, 33 MB answers)
/// and coupon updates on a 22k-line cart added 703 MB to the data directory. Lines per order,
/// units per line, coupons and shipment plans are limited (settings within safe bounds): a
/// create over a limit is 422, an update over one fails its segment naming the setting, and
/// the order stays as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn order_size_limits_fail_the_segment_naming_the_setting() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let args = |extra: &[&str]| -> Vec<std::ffi::OsString> {
        let mut all: Vec<std::ffi::OsString> = vec!["--data-dir".into(), data.clone().into()];
        all.extend(extra.iter().map(std::ffi::OsString::from));
        all
    };
    for (flag, value) in [
        ("--max-order-lines", "0"),
        ("--max-line-units", "100001"),
        ("--max-order-coupons", "101"),
        ("--max-shipment-plans", "x"),
    ] {
        let mut refused = ServerProcess::spawn_with(&args(&[flag, value]), &[]);
        let status = refused
            .wait_exit(WAIT)
            .await
            .expect("start-up refuses the value");
        let setting = flag.trim_start_matches("--").replace('-', "_");
        assert!(
            status.code() == Some(2) && refused.output().contains(&setting),
            "{flag} {value} must stop start-up naming {setting}:\n{}",
            refused.output()
        );
    }
    let server = ServerProcess::start_with(
        &args(&[
            "--max-order-lines",
            "3",
            "--max-line-units",
            "50",
            "--max-order-coupons",
            "1",
            "--max-shipment-plans",
            "2",
        ]),
        &[],
    )
    .await;
    let base = server.base();
    let http = http_client();
    let lines = [
        ("L-1", "mug-01", 1),
        ("L-2", "mug-01", 1),
        ("L-3", "mug-01", 1),
    ];
    let four = create_body(
        "lim-0",
        "F-LIM-0",
        &[lines[0], lines[1], lines[2], ("L-4", "mug-01", 1)],
    );
    let r = post_ok(&http, &base, "create", &four).await;
    assert_eq!(r.status, 422, "{}", show(&r));
    assert!(show(&r).contains("max_order_lines"), "{}", show(&r));
    let too_many_units = create_body("lim-1", "F-LIM-1", &[("L-1", "mug-01", 51)]);
    let r = post_ok(&http, &base, "create", &too_many_units).await;
    assert_eq!(r.status, 422, "{}", show(&r));

    let r = post_ok(
        &http,
        &base,
        "create",
        &create_body("lim-2", "F-LIM", &lines),
    )
    .await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let before = r.order();
    let item = |id: &str, qty: i64| json!({"item_id": {"value": id}, "external_product_id": "mug-01", "quantity": qty});
    // A huge items list is refused without being worked through.
    let huge: Vec<Value> = (0..10_000).map(|i| item(&format!("X-{i}"), 1)).collect();
    let plans: Vec<Value> = ["L-1", "L-2", "L-3"]
        .iter()
        .map(|l| {
            json!({
                "ship_to": {"country_code": "US", "state_province_code": "NY"},
                "line_refs": [{"id": {"value": l}, "quantity": 1}]
            })
        })
        .collect();
    let cases = [
        (
            json!({"items": [item("L-4", 1)]}),
            "INVALID_QUANTITY",
            "max_order_lines",
        ),
        (
            json!({"items": huge}),
            "INVALID_QUANTITY",
            "max_order_lines",
        ),
        (
            json!({"items": [item("L-1", 51)]}),
            "INVALID_QUANTITY",
            "max_line_units",
        ),
        (
            json!({"shipments": plans}),
            "INVALID_QUANTITY",
            "max_shipment_plans",
        ),
    ];
    for (i, (segment, reason, setting)) in cases.into_iter().enumerate() {
        let r = post_ok(
            &http,
            &base,
            "update",
            &update_body(&format!("lim-u{i}"), "F-LIM", segment),
        )
        .await;
        assert_eq!(r.status, 200, "{}", show(&r));
        let (code, message) = first_segment(&r);
        assert_eq!(code, json!(reason), "{}", show(&r));
        assert!(
            message.contains(setting),
            "the message names {setting}: {message}"
        );
        assert_eq!(
            r.order()["lines"],
            before["lines"],
            "a failed segment changes nothing"
        );
    }
    let coupon = |i: usize, code: &str| {
        update_body(
            &format!("lim-c{i}"),
            "F-LIM",
            json!({"coupon": {"code": code}}),
        )
    };
    let r = post_ok(&http, &base, "update", &coupon(0, "SAVE10")).await;
    assert_eq!(
        r.json()["order"]["status"][0]["status"],
        json!(true),
        "{}",
        show(&r)
    );
    let r = post_ok(&http, &base, "update", &coupon(1, "FIVE")).await;
    let (code, message) = first_segment(&r);
    assert_eq!(code, json!("COUPON_NOT_APPLICABLE"), "{}", show(&r));
    assert!(message.contains("max_order_coupons"), "{message}");
    assert_eq!(r.order()["coupons"].as_array().map(Vec::len), Some(1));
}

// ---------------------------------------------------------------------------------------------
// Symbolic links in the record directory
// ---------------------------------------------------------------------------------------------

/// Item 9 of the attack review: tapes were appended through symbolic links planted in the
/// record directory. A record directory that is a link or not a directory stops start-up; a
/// tape that is a link is never opened (the exchange is answered, the recording fails and is
/// logged), so the file it points at is untouched.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn record_never_follows_symbolic_links() {
    let dir = tempfile::TempDir::new().unwrap();
    let data = dir.path().join("data");
    let real = dir.path().join("tapes");
    std::fs::create_dir(&real).unwrap();
    let link = dir.path().join("tapes-link");
    std::os::unix::fs::symlink(&real, &link).unwrap();
    let file = dir.path().join("a-file");
    std::fs::write(&file, "not a directory").unwrap();
    for (record, why) in [(&link, "is a symbolic link"), (&file, "is not a directory")] {
        let mut refused = ServerProcess::spawn_with(
            &[
                std::ffi::OsStr::new("--data-dir"),
                data.as_os_str(),
                std::ffi::OsStr::new("--record"),
                record.as_os_str(),
            ],
            &[],
        );
        let status = refused.wait_exit(WAIT).await.expect("start-up refuses it");
        assert!(
            status.code() == Some(2) && refused.output().contains(why),
            "--record {} must stop start-up ({why}):\n{}",
            record.display(),
            refused.output()
        );
    }

    let victim = dir.path().join("victim.txt");
    std::fs::write(&victim, "precious\n").unwrap();
    std::os::unix::fs::symlink(&victim, real.join("F-LINK.jsonl")).unwrap();
    let server = ServerProcess::start_with(
        &[
            std::ffi::OsStr::new("--data-dir"),
            data.as_os_str(),
            std::ffi::OsStr::new("--record"),
            real.as_os_str(),
        ],
        &[],
    )
    .await;
    let http = http_client();
    let create = create_body("link-1", "F-LINK", &[("L-1", "mug-01", 1)]);
    let r = post_ok(&http, &server.base(), "create", &create).await;
    assert_eq!(
        r.status,
        200,
        "recording never fails the call: {}",
        show(&r)
    );
    let other = create_body("link-2", "F-PLAIN", &[("L-1", "mug-01", 1)]);
    let r = post_ok(&http, &server.base(), "create", &other).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    assert_eq!(
        std::fs::read_to_string(&victim).unwrap(),
        "precious\n",
        "a tape was written through a symbolic link"
    );
    assert!(
        real.join("F-PLAIN.jsonl").is_file(),
        "ordinary tapes are still written"
    );
    eventually("the failed recording to be logged", || async {
        server
            .output()
            .contains("recording the exchange failed")
            .then_some(())
    })
    .await;
}

// ---------------------------------------------------------------------------------------------
// Request bodies in memory at once
// ---------------------------------------------------------------------------------------------

/// Sends the head of a `POST /fast/v1/create` declaring a `length`-byte JSON body, then the
/// first `sent` bytes of that body, and keeps the connection open.
async fn partial_body(port: u16, length: usize, sent: usize) -> (tokio::net::TcpStream, Vec<u8>) {
    use tokio::io::AsyncWriteExt as _;
    let mut body = br#"{"type":"ENTITY_TYPE_ORDER","x":""#.to_vec();
    body.resize(length - 2, b'a');
    body.extend_from_slice(b"\"}");
    let mut stream = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .unwrap();
    let head = format!(
        "POST /fast/v1/create HTTP/1.1\r\nhost: 127.0.0.1\r\ncontent-type: application/json\r\n\
         content-length: {length}\r\n\r\n"
    );
    stream.write_all(head.as_bytes()).await.unwrap();
    // The server may already have refused this body and closed: that is the point.
    let _ = stream.write_all(&body[..sent]).await;
    (stream, body[sent..].to_vec())
}

/// The status line and headers of the answer on `stream` (empty when it closed without one).
async fn answer_head(stream: &mut (impl tokio::io::AsyncRead + Unpin)) -> String {
    use tokio::io::AsyncReadExt as _;
    let mut buf = Vec::new();
    let mut chunk = [0u8; 4096];
    while !buf.windows(4).any(|w| w == b"\r\n\r\n") {
        match stream.read(&mut chunk).await {
            Ok(0) | Err(_) => break,
            Ok(n) => buf.extend_from_slice(&chunk[..n]),
        }
    }
    String::from_utf8_lossy(&buf).into_owned()
}

/// Item 6 of the attack review: 24 unsigned 1 MiB bodies at once took 2.7 GB (a body costs
/// many times its size once parsed). The bytes of request bodies held at once are capped
/// (`--body-bytes-in-flight`): with room for two bodies of 900 KB, the third concurrent one
/// is refused with 503 and `Retry-After` while the first two are still arriving; once they
/// are answered, the budget is free again.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn request_bodies_in_memory_at_once_are_capped() {
    const LENGTH: usize = 1_000_000;
    const SENT: usize = 900_000;
    let dir = tempfile::TempDir::new().unwrap();
    let server = ServerProcess::start_with(
        &[
            std::ffi::OsStr::new("--data-dir"),
            dir.path().as_os_str(),
            std::ffi::OsStr::new("--body-bytes-in-flight"),
            std::ffi::OsStr::new("2000000"),
        ],
        &[],
    )
    .await;
    let port = server.port();
    // Each answer is read by its own task; the write halves stay here.
    let (answers_tx, mut answers) = tokio::sync::mpsc::unbounded_channel();
    let mut writers = Vec::new();
    for i in 0..3 {
        let (stream, rest) = partial_body(port, LENGTH, SENT).await;
        let (mut read, write) = stream.into_split();
        let tx = answers_tx.clone();
        tokio::spawn(async move {
            let _ = tx.send((i, answer_head(&mut read).await));
        });
        writers.push((i, write, rest));
    }
    // 2.7 MB sent against a 2 MB budget: one body cannot be held, and it is answered while
    // the other two still wait for their last 100 KB (they cannot be answered before).
    let (refused, head) = tokio::time::timeout(WAIT, answers.recv())
        .await
        .expect("one of the three bodies is answered before they are complete")
        .unwrap();
    assert!(
        head.starts_with("HTTP/1.1 503") && head.to_ascii_lowercase().contains("retry-after: 1"),
        "an overload is 503 with Retry-After: {head}"
    );
    for (i, mut write, rest) in writers {
        use tokio::io::AsyncWriteExt as _;
        if i != refused {
            write.write_all(&rest).await.unwrap();
        }
    }
    for _ in 0..2 {
        let (_, head) = tokio::time::timeout(WAIT, answers.recv())
            .await
            .expect("the bodies within the budget are answered")
            .unwrap();
        assert!(
            !head.starts_with("HTTP/1.1 503") && head.starts_with("HTTP/1.1 "),
            "a body within the budget is read and answered: {head}"
        );
    }
    // All answered: the budget is whole again.
    let create = create_body("bif-1", "F-BIF", &[("L-1", "mug-01", 1)]);
    let r = post_ok(&http_client(), &server.base(), "create", &create).await;
    assert_eq!(r.status, 200, "{}", show(&r));
}
