//! The HTTP layer: routes, body reading, one span per request. Handlers only translate
//! between HTTP and `service` calls; `error` is the single mapping of failures to HTTP.

mod admin;
pub mod body;
pub mod console;
pub mod echo;
pub mod error;
mod record;

use crate::auth::{Authenticator, HeaderLookup};
use crate::clock::Clock;
use crate::config::Secret;
use crate::metrics::Metrics;
use crate::protocol::Verb;
use crate::service::admin::OutboxAdmin;
use crate::service::{Caller, Reply, Service, ServiceError};
use crate::tapes::Recorder;
use actix_web::dev::ServiceRequest;
use actix_web::http::StatusCode;
use actix_web::{web, HttpMessage as _, HttpRequest, HttpResponse};
use body::BodyLimits;
use error::ApiError;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Instant;
use tracing::{field::Empty, Instrument, Span};

/// Whether the server takes traffic: false while starting and while draining.
#[derive(Debug, Default)]
pub struct Readiness {
    serving: AtomicBool,
    /// What start-up still waits for (e.g. `jwks`), with the reason shown by `/readyz`.
    waiting: std::sync::Mutex<std::collections::BTreeMap<&'static str, String>>,
}

impl Readiness {
    /// Taking traffic (after start-up), or not (draining).
    pub fn set(&self, ready: bool) {
        self.serving.store(ready, Ordering::SeqCst);
    }
    /// Ready: serving and waiting for nothing.
    pub fn get(&self) -> bool {
        self.serving.load(Ordering::SeqCst) && self.lock().is_empty()
    }
    /// Not ready until [`Readiness::done_waiting`] for `what`; `reason` says why.
    pub fn wait_for(&self, what: &'static str, reason: String) {
        self.lock().insert(what, reason);
    }
    pub fn done_waiting(&self, what: &'static str) {
        self.lock().remove(what);
    }
    /// Why it is not ready: what it waits for, else that it is starting or draining.
    pub fn reason(&self) -> String {
        let waiting = self.lock();
        if waiting.is_empty() {
            return "starting or draining".into();
        }
        let reasons: Vec<String> = waiting.iter().map(|(k, v)| format!("{k}: {v}")).collect();
        reasons.join("; ")
    }
    fn lock(&self) -> std::sync::MutexGuard<'_, std::collections::BTreeMap<&'static str, String>> {
        self.waiting.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// What every handler gets.
pub struct AppState {
    pub service: Arc<Service>,
    pub limits: BodyLimits,
    /// Bytes of request bodies held at once (`--body-bytes-in-flight`).
    pub body_budget: body::BodyBudget,
    pub readiness: Arc<Readiness>,
    pub auth: Arc<Authenticator>,
    pub clock: Arc<dyn Clock>,
    pub outbox: Arc<OutboxAdmin>,
    /// Bearer token of `/admin/v1`; the admin API is off without one.
    pub admin_token: Option<Secret>,
    pub metrics: Arc<Metrics>,
    /// Writes every Fast exchange as tapes (`serve --record DIR`).
    pub recorder: Option<Arc<Recorder>>,
    /// The merchant console's own state (`/console`).
    pub console: Arc<console::Console>,
}

/// Header access for the authenticators.
pub(crate) struct Headers<'a>(pub(crate) &'a actix_web::http::header::HeaderMap);

impl HeaderLookup for Headers<'_> {
    fn get(&self, name: &str) -> Option<&str> {
        self.0.get(name).and_then(|v| v.to_str().ok())
    }
}

/// The route table.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/fast/v1/{verb}")
            .wrap(actix_web::middleware::from_fn(record::record_exchange))
            .route(web::post().to(fast_call))
            .default_service(web::to(method_not_allowed)),
    )
    .service(web::resource("/healthz").route(web::get().to(healthz)))
    .service(web::resource("/readyz").route(web::get().to(readyz)))
    .service(web::resource("/metrics").route(web::get().to(metrics)))
    .service(web::resource("/openapi.json").route(web::get().to(openapi)))
    .service(web::resource("/docs").route(web::get().to(docs)))
    .service(web::resource("/docs/").route(web::get().to(docs_slash)))
    .service(web::scope("/admin/v1").configure(admin::configure))
    .service(web::scope("/console").configure(console::configure));
}

/// Opens the request's span (filled with request_id and order_id by the service) and logs
/// one line when the answer is ready.
pub fn request_span(req: &ServiceRequest) -> Span {
    tracing::info_span!(
        "request",
        method = %echo::Echo(req.method().as_str()),
        path = %echo::Echo(req.path()),
        request_id = Empty,
        order_id = Empty,
    )
}

/// The bounded `endpoint` label of a path.
fn endpoint_label(path: &str) -> &'static str {
    match path {
        "/fast/v1/create" => "create",
        "/fast/v1/read" => "read",
        "/fast/v1/update" => "update",
        "/fast/v1/delete" => "delete",
        "/healthz" => "healthz",
        "/readyz" => "readyz",
        "/metrics" => "metrics",
        "/openapi.json" | "/docs" | "/docs/" => "docs",
        p if p.starts_with("/admin/") => "admin",
        p if p.starts_with("/console") => "console",
        _ => "other",
    }
}

