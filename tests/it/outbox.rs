//! Outbox delivery to the merchant's commerce backend (OUT-01…12; README.md, "Forwarding
//! converted orders", and docs/idempotency.md): what is queued with a conversion or a status
//! change, how the webhook backend signs, retries, honours `Retry-After` and dead-letters,
//! per-order FIFO, replay through the admin API, the file and NATS backends, and delivery
//! across a crash and a graceful restart.
//!
//! The webhook tests talk to [`Receiver`], a loopback HTTP server written here on raw tokio
//! sockets: each answer is scripted per order (status, `Retry-After`, a delay, or not listening
//! at all), every call is recorded and its Standard Webhooks signature verified with
//! `fast_seller::signing::verify` at the server's own clock, and "orders created" are counted
//! the way an idempotent consumer would, deduplicated by `webhook-id`.
//!
//! Time: the in-process server runs on a `ManualClock`. The background worker polls every
//! [`POLL`], so a test moves the clock and then polls (with a deadline) for the state it
//! expects; `run_once` is only used to prove that nothing is due, which it does without racing
//! the background worker (both read the same clock).

use crate::helpers::{
    accept_loop, create_body, read_request, spawn_app_in, spawn_app_with, update_body,
    write_answer, Resp, ServerProcess, TestApp, T0_MS,
};
use fast_seller::clock::{Clock, SystemClock};
use fast_seller::config::{BackendKind, Secret, Settings};
use fast_seller::outbox::schedule::RetryPolicy;
use fast_seller::signing::{self, WebhookSecret};
use fast_seller::store::{Attempt, OutboxItem, OutboxState};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::future::Future;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, UNIX_EPOCH};
use tokio::net::{TcpListener, TcpStream};
use tokio::task::JoinHandle;

/// Poll interval of the background worker in these tests.
const POLL: Duration = Duration::from_millis(20);
/// Longest wait for an expected state before a test fails.
const WAIT: Duration = Duration::from_secs(15);
/// Admin API token of the tests that use it (at least 16 characters).
const ADMIN_TOKEN: &str = "outbox-admin-token-0123456789";

const SEC: u64 = 1000;
const MIN: u64 = 60 * SEC;
const HOUR: u64 = 60 * MIN;
const DAY: u64 = 24 * HOUR;

// ---------------------------------------------------------------------------------------------
// The test receiver
// ---------------------------------------------------------------------------------------------

/// One scripted answer of the receiver.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    retry_after: Option<String>,
    /// Answer only after this long (real time).
    delay: Duration,
}

impl Reply {
    fn status(status: u16) -> Reply {
        Reply {
            status,
            retry_after: None,
            delay: Duration::ZERO,
        }
    }

    fn ok() -> Reply {
        Reply::status(200)
    }

    fn retry_after(status: u16, value: &str) -> Reply {
        Reply {
            retry_after: Some(value.to_string()),
            ..Reply::status(status)
        }
    }

    fn slow(status: u16, delay: Duration) -> Reply {
        Reply {
            delay,
            ..Reply::status(status)
        }
    }
}

/// One call the receiver got.
#[derive(Debug, Clone)]
struct Call {
    webhook_id: Option<String>,
    idempotency_key: Option<String>,
    timestamp: Option<String>,
    signature: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
    /// The body as JSON (`Null` when it is not JSON).
    json: Value,
    /// Outcome of `signing::verify` at the receiver's clock.
    verified: Result<(), String>,
    /// The receiver's clock when the call arrived.
    clock_ms: u64,
    /// Whether the answer has been written.
    answered: bool,
}

impl Call {
    fn order_id(&self) -> &str {
        self.json["order_id"].as_str().unwrap_or_default()
    }

    fn sequence(&self) -> u64 {
        self.json["sequence"].as_u64().unwrap_or_default()
    }
}

struct ReceiverState {
    secret: WebhookSecret,
    /// The secret as configured (`whsec_…`).
    secret_text: String,
    clock: Mutex<Arc<dyn Clock>>,
    /// Answers per Fast order id (the body's `order_id`), used up front to back.
    script: Mutex<HashMap<String, VecDeque<Reply>>>,
    /// The answer when an order's script is used up.
    default: Mutex<Reply>,
    calls: Mutex<Vec<Call>>,
    /// `webhook-id`s of verified `order.converted` calls: the orders this consumer created.
    created: Mutex<HashSet<String>>,
}

/// A scriptable webhook endpoint on 127.0.0.1 that can stop and resume listening on its port.
struct Receiver {
    state: Arc<ReceiverState>,
    port: u16,
    accept: Mutex<Option<JoinHandle<()>>>,
}

impl Receiver {
    /// A receiver that listens at once, answering 200 unless scripted otherwise.
    async fn start(clock: Arc<dyn Clock>) -> Receiver {
        let receiver = Receiver::start_down(clock).await;
        receiver.up().await;
        receiver
    }

    /// A receiver that owns a port but does not listen yet (connections are refused).
    async fn start_down(clock: Arc<dyn Clock>) -> Receiver {
        let port = {
            let probe = TcpListener::bind("127.0.0.1:0").await.expect("bind a port");
            probe.local_addr().expect("local addr").port()
        };
        let secret_text = signing::generate_secret();
        let secret = WebhookSecret::parse(&secret_text).expect("a fresh secret");
        Receiver {
            state: Arc::new(ReceiverState {
                secret,
                secret_text,
                clock: Mutex::new(clock),
                script: Mutex::new(HashMap::new()),
                default: Mutex::new(Reply::ok()),
                calls: Mutex::new(Vec::new()),
                created: Mutex::new(HashSet::new()),
            }),
            port,
            accept: Mutex::new(None),
        }
    }

    fn url(&self) -> String {
        format!("http://127.0.0.1:{}/orders", self.port)
    }

    fn secret(&self) -> WebhookSecret {
        self.state.secret.clone()
    }

    fn secret_text(&self) -> String {
        self.state.secret_text.clone()
    }

    /// The clock signatures are checked against (the server's).
    fn set_clock(&self, clock: Arc<dyn Clock>) {
        *self.state.clock.lock().unwrap() = clock;
    }

    /// Answers for the events of Fast order `order_id`, in this order.
    fn script(&self, order_id: &str, replies: Vec<Reply>) {
        self.state
            .script
            .lock()
            .unwrap()
            .insert(order_id.to_string(), replies.into());
    }

    fn set_default(&self, reply: Reply) {
        *self.state.default.lock().unwrap() = reply;
    }

    fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    fn calls_for(&self, order_id: &str) -> Vec<Call> {
        self.calls()
            .into_iter()
            .filter(|c| c.order_id() == order_id)
            .collect()
    }

    fn orders_created(&self) -> usize {
        self.state.created.lock().unwrap().len()
    }

    /// Every call so far carried a valid signature (panics naming the first bad one).
    fn assert_all_verified(&self) {
        for (i, call) in self.calls().iter().enumerate() {
            if let Err(e) = &call.verified {
                panic!("call {i} failed signature verification: {e}\n{call:?}");
            }
        }
    }

    /// Starts listening on the receiver's port.
    async fn up(&self) {
        let deadline = Instant::now() + WAIT;
        let listener = loop {
            match TcpListener::bind(("127.0.0.1", self.port)).await {
                Ok(l) => break l,
                Err(_) if Instant::now() < deadline => {
                    tokio::time::sleep(Duration::from_millis(20)).await;
                }
                Err(e) => panic!(
                    "the receiver cannot listen on port {} again: {e}",
                    self.port
                ),
            }
        };
        let task = accept_loop(listener, self.state.clone(), serve_connection);
        let old = self.accept.lock().unwrap().replace(task);
        assert!(old.is_none(), "the receiver was already listening");
    }

