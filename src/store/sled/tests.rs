//! Tests of what only the sled store can show: its directory lock and corrupt values.

use tempfile::TempDir;

use super::trees::ORDERS;
use super::*;
use crate::store::OrderWrite;

const CACHE: u64 = 8 * 1024 * 1024;

fn open(dir: &TempDir) -> SledStore {
    SledStore::open(dir.path(), CACHE).expect("open")
}

/// Writes order `o1` (seller id `e1`) at `version`, recorded under `request_id`.
fn write_o1(version: u64, expected_version: Option<u64>, request_id: &str) -> Commit {
    let record = OrderRecord {
        id: "o1".into(),
        external_ids: vec!["e1".into()],
        version,
        body: format!("{{\"v\":{version}}}").into_bytes(),
    };
    let key = IdempotencyKey {
        app_id: "app".into(),
        request_id: request_id.into(),
    };
    let answer = IdempotencyRecord {
        fingerprint: [7; 32],
        status: 201,
        body: b"{}".to_vec(),
        created_at_ms: 1_000,
    };
    Commit {
        order: Some(OrderWrite {
            record,
            expected_version,
        }),
        idempotency: Some((key, answer)),
        outbox: Vec::new(),
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn second_open_of_a_held_directory_is_locked() {
    let dir = TempDir::new().unwrap();
    let first = open(&dir);
    let err = SledStore::open(dir.path(), CACHE).err().expect("must fail");
    assert!(
        matches!(&err, StoreError::Locked(p) if p.contains(DB_DIR)),
        "{err:?}"
    );
    drop(first);
    // Dropping the store releases the lock.
    drop(open(&dir));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn corrupt_values_are_reported_not_panicked() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    store.commit(write_o1(1, None, "r1")).await.unwrap();
    let valid = store.trees.orders.get("o1").unwrap().unwrap();

    let garbage: [&[u8]; 4] = [b"", b"\x09junk", b"\x01\x00\x00", &valid[..valid.len() - 1]];
    for bytes in garbage {
        store.trees.orders.insert("o1", bytes).unwrap();
        let err = store.get_order("o1").await.unwrap_err();
        assert!(
            matches!(&err, StoreError::Corrupt(m) if m.contains(ORDERS) && m.contains("o1")),
            "{err:?}"
        );
        let err = store.find_order_by_external_id("e1").await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
        let err = store.commit(write_o1(2, Some(1), "r2")).await.unwrap_err();
        assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
    }
    let mut trailing = valid.to_vec();
    trailing.push(0);
    store.trees.orders.insert("o1", trailing).unwrap();
    let err = store.get_order("o1").await.unwrap_err();
    assert!(matches!(err, StoreError::Corrupt(_)), "{err:?}");
}

/// A value as the previous release wrote it (format 1: bodies not compressed), byte by byte.
fn format1(parts: &[&[u8]]) -> Vec<u8> {
    let mut out = vec![1];
    for part in parts {
        out.extend_from_slice(part);
    }
    out
}

fn len_prefixed(bytes: &[u8]) -> Vec<u8> {
    let mut out = (bytes.len() as u64).to_be_bytes().to_vec();
    out.extend_from_slice(bytes);
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn values_of_the_previous_release_are_read_and_moved_on() {
    let dir = TempDir::new().unwrap();
    let store = open(&dir);
    let order_body = br#"{"order":{"id":{"value":"o1"}},"created_at_ms":1000}"#;
    let order = format1(&[
        &len_prefixed(b"o1"),
        &1u64.to_be_bytes(),
        &len_prefixed(b"e1"),
        &1u64.to_be_bytes(),
        &len_prefixed(order_body),
    ]);
    let answer_body = br#"{"order":{"order":{"id":{"value":"o1"}}}}"#;
    let answer = format1(&[
        &[7; 32],
        &200u16.to_be_bytes(),
        &1_000u64.to_be_bytes(),
        &len_prefixed(answer_body),
    ]);
    store.trees.orders.insert("o1", order).unwrap();
    store.trees.order_ext.insert("e1", "o1").unwrap();
    store.trees.idem.insert(b"app\0r1", answer).unwrap();
    let mut time_key = 1_000u64.to_be_bytes().to_vec();
    time_key.extend_from_slice(b"app\0r1");
    store.trees.idem_time.insert(time_key, &[][..]).unwrap();

    let expected = OrderRecord {
        id: "o1".into(),
        external_ids: vec!["e1".into()],
        version: 1,
        body: order_body.to_vec(),
    };
    assert_eq!(store.get_order("o1").await.unwrap(), Some(expected.clone()));
    assert_eq!(
        store.find_order_by_external_id("e1").await.unwrap(),
        Some(expected)
    );
    let key = IdempotencyKey {
        app_id: "app".into(),
        request_id: "r1".into(),
    };
    let replayed = store.get_idempotency(&key).await.unwrap().unwrap();
    assert_eq!(replayed.body, answer_body);
    assert_eq!((replayed.status, replayed.created_at_ms), (200, 1_000));

    // The next change of the order is written in the current format, and reads back.
    store.commit(write_o1(2, Some(1), "r2")).await.unwrap();
    let raw = store.trees.orders.get("o1").unwrap().unwrap();
    assert_eq!(raw[0], 2);
    let now = store.get_order("o1").await.unwrap().unwrap();
    assert_eq!((now.version, now.body), (2, b"{\"v\":2}".to_vec()));
    // Pruning finds the old record through its index.
    assert_eq!(store.prune_idempotency(2_000, 100).await.unwrap(), 2);
    assert_eq!(store.get_idempotency(&key).await.unwrap(), None);
}

/// A store written before the delivered index existed gets it built at open: its delivered
/// entries are pruned by their delivery time like new ones.
#[tokio::test]
async fn delivered_entries_of_an_older_store_are_indexed_at_open() {
    let dir = TempDir::new().unwrap();
    {
        let store = open(&dir);
        let entry = crate::store::OutboxEntry {
            id: "ev1".into(),
            order_id: "o1".into(),
            sequence: 1,
            event_type: "order.converted".into(),
            body: b"{}".to_vec(),
            created_at_ms: 1_000,
        };
        store
            .commit(Commit {
                outbox: vec![entry],
                ..Commit::default()
            })
            .await
            .unwrap();
        let attempt = Attempt {
            at_ms: 2_000,
            latency_ms: 1,
            delivered: true,
            status: Some(200),
            detail: String::new(),
        };
        store
            .outbox_record("ev1", attempt, NextStep::Delivered)
            .await
            .unwrap();
        // What an earlier release left behind: no index of delivered entries.
        store.trees.outbox_delivered.clear().unwrap();
        store.flush().await.unwrap();
    }
    let store = open(&dir);
    assert_eq!(store.prune_outbox(2_000, 10).await.unwrap(), 0);
    assert_eq!(store.prune_outbox(2_001, 10).await.unwrap(), 1);
    assert_eq!(store.outbox_get("ev1").await.unwrap(), None);
}
