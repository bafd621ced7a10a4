//! Crash tests against the real binary (docs/idempotency.md): kill -9 under load (DUR-01),
//! kills during open/recovery (DUR-02), a durable idempotency record (IDEM-12), the data
//! directory lock (STORE-05) and a graceful SIGTERM under load (DUR-07).
//!
//! Unlike the other integration tests these spawn `fast-seller serve` as a child process,
//! because only a separate process can be killed with SIGKILL.

use crate::helpers::{
    create_body, http_client, post, post_ok, update_body, Resp, ServerProcess, XorShift,
};
use serde_json::{json, Value};
use std::collections::{HashMap, HashSet, VecDeque};
use std::process::Command;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

pub(crate) fn read_body(fast_id: &str) -> Value {
    json!({"type": "ENTITY_TYPE_ORDER", "order": {"order_id": {"value": fast_id}}})
}

/// Fast line ids of an order in a read/create/update answer.
pub(crate) fn line_ids(resp: &Resp) -> Vec<String> {
    resp.order()["lines"]
        .as_array()
        .unwrap_or_else(|| panic!("no lines in {}", String::from_utf8_lossy(&resp.bytes)))
        .iter()
        .map(|l| l["id"]["value"].as_str().expect("line id").to_string())
        .collect()
}

/// One update as Fast would send it: the same bytes on every retry.
#[derive(Clone, Debug)]
pub(crate) struct Op {
    pub(crate) request_id: String,
    pub(crate) line_id: String,
    pub(crate) cart: String,
    pub(crate) body: Vec<u8>,
    /// Times sent so far.
    pub(crate) sends: u32,
}

impl Op {
    pub(crate) fn new(prefix: &str, client: usize, n: u64, carts: &[String]) -> Op {
        let request_id = format!("{prefix}-req-c{client}-{n:05}");
        let line_id = format!("{prefix}-line-c{client}-{n:05}");
        let cart = carts[(client * 7 + usize::try_from(n).unwrap() * 3) % carts.len()].clone();
        let product = if n % 2 == 0 { "sticker-01" } else { "mug-01" };
        let body = update_body(
            &request_id,
            &cart,
            json!({"items": [{"item_id": {"value": line_id}, "external_product_id": product, "quantity": 1}]}),
        );
        Op {
            request_id,
            line_id,
            cart,
            body: serde_json::to_vec(&body).unwrap(),
            sends: 0,
        }
    }
}

/// One client's state across server lives.
struct ClientState {
    id: usize,
    next_n: u64,
    /// How many updates this client may create in all.
    budget: u64,
    /// Sent but never answered (connection error): retried first, with the same bytes.
    unanswered: VecDeque<Op>,
}

/// What one client saw while one server process lived.
#[derive(Default)]
struct ClientRun {
    acked: Vec<(Op, Resp)>,
    /// Every op this run created (for the "unexpected" check).
    created: Vec<Op>,
    /// (request id, status, body) of every answer that was not a 200.
    anomalies: Vec<(String, u16, String)>,
    attempts: u64,
}

/// Shared between the clients of one server life and the killer.
#[derive(Default)]
struct LoadControl {
    /// Set (after the kill or the SIGTERM) to end the clients' turn.
    stop: AtomicBool,
    /// Updates acknowledged in this life.
    acked: AtomicU64,
}

/// Sends updates as fast as it can until `stop`; connection errors keep the op for a retry.
async fn client_loop(
    mut state: ClientState,
    prefix: &'static str,
    carts: Arc<Vec<String>>,
    http: reqwest::Client,
    base: String,
    load: Arc<LoadControl>,
    pause: Duration,
) -> (ClientState, ClientRun) {
    let mut run = ClientRun::default();
    while !load.stop.load(Ordering::SeqCst) {
        let mut op = match state.unanswered.pop_front() {
            Some(op) => op,
            None if state.next_n >= state.budget => {
                // Budget spent: idle until the kill.
                tokio::time::sleep(Duration::from_millis(5)).await;
                continue;
            }
            None => {
                let op = Op::new(prefix, state.id, state.next_n, &carts);
                state.next_n += 1;
                run.created.push(op.clone());
                op
            }
        };
        run.attempts += 1;
        op.sends += 1;
        match post(&http, &base, "update", op.body.clone()).await {
            Ok(resp) if resp.status == 200 => {
                load.acked.fetch_add(1, Ordering::SeqCst);
                run.acked.push((op, resp));
            }
            Ok(resp) => {
                run.anomalies.push((
                    op.request_id.clone(),
                    resp.status,
                    String::from_utf8_lossy(&resp.bytes).into_owned(),
                ));
                state.unanswered.push_back(op);
            }
            Err(_) => {
                // The server is gone (killed or draining): this client's turn is over; the
                // op is retried, with the same bytes, against the next server.
                state.unanswered.push_back(op);
                break;
            }
        }
        if !pause.is_zero() {
            tokio::time::sleep(pause).await;
        }
    }
    (state, run)
}

