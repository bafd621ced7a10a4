//! Load benchmark of the HTTP API, measured next to anchors built in the same run
//! (docs/performance.md describes the method and the goals G1–G12): only ratios measured side
//! by side mean anything; the absolute numbers depend on the machine.
//!
//! `cargo bench --bench http` (5 s per phase after a 1 s warm-up) or
//! `cargo bench --bench http -- --quick` (2 s after 0.5 s).
//!
//! One process, everything on 127.0.0.1:
//! 1. fast-seller itself (`Application::build`, 2 workers, fresh temp dir, default cache):
//!    1000 carts set up, then the phases create, update, read, replay (duplicate
//!    `request_id`s), update at 1 connection and update at 128 connections; stored bytes per
//!    order and RSS afterwards.
//! 2. HTTP anchors, small servers written here on the same stack (actix-web, 2 workers,
//!    fresh sled with defaults), each run right before the fast-seller phase it is compared
//!    with: json-echo (parse, answer a fixed order) before read, insert + group commit before
//!    create, and a two-tree sled transaction (read-modify-write of 1 of 1000 orders +
//!    idempotency record) made durable with `flush()` per request or with group commit
//!    before update. They answer with fast-seller's own cart JSON (~2 KB).
//! 3. sled without HTTP, 2 KB values: insert + `flush()` on one thread, and insert + group
//!    commit on 32 threads.
//!
//! The load generator: N tokio tasks (2 client threads, like `wrk -t2`), each with its own
//! keep-alive `reqwest` client and one connection, for a fixed time; every request's latency
//! is recorded after the warm-up. Any answer other than 200 counts as an error.
//!
//! Output: a table on stdout and the same numbers in `target/bench-http.json`.

