//! Crash soak of the outbox (docs/idempotency.md, "Outbox"): 200 cart conversions while the
//! real binary is killed with SIGKILL 10 times, delivering to a webhook receiver that dedupes by
//! `webhook-id`. Every conversion must end up delivered, none missing, each event seen at least
//! once and each order created exactly once by the deduplicating receiver.
//!
//! The server runs as a child process (`fast-seller serve --backend webhook`), because only a
//! separate process can be killed with SIGKILL; it is restarted on the same data directory
//! after each kill, and every request that got no answer is sent again with the same
//! `request_id` and the same bytes, as Fast would. Kills come at deterministic pseudo-random
//! points of the workload (after a xorshift-chosen number of acknowledged conversions, plus a
//! few milliseconds), so they land while conversions are being committed and while deliveries
//! are being answered (the receiver takes 0–30 ms per call).
//!
//! The receiver answers 503 to about one call in ten, at most once per event (a second failure
//! of the same event would push its next attempt 5 minutes out): the retry comes 5 s later by
//! the server's real clock, so the final wait for delivery stays bounded.

use crate::helpers::{
    accept_loop, create_body, outbox_backlog, post, read_request, update_body, write_answer, Resp,
    ServerProcess, XorShift,
};
use fast_seller::signing::{self, WebhookSecret};
use serde_json::{json, Value};
use std::collections::{BTreeMap, HashMap, HashSet};
use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::watch;
use tokio::task::JoinHandle;

/// Carts created and converted.
const CONVERSIONS: usize = 200;
/// Concurrent client tasks (each owns `CONVERSIONS / CLIENTS` carts).
const CLIENTS: usize = 4;
/// SIGKILLs during the workload.
const KILLS: usize = 10;
/// Longest answer delay of the receiver.
const MAX_DELAY_MS: u64 = 30;
/// One call in this many gets a 503 (at most once per event).
const FAIL_ONE_IN: u64 = 10;
/// Longest wait for the workload (all conversions acknowledged) to finish.
const WORKLOAD_LIMIT: Duration = Duration::from_secs(60);
/// Longest wait, after the last conversion, for every event to be delivered.
const DELIVERY_LIMIT: Duration = Duration::from_secs(60);
/// Non-200 answers to one request before the test gives up on it.
const MAX_REFUSALS: u32 = 100;

// ---------------------------------------------------------------------------------------------
// The receiver: a deduplicating merchant backend
// ---------------------------------------------------------------------------------------------

/// One POST the receiver got.
#[derive(Debug, Clone)]
struct Call {
    webhook_id: Option<String>,
    idempotency_key: Option<String>,
    content_type: Option<String>,
    body: Vec<u8>,
    /// The body as JSON (`Null` when it is not JSON).
    json: Value,
    /// Outcome of `signing::verify` at the receiver's (real) clock.
    verified: Result<(), String>,
    /// The status the receiver chose (200 or 503).
    status: u16,
    /// Whether this call created the order (verified `order.converted`, 200, new webhook-id).
    created: bool,
    /// The server life (0 = before the first kill) that sent it: each life posts to its own
    /// path, `/orders/<life>`.
    life: u64,
}

impl Call {
    fn order_id(&self) -> &str {
        self.json["order_id"].as_str().unwrap_or_default()
    }
}

struct ReceiverState {
    secret: WebhookSecret,
    secret_text: String,
    rng: Mutex<XorShift>,
    /// Whether 503s are still handed out.
    failing: AtomicBool,
    /// `webhook-id`s that already got their one 503.
    failed_once: Mutex<HashSet<String>>,
    calls: Mutex<Vec<Call>>,
    /// `webhook-id` → Fast order id, of the orders this consumer created (deduplicated).
    created: Mutex<HashMap<String, String>>,
    /// Calls read but not answered yet.
    open: AtomicUsize,
}