/// Sends every unanswered op once more, sequentially; each must now get a 200.
async fn retry_all(
    states: &mut [ClientState],
    http: &reqwest::Client,
    base: &str,
    acked: &mut Vec<(Op, Resp)>,
) -> u64 {
    let mut retried = 0;
    for state in states.iter_mut() {
        while let Some(mut op) = state.unanswered.pop_front() {
            retried += 1;
            op.sends += 1;
            let resp = post(http, base, "update", op.body.clone())
                .await
                .unwrap_or_else(|e| panic!("retry of {} got no answer: {e}", op.request_id));
            assert_eq!(
                resp.status,
                200,
                "retry of {}: {}",
                op.request_id,
                String::from_utf8_lossy(&resp.bytes)
            );
            acked.push((op, resp));
        }
    }
    retried
}

/// The Jepsen "set" checks over the final state of every cart.
///
/// `expected_initial`: lines the carts were created with. `sent`: every op ever sent (at
/// least attempted). `acked`: every op answered 200, with its bytes.
pub(crate) async fn check_final_state(
    http: &reqwest::Client,
    base: &str,
    carts: &[String],
    expected_initial: &HashSet<String>,
    sent: &HashMap<String, Op>,
    acked: &[(Op, Resp)],
) -> usize {
    let mut seen: HashMap<String, Vec<String>> = HashMap::new();
    for cart in carts {
        let resp = post_ok(http, base, "read", &read_body(cart)).await;
        assert_eq!(
            resp.status,
            200,
            "read {cart}: {}",
            String::from_utf8_lossy(&resp.bytes)
        );
        for line in line_ids(&resp) {
            seen.entry(line).or_default().push(cart.clone());
        }
    }
    let duplicates: Vec<_> = seen.iter().filter(|(_, where_)| where_.len() > 1).collect();
    assert!(duplicates.is_empty(), "duplicated lines: {duplicates:?}");
    let unexpected: Vec<_> = seen
        .keys()
        .filter(|line| !expected_initial.contains(*line) && !sent.contains_key(*line))
        .collect();
    assert!(
        unexpected.is_empty(),
        "unexpected lines (never sent): {unexpected:?}"
    );
    let misplaced: Vec<_> = seen
        .iter()
        .filter_map(|(line, where_)| {
            sent.get(line)
                .filter(|op| op.cart != where_[0])
                .map(|op| (line, &op.cart, &where_[0]))
        })
        .collect();
    assert!(
        misplaced.is_empty(),
        "lines in the wrong cart (line, sent to, found in): {misplaced:?}"
    );
    let lost: Vec<_> = acked
        .iter()
        .filter(|(op, _)| !seen.contains_key(&op.line_id))
        .map(|(op, _)| &op.request_id)
        .collect();
    assert!(
        lost.is_empty(),
        "lost: {} acknowledged updates are absent: {lost:?}",
        lost.len()
    );
    let missing_initial: Vec<_> = expected_initial
        .iter()
        .filter(|l| !seen.contains_key(*l))
        .collect();
    assert!(
        missing_initial.is_empty(),
        "lines of the creates are gone: {missing_initial:?}"
    );
    seen.len()
}

