//! The PostgreSQL store with the real binary (issue #7): moving a sled store over with
//! `fast-seller store migrate`, and two `fast-seller serve --store postgres://…` processes
//! on one schema sharing the traffic.

use crate::helpers::{
    create_body, http_client, outbox_backlog, post_ok, show, spawn_app_with, update_body,
    ServerProcess, TestApp,
};
use crate::pg::{raw_client, PgSchema};
use fast_seller::config::{Secret, StoreConfig};
use serde_json::json;
use std::ffi::OsStr;
use std::process::{Command, Output};
use std::time::{Duration, Instant};

/// `fast-seller store migrate --from <from> --to <to>` with no `FAST_SELLER_*` setting from
/// the environment.
fn store_migrate(from: &str, to: &str) -> Output {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_fast-seller"));
    cmd.args(["store", "migrate", "--from", from, "--to", to]);
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("FAST_SELLER_") {
            cmd.env_remove(key);
        }
    }
    cmd.output().expect("run fast-seller")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

/// Waits until the server's outbox has nothing pending.
async fn wait_delivered(http: &reqwest::Client, server: &ServerProcess) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while outbox_backlog(http, &server.base()).await != Some((0, 0)) {
        assert!(
            Instant::now() < deadline,
            "the outbox was not drained in 20 s\n{}",
            server.output()
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// `fast-seller store migrate --from sled:DIR --to postgres://…` on the data of a real server:
/// a server on the copy answers reads and replays with the very bytes the sled server gave;
/// a second copy into the filled schema, and a source without a store, fail with a message.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn store_migrate_moves_a_sled_store_to_postgres() {
    let dir = tempfile::TempDir::new().expect("temp dir");
    let http = http_client();
    let mut sled_server = ServerProcess::start(dir.path()).await;
    let base = sled_server.base();
    let create = create_body("mig-c1", "mig-F1", &[("mig-L1", "mug-01", 2)]);
    let created = post_ok(&http, &base, "create", &create).await;
    assert_eq!(created.status, 200, "{}", show(&created));
    let convert = update_body("mig-u1", "mig-F1", json!({"convert_cart_to_order": true}));
    let converted = post_ok(&http, &base, "update", &convert).await;
    assert_eq!(converted.status, 200, "{}", show(&converted));
    let cart = create_body("mig-c2", "mig-F2", &[("mig-L2", "sticker-01", 1)]);
    assert_eq!(post_ok(&http, &base, "create", &cart).await.status, 200);
    wait_delivered(&http, &sled_server).await;
    let read = json!({"type": "ENTITY_TYPE_ORDER", "order": {"order_id": {"value": "mig-F1"}}});
    let read_before = post_ok(&http, &base, "read", &read).await;
    sled_server.kill9();

    let schema = PgSchema::create().await;
    let url = schema.url();
    let from = format!("sled:{}", dir.path().display());
    let out = store_migrate(&from, &url);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.contains("verified: 2 orders, 3 idempotency records, 1 outbox entries (0 pending, 1 delivered, 0 dead) with 1 attempts"),
        "{stdout}"
    );

    let again = store_migrate(&from, &url);
    assert!(!again.status.success(), "a second copy must be refused");
    assert!(
        text(&again.stderr).contains("the target store is not empty"),
        "{}",
        text(&again.stderr)
    );
    let empty = tempfile::TempDir::new().expect("temp dir");
    let nothing = format!("sled:{}", empty.path().display());
    let missing = store_migrate(&nothing, &url);
    assert!(!missing.status.success());
    assert!(
        text(&missing.stderr).contains("holds no fast-seller sled store"),
        "{}",
        text(&missing.stderr)
    );

    let pg_dir = tempfile::TempDir::new().expect("temp dir");
    let pg_server = ServerProcess::start_with(
        &[
            OsStr::new("--store"),
            OsStr::new(&url),
            OsStr::new("--data-dir"),
            pg_dir.path().as_os_str(),
        ],
        &[],
    )
    .await;
    let base = pg_server.base();
    let read_after = post_ok(&http, &base, "read", &read).await;
    assert_eq!(read_after.status, 200, "{}", show(&read_after));
    assert!(
        read_after.bytes == read_before.bytes,
        "the copied order reads differently:\n{}\n{}",
        show(&read_before),
        show(&read_after)
    );
    let replay = post_ok(&http, &base, "update", &convert).await;
    assert!(
        replay.bytes == converted.bytes,
        "{}\n{}",
        show(&converted),
        show(&replay)
    );
    assert_eq!(replay.header("idempotent-replayed"), Some("true"));
    assert_eq!(outbox_backlog(&http, &base).await, Some((0, 0)));
}

