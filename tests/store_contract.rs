//! STORE-01: one contract suite for every [`Store`], run against sled (a temp directory) and
//! PostgreSQL (a fresh schema per test, dropped afterwards), plus PostgreSQL-only tests of
//! concurrency between instances (STORE-07), migrations and error hygiene.
//!
//! PostgreSQL comes from `FAST_SELLER_TEST_PG` (default
//! `postgres://postgres@127.0.0.1:5432/test`); when it is unreachable the PostgreSQL tests
//! fail, they never skip.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use fast_seller::clock::{Clock, ManualClock};
use fast_seller::metrics::Metrics;
use fast_seller::service::{Pruned, Service, ServiceSettings};
use fast_seller::store::postgres::{redact_url, PgStore};
use fast_seller::store::sled::SledStore;
use fast_seller::store::{
    Attempt, Commit, IdempotencyKey, IdempotencyRecord, ImportBatch, InFlightClaim, NextStep,
    OrderRecord, OrderWrite, OutboxEntry, OutboxItem, OutboxState, Store, StoreCounts, StoreError,
};
use tempfile::TempDir;

const CACHE: u64 = 8 * 1024 * 1024;

#[path = "common/pg.rs"]
mod pg;
use pg::{pg_url, raw_client, PgSchema};
/// Where a test's store lives: a temp directory, or a fresh PostgreSQL schema.
enum Harness {
    Sled(TempDir),
    Pg(PgSchema),
}

impl Harness {
    fn sled() -> Harness {
        Harness::Sled(TempDir::new().expect("temp dir"))
    }

    async fn pg() -> Harness {
        Harness::Pg(PgSchema::create().await)
    }

    /// Bytes the store takes on disk: the sled directory, or the PostgreSQL schema's tables
    /// with their indexes and TOAST.
    async fn disk_bytes(&self) -> u64 {
        match self {
            Harness::Sled(dir) => dir_bytes(dir.path()),
            Harness::Pg(schema) => {
                let row = raw_client()
                    .await
                    .query_one(
                        "SELECT COALESCE(sum(pg_total_relation_size(c.oid)), 0)::bigint \
                         FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace \
                         WHERE n.nspname = $1 AND c.relkind = 'r'",
                        &[&schema.name],
                    )
                    .await
                    .expect("table sizes");
                u64::try_from(row.get::<_, i64>(0)).unwrap_or(0)
            }
        }
    }

    /// What PostgreSQL's autovacuum does in the background (a test is over before it runs):
    /// marks the space of deleted rows reusable. sled needs nothing.
    async fn vacuum(&self) {
        if let Harness::Pg(schema) = self {
            raw_client()
                .await
                .batch_execute(&format!(
                    "VACUUM {0}.orders, {0}.idempotency, {0}.outbox, {0}.outbox_attempts",
                    schema.name
                ))
                .await
                .expect("vacuum");
        }
    }

    /// Opens the store (again): reopening is how durability is checked. A sled store must be
    /// dropped before it is reopened.
    async fn open(&self) -> Arc<dyn Store> {
        match self {
            Harness::Sled(dir) => Arc::new(SledStore::open(dir.path(), CACHE).expect("open")),
            Harness::Pg(schema) => Arc::new(schema.open().await),
        }
    }
}

// ---- fixtures ----

fn order(id: &str, external_ids: &[&str], version: u64) -> OrderRecord {
    OrderRecord {
        id: id.into(),
        external_ids: external_ids.iter().map(|s| s.to_string()).collect(),
        version,
        body: format!("{{\"id\":\"{id}\",\"v\":{version}}}").into_bytes(),
    }
}

fn key(request_id: &str) -> IdempotencyKey {
    IdempotencyKey {
        app_id: "app".into(),
        request_id: request_id.into(),
    }
}

fn answer(created_at_ms: u64) -> IdempotencyRecord {
    IdempotencyRecord {
        fingerprint: [7; 32],
        status: 201,
        // Not UTF-8: bodies are bytes.
        body: vec![0xff, 0x00, b'{', b'}'],
        created_at_ms,
    }
}

fn event(id: &str, order_id: &str, sequence: u64) -> OutboxEntry {
    OutboxEntry {
        id: id.into(),
        order_id: order_id.into(),
        sequence,
        event_type: "order.converted".into(),
        body: b"{\"type\":\"order.converted\"}\xff".to_vec(),
        created_at_ms: 1_000 + sequence,
    }
}

fn write(record: OrderRecord, expected_version: Option<u64>, request_id: &str) -> Commit {
    Commit {
        order: Some(OrderWrite {
            record,
            expected_version,
        }),
        idempotency: Some((key(request_id), answer(1_000))),
        outbox: Vec::new(),
    }
}

fn counts(orders: u64, idempotency_records: u64, outbox_entries: u64) -> StoreCounts {
    StoreCounts {
        orders,
        idempotency_records,
        outbox_entries,
        outbox_pending: outbox_entries,
        outbox_dead: 0,
    }
}

fn attempt(at_ms: u64, delivered: bool) -> Attempt {
    Attempt {
        at_ms,
        latency_ms: 3,
        delivered,
        status: Some(if delivered { 200 } else { 503 }),
        detail: "test".into(),
    }
}

/// Ids claimable at `now`, without a lease (a lease of 0 holds nothing back), so that both
/// stores answer alike.
async fn due_ids(store: &dyn Store, now: u64) -> Vec<String> {
    let items = store.outbox_claim(now, 100, 0).await.expect("claim");
    items.into_iter().map(|i| i.entry.id).collect()
}

// ---- the contract ----

async fn commit_then_read_back(h: Harness) {
    let store = h.open().await;
    let mut commit = write(order("o1", &["e1"], 1), None, "r1");
    commit.outbox = vec![event("ev1", "o1", 1), event("ev2", "o1", 2)];
    store.commit(commit.clone()).await.unwrap();

    assert_eq!(
        store.get_order("o1").await.unwrap(),
        Some(order("o1", &["e1"], 1))
    );
    assert_eq!(
        store.get_idempotency(&key("r1")).await.unwrap(),
        Some(answer(1_000))
    );
    for entry in &commit.outbox {
        let (item, attempts) = store.outbox_get(&entry.id).await.unwrap().unwrap();
        assert_eq!(&item.entry, entry);
        assert_eq!(item.state, OutboxState::Pending);
        assert_eq!((item.attempts, item.failures), (0, 0));
        assert_eq!(item.next_attempt_ms, entry.created_at_ms);
        assert!(attempts.is_empty());
    }
    assert_eq!(store.counts().await.unwrap(), counts(1, 1, 2));
    assert_eq!(store.outbox_backlog().await.unwrap(), (2, 0));
    assert_eq!(store.get_order("missing").await.unwrap(), None);
    assert_eq!(store.get_idempotency(&key("missing")).await.unwrap(), None);
    let other_app = IdempotencyKey {
        app_id: "other".into(),
        request_id: "r1".into(),
    };
    assert_eq!(store.get_idempotency(&other_app).await.unwrap(), None);
    assert_eq!(store.outbox_get("missing").await.unwrap(), None);
    // An empty commit changes nothing.
    store.commit(Commit::default()).await.unwrap();
    assert_eq!(store.counts().await.unwrap(), counts(1, 1, 2));
}

async fn create_of_existing_order_conflicts_and_writes_nothing(h: Harness) {
    let store = h.open().await;
    store
        .commit(write(order("o1", &["e1"], 1), None, "r1"))
        .await
        .unwrap();

    let mut again = write(order("o1", &["e2"], 1), None, "r2");
    again.outbox = vec![event("ev9", "o1", 9)];
    let err = store.commit(again).await.unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err:?}");

    assert_eq!(store.get_idempotency(&key("r2")).await.unwrap(), None);
    assert_eq!(store.find_order_by_external_id("e2").await.unwrap(), None);
    assert_eq!(store.outbox_get("ev9").await.unwrap(), None);
    assert_eq!(
        store.get_order("o1").await.unwrap(),
        Some(order("o1", &["e1"], 1))
    );
    assert_eq!(store.counts().await.unwrap(), counts(1, 1, 0));
}

