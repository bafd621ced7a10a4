//! The order as stored (Fast's order plus the seller's bookkeeping), its store record, and
//! the outbox entries a change queues: one constructor each, and their encoding.

use super::ServiceError;
use crate::domain::manage::Ledger;
use crate::protocol::{FastCall, FastOrder, QueuedFastCall};
use crate::store::{OrderRecord, OrderWrite, OutboxEntry};
use serde::{Deserialize, Serialize};

/// The order as stored: Fast's order plus the seller's bookkeeping.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub(super) struct StoredOrder {
    pub(super) order: FastOrder,
    pub(super) created_at_ms: u64,
    pub(super) updated_at_ms: u64,
    /// Sequence number of the last outbox event of this order.
    #[serde(default)]
    pub(super) events: u64,
    /// The `app_id` Fast created the order with: `X-Fast-App` of the calls about it when
    /// the server has no app id configured.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub(super) app_id: Option<String>,
    /// What merchant order management did to it (`orders`); empty until then.
    #[serde(default, skip_serializing_if = "Ledger::is_untouched")]
    pub(super) ledger: Ledger,
}

impl StoredOrder {
    /// A new cart, as Fast created it.
    pub(super) fn created(order: FastOrder, app_id: Option<String>, now_ms: u64) -> StoredOrder {
        StoredOrder {
            order,
            created_at_ms: now_ms,
            updated_at_ms: now_ms,
            events: 0,
            app_id,
            ledger: Ledger::default(),
        }
    }

    /// The first version's store record.
    pub(super) fn first_write(&self) -> Result<OrderWrite, ServiceError> {
        Ok(OrderWrite {
            record: self.to_record(1, &[])?,
            expected_version: None,
        })
    }

    /// The store record of this order at `version`; seller ids it was known by stay known.
    fn to_record(&self, version: u64, known: &[String]) -> Result<OrderRecord, ServiceError> {
        let id = self
            .order
            .id
            .as_ref()
            .map(|i| i.0.clone())
            .unwrap_or_default();
        let mut external_ids: Vec<String> = self.order.external_id.iter().cloned().collect();
        for old in known {
            if !external_ids.contains(old) {
                external_ids.push(old.clone());
            }
        }
        Ok(OrderRecord {
            id,
            external_ids,
            version,
            body: encode(self)?,
        })
    }

    /// The outbox entry of a Fast call this order's change makes (`body` is the call's).
    pub(super) fn fast_call(
        &mut self,
        order_id: &str,
        call: FastCall,
        body: serde_json::Value,
        now_ms: u64,
    ) -> Result<OutboxEntry, ServiceError> {
        self.events += 1;
        Ok(OutboxEntry {
            id: uuid::Uuid::now_v7().to_string(),
            order_id: order_id.to_string(),
            sequence: self.events,
            event_type: call.event_type().to_string(),
            body: encode(&QueuedFastCall {
                app_id: self.app_id.clone(),
                body,
            })?,
            created_at_ms: now_ms,
        })
    }

    /// The outbox entry of an event for the commerce backend.
    pub(super) fn backend_event(
        &mut self,
        order_id: &str,
        event_type: &'static str,
        now_ms: u64,
        detail: Option<&serde_json::Value>,
    ) -> Result<OutboxEntry, ServiceError> {
        self.events += 1;
        let id = uuid::Uuid::now_v7().to_string();
        let body = encode(&OutboxEvent {
            id: &id,
            event_type,
            order_id,
            external_id: self.order.external_id.as_deref(),
            sequence: self.events,
            occurred_at: crate::clock::rfc3339_ms(now_ms),
            order: &self.order,
            detail,
        })?;
        Ok(OutboxEntry {
            id,
            order_id: order_id.to_string(),
            sequence: self.events,
            event_type: event_type.to_string(),
            body,
            created_at_ms: now_ms,
        })
    }
}

/// An outbox event as the commerce backend receives it.
#[derive(Debug, Serialize)]
struct OutboxEvent<'a> {
    id: &'a str,
    #[serde(rename = "type")]
    event_type: &'a str,
    order_id: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    external_id: Option<&'a str>,
    sequence: u64,
    occurred_at: String,
    order: &'a FastOrder,
    /// The merchant action's record (cancellation, refund, fulfilment), for its events.
    #[serde(skip_serializing_if = "Option::is_none")]
    detail: Option<&'a serde_json::Value>,
}

/// A loaded order with the version it was read at.
pub(super) struct Loaded {
    pub(super) stored: StoredOrder,
    pub(super) record: OrderRecord,
}

impl Loaded {
    pub(super) fn decode(record: OrderRecord) -> Result<Loaded, ServiceError> {
        let stored: StoredOrder = serde_json::from_slice(&record.body).map_err(|e| {
            ServiceError::Internal(format!("stored order {} is unreadable: {e}", record.id))
        })?;
        Ok(Loaded { stored, record })
    }

    /// The next version of this order: `order` with `ledger`, changed at `now_ms`. A
    /// conversion records what Fast charged in the ledger.
    pub(super) fn revised(&self, order: FastOrder, ledger: Ledger, now_ms: u64) -> StoredOrder {
        let mut ledger = ledger;
        crate::domain::manage::record_charge(&mut ledger, &self.stored.order, &order, now_ms);
        StoredOrder {
            order,
            created_at_ms: self.stored.created_at_ms,
            updated_at_ms: now_ms,
            events: self.stored.events,
            app_id: self.stored.app_id.clone(),
            ledger,
        }
    }

    /// The write that replaces this version with `next`, if no one changed it meanwhile.
    pub(super) fn write(&self, next: &StoredOrder) -> Result<OrderWrite, ServiceError> {
        let version = self.record.version;
        Ok(OrderWrite {
            record: next.to_record(version + 1, &self.record.external_ids)?,
            expected_version: Some(version),
        })
    }
}

pub(super) fn encode<T: Serialize>(value: &T) -> Result<Vec<u8>, ServiceError> {
    serde_json::to_vec(value).map_err(|e| ServiceError::Internal(format!("encoding: {e}")))
}