/// Wraps every request in its span, logs its outcome and counts it.
pub fn traced<S>(
    req: ServiceRequest,
    srv: &S,
    metrics: Arc<Metrics>,
) -> impl std::future::Future<Output = Result<actix_web::dev::ServiceResponse, actix_web::Error>>
where
    S: actix_web::dev::Service<
        ServiceRequest,
        Response = actix_web::dev::ServiceResponse,
        Error = actix_web::Error,
    >,
{
    let span = request_span(&req);
    let endpoint = endpoint_label(req.path());
    let start = Instant::now();
    let fut = srv.call(req);
    async move {
        let res = fut.await;
        let elapsed = start.elapsed();
        let latency_ms = elapsed.as_secs_f64() * 1000.0;
        metrics
            .request_seconds
            .with_label_values(&[endpoint])
            .observe(elapsed.as_secs_f64());
        let status = match &res {
            Ok(r) => {
                tracing::info!(status = r.status().as_u16(), latency_ms, "answered");
                r.status()
            }
            Err(e) => {
                tracing::warn!(error = %e, latency_ms, "failed");
                e.as_response_error().status_code()
            }
        };
        Metrics::inc(&metrics.requests, &[endpoint, status.as_str()]);
        res
    }
    .instrument(span)
}

async fn fast_call(
    req: HttpRequest,
    verb: web::Path<String>,
    payload: web::Payload,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ApiError> {
    let verb =
        Verb::parse(&verb).ok_or_else(|| ApiError::NoRoute(echo::bounded_echo(req.path())))?;
    // Size limit first, then authentication over the raw bytes, then parsing.
    // `_held` counts the body against the budget until the answer is built.
    let (body, _held) = body::read_json(&req, payload, state.limits, &state.body_budget).await?;
    Ok(respond(answer(&req, verb, body, &state).await?))
}

/// Authenticates and runs one Fast call.
async fn answer(
    req: &HttpRequest,
    verb: Verb,
    body: web::Bytes,
    state: &AppState,
) -> Result<Reply, ApiError> {
    let principal = state
        .auth
        .verify(&Headers(req.headers()), &body, state.clock.as_ref())
        .await
        .inspect_err(|e| tracing::info!(check = e.kind(), "authentication failed"))?;
    // Only an authenticated exchange is handed to the recorder: a refused caller must not
    // make the server parse its body again or write files named after its ids.
    if state.recorder.is_some() {
        req.extensions_mut().insert(record::ReadBody(body.clone()));
    }
    let caller = Caller {
        app_id: principal.app_id,
    };
    let service = state.service.clone();
    // The service runs in its own task: if the client goes away mid-request, the commit and
    // its flush still finish, so a later retry never sees a half-acknowledged state.
    let work =
        async move { service.handle(verb, &body, &caller).await }.instrument(Span::current());
    let reply = tokio::spawn(work)
        .await
        .map_err(|e| ServiceError::Internal(format!("request task failed: {e}")))??;
    if reply.replayed {
        Metrics::inc(&state.metrics.replays, &[endpoint_label(req.path())]);
    }
    Ok(reply)
}

fn respond(reply: Reply) -> HttpResponse {
    let status = StatusCode::from_u16(reply.status).unwrap_or(StatusCode::OK);
    let mut resp = HttpResponse::build(status);
    resp.content_type("application/json");
    if reply.replayed {
        resp.insert_header(("Idempotent-Replayed", "true"));
    }
    resp.body(reply.body)
}

async fn method_not_allowed(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::MethodNotAllowed(echo::bounded_echo(
        req.method().as_str(),
    )))
}

/// Unknown paths: 404 in the rpcStatus shape.
pub async fn not_found(req: HttpRequest) -> Result<HttpResponse, ApiError> {
    Err(ApiError::NoRoute(echo::bounded_echo(req.path())))
}

async fn healthz() -> HttpResponse {
    HttpResponse::Ok().json(serde_json::json!({"status": "ok"}))
}

/// The OpenAPI document of every endpoint (committed as `docs/openapi.json`).
pub const OPENAPI: &str = include_str!("../../docs/openapi.json");
/// An offline page that renders [`OPENAPI`] (no external assets).
const DOCS_PAGE: &str = include_str!("../../docs/api.html");

async fn openapi() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("application/json")
        .body(OPENAPI)
}

async fn docs() -> HttpResponse {
    HttpResponse::Ok()
        .content_type("text/html; charset=utf-8")
        .body(DOCS_PAGE)
}

/// `/docs/` is `/docs`: redirected relatively, so the page still finds `openapi.json` next to
/// it behind a proxy that adds a path prefix.
async fn docs_slash() -> HttpResponse {
    HttpResponse::PermanentRedirect()
        .insert_header(("Location", "../docs"))
        .finish()
}

async fn metrics(state: web::Data<AppState>) -> HttpResponse {
    if let Ok(backlog) = state.outbox.backlog().await {
        state.metrics.set_backlog((backlog.pending, backlog.dead));
    }
    HttpResponse::Ok()
        .content_type("text/plain; version=0.0.4")
        .body(state.metrics.render())
}

async fn readyz(state: web::Data<AppState>) -> HttpResponse {
    if state.readiness.get() {
        let outbox = state.outbox.backlog().await.ok();
        let catalog = state.service.catalog();
        let age = match catalog.read_at_ms() {
            0 => None,
            at => Some(state.clock.now_ms().saturating_sub(at) / 1000),
        };
        HttpResponse::Ok().json(serde_json::json!({
            "status": "ready",
            "outbox": outbox,
            "catalog": {"source": catalog.source(), "age_seconds": age},
        }))
    } else {
        HttpResponse::ServiceUnavailable()
            .insert_header(("Retry-After", "1"))
            .json(serde_json::json!({"status": "not ready", "reason": state.readiness.reason()}))
    }
}
