//! The PostgreSQL store with the real binary (issue #7): moving a sled store over with
//! `fast-seller store migrate`, and two `fast-seller serve --store postgres://…` processes
//! on one schema sharing the traffic.

use crate::helpers::{
    create_body, http_client, outbox_backlog, post_ok, show, update_body, ServerProcess,
};
use crate::pg::PgSchema;
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