use std::collections::BTreeMap;
use std::os::unix::fs::MetadataExt;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{mpsc, Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use actix_web::{web, App, HttpResponse, HttpServer};
use fast_seller::config::{LogFormat, Secret, Settings, StoreConfig};
use fast_seller::startup::{Application, StartupError};
use fast_seller::store::postgres::redact_url;
use fast_seller::store::{Store, StoreCounts};
use serde_json::{json, Value};
use sled::transaction::{ConflictableTransactionError, TransactionError};
use sled::Transactional;
use tokio::sync::oneshot;

/// Carts that updates and reads go to (each update touches 1 of 1000 orders, as in the anchors).
const CARTS: u64 = 1000;
/// Connections of every phase unless said otherwise.
const CONNS: usize = 32;
/// Name prefix of the load generator's threads, to tell client CPU from server CPU.
const CLIENT_THREAD: &str = "bench-client";
/// Threads of the sled group-commit loop.
const SLED_GC_THREADS: usize = 32;
/// No single request may hold the bench longer than this.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(10);
/// Linux `USER_HZ`: the unit of utime/stime in `/proc/*/stat`.
const TICKS_PER_SEC: f64 = 100.0;

fn main() {
    // Before anything could initialise logging; the bench never installs a subscriber anyway.
    std::env::set_var("RUST_LOG", "warn");
    let started = Instant::now();
    let opts = Opts::from_args();
    println!(
        "fast-seller HTTP bench: {} s per phase after {} s warm-up{}, loopback, one process, {} cores",
        opts.run.as_secs_f64(),
        opts.warmup.as_secs_f64(),
        if opts.quick { " (--quick)" } else { "" },
        std::thread::available_parallelism().map_or(0, |n| n.get()),
    );
    // Other work on the machine skews every number (ratios less so): say how busy it was.
    let load_at_start = load_average();
    println!("load average at start: {load_at_start}");

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .thread_name(CLIENT_THREAD)
        .enable_all()
        .build()
        .expect("the client runtime starts");
    let (ours, anchors) = runtime.block_on(bench_http(&opts));
    let postgres = runtime.block_on(bench_postgres(&opts));
    if let Err(e) = &postgres {
        eprintln!("[bench] PostgreSQL column skipped: {e}");
    }
    drop(runtime);

    let value = ours.sample.order_bytes.clone();
    eprintln!("[bench] sled insert + flush, 1 thread");
    let sled_flush = sled_loop("sled insert+flush", 1, &value, &opts, false);
    eprintln!("[bench] sled insert + group commit, {SLED_GC_THREADS} threads");
    let sled_gc = sled_loop(
        "sled insert+group commit",
        SLED_GC_THREADS,
        &value,
        &opts,
        true,
    );

    let report = Report {
        opts,
        ours,
        anchors,
        postgres,
        sled_flush,
        sled_gc,
        rss_end_kib: rss_kib(),
        load_at_start,
        wall: started.elapsed(),
    };
    report.print();
    report.write_json();
}

// ---------------------------------------------------------------------------------------
// Options

struct Opts {
    run: Duration,
    warmup: Duration,
    quick: bool,
}

impl Opts {
    /// `--quick` shortens every phase; other arguments (cargo passes `--bench`) are ignored.
    fn from_args() -> Opts {
        let quick = std::env::args().skip(1).any(|a| a == "--quick");
        if quick {
            Opts {
                run: Duration::from_secs(2),
                warmup: Duration::from_millis(500),
                quick,
            }
        } else {
            Opts {
                run: Duration::from_secs(5),
                warmup: Duration::from_secs(1),
                quick,
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// Request bodies (the shapes of tests/it/helpers.rs)

/// Makes the body of the next request; shared by every connection of a phase.
trait Bodies: Send + Sync {
    fn next(&self) -> Vec<u8>;
}

fn to_bytes(v: &Value) -> Vec<u8> {
    serde_json::to_vec(v).expect("a JSON value always serializes")
}

/// A create request for a cart of three lines with a billing address (~1 KB).
fn create_body(request_id: &str, fast_id: &str) -> Vec<u8> {
    let line = |id: &str, product: &str, qty: i64| {
        json!({
            "id": {"value": id},
            "external_product_id": product,
            "quantity": qty,
            "subtotal_amount": "0.00",
            "tax_amount": "0.00",
            "total_amount": "0.00"
        })
    };
    to_bytes(&json!({
        "type": "ENTITY_TYPE_ORDER",
        "app_id": "bench-app",
        "request_id": {"value": request_id},
        "order": {
            "is_cart": true,
            "order": {
                "id": {"value": fast_id},
                "order_type": "ORDER_TYPE_CART",
                "status": "ORDER_STATUS_CART",
                "user_id": {"value": "user-6b0f2c1e-bench"},
                "bill_to": {
                    "first_name": "Ada",
                    "last_name": "Lovelace",
                    "email": "ada@example.com",
                    "phone": "+14155550100",
                    "address_1": "1 Market Street",
                    "address_2": "Suite 500",
                    "city": "San Francisco",
                    "zip": "94105",
                    "country_code": "US",
                    "state_province_code": "CA"
                },
                "lines": [
                    line("L1", "mug-01", 1),
                    line("L2", "ebook-01", 1),
                    line("L3", "sticker-01", 2)
                ]
            }
        }
    }))
}

/// Creates of new, unique Fast orders.
struct Creates {
    prefix: &'static str,
    next: AtomicU64,
}

impl Creates {
    fn new(prefix: &'static str) -> Creates {
        Creates {
            prefix,
            next: AtomicU64::new(0),
        }
    }
}

impl Bodies for Creates {
    fn next(&self) -> Vec<u8> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        let p = self.prefix;
        create_body(&format!("{p}-create-{n}"), &format!("{p}-{n}"))
    }
}

fn cart_id(i: u64) -> String {
    format!("cart-{i}")
}

/// Updates spread over the carts, each with a new `request_id`. Update `u` of a cart
/// (`seq = u * CARTS + cart`): u % 4 == 1 adds a line with a unique id, u % 4 == 3 removes
/// the line added two updates before, otherwise the quantity of line L1 changes (1..=5).
/// Carts so stay at 3–4 lines (never above 5) and about the same size all run long.
struct Updates {
    next: AtomicU64,
}

impl Updates {
    fn new() -> Updates {
        Updates {
            next: AtomicU64::new(0),
        }
    }

    /// How many update bodies were handed out (all of them answered once a phase is over).
    fn issued(&self) -> u64 {
        self.next.load(Ordering::Relaxed)
    }

    /// The body of update number `seq`, always the same bytes for the same `seq`.
    fn body(seq: u64) -> Vec<u8> {
        let cart = seq % CARTS;
        let u = seq / CARTS;
        let item = match u % 4 {
            1 => json!({
                "item_id": {"value": format!("A-{cart}-{u}")},
                "external_product_id": "gift-wrap",
                "quantity": 1
            }),
            3 => json!({"item_id": {"value": format!("A-{cart}-{}", u - 2)}, "quantity": 0}),
            _ => json!({"item_id": {"value": "L1"}, "quantity": u % 5 + 1}),
        };
        to_bytes(&json!({
            "type": "ENTITY_TYPE_ORDER",
            "app_id": "bench-app",
            "request_id": {"value": format!("update-{seq}")},
            "order": {
                "order_id": {"value": cart_id(cart)},
                "is_cart": true,
                "items": [item]
            }
        }))
    }
}

impl Bodies for Updates {
    fn next(&self) -> Vec<u8> {
        Updates::body(self.next.fetch_add(1, Ordering::Relaxed))
    }
}

/// Reads of the carts by Fast id.
struct Reads {
    next: AtomicU64,
}

impl Bodies for Reads {
    fn next(&self) -> Vec<u8> {
        let cart = self.next.fetch_add(1, Ordering::Relaxed) % CARTS;
        to_bytes(&json!({
            "type": "ENTITY_TYPE_ORDER",
            "app_id": "bench-app",
            "order": {"order_id": {"value": cart_id(cart)}}
        }))
    }
}

/// Exact re-sends of updates already answered (`seq < answered`).
struct Replays {
    answered: u64,
    next: AtomicU64,
}

impl Bodies for Replays {
    fn next(&self) -> Vec<u8> {
        let n = self.next.fetch_add(1, Ordering::Relaxed);
        // A stride spreads the replays over the whole answered range.
        Updates::body(n.wrapping_mul(7919) % self.answered.max(1))
    }
}

// ---------------------------------------------------------------------------------------
// Load generator

/// One phase's numbers.
#[derive(Debug, Clone, Default)]
struct Phase {
    name: String,
    conns: usize,
    /// Requests answered 200 after the warm-up (the measured ones).
    requests: u64,
    /// Requests answered 200 including the warm-up (what the store had to absorb).
    ok_total: u64,
    secs: f64,
    rps: f64,
    p50_us: u64,
    p99_us: u64,
    errors: u64,
    /// Up to five distinct error descriptions, with how often each occurred.
    error_samples: Vec<(String, u64)>,
    /// Answers carrying `Idempotent-Replayed: true`.
    replayed: u64,
    req_bytes: f64,
    resp_bytes: f64,
    /// Cores used by the load generator's threads and by the rest of the process.
    client_cores: f64,
    server_cores: f64,
}

impl Phase {
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "connections": self.conns,
            "requests": self.requests,
            "ok_including_warmup": self.ok_total,
            "seconds": round3(self.secs),
            "req_per_s": self.rps.round(),
            "p50_ms": ms(self.p50_us),
            "p99_ms": ms(self.p99_us),
            "errors": self.errors,
            "error_samples": self.error_samples.iter()
                .map(|(m, n)| json!({"error": m, "count": n})).collect::<Vec<_>>(),
            "replayed": self.replayed,
            "avg_request_bytes": self.req_bytes.round(),
            "avg_response_bytes": self.resp_bytes.round(),
            "client_cores": round3(self.client_cores),
            "server_cores": round3(self.server_cores),
        })
    }
}

#[derive(Default)]
struct ConnStats {
    ok_total: u64,
    latencies_us: Vec<u32>,
    last_finish: Option<Instant>,
    errors: u64,
    error_samples: BTreeMap<String, u64>,
    replayed: u64,
    req_bytes: u64,
    resp_bytes: u64,
}

impl ConnStats {
    fn error(&mut self, what: String) {
        self.errors += 1;
        if self.error_samples.len() < 5 || self.error_samples.contains_key(&what) {
            *self.error_samples.entry(what).or_default() += 1;
        }
    }
}

/// Drives `url` with `conns` connections for warm-up + run, bodies from `bodies`.
async fn drive(name: &str, url: &str, conns: usize, bodies: Arc<dyn Bodies>, opts: &Opts) -> Phase {
    eprintln!("[bench] {name}, {conns} connections");
    let start = Instant::now();
    let measure_from = start + opts.warmup;
    let stop_at = measure_from + opts.run;
    let cpu_at_start = tokio::spawn(async move {
        tokio::time::sleep_until(measure_from.into()).await;
        Cpu::now()
    });
    let url: Arc<str> = Arc::from(url);
    let tasks: Vec<_> = (0..conns)
        .map(|_| {
            let client = http_client();
            let url = url.clone();
            let bodies = bodies.clone();
            tokio::spawn(connection(client, url, bodies, measure_from, stop_at))
        })
        .collect();
    let mut all = ConnStats::default();
    let mut samples: BTreeMap<String, u64> = BTreeMap::new();
    for task in tasks {
        let s = task.await.expect("a load generator task panicked");
        all.ok_total += s.ok_total;
        all.latencies_us.extend(s.latencies_us);
        all.last_finish = all.last_finish.max(s.last_finish);
        all.errors += s.errors;
        for (m, n) in s.error_samples {
            *samples.entry(m).or_default() += n;
        }
        all.replayed += s.replayed;
        all.req_bytes += s.req_bytes;
        all.resp_bytes += s.resp_bytes;
    }
    let cpu_end = Cpu::now();
    let cpu_start = cpu_at_start.await.expect("the CPU sampler panicked");
    let (client_cores, server_cores) = cpu_end.cores_since(&cpu_start);

    let mut lat = all.latencies_us;
    lat.sort_unstable();
    let requests = lat.len() as u64;
    let secs = all.last_finish.map_or(0.0, |t| {
        t.saturating_duration_since(measure_from).as_secs_f64()
    });
    let per = |b: u64| {
        if requests == 0 {
            0.0
        } else {
            b as f64 / requests as f64
        }
    };
    let mut error_samples: Vec<(String, u64)> = samples.into_iter().collect();
    error_samples.sort_by_key(|e| std::cmp::Reverse(e.1));
    error_samples.truncate(5);
    Phase {
        name: name.to_string(),
        conns,
        requests,
        ok_total: all.ok_total,
        secs,
        rps: if secs > 0.0 {
            requests as f64 / secs
        } else {
            0.0
        },
        p50_us: percentile(&lat, 0.50),
        p99_us: percentile(&lat, 0.99),
        errors: all.errors,
        error_samples,
        replayed: all.replayed,
        req_bytes: per(all.req_bytes),
        resp_bytes: per(all.resp_bytes),
        client_cores,
        server_cores,
    }
}

/// A keep-alive client for one connection, never through a proxy.
fn http_client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .pool_max_idle_per_host(1)
        .tcp_nodelay(true)
        .timeout(REQUEST_TIMEOUT)
        .build()
        .expect("the HTTP client builds")
}