/// A webhook endpoint on 127.0.0.1: answers 200 after 0–30 ms, or 503 for about one call in
/// ten (at most once per event), verifies every signature and creates each order once per
/// `webhook-id`, as an idempotent consumer would.
struct Receiver {
    state: Arc<ReceiverState>,
    port: u16,
    accept: JoinHandle<()>,
}

impl Receiver {
    async fn start(seed: u64) -> Receiver {
        let listener = TcpListener::bind("127.0.0.1:0")
            .await
            .expect("bind the receiver");
        let port = listener.local_addr().expect("local addr").port();
        let secret_text = signing::generate_secret();
        let secret = WebhookSecret::parse(&secret_text).expect("a fresh secret");
        let state = Arc::new(ReceiverState {
            secret,
            secret_text,
            rng: Mutex::new(XorShift::new(seed)),
            failing: AtomicBool::new(true),
            failed_once: Mutex::new(HashSet::new()),
            calls: Mutex::new(Vec::new()),
            created: Mutex::new(HashMap::new()),
            open: AtomicUsize::new(0),
        });
        let accept = accept_loop(listener, state.clone(), serve_connection);
        Receiver {
            state,
            port,
            accept,
        }
    }

    /// The webhook URL for server life `life`.
    fn url(&self, life: u64) -> String {
        format!("http://127.0.0.1:{}/orders/{life}", self.port)
    }

    fn calls(&self) -> Vec<Call> {
        self.state.calls.lock().unwrap().clone()
    }

    /// Fast order ids of the orders created so far.
    fn created_orders(&self) -> HashSet<String> {
        self.state
            .created
            .lock()
            .unwrap()
            .values()
            .cloned()
            .collect()
    }

    fn open_calls(&self) -> usize {
        self.state.open.load(Ordering::SeqCst)
    }

    fn stop_failing(&self) {
        self.state.failing.store(false, Ordering::SeqCst);
    }
}

impl Drop for Receiver {
    fn drop(&mut self) {
        self.accept.abort();
    }
}

/// Reads one HTTP/1.1 request, records it, answers and closes the connection.
async fn serve_connection(mut stream: TcpStream, state: Arc<ReceiverState>) {
    let Some(request) = read_request(&mut stream).await else {
        return;
    };
    let life: u64 = request
        .path
        .rsplit('/')
        .next()
        .and_then(|last| last.parse().ok())
        .unwrap_or(u64::MAX);
    let header = |name: &str| request.header(name);
    let body = request.body.clone();
    state.open.fetch_add(1, Ordering::SeqCst);

    let verified = request.verify_now(&state.secret);
    let json: Value = serde_json::from_slice(&body).unwrap_or(Value::Null);
    let webhook_id = header(signing::HEADER_ID);
    let (delay, fail) = {
        let mut rng = state.rng.lock().unwrap();
        let delay = rng.between(0, MAX_DELAY_MS);
        let unlucky = rng.next() % FAIL_ONE_IN == 0;
        let fail = unlucky
            && state.failing.load(Ordering::SeqCst)
            && webhook_id
                .as_ref()
                .is_some_and(|id| state.failed_once.lock().unwrap().insert(id.clone()));
        (delay, fail)
    };
    let status = if fail { 503 } else { 200 };
    // The consumer processes an accepted, authentic `order.converted` once per webhook-id.
    let mut created = false;
    if status == 200 && verified.is_ok() && json["type"] == "order.converted" {
        if let Some(id) = &webhook_id {
            let order_id = json["order_id"].as_str().unwrap_or_default().to_string();
            let mut map = state.created.lock().unwrap();
            if !map.contains_key(id) {
                map.insert(id.clone(), order_id);
                created = true;
            }
        }
    }
    state.calls.lock().unwrap().push(Call {
        webhook_id,
        idempotency_key: header("idempotency-key"),
        content_type: header("content-type"),
        body,
        json,
        verified,
        status,
        created,
        life,
    });

    tokio::time::sleep(Duration::from_millis(delay)).await;
    write_answer(&mut stream, status, "").await;
    state.open.fetch_sub(1, Ordering::SeqCst);
}