    /// Stops listening: new connections are refused (calls being answered finish).
    async fn down(&self) {
        let task = self.accept.lock().unwrap().take();
        if let Some(task) = task {
            task.abort();
            let _ = task.await;
        }
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        if let Some(task) = self.accept.lock().unwrap().take() {
            task.abort();
        }
    }
}

/// Reads one HTTP/1.1 request, records it, answers as scripted and closes the connection.
async fn serve_connection(mut stream: TcpStream, state: Arc<ReceiverState>) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let clock_ms = state.clock.lock().unwrap().now_ms();
    let verified = request.verify(&state.secret, clock_ms);
    let header = |name: &str| request.header(name);
    let body = request.body.clone();
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let order_id = json["order_id"].as_str().unwrap_or_default().to_string();
    let reply = state
        .script
        .lock()
        .unwrap()
        .get_mut(&order_id)
        .and_then(VecDeque::pop_front)
        .unwrap_or_else(|| state.default.lock().unwrap().clone());
    let webhook_id = header(signing::HEADER_ID);
    if verified.is_ok() && json["type"] == "order.converted" {
        if let Some(id) = &webhook_id {
            state.created.lock().unwrap().insert(id.clone());
        }
    }
    let index = {
        let mut calls = state.calls.lock().unwrap();
        calls.push(Call {
            webhook_id,
            idempotency_key: header("idempotency-key"),
            timestamp: header(signing::HEADER_TIMESTAMP),
            signature: header(signing::HEADER_SIGNATURE),
            content_type: header("content-type"),
            body,
            json,
            verified,
            clock_ms,
            answered: false,
        });
        calls.len() - 1
    };

    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let extra = reply
        .retry_after
        .as_ref()
        .map(|v| format!("retry-after: {v}\r\n"))
        .unwrap_or_default();
    if write_answer(&mut stream, reply.status, &extra).await {
        state.calls.lock().unwrap()[index].answered = true;
    }
}

// ---------------------------------------------------------------------------------------------
// Server and store helpers
// ---------------------------------------------------------------------------------------------

/// The webhook backend pointed at `receiver`, with a fast-polling worker.
fn webhook_settings(s: &mut Settings, receiver: &Receiver) {
    s.backend = BackendKind::Webhook;
    s.webhook_url = Some(receiver.url());
    s.webhook_secret = Some(receiver.secret());
    s.outbox.poll_interval = POLL;
}

/// An in-process server delivering to `receiver`, whose clock the receiver then checks
/// signatures against.
async fn spawn_webhook_app(receiver: &Receiver, tweak: impl FnOnce(&mut Settings)) -> TestApp {
    let app = spawn_app_with(|s| {
        webhook_settings(s, receiver);
        tweak(s);
    })
    .await;
    receiver.set_clock(app.clock.clone());
    app
}

fn convert_body(fast_id: &str, request_id: &str) -> Value {
    update_body(request_id, fast_id, json!({"convert_cart_to_order": true}))
}

/// Creates cart `fast_id` (one sticker) and converts it; returns the conversion answer.
async fn convert(app: &TestApp, fast_id: &str) -> Resp {
    let r = app
        .post(
            "create",
            &create_body(
                &format!("{fast_id}-create"),
                fast_id,
                &[("L-1", "sticker-01", 1)],
            ),
        )
        .await;
    assert_eq!(
        r.status,
        200,
        "create {fast_id}: {}",
        String::from_utf8_lossy(&r.bytes)
    );
    let r = app
        .post(
            "update",
            &convert_body(fast_id, &format!("{fast_id}-convert")),
        )
        .await;
    assert_eq!(
        r.status,
        200,
        "convert {fast_id}: {}",
        String::from_utf8_lossy(&r.bytes)
    );
    assert_eq!(
        r.order()["status"],
        "ORDER_STATUS_PENDING",
        "the conversion of {fast_id} must succeed: {}",
        String::from_utf8_lossy(&r.bytes)
    );
    r
}

/// A post-conversion status update (Fast sends only the seller's id then).
async fn set_status(app: &TestApp, request_id: &str, seller_id: &str, status: &str) {
    let body = json!({"type": "ENTITY_TYPE_ORDER", "app_id": "test-app",
                      "request_id": {"value": request_id},
                      "order": {"external_id": seller_id, "convert_cart_to_order": true,
                                "status": status}});
    let r = app.post("update", &body).await;
    assert_eq!(
        r.status,
        200,
        "status {status}: {}",
        String::from_utf8_lossy(&r.bytes)
    );
    assert_eq!(
        r.order()["status"],
        status,
        "status update to {status}: {}",
        String::from_utf8_lossy(&r.bytes)
    );
}

/// All outbox entries, oldest first.
async fn all_entries(app: &TestApp) -> Vec<OutboxItem> {
    app.service
        .store()
        .outbox_list(None, 100_000)
        .await
        .expect("outbox_list")
}

/// The outbox entries of one order, by sequence.
async fn entries_of(app: &TestApp, order_id: &str) -> Vec<OutboxItem> {
    let mut items: Vec<OutboxItem> = all_entries(app)
        .await
        .into_iter()
        .filter(|i| i.entry.order_id == order_id)
        .collect();
    items.sort_by_key(|i| i.entry.sequence);
    items
}

/// The only outbox entry of `order_id`.
async fn only_entry(app: &TestApp, order_id: &str) -> OutboxItem {
    let mut items = entries_of(app, order_id).await;
    assert_eq!(
        items.len(),
        1,
        "order {order_id} must have exactly one outbox event: {items:#?}"
    );
    items.remove(0)
}

async fn entry(app: &TestApp, id: &str) -> (OutboxItem, Vec<Attempt>) {
    app.service
        .store()
        .outbox_get(id)
        .await
        .expect("outbox_get")
        .unwrap_or_else(|| panic!("no outbox entry {id}"))
}