async fn stale_version_conflicts(h: Harness) {
    let store = h.open().await;
    store
        .commit(write(order("o1", &["e1"], 1), None, "r1"))
        .await
        .unwrap();

    let err = store
        .commit(write(order("o1", &["e1"], 2), Some(5), "r2"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err:?}");
    store
        .commit(write(order("o1", &["e1"], 2), Some(1), "r3"))
        .await
        .unwrap();
    let err = store
        .commit(write(order("o1", &["e1"], 3), Some(1), "r4"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err:?}");
    // An update of an order that does not exist conflicts too.
    let err = store
        .commit(write(order("o2", &["x"], 2), Some(1), "r5"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::Conflict), "{err:?}");

    assert_eq!(store.get_order("o1").await.unwrap().unwrap().version, 2);
    assert_eq!(store.get_order("o2").await.unwrap(), None);
    assert_eq!(store.find_order_by_external_id("x").await.unwrap(), None);
    assert_eq!(store.get_idempotency(&key("r2")).await.unwrap(), None);
    assert_eq!(store.get_idempotency(&key("r4")).await.unwrap(), None);
    assert_eq!(store.get_idempotency(&key("r5")).await.unwrap(), None);
    assert_eq!(store.counts().await.unwrap(), counts(1, 2, 0));
}

async fn duplicate_request_id_writes_nothing(h: Harness) {
    let store = h.open().await;
    store
        .commit(write(order("o1", &["e1"], 1), None, "r1"))
        .await
        .unwrap();

    let mut dup = write(order("o2", &["e2"], 1), None, "r1");
    dup.idempotency = Some((key("r1"), answer(5_000)));
    dup.outbox = vec![event("ev1", "o2", 1)];
    let err = store.commit(dup).await.unwrap_err();
    assert!(matches!(err, StoreError::DuplicateRequest), "{err:?}");

    // The duplicate of an update (expected version matches) writes nothing either.
    let err = store
        .commit(write(order("o1", &["e3"], 2), Some(1), "r1"))
        .await
        .unwrap_err();
    assert!(matches!(err, StoreError::DuplicateRequest), "{err:?}");

    assert_eq!(store.get_order("o2").await.unwrap(), None);
    assert_eq!(store.find_order_by_external_id("e2").await.unwrap(), None);
    assert_eq!(store.find_order_by_external_id("e3").await.unwrap(), None);
    assert_eq!(
        store.get_order("o1").await.unwrap(),
        Some(order("o1", &["e1"], 1))
    );
    assert_eq!(
        store.get_idempotency(&key("r1")).await.unwrap(),
        Some(answer(1_000))
    );
    assert_eq!(store.outbox_get("ev1").await.unwrap(), None);
    assert_eq!(store.counts().await.unwrap(), counts(1, 1, 0));
}

async fn finds_order_by_every_external_id_ever_used(h: Harness) {
    let store = h.open().await;
    store
        .commit(write(order("o1", &["a1", "a2"], 1), None, "r1"))
        .await
        .unwrap();
    store
        .commit(write(order("o1", &["b1"], 2), Some(1), "r2"))
        .await
        .unwrap();
    // The same id twice, and an update without an idempotency record.
    store
        .commit(Commit {
            order: Some(OrderWrite {
                record: order("o1", &["c1", "c1", "b1"], 3),
                expected_version: Some(2),
            }),
            ..Commit::default()
        })
        .await
        .unwrap();

    let current = order("o1", &["c1", "c1", "b1"], 3);
    for ext in ["a1", "a2", "b1", "c1"] {
        let found = store.find_order_by_external_id(ext).await.unwrap();
        assert_eq!(found.as_ref(), Some(&current), "{ext}");
    }
    assert_eq!(store.find_order_by_external_id("zz").await.unwrap(), None);
    assert_eq!(store.get_order("o1").await.unwrap(), Some(current));
    assert_eq!(store.counts().await.unwrap(), counts(1, 2, 0));
}

async fn prune_removes_only_older_records(h: Harness) {
    let store = h.open().await;
    for (request_id, created_at_ms) in [("old", 1_000), ("edge", 2_000), ("new", 3_000)] {
        let commit = Commit {
            idempotency: Some((key(request_id), answer(created_at_ms))),
            ..Commit::default()
        };
        store.commit(commit).await.unwrap();
    }

    assert_eq!(store.prune_idempotency(2_000, 100).await.unwrap(), 1);
    assert_eq!(store.get_idempotency(&key("old")).await.unwrap(), None);
    assert_eq!(
        store.get_idempotency(&key("edge")).await.unwrap(),
        Some(answer(2_000))
    );
    assert_eq!(
        store.get_idempotency(&key("new")).await.unwrap(),
        Some(answer(3_000))
    );
    assert_eq!(store.counts().await.unwrap(), counts(0, 2, 0));
    assert_eq!(store.prune_idempotency(2_000, 100).await.unwrap(), 0);
    // At most `limit` per call, oldest first.
    assert_eq!(store.prune_idempotency(u64::MAX, 1).await.unwrap(), 1);
    assert_eq!(store.get_idempotency(&key("edge")).await.unwrap(), None);
    assert_eq!(store.prune_idempotency(u64::MAX, 100).await.unwrap(), 1);
    assert_eq!(store.counts().await.unwrap(), counts(0, 0, 0));
    // A pruned key can be recorded again.
    let commit = Commit {
        idempotency: Some((key("old"), answer(4_000))),
        ..Commit::default()
    };
    store.commit(commit).await.unwrap();
    assert_eq!(
        store.get_idempotency(&key("old")).await.unwrap(),
        Some(answer(4_000))
    );
}

/// Delivered entries go once their delivery (not their creation) is older than the cut-off,
/// with their attempt logs, oldest delivery first and at most `limit` per call; pending and
/// dead entries stay whatever their age, and the queue works on as before.
async fn prune_outbox_removes_only_delivered_entries_past_the_cutoff(h: Harness) {
    let store = h.open().await;
    let commit = Commit {
        outbox: vec![
            event("a1", "A", 1),
            event("a2", "A", 2),
            event("b1", "B", 1),
            event("c1", "C", 1),
            event("d1", "D", 1),
        ],
        ..Commit::default()
    };
    store.commit(commit).await.unwrap();
    let record = |id: &'static str, at: u64, next: NextStep| {
        let store = store.clone();
        async move {
            let delivered = next == NextStep::Delivered;
            store
                .outbox_record(id, attempt(at, delivered), next)
                .await
                .unwrap();
        }
    };
    record("a1", 1_500, NextStep::RetryAt(1_600)).await;
    record("a1", 2_000, NextStep::Delivered).await;
    record("d1", 2_500, NextStep::Delivered).await;
    record("a2", 5_000, NextStep::Delivered).await;
    record("b1", 1_800, NextStep::Dead).await;

    assert_eq!(
        store.prune_outbox(2_000, 10).await.unwrap(),
        0,
        "strictly before"
    );
    assert_eq!(store.prune_outbox(3_000, 1).await.unwrap(), 1, "bounded");
    assert_eq!(store.outbox_get("a1").await.unwrap(), None, "oldest first");
    assert!(store.outbox_get("d1").await.unwrap().is_some());
    assert_eq!(store.prune_outbox(3_000, 10).await.unwrap(), 1);
    assert_eq!(store.prune_outbox(3_000, 10).await.unwrap(), 0);
    let (a2, log) = store.outbox_get("a2").await.unwrap().unwrap();
    assert_eq!(
        (a2.state, log),
        (OutboxState::Delivered, vec![attempt(5_000, true)])
    );
    assert_eq!(
        store.counts().await.unwrap(),
        StoreCounts {
            orders: 0,
            idempotency_records: 0,
            outbox_entries: 3,
            outbox_pending: 1,
            outbox_dead: 1,
        }
    );
    assert_eq!(due_ids(&*store, 10_000).await, ["c1"]);

    // Whatever the cut-off, only delivered entries go.
    assert_eq!(store.prune_outbox(u64::MAX, 10).await.unwrap(), 1);
    let left = store.outbox_after(None, 10).await.unwrap();
    let ids: Vec<_> = left.iter().map(|(i, _)| i.entry.id.as_str()).collect();
    assert_eq!(ids, ["b1", "c1"]);

    // The attempt log went with its entry: an entry imported under a pruned id starts with
    // an empty log.
    let fresh = OutboxItem {
        entry: event("a1", "A2", 1),
        state: OutboxState::Pending,
        attempts: 0,
        failures: 0,
        next_attempt_ms: 1,
    };
    store
        .import(ImportBatch {
            outbox: vec![(fresh.clone(), vec![])],
            ..ImportBatch::default()
        })
        .await
        .unwrap();
    assert_eq!(store.outbox_get("a1").await.unwrap(), Some((fresh, vec![])));
}

/// Imported delivered entries are pruned by the time of their delivering attempt.
async fn imported_delivered_entries_are_pruned_by_their_delivery(h: Harness) {
    let store = h.open().await;
    store.import(imported_batch()).await.unwrap();
    // q1 was delivered at 1_500 (its attempt); nothing else is delivered.
    assert_eq!(store.prune_outbox(1_500, 10).await.unwrap(), 0);
    assert_eq!(store.prune_outbox(1_501, 10).await.unwrap(), 1);
    assert_eq!(store.outbox_get("q1").await.unwrap(), None);
    assert_eq!(store.counts().await.unwrap().outbox_entries, 3);
}

/// `store stats` and the store gauges: rows per kind, outbox events per state, bytes that
/// follow what is stored.
async fn stats_count_rows_and_bytes_per_kind(h: Harness) {
    let store = h.open().await;
    let empty = store.stats().await.unwrap();
    assert_eq!(empty.live_bytes(), 0, "{empty:?}");
    assert_eq!(empty.space_amplification(), None);
    let mut commit = write(order("o1", &["e1"], 1), None, "r1");
    commit.outbox = vec![
        event("s1", "o1", 1),
        event("s2", "o1", 2),
        event("s3", "o3", 1),
    ];
    store.commit(commit).await.unwrap();
    store
        .commit(write(order("o2", &["e2"], 1), None, "r2"))
        .await
        .unwrap();
    store
        .outbox_record("s1", attempt(2_000, true), NextStep::Delivered)
        .await
        .unwrap();
    store
        .outbox_record("s3", attempt(2_000, false), NextStep::Dead)
        .await
        .unwrap();

    let stats = store.stats().await.unwrap();
    let kind = |name: &str| {
        stats
            .kinds
            .iter()
            .find(|k| k.kind == name)
            .unwrap_or_else(|| panic!("no kind {name}: {stats:?}"))
            .clone()
    };
    assert_eq!(kind("orders").rows, 2);
    assert_eq!(kind("idempotency").rows, 2);
    assert_eq!(kind("outbox").rows, 3);
    assert_eq!(kind("outbox_attempts").rows, 2);
    assert_eq!(
        (
            stats.outbox_pending,
            stats.outbox_delivered,
            stats.outbox_dead
        ),
        (1, 1, 1)
    );
    for name in ["orders", "idempotency", "outbox", "outbox_attempts"] {
        assert!(kind(name).live_bytes > 0, "{name}: {stats:?}");
    }
    assert!(stats.disk_bytes > 0, "{stats:?}");
    assert!(stats.space_amplification().is_some_and(|a| a > 0.0));

    // What is pruned leaves the stats.
    store.prune_outbox(u64::MAX, 10).await.unwrap();
    store.prune_idempotency(u64::MAX, 10).await.unwrap();
    let after = store.stats().await.unwrap();
    let rows = |name: &str| {
        after
            .kinds
            .iter()
            .find(|k| k.kind == name)
            .map(|k| (k.rows, k.live_bytes))
    };
    assert_eq!(rows("idempotency"), Some((0, 0)));
    assert_eq!(rows("outbox").map(|r| r.0), Some(2));
    assert_eq!(rows("outbox_attempts").map(|r| r.0), Some(1));
    assert_eq!(after.outbox_delivered, 0);
}

// ---- retention under steady traffic ----

/// Days of traffic in [`steady_traffic_stays_the_size_of_its_window`].
const DAYS: u64 = 24;
/// Idempotency records and delivered events are kept this many days.
const RETENTION_DAYS: u64 = 2;
/// Orders updated, round-robin: the live data, which does not grow.
const CARTS: usize = 40;
/// Updates per day (each with its stored answer) and events delivered per day.
const UPDATES: usize = 400;
const EVENTS: usize = 80;
const DAY_MS: u64 = 24 * 3600 * 1000;

/// An order of about 2 KB of JSON that compresses like a real one (repeated keys, varying
/// values).
fn cart_json(cart: usize, version: u64) -> Vec<u8> {
    let mut x = (cart as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15) ^ version;
    let mut next = || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    let lines: Vec<String> = (0..12)
        .map(|i| {
            format!(
                "{{\"id\":{{\"value\":\"li-{:016x}\"}},\"productId\":\"sku-{}\",\
                 \"quantity\":{},\"price\":{{\"amount\":\"{}.{:02}\",\"currency\":\"USD\"}},\
                 \"externalId\":\"{:x}\"}}",
                next(),
                i * 7 + cart % 5,
                next() % 9 + 1,
                next() % 500,
                next() % 100,
                next()
            )
        })
        .collect();
    format!(
        "{{\"id\":{{\"value\":\"cart-{cart}\"}},\"version\":{version},\"lineItems\":[{}]}}",
        lines.join(",")
    )
    .into_bytes()
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &std::path::Path) -> u64 {
    std::fs::read_dir(dir)
        .expect("read data dir")
        .map(|e| {
            let e = e.expect("dir entry");
            let meta = e.metadata().expect("metadata");
            if meta.is_dir() {
                dir_bytes(&e.path())
            } else {
                meta.len()
            }
        })
        .sum()
}

/// One day of traffic at `now`: every cart updated in turn (each update stored with its
/// answer), and events queued and delivered.
async fn one_day(
    store: &Arc<dyn Store>,
    day: u64,
    now: u64,
    versions: &mut [u64],
    seqs: &mut [u64],
) {
    for chunk in 0..UPDATES / CARTS {
        let commits = (0..CARTS).map(|cart| {
            let version = versions[cart] + 1;
            let record = OrderRecord {
                id: format!("cart-{cart}"),
                external_ids: vec![format!("ext-{cart}")],
                version,
                body: cart_json(cart, version),
            };
            let mut commit = write(
                record,
                (version > 1).then_some(version - 1),
                &format!("d{day}-c{chunk}-{cart}"),
            );
            if let Some((_, answer)) = &mut commit.idempotency {
                answer.created_at_ms = now;
                answer.body = cart_json(cart, version);
            }
            if chunk * CARTS + cart < EVENTS {
                seqs[cart] += 1;
                commit.outbox = vec![OutboxEntry {
                    id: format!("ev-{day:03}-{chunk:03}-{cart:03}"),
                    order_id: format!("cart-{cart}"),
                    sequence: seqs[cart],
                    event_type: "order.status_changed".into(),
                    body: cart_json(cart, version),
                    created_at_ms: now,
                }];
            }
            versions[cart] = version;
            let store = store.clone();
            async move { store.commit(commit).await }
        });
        for result in futures_util::future::join_all(commits.collect::<Vec<_>>()).await {
            result.expect("commit");
        }
    }
    loop {
        let due = store.outbox_claim(now, 1_000, 0).await.expect("claim");
        if due.is_empty() {
            break;
        }
        for item in due {
            store
                .outbox_record(&item.entry.id, attempt(now, true), NextStep::Delivered)
                .await
                .expect("deliver");
        }
    }
}

/// Storage that stays the size of the live data: steady traffic (every cart updated with
/// its stored answer, events queued and delivered) for [`DAYS`] days, with idempotency
/// records and delivered events kept [`RETENTION_DAYS`] days and pruned by the service on
/// the injected clock. Once the window is full the row counts are level, every day, and the
/// space of what expires is reused ([`steady_disk_is_bounded`]).
async fn steady_traffic_stays_the_size_of_its_window(h: Harness) {
    let store = h.open().await;
    let clock = Arc::new(ManualClock::new(20_000 * DAY_MS));
    let retention = Duration::from_millis(RETENTION_DAYS * DAY_MS);
    let service = Service::new(
        store.clone(),
        Arc::new(fast_seller::catalog::SharedCatalog::new(
            fast_seller::catalog::load(None).expect("demo catalog"),
            "demo",
            0,
        )),
        clock.clone(),
        ServiceSettings {
            idempotency_retention: retention,
            outbox_retention: retention,
            ..ServiceSettings::default()
        },
        Arc::new(tokio::sync::Notify::new()),
        Arc::new(Metrics::new().expect("metrics")),
    );
    let (mut versions, mut seqs) = (vec![0; CARTS], vec![0; CARTS]);
    let mut disk = Vec::new();
    for day in 0..DAYS {
        one_day(&store, day, clock.now_ms(), &mut versions, &mut seqs).await;
        clock.advance_ms(DAY_MS);
        let pruned = service.prune().await.expect("prune");
        let expired = if day >= RETENTION_DAYS { 1 } else { 0 };
        assert_eq!(
            pruned,
            Pruned {
                idempotency_records: expired * UPDATES as u64,
                outbox_entries: expired * EVENTS as u64,
            },
            "day {day}: what expired a day ago is pruned, nothing else"
        );
        let kept = (day + 1).min(RETENTION_DAYS);
        assert_eq!(
            store.counts().await.expect("counts"),
            StoreCounts {
                orders: CARTS as u64,
                idempotency_records: kept * UPDATES as u64,
                outbox_entries: kept * EVENTS as u64,
                outbox_pending: 0,
                outbox_dead: 0,
            },
            "day {day}: the store holds the retention window, no more"
        );
        h.vacuum().await;
        disk.push(h.disk_bytes().await);
    }
    eprintln!("disk bytes after each day: {disk:?}");
    steady_disk_is_bounded(&disk);
}

/// The store stops growing once the window is full: the largest size over the second half
/// of the days is less than 1.5 times the largest over the first half (growing with the
/// traffic, as before pruning, it would be about twice). sled's files move up and down by
/// whole segments (512 KiB), so single days are not compared; measured, the second half
/// stays within one segment of the first.
fn steady_disk_is_bounded(disk: &[u64]) {
    let (first, second) = disk.split_at(disk.len() / 2);
    let max = |days: &[u64]| days.iter().copied().max().unwrap_or(0);
    assert!(
        max(second) * 2 < max(first) * 3,
        "the store kept growing: at most {} bytes over the first {} days, {} over the last {} \
         ({disk:?})",
        max(first),
        first.len(),
        max(second),
        second.len()
    );
}

async fn data_survives_reopen(h: Harness) {
    let mut commit = write(order("o1", &["e1"], 1), None, "r1");
    commit.outbox = vec![event("ev1", "o1", 1)];
    {
        let store = h.open().await;
        store.commit(commit).await.unwrap();
        store.flush().await.unwrap();
    }
    let store = h.open().await;
    assert_eq!(
        store.find_order_by_external_id("e1").await.unwrap(),
        Some(order("o1", &["e1"], 1))
    );
    assert_eq!(
        store.get_idempotency(&key("r1")).await.unwrap(),
        Some(answer(1_000))
    );
    let (item, _) = store.outbox_get("ev1").await.unwrap().unwrap();
    assert_eq!(item.entry, event("ev1", "o1", 1));
    assert_eq!(store.counts().await.unwrap(), counts(1, 1, 1));
}

async fn concurrent_commits_all_succeed(h: Harness) {
    let store = h.open().await;
    let tasks: Vec<_> = (0..32)
        .map(|i| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                let id = format!("o{i}");
                let mut commit = write(order(&id, &[&format!("e{i}")], 1), None, &format!("r{i}"));
                commit.outbox = vec![event(&format!("ev{i}"), &id, 1)];
                store.commit(commit).await
            })
        })
        .collect();
    for task in tasks {
        task.await.unwrap().unwrap();
    }
    for i in 0..32 {
        let id = format!("o{i}");
        let found = store
            .find_order_by_external_id(&format!("e{i}"))
            .await
            .unwrap();
        assert_eq!(found, Some(order(&id, &[&format!("e{i}")], 1)));
        assert!(store
            .get_idempotency(&key(&format!("r{i}")))
            .await
            .unwrap()
            .is_some());
    }
    assert_eq!(store.counts().await.unwrap(), counts(32, 32, 32));
    store.flush().await.unwrap();
}

