//! Fixture tapes: recorded Fast ↔ seller conversations, replayed to prove a server still
//! answers Fast the same way, and a validator that plays Fast against any seller backend.
//!
//! The format is documented in `fixtures/README.md`. In short, a tape is a JSON Lines file:
//! an optional header line `{"tape": {...}}`, then one line per interaction
//! (`{"step", "name", "endpoint", "request", "response": {"status", "body"}, "forwarded"}`).
//!
//! - [`format`]: reading and writing tapes.
//! - [`bind`]: placeholders (`{{ext:1}}`, `{{run}}`, `{{any}}`) for ids the seller generates.
//! - [`compare`]: the decimal-aware JSON diff, the central list of volatile fields
//!   ([`compare::VOLATILE`]) and per-tape ignore rules.
//! - [`replay`]: `fast-seller replay` ([`replay()`]), against a running target or a fresh
//!   server per tape (the command line starts those in process: `crate::cli::tapes`).
//! - [`record`]: `fast-seller serve --record` ([`Recorder`]).
//! - [`validate`]: `fast-seller validate` ([`validate()`]), protocol invariants for any seller.
//! - [`junit`]: JUnit XML for CI (each report renders its own suites).

/// In the Fast ids of the orders `replay` and `validate` create (`F-fs-test-…`,
/// `fs-test-…`): they stay in a `--target` server's store, and `orders list
/// --no-test-orders` leaves them out.
pub const TEST_ORDER_MARK: &str = "fs-test-";

pub mod bind;
pub mod compare;
pub mod format;
pub mod junit;
pub mod record;
pub mod replay;
pub mod validate;

pub use record::Recorder;
pub use replay::{replay, ReplayOptions, ReplayReport, ServerFactory, TapeServer, Target};
pub use validate::{validate, ValidateOptions, ValidateReport};

use crate::signing::WebhookSecret;
use rsa::RsaPrivateKey;
use std::path::{Path, PathBuf};

/// Why a tape command could not run at all. Differences between a tape and a server are
/// not errors: they are reported in the [`ReplayReport`] / [`ValidateReport`].
#[derive(Debug, thiserror::Error)]
pub enum TapeError {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        source: std::io::Error,
    },
    #[error("{path}:{line}: {message}")]
    Parse {
        path: PathBuf,
        line: usize,
        message: String,
    },
    #[error("no tapes (*.jsonl) found in {0}")]
    NoTapes(PathBuf),
    #[error("in-process server: {0}")]
    Server(String),
    /// A request could not be sent or its answer not read (the message names the URL).
    #[error("{0}")]
    Http(String),
    #[error("signing: {0}")]
    Signing(String),
    #[error("{0}")]
    Invalid(String),
}

impl TapeError {
    pub(crate) fn io(path: &Path, source: std::io::Error) -> TapeError {
        TapeError::Io {
            path: path.to_path_buf(),
            source,
        }
    }
}

/// How replayed and validating requests are signed (the server's `--auth`).
#[derive(Clone, Default)]
pub enum Signing {
    /// No authentication headers.
    #[default]
    None,
    /// Standard Webhooks headers (`webhook-id`, `webhook-timestamp`, `webhook-signature`)
    /// computed with [`crate::signing::headers`] over the exact body bytes.
    Hmac(Box<WebhookSecret>),
    /// `Authorization: Bearer <RS256 JWT>` from [`crate::keys::sign_jwt`], a fresh token per
    /// request.
    FastJwt {
        key: Box<RsaPrivateKey>,
        kid: String,
        issuer: String,
        /// The merchant's Fast app id (the `aud` claim).
        audience: String,
        ttl_secs: i64,
    },
}

impl std::fmt::Debug for Signing {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Signing::None => f.write_str("Signing::None"),
            Signing::Hmac(_) => f.write_str("Signing::Hmac(<redacted>)"),
            Signing::FastJwt {
                kid,
                issuer,
                audience,
                ..
            } => write!(
                f,
                "Signing::FastJwt {{ kid: {kid:?}, issuer: {issuer:?}, audience: {audience:?} }}"
            ),
        }
    }
}

impl Signing {
    /// `--auth hmac`: signs with the first of the comma-separated `whsec_` secrets (the
    /// format of `FAST_SELLER_HMAC_SECRETS`).
    pub fn hmac(secrets: &str) -> Result<Signing, TapeError> {
        crate::signing::parse_secrets(secrets)
            .map_err(TapeError::Signing)?
            .into_iter()
            .next()
            .map(|s| Signing::Hmac(Box::new(s)))
            .ok_or_else(|| TapeError::Signing("no HMAC secret".into()))
    }