/// Polls `probe` until it yields a value, failing after [`WAIT`].
async fn eventually<T, Fut>(what: &str, mut probe: impl FnMut() -> Fut) -> T
where
    Fut: Future<Output = Option<T>>,
{
    let deadline = Instant::now() + WAIT;
    loop {
        if let Some(v) = probe().await {
            return v;
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until entry `id` satisfies `done`.
async fn wait_entry(
    app: &TestApp,
    id: &str,
    what: &str,
    done: impl Fn(&OutboxItem, &[Attempt]) -> bool,
) -> (OutboxItem, Vec<Attempt>) {
    let deadline = Instant::now() + WAIT;
    loop {
        let (item, attempts) = entry(app, id).await;
        if done(&item, &attempts) {
            return (item, attempts);
        }
        assert!(
            Instant::now() < deadline,
            "timed out after {WAIT:?} waiting for {what} of outbox entry {id}: \
             {item:#?}\n{attempts:#?}"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
}

/// Waits until entry `id` has made exactly `n` attempts.
async fn wait_attempts(app: &TestApp, id: &str, n: u32) -> (OutboxItem, Vec<Attempt>) {
    let (item, attempts) =
        wait_entry(app, id, &format!("attempt {n}"), |i, _| i.attempts >= n).await;
    assert_eq!(item.attempts, n, "one attempt too many: {attempts:#?}");
    assert_eq!(attempts.len(), n as usize, "the attempt log: {attempts:#?}");
    (item, attempts)
}

async fn wait_state(app: &TestApp, id: &str, state: OutboxState) -> (OutboxItem, Vec<Attempt>) {
    wait_entry(app, id, state.as_str(), |i, _| i.state == state).await
}

/// Sets the manual clock to `ms` (never backwards).
fn advance_to(app: &TestApp, ms: u64) {
    let now = app.clock.now_ms();
    assert!(ms >= now, "the clock cannot go back from {now} to {ms}");
    app.clock.advance_ms(ms - now);
}

/// Nothing is due at the current manual time: `run_once` attempts nothing (and so neither
/// can the background worker, which reads the same clock).
async fn assert_nothing_due(app: &TestApp, why: &str) {
    let n = app.outbox.run_once().await.expect("run_once");
    assert_eq!(
        n,
        0,
        "{why}: nothing may be due at T0 + {} ms",
        app.clock.now_ms() - T0_MS
    );
}

/// Checks that entry `item` (just failed, pending) is scheduled `base` after `at_ms`, with at
/// most 10 % jitter; returns the due time.
fn assert_scheduled(item: &OutboxItem, at_ms: u64, base_ms: u64, what: &str) -> u64 {
    assert_eq!(item.state, OutboxState::Pending, "{what}: {item:#?}");
    let next = item.next_attempt_ms;
    let delay = next.saturating_sub(at_ms);
    assert!(
        next >= at_ms && delay >= base_ms && delay <= base_ms + base_ms / 10,
        "{what}: next attempt {delay} ms after the failed one, outside [{base_ms}, +10 %]"
    );
    next
}

/// The admin API, authenticated.
async fn admin(app: &TestApp, method: reqwest::Method, path: &str) -> (u16, Value) {
    let r = app
        .client
        .request(method, format!("{}/admin/v1{path}", app.base))
        .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
        .send()
        .await
        .expect("admin request");
    let status = r.status().as_u16();
    let bytes = r.bytes().await.expect("admin body");
    let body = serde_json::from_slice(&bytes)
        .unwrap_or_else(|e| panic!("admin answer is not JSON ({e}): {bytes:?}"));
    (status, body)
}

// ---------------------------------------------------------------------------------------------
// OUT-01 / OUT-02: one event per conversion, delivered signed
// ---------------------------------------------------------------------------------------------

/// OUT-01/02. A conversion is the moment an order exists for the merchant: it must produce
/// exactly one `order.converted` event carrying the contract's fields, delivered as one signed
/// POST whose `webhook-id` and `Idempotency-Key` are the event id (the receiver's dedupe key),
/// and logged with its status and latency. Replaying the conversion (Fast retries) or sending
/// it again must not create a second "order created" at the merchant.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversion_queues_one_event_delivered_once_signed_and_logged() {
    let receiver = Receiver::start(Arc::new(SystemClock)).await;
    // A little latency, so the logged latency must be real.
    receiver.set_default(Reply::slow(200, Duration::from_millis(50)));
    let app = spawn_webhook_app(&receiver, |_| {}).await;

    let r = app
        .post(
            "create",
            &create_body("c-1", "F-1", &[("L-1", "sticker-01", 2)]),
        )
        .await;
    assert_eq!(r.status, 200, "{}", String::from_utf8_lossy(&r.bytes));
    let counts = app.service.store().counts().await.unwrap();
    assert_eq!(counts.outbox_entries, 0, "a cart queues nothing");

    let converted = app.post("update", &convert_body("F-1", "c-2")).await;
    assert_eq!(converted.status, 200);
    let answered = converted.order();
    assert_eq!(answered["status"], "ORDER_STATUS_PENDING");
    let seller_id = answered["external_id"]
        .as_str()
        .expect("a converted order has the seller's id")
        .to_string();

    let entries = all_entries(&app).await;
    assert_eq!(entries.len(), 1, "exactly one event: {entries:#?}");
    let item = &entries[0];
    assert_eq!(item.entry.event_type, "order.converted");
    assert_eq!(item.entry.order_id, "F-1");
    assert_eq!(item.entry.sequence, 1);

    // The event body (README.md#forwarding-converted-orders-the-outbox).
    let event: Value = serde_json::from_slice(&item.entry.body).expect("the event is JSON");
    let keys: HashSet<&str> = event
        .as_object()
        .expect("an object")
        .keys()
        .map(String::as_str)
        .collect();
    let expected: HashSet<&str> = [
        "id",
        "type",
        "order_id",
        "external_id",
        "sequence",
        "occurred_at",
        "order",
    ]
    .into_iter()
    .collect();
    assert_eq!(keys, expected, "the event's fields: {event}");
    assert_eq!(event["id"], item.entry.id.as_str());
    assert_eq!(event["type"], "order.converted");
    assert_eq!(event["order_id"], "F-1");
    assert_eq!(event["external_id"], seller_id.as_str());
    assert_eq!(event["sequence"], 1);
    let occurred = event["occurred_at"].as_str().expect("occurred_at text");
    let occurred = humantime::parse_rfc3339(occurred)
        .unwrap_or_else(|e| panic!("occurred_at {occurred} is not RFC 3339: {e}"));
    assert_eq!(
        occurred,
        UNIX_EPOCH + Duration::from_millis(T0_MS),
        "occurred_at is the conversion time"
    );
    assert_eq!(event["order"]["status"], "ORDER_STATUS_PENDING");
    assert_eq!(event["order"]["order_type"], "ORDER_TYPE_ORDER");
    assert_eq!(event["order"]["id"]["value"], "F-1");
    assert_eq!(
        event["order"], answered,
        "the event carries the order as answered"
    );

    // Delivered: one signed POST, logged.
    let (done, attempts) = wait_state(&app, &item.entry.id, OutboxState::Delivered).await;
    assert_eq!(done.attempts, 1);
    assert_eq!(attempts.len(), 1, "{attempts:#?}");
    let a = &attempts[0];
    assert!(a.delivered, "{a:#?}");
    assert_eq!(a.status, Some(200), "{a:#?}");
    assert_eq!(a.at_ms, T0_MS, "attempted at once");
    assert!(
        (40..15_000).contains(&a.latency_ms),
        "the latency of a 50 ms answer is logged: {a:#?}"
    );

    let calls = receiver.calls();
    assert_eq!(calls.len(), 1, "one POST: {calls:#?}");
    receiver.assert_all_verified();
    let call = &calls[0];
    assert_eq!(call.webhook_id.as_deref(), Some(item.entry.id.as_str()));
    assert_eq!(
        call.idempotency_key.as_deref(),
        Some(item.entry.id.as_str())
    );
    assert_eq!(call.timestamp.as_deref(), Some("1767225600"));
    assert!(
        call.signature
            .as_deref()
            .is_some_and(|s| s.starts_with("v1,")),
        "{call:?}"
    );
    assert_eq!(call.content_type.as_deref(), Some("application/json"));
    assert_eq!(call.body, item.entry.body, "the body is the event");
    assert_eq!(receiver.orders_created(), 1);

    // Fast replays the conversion (same request_id): the stored answer, nothing queued.
    let replay = app.post("update", &convert_body("F-1", "c-2")).await;
    assert_eq!(replay.status, 200);
    assert_eq!(
        replay.bytes, converted.bytes,
        "a replay answers the same bytes"
    );
    // Fast sends the conversion again under a new request_id: already converted, no event.
    let again = app.post("update", &convert_body("F-1", "c-3")).await;
    assert_eq!(again.status, 200);
    assert_eq!(again.order()["status"], "ORDER_STATUS_PENDING");
    let counts = app.service.store().counts().await.unwrap();
    assert_eq!(counts.outbox_entries, 1, "no second event: {counts:?}");
    assert_eq!(counts.outbox_pending, 0, "{counts:?}");
    assert_nothing_due(&app, "after the replays").await;
    assert_eq!(receiver.calls().len(), 1, "still one POST");
    assert_eq!(receiver.orders_created(), 1, "one order created");
}

// ---------------------------------------------------------------------------------------------
// OUT-03: the retry schedule
// ---------------------------------------------------------------------------------------------

/// OUT-03. A backend that is briefly down must get the event again on the published schedule
/// (0, 5 s, 5 min, 30 min, 2 h, each + 0–10 % jitter), never early (a hammering sender makes
/// outages worse), always with the same `webhook-id` (so it can dedupe) but a fresh timestamp
/// and signature (so its replay window accepts it).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn failures_are_retried_on_the_schedule_with_the_same_id_and_fresh_signatures() {
    let receiver = Receiver::start(Arc::new(SystemClock)).await;
    receiver.script("F-3", vec![Reply::status(503); 4]);
    let app = spawn_webhook_app(&receiver, |_| {}).await;
    convert(&app, "F-3").await;
    let id = only_entry(&app, "F-3").await.entry.id;

    let bases = [5 * SEC, 5 * MIN, 30 * MIN, 2 * HOUR];
    let (mut item, mut log) = wait_attempts(&app, &id, 1).await;
    assert_eq!(log[0].at_ms, T0_MS, "the first attempt is immediate");
    for (i, base) in bases.iter().enumerate() {
        let n = u32::try_from(i).unwrap() + 1;
        let failed = &log[i];
        assert!(!failed.delivered, "attempt {n}: {failed:#?}");
        assert_eq!(failed.status, Some(503), "attempt {n}: {failed:#?}");
        let next = assert_scheduled(&item, failed.at_ms, *base, &format!("after attempt {n}"));
        advance_to(&app, next - 1);
        assert_nothing_due(&app, &format!("1 ms before attempt {}", n + 1)).await;
        assert_eq!(receiver.calls().len(), i + 1, "no early attempt");
        advance_to(&app, next);
        (item, log) = wait_attempts(&app, &id, n + 1).await;
        assert_eq!(log[i + 1].at_ms, next, "attempt {} when due", n + 1);
    }
    assert_eq!(item.state, OutboxState::Delivered, "{item:#?}");
    assert!(log[4].delivered && log[4].status == Some(200), "{log:#?}");

    let calls = receiver.calls();
    assert_eq!(calls.len(), 5, "{calls:#?}");
    receiver.assert_all_verified();
    for (call, attempt) in calls.iter().zip(&log) {
        let at_ms = attempt.at_ms;
        assert_eq!(
            call.clock_ms, at_ms,
            "the call arrived at the attempt's time"
        );
        assert_eq!(call.webhook_id.as_deref(), Some(id.as_str()), "same id");
        assert_eq!(call.idempotency_key.as_deref(), Some(id.as_str()));
        assert_eq!(
            call.timestamp.as_deref(),
            Some((at_ms / 1000).to_string().as_str()),
            "signed at the attempt's time"
        );
    }
    let stamps: HashSet<_> = calls.iter().map(|c| c.timestamp.clone()).collect();
    let signatures: HashSet<_> = calls.iter().map(|c| c.signature.clone()).collect();
    assert_eq!(stamps.len(), 5, "a fresh timestamp per attempt");
    assert_eq!(signatures.len(), 5, "a fresh signature per attempt");
    assert_eq!(receiver.orders_created(), 1);
}

// ---------------------------------------------------------------------------------------------
// OUT-04 / OUT-10: dead letters and their replay
// ---------------------------------------------------------------------------------------------

/// OUT-04/10. A backend that never accepts must not be retried forever: after the configured
/// attempts the event is a dead letter, nothing more goes out however long we wait, and the
/// merchant can find it in `/admin/v1/outbox?state=dead` and replay it with the same event id
/// (so their dedupe still works) while the earlier attempt history stays as it was.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_attempts_dead_letter_and_admin_retry_delivers_with_the_same_id() {
    let receiver = Receiver::start(Arc::new(SystemClock)).await;
    receiver.set_default(Reply::status(500));
    let policy = RetryPolicy {
        delays: vec![
            Duration::from_secs(1),
            Duration::from_secs(2),
            Duration::from_secs(3),
        ],
        ..RetryPolicy::default()
    };
    let max_attempts = u32::try_from(policy.max_attempts()).unwrap();
    assert_eq!(max_attempts, 4);
    let app = spawn_webhook_app(&receiver, |s| {
        s.outbox.policy = policy.clone();
        s.admin_token = Some(Secret::new(ADMIN_TOKEN));
    })
    .await;
    convert(&app, "F-4").await;
    let id = only_entry(&app, "F-4").await.entry.id;

    for n in 1..max_attempts {
        let (item, attempts) = wait_attempts(&app, &id, n).await;
        let last = attempts.last().unwrap();
        let base = u64::try_from(policy.delays[n as usize - 1].as_millis()).unwrap();
        let next = assert_scheduled(&item, last.at_ms, base, &format!("after attempt {n}"));
        advance_to(&app, next);
    }
    let (dead, history) = wait_state(&app, &id, OutboxState::Dead).await;
    assert_eq!(
        dead.attempts, max_attempts,
        "exactly the schedule's attempts"
    );
    assert_eq!(dead.failures, max_attempts);
    assert_eq!(history.len(), max_attempts as usize);
    assert!(
        history
            .iter()
            .all(|a| !a.delivered && a.status == Some(500)),
        "{history:#?}"
    );
    let counts = app.service.store().counts().await.unwrap();
    assert_eq!(
        (counts.outbox_dead, counts.outbox_pending),
        (1, 0),
        "{counts:?}"
    );

    app.clock.advance_ms(30 * DAY);
    assert_nothing_due(&app, "30 days after dead-lettering").await;
    assert_eq!(
        receiver.calls().len(),
        max_attempts as usize,
        "no attempt after death"
    );

    // The admin API is closed without the token.
    let anonymous = app
        .client
        .get(format!("{}/admin/v1/outbox?state=dead", app.base))
        .send()
        .await
        .unwrap();
    assert_eq!(anonymous.status().as_u16(), 401);

    let (status, listed) = admin(&app, reqwest::Method::GET, "/outbox?state=dead").await;
    assert_eq!(status, 200, "{listed}");
    let events = listed["events"].as_array().expect("events");
    assert_eq!(events.len(), 1, "{listed}");
    assert_eq!(events[0]["id"], id.as_str());
    assert_eq!(events[0]["state"], "dead");
    assert_eq!(events[0]["attempts"], max_attempts);
    let (_, pending) = admin(&app, reqwest::Method::GET, "/outbox?state=pending").await;
    assert_eq!(pending["events"], json!([]), "{pending}");

    // The backend is fixed; the merchant replays the dead letter.
    receiver.set_default(Reply::ok());
    let (status, retried) =
        admin(&app, reqwest::Method::POST, &format!("/outbox/{id}/retry")).await;
    assert_eq!(status, 200, "{retried}");
    assert_eq!(retried["id"], id.as_str(), "re-queued under the same id");
    assert!(
        retried["state"] == "pending" || retried["state"] == "delivered",
        "{retried}"
    );
    let (done, log) = wait_state(&app, &id, OutboxState::Delivered).await;
    assert_eq!(done.attempts, max_attempts + 1);
    assert_eq!(
        log[..history.len()],
        history[..],
        "the old attempt history is intact"
    );
    let last = log.last().unwrap();
    assert!(last.delivered && last.status == Some(200), "{log:#?}");

    let (_, shown) = admin(&app, reqwest::Method::GET, &format!("/outbox/{id}")).await;
    assert_eq!(shown["state"], "delivered", "{shown}");
    assert_eq!(
        shown["attempt_log"].as_array().map(Vec::len),
        Some(max_attempts as usize + 1),
        "{shown}"
    );
    let calls = receiver.calls();
    assert_eq!(calls.len(), max_attempts as usize + 1);
    assert!(calls
        .iter()
        .all(|c| c.webhook_id.as_deref() == Some(id.as_str())));
    receiver.assert_all_verified();
    assert_eq!(receiver.orders_created(), 1);
    // Retrying something that is not dead is refused.
    let (status, _) = admin(&app, reqwest::Method::POST, &format!("/outbox/{id}/retry")).await;
    assert_eq!(status, 409, "a delivered event cannot be re-queued");
}

// ---------------------------------------------------------------------------------------------
// OUT-05: Retry-After
// ---------------------------------------------------------------------------------------------

/// OUT-05. A throttled backend says when to come back: `Retry-After` (seconds) must push the
/// next attempt at least that far (120 s on a 429, 60 s on a 503), a hostile or broken value
/// of one year must not stall the order beyond the 10 h cap, and a malformed value must fall
/// back to the normal schedule rather than being ignored into a tight loop or a stall.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retry_after_is_honoured_capped_at_ten_hours_and_malformed_falls_back() {
    let receiver = Receiver::start(Arc::new(SystemClock)).await;
    receiver.script(
        "F-X",
        vec![
            Reply::retry_after(429, "120"),
            Reply::retry_after(429, "31536000"),
            Reply::retry_after(429, "soon"),
        ],
    );
    receiver.script("F-Y", vec![Reply::retry_after(503, "60")]);
    let app = spawn_webhook_app(&receiver, |_| {}).await;
    convert(&app, "F-X").await;
    convert(&app, "F-Y").await;
    let x = only_entry(&app, "F-X").await.entry.id;
    let y = only_entry(&app, "F-Y").await.entry.id;

    let (item_x, log_x) = wait_attempts(&app, &x, 1).await;
    let (item_y, log_y) = wait_attempts(&app, &y, 1).await;
    assert_eq!(log_x[0].status, Some(429));
    assert_eq!(log_y[0].status, Some(503));
    let delay_x = item_x.next_attempt_ms - log_x[0].at_ms;
    assert!(
        (120 * SEC..5 * MIN).contains(&delay_x),
        "429 with Retry-After: 120 → at least 120 s (not the next step): {delay_x} ms"
    );
    let delay_y = item_y.next_attempt_ms - log_y[0].at_ms;
    assert!(
        (60 * SEC..5 * MIN).contains(&delay_y),
        "503 with Retry-After: 60 → at least 60 s: {delay_y} ms"
    );

    // Y is due first; X is not due before its Retry-After.
    advance_to(&app, item_y.next_attempt_ms);
    wait_state(&app, &y, OutboxState::Delivered).await;
    advance_to(&app, item_x.next_attempt_ms - 1);
    assert_nothing_due(&app, "before X's Retry-After").await;
    assert_eq!(receiver.calls_for("F-X").len(), 1);

    advance_to(&app, item_x.next_attempt_ms);
    let (item_x, log_x) = wait_attempts(&app, &x, 2).await;
    let delay = item_x.next_attempt_ms - log_x[1].at_ms;
    assert_eq!(
        delay,
        10 * HOUR,
        "Retry-After of one year → capped at exactly 10 h"
    );
    advance_to(&app, item_x.next_attempt_ms - 1);
    assert_nothing_due(&app, "before the capped Retry-After").await;

    advance_to(&app, item_x.next_attempt_ms);
    let (item_x, log_x) = wait_attempts(&app, &x, 3).await;
    assert_eq!(log_x[2].status, Some(429));
    let next = assert_scheduled(
        &item_x,
        log_x[2].at_ms,
        30 * MIN,
        "a malformed Retry-After uses the schedule (3rd failure: 30 min)",
    );
    advance_to(&app, next);
    wait_state(&app, &x, OutboxState::Delivered).await;
    assert_eq!(receiver.calls_for("F-X").len(), 4);
    assert_eq!(receiver.calls_for("F-Y").len(), 2);
    receiver.assert_all_verified();
}

// ---------------------------------------------------------------------------------------------
// OUT-06: status classes
// ---------------------------------------------------------------------------------------------

/// OUT-06. The answer's class decides the event's fate (README, webhook backend): a 400 means
/// retrying cannot help, so the event is dead at once (and shows up for the merchant) rather than
/// hammering for three days; a 409 means "I already have it" and counts as delivered, as does
/// any 2xx.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_400_dead_letters_at_once_while_409_and_2xx_count_as_delivered() {
    let receiver = Receiver::start(Arc::new(SystemClock)).await;
    let cases = [
        ("F-400", 400, OutboxState::Dead),
        ("F-410", 410, OutboxState::Dead),
        ("F-409", 409, OutboxState::Delivered),
        ("F-204", 204, OutboxState::Delivered),
    ];
    for (order, status, _) in &cases {
        receiver.script(order, vec![Reply::status(*status)]);
    }
    let app = spawn_webhook_app(&receiver, |_| {}).await;
    for (order, _, _) in &cases {
        convert(&app, order).await;
    }
    for (order, status, state) in &cases {
        let id = only_entry(&app, order).await.entry.id;
        let (item, log) = wait_entry(&app, &id, state.as_str(), |i, _| {
            i.state != OutboxState::Pending
        })
        .await;
        assert_eq!(item.state, *state, "HTTP {status}: {item:#?}\n{log:#?}");
        assert_eq!(item.attempts, 1, "HTTP {status}: one attempt only");
        assert_eq!(log[0].status, Some(*status));
        assert_eq!(log[0].delivered, *state == OutboxState::Delivered);
    }
    app.clock.advance_ms(3 * DAY);
    assert_nothing_due(&app, "dead or delivered entries are never retried").await;
    assert_eq!(receiver.calls().len(), cases.len());
    receiver.assert_all_verified();
}

