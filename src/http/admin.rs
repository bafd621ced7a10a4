//! `/admin/v1`: the merchant's operations API, behind `Authorization: Bearer
//! <FAST_SELLER_ADMIN_TOKEN>` (off when no token is configured).

use super::echo::Echo;
use super::error::{AdminError, ApiError};
use super::respond;
use super::{AppState, Headers};
use crate::auth::admin::{check_admin_token, AdminAuthError};
use crate::config::Secret;
use crate::protocol::OrderStatus;
use crate::service::admin::{parse_state, MAX_LIST};
use crate::service::orders::{OrderCall, OrderFilter};
use crate::service::{Reply, ServiceError};
use actix_web::http::header::{self, HeaderValue};
use actix_web::{web, HttpRequest, HttpResponse};
use serde::Deserialize;

pub fn configure(cfg: &mut web::ServiceConfig) {
    // A malformed query string is a 400 in the rpcStatus shape like every other refusal.
    let query = web::QueryConfig::default().error_handler(|e, _| {
        AdminError(ApiError::Service(ServiceError::invalid(
            "invalid_query",
            format!("query string: {e}"),
        )))
        .into()
    });
    cfg.app_data(query)
        .route("/outbox", web::get().to(list))
        .route("/outbox/retry-dead", web::post().to(retry_dead))
        .route("/outbox/{id}", web::get().to(show))
        .route("/outbox/{id}/retry", web::post().to(retry))
        .route("/orders", web::get().to(list_orders))
        .route("/orders/{id}", web::get().to(show_order))
        .route("/orders/{id}/cancel", action_route(Action::Cancel))
        .route(
            "/orders/{id}/refunds/calculate",
            action_route(Action::RefundCalculate),
        )
        .route("/orders/{id}/refunds", action_route(Action::Refund))
        .route("/orders/{id}/fulfillments", action_route(Action::Fulfil))
        .route("/orders/{id}/capture", action_route(Action::Capture));
}

/// The merchant API's bearer token check (`auth::admin`).
fn authorize(req: &HttpRequest, state: &AppState) -> Result<(), AdminAuthError> {
    check_admin_token(
        &Headers(req.headers()),
        state.admin_token.as_ref().map(Secret::expose),
    )
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
) -> Result<HttpResponse, AdminError> {
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
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    Ok(HttpResponse::Ok().json(state.outbox.show(&id).await?))
}

async fn retry(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    Ok(HttpResponse::Ok().json(state.outbox.retry(&id).await?))
}

async fn retry_dead(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    let requeued = state.outbox.retry_all_dead().await?;
    Ok(HttpResponse::Ok().json(serde_json::json!({ "requeued": requeued })))
}

#[derive(Deserialize)]
struct OrdersQuery {
    status: Option<String>,
    /// RFC 3339 time or YYYY-MM-DD (inclusive).
    created_from: Option<String>,
    /// RFC 3339 time or YYYY-MM-DD (exclusive).
    created_to: Option<String>,
    q: Option<String>,
    cursor: Option<String>,
    limit: Option<usize>,
}

/// `ORDER_STATUS_BOOKED`, `booked` or its number.
pub(super) fn parse_status(text: &str) -> Result<OrderStatus, ServiceError> {
    let upper = text.trim().to_ascii_uppercase();
    OrderStatus::from_name(&upper)
        .or_else(|| OrderStatus::from_name(&format!("ORDER_STATUS_{upper}")))
        .or_else(|| upper.parse().ok().and_then(OrderStatus::from_number))
        .ok_or_else(|| {
            ServiceError::invalid(
                "invalid_query",
                format!("status: `{}` is not an order status", Echo(text)),
            )
        })
}

/// Milliseconds since the epoch of an RFC 3339 time or a date (midnight UTC).
pub(super) fn parse_time(field: &str, text: &str) -> Result<u64, ServiceError> {
    let text = text.trim();
    let full = if text.len() == 10 {
        format!("{text}T00:00:00Z")
    } else {
        text.to_string()
    };
    humantime::parse_rfc3339_weak(&full)
        .ok()
        .and_then(|t| t.duration_since(std::time::UNIX_EPOCH).ok())
        .and_then(|d| u64::try_from(d.as_millis()).ok())
        .ok_or_else(|| {
            ServiceError::invalid(
                "invalid_query",
                format!(
                    "{field}: `{}` is not an RFC 3339 time or a date YYYY-MM-DD",
                    Echo(text)
                ),
            )
        })
}