/// At most `max` acknowledged requests: every one that needed a retry, then evenly spread.
pub(crate) fn replay_sample(acked: &[(Op, Resp)], max: usize) -> Vec<&(Op, Resp)> {
    let (retried, once): (Vec<_>, Vec<_>) = acked.iter().partition(|(op, _)| op.sends > 1);
    let mut sample: Vec<_> = retried.into_iter().take(max).collect();
    let rest = (max - sample.len()).min(once.len());
    sample.extend((0..rest).map(|i| once[i * once.len() / rest]));
    sample
}

/// Replays `sample`: the same status and bytes, marked `Idempotent-Replayed: true`.
pub(crate) async fn check_replays(
    http: &reqwest::Client,
    base: &str,
    sample: &[&(Op, Resp)],
) -> usize {
    let mut n = 0;
    for (op, first) in sample.iter().copied() {
        let again = post(http, base, "update", op.body.clone())
            .await
            .unwrap_or_else(|e| panic!("replay of {} got no answer: {e}", op.request_id));
        assert_eq!(
            again.status, first.status,
            "replay of {} changed the status",
            op.request_id
        );
        assert!(
            again.bytes == first.bytes,
            "replay of {} is not byte-identical:\nfirst:  {}\nreplay: {}",
            op.request_id,
            String::from_utf8_lossy(&first.bytes),
            String::from_utf8_lossy(&again.bytes)
        );
        assert_eq!(
            again.header("idempotent-replayed"),
            Some("true"),
            "replay of {} lacks Idempotent-Replayed: true",
            op.request_id
        );
        n += 1;
    }
    n
}

/// Creates carts `<prefix>-cart-<k>`, each with one line `<prefix>-seed-<k>`.
pub(crate) async fn create_carts(
    http: &reqwest::Client,
    base: &str,
    prefix: &str,
    count: usize,
) -> (Vec<String>, HashSet<String>) {
    let mut carts = Vec::new();
    let mut seeds = HashSet::new();
    for k in 0..count {
        let cart = format!("{prefix}-cart-{k}");
        let seed = format!("{prefix}-seed-{k}");
        let body = create_body(
            &format!("{prefix}-create-{k}"),
            &cart,
            &[(&seed, "mug-01", 1)],
        );
        let resp = post_ok(http, base, "create", &body).await;
        assert_eq!(
            resp.status,
            200,
            "create {cart}: {}",
            String::from_utf8_lossy(&resp.bytes)
        );
        carts.push(cart);
        seeds.insert(seed);
    }
    (carts, seeds)
}

fn collect_run(
    run: ClientRun,
    acked: &mut Vec<(Op, Resp)>,
    sent: &mut HashMap<String, Op>,
    anomalies: &mut Vec<(String, u16, String)>,
) -> u64 {
    acked.extend(run.acked);
    sent.extend(run.created.into_iter().map(|op| (op.line_id.clone(), op)));
    anomalies.extend(run.anomalies);
    run.attempts
}

// ---------------------------------------------------------------------------------------------
// Tests
// ---------------------------------------------------------------------------------------------