// ---------------------------------------------------------------------------------------------
// OUT-07: timeouts and refused connections
// ---------------------------------------------------------------------------------------------

/// OUT-07. A backend that hangs must not hold the worker (the attempt times out after the
/// configured 300 ms and is logged as a failure), and one that is not listening at all must
/// be retried like any other failure: both are the everyday shapes of an outage.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_hanging_or_refusing_backend_is_a_logged_failure_and_retried() {
    let receiver = Receiver::start(Arc::new(SystemClock)).await;
    receiver.script("F-7", vec![Reply::slow(200, Duration::from_secs(3))]);
    let app = spawn_webhook_app(&receiver, |s| {
        s.outbox.attempt_timeout = Duration::from_millis(300);
    })
    .await;
    convert(&app, "F-7").await;
    let id = only_entry(&app, "F-7").await.entry.id;

    let (item, log) = wait_attempts(&app, &id, 1).await;
    let timed_out = &log[0];
    assert!(!timed_out.delivered, "{timed_out:#?}");
    assert_eq!(
        timed_out.status, None,
        "no answer, no status: {timed_out:#?}"
    );
    assert!(
        (250..2_500).contains(&timed_out.latency_ms),
        "given up after about 300 ms: {timed_out:#?}"
    );
    assert!(!timed_out.detail.is_empty());
    let next = assert_scheduled(&item, timed_out.at_ms, 5 * SEC, "after the timeout");
    assert_eq!(receiver.calls().len(), 1, "the slow call arrived");

    receiver.down().await;
    advance_to(&app, next);
    let (item, log) = wait_attempts(&app, &id, 2).await;
    let refused = &log[1];
    assert!(!refused.delivered, "{refused:#?}");
    assert_eq!(refused.status, None, "{refused:#?}");
    assert!(!refused.detail.is_empty());
    let next = assert_scheduled(
        &item,
        refused.at_ms,
        5 * MIN,
        "after the refused connection",
    );
    assert_eq!(receiver.calls().len(), 1, "nothing arrived while down");

    receiver.up().await;
    advance_to(&app, next);
    let (_, log) = wait_state(&app, &id, OutboxState::Delivered).await;
    assert_eq!(log.len(), 3, "{log:#?}");
    let calls = receiver.calls();
    assert_eq!(calls.len(), 2);
    assert!(calls
        .iter()
        .all(|c| c.webhook_id.as_deref() == Some(id.as_str())));
    receiver.assert_all_verified();
    assert_eq!(receiver.orders_created(), 1);
}