/// One connection: requests back to back until `stop_at`.
async fn connection(
    client: reqwest::Client,
    url: Arc<str>,
    bodies: Arc<dyn Bodies>,
    measure_from: Instant,
    stop_at: Instant,
) -> ConnStats {
    let mut s = ConnStats::default();
    loop {
        let t0 = Instant::now();
        if t0 >= stop_at {
            break;
        }
        let body = bodies.next();
        let sent = body.len() as u64;
        let outcome = post(&client, &url, body).await;
        let t1 = Instant::now();
        let measured = t0 >= measure_from;
        match outcome {
            Ok((200, replayed, bytes)) => {
                s.ok_total += 1;
                if measured {
                    let us = t1.duration_since(t0).as_micros();
                    s.latencies_us.push(u32::try_from(us).unwrap_or(u32::MAX));
                    s.last_finish = Some(t1);
                    s.req_bytes += sent;
                    s.resp_bytes += bytes.len() as u64;
                    s.replayed += u64::from(replayed);
                }
            }
            Ok((status, _, bytes)) => {
                let text = String::from_utf8_lossy(&bytes);
                let text: String = text.chars().take(200).collect();
                s.error(format!("HTTP {status}: {text}"));
            }
            Err(e) => {
                s.error(format!("transport: {e}"));
                // Do not spin on a dead server.
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        }
    }
    s
}

/// POSTs JSON; returns status, whether the answer is a replay, and the body.
async fn post(
    client: &reqwest::Client,
    url: &str,
    body: Vec<u8>,
) -> Result<(u16, bool, Vec<u8>), reqwest::Error> {
    let resp = client
        .post(url)
        .header(reqwest::header::CONTENT_TYPE, "application/json")
        .body(body)
        .send()
        .await?;
    let status = resp.status().as_u16();
    let replayed = resp
        .headers()
        .get("idempotent-replayed")
        .is_some_and(|v| v.as_bytes() == b"true");
    let bytes = resp.bytes().await?;
    Ok((status, replayed, bytes.to_vec()))
}

/// The `q` quantile of sorted latencies (nearest rank).
fn percentile(sorted: &[u32], q: f64) -> u64 {
    if sorted.is_empty() {
        return 0;
    }
    let rank = (sorted.len() as f64 * q).ceil() as usize;
    u64::from(sorted[rank.clamp(1, sorted.len()) - 1])
}

// ---------------------------------------------------------------------------------------
// CPU, memory and disk

/// CPU time of the whole process and of the load generator's threads, in ticks.
struct Cpu {
    at: Instant,
    process: u64,
    client: u64,
}

impl Cpu {
    fn now() -> Cpu {
        let process = std::fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| stat_ticks(&s))
            .map_or(0, |(_, t)| t);
        let mut client = 0;
        if let Ok(tasks) = std::fs::read_dir("/proc/self/task") {
            for task in tasks.flatten() {
                let Ok(stat) = std::fs::read_to_string(task.path().join("stat")) else {
                    continue; // the thread ended meanwhile
                };
                if let Some((comm, ticks)) = stat_ticks(&stat) {
                    if comm.starts_with(CLIENT_THREAD) {
                        client += ticks;
                    }
                }
            }
        }
        Cpu {
            at: Instant::now(),
            process,
            client,
        }
    }

    /// (client cores, server cores) used between `earlier` and `self`.
    fn cores_since(&self, earlier: &Cpu) -> (f64, f64) {
        let secs = self.at.duration_since(earlier.at).as_secs_f64();
        if secs <= 0.0 {
            return (0.0, 0.0);
        }
        let process = self.process.saturating_sub(earlier.process) as f64 / TICKS_PER_SEC;
        let client = self.client.saturating_sub(earlier.client) as f64 / TICKS_PER_SEC;
        (client / secs, (process - client).max(0.0) / secs)
    }
}

/// Thread/process name and utime + stime from a `/proc/.../stat` line.
fn stat_ticks(stat: &str) -> Option<(String, u64)> {
    let open = stat.find('(')?;
    let close = stat.rfind(')')?;
    let comm = stat.get(open + 1..close)?.to_string();
    // After the name: state (field 3) ... utime (14), stime (15).
    let fields: Vec<&str> = stat.get(close + 1..)?.split_whitespace().collect();
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((comm, utime + stime))
}

/// The first three fields of `/proc/loadavg` (1, 5 and 15 minutes).
fn load_average() -> String {
    std::fs::read_to_string("/proc/loadavg")
        .map(|s| s.split_whitespace().take(3).collect::<Vec<_>>().join(" "))
        .unwrap_or_else(|_| "unknown".into())
}

/// Resident set size of this process in KiB.
fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmRSS:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
        })
        .unwrap_or(0)
}

/// Bytes of a directory tree: (allocated on disk, apparent file sizes).
#[derive(Debug, Clone, Copy, Default)]
struct DiskUse {
    allocated: u64,
    apparent: u64,
}

fn disk_use(path: &Path) -> DiskUse {
    let mut total = DiskUse::default();
    let Ok(entries) = std::fs::read_dir(path) else {
        return total;
    };
    for entry in entries.flatten() {
        let Ok(meta) = entry.metadata() else {
            continue;
        };
        if meta.is_dir() {
            let sub = disk_use(&entry.path());
            total.allocated += sub.allocated;
            total.apparent += sub.apparent;
        } else {
            total.allocated += meta.blocks() * 512;
            total.apparent += meta.len();
        }
    }
    total
}

// ---------------------------------------------------------------------------------------
// fast-seller itself

/// What the real server's run yields.
struct Ours {
    create: Phase,
    update: Phase,
    read: Phase,
    replay: Phase,
    update_c1: Phase,
    update_c128: Phase,
    /// Store counts around the replay phase (G6).
    counts_before_replay: StoreCounts,
    counts_after_replay: StoreCounts,
    /// Disk after the create phase (G9) and at the end.
    disk_after_create: DiskUse,
    counts_after_create: StoreCounts,
    disk_before_update: DiskUse,
    disk_after_update: DiskUse,
    disk_end: DiskUse,
    counts_end: StoreCounts,
    /// Average create answer (the stored order JSON plus a ~60 byte envelope).
    avg_order_json: f64,
    rss_kib: u64,
    sample: Sample,
}

/// A cart as fast-seller answers it, reused by the anchors so they answer the same bytes.
#[derive(Clone)]
struct Sample {
    /// The whole read answer for cart-0 before any update.
    answer: Vec<u8>,
    /// Its `order.order` object.
    order: Value,
    order_bytes: Vec<u8>,
}