// ---------------------------------------------------------------------------------------------
// The server process
// ---------------------------------------------------------------------------------------------

/// `fast-seller serve --backend webhook` (life `life`) as a child process, once it listens.
async fn start_server(data_dir: &Path, receiver: &Receiver, life: u64) -> ServerProcess {
    ServerProcess::start_webhook(
        data_dir,
        &receiver.url(life),
        &[("FAST_SELLER_WEBHOOK_SECRET", &receiver.state.secret_text)],
    )
    .await
}

// ---------------------------------------------------------------------------------------------
// Clients
// ---------------------------------------------------------------------------------------------

/// The server the clients talk to: bumped after each restart.
#[derive(Clone, Debug)]
struct Current {
    life: u64,
    base: String,
}

/// What all clients saw.
#[derive(Default)]
struct Tally {
    /// Conversions acknowledged with a 200 (drives the kill points).
    converted: AtomicU64,
    /// Requests sent, including retries.
    attempts: AtomicU64,
    /// Sends that got no answer (the server died) and were retried.
    unanswered: AtomicU64,
    /// Conversions that got no answer at least once.
    conversions_cut: AtomicU64,
    /// ... and whose eventual 200 was a replay: committed before the kill, answer lost.
    conversions_cut_committed: AtomicU64,
    /// (request id, status, body) of every non-200 answer.
    refusals: Mutex<Vec<(String, u16, String)>>,
}

/// Sends `body` until it is answered 200, across server lives: the same bytes (and so the same
/// `request_id`) every time, as Fast retries.
async fn send_until_ok(
    http: &reqwest::Client,
    current: &mut watch::Receiver<Current>,
    tally: &Tally,
    verb: &str,
    request_id: &str,
    body: &Value,
) -> Resp {
    let bytes = serde_json::to_vec(body).unwrap();
    let mut refusals = 0u32;
    let mut cut = false;
    loop {
        let Current { life, base } = current.borrow().clone();
        tally.attempts.fetch_add(1, Ordering::SeqCst);
        match post(http, &base, verb, bytes.clone()).await {
            Ok(resp) if resp.status == 200 => {
                if cut && verb == "update" {
                    tally.conversions_cut.fetch_add(1, Ordering::SeqCst);
                    if resp.header("idempotent-replayed") == Some("true") {
                        tally
                            .conversions_cut_committed
                            .fetch_add(1, Ordering::SeqCst);
                    }
                }
                return resp;
            }
            Ok(resp) => {
                let text = String::from_utf8_lossy(&resp.bytes).into_owned();
                tally.refusals.lock().unwrap().push((
                    request_id.to_string(),
                    resp.status,
                    text.clone(),
                ));
                refusals += 1;
                assert!(
                    refusals < MAX_REFUSALS,
                    "{verb} {request_id} refused {refusals} times, last {}: {text}",
                    resp.status
                );
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            Err(_) => {
                // The server is gone: wait for the next one (or try again after a while, in
                // case this was not a kill).
                tally.unanswered.fetch_add(1, Ordering::SeqCst);
                cut = true;
                let _ = tokio::time::timeout(
                    Duration::from_secs(2),
                    current.wait_for(|c| c.life > life),
                )
                .await;
            }
        }
    }
}

/// Creates and converts this client's carts, one after the other; returns each cart's
/// acknowledged conversion answer.
async fn client(
    id: usize,
    carts: Vec<String>,
    mut current: watch::Receiver<Current>,
    tally: Arc<Tally>,
) -> Vec<(String, Resp)> {
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(15))
        .build()
        .expect("reqwest client");
    let mut acked = Vec::new();
    for (n, cart) in carts.into_iter().enumerate() {
        let product = if (id + n) % 2 == 0 {
            "mug-01"
        } else {
            "sticker-01"
        };
        let request_id = format!("oc-create-{cart}");
        let line = format!("{cart}-L1");
        let create = create_body(&request_id, &cart, &[(&line, product, 1)]);
        send_until_ok(&http, &mut current, &tally, "create", &request_id, &create).await;
        let request_id = format!("oc-convert-{cart}");
        let convert = update_body(&request_id, &cart, json!({"convert_cart_to_order": true}));
        let resp =
            send_until_ok(&http, &mut current, &tally, "update", &request_id, &convert).await;
        tally.converted.fetch_add(1, Ordering::SeqCst);
        acked.push((cart, resp));
    }
    acked
}