// ---------------------------------------------------------------------------------------------
// OUT-09: per-order FIFO, orders independent
// ---------------------------------------------------------------------------------------------

/// OUT-09. The merchant must never see "booked" before "created" for one order, so a failing
/// first event holds back that order's later events; but one troubled order must not block
/// everybody else's orders.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_of_one_order_go_in_sequence_and_other_orders_do_not_wait() {
    let receiver = Receiver::start(Arc::new(SystemClock)).await;
    receiver.script("F-A", vec![Reply::status(503), Reply::status(503)]);
    let app = spawn_webhook_app(&receiver, |_| {}).await;

    let answer = convert(&app, "F-A").await;
    let seller_a = answer.order()["external_id"].as_str().unwrap().to_string();
    let a1 = only_entry(&app, "F-A").await.entry.id;
    let (item, log) = wait_attempts(&app, &a1, 1).await;
    assert_eq!(log[0].status, Some(503));
    let next = assert_scheduled(&item, log[0].at_ms, 5 * SEC, "A after its first failure");

    set_status(&app, "a-booked", &seller_a, "ORDER_STATUS_BOOKED").await;
    set_status(&app, "a-pf", &seller_a, "ORDER_STATUS_PENDING_FULFILLMENT").await;
    let a = entries_of(&app, "F-A").await;
    assert_eq!(
        a.iter().map(|i| i.entry.sequence).collect::<Vec<_>>(),
        [1, 2, 3]
    );
    assert_eq!(a[1].entry.event_type, "order.status_changed");
    assert_eq!(a[2].entry.event_type, "order.status_changed");
    assert_nothing_due(&app, "A's later events wait behind its first").await;

    convert(&app, "F-B").await;
    let b = only_entry(&app, "F-B").await.entry.id;
    wait_state(&app, &b, OutboxState::Delivered).await;
    let (a_head, _) = entry(&app, &a1).await;
    assert_eq!(
        (a_head.state, a_head.attempts),
        (OutboxState::Pending, 1),
        "B went out while A's first event was still failing"
    );

    advance_to(&app, next);
    let (item, log) = wait_attempts(&app, &a1, 2).await;
    assert_eq!(log[1].status, Some(503));
    let next = assert_scheduled(&item, log[1].at_ms, 5 * MIN, "A after its second failure");
    advance_to(&app, next);
    for later in &a {
        wait_state(&app, &later.entry.id, OutboxState::Delivered).await;
    }

    let calls = receiver.calls();
    receiver.assert_all_verified();
    let a_calls: Vec<(u64, String)> = calls
        .iter()
        .filter(|c| c.order_id() == "F-A")
        .map(|c| (c.sequence(), c.webhook_id.clone().unwrap_or_default()))
        .collect();
    let ids: Vec<String> = a.iter().map(|i| i.entry.id.clone()).collect();
    assert_eq!(
        a_calls,
        vec![
            (1, ids[0].clone()),
            (1, ids[0].clone()),
            (1, ids[0].clone()),
            (2, ids[1].clone()),
            (3, ids[2].clone()),
        ],
        "A's events in sequence, the first retried until accepted"
    );
    let statuses: Vec<&Value> = calls
        .iter()
        .filter(|c| c.order_id() == "F-A")
        .map(|c| &c.json["order"]["status"])
        .collect();
    assert_eq!(statuses[3], "ORDER_STATUS_BOOKED");
    assert_eq!(statuses[4], "ORDER_STATUS_PENDING_FULFILLMENT");
    let b_index = calls.iter().position(|c| c.order_id() == "F-B").unwrap();
    let a_second = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.order_id() == "F-A")
        .nth(1)
        .map(|(i, _)| i)
        .unwrap();
    assert!(b_index < a_second, "B did not wait for A's retries");
    assert_eq!(receiver.orders_created(), 2);
}