/// Only the oldest undelivered event of an order is due; other orders are not blocked.
async fn outbox_is_fifo_per_order_and_retries_keep_the_order(h: Harness) {
    let store = h.open().await;
    assert_eq!(store.outbox_next_due().await.unwrap(), None);
    let commit = Commit {
        outbox: vec![
            event("a1", "A", 1),
            event("a2", "A", 2),
            event("b1", "B", 1),
        ],
        ..Commit::default()
    };
    store.commit(commit).await.unwrap();
    assert_eq!(store.outbox_next_due().await.unwrap(), Some(1_001));
    assert!(due_ids(&*store, 1_000).await.is_empty(), "nothing due yet");
    assert_eq!(due_ids(&*store, 10_000).await, vec!["a1", "b1"]);
    let limited = store.outbox_claim(10_000, 1, 0).await.unwrap();
    assert_eq!(limited.len(), 1);
    assert_eq!(limited[0].entry.id, "a1");
    assert!(store.outbox_claim(10_000, 0, 0).await.unwrap().is_empty());

    store
        .outbox_record("a1", attempt(10_000, false), NextStep::RetryAt(15_000))
        .await
        .unwrap();
    assert_eq!(
        due_ids(&*store, 10_000).await,
        vec!["b1"],
        "a2 waits behind a1"
    );
    assert_eq!(due_ids(&*store, 15_000).await, vec!["b1", "a1"]);
    store
        .outbox_record("a1", attempt(15_000, true), NextStep::Delivered)
        .await
        .unwrap();
    assert_eq!(
        due_ids(&*store, 15_000).await,
        vec!["b1", "a2"],
        "oldest due first"
    );
    let (item, attempts) = store.outbox_get("a1").await.unwrap().unwrap();
    assert_eq!(item.state, OutboxState::Delivered);
    assert_eq!((item.attempts, item.failures), (2, 1));
    assert_eq!(
        attempts,
        vec![attempt(10_000, false), attempt(15_000, true)]
    );
    let c = store.counts().await.unwrap();
    assert_eq!(
        (c.outbox_entries, c.outbox_pending, c.outbox_dead),
        (3, 2, 0)
    );
    assert_eq!(store.outbox_backlog().await.unwrap(), (2, 0));

    store
        .outbox_record("b1", attempt(15_000, true), NextStep::Delivered)
        .await
        .unwrap();
    store
        .outbox_record("a2", attempt(15_000, true), NextStep::Delivered)
        .await
        .unwrap();
    assert!(due_ids(&*store, u64::MAX).await.is_empty());
    assert_eq!(store.outbox_next_due().await.unwrap(), None);
    assert_eq!(store.outbox_backlog().await.unwrap(), (0, 0));
    let delivered = store
        .outbox_list(Some(OutboxState::Delivered), 10)
        .await
        .unwrap();
    let ids: Vec<_> = delivered.iter().map(|i| i.entry.id.as_str()).collect();
    assert_eq!(
        ids,
        vec!["a1", "a2", "b1"],
        "listed oldest (lowest id) first"
    );
}

