//! Operations on the outbox for the merchant: list, show with the attempt log, retry dead
//! letters. Shared by the admin HTTP API and the `fast-seller outbox` commands.

use super::ServiceError;
use crate::clock::{rfc3339_ms, Clock};
use crate::store::{Attempt, OutboxItem, OutboxState, Store};
use serde::Serialize;
use std::sync::Arc;
use tokio::sync::Notify;

/// Most entries one listing returns.
pub const MAX_LIST: usize = 1000;

pub struct OutboxAdmin {
    store: Arc<dyn Store>,
    clock: Arc<dyn Clock>,
    wake: Arc<Notify>,
}

/// An outbox entry as the merchant sees it.
#[derive(Debug, Serialize)]
pub struct OutboxView {
    pub id: String,
    pub order_id: String,
    pub sequence: u64,
    #[serde(rename = "type")]
    pub event_type: String,
    pub state: &'static str,
    pub attempts: u32,
    pub failures: u32,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_attempt_at: Option<String>,
    pub created_at: String,
    /// The event as delivered (JSON), or its text when it is not JSON.
    pub event: serde_json::Value,
}

#[derive(Debug, Serialize)]
pub struct AttemptView {
    pub at: String,
    pub latency_ms: u64,
    pub delivered: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub status: Option<u16>,
    pub detail: String,
}

#[derive(Debug, Serialize)]
pub struct OutboxDetail {
    #[serde(flatten)]
    pub entry: OutboxView,
    pub attempt_log: Vec<AttemptView>,
}

/// Pending and dead entries, for `/readyz` and the logs.
#[derive(Debug, Clone, Copy, Serialize, PartialEq, Eq)]
pub struct Backlog {
    pub pending: u64,
    pub dead: u64,
}

fn view(item: OutboxItem) -> OutboxView {
    let event = serde_json::from_slice(&item.entry.body).unwrap_or_else(|_| {
        serde_json::Value::String(String::from_utf8_lossy(&item.entry.body).into_owned())
    });
    OutboxView {
        next_attempt_at: (item.state == OutboxState::Pending)
            .then(|| rfc3339_ms(item.next_attempt_ms)),
        created_at: rfc3339_ms(item.entry.created_at_ms),
        state: item.state.as_str(),
        attempts: item.attempts,
        failures: item.failures,
        id: item.entry.id,
        order_id: item.entry.order_id,
        sequence: item.entry.sequence,
        event_type: item.entry.event_type,
        event,
    }
}

fn attempt_view(a: Attempt) -> AttemptView {
    AttemptView {
        at: rfc3339_ms(a.at_ms),
        latency_ms: a.latency_ms,
        delivered: a.delivered,
        status: a.status,
        detail: a.detail,
    }
}

/// Parses `pending`, `delivered` or `dead`.
pub fn parse_state(text: &str) -> Result<OutboxState, ServiceError> {
    match text {
        "pending" => Ok(OutboxState::Pending),
        "delivered" => Ok(OutboxState::Delivered),
        "dead" => Ok(OutboxState::Dead),
        other => Err(ServiceError::BadRequest(format!(
            "state: `{other}` is not pending, delivered or dead"
        ))),
    }
}

impl OutboxAdmin {
    pub fn new(store: Arc<dyn Store>, clock: Arc<dyn Clock>, wake: Arc<Notify>) -> OutboxAdmin {
        OutboxAdmin { store, clock, wake }
    }

    pub async fn list(
        &self,
        state: Option<OutboxState>,
        limit: usize,
    ) -> Result<Vec<OutboxView>, ServiceError> {
        let items = self
            .store
            .outbox_list(state, limit.clamp(1, MAX_LIST))
            .await?;
        Ok(items.into_iter().map(view).collect())
    }

    pub async fn show(&self, id: &str) -> Result<OutboxDetail, ServiceError> {
        let (item, attempts) = self
            .store
            .outbox_get(id)
            .await?
            .ok_or_else(|| ServiceError::NotFound(format!("no outbox event {id}")))?;
        Ok(OutboxDetail {
            entry: view(item),
            attempt_log: attempts.into_iter().map(attempt_view).collect(),
        })
    }

    /// Re-queues one dead letter with the same event id and a fresh schedule.
    pub async fn retry(&self, id: &str) -> Result<OutboxDetail, ServiceError> {
        if !self.store.outbox_requeue(id, self.clock.now_ms()).await? {
            let detail = self.show(id).await?;
            return Err(ServiceError::Conflict(format!(
                "outbox event {id} is {}, not dead",
                detail.entry.state
            )));
        }
        self.wake.notify_one();
        self.show(id).await
    }

    /// Re-queues every letter that is dead when the call starts, each once; returns how many.
    /// The ids are taken first: a receiver that keeps refusing dead-letters the requeued
    /// events again at once, and looping "until none is dead" would then never end.
    pub async fn retry_all_dead(&self) -> Result<u64, ServiceError> {
        let now = self.clock.now_ms();
        let dead: Vec<String> = self
            .store
            .outbox_list(Some(OutboxState::Dead), usize::MAX)
            .await?
            .into_iter()
            .map(|item| item.entry.id)
            .collect();
        let mut count = 0;
        for id in &dead {
            count += u64::from(self.store.outbox_requeue(id, now).await?);
        }
        self.wake.notify_one();
        Ok(count)
    }

    pub async fn backlog(&self) -> Result<Backlog, ServiceError> {
        let c = self.store.outbox_backlog().await?;
        Ok(Backlog {
            pending: c.0,
            dead: c.1,
        })
    }
}