/// fast-seller's phases, each right after the HTTP anchors it is compared with (so that
/// whatever else the machine is doing skews both alike); fast-seller idles meanwhile.
async fn bench_http(opts: &Opts) -> (Ours, Anchors) {
    let dir = tempfile::TempDir::new().expect("a temp dir for the server's data");
    let running = Running::start(dir.path(), StoreConfig::Sled).await;
    let base = running.base.clone();
    let store = running.store.clone();

    eprintln!("[bench] fast-seller: setting up {CARTS} carts");
    setup_carts(&base).await;
    let sample = read_sample(&base).await;

    let url = |verb: &str| format!("{base}/{verb}");
    let (insert_gc, _) = run_anchor(
        AnchorMode::InsertGc,
        "anchor insert+group commit",
        Arc::new(Creates::new("anchor")),
        opts,
        &sample,
    )
    .await;
    let create = drive(
        "create",
        &url("create"),
        CONNS,
        Arc::new(Creates::new("order")),
        opts,
    )
    .await;
    let (disk_after_create, counts_after_create) = settle(&store, dir.path()).await;

    let updates = Arc::new(Updates::new());
    let (txn_flush, _) = run_anchor(
        AnchorMode::TxnFlush,
        "anchor txn+flush",
        Arc::new(Updates::new()),
        opts,
        &sample,
    )
    .await;
    let (txn_gc, txn_gc_bytes_per_update) = run_anchor(
        AnchorMode::TxnGc,
        "anchor txn+group commit",
        Arc::new(Updates::new()),
        opts,
        &sample,
    )
    .await;
    let disk_before_update = disk_after_create;
    let update = drive("update", &url("update"), CONNS, updates.clone(), opts).await;
    let (disk_after_update, _) = settle(&store, dir.path()).await;

    let (echo, _) = run_anchor(
        AnchorMode::Echo,
        "anchor json-echo",
        Arc::new(Updates::new()),
        opts,
        &sample,
    )
    .await;
    let reads = Arc::new(Reads {
        next: AtomicU64::new(0),
    });
    let read = drive("read", &url("read"), CONNS, reads, opts).await;

    let counts_before_replay = counts(&store).await;
    let replays = Arc::new(Replays {
        answered: updates.issued(),
        next: AtomicU64::new(0),
    });
    let replay = drive("replay", &url("update"), CONNS, replays, opts).await;
    let counts_after_replay = counts(&store).await;

    let update_c1 = drive("update", &url("update"), 1, updates.clone(), opts).await;
    let update_c128 = drive("update", &url("update"), 128, updates, opts).await;

    let (disk_end, counts_end) = settle(&store, dir.path()).await;
    let rss = rss_kib();

    drop(store);
    running.stop().await;

    let ours = Ours {
        avg_order_json: create.resp_bytes,
        create,
        update,
        read,
        replay,
        update_c1,
        update_c128,
        counts_before_replay,
        counts_after_replay,
        disk_after_create,
        counts_after_create,
        disk_before_update,
        disk_after_update,
        disk_end,
        counts_end,
        rss_kib: rss,
        sample,
    };
    let anchors = Anchors {
        echo,
        insert_gc,
        txn_flush,
        txn_gc,
        txn_gc_bytes_per_update: txn_gc_bytes_per_update.unwrap_or(0.0),
    };
    (ours, anchors)
}

/// fast-seller in this process on a random port (2 workers), with its store.
struct Running {
    /// `http://127.0.0.1:<port>/fast/v1`
    base: String,
    store: Arc<dyn Store>,
    handle: actix_web::dev::ServerHandle,
    server: tokio::task::JoinHandle<Result<(), StartupError>>,
}

impl Running {
    async fn start(data_dir: &Path, store: StoreConfig) -> Running {
        let mut settings = Settings::new(([127, 0, 0, 1], 0).into(), data_dir.to_path_buf());
        settings.workers = 2;
        settings.log_format = LogFormat::Json;
        settings.shutdown_timeout = Duration::from_secs(2);
        settings.store = store;
        let app = Application::build(settings)
            .await
            .expect("the fast-seller server starts");
        Running {
            base: format!("http://127.0.0.1:{}/fast/v1", app.port()),
            store: app.service().store().clone(),
            handle: app.handle(),
            server: tokio::spawn(app.run_until_stopped()),
        }
    }

    async fn stop(self) {
        let Running {
            store,
            handle,
            server,
            ..
        } = self;
        drop(store);
        stop(handle, async {
            match server.await {
                Ok(Ok(())) => {}
                Ok(Err(e)) => eprintln!("[bench] fast-seller stopped with an error: {e}"),
                Err(e) => eprintln!("[bench] fast-seller's task failed: {e}"),
            }
        })
        .await;
    }
}

// ---------------------------------------------------------------------------------------
// The PostgreSQL column

/// PostgreSQL for the bench (a schema of its own is created and dropped).
const DEFAULT_PG: &str = "postgres://postgres@127.0.0.1:5432/test";

/// The create, update and read phases again, on the PostgreSQL store, in the same run.
struct PgColumn {
    create: Phase,
    update: Phase,
    read: Phase,
}

/// Runs [`PgColumn`] on a fresh schema of `FAST_SELLER_BENCH_PG` (default: the local test
/// database); `Err` says why it could not (the rest of the report stands without it).
async fn bench_postgres(opts: &Opts) -> Result<PgColumn, String> {
    let url = std::env::var("FAST_SELLER_BENCH_PG").unwrap_or_else(|_| DEFAULT_PG.to_string());
    let (client, connection) = tokio_postgres::connect(&url, tokio_postgres::NoTls)
        .await
        .map_err(|e| format!("cannot connect to {}: {e}", redact_url(&url)))?;
    tokio::spawn(connection);
    let schema = format!("fs_bench_{}", uuid::Uuid::new_v4().simple());
    client
        .batch_execute(&format!("CREATE SCHEMA {schema}"))
        .await
        .map_err(|e| format!("cannot create schema {schema}: {e}"))?;
    let separator = if url.contains('?') { '&' } else { '?' };
    let store = StoreConfig::Postgres {
        url: Secret::new(format!("{url}{separator}options=-csearch_path%3D{schema}")),
        pool_size: 16,
    };
    let dir = tempfile::TempDir::new().expect("a temp dir for the server's data");
    let running = Running::start(dir.path(), store).await;
    eprintln!("[bench] fast-seller on PostgreSQL: setting up {CARTS} carts");
    setup_carts(&running.base).await;
    let url = |verb: &str| format!("{}/{verb}", running.base);
    let column = PgColumn {
        create: drive(
            "create (PostgreSQL)",
            &url("create"),
            CONNS,
            Arc::new(Creates::new("pg-order")),
            opts,
        )
        .await,
        update: drive(
            "update (PostgreSQL)",
            &url("update"),
            CONNS,
            Arc::new(Updates::new()),
            opts,
        )
        .await,
        read: drive(
            "read (PostgreSQL)",
            &url("read"),
            CONNS,
            Arc::new(Reads {
                next: AtomicU64::new(0),
            }),
            opts,
        )
        .await,
    };
    running.stop().await;
    if let Err(e) = client
        .batch_execute(&format!("DROP SCHEMA {schema} CASCADE"))
        .await
    {
        eprintln!("[bench] could not drop schema {schema}: {e}");
    }
    Ok(column)
}

/// Stops a server gracefully, giving up after a few seconds so the bench always ends.
async fn stop(handle: actix_web::dev::ServerHandle, finished: impl std::future::Future) {
    let graceful = async {
        handle.stop(true).await;
        finished.await;
    };
    if tokio::time::timeout(Duration::from_secs(10), graceful)
        .await
        .is_err()
    {
        eprintln!("[bench] a server did not stop within 10 s; going on");
    }
}

/// Creates cart-0 … cart-999 (16 at a time); any failure aborts the bench.
async fn setup_carts(base: &str) {
    let url: Arc<str> = Arc::from(format!("{base}/create"));
    let workers = 16;
    let tasks: Vec<_> = (0..workers)
        .map(|w| {
            let url = url.clone();
            tokio::spawn(async move {
                let client = http_client();
                for i in (w..CARTS).step_by(workers as usize) {
                    let body = create_body(&format!("setup-{i}"), &cart_id(i));
                    let (status, _, bytes) = post(&client, &url, body)
                        .await
                        .expect("the cart set-up reaches the server");
                    assert_eq!(
                        status,
                        200,
                        "creating {} failed: {}",
                        cart_id(i),
                        String::from_utf8_lossy(&bytes)
                    );
                }
            })
        })
        .collect();
    for t in tasks {
        t.await.expect("a set-up task panicked");
    }
}