// ---------------------------------------------------------------------------------------------
// The test
// ---------------------------------------------------------------------------------------------

/// 200 conversions while the server is killed 10 times: every converted order is delivered,
/// none missing; the receiver sees each event id at least once (same bytes, same id on every
/// attempt, signed) and creates each order exactly once; no order gets two different
/// `order.converted` events (which would mean its conversion was applied twice).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn conversions_survive_ten_kills_and_are_all_delivered_once() {
    let started = Instant::now();
    let mut rng = XorShift::new(0x0C_2026);
    let receiver = Receiver::start(rng.next()).await;
    let dir = tempfile::TempDir::new().expect("temp dir");
    let mut server = start_server(dir.path(), &receiver, 0).await;
    let (current_tx, current_rx) = watch::channel(Current {
        life: 0,
        base: server.base(),
    });
    let tally = Arc::new(Tally::default());

    // Carts `oc-000` … `oc-199`: client `id` owns every CLIENTS-th one, from the id-th.
    let mut tasks = Vec::new();
    for id in 0..CLIENTS {
        let carts: Vec<String> = (0..CONVERSIONS)
            .filter(|n| n % CLIENTS == id)
            .map(|n| format!("oc-{n:03}"))
            .collect();
        tasks.push(tokio::spawn(client(
            id,
            carts,
            current_rx.clone(),
            tally.clone(),
        )));
    }

    // Kill k comes after a pseudo-random number of acknowledged conversions in the k-th tenth
    // of the workload, plus 0–20 ms.
    let per_kill = u64::try_from(CONVERSIONS / KILLS).unwrap();
    let mut kills = Vec::new();
    let mut open_at_kills = 0;
    for k in 0..u64::try_from(KILLS).unwrap() {
        let threshold = k * per_kill + rng.between(2, per_kill - 6);
        let extra = Duration::from_millis(rng.between(0, 20));
        let deadline = started + WORKLOAD_LIMIT;
        while tally.converted.load(Ordering::SeqCst) < threshold {
            assert!(
                Instant::now() < deadline,
                "only {} conversions acknowledged after {:?} (waiting for {threshold}, kill {})\n{}",
                tally.converted.load(Ordering::SeqCst),
                started.elapsed(),
                k + 1,
                server.output()
            );
            tokio::time::sleep(Duration::from_millis(2)).await;
        }
        tokio::time::sleep(extra).await;
        let converted = tally.converted.load(Ordering::SeqCst);
        let open = receiver.open_calls();
        open_at_kills += open;
        server.kill9();
        kills.push((converted, open));
        let life = k + 1;
        server = start_server(dir.path(), &receiver, life).await;
        current_tx.send_replace(Current {
            life,
            base: server.base(),
        });
    }
    assert!(
        kills
            .iter()
            .all(|&(converted, _)| u64::try_from(CONVERSIONS).is_ok_and(|all| converted < all)),
        "every kill came while conversions were still being made: {kills:?}"
    );

    // Every conversion acknowledged.
    let mut acked: BTreeMap<String, Resp> = BTreeMap::new();
    for task in tasks {
        let outcome = tokio::time::timeout(
            (started + WORKLOAD_LIMIT).saturating_duration_since(Instant::now()),
            task,
        )
        .await
        .unwrap_or_else(|_| {
            panic!(
                "the clients did not finish within {WORKLOAD_LIMIT:?} ({} of {CONVERSIONS} \
                 conversions acknowledged)\n{}",
                tally.converted.load(Ordering::SeqCst),
                server.output()
            )
        })
        .expect("client task");
        acked.extend(outcome);
    }
    let workload_took = started.elapsed();
    assert_eq!(acked.len(), CONVERSIONS, "every conversion acknowledged");
    receiver.stop_failing();

    // Every event delivered: the receiver created every order and the server has nothing left.
    let http = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()
        .unwrap();
    let all_orders: HashSet<String> = acked.keys().cloned().collect();
    let deadline = Instant::now() + DELIVERY_LIMIT;
    let mut last_backlog = None;
    loop {
        let created = receiver.created_orders();
        let missing: Vec<&String> = all_orders.difference(&created).collect();
        if missing.is_empty() {
            last_backlog = outbox_backlog(&http, &server.base()).await;
            if last_backlog == Some((0, 0)) && receiver.open_calls() == 0 {
                break;
            }
        }
        if Instant::now() >= deadline {
            let mut missing: Vec<&String> = missing;
            missing.sort();
            panic!(
                "after {DELIVERY_LIMIT:?}, {} of {CONVERSIONS} converted orders were never \
                 created at the receiver: {missing:?}; server backlog (pending, dead) = \
                 {last_backlog:?}\n{}",
                missing.len(),
                server.output()
            );
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let delivered_after = started.elapsed();

    // What the receiver saw.
    let calls = receiver.calls();
    let mut by_id: HashMap<String, Vec<&Call>> = HashMap::new();
    let mut converted_ids: HashMap<String, HashSet<String>> = HashMap::new();
    for (i, call) in calls.iter().enumerate() {
        if let Err(e) = &call.verified {
            panic!("call {i} failed signature verification: {e}\n{call:?}");
        }
        assert!(
            call.life <= u64::try_from(KILLS).unwrap(),
            "call {i} was not posted to the configured /orders/<life> URL: {call:?}"
        );
        let id = call
            .webhook_id
            .clone()
            .unwrap_or_else(|| panic!("call {i} without webhook-id: {call:?}"));
        assert_eq!(
            call.idempotency_key.as_deref(),
            Some(id.as_str()),
            "Idempotency-Key = event id: {call:?}"
        );
        assert_eq!(call.content_type.as_deref(), Some("application/json"));
        let event = &call.json;
        assert_eq!(
            event["id"].as_str(),
            Some(id.as_str()),
            "webhook-id = the event's id: {event}"
        );
        assert_eq!(
            event["type"], "order.converted",
            "only conversions happened, so only order.converted events: {event}"
        );
        let order_id = call.order_id().to_string();
        let answer = acked
            .get(&order_id)
            .unwrap_or_else(|| panic!("an event for an order nobody converted: {event}"));
        check_event_shape(event, &order_id, &answer.order());
        converted_ids
            .entry(order_id)
            .or_default()
            .insert(id.clone());
        by_id.entry(id).or_default().push(call);
    }
    // The same event on every attempt; each order converted (and so created) exactly once.
    for (id, attempts) in &by_id {
        assert!(
            attempts.iter().all(|c| c.body == attempts[0].body),
            "event {id} was sent with different bodies"
        );
    }
    let twice: Vec<(&String, &HashSet<String>)> = converted_ids
        .iter()
        .filter(|(_, ids)| ids.len() > 1)
        .collect();
    assert!(
        twice.is_empty(),
        "orders with more than one order.converted event (a conversion applied twice): \
         {twice:?}"
    );
    let event_ids: HashSet<&String> = by_id.keys().collect();
    assert_eq!(
        event_ids.len(),
        CONVERSIONS,
        "one event per converted order, each seen at least once"
    );
    let created_calls = calls.iter().filter(|c| c.created).count();
    assert_eq!(
        created_calls, CONVERSIONS,
        "the deduplicating receiver created each order exactly once"
    );
    assert_eq!(receiver.created_orders(), all_orders);
    let per_order: HashMap<&str, usize> =
        calls
            .iter()
            .filter(|c| c.created)
            .fold(HashMap::new(), |mut m, c| {
                *m.entry(c.order_id()).or_default() += 1;
                m
            });
    assert!(
        per_order.values().all(|&n| n == 1),
        "orders created more than once: {per_order:?}"
    );
    let refusals = tally.refusals.lock().unwrap().clone();
    let unexpected: Vec<_> = refusals.iter().filter(|(_, s, _)| *s != 503).collect();
    assert!(
        unexpected.is_empty(),
        "answers other than 200 or 503: {unexpected:?}"
    );

    let redeliveries = calls.len() - by_id.len();
    let failed = calls.iter().filter(|c| c.status == 503).count();
    let after_accept = calls
        .iter()
        .filter(|c| c.status == 200 && !c.created)
        .count();
    // An event accepted (200) must not go out again unless a kill came in between.
    let accepted_at: HashMap<&str, (usize, u64)> = calls
        .iter()
        .enumerate()
        .filter(|(_, c)| c.created)
        .map(|(i, c)| (c.webhook_id.as_deref().unwrap_or_default(), (i, c.life)))
        .collect();
    let same_life: Vec<&Call> = calls
        .iter()
        .enumerate()
        .filter(|(i, c)| {
            accepted_at
                .get(c.webhook_id.as_deref().unwrap_or_default())
                .is_some_and(|&(at, life)| at < *i && life == c.life)
        })
        .map(|(_, c)| c)
        .collect();
    assert!(
        same_life.is_empty(),
        "accepted events sent again although the server was not killed in between \
         (2xx = delivered): {same_life:#?}"
    );
    println!(
        "outbox crash soak: {CONVERSIONS} conversions acknowledged, {} kills (at conversions \
         {:?}, {open_at_kills} deliveries in flight at the kills), {} requests sent ({} \
         unanswered and retried; {} conversions cut by a kill, {} of them committed before it; \
         {} refused by the server), {} deliveries seen for {} events, \
         {redeliveries} redeliveries ({failed} after a 503, {after_accept} of an event already \
         accepted), workload {workload_took:.1?}, all delivered after {delivered_after:.1?}, \
         total {:.1?}",
        kills.len(),
        kills.iter().map(|(c, _)| *c).collect::<Vec<_>>(),
        tally.attempts.load(Ordering::SeqCst),
        tally.unanswered.load(Ordering::SeqCst),
        tally.conversions_cut.load(Ordering::SeqCst),
        tally.conversions_cut_committed.load(Ordering::SeqCst),
        refusals.len(),
        calls.len(),
        by_id.len(),
        started.elapsed()
    );
}

/// The outbox event (README.md#forwarding-converted-orders-the-outbox) for the conversion of
/// `order_id`, answered as `answered`.
fn check_event_shape(event: &Value, order_id: &str, answered: &Value) {
    let keys: HashSet<&str> = event
        .as_object()
        .unwrap_or_else(|| panic!("the event is not a JSON object: {event}"))
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
    assert_eq!(event["order_id"], order_id, "{event}");
    assert_eq!(event["sequence"], 1, "{event}");
    let occurred = event["occurred_at"].as_str().expect("occurred_at text");
    humantime::parse_rfc3339(occurred)
        .unwrap_or_else(|e| panic!("occurred_at {occurred} is not RFC 3339: {e}"));
    assert!(
        answered["external_id"].is_string(),
        "a converted order has the seller's id: {answered}"
    );
    assert_eq!(event["external_id"], answered["external_id"], "{event}");
    assert_eq!(answered["status"], "ORDER_STATUS_PENDING", "{answered}");
    assert_eq!(event["order"]["order_type"], "ORDER_TYPE_ORDER", "{event}");
    assert_eq!(
        event["order"], *answered,
        "the event carries the order as the acknowledged conversion answered it"
    );
}
