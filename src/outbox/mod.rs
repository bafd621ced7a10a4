//! The delivery worker of the transactional outbox.
//!
//! Events are written by the service in the same commit as the order change that caused
//! them. The worker takes the due ones (only the oldest undelivered event of each order, so
//! one order's events arrive in sequence while different orders proceed in parallel), hands
//! each to the commerce backend with a per-attempt timeout, logs the attempt, and marks the
//! event delivered, reschedules it (retry schedule with jitter, `Retry-After` honoured) or
//! dead-letters it. Time comes from the injectable clock; the worker wakes on new events and
//! polls as a fallback.

pub mod schedule;

use crate::backend::{CommerceBackend, DeliveryError, Event};
use crate::clock::Clock;
pub use crate::config::OutboxSettings;
use crate::metrics::Metrics;
use crate::store::{Attempt, NextStep, OutboxItem, Store, StoreError};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::{Duration, Instant};
use tokio::sync::{watch, Notify};
use tracing::Instrument;

/// How long an event whose destination is not configured waits before it is looked at
/// again (the configuration changes only with a restart, so rarely: each look is logged as
/// an attempt).
pub const NOT_CONFIGURED_WAIT: Duration = Duration::from_secs(3600);

pub struct Outbox {
    store: Arc<dyn Store>,
    backend: Arc<dyn CommerceBackend>,
    clock: Arc<dyn Clock>,
    settings: OutboxSettings,
    wake: Arc<Notify>,
    metrics: Arc<Metrics>,
}

impl Outbox {
    pub fn new(
        store: Arc<dyn Store>,
        backend: Arc<dyn CommerceBackend>,
        clock: Arc<dyn Clock>,
        settings: OutboxSettings,
        wake: Arc<Notify>,
        metrics: Arc<Metrics>,
    ) -> Outbox {
        Outbox {
            store,
            backend,
            clock,
            settings,
            wake,
            metrics,
        }
    }

    /// Delivers what is due now, once each; returns how many attempts were made.
    pub async fn run_once(&self) -> Result<usize, StoreError> {
        let batch = self.settings.concurrency.max(1) * 4;
        // The lease outlives every attempt of the batch, so no other instance takes them.
        let lease = u64::try_from(self.settings.attempt_timeout.as_millis())
            .unwrap_or(u64::MAX)
            .saturating_mul(2)
            .saturating_add(1_000);
        let due = self
            .store
            .outbox_claim(self.clock.now_ms(), batch, lease)
            .await?;
        let count = due.len();
        let results: Vec<Result<(), StoreError>> = futures_util::stream::iter(due)
            .map(|item| self.attempt(item))
            .buffer_unordered(self.settings.concurrency.max(1))
            .collect()
            .await;
        results.into_iter().collect::<Result<(), _>>()?;
        Ok(count)
    }

    /// One delivery attempt, in its own span.
    async fn attempt(&self, item: OutboxItem) -> Result<(), StoreError> {
        let span = tracing::info_span!(
            "outbox_delivery",
            event_id = %item.entry.id,
            order_id = %item.entry.order_id,
            event_type = %item.entry.event_type,
            attempt = item.attempts + 1,
        );
        self.attempt_in_span(item).instrument(span).await
    }