/// A dead letter blocks its order until it is retried, keeps its history, and survives
/// a restart.
async fn dead_letters_block_their_order_until_requeued(h: Harness) {
    {
        let store = h.open().await;
        let commit = Commit {
            outbox: vec![
                event("a1", "A", 1),
                event("a2", "A", 2),
                event("b1", "B", 1),
            ],
            ..Commit::default()
        };
        store.commit(commit).await.unwrap();
        store
            .outbox_record("a1", attempt(5_000, false), NextStep::Dead)
            .await
            .unwrap();
        assert_eq!(due_ids(&*store, u64::MAX).await, vec!["b1"], "A is blocked");
        let dead = store
            .outbox_list(Some(OutboxState::Dead), 10)
            .await
            .unwrap();
        assert_eq!(dead.len(), 1);
        assert_eq!(dead[0].entry.id, "a1");
        assert_eq!((dead[0].attempts, dead[0].failures), (1, 1));
        let c = store.counts().await.unwrap();
        assert_eq!((c.outbox_pending, c.outbox_dead), (2, 1));
        assert_eq!(store.outbox_backlog().await.unwrap(), (2, 1));
        assert!(
            !store.outbox_requeue("a2", 6_000).await.unwrap(),
            "a2 is not dead"
        );
        assert!(!store.outbox_requeue("missing", 6_000).await.unwrap());
    }
    let store = h.open().await;
    assert!(store.outbox_requeue("a1", 6_000).await.unwrap());
    assert!(
        !store.outbox_requeue("a1", 6_000).await.unwrap(),
        "no longer dead"
    );
    assert_eq!(due_ids(&*store, 6_000).await, vec!["b1", "a1"]);
    let (item, attempts) = store.outbox_get("a1").await.unwrap().unwrap();
    assert_eq!(
        (
            item.state,
            item.failures,
            item.attempts,
            item.next_attempt_ms
        ),
        (OutboxState::Pending, 0, 1, 6_000)
    );
    assert_eq!(attempts, vec![attempt(5_000, false)], "the history stays");
    assert_eq!(store.outbox_list(None, 10).await.unwrap().len(), 3);
    assert_eq!(store.outbox_list(None, 2).await.unwrap().len(), 2);
    assert_eq!(
        store
            .outbox_list(Some(OutboxState::Pending), 10)
            .await
            .unwrap()
            .len(),
        3
    );
    assert!(store
        .outbox_list(Some(OutboxState::Dead), 10)
        .await
        .unwrap()
        .is_empty());
    assert_eq!(store.outbox_backlog().await.unwrap(), (3, 0));

    // Delivered after the requeue: a2 is next.
    store
        .outbox_record("a1", attempt(7_000, true), NextStep::Delivered)
        .await
        .unwrap();
    assert_eq!(due_ids(&*store, 7_000).await, vec!["b1", "a2"]);
    let (item, attempts) = store.outbox_get("a1").await.unwrap().unwrap();
    assert_eq!((item.state, item.attempts), (OutboxState::Delivered, 2));
    assert_eq!(attempts, vec![attempt(5_000, false), attempt(7_000, true)]);
    assert!(store
        .outbox_record("missing", attempt(1, true), NextStep::Delivered)
        .await
        .is_err());
}

/// Attempts are logged in order, with every field (including no status).
async fn attempt_log_keeps_every_field(h: Harness) {
    let store = h.open().await;
    store
        .commit(Commit {
            outbox: vec![event("x1", "X", 1)],
            ..Commit::default()
        })
        .await
        .unwrap();
    let timeout = Attempt {
        at_ms: 2_000,
        latency_ms: 30_000,
        delivered: false,
        status: None,
        detail: "no answer within 30s — ünïcode".into(),
    };
    let refused = Attempt {
        at_ms: 40_000,
        latency_ms: 12,
        delivered: false,
        status: Some(422),
        detail: "refused".into(),
    };
    store
        .outbox_record("x1", timeout.clone(), NextStep::RetryAt(32_000))
        .await
        .unwrap();
    let (item, _) = store.outbox_get("x1").await.unwrap().unwrap();
    assert_eq!(
        (
            item.state,
            item.attempts,
            item.failures,
            item.next_attempt_ms
        ),
        (OutboxState::Pending, 1, 1, 32_000)
    );
    assert_eq!(store.outbox_next_due().await.unwrap(), Some(32_000));
    store
        .outbox_record("x1", refused.clone(), NextStep::Dead)
        .await
        .unwrap();
    let (item, attempts) = store.outbox_get("x1").await.unwrap().unwrap();
    assert_eq!(
        (item.state, item.attempts, item.failures),
        (OutboxState::Dead, 2, 2)
    );
    assert_eq!(attempts, vec![timeout, refused]);
    assert_eq!(store.outbox_next_due().await.unwrap(), None);
}

/// A claimed entry comes back when its lease has run out (a worker died mid-delivery).
async fn claimed_entries_come_back_after_the_lease(h: Harness) {
    let store = h.open().await;
    store
        .commit(Commit {
            outbox: vec![event("l1", "L", 1)],
            ..Commit::default()
        })
        .await
        .unwrap();
    let claimed = store.outbox_claim(10_000, 10, 5_000).await.unwrap();
    assert_eq!(claimed.len(), 1);
    assert_eq!(claimed[0].entry.id, "l1");
    assert_eq!(claimed[0].state, OutboxState::Pending);
    // Lease over: claimable again, unchanged.
    let again = store.outbox_claim(15_000, 10, 5_000).await.unwrap();
    assert_eq!(again, claimed);
    // Recording the attempt releases the lease at once.
    store
        .outbox_record("l1", attempt(15_001, false), NextStep::RetryAt(15_002))
        .await
        .unwrap();
    assert_eq!(due_ids(&*store, 15_002).await, vec!["l1"]);
}