/// Reads cart-0 as the template answer and stored order of the anchors.
async fn read_sample(base: &str) -> Sample {
    let body = Reads {
        next: AtomicU64::new(0),
    }
    .next();
    let (status, _, answer) = post(&http_client(), &format!("{base}/read"), body)
        .await
        .expect("reading cart-0 reaches the server");
    assert_eq!(
        status,
        200,
        "reading cart-0 failed: {}",
        String::from_utf8_lossy(&answer)
    );
    let parsed: Value = serde_json::from_slice(&answer).expect("the read answer is JSON");
    let order = parsed
        .pointer("/order/order")
        .cloned()
        .expect("the read answer has order.order");
    let order_bytes = to_bytes(&order);
    Sample {
        answer,
        order,
        order_bytes,
    }
}

async fn counts(store: &Arc<dyn Store>) -> StoreCounts {
    store.counts().await.expect("the store counts its records")
}

/// Flushes the store and measures its directory.
async fn settle(store: &Arc<dyn Store>, dir: &Path) -> (DiskUse, StoreCounts) {
    store.flush().await.expect("the store flushes");
    (disk_use(dir), counts(store).await)
}

// ---------------------------------------------------------------------------------------
// HTTP anchors

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum AnchorMode {
    /// (a) parse the body, answer a fixed order.
    Echo,
    /// (c″) parse, insert the body under a random key, group commit, answer a fixed order.
    InsertGc,
    /// (d′) two-tree transaction (idempotency + read-modify-write), `flush()` per request.
    TxnFlush,
    /// (d″) the same with group commit.
    TxnGc,
}

struct Anchors {
    echo: Phase,
    insert_gc: Phase,
    txn_flush: Phase,
    txn_gc: Phase,
    /// Disk growth of the txn + group commit anchor per acknowledged update.
    txn_gc_bytes_per_update: f64,
}

async fn run_anchor(
    mode: AnchorMode,
    name: &str,
    bodies: Arc<dyn Bodies>,
    opts: &Opts,
    sample: &Sample,
) -> (Phase, Option<f64>) {
    let dir = tempfile::TempDir::new().expect("a temp dir for the anchor's data");
    let store = match mode {
        AnchorMode::Echo => None,
        _ => Some(AnchorStore::open(dir.path(), &sample.order)),
    };
    let state = web::Data::new(AnchorState {
        mode,
        answer: web::Bytes::from(sample.answer.clone()),
        store,
    });
    let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).expect("a loopback port");
    let port = listener.local_addr().expect("the bound address").port();
    let app_state = state.clone();
    let server = HttpServer::new(move || {
        App::new()
            .app_data(app_state.clone())
            .route("/fast/v1/{verb}", web::post().to(anchor_call))
    })
    .workers(2)
    .disable_signals()
    .shutdown_timeout(2)
    .listen(listener)
    .expect("the anchor server listens")
    .run();
    let handle = server.handle();
    let task = tokio::spawn(server);
    let url = format!("http://127.0.0.1:{port}/fast/v1/anchor");
    let disk_before = disk_use(dir.path());
    let phase = drive(name, &url, CONNS, bodies, opts).await;
    stop(handle, task).await;
    // Disk growth per acknowledged write, as for fast-seller's update phase.
    let per_write = state.store.as_ref().map(|store| {
        if let Err(e) = store.db.flush() {
            eprintln!("[bench] flushing the anchor's database failed: {e}");
        }
        let grown = disk_use(dir.path())
            .allocated
            .saturating_sub(disk_before.allocated);
        ratio(grown as f64, phase.ok_total as f64)
    });
    drop(state);
    (phase, per_write)
}

struct AnchorState {
    mode: AnchorMode,
    /// The fixed answer of Echo and InsertGc: fast-seller's read answer of a cart.
    answer: web::Bytes,
    store: Option<AnchorStore>,
}

struct AnchorStore {
    db: sled::Db,
    orders: sled::Tree,
    idem: sled::Tree,
    commits: GroupCommit,
}

impl AnchorStore {
    /// A fresh database (sled defaults) holding cart-0 … cart-999 as copies of `order`.
    fn open(dir: &Path, order: &Value) -> AnchorStore {
        let db = sled::Config::new()
            .path(dir.join("anchor"))
            .open()
            .expect("the anchor's sled database opens");
        let orders = db.open_tree("orders").expect("tree orders");
        let idem = db.open_tree("idem").expect("tree idem");
        for i in 0..CARTS {
            let mut o = order.clone();
            o["id"] = json!({"value": cart_id(i)});
            orders
                .insert(cart_id(i).as_bytes(), to_bytes(&o))
                .expect("the anchor's orders load");
        }
        db.flush().expect("the anchor's database flushes");
        let commits = GroupCommit::start(db.clone());
        AnchorStore {
            db,
            orders,
            idem,
            commits,
        }
    }

    /// Idempotent read-modify-write of one order in one two-tree transaction.
    fn apply_update(&self, update: &Value) -> Result<Vec<u8>, String> {
        let fast_id = update
            .pointer("/order/order_id/value")
            .and_then(Value::as_str)
            .ok_or("order.order_id is missing")?;
        let request_id = update
            .pointer("/request_id/value")
            .and_then(Value::as_str)
            .ok_or("request_id is missing")?;
        let no_items = Vec::new();
        let items = update
            .pointer("/order/items")
            .and_then(Value::as_array)
            .unwrap_or(&no_items);
        (&self.orders, &self.idem)
            .transaction(|(orders, idem)| {
                if let Some(done) = idem.get(request_id)? {
                    return Ok(done.to_vec());
                }
                let Some(current) = orders.get(fast_id)? else {
                    return Err(ConflictableTransactionError::Abort(format!(
                        "order {fast_id} not found"
                    )));
                };
                let mut order: Value = serde_json::from_slice(&current)
                    .map_err(|e| ConflictableTransactionError::Abort(e.to_string()))?;
                merge_items(&mut order, items);
                let out = serde_json::to_vec(&order)
                    .map_err(|e| ConflictableTransactionError::Abort(e.to_string()))?;
                orders.insert(fast_id, out.as_slice())?;
                idem.insert(request_id, out.as_slice())?;
                Ok(out)
            })
            .map_err(|e| match e {
                TransactionError::Abort(m) => m,
                TransactionError::Storage(e) => e.to_string(),
            })
    }
}

/// Applies `items` (set quantity, remove at 0, add a new line) to `order.lines`.
fn merge_items(order: &mut Value, items: &[Value]) {
    let Some(lines) = order.get_mut("lines").and_then(Value::as_array_mut) else {
        return;
    };
    for item in items {
        let Some(id) = item.pointer("/item_id/value").and_then(Value::as_str) else {
            continue;
        };
        let qty = item.get("quantity").and_then(Value::as_i64);
        let pos = lines
            .iter()
            .position(|l| l.pointer("/id/value").and_then(Value::as_str) == Some(id));
        match (pos, qty) {
            (Some(p), None | Some(0)) => {
                lines.remove(p);
            }
            (Some(p), Some(q)) => lines[p]["quantity"] = json!(q),
            (None, Some(q)) if q > 0 => {
                let mut line = lines.first().cloned().unwrap_or_else(|| json!({}));
                line["id"] = json!({"value": id});
                line["quantity"] = json!(q);
                if let Some(p) = item.get("external_product_id") {
                    line["external_product_id"] = p.clone();
                }
                lines.push(line);
            }
            (None, _) => {}
        }
    }
}