// ---------------------------------------------------------------------------------------------
// The file backend
// ---------------------------------------------------------------------------------------------

/// The default backend: a merchant with no integration yet still gets every converted order,
/// as one JSON line each in `<data-dir>/forwarded.jsonl`, identified by the event id.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_file_backend_appends_converted_orders_as_json_lines() {
    let app = spawn_app_with(|s| s.outbox.poll_interval = POLL).await;
    convert(&app, "F-F1").await;
    convert(&app, "F-F2").await;
    let mut ids = Vec::new();
    for order in ["F-F1", "F-F2"] {
        let id = only_entry(&app, order).await.entry.id;
        let (_, log) = wait_state(&app, &id, OutboxState::Delivered).await;
        assert!(log[0].delivered, "{log:#?}");
        ids.push((order, id));
    }
    let path = app.data_dir.join("forwarded.jsonl");
    let text = std::fs::read_to_string(&path)
        .unwrap_or_else(|e| panic!("{} must exist: {e}", path.display()));
    let lines: Vec<Value> = text
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    assert_eq!(lines.len(), 2, "one line per event:\n{text}");
    for (order, id) in &ids {
        let line = lines
            .iter()
            .find(|l| l["id"] == id.as_str())
            .unwrap_or_else(|| panic!("no line for event {id}:\n{text}"));
        assert_eq!(line["type"], "order.converted");
        assert_eq!(line["order_id"], *order);
        assert_eq!(line["sequence"], 1);
        assert_eq!(line["order"]["status"], "ORDER_STATUS_PENDING");
    }
}

// ---------------------------------------------------------------------------------------------
// The NATS backend
// ---------------------------------------------------------------------------------------------

#[cfg(feature = "nats")]
const NATS_URL: &str = "nats://127.0.0.1:4222";

/// A JetStream context on the local NATS server, or a failure saying it must be running.
#[cfg(feature = "nats")]
async fn local_jetstream() -> async_nats::jetstream::Context {
    let needed = format!(
        "NATS must be running at {NATS_URL} with JetStream enabled (e.g. `nats-server -js`) for \
         the nats backend test"
    );
    let client =
        match tokio::time::timeout(Duration::from_secs(5), async_nats::connect(NATS_URL)).await {
            Ok(Ok(client)) => client,
            Ok(Err(e)) => panic!("{needed}: {e}"),
            Err(_) => panic!("{needed}: no connection within 5 s"),
        };
    // The JetStream API answers only when JetStream is on ("no responders" otherwise).
    let info = tokio::time::timeout(
        Duration::from_secs(5),
        client.request("$JS.API.INFO", "".into()),
    )
    .await;
    match info {
        Ok(Ok(answer)) => {
            let v: Value = serde_json::from_slice(&answer.payload).unwrap_or(Value::Null);
            assert!(
                v.get("error").is_none(),
                "{needed}: the JetStream API answered {v}"
            );
        }
        Ok(Err(e)) => panic!("{needed}: the JetStream API does not answer: {e}"),
        Err(_) => panic!("{needed}: the JetStream API does not answer within 5 s"),
    }
    async_nats::jetstream::new(client)
}