/// DUR-01 (short) with DUR-02 folded in: 8 SIGKILLs under 4 clients' updates, plus 2 kills
/// 0–60 ms after spawn; then lost = unexpected = duplicates = ∅ and acknowledged answers
/// replay byte-identically.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dur01_kill9_under_load_loses_nothing_acknowledged() {
    const CLIENTS: usize = 4;
    const CYCLES: u64 = 8;
    /// Cycles that begin with a kill during open/recovery (DUR-02).
    const EARLY_KILL_CYCLES: [u64; 2] = [2, 5];
    /// Acknowledged updates per server life before the random 100–600 ms after which the kill
    /// lands: a debug build on a busy 2-core machine acknowledges only some 50–300 updates a
    /// second, so a bare 100–600 ms would make the 8 cycles send a few hundred updates instead
    /// of the 1,000–3,000 wanted.
    const UPDATES_PER_CYCLE: u64 = 200;
    /// …but at most this much load before that random delay (slow machines).
    const LOAD_AT_MOST: Duration = Duration::from_secs(4);
    /// New updates in all (a fast machine idles the clients once they are spent).
    const MAX_UPDATES: u64 = 3000;
    let test_started = Instant::now();
    let dir = tempfile::TempDir::new().expect("temp dir");
    let http = http_client();

    let server = ServerProcess::start(dir.path()).await;
    let mut ready_times = vec![server.ready_after];
    let (carts, seeds) = create_carts(&http, &server.base(), "dur01", 10).await;
    drop(server); // killed: the creates were answered, so they are durable
    let carts = Arc::new(carts);

    let mut states: Vec<ClientState> = (0..CLIENTS)
        .map(|id| ClientState {
            budget: MAX_UPDATES / CLIENTS as u64,
            id,
            next_n: 0,
            unanswered: VecDeque::new(),
        })
        .collect();
    let mut acked: Vec<(Op, Resp)> = Vec::new();
    let mut sent: HashMap<String, Op> = HashMap::new();
    let mut anomalies = Vec::new();
    let (mut attempts, mut restarts, mut early_kills) = (0u64, 0u64, Vec::new());
    let mut kill_times = Vec::new();

    for cycle in 0..CYCLES {
        let mut rng = XorShift::new(cycle + 1);
        if EARLY_KILL_CYCLES.contains(&cycle) {
            let mut early = ServerProcess::spawn(dir.path());
            let after = rng.between(0, 60);
            tokio::time::sleep(Duration::from_millis(after)).await;
            let listening = early.saw_listening_line();
            early.kill9();
            restarts += 1;
            early_kills.push((after, listening));
        }
        let server = ServerProcess::start(dir.path()).await;
        restarts += 1;
        ready_times.push(server.ready_after);
        let load = Arc::new(LoadControl::default());
        let mut tasks = Vec::new();
        for state in states.drain(..) {
            tasks.push(tokio::spawn(client_loop(
                state,
                "dur01",
                carts.clone(),
                http_client(),
                server.base(),
                load.clone(),
                Duration::ZERO,
            )));
        }
        // The kill lands a random 100–600 ms after this life acknowledged its share of the
        // updates (or after LOAD_AT_MOST on a slow machine).
        let load_started = Instant::now();
        while load.acked.load(Ordering::SeqCst) < UPDATES_PER_CYCLE
            && load_started.elapsed() < LOAD_AT_MOST
        {
            tokio::time::sleep(Duration::from_millis(5)).await;
        }
        tokio::time::sleep(Duration::from_millis(rng.between(100, 600))).await;
        kill_times.push(load_started.elapsed().as_millis());
        let mut server = server;
        server.kill9();
        load.stop.store(true, Ordering::SeqCst);
        for task in tasks {
            let (state, run) = task.await.expect("client task");
            attempts += collect_run(run, &mut acked, &mut sent, &mut anomalies);
            states.push(state);
        }
        states.sort_by_key(|s| s.id);
    }

    // The last life: retry what was never answered, then check everything.
    let server = ServerProcess::start(dir.path()).await;
    restarts += 1;
    ready_times.push(server.ready_after);
    let base = server.base();
    let unanswered_at_end = retry_all(&mut states, &http, &base, &mut acked).await;
    assert!(
        anomalies.is_empty(),
        "answers other than 200 under load: {anomalies:?}"
    );
    let acked_ids: HashSet<&str> = acked.iter().map(|(op, _)| op.request_id.as_str()).collect();
    assert_eq!(
        acked_ids.len(),
        sent.len(),
        "every sent update is acknowledged after the retries"
    );
    let lines = check_final_state(&http, &base, &carts, &seeds, &sent, &acked).await;
    assert_eq!(
        lines,
        seeds.len() + sent.len(),
        "one line per update plus the seeds"
    );
    let replayed = check_replays(&http, &base, &replay_sample(&acked, 200)).await;
    // An update in flight at a kill either committed before it (its retry is a replay) or not.
    let in_flight: Vec<_> = acked.iter().filter(|(op, _)| op.sends > 1).collect();
    let had_committed = in_flight
        .iter()
        .filter(|(_, r)| r.header("idempotent-replayed") == Some("true"))
        .count();
    let avg_bytes = acked.iter().map(|(_, r)| r.bytes.len()).sum::<usize>() / acked.len().max(1);
    let ready_ms: Vec<_> = ready_times.iter().map(Duration::as_millis).collect();
    println!(
        "DUR-01: {} updates acknowledged ({attempts} sends; {} in flight at a kill and retried with \
         the same request_id, {had_committed} of which had committed before the kill; \
         {unanswered_at_end} retried at the final start); {lines} lines; answers of {avg_bytes} \
         bytes on average; {replayed} replays byte-identical; {restarts} restarts: SIGKILL under \
         load after {kill_times:?} ms, early kills (ms after spawn, listening yet) \
         {early_kills:?}; ready after {ready_ms:?} ms; {:?} in all",
        acked.len(),
        in_flight.len(),
        test_started.elapsed()
    );
    assert!(
        acked.len() >= 300,
        "too little load to mean anything: {} acknowledged updates",
        acked.len()
    );
}

