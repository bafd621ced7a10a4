//! Exactly-once: the key and fingerprint of a request (`Stamp`), the wait for a duplicate
//! still in flight (`keyed_lock` in this process, `in_flight` markers across instances
//! sharing a store), and the stored answer to a repeat.

mod fingerprint;
pub(super) mod in_flight;
mod keyed_lock;

pub use keyed_lock::{KeyGuard, KeyedLocks};

use super::{Reply, ServiceError};
use crate::protocol::{Header, MAX_ID_LEN};
use crate::store::{IdempotencyKey, IdempotencyRecord};
use serde_json::Value;

/// Idempotency keys of the merchant API live in their own scope (the `app_id` of their
/// records), which Fast's requests may not use ([`Stamp::fast`] refuses it), so the two never
/// collide. Plain text: PostgreSQL's `text` holds no NUL.
const ADMIN_SCOPE: &str = "fast-seller:admin";

/// Idempotency of one request: its key and fingerprint.
pub(super) struct Stamp {
    pub(super) key: IdempotencyKey,
    pub(super) fingerprint: [u8; 32],
}

impl Stamp {
    /// The stamp of a Fast call to `endpoint` (none without a `request_id`).
    pub(super) fn fast(
        endpoint: &str,
        header: &Header,
        body: &Value,
    ) -> Result<Option<Stamp>, ServiceError> {
        let Some(request_id) = header.request_id.as_ref() else {
            return Ok(None);
        };
        if request_id.0.trim().is_empty() {
            return Err(ServiceError::invalid(
                "request_id_empty",
                "request_id: must not be empty",
            ));
        }
        let app_id = header.app_id.clone().unwrap_or_default();
        if app_id.contains('\0') || app_id.len() > MAX_ID_LEN {
            return Err(ServiceError::invalid("app_id_invalid", "app_id: invalid"));
        }
        if app_id == ADMIN_SCOPE {
            return Err(ServiceError::invalid(
                "app_id_reserved",
                format!("app_id: `{app_id}` is reserved for the merchant API"),
            ));
        }
        let key = IdempotencyKey {
            app_id,
            request_id: request_id.0.clone(),
        };
        Ok(Some(Stamp::new(key, endpoint, body)))
    }

    /// The stamp of a merchant action under its `Idempotency-Key` (none without one: the
    /// action runs every time).
    pub(super) fn merchant(
        endpoint: &str,
        idempotency_key: Option<&str>,
        body: &Value,
    ) -> Result<Option<Stamp>, ServiceError> {
        let Some(request_id) = idempotency_key else {
            return Ok(None);
        };
        if request_id.trim().is_empty() || request_id.len() > MAX_ID_LEN {
            return Err(ServiceError::invalid(
                "idempotency_key_invalid",
                format!("Idempotency-Key: must be 1 to {MAX_ID_LEN} characters"),
            ));
        }
        let key = IdempotencyKey {
            app_id: ADMIN_SCOPE.into(),
            request_id: request_id.to_string(),
        };
        Ok(Some(Stamp::new(key, endpoint, body)))
    }

    fn new(key: IdempotencyKey, endpoint: &str, body: &Value) -> Stamp {
        Stamp {
            key,
            fingerprint: fingerprint::fingerprint(endpoint, body),
        }
    }

    /// The stored answer to a repeat of this request, or a refusal when the body differs.
    pub(super) fn replay(&self, record: IdempotencyRecord) -> Result<Reply, ServiceError> {
        if record.fingerprint != self.fingerprint {
            return Err(ServiceError::RequestIdReused(self.key.request_id.clone()));
        }
        Ok(Reply {
            status: record.status,
            body: record.body,
            replayed: true,
            version: None,
        })
    }

    /// The record that makes `body` the answer to every repeat.
    pub(super) fn record(&self, body: &[u8], now_ms: u64) -> (IdempotencyKey, IdempotencyRecord) {
        (
            self.key.clone(),
            IdempotencyRecord {
                fingerprint: self.fingerprint,
                status: 200,
                body: body.to_vec(),
                created_at_ms: now_ms,
            },
        )
    }
}