async fn anchor_call(body: web::Bytes, state: web::Data<AnchorState>) -> HttpResponse {
    let parsed: Value = match serde_json::from_slice(&body) {
        Ok(v) => v,
        Err(e) => return HttpResponse::BadRequest().body(e.to_string()),
    };
    let store = match (&state.store, state.mode) {
        (_, AnchorMode::Echo) => return json_answer(state.answer.clone()),
        (Some(store), _) => store,
        (None, _) => return HttpResponse::InternalServerError().body("anchor without a store"),
    };
    let answer = match state.mode {
        AnchorMode::InsertGc => {
            let key = uuid::Uuid::new_v4();
            let written = serde_json::to_vec(&parsed)
                .map_err(|e| e.to_string())
                .and_then(|v| {
                    store
                        .orders
                        .insert(key.as_bytes(), v)
                        .map_err(|e| e.to_string())
                });
            if let Err(e) = written {
                return HttpResponse::InternalServerError().body(e);
            }
            state.answer.clone()
        }
        _ => match store.apply_update(&parsed) {
            Ok(out) => web::Bytes::from(out),
            Err(e) => return HttpResponse::UnprocessableEntity().body(e),
        },
    };
    let durable = if state.mode == AnchorMode::TxnFlush {
        let db = store.db.clone();
        matches!(web::block(move || db.flush()).await, Ok(Ok(_)))
    } else {
        store.commits.wait().await
    };
    if durable {
        json_answer(answer)
    } else {
        HttpResponse::InternalServerError().body("flush failed")
    }
}

fn json_answer(body: web::Bytes) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}

/// Group commit: one flusher thread; each flush covers every waiter queued before it.
struct GroupCommit {
    tx: Option<mpsc::Sender<oneshot::Sender<bool>>>,
    thread: Mutex<Option<JoinHandle<()>>>,
}

impl GroupCommit {
    fn start(db: sled::Db) -> GroupCommit {
        let (tx, rx) = mpsc::channel::<oneshot::Sender<bool>>();
        let thread = std::thread::Builder::new()
            .name("anchor-flusher".into())
            .spawn(move || {
                while let Ok(first) = rx.recv() {
                    let mut waiters = vec![first];
                    waiters.extend(rx.try_iter());
                    let ok = db.flush().is_ok();
                    for w in waiters {
                        let _ = w.send(ok);
                    }
                }
            })
            .expect("the flusher thread starts");
        GroupCommit {
            tx: Some(tx),
            thread: Mutex::new(Some(thread)),
        }
    }

    fn enqueue(&self) -> Option<oneshot::Receiver<bool>> {
        let (tx, rx) = oneshot::channel();
        self.tx.as_ref()?.send(tx).ok()?;
        Some(rx)
    }

    /// Waits until a flush started after this call has finished; false if it failed.
    async fn wait(&self) -> bool {
        match self.enqueue() {
            Some(rx) => rx.await.unwrap_or(false),
            None => false,
        }
    }

    /// The same from a plain thread (not inside the async runtime).
    fn wait_blocking(&self) -> bool {
        self.enqueue()
            .is_some_and(|rx| rx.blocking_recv().unwrap_or(false))
    }
}

impl Drop for GroupCommit {
    fn drop(&mut self) {
        self.tx = None;
        let thread = self.thread.get_mut().ok().and_then(Option::take);
        if let Some(t) = thread {
            if t.join().is_err() {
                eprintln!("[bench] a flusher thread panicked");
            }
        }
    }
}

// ---------------------------------------------------------------------------------------
// sled without HTTP

struct SledLoop {
    name: String,
    threads: usize,
    ops: u64,
    secs: f64,
    ops_per_s: f64,
    p50_us: u64,
    p99_us: u64,
    errors: u64,
}

impl SledLoop {
    fn json(&self) -> Value {
        json!({
            "name": self.name,
            "threads": self.threads,
            "ops": self.ops,
            "seconds": round3(self.secs),
            "ops_per_s": self.ops_per_s.round(),
            "p50_ms": ms(self.p50_us),
            "p99_ms": ms(self.p99_us),
            "errors": self.errors,
        })
    }
}