async fn orders_page_by_id(h: Harness) {
    let store = h.open().await;
    for id in ["o3", "o1", "o2", "o4"] {
        store
            .commit(write(
                order(id, &[&format!("e-{id}")], 1),
                None,
                &format!("r-{id}"),
            ))
            .await
            .unwrap();
    }
    let ids = |page: Vec<OrderRecord>| page.into_iter().map(|o| o.id).collect::<Vec<_>>();
    assert_eq!(
        ids(store.orders_after(None, 2).await.unwrap()),
        ["o1", "o2"]
    );
    assert_eq!(
        ids(store.orders_after(Some("o2"), 10).await.unwrap()),
        ["o3", "o4"]
    );
    assert!(store.orders_after(Some("o4"), 10).await.unwrap().is_empty());
    assert_eq!(
        store.orders_after(Some("o0"), 1).await.unwrap(),
        vec![order("o1", &["e-o1"], 1)]
    );
}

async fn idempotency_and_outbox_page_by_key(h: Harness) {
    let store = h.open().await;
    for (app, request) in [("b", "r1"), ("a", "r2"), ("a", "r1"), ("ab", "r0")] {
        let k = IdempotencyKey {
            app_id: app.into(),
            request_id: request.into(),
        };
        let commit = Commit {
            idempotency: Some((k, answer(1_000))),
            ..Commit::default()
        };
        store.commit(commit).await.unwrap();
    }
    let keys = |page: Vec<(IdempotencyKey, IdempotencyRecord)>| {
        page.into_iter()
            .map(|(k, r)| {
                assert_eq!(r, answer(1_000));
                format!("{}/{}", k.app_id, k.request_id)
            })
            .collect::<Vec<_>>()
    };
    assert_eq!(
        keys(store.idempotency_after(None, 3).await.unwrap()),
        ["a/r1", "a/r2", "ab/r0"]
    );
    let after = IdempotencyKey {
        app_id: "a".into(),
        request_id: "r2".into(),
    };
    assert_eq!(
        keys(store.idempotency_after(Some(&after), 10).await.unwrap()),
        ["ab/r0", "b/r1"]
    );

    let commit = Commit {
        outbox: vec![
            event("x2", "o1", 2),
            event("x1", "o1", 1),
            event("y1", "o2", 1),
        ],
        ..Commit::default()
    };
    store.commit(commit).await.unwrap();
    store
        .outbox_record("x1", attempt(2_000, false), NextStep::RetryAt(3_000))
        .await
        .unwrap();
    store
        .outbox_record("x1", attempt(3_000, true), NextStep::Delivered)
        .await
        .unwrap();
    let page = store.outbox_after(None, 2).await.unwrap();
    let ids: Vec<_> = page.iter().map(|(i, _)| i.entry.id.as_str()).collect();
    assert_eq!(ids, ["x1", "x2"]);
    assert_eq!(page[0].0.state, OutboxState::Delivered);
    assert_eq!(page[0].1, [attempt(2_000, false), attempt(3_000, true)]);
    assert!(page[1].1.is_empty());
    let rest = store.outbox_after(Some("x2"), 10).await.unwrap();
    assert_eq!(rest.len(), 1);
    assert_eq!(rest[0].0.entry, event("y1", "o2", 1));
}

/// What `import` must reproduce: rows with their versions, states, counters and logs.
fn imported_batch() -> ImportBatch {
    let item = |id: &str, order_id: &str, seq: u64, state, attempts, failures, next| OutboxItem {
        entry: event(id, order_id, seq),
        state,
        attempts,
        failures,
        next_attempt_ms: next,
    };
    ImportBatch {
        orders: vec![order("i1", &["ie1", "ie1-old"], 7), order("i2", &[], 1)],
        idempotency: vec![(key("ir1"), answer(5_000)), (key("ir2"), answer(6_000))],
        outbox: vec![
            (
                item("d1", "i1", 1, OutboxState::Dead, 2, 2, 4_000),
                vec![attempt(2_000, false), attempt(4_000, false)],
            ),
            (
                item("p2", "i1", 2, OutboxState::Pending, 0, 0, 1_002),
                vec![],
            ),
            (
                item("q1", "i2", 1, OutboxState::Delivered, 1, 0, 1_001),
                vec![attempt(1_500, true)],
            ),
            (
                item("q2", "i2", 2, OutboxState::Pending, 1, 1, 9_000),
                vec![attempt(1_600, false)],
            ),
        ],
    }
}

async fn import_writes_rows_verbatim_and_refuses_existing_keys(h: Harness) {
    let store = h.open().await;
    store.import(imported_batch()).await.unwrap();
    assert_eq!(
        store.get_order("i1").await.unwrap(),
        Some(order("i1", &["ie1", "ie1-old"], 7))
    );
    assert_eq!(
        store.find_order_by_external_id("ie1-old").await.unwrap(),
        Some(order("i1", &["ie1", "ie1-old"], 7))
    );
    assert_eq!(
        store.get_idempotency(&key("ir2")).await.unwrap(),
        Some(answer(6_000))
    );
    let (dead, log) = store.outbox_get("d1").await.unwrap().unwrap();
    assert_eq!(
        (dead.state, dead.attempts, dead.failures),
        (OutboxState::Dead, 2, 2)
    );
    assert_eq!(log, [attempt(2_000, false), attempt(4_000, false)]);
    // The indexes follow the states: the dead head blocks p2; q2 is i2's head, due at 9000.
    assert_eq!(store.outbox_backlog().await.unwrap(), (2, 1));
    assert!(due_ids(&*store, 8_999).await.is_empty());
    assert_eq!(due_ids(&*store, 9_000).await, ["q2"]);
    assert_eq!(store.outbox_next_due().await.unwrap(), Some(1_002));
    // The next attempt is numbered after the imported ones.
    store
        .outbox_record("q2", attempt(9_001, true), NextStep::Delivered)
        .await
        .unwrap();
    let (q2, log) = store.outbox_get("q2").await.unwrap().unwrap();
    assert_eq!(q2.attempts, 2);
    assert_eq!(log, [attempt(1_600, false), attempt(9_001, true)]);
    assert!(store.outbox_requeue("d1", 10_000).await.unwrap());
    assert_eq!(due_ids(&*store, 10_000).await, ["d1"]);

    // A batch holding one existing key writes nothing at all.
    let before = store.counts().await.unwrap();
    for clash in [
        ImportBatch {
            orders: vec![order("new", &["new-e"], 1), order("i2", &[], 1)],
            ..ImportBatch::default()
        },
        ImportBatch {
            orders: vec![order("new", &["new-e"], 1)],
            idempotency: vec![(key("ir1"), answer(1))],
            ..ImportBatch::default()
        },
        ImportBatch {
            idempotency: vec![(key("new"), answer(1))],
            outbox: vec![imported_batch().outbox[1].clone()],
            ..ImportBatch::default()
        },
    ] {
        let err = store.import(clash).await.unwrap_err();
        assert!(matches!(err, StoreError::Conflict), "{err:?}");
        assert_eq!(store.counts().await.unwrap(), before);
        assert_eq!(store.get_order("new").await.unwrap(), None);
        assert_eq!(store.get_idempotency(&key("new")).await.unwrap(), None);
    }
}

/// Every test of the contract, run once per store.
macro_rules! contract {
    ($($name:ident),* $(,)?) => {
        mod sled {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Harness::sled()).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name(super::Harness::pg().await).await;
                }
            )*
        }
    };
}

contract!(
    commit_then_read_back,
    create_of_existing_order_conflicts_and_writes_nothing,
    stale_version_conflicts,
    duplicate_request_id_writes_nothing,
    finds_order_by_every_external_id_ever_used,
    prune_removes_only_older_records,
    prune_outbox_removes_only_delivered_entries_past_the_cutoff,
    imported_delivered_entries_are_pruned_by_their_delivery,
    steady_traffic_stays_the_size_of_its_window,
    stats_count_rows_and_bytes_per_kind,
    data_survives_reopen,
    concurrent_commits_all_succeed,
    outbox_is_fifo_per_order_and_retries_keep_the_order,
    dead_letters_block_their_order_until_requeued,
    attempt_log_keeps_every_field,
    claimed_entries_come_back_after_the_lease,
    orders_page_by_id,
    idempotency_and_outbox_page_by_key,
    import_writes_rows_verbatim_and_refuses_existing_keys,
);

// ---- PostgreSQL only ----

mod postgres_only {
    use super::*;

    /// STORE-07: the same request_id committed at the same time by two instances (two
    /// pools) applies once; the other gets DuplicateRequest and writes nothing.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn same_request_id_from_two_instances_applies_once() {
        let schema = PgSchema::create().await;
        let a: Arc<dyn Store> = Arc::new(schema.open().await);
        let b: Arc<dyn Store> = Arc::new(schema.open().await);
        a.commit(write(order("o1", &["e1"], 1), None, "create"))
            .await
            .unwrap();