/// IDEM-12: an answered update's idempotency record survives kill -9; the duplicate is
/// replayed byte-identically and the line exists once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn idem12_record_survives_kill9() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let http = http_client();
    let mut server = ServerProcess::start(dir.path()).await;
    let base = server.base();
    let create = create_body(
        "idem12-create",
        "idem12-cart",
        &[("idem12-l1", "mug-01", 1)],
    );
    let created = post_ok(&http, &base, "create", &create).await;
    assert_eq!(
        created.status,
        200,
        "{}",
        String::from_utf8_lossy(&created.bytes)
    );
    let update = update_body(
        "idem12-update",
        "idem12-cart",
        json!({"items": [{"item_id": {"value": "idem12-l2"}, "external_product_id": "sticker-01", "quantity": 2}]}),
    );
    let updated = post_ok(&http, &base, "update", &update).await;
    assert_eq!(
        updated.status,
        200,
        "{}",
        String::from_utf8_lossy(&updated.bytes)
    );
    assert_eq!(updated.header("idempotent-replayed"), None);
    server.kill9();

    let server = ServerProcess::start(dir.path()).await;
    let base = server.base();
    let again = post_ok(&http, &base, "update", &update).await;
    assert_eq!(
        again.status,
        200,
        "{}",
        String::from_utf8_lossy(&again.bytes)
    );
    assert!(
        again.bytes == updated.bytes,
        "the replay after kill -9 differs:\nfirst:  {}\nreplay: {}",
        String::from_utf8_lossy(&updated.bytes),
        String::from_utf8_lossy(&again.bytes)
    );
    assert_eq!(again.header("idempotent-replayed"), Some("true"));
    let created_again = post_ok(&http, &base, "create", &create).await;
    assert!(
        created_again.bytes == created.bytes,
        "the create replay differs"
    );
    assert_eq!(created_again.header("idempotent-replayed"), Some("true"));
    let read = post_ok(&http, &base, "read", &read_body("idem12-cart")).await;
    assert_eq!(read.status, 200);
    let lines = line_ids(&read);
    assert_eq!(
        lines,
        vec!["idem12-l1".to_string(), "idem12-l2".to_string()],
        "each line once"
    );
    assert_eq!(read.order()["lines"][1]["quantity"], json!(2));
}

/// STORE-05: a second process on the same data directory exits non-zero, naming the lock,
/// and the first keeps answering.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store05_second_process_on_the_same_dir_is_refused() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let http = http_client();
    let first = ServerProcess::start(dir.path()).await;
    let base = first.base();
    let created = post_ok(
        &http,
        &base,
        "create",
        &create_body(
            "store05-create",
            "store05-cart",
            &[("store05-l1", "mug-01", 1)],
        ),
    )
    .await;
    assert_eq!(created.status, 200);

    let started = Instant::now();
    let mut second = ServerProcess::spawn(dir.path());
    let status = second.wait_exit(Duration::from_secs(5)).await;
    let took = started.elapsed();
    std::thread::sleep(Duration::from_millis(100)); // let the readers collect the last output
    let output = second.output();
    let status = status.unwrap_or_else(|| {
        panic!(
            "the second process still runs after 5 s (listening: {}):\n{output}",
            second.saw_listening_line()
        )
    });
    assert!(
        !status.success(),
        "the second process exited with {status}:\n{output}"
    );
    assert!(
        output.to_lowercase().contains("locked"),
        "the second process's output does not name the lock (exit {status}, after {took:?}):\n{output}"
    );
    println!("STORE-05: second process exited with {status} after {took:?}");

    let read = post_ok(&http, &base, "read", &read_body("store05-cart")).await;
    assert_eq!(
        read.status,
        200,
        "the first server stopped answering:\n{}",
        first.output()
    );
    let update = update_body(
        "store05-update",
        "store05-cart",
        json!({"items": [{"item_id": {"value": "store05-l2"}, "external_product_id": "mug-01"}]}),
    );
    let updated = post_ok(&http, &base, "update", &update).await;
    assert_eq!(
        updated.status, 200,
        "the first server cannot write any more"
    );
}

