//! The merchant console in a real browser: Debian's `chromium` driven through
//! `chromium-driver` (WebDriver) against the real binary on a random port. One browser
//! session walks the merchant's day: sign in, find an order converted through the Fast API,
//! refund one line through the preview, see the new outbox event, retry a dead letter, look
//! at the catalog and settings, sign out. On the way: a shopper name with markup is shown as
//! text, and posts without the CSRF token are refused. A screenshot of every page goes to
//! `target/console-screenshots/`.
//!
//! Without chromium and chromedriver the test fails and says how to install them (`.ci/run`
//! installs them): it never passes without having run.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing)]

#[allow(dead_code)]
#[path = "it/helpers.rs"]
mod helpers;

use fantoccini::{Client, ClientBuilder, Locator};
use helpers::*;
use serde_json::{json, Value};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicU16, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::net::TcpListener;

const TOKEN: &str = "console-test-admin-token-0123";
const SHOPPER: &str = "<script>alert(1)</script><b>Eve</b>";
const CHROMIUM: &str = "/usr/bin/chromium";
const CHROMEDRIVER: &str = "/usr/bin/chromedriver";

/// Where the screenshots go: `target/console-screenshots/`.
fn shots_dir() -> PathBuf {
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let dir = tmp.parent().unwrap_or(tmp).join("console-screenshots");
    std::fs::create_dir_all(&dir).expect("screenshot directory");
    dir
}

/// chromedriver as a child process, killed on drop.
struct Driver {
    child: Child,
    url: String,
    _profile: tempfile::TempDir,
}