/// Inserts `value` under random keys in a fresh database, each insert made durable by
/// `flush()` (group_commit = false) or by the group-commit flusher; warm-up, then run.
fn sled_loop(
    name: &str,
    threads: usize,
    value: &[u8],
    opts: &Opts,
    group_commit: bool,
) -> SledLoop {
    let dir = tempfile::TempDir::new().expect("a temp dir for the sled loop");
    let db = sled::Config::new()
        .path(dir.path().join("loop"))
        .open()
        .expect("the sled loop's database opens");
    let commits = group_commit.then(|| GroupCommit::start(db.clone()));
    let start = Instant::now();
    let measure_from = start + opts.warmup;
    let stop_at = measure_from + opts.run;
    let results: Vec<(Vec<u32>, u64, Option<Instant>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..threads)
            .map(|_| {
                let db = &db;
                let commits = commits.as_ref();
                scope.spawn(move || {
                    let mut lat = Vec::new();
                    let mut errors = 0;
                    let mut last = None;
                    loop {
                        let t0 = Instant::now();
                        if t0 >= stop_at {
                            break;
                        }
                        let key = uuid::Uuid::new_v4();
                        let ok = db.insert(key.as_bytes(), value).is_ok()
                            && match commits {
                                Some(c) => c.wait_blocking(),
                                None => db.flush().is_ok(),
                            };
                        let t1 = Instant::now();
                        if !ok {
                            errors += 1;
                        } else if t0 >= measure_from {
                            let us = t1.duration_since(t0).as_micros();
                            lat.push(u32::try_from(us).unwrap_or(u32::MAX));
                            last = Some(t1);
                        }
                    }
                    (lat, errors, last)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a sled loop thread panicked"))
            .collect()
    });
    drop(commits);
    drop(db);
    let mut lat = Vec::new();
    let mut errors = 0;
    let mut last: Option<Instant> = None;
    for (l, e, t) in results {
        lat.extend(l);
        errors += e;
        last = last.max(t);
    }
    lat.sort_unstable();
    let secs = last.map_or(0.0, |t| t.duration_since(measure_from).as_secs_f64());
    let ops = lat.len() as u64;
    SledLoop {
        name: name.to_string(),
        threads,
        ops,
        secs,
        ops_per_s: if secs > 0.0 { ops as f64 / secs } else { 0.0 },
        p50_us: percentile(&lat, 0.50),
        p99_us: percentile(&lat, 0.99),
        errors,
    }
}

// ---------------------------------------------------------------------------------------
// Report

struct Report {
    opts: Opts,
    ours: Ours,
    anchors: Anchors,
    postgres: Result<PgColumn, String>,
    sled_flush: SledLoop,
    sled_gc: SledLoop,
    rss_end_kib: u64,
    load_at_start: String,
    wall: Duration,
}

/// One goal of docs/performance.md#the-goals as measured here.
struct Goal {
    id: &'static str,
    what: String,
    value: f64,
    unit: &'static str,
    /// (comparison, bound): ">=" or "<=".
    bound: (&'static str, f64),
}

impl Goal {
    fn met(&self) -> bool {
        match self.bound.0 {
            ">=" => self.value >= self.bound.1,
            _ => self.value <= self.bound.1,
        }
    }
}

fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        a / b
    } else {
        0.0
    }
}

fn ms(us: u64) -> f64 {
    round3(us as f64 / 1000.0)
}

fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

fn fmt_ms(us: u64) -> String {
    let ms = us as f64 / 1000.0;
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else {
        format!("{ms:.1} ms")
    }
}

fn fmt_ratio(r: f64) -> String {
    if r < 10.0 {
        format!("{r:.2}×")
    } else {
        format!("{r:.1}×")
    }
}

impl Report {
    /// (anchor label, ratio) pairs for each of our phases.
    fn ratios(&self) -> Vec<(&Phase, Vec<(&'static str, f64)>)> {
        let o = &self.ours;
        let a = &self.anchors;
        let (flush, gc) = (self.sled_flush.ops_per_s, self.sled_gc.ops_per_s);
        vec![
            (
                &o.create,
                vec![
                    ("insert+group commit", ratio(o.create.rps, a.insert_gc.rps)),
                    ("json-echo", ratio(o.create.rps, a.echo.rps)),
                    ("sled insert+flush", ratio(o.create.rps, flush)),
                    ("sled group commit", ratio(o.create.rps, gc)),
                ],
            ),
            (
                &o.update,
                vec![
                    ("txn+group commit", ratio(o.update.rps, a.txn_gc.rps)),
                    ("txn+flush", ratio(o.update.rps, a.txn_flush.rps)),
                    ("json-echo", ratio(o.update.rps, a.echo.rps)),
                    ("sled insert+flush", ratio(o.update.rps, flush)),
                ],
            ),
            (&o.read, vec![("json-echo", ratio(o.read.rps, a.echo.rps))]),
            (
                &o.replay,
                vec![
                    ("our read", ratio(o.replay.rps, o.read.rps)),
                    ("json-echo", ratio(o.replay.rps, a.echo.rps)),
                ],
            ),
            (
                &o.update_c1,
                vec![("sled insert+flush", ratio(o.update_c1.rps, flush))],
            ),
            (
                &o.update_c128,
                vec![
                    ("our update c=32", ratio(o.update_c128.rps, o.update.rps)),
                    ("txn+group commit", ratio(o.update_c128.rps, a.txn_gc.rps)),
                ],
            ),
        ]
    }

    fn goals(&self) -> Vec<Goal> {
        let o = &self.ours;
        let a = &self.anchors;
        let grown = |f: fn(&StoreCounts) -> u64| {
            f(&o.counts_after_replay).saturating_sub(f(&o.counts_before_replay)) as f64
        };
        vec![
            Goal {
                id: "G1",
                what: "update c=32 / anchor txn+group commit".into(),
                value: ratio(o.update.rps, a.txn_gc.rps),
                unit: "×",
                bound: (">=", 0.6),
            },
            Goal {
                id: "G2",
                what: "update c=32 / anchor txn+flush".into(),
                value: ratio(o.update.rps, a.txn_flush.rps),
                unit: "×",
                bound: (">=", 1.0),
            },
            Goal {
                id: "G3",
                what: "update p99 c=32 / anchor txn+group commit p99".into(),
                value: ratio(o.update.p99_us as f64, a.txn_gc.p99_us as f64),
                unit: "×",
                bound: ("<=", 2.0),
            },
            Goal {
                id: "G3",
                what: "update p50 at 1 connection".into(),
                value: ms(o.update_c1.p50_us),
                unit: " ms",
                bound: ("<=", 1.0),
            },
            Goal {
                id: "G4",
                what: "read / anchor json-echo".into(),
                value: ratio(o.read.rps, a.echo.rps),
                unit: "×",
                bound: (">=", 0.5),
            },
            Goal {
                id: "G5",
                what: "create / anchor insert+group commit".into(),
                value: ratio(o.create.rps, a.insert_gc.rps),
                unit: "×",
                bound: (">=", 0.6),
            },
            Goal {
                id: "G6",
                what: "replay / our read".into(),
                value: ratio(o.replay.rps, o.read.rps),
                unit: "×",
                bound: (">=", 0.8),
            },
            Goal {
                id: "G6",
                what: "orders + idempotency records added by the replay phase".into(),
                value: grown(|c| c.orders) + grown(|c| c.idempotency_records),
                unit: "",
                bound: ("<=", 0.0),
            },
            Goal {
                id: "G7",
                what: "update c=128 / update c=32".into(),
                value: ratio(o.update_c128.rps, o.update.rps),
                unit: "×",
                bound: (">=", 0.85),
            },
            Goal {
                id: "G7",
                what: "errors at 128 connections".into(),
                value: o.update_c128.errors as f64,
                unit: "",
                bound: ("<=", 0.0),
            },
            Goal {
                id: "G9",
                what: "disk per created order (with its idem. record) / order JSON".into(),
                value: ratio(self.bytes_per_order_after_create(), o.avg_order_json),
                unit: "×",
                bound: ("<=", 2.0),
            },
            Goal {
                id: "G10",
                what: "disk per update / anchor txn+group commit (one phase, not a soak)".into(),
                value: ratio(self.bytes_per_update(), a.txn_gc_bytes_per_update),
                unit: "×",
                bound: ("<=", 1.5),
            },
            Goal {
                id: "G12",
                what: "bench wall time (without compilation)".into(),
                value: round3(self.wall.as_secs_f64()),
                unit: " s",
                bound: ("<=", 300.0),
            },
        ]
    }

    fn bytes_per_order_after_create(&self) -> f64 {
        let o = &self.ours;
        ratio(
            o.disk_after_create.allocated as f64,
            o.counts_after_create.orders as f64,
        )
    }

    fn bytes_per_update(&self) -> f64 {
        let o = &self.ours;
        ratio(
            o.disk_after_update
                .allocated
                .saturating_sub(o.disk_before_update.allocated) as f64,
            o.update.ok_total as f64,
        )
    }

    fn print(&self) {
        println!();
        println!(
            "cpu = cores used by the load generator / by the rest of the process; \
             B = average request / response bytes; ratios are req/s over the named anchor's"
        );
        let row = |p: &Phase, ratios: &[(&str, f64)]| {
            let ratios: Vec<String> = ratios
                .iter()
                .map(|(n, r)| format!("vs {n} {}", fmt_ratio(*r)))
                .collect();
            println!(
                "{:<28} c={:<3} {:>9.0} req/s  p50 {:>8}  p99 {:>8}  errors {:<3} cpu {:.2}/{:.2}  {:>5}/{:<5}  | {}",
                p.name,
                p.conns,
                p.rps,
                fmt_ms(p.p50_us),
                fmt_ms(p.p99_us),
                p.errors,
                p.client_cores,
                p.server_cores,
                p.req_bytes.round(),
                p.resp_bytes.round(),
                ratios.join("  "),
            );
            for (m, n) in &p.error_samples {
                println!("    {n} × {m}");
            }
        };
        let a = &self.anchors;
        for p in [&a.echo, &a.insert_gc, &a.txn_flush, &a.txn_gc] {
            row(p, &[]);
        }
        for s in [&self.sled_flush, &self.sled_gc] {
            println!(
                "{:<28} t={:<3} {:>9.0} ops/s  p50 {:>8}  p99 {:>8}  errors {}",
                s.name,
                s.threads,
                s.ops_per_s,
                fmt_ms(s.p50_us),
                fmt_ms(s.p99_us),
                s.errors
            );
        }
        for (p, ratios) in self.ratios() {
            let name = format!("fast-seller {}", p.name);
            let shown = Phase { name, ..p.clone() };
            row(&shown, &ratios);
        }
        self.print_postgres();
        let o = &self.ours;
        println!();
        println!(
            "replay: {} of {} measured answers marked Idempotent-Replayed; store {} orders / {} idempotency records before, {} / {} after",
            o.replay.replayed,
            o.replay.requests,
            o.counts_before_replay.orders,
            o.counts_before_replay.idempotency_records,
            o.counts_after_replay.orders,
            o.counts_after_replay.idempotency_records,
        );
        println!(
            "storage after create: {} orders + {} idempotency records (each with its answer), {:.1} MiB on disk ({:.1} MiB apparent), {:.0} B per order vs {:.0} B order JSON = {}",
            o.counts_after_create.orders,
            o.counts_after_create.idempotency_records,
            mib(o.disk_after_create.allocated),
            mib(o.disk_after_create.apparent),
            self.bytes_per_order_after_create(),
            o.avg_order_json,
            fmt_ratio(ratio(self.bytes_per_order_after_create(), o.avg_order_json)),
        );
        println!(
            "disk growth per update (update c=32 phase incl. warm-up, {} updates): {:.0} B; anchor txn+group commit {:.0} B = {}",
            o.update.ok_total,
            self.bytes_per_update(),
            self.anchors.txn_gc_bytes_per_update,
            fmt_ratio(ratio(self.bytes_per_update(), self.anchors.txn_gc_bytes_per_update)),
        );
        println!(
            "storage at the end: {} orders, {} idempotency records, {} outbox entries, {:.1} MiB on disk = {:.0} B per order",
            o.counts_end.orders,
            o.counts_end.idempotency_records,
            o.counts_end.outbox_entries,
            mib(o.disk_end.allocated),
            ratio(o.disk_end.allocated as f64, o.counts_end.orders as f64),
        );
        println!(
            "RSS of the whole bench process (fast-seller, client, anchors): {:.1} MiB after the HTTP phases, {:.1} MiB at the end",
            self.ours.rss_kib as f64 / 1024.0,
            self.rss_end_kib as f64 / 1024.0,
        );
        println!();
        println!("goals (docs/performance.md#the-goals; ratios from this run):");
        for g in self.goals() {
            println!(
                "  {:<4} {:<62} {:>8.2}{:<3} (goal {} {}{})  {}",
                g.id,
                g.what,
                g.value,
                g.unit,
                g.bound.0,
                g.bound.1,
                g.unit,
                if g.met() { "met" } else { "NOT MET" }
            );
        }
        println!(
            "  G8, G11 (1M orders, cold open) and G10's 3-minute soak are not measured by this bench."
        );
        println!();
        println!(
            "bench wall time {:.1} s; load average at the end: {}",
            self.wall.as_secs_f64(),
            load_average()
        );
    }

    /// sled and PostgreSQL side by side: the same phases of this run.
    fn pg_pairs(&self) -> Option<[(&Phase, &Phase); 3]> {
        let pg = self.postgres.as_ref().ok()?;
        let o = &self.ours;
        Some([
            (&o.create, &pg.create),
            (&o.update, &pg.update),
            (&o.read, &pg.read),
        ])
    }

    fn print_postgres(&self) {
        println!();
        let Some(pairs) = self.pg_pairs() else {
            if let Err(e) = &self.postgres {
                println!("PostgreSQL column: not measured ({e})");
            }
            return;
        };
        println!(
            "store        c={CONNS}   sled req/s  sled p99   PostgreSQL req/s  PostgreSQL p99   PostgreSQL / sled"
        );
        for (sled, pg) in pairs {
            println!(
                "{:<18} {:>10.0}  {:>9}  {:>16.0}  {:>14}   {}  (errors {} / {})",
                sled.name,
                sled.rps,
                fmt_ms(sled.p99_us),
                pg.rps,
                fmt_ms(pg.p99_us),
                fmt_ratio(ratio(pg.rps, sled.rps)),
                sled.errors,
                pg.errors,
            );
        }
    }

    fn write_json(&self) {
        let o = &self.ours;
        let phases: Vec<Value> = self
            .ratios()
            .into_iter()
            .map(|(p, ratios)| {
                let mut v = p.json();
                v["ratios"] = ratios
                    .iter()
                    .map(|(n, r)| ((*n).to_string(), json!(round3(*r))))
                    .collect::<serde_json::Map<_, _>>()
                    .into();
                v
            })
            .collect();
        let a = &self.anchors;
        let goals: Vec<Value> = self
            .goals()
            .iter()
            .map(|g| {
                json!({
                    "id": g.id,
                    "what": g.what,
                    "value": round3(g.value),
                    "goal": format!("{} {}", g.bound.0, g.bound.1),
                    "met": g.met(),
                })
            })
            .collect();
        let doc = json!({
            "bench": "http",
            "quick": self.opts.quick,
            "phase_seconds": self.opts.run.as_secs_f64(),
            "warmup_seconds": self.opts.warmup.as_secs_f64(),
            "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "anchors": {
                "json_echo": a.echo.json(),
                "insert_group_commit": a.insert_gc.json(),
                "txn_flush": a.txn_flush.json(),
                "txn_group_commit": a.txn_gc.json(),
                "sled_insert_flush": self.sled_flush.json(),
                "sled_insert_group_commit": self.sled_gc.json(),
            },
            "phases": phases,
            "replay": {
                "replayed_answers": o.replay.replayed,
                "counts_before": counts_json(&o.counts_before_replay),
                "counts_after": counts_json(&o.counts_after_replay),
            },
            "storage": {
                "after_create": {
                    "orders": o.counts_after_create.orders,
                    "allocated_bytes": o.disk_after_create.allocated,
                    "apparent_bytes": o.disk_after_create.apparent,
                    "bytes_per_order": self.bytes_per_order_after_create().round(),
                    "order_json_bytes": o.avg_order_json.round(),
                },
                "bytes_per_update": self.bytes_per_update().round(),
                "anchor_txn_group_commit_bytes_per_update": self.anchors.txn_gc_bytes_per_update.round(),
                "end": {
                    "counts": counts_json(&o.counts_end),
                    "allocated_bytes": o.disk_end.allocated,
                    "apparent_bytes": o.disk_end.apparent,
                    "bytes_per_order": ratio(o.disk_end.allocated as f64, o.counts_end.orders as f64).round(),
                },
            },
            "postgres": match (&self.postgres, self.pg_pairs()) {
                (_, Some(pairs)) => pairs
                    .iter()
                    .map(|(sled, pg)| {
                        json!({"sled": sled.json(), "postgres": pg.json(),
                               "postgres_over_sled": round3(ratio(pg.rps, sled.rps))})
                    })
                    .collect::<Vec<_>>()
                    .into(),
                (Err(e), None) => json!({"skipped": e}),
                (Ok(_), None) => Value::Null,
            },
            "rss_kib_after_http_phases": o.rss_kib,
            "rss_kib_end": self.rss_end_kib,
            "goals": goals,
            "wall_seconds": round3(self.wall.as_secs_f64()),
            "load_average_at_start": self.load_at_start,
            "load_average_at_end": load_average(),
        });
        let dir = std::env::var_os("CARGO_TARGET_DIR")
            .map(PathBuf::from)
            .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("target"));
        let path = dir.join("bench-http.json");
        let text = serde_json::to_string_pretty(&doc).expect("the report serializes");
        match std::fs::create_dir_all(&dir).and_then(|()| std::fs::write(&path, text)) {
            Ok(()) => println!("wrote {}", path.display()),
            Err(e) => eprintln!("[bench] cannot write {}: {e}", path.display()),
        }
    }
}

fn counts_json(c: &StoreCounts) -> Value {
    json!({
        "orders": c.orders,
        "idempotency_records": c.idempotency_records,
        "outbox_entries": c.outbox_entries,
    })
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0)
}
