//! Reads a request body ourselves: JSON content type only, identity encoding only, a size
//! limit checked before and while reading, and a deadline for the whole body (actix has no
//! body timeout, so a client trickling bytes would otherwise hold a worker forever). Header
//! values quoted in a refusal are bounded ([`Echo`]).

use super::echo::Echo;
use super::error::ApiError;
use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use std::sync::Arc;
use std::time::Duration;
use tokio::sync::{OwnedSemaphorePermit, Semaphore};

#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub read_timeout: Duration,
}

/// The bytes of request bodies held in memory at once, across all requests
/// (`--body-bytes-in-flight`). A body is counted from its first byte until its answer is
/// sent; one that does not fit is refused with 503 and `Retry-After` (an overload, not the
/// caller's fault), so many large bodies at once cannot exhaust memory.
#[derive(Debug, Clone)]
pub struct BodyBudget(Arc<Semaphore>);

impl BodyBudget {
    pub fn new(bytes: usize) -> BodyBudget {
        BodyBudget(Arc::new(Semaphore::new(bytes.min(Semaphore::MAX_PERMITS))))
    }

    /// Counts `n` more bytes of one body in `held`; `Overloaded` when the budget is spent.
    fn take(&self, held: &mut Held, n: usize) -> Result<(), ApiError> {
        let n = u32::try_from(n).map_err(|_| ApiError::Overloaded)?;
        let permit = self
            .0
            .clone()
            .try_acquire_many_owned(n)
            .map_err(|_| ApiError::Overloaded)?;
        match &mut held.0 {
            Some(all) => all.merge(permit),
            None => held.0 = Some(permit),
        }
        Ok(())
    }
}

/// The bytes of one body counted against the [`BodyBudget`] until this is dropped.
#[derive(Debug, Default)]
pub struct Held(Option<OwnedSemaphorePermit>);

pub async fn read_json(
    req: &HttpRequest,
    payload: web::Payload,
    limits: BodyLimits,
    budget: &BodyBudget,
) -> Result<(web::Bytes, Held), ApiError> {
    check_content_type(req)?;
    if let Some(declared) = req
        .headers()
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.trim().parse::<u64>().ok())
    {
        if declared > limits.max_bytes as u64 {
            return Err(ApiError::TooLarge(limits.max_bytes));
        }
    }
    let mut held = Held::default();
    let body = tokio::time::timeout(
        limits.read_timeout,
        collect(payload, limits.max_bytes, budget, &mut held),
    )
    .await
    .map_err(|_| ApiError::BodyTimeout)??;
    Ok((body, held))
}

async fn collect(
    mut payload: web::Payload,
    max: usize,
    budget: &BodyBudget,
    held: &mut Held,
) -> Result<web::Bytes, ApiError> {
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BodyRead(e.to_string()))?;
        if buf.len() + chunk.len() > max {
            return Err(ApiError::TooLarge(max));
        }
        budget.take(held, chunk.len())?;
        buf.extend_from_slice(&chunk);
    }
    Ok(buf.freeze())
}

fn check_content_type(req: &HttpRequest) -> Result<(), ApiError> {
    if let Some(enc) = req.headers().get(header::CONTENT_ENCODING) {
        let enc = enc.to_str().unwrap_or("").trim();
        if !enc.eq_ignore_ascii_case("identity") {
            return Err(ApiError::UnsupportedMedia(format!(
                "Content-Encoding `{}` is not supported; send the body uncompressed",
                Echo(enc)
            )));
        }
    }
    let ct = req
        .headers()
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    let mut parts = ct.split(';').map(str::trim);
    let mime = parts.next().unwrap_or("");
    if !mime.eq_ignore_ascii_case("application/json") {
        return Err(ApiError::UnsupportedMedia(format!(
            "Content-Type must be application/json (got `{}`)",
            Echo(ct)
        )));
    }
    for param in parts {
        if let Some((k, v)) = param.split_once('=') {
            let v = v.trim().trim_matches('"');
            if k.trim().eq_ignore_ascii_case("charset") && !v.eq_ignore_ascii_case("utf-8") {
                return Err(ApiError::UnsupportedMedia(format!(
                    "charset `{}` is not supported; JSON must be UTF-8",
                    Echo(v)
                )));
            }
        }
    }
    Ok(())
}