        const ROUNDS: u64 = 20;
        for round in 0..ROUNDS {
            let version = round + 1;
            let request_id = format!("update-{round}");
            let commit_for = |store: &Arc<dyn Store>, who: &str| {
                let store = Arc::clone(store);
                let mut record = order("o1", &["e1"], version + 1);
                record.body = format!("{who}-{round}").into_bytes();
                let mut commit = write(record, Some(version), &request_id);
                commit.outbox = vec![event(&format!("{who}-ev{round}"), "o1", version)];
                async move { store.commit(commit).await }
            };
            let (ra, rb) = tokio::join!(
                tokio::spawn(commit_for(&a, "a")),
                tokio::spawn(commit_for(&b, "b"))
            );
            let (ra, rb) = (ra.unwrap(), rb.unwrap());
            let winner = match (&ra, &rb) {
                (Ok(()), Err(StoreError::DuplicateRequest)) => "a",
                (Err(StoreError::DuplicateRequest), Ok(())) => "b",
                other => panic!("round {round}: exactly one must win: {other:?}"),
            };
            let stored = a.get_order("o1").await.unwrap().unwrap();
            assert_eq!(stored.version, version + 1);
            assert_eq!(stored.body, format!("{winner}-{round}").into_bytes());
            let loser = if winner == "a" { "b" } else { "a" };
            assert_eq!(
                b.outbox_get(&format!("{loser}-ev{round}")).await.unwrap(),
                None
            );
        }
        assert_eq!(
            a.counts().await.unwrap(),
            counts(1, ROUNDS + 1, ROUNDS),
            "one order version, record and event per round"
        );

