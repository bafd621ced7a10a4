//! Reads a request body ourselves: JSON content type only, identity encoding only, a size
//! limit checked before and while reading, and a deadline for the whole body (actix has no
//! body timeout, so a client trickling bytes would otherwise hold a worker forever). Header
//! values quoted in a refusal are bounded ([`Echo`]).

use super::echo::Echo;
use super::error::ApiError;
use actix_web::http::header;
use actix_web::{web, HttpRequest};
use futures_util::StreamExt;
use std::time::Duration;

#[derive(Debug, Clone, Copy)]
pub struct BodyLimits {
    pub max_bytes: usize,
    pub read_timeout: Duration,
}

pub async fn read_json(
    req: &HttpRequest,
    payload: web::Payload,
    limits: BodyLimits,
) -> Result<web::Bytes, ApiError> {
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
    tokio::time::timeout(limits.read_timeout, collect(payload, limits.max_bytes))
        .await
        .map_err(|_| ApiError::BodyTimeout)?
}

async fn collect(mut payload: web::Payload, max: usize) -> Result<web::Bytes, ApiError> {
    let mut buf = web::BytesMut::new();
    while let Some(chunk) = payload.next().await {
        let chunk = chunk.map_err(|e| ApiError::BodyRead(e.to_string()))?;
        if buf.len() + chunk.len() > max {
            return Err(ApiError::TooLarge(max));
        }
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