    /// `--auth fast-jwt`: RS256 tokens from the PEM private key at `key_path` (e.g. written
    /// by `fast-seller keys generate`), valid for five minutes.
    pub fn fast_jwt(
        key_path: &Path,
        kid: &str,
        issuer: &str,
        audience: &str,
    ) -> Result<Signing, TapeError> {
        let key =
            crate::keys::load_private(key_path).map_err(|e| TapeError::Signing(e.to_string()))?;
        Ok(Signing::FastJwt {
            key: Box::new(key),
            kid: kid.to_string(),
            issuer: issuer.to_string(),
            audience: audience.to_string(),
            ttl_secs: 300,
        })
    }

    /// The authentication headers for one request with exactly these body bytes.
    pub fn headers(&self, body: &[u8]) -> Result<Vec<(String, String)>, TapeError> {
        let now_secs = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_secs()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        match self {
            Signing::None => Ok(Vec::new()),
            Signing::Hmac(secret) => {
                let id = format!("msg_{}", uuid::Uuid::new_v4().simple());
                Ok(crate::signing::headers(secret, &id, now_secs, body)
                    .into_iter()
                    .map(|(k, v)| (k.to_string(), v))
                    .collect())
            }
            Signing::FastJwt {
                key,
                kid,
                issuer,
                audience,
                ttl_secs,
            } => {
                let token = crate::keys::sign_jwt(key, kid, issuer, audience, now_secs, *ttl_secs)
                    .map_err(|e| TapeError::Signing(e.to_string()))?;
                Ok(vec![(
                    "authorization".to_string(),
                    format!("Bearer {token}"),
                )])
            }
        }
    }
}

/// One HTTP exchange with a seller: what came back.
#[derive(Debug, Clone)]
pub(crate) struct Answer {
    pub status: u16,
    /// Header names lower-cased.
    pub headers: Vec<(String, String)>,
    pub bytes: Vec<u8>,
}

impl Answer {
    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers
            .iter()
            .find(|(k, _)| k.eq_ignore_ascii_case(name))
            .map(|(_, v)| v.as_str())
    }

    /// The body as JSON, or as a JSON string holding the text when it is not JSON.
    pub fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.bytes).unwrap_or_else(|_| {
            serde_json::Value::String(String::from_utf8_lossy(&self.bytes).into_owned())
        })
    }
}

/// POSTs `body` to `url` with `headers` (plus the signing headers) and reads the whole answer.
pub(crate) async fn post(
    client: &reqwest::Client,
    url: &str,
    headers: &[(String, String)],
    body: Vec<u8>,
    signing: &Signing,
) -> Result<Answer, TapeError> {
    let mut request = client.post(url);
    for (k, v) in headers {
        request = request.header(k.as_str(), v.as_str());
    }
    for (k, v) in signing.headers(&body)? {
        request = request.header(k, v);
    }
    let response = request
        .body(body)
        .send()
        .await
        .map_err(|e| TapeError::Http(format!("POST {url}: {}", chain(&e))))?;
    let status = response.status().as_u16();
    let headers = response
        .headers()
        .iter()
        .map(|(k, v)| {
            (
                k.as_str().to_ascii_lowercase(),
                String::from_utf8_lossy(v.as_bytes()).into_owned(),
            )
        })
        .collect();
    let bytes = response
        .bytes()
        .await
        .map_err(|e| TapeError::Http(format!("POST {url}: reading the answer: {}", chain(&e))))?
        .to_vec();
    Ok(Answer {
        status,
        headers,
        bytes,
    })
}

/// An error with its causes, `outer: inner: root`.
pub(crate) fn chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        let s_text = s.to_string();
        if !text.contains(&s_text) {
            text.push_str(": ");
            text.push_str(&s_text);
        }
        source = s.source();
    }
    text
}

/// `base` + `/fast/v1/<endpoint>` (an endpoint starting with `/` is taken as a path).
pub(crate) fn endpoint_url(base: &str, endpoint: &str) -> String {
    let base = base.trim_end_matches('/');
    if endpoint.starts_with('/') {
        format!("{base}{endpoint}")
    } else {
        format!("{base}/fast/v1/{endpoint}")
    }
}

/// Escapes nothing, truncates long renderings for one-line reports.
pub(crate) fn clip(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_string();
    }
    let mut out: String = text.chars().take(max).collect();
    out.push('…');
    out
}