        // Two creates of different orders under one key: one order exists afterwards.
        let (ra, rb) = tokio::join!(
            a.commit(write(order("n-a", &["xa"], 1), None, "create-2")),
            b.commit(write(order("n-b", &["xb"], 1), None, "create-2")),
        );
        assert!(
            matches!(
                (&ra, &rb),
                (Ok(()), Err(StoreError::DuplicateRequest))
                    | (Err(StoreError::DuplicateRequest), Ok(()))
            ),
            "{ra:?} {rb:?}"
        );
        let present = [
            a.get_order("n-a").await.unwrap().is_some(),
            a.get_order("n-b").await.unwrap().is_some(),
        ];
        assert_eq!(present.iter().filter(|p| **p).count(), 1, "{present:?}");
    }

    /// Concurrent writers of one order with different request ids: the version check lets
    /// exactly one of each pair through.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_updates_of_one_order_conflict() {
        let schema = PgSchema::create().await;
        let a: Arc<dyn Store> = Arc::new(schema.open().await);
        let b: Arc<dyn Store> = Arc::new(schema.open().await);
        a.commit(write(order("o1", &["e1"], 1), None, "create"))
            .await
            .unwrap();
        for version in 1..=10u64 {
            let (ra, rb) = tokio::join!(
                a.commit(write(
                    order("o1", &["e1"], version + 1),
                    Some(version),
                    &format!("a{version}")
                )),
                b.commit(write(
                    order("o1", &["e1"], version + 1),
                    Some(version),
                    &format!("b{version}")
                )),
            );
            assert!(
                matches!(
                    (&ra, &rb),
                    (Ok(()), Err(StoreError::Conflict)) | (Err(StoreError::Conflict), Ok(()))
                ),
                "{ra:?} {rb:?}"
            );
        }
        assert_eq!(a.get_order("o1").await.unwrap().unwrap().version, 11);
        assert_eq!(a.counts().await.unwrap(), counts(1, 11, 0));
    }

    /// STORE-07 (pattern B): two instances draining one outbox never get the same entry,
    /// and each order's events are claimed strictly in sequence.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn two_instances_claim_without_double_delivery() {
        const ORDERS: u64 = 40;
        const PER_ORDER: u64 = 3;
        let schema = PgSchema::create().await;
        let a: Arc<dyn Store> = Arc::new(schema.open().await);
        let b: Arc<dyn Store> = Arc::new(schema.open().await);
        for o in 0..ORDERS {
            let outbox = (1..=PER_ORDER)
                .map(|s| event(&format!("ev-{o:03}-{s}"), &format!("order-{o:03}"), s))
                .collect();
            a.commit(Commit {
                outbox,
                ..Commit::default()
            })
            .await
            .unwrap();
        }

        /// One claim, in the order claims happened.
        #[derive(Clone)]
        struct Claim {
            order_id: String,
            sequence: u64,
            id: String,
            by: &'static str,
        }
        let log: Arc<Mutex<Vec<Claim>>> = Arc::default();
        let worker = |store: Arc<dyn Store>, name: &'static str| {
            let log = Arc::clone(&log);
            tokio::spawn(async move {
                let deadline = Instant::now() + Duration::from_secs(30);
                loop {
                    assert!(Instant::now() < deadline, "{name}: outbox not drained");
                    let claimed = store.outbox_claim(50_000, 4, 60_000).await.unwrap();
                    if claimed.is_empty() {
                        if store.outbox_backlog().await.unwrap().0 == 0 {
                            return;
                        }
                        tokio::time::sleep(Duration::from_millis(1)).await;
                        continue;
                    }
                    for item in claimed {
                        log.lock().unwrap().push(Claim {
                            order_id: item.entry.order_id.clone(),
                            sequence: item.entry.sequence,
                            id: item.entry.id.clone(),
                            by: name,
                        });
                        store
                            .outbox_record(
                                &item.entry.id,
                                attempt(50_000, true),
                                NextStep::Delivered,
                            )
                            .await
                            .unwrap();
                    }
                }
            })
        };
        let (ra, rb) = tokio::join!(worker(Arc::clone(&a), "a"), worker(Arc::clone(&b), "b"));
        ra.unwrap();
        rb.unwrap();

        let log = log.lock().unwrap().clone();
        let total = usize::try_from(ORDERS * PER_ORDER).unwrap();
        let ids: HashSet<_> = log.iter().map(|c| c.id.clone()).collect();
        assert_eq!(log.len(), total, "every entry claimed once");
        assert_eq!(ids.len(), total, "no entry claimed twice");
        let mut next: HashMap<&str, u64> = HashMap::new();
        for Claim {
            order_id, sequence, ..
        } in &log
        {
            let expected = next.entry(order_id.as_str()).or_insert(1);
            assert_eq!(*sequence, *expected, "order {order_id} out of sequence");
            *expected += 1;
        }
        for item in a.outbox_list(None, 1_000).await.unwrap() {
            assert_eq!(
                (item.state, item.attempts),
                (OutboxState::Delivered, 1),
                "{}",
                item.entry.id
            );
        }
        let by_a = log.iter().filter(|c| c.by == "a").count();
        eprintln!("claimed by a: {by_a}, by b: {}", total - by_a);
    }

    /// A leased entry is not claimed again by anyone before the lease ends, and the next
    /// due time waits for the lease.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn leased_entries_are_not_claimed_twice() {
        let schema = PgSchema::create().await;
        let a = schema.open().await;
        let b = schema.open().await;
        a.commit(Commit {
            outbox: vec![event("l1", "L", 1), event("m1", "M", 1)],
            ..Commit::default()
        })
        .await
        .unwrap();
        let first = a.outbox_claim(10_000, 1, 5_000).await.unwrap();
        assert_eq!(first.len(), 1);
        assert_eq!(first[0].entry.id, "l1");
        let second = b.outbox_claim(10_000, 10, 5_000).await.unwrap();
        let ids: Vec<_> = second.iter().map(|i| i.entry.id.as_str()).collect();
        assert_eq!(ids, vec!["m1"], "l1 is leased to a");
        assert!(a.outbox_claim(14_999, 10, 5_000).await.unwrap().is_empty());
        assert_eq!(a.outbox_next_due().await.unwrap(), Some(15_000));
        let after = b.outbox_claim(15_000, 10, 5_000).await.unwrap();
        let ids: Vec<_> = after.iter().map(|i| i.entry.id.as_str()).collect();
        assert_eq!(ids, vec!["l1", "m1"], "leases over");
    }

    /// STORE-07: a commit chosen as a deadlock victim (40P01) is retried and succeeds.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn deadlock_victim_is_retried() {
        let schema = PgSchema::create().await;
        let store: Arc<dyn Store> = Arc::new(schema.open().await);
        let raw = raw_client().await;
        // The raw session must not be the one that detects the deadlock (and gives up).
        raw.batch_execute(&format!(
            "SET deadlock_timeout = '60s'; BEGIN; \
             INSERT INTO {}.outbox (id, order_id, sequence, event_type, body, created_at_ms, \
                 state, next_attempt_ms) VALUES ('raw-x', 'X', 1, 't', '', 0, 'pending', 0)",
            schema.name
        ))
        .await
        .unwrap();
        // The store takes (Y, 1), then waits for the raw transaction's (X, 1) ...
        let commit = tokio::spawn({
            let store = Arc::clone(&store);
            async move {
                store
                    .commit(Commit {
                        outbox: vec![event("c-y", "Y", 1), event("c-x", "X", 1)],
                        ..Commit::default()
                    })
                    .await
            }
        });
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            let waiting: i64 = raw
                .query_one(
                    "SELECT count(*) FROM pg_locks WHERE NOT granted \
                     AND locktype = 'transactionid' AND transactionid = xid(pg_current_xact_id())",
                    &[],
                )
                .await
                .unwrap()
                .get(0);
            if waiting > 0 {
                break;
            }
            assert!(Instant::now() < deadline, "the commit never waited");
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        // ... and the raw transaction now waits for (Y, 1): a deadlock, which the store's
        // session detects after its deadlock_timeout and loses.
        raw.batch_execute(&format!(
            "INSERT INTO {}.outbox (id, order_id, sequence, event_type, body, created_at_ms, \
                 state, next_attempt_ms) VALUES ('raw-y', 'Y', 1, 't', '', 0, 'pending', 0)",
            schema.name
        ))
        .await
        .expect("the raw session survives the deadlock");
        raw.batch_execute("ROLLBACK").await.unwrap();
        commit.await.unwrap().expect("retried after the deadlock");
        let ids: Vec<_> = store
            .outbox_list(None, 10)
            .await
            .unwrap()
            .into_iter()
            .map(|i| i.entry.id)
            .collect();
        assert_eq!(ids, vec!["c-x", "c-y"]);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn migrations_apply_once() {
        let schema = PgSchema::create().await;
        let store = schema.connect().await;
        assert_eq!(
            store.migrate().await.unwrap(),
            ["0001_init", "0002_in_flight", "0003_outbox_delivered"]
        );
        assert!(store.migrate().await.unwrap().is_empty(), "second run");
        let other = schema.connect().await;
        assert!(other.migrate().await.unwrap().is_empty(), "other instance");

        let client = raw_client().await;
        let rows = client
            .query(
                &format!(
                    "SELECT version, name, length(checksum) FROM {}.fast_seller_migrations \
                     ORDER BY version",
                    schema.name
                ),
                &[],
            )
            .await
            .unwrap();
        assert_eq!(rows.len(), 3);
        assert_eq!(rows[0].get::<_, i32>(0), 1);
        assert_eq!(rows[0].get::<_, String>(1), "0001_init");
        assert_eq!(rows[0].get::<_, i32>(2), 64, "hex SHA-256");
        assert_eq!(rows[1].get::<_, String>(1), "0002_in_flight");
    }

    /// A database at schema version 1 (made by an older build) gets only what it lacks, and
    /// keeps its data; its delivered entries can be pruned.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_version_1_database_is_upgraded_in_place() {
        let schema = PgSchema::create().await;
        let store = schema.open().await;
        let mut commit = write(order("o1", &["e1"], 1), None, "r1");
        commit.outbox = vec![event("ev1", "o1", 1)];
        store.commit(commit).await.unwrap();
        store
            .outbox_record("ev1", attempt(2_000, true), NextStep::Delivered)
            .await
            .unwrap();
        raw_client()
            .await
            .batch_execute(&format!(
                "DROP TABLE {0}.in_flight; DROP INDEX {0}.outbox_delivered; \
                 ALTER TABLE {0}.outbox DROP COLUMN delivered_at_ms; \
                 DELETE FROM {0}.fast_seller_migrations WHERE version IN (2, 3)",
                schema.name
            ))
            .await
            .unwrap();
        assert_eq!(
            store.migrate().await.unwrap(),
            ["0002_in_flight", "0003_outbox_delivered"]
        );
        assert_eq!(
            store.get_order("o1").await.unwrap(),
            Some(order("o1", &["e1"], 1))
        );
        let claim = store
            .claim_in_flight(&key("r2"), "me", Duration::from_secs(10))
            .await
            .unwrap();
        assert_eq!(claim, InFlightClaim::Claimed);
        // Delivered entries of the older schema got their delivery time from their log.
        assert_eq!(store.prune_outbox(2_000, 10).await.unwrap(), 0);
        assert_eq!(store.prune_outbox(2_001, 10).await.unwrap(), 1);
    }

    /// STORE-07 for the in-flight marker: one claimant per key; a live marker holds it, an
    /// expired one is taken over; only the owner's release removes it; pruning removes
    /// expired markers only.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn in_flight_markers_hold_expire_and_are_taken_over() {
        let schema = PgSchema::create().await;
        let a = schema.open().await;
        let b = schema.open().await;
        let ttl = Duration::from_secs(30);
        // Two instances claim the same key at once: exactly one gets it.
        let k1 = key("k1");
        let (ra, rb) = tokio::join!(
            a.claim_in_flight(&k1, "a", ttl),
            b.claim_in_flight(&k1, "b", ttl)
        );
        let (ra, rb) = (ra.unwrap(), rb.unwrap());
        let mut claims = [ra, rb];
        claims.sort_by_key(|c| format!("{c:?}"));
        assert_eq!(claims, [InFlightClaim::Claimed, InFlightClaim::Held]);
        let (holder, other) = if ra == InFlightClaim::Claimed {
            ("a", "b")
        } else {
            ("b", "a")
        };
        assert_eq!(
            a.claim_in_flight(&key("k1"), "x", ttl).await.unwrap(),
            InFlightClaim::Held,
            "a live marker was taken over"
        );
        // A release by someone else leaves it; the owner's release frees the key.
        a.release_in_flight(&key("k1"), other).await.unwrap();
        assert_eq!(
            b.claim_in_flight(&key("k1"), "c", ttl).await.unwrap(),
            InFlightClaim::Held
        );
        b.release_in_flight(&key("k1"), holder).await.unwrap();
        assert_eq!(
            b.claim_in_flight(&key("k1"), "c", ttl).await.unwrap(),
            InFlightClaim::Claimed
        );
        // A crashed instance's marker expires and is taken over.
        assert_eq!(
            a.claim_in_flight(&key("k2"), "crashed", Duration::from_millis(50))
                .await
                .unwrap(),
            InFlightClaim::Claimed
        );
        assert_eq!(
            b.claim_in_flight(&key("k2"), "b", ttl).await.unwrap(),
            InFlightClaim::Held
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(
            b.claim_in_flight(&key("k2"), "b", ttl).await.unwrap(),
            InFlightClaim::Claimed
        );
        // Pruning drops expired markers, not live ones.
        a.claim_in_flight(&key("k3"), "gone", Duration::from_millis(1))
            .await
            .unwrap();
        tokio::time::sleep(Duration::from_millis(20)).await;
        a.prune_idempotency(0, 100).await.unwrap();
        let left: Vec<String> = raw_client()
            .await
            .query(
                &format!(
                    "SELECT request_id FROM {}.in_flight ORDER BY 1",
                    schema.name
                ),
                &[],
            )
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect();
        assert_eq!(left, ["k1", "k2"]);
    }

    /// A store only one process opens keeps no markers.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sled_keeps_no_in_flight_markers() {
        let dir = TempDir::new().unwrap();
        let store = SledStore::open(dir.path(), CACHE).unwrap();
        assert_eq!(
            store
                .claim_in_flight(&key("k"), "a", Duration::from_secs(1))
                .await
                .unwrap(),
            InFlightClaim::NotShared
        );
    }

    /// Instances starting together apply each migration once (advisory lock).
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_migrations_apply_once() {
        let schema = PgSchema {
            // Not created yet: migrate creates it.
            name: format!("fs_test_{}", uuid::Uuid::new_v4().simple()),
        };
        let stores = [
            schema.connect().await,
            schema.connect().await,
            schema.connect().await,
        ];
        let (r0, r1, r2) = tokio::join!(
            stores[0].migrate(),
            stores[1].migrate(),
            stores[2].migrate()
        );
        let applied: Vec<usize> = [r0, r1, r2]
            .into_iter()
            .map(|r| r.expect("migrate").len())
            .collect();
        assert_eq!(applied.iter().sum::<usize>(), 3, "{applied:?}");
        stores[0]
            .commit(write(order("o1", &["e1"], 1), None, "r1"))
            .await
            .unwrap();
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn changed_migration_is_refused() {
        let schema = PgSchema::create().await;
        let store = schema.open().await;
        raw_client()
            .await
            .batch_execute(&format!(
                "UPDATE {}.fast_seller_migrations SET checksum = 'tampered'",
                schema.name
            ))
            .await
            .unwrap();
        let err = store.migrate().await.unwrap_err();
        let StoreError::Io(message) = &err else {
            panic!("{err:?}");
        };
        assert!(message.contains("0001_init"), "{message}");
        assert!(message.contains("checksum"), "{message}");
    }

    /// Errors name the operation and the SQLSTATE, never SQL text.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn errors_carry_no_sql() {
        let schema = PgSchema::create().await;
        let store = schema.connect().await; // not migrated
        let err = store.get_order("o1").await.unwrap_err();
        let StoreError::Io(message) = &err else {
            panic!("{err:?}");
        };
        assert!(message.contains("fast-seller migrate"), "{message}");
        assert!(message.contains("42P01"), "{message}");
        let err = store
            .commit(write(order("o1", &["e1"], 1), None, "secret-request"))
            .await
            .unwrap_err();
        let text = err.to_string();
        for forbidden in ["SELECT", "INSERT", "orders (", "secret-request", "$1"] {
            assert!(!text.contains(forbidden), "{text}");
        }
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn unreachable_server_fails_without_the_password() {
        let started = Instant::now();
        let err = PgStore::connect("postgres://fast:hunter2@127.0.0.1:1/none", None, 2)
            .await
            .unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, StoreError::Io(_)), "{err:?}");
        assert!(!text.contains("hunter2"), "{text}");
        assert!(text.contains("127.0.0.1:1"), "{text}");
        assert!(started.elapsed() < Duration::from_secs(10));
        let err = PgStore::connect("postgres://a:b@h/db?sslmode=bogus", None, 2)
            .await
            .unwrap_err();
        assert!(!err.to_string().contains(":b@"), "{err}");
        let err = PgStore::connect(&pg_url(), Some("Bad-Name"), 2)
            .await
            .unwrap_err();
        assert!(err.to_string().contains("schema"), "{err}");
    }

    /// STORE-08: a server (here: a session) with synchronous_commit off is reported.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn synchronous_commit_off_is_warned() {
        #[derive(Clone, Default)]
        struct Sink(Arc<Mutex<Vec<u8>>>);
        impl std::io::Write for Sink {
            fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
                self.0.lock().unwrap().extend_from_slice(buf);
                Ok(buf.len())
            }
            fn flush(&mut self) -> std::io::Result<()> {
                Ok(())
            }
        }
        let sink = Sink::default();
        let writer = sink.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);

        let url = pg_url();
        let separator = if url.contains('?') { '&' } else { '?' };
        let off = format!("{url}{separator}options=-c%20synchronous_commit%3Doff");
        PgStore::connect(&off, None, 1).await.unwrap();
        let logs = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(logs.contains("synchronous_commit off"), "{logs}");

        sink.0.lock().unwrap().clear();
        PgStore::connect(&url, None, 1).await.unwrap();
        let logs = String::from_utf8(sink.0.lock().unwrap().clone()).unwrap();
        assert!(!logs.contains("synchronous_commit"), "{logs}");
    }

    #[test]
    fn redact_url_hides_passwords() {
        assert_eq!(
            redact_url("postgres://fast:s3cret@db:5432/fast"),
            "postgres://fast:***@db:5432/fast"
        );
        assert_eq!(
            redact_url("postgres://postgres@127.0.0.1:5432/test"),
            "postgres://postgres@127.0.0.1:5432/test"
        );
        assert_eq!(
            redact_url("host=db password=s3cret user=fast"),
            "host=db password=*** user=fast"
        );
    }
}

