//! The transport: one POST per operation, authentication, and the mapping of every failure
//! to [`VendureError`].

use super::VendureError;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use std::time::Duration;
use tokio::sync::Mutex;

/// The verified Admin API documents. Each request sends one file with the `operationName` it
/// runs (GraphQL picks that operation; the file's fragments come along).
pub(super) const CATALOG: &str =
    include_str!("../../../integrations/vendure/graphql/catalog.graphql");
pub(super) const ORDERS: &str =
    include_str!("../../../integrations/vendure/graphql/orders.graphql");
const AUTH: &str = include_str!("../../../integrations/vendure/graphql/auth.graphql");

/// How fast-seller authenticates to the Admin API.
#[derive(Clone)]
pub enum Auth {
    /// Header `vendure-api-key` (the server's `tokenMethod` must include `api-key`).
    ApiKey(String),
    /// `login`; the session token comes back in the `vendure-auth-token` response header and
    /// is sent as a bearer token; an expired session logs in again.
    Login { username: String, password: String },
}

impl std::fmt::Debug for Auth {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Auth::ApiKey(_) => f.write_str("ApiKey(***)"),
            Auth::Login { username, .. } => write!(f, "Login({username}, ***)"),
        }
    }
}

/// A Vendure Admin API client.
#[derive(Debug)]
pub struct VendureClient {
    http: reqwest::Client,
    url: String,
    auth: Auth,
    channel_token: Option<String>,
    /// The bearer token of the current login session.
    session: Mutex<Option<String>>,
}

#[derive(Deserialize)]
struct Answer {
    data: Option<Value>,
    #[serde(default)]
    errors: Vec<GraphQlError>,
}

#[derive(Deserialize)]
struct GraphQlError {
    #[serde(default)]
    message: String,
    #[serde(default)]
    extensions: Option<Value>,
}

const TOKEN_HEADER: &str = "vendure-auth-token";

