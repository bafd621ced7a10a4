//! Outbox delivery throughput: 10,000 queued events (one per order, so nothing waits for
//! ordering) against a backend that takes 50 ms per call, at several concurrency limits.
//! Reports events/s next to the ceiling `concurrency / 50 ms`, and the process RSS.
//! Run: `cargo bench --bench outbox` (`-- --quick` for 2,000 events).

use async_trait::async_trait;
use fast_seller::backend::{CommerceBackend, Delivered, DeliveryError, Event};
use fast_seller::clock::SystemClock;
use fast_seller::metrics::Metrics;
use fast_seller::outbox::{Outbox, OutboxSettings};
use fast_seller::store::sled::SledStore;
use fast_seller::store::{Commit, OutboxEntry, Store};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::Notify;

/// A backend that takes `delay` per call and counts what it received.
struct SlowBackend {
    delay: Duration,
    calls: AtomicU64,
}

#[async_trait]
impl CommerceBackend for SlowBackend {
    fn name(&self) -> &'static str {
        "slow"
    }

    async fn deliver(&self, _event: &Event<'_>) -> Result<Delivered, DeliveryError> {
        tokio::time::sleep(self.delay).await;
        self.calls.fetch_add(1, Ordering::Relaxed);
        Ok(Delivered {
            status: Some(200),
            detail: "ok".into(),
        })
    }
}

fn rss_mib() -> f64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmRSS:"))
        .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn queue(store: &Arc<dyn Store>, events: usize) {
    let body = vec![b'x'; 2000];
    for chunk in (0..events).collect::<Vec<_>>().chunks(500) {
        let outbox = chunk
            .iter()
            .map(|i| OutboxEntry {
                id: uuid::Uuid::now_v7().to_string(),
                order_id: format!("order-{i}"),
                sequence: 1,
                event_type: "order.converted".into(),
                body: body.clone(),
                created_at_ms: 0,
            })
            .collect();
        let commit = Commit {
            outbox,
            ..Commit::default()
        };
        if let Err(e) = store.commit(commit).await {
            panic!("queueing events failed: {e}");
        }
    }
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let events = if quick { 2_000 } else { 10_000 };
    let delay = Duration::from_millis(50);
    println!("outbox bench: {events} queued events, backend {delay:?} per call, sled store");
    for concurrency in [16usize, 64, 256] {
        let dir = tempfile::tempdir().expect("temp dir");
        let store: Arc<dyn Store> =
            Arc::new(SledStore::open(dir.path(), 64 * 1024 * 1024).expect("open store"));
        queue(&store, events).await;
        let backend = Arc::new(SlowBackend {
            delay,
            calls: AtomicU64::new(0),
        });
        let settings = OutboxSettings {
            concurrency,
            ..OutboxSettings::default()
        };
        let outbox = Outbox::new(
            store.clone(),
            backend.clone(),
            Arc::new(SystemClock),
            settings,
            Arc::new(Notify::new()),
            Arc::new(Metrics::new().expect("metrics")),
        );
        let started = Instant::now();
        let mut delivered = 0;
        while delivered < events {
            match outbox.run_once().await {
                Ok(0) => break,
                Ok(n) => delivered += n,
                Err(e) => panic!("delivery failed: {e}"),
            }
        }
        let secs = started.elapsed().as_secs_f64();
        let backlog = store.outbox_backlog().await.expect("backlog");
        let ceiling = concurrency as f64 / delay.as_secs_f64();
        let rate = delivered as f64 / secs;
        println!(
            "concurrency {concurrency:>4}: {delivered} delivered in {secs:.1} s = {rate:.0} events/s \
             (ceiling {ceiling:.0}/s, {:.2}x), backend calls {}, left pending {}, RSS {:.0} MiB",
            rate / ceiling,
            backend.calls.load(Ordering::Relaxed),
            backlog.0,
            rss_mib()
        );
    }
}
