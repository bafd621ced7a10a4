//! The Fast client: the seller → Fast order-management calls (README "Order management": cancel, refund,
//! business events) that merchant actions queue in the outbox. Each call is one outbox
//! entry whose body is the call's exact JSON; it is sent with `X-Fast-App` /
//! `X-Fast-App-Auth`, and with the entry's stable id as `X-Fast-Record-Id` and
//! `Idempotency-Key` on every attempt (as Magento's integration keys its retries). Fast's
//! answers count like a webhook's: 2xx or 409 delivered; 408, 429, 5xx and network errors
//! retried; other 4xx dead letters (the merchant sees them in `outbox list --dead`). Without
//! a token (or an app id) a call is not sent: it waits, never dead-lettered.

use super::webhook::{http_client, send};
use super::{CommerceBackend, Delivered, DeliveryError, Event};
use crate::config::Secret;
use crate::protocol::{FastCall, QueuedFastCall};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

pub struct FastClient {
    client: reqwest::Client,
    base: reqwest::Url,
    /// The configured app id; else the one Fast created the order with.
    app_id: Option<String>,
    token: Option<Secret>,
}

impl FastClient {
    pub fn new(
        base_url: &str,
        app_id: Option<String>,
        token: Option<Secret>,
        timeout: Duration,
    ) -> Result<FastClient, String> {
        let mut base = reqwest::Url::parse(base_url)
            .map_err(|e| format!("fast_api_url `{base_url}` is not a URL: {e}"))?;
        let versioned = base.path().trim_end_matches('/').ends_with("/v1");
        match base.path_segments_mut() {
            // Fast's API root with or without its version: `…/v1` is added when missing.
            Ok(mut segments) if !versioned => {
                segments.pop_if_empty().push("v1");
            }
            Ok(_) => {}
            Err(()) => return Err(format!("fast_api_url `{base_url}` cannot be a base URL")),
        }
        Ok(FastClient {
            client: http_client(timeout)?,
            base,
            app_id: app_id.filter(|a| !a.is_empty()),
            token,
        })
    }

    fn url(&self, call: FastCall, order_id: &str) -> reqwest::Url {
        let mut url = self.base.clone();
        if let Ok(mut segments) = url.path_segments_mut() {
            segments.pop_if_empty().extend(call.path_segments(order_id));
        }
        url
    }

    /// Sends one queued call.
    pub async fn send(
        &self,
        call: FastCall,
        event: &Event<'_>,
    ) -> Result<Delivered, DeliveryError> {
        let queued: QueuedFastCall =
            serde_json::from_slice(event.body).map_err(|e| DeliveryError::Permanent {
                detail: format!("the queued Fast call is unreadable: {e}"),
                status: None,
            })?;
        let app_id = self.app_id.as_deref().or(queued.app_id.as_deref());
        let (Some(token), Some(app_id)) = (&self.token, app_id) else {
            // Kept pending (never dead): configure and restart, and the call goes out.
            return Err(DeliveryError::NotConfigured {
                detail: "not sent: Fast API calls need FAST_SELLER_FAST_API_TOKEN and an app id \
                         (FAST_SELLER_APP_ID, or the app_id Fast created the order with)"
                    .into(),
            });
        };
        let request = self
            .client
            .post(self.url(call, event.order_id))
            .header("content-type", "application/json")
            .header("x-fast-app", app_id)
            .header("x-fast-app-auth", token.expose())
            .header("x-fast-record-id", event.id)
            .header("idempotency-key", event.id)
            .json(&queued.body);
        send(request).await.map(|d| Delivered {
            detail: format!("Fast API {}", d.detail),
            ..d
        })
    }
}

/// The outbox's one destination: Fast's calls to the Fast client, every other event to the
/// merchant's commerce backend. Both share the per-order sequence, so an order's Fast call
/// and the backend event about the same action arrive in the order they were made.
pub struct Router {
    backend: Arc<dyn CommerceBackend>,
    fast: FastClient,
}

impl Router {
    pub fn new(backend: Arc<dyn CommerceBackend>, fast: FastClient) -> Router {
        Router { backend, fast }
    }
}

#[async_trait]
impl CommerceBackend for Router {
    fn name(&self) -> &'static str {
        self.backend.name()
    }

    async fn deliver(&self, event: &Event<'_>) -> Result<Delivered, DeliveryError> {
        match FastCall::from_event_type(event.event_type) {
            Some(call) => self.fast.send(call, event).await,
            None => self.backend.deliver(event).await,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn urls_follow_the_protocol_and_encode_the_order_id() {
        let client = FastClient::new(
            "http://127.0.0.1:9/v1/",
            Some("app".into()),
            None,
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            client.url(FastCall::Cancel, "o-1").as_str(),
            "http://127.0.0.1:9/v1/external/orders/o-1"
        );
        assert_eq!(
            client.url(FastCall::Refund, "a/b c").as_str(),
            "http://127.0.0.1:9/v1/external/orders/a%2Fb%20c/refund"
        );
        assert_eq!(
            client.url(FastCall::BusinessEvent, "o-1").as_str(),
            "http://127.0.0.1:9/v1/external/orders/o-1/business_event"
        );
        for call in [FastCall::Cancel, FastCall::Refund, FastCall::BusinessEvent] {
            assert_eq!(FastCall::from_event_type(call.event_type()), Some(call));
        }
        assert_eq!(FastCall::from_event_type("order.canceled"), None);
    }

    #[test]
    fn the_version_is_added_to_a_bare_api_root() {
        for base in [
            "http://127.0.0.1:9",
            "http://127.0.0.1:9/",
            "http://127.0.0.1:9/v1",
        ] {
            let client = FastClient::new(base, None, None, Duration::from_secs(1)).unwrap();
            assert_eq!(
                client.url(FastCall::Cancel, "o-1").as_str(),
                "http://127.0.0.1:9/v1/external/orders/o-1",
                "{base}"
            );
        }
        let proxied = FastClient::new(
            "https://proxy.example/fast/",
            None,
            None,
            Duration::from_secs(1),
        )
        .unwrap();
        assert_eq!(
            proxied.url(FastCall::Refund, "o-1").as_str(),
            "https://proxy.example/fast/v1/external/orders/o-1/refund"
        );
    }

    #[test]
    fn a_bad_base_url_is_refused() {
        assert!(FastClient::new("not a url", None, None, Duration::from_secs(1)).is_err());
        assert!(FastClient::new("mailto:x@y", None, None, Duration::from_secs(1)).is_err());
    }
}