impl VendureClient {
    /// `url` is the Admin API endpoint, e.g. `http://127.0.0.1:3000/admin-api`;
    /// `channel_token` selects a channel other than the default one (`vendure-token`).
    pub fn new(
        url: impl Into<String>,
        auth: Auth,
        channel_token: Option<String>,
    ) -> Result<Self, VendureError> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(60))
            .build()
            .map_err(|e| VendureError::Unsupported(format!("HTTP client: {e}")))?;
        Ok(VendureClient {
            http,
            url: url.into(),
            auth,
            channel_token,
            session: Mutex::new(None),
        })
    }

    /// Runs `operation` of `document` and decodes its `data`. With a login, a refused session
    /// (expired, or none yet) logs in once and tries again.
    pub(super) async fn op<T: DeserializeOwned>(
        &self,
        document: &str,
        operation: &str,
        variables: Value,
    ) -> Result<T, VendureError> {
        let data = match &self.auth {
            Auth::ApiKey(key) => {
                self.post(
                    document,
                    operation,
                    &variables,
                    Some(("vendure-api-key", key)),
                )
                .await?
                .0
            }
            Auth::Login { .. } => {
                let token = self.session_token(None).await?;
                let (data, renewed) =
                    match self.post_as(document, operation, &variables, &token).await {
                        Err(VendureError::Forbidden { .. }) => {
                            let token = self.session_token(Some(&token)).await?;
                            self.post_as(document, operation, &variables, &token)
                                .await?
                        }
                        other => other?,
                    };
                if let Some(token) = renewed {
                    *self.session.lock().await = Some(token);
                }
                data
            }
        };
        serde_json::from_value(data).map_err(|e| VendureError::Decode {
            operation: operation.to_owned(),
            message: e.to_string(),
        })
    }

    /// The session token: the current one, or a new login when there is none or the current
    /// one is `stale` (refused).
    async fn session_token(&self, stale: Option<&str>) -> Result<String, VendureError> {
        let mut session = self.session.lock().await;
        match session.as_deref() {
            Some(token) if Some(token) != stale => Ok(token.to_owned()),
            _ => self.login(&mut session).await,
        }
    }

    async fn post_as(
        &self,
        document: &str,
        operation: &str,
        variables: &Value,
        token: &str,
    ) -> Result<(Value, Option<String>), VendureError> {
        let bearer = format!("Bearer {token}");
        self.post(
            document,
            operation,
            variables,
            Some(("authorization", &bearer)),
        )
        .await
    }

    async fn login(&self, session: &mut Option<String>) -> Result<String, VendureError> {
        let Auth::Login { username, password } = &self.auth else {
            return Err(VendureError::Unsupported(
                "login without credentials".into(),
            ));
        };
        let variables = json!({ "username": username, "password": password });
        let (data, token) = self.post(AUTH, "Login", &variables, None).await?;
        let login = data.get("login").cloned().unwrap_or(Value::Null);
        let outcome: Result<Value, VendureError> = result("Login", login, "CurrentUser");
        if let Err(e) = outcome {
            return Err(VendureError::Forbidden {
                operation: "Login".into(),
                message: e.to_string(),
            });
        }
        let token = token.ok_or_else(|| VendureError::Forbidden {
            operation: "Login".into(),
            message: format!("no {TOKEN_HEADER} header in the answer"),
        })?;
        *session = Some(token.clone());
        Ok(token)
    }

    /// One request: `data` and the session token header if the server sent one.
    async fn post(
        &self,
        document: &str,
        operation: &str,
        variables: &Value,
        auth: Option<(&str, &str)>,
    ) -> Result<(Value, Option<String>), VendureError> {
        let mut request = self.http.post(&self.url).json(&json!({
            "query": document,
            "operationName": operation,
            "variables": variables,
        }));
        if let Some((name, value)) = auth {
            request = request.header(name, value);
        }
        if let Some(channel) = &self.channel_token {
            request = request.header("vendure-token", channel);
        }
        let response = request
            .send()
            .await
            .map_err(|e| VendureError::Transient(format!("{operation}: {e}")))?;
        let status = response.status();
        let token = response
            .headers()
            .get(TOKEN_HEADER)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned);
        let body = response
            .text()
            .await
            .map_err(|e| VendureError::Transient(format!("{operation}: {e}")))?;
        let transient = status.is_server_error() || status.as_u16() == 429;
        let answer: Answer = match serde_json::from_str(&body) {
            Ok(answer) => answer,
            Err(_) if transient => {
                return Err(VendureError::Transient(format!(
                    "{operation}: HTTP {status}"
                )))
            }
            Err(e) => {
                return Err(if status.is_success() {
                    VendureError::Decode {
                        operation: operation.to_owned(),
                        message: e.to_string(),
                    }
                } else {
                    VendureError::Http {
                        operation: operation.to_owned(),
                        status: status.as_u16(),
                        body: body.chars().take(500).collect(),
                    }
                })
            }
        };
        if let Some(error) = answer.errors.first() {
            let code = error
                .extensions
                .as_ref()
                .and_then(|x| x.get("code"))
                .and_then(Value::as_str)
                .map(str::to_owned);
            let message = answer
                .errors
                .iter()
                .map(|e| e.message.as_str())
                .collect::<Vec<_>>()
                .join("; ");
            return Err(match code.as_deref() {
                Some("FORBIDDEN") => VendureError::Forbidden {
                    operation: operation.to_owned(),
                    message,
                },
                _ if transient => VendureError::Transient(format!("{operation}: {message}")),
                _ => VendureError::GraphQl {
                    operation: operation.to_owned(),
                    code,
                    message,
                },
            });
        }
        if transient {
            return Err(VendureError::Transient(format!(
                "{operation}: HTTP {status}"
            )));
        }
        match answer.data {
            Some(data) if !data.is_null() => Ok((data, token)),
            _ => Err(VendureError::Decode {
                operation: operation.to_owned(),
                message: "no data".into(),
            }),
        }
    }
}

/// A result union (`__typename`): the expected type decoded, an `ErrorResult` (with
/// `errorCode`) as [`VendureError::Result`].
pub(super) fn result<T: DeserializeOwned>(
    operation: &str,
    value: Value,
    expected: &str,
) -> Result<T, VendureError> {
    let typename = value
        .get("__typename")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_owned();
    if typename != expected {
        let text = |k: &str| {
            value
                .get(k)
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned()
        };
        return Err(VendureError::Result {
            operation: operation.to_owned(),
            typename,
            error_code: text("errorCode"),
            message: text("message"),
        });
    }
    serde_json::from_value(value).map_err(|e| VendureError::Decode {
        operation: operation.to_owned(),
        message: e.to_string(),
    })
}
