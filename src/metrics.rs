//! Prometheus metrics, one registry per application (`GET /metrics`). Labels carry only
//! bounded values (endpoint, status code, segment type, reason code, outcome), never ids,
//! emails or other unbounded data.

use crate::store::StoreStats;
use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounterVec, IntGauge, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

/// Latency buckets in seconds, 0.5 ms to 10 s.
const BUCKETS: &[f64] = &[
    0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0,
];

pub struct Metrics {
    registry: Registry,
    /// Answers by endpoint (`create`, `read`, …, `admin`, `other`) and HTTP status.
    pub requests: IntCounterVec,
    pub request_seconds: HistogramVec,
    /// Answers replayed from an idempotency record, by endpoint.
    pub replays: IntCounterVec,
    /// Failed update segments by segment type and reason code.
    pub segment_failures: IntCounterVec,
    /// Orders entering each status (created carts count as CART).
    pub order_status: IntCounterVec,
    /// Store commits including the flush that makes them durable.
    pub commit_seconds: Histogram,
    pub outbox_pending: IntGauge,
    pub outbox_dead: IntGauge,
    /// What the store holds (refreshed by the hourly pruning): rows and bytes per kind,
    /// stored outbox events per state, bytes on disk.
    pub store_rows: IntGaugeVec,
    pub store_live_bytes: IntGaugeVec,
    pub store_outbox_events: IntGaugeVec,
    pub store_disk_bytes: IntGauge,
    /// Delivery attempts by outcome (`delivered`, `retry`, `dead`).
    pub outbox_attempts: IntCounterVec,
    pub outbox_delivery_seconds: Histogram,
    /// Stored records that could not be decoded and were skipped, by kind (`order`).
    pub undecodable: IntCounterVec,
    pub build_info: IntGaugeVec,
}

fn histogram(name: &str, help: &str) -> HistogramOpts {
    HistogramOpts::new(name, help).buckets(BUCKETS.to_vec())
}

impl Metrics {
    pub fn new() -> Result<Metrics, prometheus::Error> {
        let registry = Registry::new();
        let m = Metrics {
            requests: IntCounterVec::new(
                Opts::new(
                    "fast_seller_http_requests_total",
                    "HTTP answers by endpoint and status",
                ),
                &["endpoint", "status"],
            )?,
            request_seconds: HistogramVec::new(
                histogram(
                    "fast_seller_http_request_duration_seconds",
                    "Time to answer, by endpoint",
                ),
                &["endpoint"],
            )?,
            replays: IntCounterVec::new(
                Opts::new(
                    "fast_seller_idempotent_replays_total",
                    "Answers replayed for a repeated request_id",
                ),
                &["endpoint"],
            )?,
            segment_failures: IntCounterVec::new(
                Opts::new(
                    "fast_seller_segment_failures_total",
                    "Update segments refused, by segment and reason",
                ),
                &["segment", "reason"],
            )?,
            order_status: IntCounterVec::new(
                Opts::new("fast_seller_orders_total", "Orders entering each status"),
                &["status"],
            )?,
            commit_seconds: Histogram::with_opts(histogram(
                "fast_seller_store_commit_duration_seconds",
                "Store commit time including the flush to disk",
            ))?,
            outbox_pending: IntGauge::new(
                "fast_seller_outbox_pending",
                "Events waiting for delivery",
            )?,
            outbox_dead: IntGauge::new("fast_seller_outbox_dead", "Dead-lettered events")?,
            store_rows: IntGaugeVec::new(
                Opts::new(
                    "fast_seller_store_rows",
                    "Stored rows by kind (tree or table)",
                ),
                &["kind"],
            )?,
            store_live_bytes: IntGaugeVec::new(
                Opts::new(
                    "fast_seller_store_live_bytes",
                    "Bytes of the stored rows by kind (tree or table), as stored",
                ),
                &["kind"],
            )?,
            store_outbox_events: IntGaugeVec::new(
                Opts::new(
                    "fast_seller_store_outbox_events",
                    "Stored outbox events by state",
                ),
                &["state"],
            )?,
            store_disk_bytes: IntGauge::new(
                "fast_seller_store_disk_bytes",
                "Bytes the store takes on disk",
            )?,
            outbox_attempts: IntCounterVec::new(
                Opts::new(
                    "fast_seller_outbox_attempts_total",
                    "Delivery attempts by outcome",
                ),
                &["outcome"],
            )?,
            outbox_delivery_seconds: Histogram::with_opts(histogram(
                "fast_seller_outbox_delivery_duration_seconds",
                "Time of one delivery attempt",
            ))?,
            undecodable: IntCounterVec::new(
                Opts::new(
                    "fast_seller_undecodable_records_total",
                    "Stored records skipped because they could not be decoded, by kind",
                ),
                &["kind"],
            )?,
            build_info: IntGaugeVec::new(
                Opts::new("fast_seller_build_info", "Always 1; the version is a label"),
                &["version"],
            )?,
            registry,
        };
        m.register()?;
        m.build_info
            .with_label_values(&[env!("CARGO_PKG_VERSION")])
            .set(1);
        Ok(m)
    }