async fn list_orders(
    req: HttpRequest,
    query: web::Query<OrdersQuery>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    let status = query.status.as_deref().map(parse_status).transpose()?;
    let filter = OrderFilter {
        status,
        created_from_ms: query
            .created_from
            .as_deref()
            .map(|t| parse_time("created_from", t))
            .transpose()?,
        created_to_ms: query
            .created_to
            .as_deref()
            .map(|t| parse_time("created_to", t))
            .transpose()?,
        text: query.q.clone().filter(|q| !q.trim().is_empty()),
        cursor: query.cursor.clone().filter(|c| !c.is_empty()),
        limit: query.limit.unwrap_or(50),
    };
    Ok(HttpResponse::Ok().json(state.service.list_orders(&filter).await?))
}

fn json(body: Vec<u8>) -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(body)
}

/// A merchant's view of one order, with its version as `ETag` (the value `If-Match` takes
/// back).
fn order_answer(reply: Reply) -> HttpResponse {
    let etag = reply
        .version
        .and_then(|v| HeaderValue::from_str(&format!("\"{v}\"")).ok());
    let mut resp = respond(reply);
    if let Some(tag) = etag {
        resp.headers_mut().insert(header::ETAG, tag);
    }
    resp
}

async fn show_order(
    req: HttpRequest,
    id: web::Path<String>,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    authorize(&req, &state)?;
    Ok(order_answer(state.service.show_order(&id).await?))
}

/// `If-Match: 3`, `"3"` or `W/"3"`: the order version the merchant last saw.
fn if_match(req: &HttpRequest) -> Result<Option<u64>, ServiceError> {
    let Some(value) = req.headers().get("if-match") else {
        return Ok(None);
    };
    let text = value.to_str().unwrap_or("").trim();
    let bare = text.strip_prefix("W/").unwrap_or(text).trim_matches('"');
    bare.parse::<u64>().map(Some).map_err(|_| {
        ServiceError::invalid(
            "invalid_if_match",
            format!(
                "If-Match: `{}` is not an order version (a number, as in the order's `version`)",
                Echo(text)
            ),
        )
    })
}

/// The parts of a merchant action the HTTP request carries.
struct ActionRequest {
    order: String,
    if_match: Option<u64>,
    idempotency_key: Option<String>,
    body: web::Bytes,
}

impl ActionRequest {
    async fn read(
        req: &HttpRequest,
        id: String,
        payload: web::Payload,
        state: &AppState,
    ) -> Result<ActionRequest, AdminError> {
        authorize(req, state)?;
        let idempotency_key = req
            .headers()
            .get("idempotency-key")
            .map(|v| {
                v.to_str().map(str::to_owned).map_err(|_| {
                    ServiceError::invalid(
                        "idempotency_key_invalid",
                        "Idempotency-Key: must be visible ASCII",
                    )
                })
            })
            .transpose()?;
        let if_match = if_match(req)?;
        // No body at all means "no options" (capture, a whole cancel); a body must be JSON,
        // never silently dropped for want of a Content-Type.
        let headers = req.headers();
        let declares_body = headers.contains_key(header::CONTENT_TYPE)
            || headers.contains_key(header::TRANSFER_ENCODING)
            || headers
                .get(header::CONTENT_LENGTH)
                .and_then(|v| v.to_str().ok())
                .is_some_and(|v| v.trim() != "0");
        let body = if declares_body {
            super::body::read_json(req, payload, state.limits, &state.body_budget)
                .await?
                .0
        } else {
            web::Bytes::new()
        };
        Ok(ActionRequest {
            order: id,
            if_match,
            idempotency_key,
            body,
        })
    }

    fn call(&self) -> OrderCall<'_> {
        OrderCall {
            order: &self.order,
            if_match: self.if_match,
            idempotency_key: self.idempotency_key.as_deref(),
            default_source: "admin-api",
            body: &self.body,
        }
    }
}

/// The merchant's actions on one order.
#[derive(Debug, Clone, Copy)]
enum Action {
    Cancel,
    RefundCalculate,
    Refund,
    Fulfil,
    Capture,
}

fn action_route(action: Action) -> actix_web::Route {
    web::post().to(
        move |req: HttpRequest,
              id: web::Path<String>,
              payload: web::Payload,
              state: web::Data<AppState>| order_action(action, req, id, payload, state),
    )
}

async fn order_action(
    action: Action,
    req: HttpRequest,
    id: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, AdminError> {
    let request = ActionRequest::read(&req, id.into_inner(), payload, &state).await?;
    let call = request.call();
    let service = &state.service;
    let reply = match action {
        Action::RefundCalculate => return Ok(json(service.refund_calculate(call).await?)),
        Action::Cancel => service.cancel_order(call).await?,
        Action::Refund => service.refund_order(call).await?,
        Action::Fulfil => service.fulfil_order(call).await?,
        Action::Capture => service.capture_order(call).await?,
    };
    Ok(order_answer(reply))
}
