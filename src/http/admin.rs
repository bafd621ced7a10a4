//! `/admin/v1`: the merchant's operations API, behind `Authorization: Bearer
//! <FAST_SELLER_ADMIN_TOKEN>` (off when no token is configured).

use super::error::ApiError;
use super::AppState;
use crate::service::admin::{parse_state, MAX_LIST};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;
use sha2::{Digest, Sha256};

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.route("/outbox", web::get().to(list))
        .route("/outbox/retry-dead", web::post().to(retry_dead))
        .route("/outbox/{id}", web::get().to(show))
        .route("/outbox/{id}/retry", web::post().to(retry));
}

/// Checks the bearer token in constant time (comparing digests).
fn authorize(req: &HttpRequest, state: &AppState) -> Result<(), ApiError> {
    let Some(expected) = &state.admin_token else {
        return Err(ApiError::AdminAuth(
            "disabled: set FAST_SELLER_ADMIN_TOKEN to enable it",
        ));
    };
    let given = req
        .headers()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .ok_or(ApiError::AdminAuth("missing bearer token"))?;
    let a = Sha256::digest(given.trim().as_bytes());
    let b = Sha256::digest(expected.expose().as_bytes());
    let diff = a
        .iter()
        .zip(b.iter())
        .fold(0u8, |acc, (x, y)| acc | (x ^ y));
    if diff != 0 {
        return Err(ApiError::AdminAuth("wrong bearer token"));
    }
    Ok(())
}

#[derive(Deserialize)]
struct ListQuery {
    state: Option<String>,
    limit: Option<usize>,
}

async fn list(
    req: HttpRequest,
    query: web::Query<ListQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    let filter = query.state.as_deref().map(parse_state).transpose()?;
    let items = state
        .outbox
        .list(filter, query.limit.unwrap_or(100).min(MAX_LIST))
        .await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "events": items })))
}

async fn show(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    Ok(HttpResponse::Ok().json(state.outbox.show(&id).await?))
}

async fn retry(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    Ok(HttpResponse::Ok().json(state.outbox.retry(&id).await?))
}

async fn retry_dead(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    authorize(&req, &state)?;
    let requeued = state.outbox.retry_all_dead().await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "requeued": requeued })))
}