// ---- store-to-store copies (`fast-seller store migrate`) ----

mod copy {
    use super::*;
    use fast_seller::store::copy::{self, CopyError, CopyOptions, Tally, PAGE};

    /// More than two pages of the copy.
    const ORDERS: usize = 2 * PAGE + 100;

    /// Orders (with a current and an old external id), an idempotency record per order under
    /// two app ids, two events for every tenth order, of which the first of some is delivered
    /// after a failure, retried, dead, or leased by a worker.
    async fn fill(store: &dyn Store) {
        let commits: Vec<Commit> = (0..ORDERS)
            .map(|i| {
                let id = format!("o{i:05}");
                let outbox = if i % 10 == 0 {
                    vec![
                        event(&format!("ev{i:05}-1"), &id, 1),
                        event(&format!("ev{i:05}-2"), &id, 2),
                    ]
                } else {
                    Vec::new()
                };
                let record = IdempotencyRecord {
                    fingerprint: [u8::try_from(i % 251).unwrap(); 32],
                    status: 200,
                    body: format!("answer {i}").into_bytes(),
                    created_at_ms: 1_000 + i as u64,
                };
                let key = IdempotencyKey {
                    app_id: if i % 2 == 0 { "app" } else { "other-app" }.into(),
                    request_id: format!("r{i}"),
                };
                Commit {
                    order: Some(OrderWrite {
                        record: order(&id, &[&format!("e-{id}"), &format!("old-{id}")], 3),
                        expected_version: None,
                    }),
                    idempotency: Some((key, record)),
                    outbox,
                }
            })
            .collect();
        for chunk in commits.chunks(64) {
            let done =
                futures_util::future::join_all(chunk.iter().map(|c| store.commit(c.clone()))).await;
            assert!(done.iter().all(Result::is_ok), "{done:?}");
        }
        for i in (0..ORDERS).step_by(10) {
            let id = format!("ev{i:05}-1");
            match i % 40 {
                0 => {
                    store
                        .outbox_record(&id, attempt(2_000, false), NextStep::RetryAt(2_500))
                        .await
                        .unwrap();
                    store
                        .outbox_record(&id, attempt(2_500, true), NextStep::Delivered)
                        .await
                        .unwrap();
                }
                10 => {
                    store
                        .outbox_record(&id, attempt(2_000, false), NextStep::Dead)
                        .await
                        .unwrap();
                }
                20 => {
                    store
                        .outbox_record(&id, attempt(2_000, false), NextStep::RetryAt(7_000))
                        .await
                        .unwrap();
                }
                _ => {}
            }
        }
        // A worker holds a lease on some (leases are not copied: they belong to a process).
        store.outbox_claim(3_000, 5, 60_000).await.unwrap();
    }

    type Dump = (
        Vec<OrderRecord>,
        Vec<(IdempotencyKey, IdempotencyRecord)>,
        Vec<(OutboxItem, Vec<Attempt>)>,
    );

    async fn dump(store: &dyn Store) -> Dump {
        (
            store.orders_after(None, usize::MAX).await.unwrap(),
            store.idempotency_after(None, usize::MAX).await.unwrap(),
            store.outbox_after(None, usize::MAX).await.unwrap(),
        )
    }

    /// A sled store with every kind of row copied to a fresh PostgreSQL schema: the same
    /// rows, the same answers from the indexes (external ids, due heads, backlog), and the
    /// counts verified; a second copy into the now full schema is refused.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn sled_copies_to_postgres_with_everything() {
        let dir = TempDir::new().unwrap();
        let source = SledStore::open(dir.path(), CACHE).unwrap();
        fill(&source).await;
        let schema = PgSchema::create().await;
        let target = schema.open().await;

        let copied = copy::copy(&source, &target, CopyOptions::default())
            .await
            .expect("copy");
        let expected = Tally {
            orders: ORDERS as u64,
            idempotency_records: ORDERS as u64,
            outbox_pending: 2 * (ORDERS as u64 / 10) - 28 - 28,
            outbox_delivered: 28,
            outbox_dead: 28,
            outbox_attempts: 2 * 28 + 28 + 27,
        };
        assert_eq!(copied, expected, "{copied}");
        assert_eq!(copy::tally(&target).await.unwrap(), expected);

        let (orders, idempotency, outbox) = dump(&source).await;
        let (t_orders, t_idempotency, t_outbox) = dump(&target).await;
        assert!(orders == t_orders, "orders differ");
        assert!(idempotency == t_idempotency, "idempotency records differ");
        assert!(outbox == t_outbox, "outbox entries or their logs differ");
        assert_eq!(
            source.counts().await.unwrap(),
            target.counts().await.unwrap()
        );
        assert_eq!(
            source.outbox_backlog().await.unwrap(),
            target.outbox_backlog().await.unwrap()
        );
        assert_eq!(
            target
                .find_order_by_external_id("old-o00007")
                .await
                .unwrap(),
            source.get_order("o00007").await.unwrap()
        );
        for now in [1_500, 7_000, 100_000] {
            assert_eq!(
                due_ids(&target, now).await,
                due_ids(&source, now).await,
                "due heads at {now}"
            );
        }
        // Each replayed answer is there, byte for byte.
        let k = IdempotencyKey {
            app_id: "other-app".into(),
            request_id: "r1033".into(),
        };
        assert_eq!(
            target.get_idempotency(&k).await.unwrap().unwrap().body,
            b"answer 1033"
        );

        let err = copy::copy(&source, &target, CopyOptions::default())
            .await
            .unwrap_err();
        assert!(
            matches!(err, CopyError::TargetNotEmpty(t) if t == expected),
            "{err}"
        );
        assert!(err.to_string().contains("--allow-non-empty"), "{err}");
        let err = copy::copy(
            &source,
            &target,
            CopyOptions {
                allow_non_empty: true,
            },
        )
        .await
        .unwrap_err();
        assert!(matches!(err, CopyError::AlreadyInTarget { .. }), "{err}");
        assert_eq!(copy::tally(&target).await.unwrap(), expected);
    }

    /// With --allow-non-empty, rows are added next to what the target holds, and the
    /// verification counts only what the copy added.
    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_copy_adds_to_a_non_empty_target_when_allowed() {
        let dir = TempDir::new().unwrap();
        let source = SledStore::open(dir.path(), CACHE).unwrap();
        source.import(imported_batch()).await.unwrap();
        let schema = PgSchema::create().await;
        let target = schema.open().await;
        target
            .commit(write(order("elsewhere", &["x"], 1), None, "r-elsewhere"))
            .await
            .unwrap();
        let copied = copy::copy(
            &source,
            &target,
            CopyOptions {
                allow_non_empty: true,
            },
        )
        .await
        .expect("copy");
        assert_eq!(copied, copy::tally(&source).await.unwrap());
        assert_eq!(copied.outbox_entries(), 4);
        let all = copy::tally(&target).await.unwrap();
        assert_eq!((all.orders, all.idempotency_records), (3, 3));
    }
}
