//! The `nats` backend: publish each event to JetStream on `fast_seller.orders.<type>` with
//! `Nats-Msg-Id` = event id, so the stream drops a redelivery inside its duplicate window.
//! The stream `FAST_SELLER_ORDERS` (subjects `fast_seller.orders.>`, duplicate window 24 h) is
//! created if missing; an existing stream keeps its own settings.

use super::{CommerceBackend, Delivered, DeliveryError, Event};
use async_nats::jetstream;
use async_trait::async_trait;

/// Name of the stream the events go to.
pub const STREAM: &str = "FAST_SELLER_ORDERS";
/// Subject prefix; the event type follows (`fast_seller.orders.order.converted`).
pub const SUBJECT_PREFIX: &str = "fast_seller.orders";
/// How long the stream remembers message ids (set when the stream is created).
pub const DUPLICATE_WINDOW_SECS: u64 = 24 * 3600;

pub struct NatsBackend {
    js: jetstream::Context,
}

impl NatsBackend {
    /// Connects and makes sure the stream exists.
    pub async fn connect(url: &str) -> Result<NatsBackend, String> {
        let client = async_nats::connect(url)
            .await
            .map_err(|e| format!("cannot connect to NATS at {url}: {e}"))?;
        let js = jetstream::new(client);
        js.get_or_create_stream(jetstream::stream::Config {
            name: STREAM.into(),
            subjects: vec![format!("{SUBJECT_PREFIX}.>")],
            // Redeliveries after a long outage or crash are still recognised.
            duplicate_window: std::time::Duration::from_secs(DUPLICATE_WINDOW_SECS),
            ..Default::default()
        })
        .await
        .map_err(|e| format!("cannot create the JetStream stream {STREAM}: {e}"))?;
        Ok(NatsBackend { js })
    }
}

#[async_trait]
impl CommerceBackend for NatsBackend {
    fn name(&self) -> &'static str {
        "nats"
    }

    async fn deliver(&self, event: &Event<'_>) -> Result<Delivered, DeliveryError> {
        let transient = |detail: String| DeliveryError::Transient {
            detail,
            status: None,
            retry_after: None,
        };
        let mut headers = async_nats::HeaderMap::new();
        headers.insert("Nats-Msg-Id", event.id);
        let subject = format!("{SUBJECT_PREFIX}.{}", event.event_type);
        let ack = self
            .js
            .publish_with_headers(subject, headers, event.body.to_vec().into())
            .await
            .map_err(|e| transient(format!("publish failed: {e}")))?
            .await
            .map_err(|e| transient(format!("no JetStream acknowledgement: {e}")))?;
        Ok(Delivered {
            status: None,
            detail: if ack.duplicate {
                format!(
                    "duplicate dropped by stream {} (seq {})",
                    ack.stream, ack.sequence
                )
            } else {
                format!("stored in stream {} at seq {}", ack.stream, ack.sequence)
            },
        })
    }
}