    fn register(&self) -> Result<(), prometheus::Error> {
        let r = &self.registry;
        r.register(Box::new(self.requests.clone()))?;
        r.register(Box::new(self.request_seconds.clone()))?;
        r.register(Box::new(self.replays.clone()))?;
        r.register(Box::new(self.segment_failures.clone()))?;
        r.register(Box::new(self.order_status.clone()))?;
        r.register(Box::new(self.commit_seconds.clone()))?;
        r.register(Box::new(self.outbox_pending.clone()))?;
        r.register(Box::new(self.outbox_dead.clone()))?;
        r.register(Box::new(self.store_rows.clone()))?;
        r.register(Box::new(self.store_live_bytes.clone()))?;
        r.register(Box::new(self.store_outbox_events.clone()))?;
        r.register(Box::new(self.store_disk_bytes.clone()))?;
        r.register(Box::new(self.outbox_attempts.clone()))?;
        r.register(Box::new(self.outbox_delivery_seconds.clone()))?;
        r.register(Box::new(self.undecodable.clone()))?;
        r.register(Box::new(self.build_info.clone()))?;
        Ok(())
    }

    /// Sets the store gauges: the one place they are refreshed.
    pub fn set_store(&self, stats: &StoreStats) {
        let gauge = |n: u64| i64::try_from(n).unwrap_or(i64::MAX);
        for k in &stats.kinds {
            self.store_rows
                .with_label_values(&[k.kind.as_str()])
                .set(gauge(k.rows));
            self.store_live_bytes
                .with_label_values(&[k.kind.as_str()])
                .set(gauge(k.live_bytes));
        }
        for (state, n) in [
            ("pending", stats.outbox_pending),
            ("delivered", stats.outbox_delivered),
            ("dead", stats.outbox_dead),
        ] {
            self.store_outbox_events
                .with_label_values(&[state])
                .set(gauge(n));
        }
        self.store_disk_bytes.set(gauge(stats.disk_bytes));
    }

    /// Sets the outbox backlog gauges (pending, dead): the one place they are refreshed.
    pub fn set_backlog(&self, (pending, dead): (u64, u64)) {
        self.outbox_pending
            .set(i64::try_from(pending).unwrap_or(i64::MAX));
        self.outbox_dead
            .set(i64::try_from(dead).unwrap_or(i64::MAX));
    }

    /// The Prometheus text exposition of every metric.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        // Encoding into a Vec only fails on invalid metric data, which we never produce.
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8_lossy(&out).into_owned()
    }

    /// Counter handle by labels (a shorthand used at the call sites).
    pub fn inc(counter: &IntCounterVec, labels: &[&str]) {
        counter.with_label_values(labels).inc();
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_registered_metrics_with_bounded_labels() {
        let m = Metrics::new().unwrap();
        Metrics::inc(&m.requests, &["create", "200"]);
        Metrics::inc(
            &m.segment_failures,
            &["UPDATE_ORDER_SEGMENT_TYPE_COUPON", "COUPON_NOT_FOUND"],
        );
        let text = m.render();
        assert!(
            text.contains(r#"fast_seller_http_requests_total{endpoint="create",status="200"} 1"#),
            "{text}"
        );
        assert!(text.contains("fast_seller_build_info{version="));
        assert!(text.contains("fast_seller_segment_failures_total"));
    }
}