/// DUR-07: SIGTERM under light load: exit 0 within 10 s; every acknowledged update is there
/// after a restart, and nothing that was never sent.
///
/// Ignored: server bug. On SIGTERM `Application::run_until_stopped` (src/startup.rs) logs
/// "shutdown requested: draining in-flight requests", then awaits `handle.stop(true)` inside
/// the `select!` branch while the pinned actix `Server` future, the only thing that processes
/// the stop command, is no longer polled: a deadlock. The process never exits (seen: still
/// running 11 minutes after SIGTERM with no connection open; no "stopped" line, no final
/// flush). Polling both (`tokio::join!(handle.stop(true), server.as_mut())`) makes this test
/// pass (exit 0 some 0.3 s after SIGTERM).
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dur07_sigterm_under_load_exits_cleanly_and_keeps_acknowledged_updates() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let mut server = ServerProcess::start(dir.path()).await;
    let setup = http_client();
    let (carts, seeds) = create_carts(&setup, &server.base(), "dur07", 2).await;
    // No idle keep-alive connection of ours may hold the drain open.
    drop(setup);
    let carts = Arc::new(carts);

    let load = Arc::new(LoadControl::default());
    let mut tasks = Vec::new();
    for id in 0..2 {
        let state = ClientState {
            id,
            next_n: 0,
            budget: u64::MAX,
            unanswered: VecDeque::new(),
        };
        tasks.push(tokio::spawn(client_loop(
            state,
            "dur07",
            carts.clone(),
            http_client(),
            server.base(),
            load.clone(),
            Duration::from_millis(10),
        )));
    }
    tokio::time::sleep(Duration::from_millis(400)).await;
    let term_sent = Instant::now();
    let kill = Command::new("kill")
        .arg("-TERM")
        .arg(server.pid().to_string())
        .status()
        .expect("run kill");
    assert!(kill.success(), "kill -TERM failed: {kill}");
    // The load goes on a little while the server drains.
    tokio::time::sleep(Duration::from_millis(300)).await;
    load.stop.store(true, Ordering::SeqCst);
    let status = server.wait_exit(Duration::from_secs(10)).await;
    let exit_after = term_sent.elapsed();
    let mut states = Vec::new();
    let (mut acked, mut sent, mut anomalies) = (Vec::new(), HashMap::new(), Vec::new());
    for task in tasks {
        let (state, run) = task.await.expect("client task");
        collect_run(run, &mut acked, &mut sent, &mut anomalies);
        states.push(state);
    }
    std::thread::sleep(Duration::from_millis(100));
    let status =
        status.unwrap_or_else(|| panic!("still running 10 s after SIGTERM:\n{}", server.output()));
    assert!(
        status.success(),
        "exit status after SIGTERM: {status}\n{}",
        server.output()
    );
    // Requests during the drain may be refused (connection) or, at worst, 503: never a 5xx else.
    let bad: Vec<_> = anomalies
        .iter()
        .filter(|(_, status, _)| *status != 503)
        .collect();
    assert!(bad.is_empty(), "answers during the drain: {bad:?}");
    let acked_before = acked.len();

    let server = ServerProcess::start(dir.path()).await;
    let base = server.base();
    let http = http_client();
    let in_flight = retry_all(&mut states, &http, &base, &mut acked).await;
    check_final_state(&http, &base, &carts, &seeds, &sent, &acked).await;
    check_replays(&http, &base, &replay_sample(&acked, 50)).await;
    println!(
        "DUR-07: exited with {status} {exit_after:?} after SIGTERM; {acked_before} updates acknowledged \
         before it, {in_flight} unanswered and retried after the restart"
    );
}