/// The `nats` backend: a conversion lands in the JetStream stream `FAST_SELLER_ORDERS` on
/// `fast_seller.orders.order.converted` with `Nats-Msg-Id` = event id, and a redelivery of the
/// same event (the at-least-once case after a crash) is dropped by the stream as a duplicate,
/// so the merchant's consumers see it once.
#[cfg(feature = "nats")]
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_nats_backend_publishes_to_jetstream_and_redeliveries_are_duplicates() {
    use async_nats::header::NATS_MESSAGE_ID;
    use fast_seller::backend::nats::{NatsBackend, STREAM, SUBJECT_PREFIX};
    use fast_seller::backend::{CommerceBackend, Event};
    use futures_util::StreamExt;

    let js = local_jetstream().await;
    let run = uuid::Uuid::new_v4().simple().to_string();
    let app = spawn_app_with(|s| {
        s.backend = BackendKind::Nats;
        s.nats_url = NATS_URL.into();
        s.outbox.poll_interval = POLL;
    })
    .await;
    let mut stream = js
        .get_stream(STREAM)
        .await
        .expect("the server created the stream at start-up");
    let before = stream
        .info()
        .await
        .expect("stream info")
        .state
        .last_sequence;

    let fast_id = format!("F-NATS-{run}");
    convert(&app, &fast_id).await;
    let item = only_entry(&app, &fast_id).await;
    let (_, log) = wait_state(&app, &item.entry.id, OutboxState::Delivered).await;
    assert!(log[0].delivered, "{log:#?}");
    let after = stream
        .info()
        .await
        .expect("stream info")
        .state
        .last_sequence;
    let mut found = None;
    for seq in before + 1..=after {
        // A sequence number can be missing (deleted); any message we look for is not.
        let Ok(msg) = stream.get_raw_message(seq).await else {
            continue;
        };
        let id = msg
            .headers
            .get(NATS_MESSAGE_ID)
            .map(|v| v.as_str().to_string());
        if id.as_deref() == Some(item.entry.id.as_str()) {
            found = Some(msg);
            break;
        }
    }
    let msg = found.unwrap_or_else(|| {
        panic!(
            "no message with Nats-Msg-Id {} in {STREAM} seq {}..={after}",
            item.entry.id,
            before + 1
        )
    });
    assert_eq!(msg.subject.as_str(), "fast_seller.orders.order.converted");
    assert_eq!(
        &msg.payload[..],
        &item.entry.body[..],
        "the payload is the event"
    );
    let event: Value = serde_json::from_slice(&msg.payload).unwrap();
    assert_eq!(event["id"], item.entry.id.as_str());
    assert_eq!(event["type"], "order.converted");
    assert_eq!(event["order_id"], fast_id.as_str());

    // The same event published twice: the stream keeps one.
    let backend = NatsBackend::connect(NATS_URL)
        .await
        .expect("the backend connects");
    let event_type = format!("outbox_it.dup_{run}");
    let id = format!("outbox-it-{run}");
    let body = json!({"id": id, "type": event_type}).to_string();
    let event = Event {
        id: &id,
        event_type: &event_type,
        order_id: "F-DUP",
        body: body.as_bytes(),
    };
    let first = backend.deliver(&event).await.expect("first publish");
    let second = backend.deliver(&event).await.expect("second publish");
    assert!(!first.detail.contains("duplicate"), "{first:?}");
    assert!(
        second.detail.contains("duplicate"),
        "the stream must acknowledge the second publish as a duplicate: {second:?}"
    );
    let subject = format!("{SUBJECT_PREFIX}.{event_type}");
    let counts: Vec<(String, usize)> = stream
        .info_with_subjects(&subject)
        .await
        .expect("subject counts")
        .map(|r| r.expect("subject count"))
        .collect()
        .await;
    assert_eq!(counts, vec![(subject.clone(), 1)], "one message stored");
    let last = stream
        .get_last_raw_message_by_subject(&subject)
        .await
        .expect("the message");
    assert_eq!(
        last.headers
            .get(NATS_MESSAGE_ID)
            .map(|v| v.as_str().to_string()),
        Some(id.clone())
    );
}

// ---------------------------------------------------------------------------------------------
// OUT-08: a crash between the backend's "yes" and our "delivered"
// ---------------------------------------------------------------------------------------------

/// `fast-seller serve` as a child process with the webhook backend delivering to `receiver`.
async fn start_webhook_server(data_dir: &Path, receiver: &Receiver) -> ServerProcess {
    let secret = receiver.secret_text();
    ServerProcess::start_webhook(
        data_dir,
        &receiver.url(),
        &[
            ("FAST_SELLER_WEBHOOK_SECRET", &secret),
            ("FAST_SELLER_ADMIN_TOKEN", ADMIN_TOKEN),
        ],
    )
    .await
}

async fn post_json(client: &reqwest::Client, url: &str, body: &Value) -> (u16, Value) {
    let r = client
        .post(url)
        .json(body)
        .send()
        .await
        .unwrap_or_else(|e| panic!("POST {url}: {e}"));
    let status = r.status().as_u16();
    let bytes = r.bytes().await.expect("body");
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// OUT-08. Delivery is at-least-once: if the server dies after the backend has taken the
/// event but before the server could mark it delivered, the event must go out again after
/// restart (never be lost), under the same `webhook-id`, so a deduplicating receiver still
/// creates the order exactly once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_kill_during_delivery_redelivers_the_same_event_after_restart() {
    let receiver = Receiver::start(Arc::new(SystemClock)).await;
    receiver.set_default(Reply::slow(200, Duration::from_millis(1500)));
    let dir = tempfile::TempDir::new().unwrap();
    let client = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .unwrap();

    let mut server = start_webhook_server(dir.path(), &receiver).await;
    let base = server.base();
    let (status, _) = post_json(
        &client,
        &format!("{base}/fast/v1/create"),
        &create_body("k-1", "F-8", &[("L-1", "sticker-01", 1)]),
    )
    .await;
    assert_eq!(status, 200, "create\n{}", server.output());
    let (status, answer) = post_json(
        &client,
        &format!("{base}/fast/v1/update"),
        &convert_body("F-8", "k-2"),
    )
    .await;
    assert_eq!(status, 200, "convert: {answer}\n{}", server.output());
    assert_eq!(answer["order"]["order"]["status"], "ORDER_STATUS_PENDING");

    // The receiver has the event and is "processing" it: kill the server now.
    let first = eventually("the first delivery to arrive", || {
        let receiver = &receiver;
        async move { receiver.calls().into_iter().next() }
    })
    .await;
    server.kill9();
    assert!(
        !receiver.calls()[0].answered,
        "the server must die before the receiver answered (the kill came too late)"
    );
    let event_id = first.webhook_id.clone().expect("a webhook-id");
    assert_eq!(first.json["type"], "order.converted");
    assert_eq!(
        receiver.orders_created(),
        1,
        "the receiver created the order"
    );

    // Restart on the same data directory; the receiver now answers at once.
    receiver.set_default(Reply::ok());
    let server = start_webhook_server(dir.path(), &receiver).await;
    eventually("the redelivery", || {
        let receiver = &receiver;
        async move { (receiver.calls().len() >= 2).then_some(()) }
    })
    .await;
    let shown = eventually("the event to be marked delivered", || {
        let client = &client;
        let url = format!("{}/admin/v1/outbox/{event_id}", server.base());
        async move {
            let r = client
                .get(url)
                .header("authorization", format!("Bearer {ADMIN_TOKEN}"))
                .send()
                .await
                .ok()?;
            let v: Value = r.json().await.ok()?;
            (v["state"] == "delivered").then_some(v)
        }
    })
    .await;
    let calls = receiver.calls();
    assert!(calls.len() >= 2, "{calls:#?}");
    assert!(
        calls
            .iter()
            .all(|c| c.webhook_id.as_deref() == Some(event_id.as_str())),
        "every delivery carries the same webhook-id: {calls:#?}"
    );
    assert!(calls.iter().all(|c| c.body == first.body), "the same event");
    receiver.assert_all_verified();
    assert_eq!(
        receiver.orders_created(),
        1,
        "the deduplicating receiver created the order once"
    );
    assert!(
        shown["attempt_log"]
            .as_array()
            .is_some_and(|a| !a.is_empty()),
        "{shown}"
    );
}

// ---------------------------------------------------------------------------------------------
// OUT-12: a graceful restart with a backlog
// ---------------------------------------------------------------------------------------------