    async fn attempt_in_span(&self, item: OutboxItem) -> Result<(), StoreError> {
        let e = &item.entry;
        let event = Event {
            id: &e.id,
            event_type: &e.event_type,
            order_id: &e.order_id,
            body: &e.body,
        };
        let at_ms = self.clock.now_ms();
        let started = Instant::now();
        let outcome =
            tokio::time::timeout(self.settings.attempt_timeout, self.backend.deliver(&event))
                .await
                .unwrap_or_else(|_| {
                    Err(DeliveryError::Transient {
                        detail: format!("no answer within {:?}", self.settings.attempt_timeout),
                        status: None,
                        retry_after: None,
                    })
                });
        let elapsed = started.elapsed();
        self.metrics
            .outbox_delivery_seconds
            .observe(elapsed.as_secs_f64());
        let latency_ms = u64::try_from(elapsed.as_millis()).unwrap_or(u64::MAX);
        let (attempt, next) = match outcome {
            Ok(done) => {
                tracing::info!(backend = self.backend.name(), latency_ms, "event delivered");
                let attempt = Attempt {
                    at_ms,
                    latency_ms,
                    delivered: true,
                    status: done.status,
                    detail: done.detail,
                };
                (attempt, NextStep::Delivered)
            }
            Err(err) => {
                let failures = item.failures.saturating_add(1);
                let next = match &err {
                    DeliveryError::Permanent { .. } => NextStep::Dead,
                    DeliveryError::NotConfigured { .. } => {
                        let wait = u64::try_from(NOT_CONFIGURED_WAIT.as_millis());
                        let wait = wait.unwrap_or(u64::MAX);
                        NextStep::WaitUntil(self.clock.now_ms().saturating_add(wait))
                    }
                    DeliveryError::Transient { retry_after, .. } => self
                        .settings
                        .policy
                        .next_delay(failures, *retry_after, schedule::random_unit())
                        .map_or(NextStep::Dead, |d| {
                            let delay = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
                            NextStep::RetryAt(self.clock.now_ms().saturating_add(delay))
                        }),
                };
                match next {
                    NextStep::Dead => {
                        tracing::error!(error = %err, failures, "event dead-lettered")
                    }
                    NextStep::WaitUntil(ms) => {
                        let next = crate::clock::rfc3339_ms(ms);
                        tracing::warn!(error = %err, next = %next, "event waits for configuration");
                    }
                    _ => {
                        let at = next.retry_at().map(crate::clock::rfc3339_ms);
                        let at = at.unwrap_or_default();
                        tracing::warn!(error = %err, failures, next = %at, "delivery failed; will retry");
                    }
                }
                let attempt = Attempt {
                    at_ms,
                    latency_ms,
                    delivered: false,
                    status: err.status(),
                    detail: err.to_string(),
                };
                (attempt, next)
            }
        };
        let outcome = match next {
            NextStep::Delivered => "delivered",
            NextStep::RetryAt(_) => "retry",
            NextStep::WaitUntil(_) => "waiting",
            NextStep::Dead => "dead",
        };
        Metrics::inc(&self.metrics.outbox_attempts, &[outcome]);
        self.store.outbox_record(&e.id, attempt, next).await
    }

    /// Refreshes the backlog gauges and logs the backlog when it changed.
    async fn report_backlog(&self, last: &mut (u64, u64)) {
        let Ok(now) = self.store.outbox_backlog().await else {
            return;
        };
        self.metrics.set_backlog(now);
        if now != *last {
            if now.1 > 0 {
                tracing::warn!(
                    pending = now.0,
                    dead = now.1,
                    "outbox backlog (dead letters need `fast-seller outbox retry`)"
                );
            } else {
                tracing::info!(pending = now.0, dead = now.1, "outbox backlog");
            }
            *last = now;
        }
    }

    /// Delivers until `stop` turns true; in-flight attempts finish first.
    pub async fn run(self: Arc<Self>, mut stop: watch::Receiver<bool>) {
        let mut backlog = (0, 0);
        loop {
            if *stop.borrow() {
                break;
            }
            let attempted = match self.run_once().await {
                Ok(n) => n,
                Err(e) => {
                    tracing::error!(error = %e, "outbox: store failure; retrying shortly");
                    0
                }
            };
            if attempted > 0 {
                continue;
            }
            self.report_backlog(&mut backlog).await;
            let sleep = match self.store.outbox_next_due().await {
                Ok(Some(due)) => Duration::from_millis(due.saturating_sub(self.clock.now_ms())),
                _ => self.settings.poll_interval,
            }
            .clamp(Duration::from_millis(5), self.settings.poll_interval);
            tokio::select! {
                () = self.wake.notified() => {}
                () = tokio::time::sleep(sleep) => {}
                _ = stop.changed() => {}
            }
        }
        tracing::info!("outbox worker stopped");
    }
}
