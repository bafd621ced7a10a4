//! The merchant's commerce system, behind one trait: converted orders and their later
//! changes are handed to it by the outbox worker, one event at a time, in order per order.

pub mod fast;
pub mod file;
#[cfg(feature = "nats")]
pub mod nats;
pub mod webhook;

use async_trait::async_trait;
use std::time::Duration;

/// One event to deliver: its stable id (the same on every attempt) and its JSON bytes.
#[derive(Debug, Clone, Copy)]
pub struct Event<'a> {
    pub id: &'a str,
    pub event_type: &'a str,
    pub order_id: &'a str,
    pub body: &'a [u8],
}

/// The backend took the event.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivered {
    pub status: Option<u16>,
    pub detail: String,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DeliveryError {
    /// Worth retrying (timeouts, 5xx, 429, network errors).
    #[error("{detail}")]
    Transient {
        detail: String,
        status: Option<u16>,
        retry_after: Option<Duration>,
    },
    /// Retrying cannot help (e.g. 4xx): the event goes to the dead letters at once.
    #[error("{detail}")]
    Permanent { detail: String, status: Option<u16> },
    /// Not sent: the destination is not configured (a Fast call without an API token). The
    /// event waits, outside the retry schedule, until a restart configures it.
    #[error("{detail}")]
    NotConfigured { detail: String },
}

impl DeliveryError {
    pub fn status(&self) -> Option<u16> {
        match self {
            DeliveryError::Transient { status, .. } | DeliveryError::Permanent { status, .. } => {
                *status
            }
            DeliveryError::NotConfigured { .. } => None,
        }
    }
}

#[async_trait]
pub trait CommerceBackend: Send + Sync + 'static {
    fn name(&self) -> &'static str;
    async fn deliver(&self, event: &Event<'_>) -> Result<Delivered, DeliveryError>;
}
