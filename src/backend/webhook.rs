//! The `webhook` backend: POST each event to the merchant's URL, signed with Standard
//! Webhooks headers. `webhook-id` is the event id on every attempt (also sent as
//! `Idempotency-Key`), so the receiver can drop redeliveries; the timestamp and signature
//! are fresh per attempt. 2xx or 409 = delivered; 408, 429, 5xx and network errors = retry
//! (honouring `Retry-After` in seconds); any other status = dead letter.

use super::{CommerceBackend, Delivered, DeliveryError, Event};
use crate::clock::Clock;
use crate::signing::{self, WebhookSecret};
use async_trait::async_trait;
use std::sync::Arc;
use std::time::Duration;

pub struct WebhookBackend {
    client: reqwest::Client,
    url: String,
    secret: WebhookSecret,
    clock: Arc<dyn Clock>,
}

impl WebhookBackend {
    pub fn new(
        url: String,
        secret: WebhookSecret,
        clock: Arc<dyn Clock>,
        timeout: Duration,
    ) -> Result<WebhookBackend, String> {
        Ok(WebhookBackend {
            client: http_client(timeout)?,
            url,
            secret,
            clock,
        })
    }
}

/// How the backend's answer counts (README "Forwarding converted orders").
pub fn classify(status: u16, retry_after: Option<&str>) -> Result<Delivered, DeliveryError> {
    let detail = format!("HTTP {status}");
    match status {
        200..=299 | 409 => Ok(Delivered {
            status: Some(status),
            detail,
        }),
        408 | 429 | 500..=599 | 300..=399 => Err(DeliveryError::Transient {
            detail,
            status: Some(status),
            retry_after: retry_after
                .and_then(|v| v.trim().parse::<u64>().ok())
                .map(Duration::from_secs),
        }),
        _ => Err(DeliveryError::Permanent {
            detail,
            status: Some(status),
        }),
    }
}

#[async_trait]
impl CommerceBackend for WebhookBackend {
    fn name(&self) -> &'static str {
        "webhook"
    }

    async fn deliver(&self, event: &Event<'_>) -> Result<Delivered, DeliveryError> {
        let now = i64::try_from(self.clock.now_ms() / 1000).unwrap_or(i64::MAX);
        let mut req = self
            .client
            .post(&self.url)
            .header("content-type", "application/json")
            .header("idempotency-key", event.id);
        for (name, value) in signing::headers(&self.secret, event.id, now, event.body) {
            req = req.header(name, value);
        }
        send(req.body(event.body.to_vec())).await
    }
}

/// The client of outgoing deliveries: no redirects, a connect and a whole-call timeout.
pub(super) fn http_client(timeout: Duration) -> Result<reqwest::Client, String> {
    reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .connect_timeout(Duration::from_secs(5).min(timeout))
        .timeout(timeout)
        .user_agent(concat!("fast-seller/", env!("CARGO_PKG_VERSION")))
        .build()
        .map_err(|e| format!("cannot build the HTTP client: {e}"))
}

/// Sends one delivery and classifies the answer (a transport failure is worth a retry).
pub(super) async fn send(req: reqwest::RequestBuilder) -> Result<Delivered, DeliveryError> {
    let resp = req.send().await.map_err(|e| DeliveryError::Transient {
        detail: format!("request failed: {}", describe(&e)),
        status: None,
        retry_after: None,
    })?;
    let retry_after = resp
        .headers()
        .get("retry-after")
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned);
    classify(resp.status().as_u16(), retry_after.as_deref())
}

fn describe(e: &reqwest::Error) -> &'static str {
    if e.is_timeout() {
        "timed out"
    } else if e.is_connect() {
        "could not connect"
    } else {
        "transport error"
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn statuses_map_to_delivered_retry_or_dead() {
        for ok in [200, 201, 204, 409] {
            assert!(classify(ok, None).is_ok(), "{ok}");
        }
        for retry in [408, 429, 500, 502, 503, 301, 302] {
            assert!(
                matches!(classify(retry, None), Err(DeliveryError::Transient { .. })),
                "{retry}"
            );
        }
        for dead in [400, 401, 404, 410, 422] {
            assert!(
                matches!(classify(dead, None), Err(DeliveryError::Permanent { .. })),
                "{dead}"
            );
        }
        let Err(DeliveryError::Transient { retry_after, .. }) = classify(503, Some(" 60")) else {
            panic!("503 must be transient");
        };
        assert_eq!(retry_after, Some(Duration::from_secs(60)));
        let Err(DeliveryError::Transient { retry_after, .. }) = classify(429, Some("soon")) else {
            panic!("429 must be transient");
        };
        assert_eq!(
            retry_after, None,
            "a malformed Retry-After falls back to the schedule"
        );
    }
}