// ---------------------------------------------------------------------------------------------
// The in-flight marker and retries, on an in-process server with the PostgreSQL store
// ---------------------------------------------------------------------------------------------

/// An in-process server on `schema`.
async fn spawn_pg_app(schema: &PgSchema) -> TestApp {
    let url = schema.url();
    spawn_app_with(|s| {
        s.store = StoreConfig::Postgres {
            url: Secret::new(url),
            pool_size: 4,
        };
    })
    .await
}

/// Plants the marker another instance would hold for `request_id` of `test-app`, expiring
/// `expires_in_ms` from now (negative: already expired).
async fn plant_marker(schema: &PgSchema, request_id: &str, expires_in_ms: i64) {
    raw_client()
        .await
        .execute(
            &format!(
                "INSERT INTO {}.in_flight (app_id, request_id, owner, expires_at) \
                 VALUES ('test-app', $1, 'another-instance', \
                         clock_timestamp() + make_interval(secs => $2))",
                schema.name
            ),
            &[&request_id, &(expires_in_ms as f64 / 1000.0)],
        )
        .await
        .expect("plant a marker");
}

/// A request whose id another instance is executing waits for it: when that instance's
/// marker goes away without a record (its request failed), this one runs; when the marker
/// stays past the in-flight wait, the answer is 409 with Retry-After and nothing is applied;
/// a marker left by a crashed instance (expired) is taken over at once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_id_in_flight_at_another_instance_is_waited_for() {
    let schema = PgSchema::create().await;
    let app = spawn_pg_app(&schema).await;
    let created = app
        .post("create", &create_body("mark-c", "mark-F", &[]))
        .await;
    assert_eq!(created.status, 200, "{}", show(&created));
    let add = |request_id: &str, line: &str| {
        update_body(
            request_id,
            "mark-F",
            json!({"items": [{"item_id": {"value": line}, "external_product_id": "mug-01", "quantity": 1}]}),
        )
    };

    // Marker released after 400 ms: the duplicate runs then.
    plant_marker(&schema, "mark-u1", 60_000).await;
    let started = Instant::now();
    let release = {
        let name = schema.name.clone();
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(400)).await;
            raw_client()
                .await
                .execute(
                    &format!("DELETE FROM {name}.in_flight WHERE request_id = 'mark-u1'"),
                    &[],
                )
                .await
                .unwrap();
        })
    };
    let r = app.post("update", &add("mark-u1", "mark-L1")).await;
    release.await.unwrap();
    let waited = started.elapsed();
    assert_eq!(r.status, 200, "{}", show(&r));
    assert_eq!(r.header("idempotent-replayed"), None);
    assert!(
        waited >= Duration::from_millis(400),
        "ran while another instance held the id ({waited:?})"
    );

    // Marker held past the in-flight wait (5 s): 409, Retry-After, nothing applied.
    plant_marker(&schema, "mark-u2", 60_000).await;
    let started = Instant::now();
    let r = app.post("update", &add("mark-u2", "mark-L2")).await;
    assert_eq!(r.status, 409, "{}", show(&r));
    assert_eq!(r.header("retry-after"), Some("1"));
    assert_eq!(r.json()["code"], 10);
    assert!(
        started.elapsed() >= Duration::from_secs(4),
        "{:?}",
        started.elapsed()
    );
    let read = json!({"type": "ENTITY_TYPE_ORDER", "order": {"order_id": {"value": "mark-F"}}});
    let lines = app.post("read", &read).await.order()["lines"].clone();
    assert_eq!(lines.as_array().map(Vec::len), Some(1), "{lines}");

    // An expired marker (its instance crashed) is taken over without waiting.
    plant_marker(&schema, "mark-u3", -1_000).await;
    let started = Instant::now();
    let r = app.post("update", &add("mark-u3", "mark-L3")).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    assert!(
        started.elapsed() < Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );
    // Its marker is gone once the answer is out (released in the background).
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let n: i64 = raw_client()
            .await
            .query_one(
                &format!(
                    "SELECT count(*) FROM {}.in_flight WHERE request_id <> 'mark-u2'",
                    schema.name
                ),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        if n == 0 {
            break;
        }
        assert!(Instant::now() < deadline, "{n} markers left behind");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// STORE-07: serialization failures and deadlocks are retried a bounded number of times,
/// then answered 503 with Retry-After in Fast's error shape, never a 500 and never with SQL;
/// nothing is kept, so the retry after the database recovers runs and succeeds.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn exhausted_transaction_retries_are_a_503_with_retry_after() {
    let schema = PgSchema::create().await;
    let app = spawn_pg_app(&schema).await;
    let created = app
        .post("create", &create_body("busy-c", "busy-F", &[]))
        .await;
    assert_eq!(created.status, 200, "{}", show(&created));
    let client = raw_client().await;
    let update = update_body(
        "busy-u",
        "busy-F",
        json!({"items": [{"item_id": {"value": "busy-L"}, "external_product_id": "mug-01"}]}),
    );
    for (sqlstate, name) in [("40001", "serialization"), ("40P01", "deadlock")] {
        // Every write of an order fails as a conflicting transaction would; the sequence
        // (not rolled back with the transaction) counts the tries.
        client
            .batch_execute(&format!(
                "CREATE SEQUENCE {s}.tries_{name}; \
                 CREATE FUNCTION {s}.fail_{name}() RETURNS trigger LANGUAGE plpgsql AS $$ \
                 BEGIN PERFORM nextval('{s}.tries_{name}'); \
                 RAISE EXCEPTION 'injected {name} in SELECT secret FROM orders' \
                 USING ERRCODE = '{sqlstate}'; END $$; \
                 CREATE TRIGGER fail_{name} BEFORE UPDATE ON {s}.orders \
                 FOR EACH ROW EXECUTE FUNCTION {s}.fail_{name}();",
                s = schema.name
            ))
            .await
            .unwrap();
        let r = app.post("update", &update).await;
        assert_eq!(r.status, 503, "{name}: {}", show(&r));
        assert_eq!(r.header("retry-after"), Some("1"), "{name}");
        assert_eq!(r.json()["code"], 14, "{name}");
        let body = String::from_utf8_lossy(&r.bytes).to_string();
        for leak in [
            "SELECT", "secret", "orders", "SQLSTATE", sqlstate, "injected",
        ] {
            assert!(
                !body.contains(leak),
                "{name}: the answer leaks {leak:?}: {body}"
            );
        }
        let tries: i64 = client
            .query_one(
                &format!("SELECT last_value FROM {}.tries_{name}", schema.name),
                &[],
            )
            .await
            .unwrap()
            .get(0);
        assert_eq!(
            tries,
            i64::from(fast_seller::store::postgres::MAX_RETRIES) + 1,
            "{name}: one try plus the bounded retries"
        );
        client
            .batch_execute(&format!(
                "DROP TRIGGER fail_{name} ON {}.orders",
                schema.name
            ))
            .await
            .unwrap();
    }
    let r = app.post("update", &update).await;
    assert_eq!(r.status, 200, "{}", show(&r));
    assert_eq!(
        r.header("idempotent-replayed"),
        None,
        "no record was kept by the 503s"
    );
}
