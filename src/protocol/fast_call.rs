//! Fast's order-management calls as the outbox carries them: which call, the
//! path it is posted to, and the queued entry's body. The bodies themselves are the
//! domain's (`domain::manage`).

use serde::{Deserialize, Serialize};

/// What an outbox entry of a Fast call holds: the call's exact JSON body, and the app id
/// Fast named the order with (`X-Fast-App` when the server has no `app_id` configured).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct QueuedFastCall {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub app_id: Option<String>,
    pub body: serde_json::Value,
}

/// Which of Fast's order-management calls an outbox entry carries. Its event type routes
/// the entry to the Fast client instead of the commerce backend; the entry's body is the
/// call's exact JSON body.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FastCall {
    Cancel,
    Refund,
    BusinessEvent,
}

impl FastCall {
    const ALL: [FastCall; 3] = [FastCall::Cancel, FastCall::Refund, FastCall::BusinessEvent];

    /// The outbox event type.
    pub fn event_type(self) -> &'static str {
        match self {
            FastCall::Cancel => "fast.cancel",
            FastCall::Refund => "fast.refund",
            FastCall::BusinessEvent => "fast.business_event",
        }
    }

    pub fn from_event_type(event_type: &str) -> Option<FastCall> {
        Self::ALL.into_iter().find(|c| c.event_type() == event_type)
    }

    /// The path segments below Fast's `/v1` base, unencoded.
    pub fn path_segments(self, order_id: &str) -> Vec<&str> {
        let mut path = vec!["external", "orders", order_id];
        match self {
            FastCall::Cancel => {}
            FastCall::Refund => path.push("refund"),
            FastCall::BusinessEvent => path.push("business_event"),
        }
        path
    }
}
