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
/// Most outbox entries [`OutboxAdmin::for_order`] looks at.
pub const ORDER_SCAN_BUDGET: usize = 20_000;
const ORDER_SCAN_BATCH: usize = 500;
const DAY_MS: u64 = 24 * 3600 * 1000;

/// The smallest UUIDv7 text of the millisecond `ms`: every id made at or after it sorts
/// above it.
fn uuid_v7_floor(ms: u64) -> String {
    let t = ms & 0xFFFF_FFFF_FFFF;
    format!("{:08x}-{:04x}-7000-8000-000000000000", t >> 16, t & 0xFFFF)
}

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

    /// The events of one order with their attempt logs, by sequence. Event ids are UUIDv7
    /// (time first), so the scan starts a day before the order was created; it looks at no
    /// more than [`ORDER_SCAN_BUDGET`] events (the store has no index by order).
    pub async fn for_order(
        &self,
        order_id: &str,
        created_at_ms: u64,
    ) -> Result<Vec<OutboxDetail>, ServiceError> {
        let mut cursor = Some(uuid_v7_floor(created_at_ms.saturating_sub(DAY_MS)));
        let mut found = Vec::new();
        let mut scanned = 0;
        while scanned < ORDER_SCAN_BUDGET {
            let batch = self
                .store
                .outbox_after(cursor.as_deref(), ORDER_SCAN_BATCH)
                .await?;
            let done = batch.len() < ORDER_SCAN_BATCH;
            scanned += batch.len();
            cursor = batch.last().map(|(item, _)| item.entry.id.clone());
            found.extend(
                batch
                    .into_iter()
                    .filter(|(item, _)| item.entry.order_id == order_id)
                    .map(|(item, attempts)| OutboxDetail {
                        entry: view(item),
                        attempt_log: attempts.into_iter().map(attempt_view).collect(),
                    }),
            );
            if done {
                break;
            }
        }
        found.sort_by_key(|d| d.entry.sequence);
        Ok(found)
    }

    pub async fn backlog(&self) -> Result<Backlog, ServiceError> {
        let c = self.store.outbox_backlog().await?;
        Ok(Backlog {
            pending: c.0,
            dead: c.1,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::uuid_v7_floor;

    #[test]
    fn the_uuid_floor_sorts_below_every_later_id_and_above_earlier_ones() {
        let at = 1_767_225_600_000u64;
        let floor = uuid_v7_floor(at);
        let later = uuid::Uuid::new_v7(uuid::Timestamp::from_unix(
            uuid::NoContext,
            at / 1000,
            u32::try_from(at % 1000).unwrap() * 1_000_000,
        ))
        .to_string();
        let earlier =
            uuid_v7_floor(at - 1).replace("-7000-8000-000000000000", "-7fff-bfff-ffffffffffff");
        assert!(floor.as_str() <= later.as_str(), "{floor} vs {later}");
        assert!(earlier.as_str() < floor.as_str(), "{earlier} vs {floor}");
    }
}
