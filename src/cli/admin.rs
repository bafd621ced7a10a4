//! The admin API of a running server, as the `orders` and `outbox` commands call it.

use super::{fail, CommandError};

/// The admin API of a running server.
pub(crate) struct AdminClient {
    base: String,
    token: String,
    client: reqwest::Client,
}

impl AdminClient {
    pub(crate) fn new(base: &str) -> Result<AdminClient, CommandError> {
        let token = std::env::var("FAST_SELLER_ADMIN_TOKEN")
            .ok()
            .filter(|t| !t.trim().is_empty())
            .ok_or_else(|| {
                fail(format!(
                    "FAST_SELLER_ADMIN_TOKEN is not set here: set it to the admin token the \
                     server at {} was started with",
                    base.trim_end_matches('/')
                ))
            })?;
        Ok(AdminClient {
            base: base.trim_end_matches('/').to_string(),
            token,
            client: reqwest::Client::new(),
        })
    }

    /// `base/admin/v1/<segments…>`, each segment encoded.
    pub(crate) fn url(&self, segments: &[&str]) -> Result<reqwest::Url, CommandError> {
        let mut url = reqwest::Url::parse(&self.base)
            .map_err(|e| fail(format!("--url `{}`: {e}", self.base)))?;
        url.path_segments_mut()
            .map_err(|_| fail(format!("--url `{}` cannot be a base URL", self.base)))?
            .pop_if_empty()
            .extend(["admin", "v1"])
            .extend(segments);
        Ok(url)
    }

    pub(crate) fn get(&self, segments: &[&str]) -> Result<reqwest::RequestBuilder, CommandError> {
        Ok(self.client.get(self.url(segments)?))
    }

    pub(crate) fn post(&self, segments: &[&str]) -> Result<reqwest::RequestBuilder, CommandError> {
        Ok(self.client.post(self.url(segments)?))
    }

    /// Sends and returns the JSON answer; a refusal becomes the server's message.
    pub(crate) async fn send(
        &self,
        request: reqwest::RequestBuilder,
    ) -> Result<serde_json::Value, CommandError> {
        let resp = request.bearer_auth(&self.token).send().await.map_err(|e| {
            fail(format!(
                "no answer from the server at {}: {e} (is it running?)",
                self.base
            ))
        })?;
        let status = resp.status();
        let body: serde_json::Value = resp.json().await.map_err(|e| {
            fail(format!(
                "the server at {} answered HTTP {status} without JSON ({e}): is it a fast-seller?",
                self.base
            ))
        })?;
        if !status.is_success() {
            let reason = body["details"][0]["reason"].as_str().unwrap_or_default();
            return Err(fail(match reason {
                "admin_api_disabled" => format!(
                    "the server at {} has no FAST_SELLER_ADMIN_TOKEN, so its admin API is off: \
                     set it where the server runs and restart it",
                    self.base
                ),
                "admin_token_wrong" => format!(
                    "the server at {} refused the token: FAST_SELLER_ADMIN_TOKEN here is not \
                     the one it was started with",
                    self.base
                ),
                _ => format!(
                    "HTTP {status}: {}",
                    body.get("message").and_then(|m| m.as_str()).unwrap_or("")
                ),
            }));
        }
        Ok(body)
    }
}