/// Waits until the store of a stopped in-process server is closed. `TestApp::stop` returns
/// once the server has flushed, but the last handles on the store (actix worker threads, the
/// aborted pruner task) are dropped a moment later, and until then the directory is locked.
async fn wait_store_released(dir: &Path) {
    let deadline = Instant::now() + WAIT;
    loop {
        let path = dir.to_path_buf();
        let opened = tokio::task::spawn_blocking(move || {
            fast_seller::store::sled::SledStore::open(&path, 1024 * 1024).map(drop)
        })
        .await
        .expect("open task");
        match opened {
            Ok(()) => return,
            Err(fast_seller::store::StoreError::Locked(_)) if Instant::now() < deadline => {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
            Err(e) => panic!("the stopped server's store was not released within {WAIT:?}: {e}"),
        }
    }
}

/// OUT-12. Events queued while the backend is unreachable must survive a graceful restart and
/// all be delivered once it is back, none lost and none twice.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_backlog_queued_while_the_backend_refuses_is_delivered_after_a_restart() {
    const ORDERS: usize = 20;
    let receiver = Receiver::start_down(Arc::new(SystemClock)).await;
    let dir = tempfile::TempDir::new().unwrap();
    let app = spawn_app_in(dir.path(), |s| webhook_settings(s, &receiver)).await;
    receiver.set_clock(app.clock.clone());
    for i in 0..ORDERS {
        convert(&app, &format!("F-R{i:02}")).await;
    }
    let entries = all_entries(&app).await;
    assert_eq!(entries.len(), ORDERS);
    let ids: HashSet<String> = entries.iter().map(|i| i.entry.id.clone()).collect();
    for id in &ids {
        let (item, log) = wait_attempts(&app, id, 1).await;
        assert_eq!(item.state, OutboxState::Pending, "{log:#?}");
        assert!(!log[0].delivered);
    }
    app.stop().await;
    assert!(receiver.calls().is_empty());
    wait_store_released(dir.path()).await;

    receiver.up().await;
    let app = spawn_app_in(dir.path(), |s| webhook_settings(s, &receiver)).await;
    receiver.set_clock(app.clock.clone());
    let pending = app.service.store().counts().await.unwrap().outbox_pending;
    assert_eq!(pending, ORDERS as u64, "the backlog survived the restart");
    // The new clock starts at T0 again: move past every first retry (5 s + 10 %).
    app.clock.advance_ms(6 * SEC);
    eventually("all events to be delivered", || {
        let app = &app;
        async move {
            let c = app.service.store().counts().await.ok()?;
            (c.outbox_pending == 0 && c.outbox_dead == 0).then_some(())
        }
    })
    .await;
    for id in &ids {
        let (item, log) = entry(&app, id).await;
        assert_eq!(item.state, OutboxState::Delivered, "{log:#?}");
        assert_eq!(item.attempts, 2, "one failure, one success: {log:#?}");
    }
    let calls = receiver.calls();
    let mut seen = HashSet::new();
    for call in &calls {
        let id = call.webhook_id.clone().expect("webhook-id");
        assert!(seen.insert(id.clone()), "event {id} delivered twice");
    }
    assert_eq!(seen, ids, "every queued event delivered");
    receiver.assert_all_verified();
    assert_eq!(receiver.orders_created(), ORDERS);
    app.stop().await;
}

/// Retention of delivered events (`--outbox-retention`): a delivered event stays its
/// retention after delivery, on the server's clock, then the pruning removes it with its
/// attempt log; the store gauges of `/metrics` and `fast-seller store stats` show what is
/// left. Pending events are never pruned.
#[tokio::test]
async fn delivered_events_are_pruned_after_their_retention_and_store_stats_show_it() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let app = spawn_app_in(dir.path(), |s| {
        s.outbox_retention = Duration::from_secs(3600);
        s.outbox.poll_interval = POLL;
    })
    .await;
    convert(&app, "ret-1").await;
    let id = only_entry(&app, "ret-1").await.entry.id;
    let (_, log) = wait_state(&app, &id, OutboxState::Delivered).await;
    let delivered_at = log.last().expect("the delivering attempt").at_ms;

    let stats = app.service.store_stats().await.expect("stats");
    assert_eq!(
        (
            stats.outbox_pending,
            stats.outbox_delivered,
            stats.outbox_dead
        ),
        (0, 1, 0)
    );
    let gauge = r#"fast_seller_store_outbox_events{state="delivered"}"#;
    let metrics = String::from_utf8(app.get("/metrics").await.bytes).expect("UTF-8");
    assert!(metrics.contains(&format!("{gauge} 1")), "{metrics}");
    assert!(
        metrics.contains(r#"fast_seller_store_rows{kind="orders"} 1"#),
        "{metrics}"
    );

    // One hour after delivery it is still there; a moment later it is pruned.
    advance_to(&app, delivered_at + HOUR);
    assert_eq!(app.service.prune().await.expect("prune").outbox_entries, 0);
    advance_to(&app, delivered_at + HOUR + 1);
    assert_eq!(app.service.prune().await.expect("prune").outbox_entries, 1);
    assert!(app.service.store().outbox_get(&id).await.unwrap().is_none());
    app.service.store_stats().await.expect("stats");
    let metrics = String::from_utf8(app.get("/metrics").await.bytes).expect("UTF-8");
    assert!(metrics.contains(&format!("{gauge} 0")), "{metrics}");

    // The operator's view of the stopped store.
    app.stop().await;
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_fast-seller"))
        .args(["store", "stats", "--json", "--store"])
        .arg(format!("sled:{}", dir.path().display()))
        .output()
        .expect("run fast-seller store stats");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let stats: Value = serde_json::from_slice(&out.stdout).expect("JSON");
    let rows = |kind: &str| {
        stats["kinds"]
            .as_array()
            .expect("kinds")
            .iter()
            .find(|k| k["kind"] == kind)
            .unwrap_or_else(|| panic!("no kind {kind} in {stats}"))["rows"]
            .clone()
    };
    assert_eq!(rows("orders"), 1, "{stats}");
    assert_eq!(rows("idempotency"), 2, "create and convert: {stats}");
    assert_eq!(rows("outbox"), 0, "{stats}");
    assert_eq!(rows("outbox_attempts"), 0, "{stats}");
    assert_eq!(
        stats["outbox"],
        json!({"pending": 0, "delivered": 0, "dead": 0})
    );
    assert!(stats["disk_bytes"].as_u64().unwrap_or(0) > 0, "{stats}");
    assert!(stats["space_amplification"].as_f64().is_some(), "{stats}");
}

/// `outbox list` on a stopped server's data directory: a compact table by default (one
/// event a line), the records whole with `--json`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn outbox_list_prints_a_table_or_json() {
    let dir = tempfile::tempdir().unwrap();
    let app = spawn_app_in(dir.path(), |_| {}).await;
    assert_eq!(convert(&app, "F-TABLE").await.status, 200);
    app.stop().await;
    let run = |json: bool| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_fast-seller"));
        cmd.args(["outbox", "list", "--data-dir"])
            .arg(dir.path())
            .env_remove("FAST_SELLER_ADMIN_URL");
        if json {
            cmd.arg("--json");
        }
        let out = cmd.output().expect("the binary runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).into_owned()
    };
    let table = run(false);
    let lines: Vec<&str> = table.lines().collect();
    assert!(
        lines[0].starts_with("ID ") && lines[0].contains("NEXT ATTEMPT"),
        "{table}"
    );
    assert_eq!(lines.len(), 2, "a header and one event: {table}");
    assert!(
        lines[1].contains("F-TABLE") && lines[1].contains("order.converted"),
        "{table}"
    );
    let json: Value = serde_json::from_str(&run(true)).expect("--json prints JSON");
    assert_eq!(json["events"][0]["order_id"], "F-TABLE");
    assert!(json["events"][0]["event"].is_object(), "the whole record");
}