impl Drop for Driver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Starts chromedriver and opens one headless chromium session.
async fn browser() -> (Driver, Client) {
    for (path, package) in [(CHROMIUM, "chromium"), (CHROMEDRIVER, "chromium-driver")] {
        assert!(
            Path::new(path).exists(),
            "the console's browser tests need {path}: apt-get install -y chromium chromium-driver \
             (.ci/run installs both). Not skipped: a console nobody opened is not tested. \
             (missing package: {package})"
        );
    }
    let port = free_port();
    let child = Command::new(CHROMEDRIVER)
        .arg(format!("--port={port}"))
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromedriver starts");
    let profile = tempfile::tempdir().unwrap();
    let driver = Driver {
        child,
        url: format!("http://127.0.0.1:{port}"),
        _profile: profile,
    };
    let started = Instant::now();
    while std::net::TcpStream::connect(("127.0.0.1", port)).is_err() {
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "chromedriver did not listen"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let mut caps = serde_json::Map::new();
    caps.insert(
        "goog:chromeOptions".into(),
        json!({
            "binary": CHROMIUM,
            "args": ["--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--disable-gpu",
                     "--window-size=1280,1600",
                     format!("--user-data-dir={}", driver._profile.path().display())]
        }),
    );
    let connector = hyper_util::client::legacy::connect::HttpConnector::new();
    let client = ClientBuilder::new(connector)
        .capabilities(caps)
        .connect(&driver.url)
        .await
        .expect("a chromium session through chromedriver");
    (driver, client)
}

async fn shot(client: &Client, name: &str) {
    let png = client.screenshot().await.expect("screenshot");
    std::fs::write(shots_dir().join(format!("{name}.png")), png).expect("screenshot written");
}

async fn text_of(client: &Client, css: &str) -> String {
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}` on the page: {e}"))
        .text()
        .await
        .expect("element text")
}

/// Clicks what leads to another page and waits until the browser left this one (its
/// `<html>` element went stale), so the next look is at the new page.
async fn click(client: &Client, css: &str) {
    let page = client
        .find(Locator::Css("html"))
        .await
        .expect("the current page");
    client
        .wait()
        .at_most(Duration::from_secs(10))
        .for_element(Locator::Css(css))
        .await
        .unwrap_or_else(|e| panic!("no `{css}` to click: {e}"))
        .click()
        .await
        .unwrap_or_else(|e| panic!("clicking `{css}`: {e}"));
    let started = Instant::now();
    while page.tag_name().await.is_ok() {
        assert!(
            started.elapsed() < Duration::from_secs(10),
            "clicking `{css}` did not lead to another page"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn path_of(client: &Client) -> String {
    client.current_url().await.expect("url").path().to_string()
}

/// A webhook receiver answering the status in `status` to every delivery.
async fn receiver(status: Arc<AtomicU16>) -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/events", listener.local_addr().unwrap());
    accept_loop(listener, status, |mut stream, status| async move {
        // One request per connection: the answer closes it.
        if read_request(&mut stream).await.is_some() {
            write_answer(&mut stream, status.load(Ordering::SeqCst), "").await;
        }
    });
    url
}

/// A booked order converted through Fast's API: two mugs and an e-book, billed in
/// California to a shopper whose name is markup.
async fn booked_through_fast(
    client: &reqwest::Client,
    base: &str,
    fast_id: &str,
    lines: &[(&str, &str, i64)],
) {
    let create = create_body(&format!("{fast_id}-c"), fast_id, lines);
    let r = post_ok(client, base, "create", &create).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    let seller_id = r.order()["external_id"].clone();
    let bill_to = json!({"bill_to": {"first_name": SHOPPER, "last_name": "Doe",
        "email": "eve@example.com", "address_1": "1 Market St", "city_locality": "San Francisco",
        "state_province_code": "CA", "country": "US", "country_code": "US", "postal_code": "94105"}});
    for (i, segment) in [bill_to, json!({"convert_cart_to_order": true})]
        .into_iter()
        .enumerate()
    {
        let r = post_ok(
            client,
            base,
            "update",
            &update_body(&format!("{fast_id}-u{i}"), fast_id, segment),
        )
        .await;
        assert_eq!(r.status, 200, "{}", show(&r));
    }
    let booked = json!({"type": "ENTITY_TYPE_ORDER", "app_id": "test-app",
        "request_id": {"value": format!("{fast_id}-booked")},
        "order": {"external_id": seller_id, "convert_cart_to_order": true,
                  "status": "ORDER_STATUS_BOOKED"}});
    let r = post_ok(client, base, "update", &booked).await;
    assert_eq!(r.order()["status"], "ORDER_STATUS_BOOKED", "{}", show(&r));
}

/// Polls `/readyz` until the outbox has `dead` dead letters.
async fn wait_dead(http: &reqwest::Client, base: &str, dead: u64) {
    let started = Instant::now();
    loop {
        if outbox_backlog(http, base)
            .await
            .is_some_and(|(_, d)| d == dead)
        {
            return;
        }
        assert!(
            started.elapsed() < Duration::from_secs(20),
            "the outbox never had {dead} dead letters"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// A form post with the browser's session cookie, as another page (or a forged one) would
/// send it.
async fn post_form(
    http: &reqwest::Client,
    url: &str,
    cookie: &str,
    fields: &[(&str, &str)],
) -> (u16, String) {
    let body = fields
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("&");
    let r = http
        .post(url)
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", cookie)
        .body(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.text().await.unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_merchant_refunds_a_line_retries_a_dead_letter_and_signs_out() {
    let status = Arc::new(AtomicU16::new(400));
    let hook = receiver(status.clone()).await;
    let data = tempfile::tempdir().unwrap();
    let secret = fast_seller::signing::generate_secret();
    let server = ServerProcess::start_webhook(
        data.path(),
        &hook,
        &[
            ("FAST_SELLER_ADMIN_TOKEN", TOKEN),
            ("FAST_SELLER_WEBHOOK_SECRET", &secret),
        ],
    )
    .await;
    let base = server.base();
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();
    let fast_id = "console-F1";
    booked_through_fast(
        &http,
        &base,
        fast_id,
        &[("L-1", "mug-01", 2), ("L-2", "ebook-01", 1)],
    )
    .await;
    // The receiver refuses with 400: the conversion event is a dead letter at once.
    wait_dead(&http, &base, 1).await;

    let (_driver, c) = browser().await;
    let result = walk(&c, &http, &base, fast_id, &status).await;
    let _ = c.close().await;
    if let Err(e) = result {
        panic!("{e}\n{}", server.output());
    }
}

/// The walk through the console; an `Err` carries what went wrong (the caller adds the
/// server's output).
async fn walk(
    c: &Client,
    http: &reqwest::Client,
    base: &str,
    fast_id: &str,
    status: &AtomicU16,
) -> Result<(), String> {
    // Signed out, every page leads to the sign-in form.
    c.goto(&format!("{base}/console/orders"))
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(path_of(c).await, "/console/sign-in");
    shot(c, "01-sign-in").await;
    let token = c
        .find(Locator::Id("token"))
        .await
        .map_err(|e| e.to_string())?;
    token
        .send_keys("not-the-token-at-all")
        .await
        .map_err(|e| e.to_string())?;
    click(c, "form.card button").await;
    let refused = text_of(c, "p.error").await;
    assert!(
        refused.contains("not this server's admin token"),
        "a wrong token is refused: {refused}"
    );
    let token = c
        .find(Locator::Id("token"))
        .await
        .map_err(|e| e.to_string())?;
    token.send_keys(TOKEN).await.map_err(|e| e.to_string())?;
    click(c, "form.card button").await;
    assert_eq!(text_of(c, "main h1").await, "Overview");
    assert_eq!(path_of(c).await, "/console");
    shot(c, "02-overview").await;

    // The session cookie is HttpOnly and SameSite=Strict.
    let cookie = c
        .get_named_cookie("fs_console")
        .await
        .map_err(|e| format!("session cookie: {e}"))?;
    assert_eq!(cookie.http_only(), Some(true));
    assert_eq!(format!("{:?}", cookie.same_site()), "Some(Strict)");
    let session = format!("fs_console={}", cookie.value());

    // Find the order through the search.
    click(c, "nav a[href='/console/orders']").await;
    let q = c.find(Locator::Id("q")).await.map_err(|e| e.to_string())?;
    q.send_keys("eve@example")
        .await
        .map_err(|e| e.to_string())?;
    click(c, "form.filters button").await;
    let link = text_of(c, "main table tbody tr td a").await;
    assert_eq!(link, fast_id);
    shot(c, "03-orders").await;
    click(c, "main table tbody tr td a").await;
    assert_eq!(text_of(c, "main h1").await, format!("Order {fast_id}"));

    // The shopper's markup is text: shown literally, never run or parsed.
    let facts = text_of(c, "dl.facts").await;
    assert!(
        facts.contains(&format!("{SHOPPER} Doe")),
        "the shopper name is shown as text: {facts}"
    );
    let scripts = c
        .find_all(Locator::Css("script, main b"))
        .await
        .map_err(|e| e.to_string())?;
    assert!(scripts.is_empty(), "the shopper's markup became elements");
    let source = c.source().await.map_err(|e| e.to_string())?;
    assert!(
        source.contains("&lt;script&gt;alert(1)&lt;/script&gt;"),
        "escaped in the page"
    );
    shot(c, "04-order").await;

    // A post without (or with a wrong) CSRF token is refused and changes nothing.
    let preview = format!("{base}/console/orders/{fast_id}/capture/preview");
    let (code, body) = post_form(http, &preview, &session, &[("version", "1")]).await;
    assert_eq!(code, 403, "no CSRF token: {body}");
    assert!(body.contains("CSRF"), "{body}");
    let confirm = format!("{base}/console/orders/{fast_id}/capture");
    let (code, _) = post_form(
        http,
        &confirm,
        &session,
        &[("version", "9"), ("csrf", "00ff"), ("request", "{}")],
    )
    .await;
    assert_eq!(code, 403, "a wrong CSRF token");
    let (code, _) = post_form(http, &format!("{base}/console/sign-out"), &session, &[]).await;
    assert_eq!(code, 403, "even sign-out needs the token");

    // Refund one mug through the preview.
    let qty = c
        .find(Locator::Css("input[name='qty']"))
        .await
        .map_err(|e| e.to_string())?;
    qty.clear().await.map_err(|e| e.to_string())?;
    qty.send_keys("1").await.map_err(|e| e.to_string())?;
    click(c, "button[formaction$='/refund/preview']").await;
    assert!(text_of(c, "main h1").await.starts_with("Confirm refund"));
    let summary = text_of(c, "ul.summary").await;
    assert!(summary.contains("Refund 1 × line L-1"), "{summary}");
    // One of two mugs (12.50 each, 1.81 tax on both): 12.50 + 0.90, the last unit would
    // take the remaining cent.
    assert!(summary.contains("Total to refund: 13.40 USD"), "{summary}");
    shot(c, "05-refund-preview").await;
    click(c, "button.primary").await;
    let notice = text_of(c, "p.notice").await;
    assert!(notice.starts_with("Refund done"), "{notice}");
    let events = text_of(c, "table.events").await;
    assert!(
        events.contains("order.refunded"),
        "the new outbox event: {events}"
    );
    assert!(
        events.contains("fast.refund"),
        "Fast's refund call is queued: {events}"
    );
    let totals = text_of(c, "dl.totals").await;
    assert!(
        totals.contains("13.40 USD"),
        "refunded total shown: {totals}"
    );
    shot(c, "06-order-refunded").await;

    // The conversion event is a dead letter: retry it once the receiver accepts.
    status.store(200, Ordering::SeqCst);
    click(c, "nav a[href='/console/deliveries']").await;
    let dead = text_of(c, "table.events").await;
    assert!(dead.contains("order.converted"), "{dead}");
    shot(c, "07-deliveries-dead").await;
    click(c, "table.events button").await;
    let notice = text_of(c, "p.notice").await;
    assert!(notice.contains("Requeued"), "{notice}");
    shot(c, "08-delivery").await;

    click(c, "nav a[href='/console/catalog']").await;
    assert!(text_of(c, "main table").await.contains("mug-01"));
    shot(c, "09-catalog").await;
    click(c, "nav a[href='/console/settings']").await;
    let config = text_of(c, "pre.config").await;
    assert!(
        config.contains("admin_token: Some(\n        <redacted>"),
        "{config}"
    );
    let source = c.source().await.map_err(|e| e.to_string())?;
    assert!(
        !source.contains(TOKEN),
        "the admin token never reaches a page"
    );
    shot(c, "10-settings").await;

    // Phone width: the order page fits (wide tables scroll inside their own box).
    c.set_window_size(390, 844)
        .await
        .map_err(|e| e.to_string())?;
    c.goto(&format!("{base}/console/orders/{fast_id}"))
        .await
        .map_err(|e| e.to_string())?;
    let widths = c
        .execute(
            "return [document.documentElement.scrollWidth, window.innerWidth];",
            vec![],
        )
        .await
        .map_err(|e| e.to_string())?;
    let (page_w, view_w) = (widths[0].as_u64(), widths[1].as_u64());
    assert!(
        page_w.is_some() && page_w <= view_w,
        "the order page is wider than a phone: {widths}"
    );
    shot(c, "11-order-phone").await;
    c.set_window_size(1280, 1600)
        .await
        .map_err(|e| e.to_string())?;

    // Sign out: the form leads back to sign-in, and the old cookie no longer works.
    click(c, "form.sign-out button").await;
    assert_eq!(text_of(c, "main h1").await, "Sign in");
    c.goto(&format!("{base}/console/orders"))
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(path_of(c).await, "/console/sign-in");
    let r = http
        .get(format!("{base}/console/orders"))
        .header("cookie", &session)
        .send()
        .await
        .map_err(|e| e.to_string())?;
    assert_eq!(r.status().as_u16(), 303, "a signed-out session is refused");
    Ok(())
}

/// Signs in like the form does; returns the `Cookie` header of the session.
async fn sign_in(http: &reqwest::Client, base: &str) -> String {
    let r = http
        .get(format!("{base}/console/sign-in"))
        .send()
        .await
        .unwrap();
    let form_cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
    let nonce = form_cookie.split(';').next().unwrap().to_string();
    let html = r.text().await.unwrap();
    let start = html.find("name=\"csrf\" value=\"").unwrap() + "name=\"csrf\" value=\"".len();
    let csrf = &html[start..start + 64];
    let r = http
        .post(format!("{base}/console/sign-in"))
        .header("content-type", "application/x-www-form-urlencoded")
        .header("cookie", nonce)
        .body(format!("csrf={csrf}&token={TOKEN}"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 303, "signed in");
    let session = r
        .headers()
        .get_all("set-cookie")
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with("fs_console="))
        .expect("a session cookie");
    session.split(';').next().unwrap().to_string()
}

/// A copy of the stored order `from` as `to`, with 500 merchant actions in its audit log and
/// 1,000 outbox events (each with a failed and a delivered attempt): the history 500 refunds
/// leave, written through the store's import (recording 500 refunds one by one rewrites the
/// growing order 500 times, minutes in a debug build).
async fn with_long_history(app: &TestApp, from: &str, to: &str) {
    use fast_seller::domain::manage::{Actor, AuditAction, AuditEntry, Ledger, Totals};
    use fast_seller::protocol::OrderStatus;
    use fast_seller::store::{
        Attempt, ImportBatch, OrderRecord, OutboxEntry, OutboxItem, OutboxState,
    };
    let store = app.service.store();
    let record = store.get_order(from).await.unwrap().expect("the order");
    let mut stored: Value = serde_json::from_slice(&record.body).unwrap();
    stored["order"]["id"]["value"] = json!(to);
    stored["order"]["external_id"] = json!(format!("{to}-seller"));
    let audit: Vec<AuditEntry> = (0..500u64)
        .map(|n| AuditEntry {
            version: 5 + n,
            at_ms: T0_MS + 60_000 * (n + 1),
            actor: Actor {
                employee_id: Some(format!("emp-{}", n % 7)),
                source: Some("admin-api".into()),
            },
            action: AuditAction::Refund,
            detail: json!({"lines": [{"line_id": format!("L-{}", n % 200 + 1), "quantity": 1}]}),
            status_before: OrderStatus::Booked,
            status_after: OrderStatus::Booked,
            totals_before: Totals::default(),
            totals_after: Totals::default(),
        })
        .collect();
    stored["ledger"] = serde_json::to_value(Ledger {
        version: 504,
        audit,
        ..Ledger::default()
    })
    .unwrap();
    stored["events"] = json!(1000);
    let mut outbox = Vec::new();
    for n in 0..1000u64 {
        let (event_type, body) = if n % 2 == 0 {
            (
                "order.refunded",
                json!({"order_id": to, "detail": {"refund": n / 2}}),
            )
        } else {
            ("fast.refund", json!({"order_id": {"value": to}}))
        };
        let at_ms = T0_MS + 60_000 * (n / 2 + 1);
        outbox.push((
            OutboxItem {
                entry: OutboxEntry {
                    id: uuid::Uuid::now_v7().to_string(),
                    order_id: to.into(),
                    sequence: n + 3,
                    event_type: event_type.into(),
                    body: serde_json::to_vec(&body).unwrap(),
                    created_at_ms: at_ms,
                },
                state: OutboxState::Delivered,
                attempts: 2,
                failures: 0,
                next_attempt_ms: at_ms,
            },
            vec![
                Attempt {
                    at_ms,
                    latency_ms: 30,
                    delivered: false,
                    status: Some(503),
                    detail: "HTTP 503: the receiver was busy".into(),
                },
                Attempt {
                    at_ms: at_ms + 5_000,
                    latency_ms: 12,
                    delivered: true,
                    status: Some(200),
                    detail: "HTTP 200".into(),
                },
            ],
        ));
    }
    store
        .import(ImportBatch {
            orders: vec![OrderRecord {
                id: to.into(),
                external_ids: vec![format!("{to}-seller")],
                version: 504,
                body: serde_json::to_vec(&stored).unwrap(),
            }],
            idempotency: Vec::new(),
            outbox,
        })
        .await
        .unwrap();
}

/// The order page of a large order (200 lines, 500 audit entries, 1,000 outbox events)
/// shows every line, entry and event. How long it takes is printed, not asserted (a loaded
/// CI machine is no stopwatch); README, "The merchant console", has the figures.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_page_of_a_large_order_shows_every_line_and_entry() {
    let app = spawn_app_with(|s| {
        s.admin_token = Some(fast_seller::config::Secret::new(TOKEN));
    })
    .await;
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let ids: Vec<String> = (1..=200).map(|i| format!("L-{i}")).collect();
    let lines: Vec<(&str, &str, i64)> = ids.iter().map(|id| (id.as_str(), "mug-01", 3)).collect();
    booked_through_fast(&http, &app.base, "console-200", &lines).await;
    let fast_id = "console-big";
    with_long_history(&app, "console-200", fast_id).await;

    // Behind a TLS proxy the cookies are Secure; over plain HTTP they cannot be.
    for (proto, secure) in [("https", true), ("http", false)] {
        let r = http
            .get(format!("{}/console/sign-in", app.base))
            .header("x-forwarded-proto", proto)
            .send()
            .await
            .unwrap();
        let cookie = r.headers()["set-cookie"].to_str().unwrap().to_string();
        assert!(cookie.contains("HttpOnly; SameSite=Strict"), "{cookie}");
        assert_eq!(cookie.ends_with("; Secure"), secure, "{proto}: {cookie}");
    }
    let session = sign_in(&http, &app.base).await;
    let mut times = Vec::new();
    let mut html = String::new();
    for _ in 0..5 {
        let started = Instant::now();
        let r = http
            .get(format!("{}/console/orders/{fast_id}", app.base))
            .header("cookie", &session)
            .send()
            .await
            .unwrap();
        let status = r.status().as_u16();
        html = r.text().await.unwrap();
        times.push(started.elapsed());
        assert_eq!(status, 200, "{html}");
    }
    times.sort();
    let json_started = Instant::now();
    let r = app
        .client
        .get(format!("{}/admin/v1/orders/{fast_id}", app.base))
        .bearer_auth(TOKEN)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let json = r.bytes().await.unwrap();
    let json_time = json_started.elapsed();
    eprintln!(
        "order page, 200 lines / 500 audit entries / 1000 events: {} bytes; fastest {:?}, \
         median {:?}, slowest {:?} (5 loads); the admin API's JSON of the order (no events): \
         {} bytes in {:?}",
        html.len(),
        times[0],
        times[2],
        times[4],
        json.len(),
        json_time
    );
    assert_eq!(
        html.matches("name=\"line\"").count(),
        200,
        "every line is on the page"
    );
    assert_eq!(
        html.matches("<strong>Refunded</strong>").count(),
        500,
        "every audit entry is in the timeline"
    );
    assert_eq!(
        html.matches(">fast.refund</a>").count(),
        500,
        "every outbox event is listed"
    );
    assert_eq!(html.matches(">order.refunded</a>").count(), 500);
}

/// Without `FAST_SELLER_ADMIN_TOKEN` the console is not there.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_console_is_off_without_an_admin_token() {
    let data = tempfile::tempdir().unwrap();
    let server = ServerProcess::start(data.path()).await;
    for path in [
        "/console",
        "/console/sign-in",
        "/console/assets/console.css",
    ] {
        let r = http_client()
            .get(format!("{}{path}", server.base()))
            .send()
            .await
            .unwrap();
        assert_eq!(r.status().as_u16(), 404, "{path}");
        let v: Value = r.json().await.unwrap();
        assert_eq!(v["code"], 5, "{path}: {v}");
    }
}
