//! `/console`: the merchant console, server-rendered HTML on the same services as the admin
//! API (`service::orders`, `service::admin`). Off (404) without `FAST_SELLER_ADMIN_TOKEN`;
//! signing in with that token gives a session cookie (`session.rs`); every form carries the
//! session's CSRF token. Pages are laid out in `pages.rs` from the view models of
//! `model.rs`; the handlers here and in `orders.rs` / `ops.rs` only translate.
//!
//! Every page is sent with a strict Content-Security-Policy: no script at all, styles only
//! from the one embedded stylesheet, forms only to this origin, no framing.

mod model;
mod ops;
mod orders;
mod pages;
mod session;

use super::error::ApiError;
use super::AppState;
use crate::auth::admin::check_admin_token;
use crate::config::{Secret, Settings};
use crate::service::ServiceError;
use actix_web::http::{header, StatusCode};
use actix_web::{web, HttpRequest, HttpResponse, ResponseError};
use maud::Markup;
use session::{Keys, Session, SignedOut};

/// What the console keeps beside the shared state.
#[derive(Debug)]
pub struct Console {
    /// The effective configuration as `config check` prints it (secrets redacted).
    config_text: String,
    signed_out: SignedOut,
}

impl Console {
    pub fn new(settings: &Settings) -> Console {
        Console {
            config_text: format!("{settings:#?}"),
            signed_out: SignedOut::default(),
        }
    }
}

/// No script, styles from this origin only, forms to this origin only, never framed.
pub const CSP: &str = "default-src 'none'; style-src 'self'; img-src 'self'; \
                       form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/// Largest form the console accepts (an order of a few hundred lines fits).
const FORM_LIMIT: usize = 1024 * 1024;

pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.app_data(
        web::FormConfig::default()
            .limit(FORM_LIMIT)
            .error_handler(|e, _| {
                ConsoleError::Forbidden(format!("the form could not be read: {e}")).into()
            }),
    )
    .route("", web::get().to(ops::overview))
    .route("/", web::get().to(ops::overview))
    .route("/assets/console.css", web::get().to(css))
    .route("/sign-in", web::get().to(sign_in_page))
    .route("/sign-in", web::post().to(sign_in))
    .route("/sign-out", web::post().to(sign_out))
    .route("/orders", web::get().to(orders::list))
    .route("/orders/{id}", web::get().to(orders::show))
    .route(
        "/orders/{id}/{action}/preview",
        web::post().to(orders::preview),
    )
    .route("/orders/{id}/{action}", web::post().to(orders::confirm))
    .route("/deliveries", web::get().to(ops::deliveries))
    .route("/deliveries/retry-dead", web::post().to(ops::retry_dead))
    .route("/deliveries/{id}", web::get().to(ops::delivery))
    .route("/deliveries/{id}/retry", web::post().to(ops::retry))
    .route("/catalog", web::get().to(ops::catalog))
    .route("/settings", web::get().to(ops::settings));
}

/// Why a console request is not served.
#[derive(Debug, thiserror::Error)]
pub enum ConsoleError {
    /// The console is off: no admin token configured.
    #[error("the console is off")]
    Off,
    /// A page asked for without a valid session: go and sign in.
    #[error("sign in first")]
    SignIn,
    /// A refused form: no session, a missing or wrong CSRF token, another origin.
    #[error("{0}")]
    Forbidden(String),
    /// What the services refused, with a link back to where the merchant was.
    #[error("{error}")]
    Api { error: ApiError, back: String },
}

impl From<ServiceError> for ConsoleError {
    fn from(e: ServiceError) -> Self {
        ConsoleError::Api {
            error: e.into(),
            back: "/console".into(),
        }
    }
}

/// Adds the page a refusal links back to.
pub trait Back<T> {
    fn back_to(self, back: &str) -> Result<T, ConsoleError>;
}

impl<T, E: Into<ApiError>> Back<T> for Result<T, E> {
    fn back_to(self, back: &str) -> Result<T, ConsoleError> {
        self.map_err(|e| ConsoleError::Api {
            error: e.into(),
            back: back.to_string(),
        })
    }
}

impl ResponseError for ConsoleError {
    fn status_code(&self) -> StatusCode {
        match self {
            ConsoleError::Off => StatusCode::NOT_FOUND,
            ConsoleError::SignIn => StatusCode::SEE_OTHER,
            ConsoleError::Forbidden(_) => StatusCode::FORBIDDEN,
            ConsoleError::Api { error, .. } => error.status_code(),
        }
    }

    fn error_response(&self) -> HttpResponse {
        match self {
            ConsoleError::Off => {
                ApiError::NoRoute("/console (set FAST_SELLER_ADMIN_TOKEN)".into()).error_response()
            }
            ConsoleError::SignIn => see_other("/console/sign-in"),
            ConsoleError::Forbidden(why) => {
                tracing::info!(why = %why, "console form refused");
                page(
                    StatusCode::FORBIDDEN,
                    pages::error(403, why, "/console/sign-in", "Sign in again"),
                )
            }
            ConsoleError::Api { error, back } => {
                let (status, message) = error.status_and_message();
                page(
                    status,
                    pages::error(status.as_u16(), &message, back, "Go back"),
                )
            }
        }
    }
}

/// An HTML page with the console's security headers.
pub fn page(status: StatusCode, markup: Markup) -> HttpResponse {
    HttpResponse::build(status)
        .content_type("text/html; charset=utf-8")
        .insert_header((header::CONTENT_SECURITY_POLICY, CSP))
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::X_FRAME_OPTIONS, "DENY"))
        .insert_header((header::REFERRER_POLICY, "same-origin"))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(markup.into_string())
}

/// 303 to `location` (after a form, so a reload does not post again).
pub fn see_other(location: &str) -> HttpResponse {
    HttpResponse::SeeOther()
        .insert_header((header::LOCATION, location))
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .finish()
}

async fn css(state: web::Data<AppState>) -> Result<HttpResponse, ConsoleError> {
    keys(&state)?;
    Ok(HttpResponse::Ok()
        .content_type("text/css; charset=utf-8")
        .insert_header((header::X_CONTENT_TYPE_OPTIONS, "nosniff"))
        .insert_header((header::CACHE_CONTROL, "public, max-age=3600"))
        .body(pages::CSS))
}

/// The session keys, or "off" without an admin token.
fn keys(state: &AppState) -> Result<Keys, ConsoleError> {
    state
        .admin_token
        .as_ref()
        .map(|t| Keys::from_token(t.expose()))
        .ok_or(ConsoleError::Off)
}

/// A cookie's value from the `Cookie` headers (actix's cookie support is not built in).
fn cookie(req: &HttpRequest, name: &str) -> Option<String> {
    req.headers()
        .get_all(header::COOKIE)
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|pair| pair.trim().split_once('='))
        .find(|(k, _)| *k == name)
        .map(|(_, v)| v.to_string())
}

/// Whether the request came over TLS (directly, or per `X-Forwarded-Proto` / `Forwarded`).
fn over_tls(req: &HttpRequest) -> bool {
    req.connection_info().scheme() == "https"
}

/// The signed-in session of a page request (else: go and sign in).
pub fn signed_in(req: &HttpRequest, state: &AppState) -> Result<Session, ConsoleError> {
    let keys = keys(state)?;
    let value = cookie(req, session::COOKIE).ok_or(ConsoleError::SignIn)?;
    let session = keys.verify(&value, state.clock.now_ms()).map_err(|e| {
        tracing::info!(why = %e, "console session refused");
        ConsoleError::SignIn
    })?;
    if state.console.signed_out.contains(&session.nonce) {
        return Err(ConsoleError::SignIn);
    }
    Ok(session)
}

/// A form as sent: every field in order (repeated names kept).
pub type Fields = web::Form<Vec<(String, String)>>;

/// The first value of a field.
pub fn field<'a>(form: &'a [(String, String)], name: &str) -> Option<&'a str> {
    form.iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_str())
}

/// The session of a form post, after its origin and CSRF token are checked.
pub fn posted(
    req: &HttpRequest,
    state: &AppState,
    form: &[(String, String)],
) -> Result<Session, ConsoleError> {
    check_origin(req)?;
    let session = signed_in(req, state).map_err(|e| match e {
        ConsoleError::SignIn => ConsoleError::Forbidden("you are signed out: sign in again".into()),
        other => other,
    })?;
    let given = field(form, "csrf").unwrap_or_default();
    if !keys(state)?.csrf_ok(&session.nonce, given) {
        return Err(ConsoleError::Forbidden(
            "the form's CSRF token is missing or wrong: reload the page and try again".into(),
        ));
    }
    Ok(session)
}

/// A browser's form post names its origin; one from another site is refused.
fn check_origin(req: &HttpRequest) -> Result<(), ConsoleError> {
    let Some(origin) = req.headers().get(header::ORIGIN) else {
        return Ok(());
    };
    let info = req.connection_info();
    let ours = format!("{}://{}", info.scheme(), info.host());
    if origin.to_str().ok() == Some(ours.as_str()) {
        Ok(())
    } else {
        Err(ConsoleError::Forbidden(
            "the form came from another site".into(),
        ))
    }
}

fn sign_in_csrf(keys: &Keys, nonce: &str) -> String {
    keys.csrf(&format!("sign-in:{nonce}"))
}

/// The sign-in form, with a fresh nonce cookie its CSRF token is bound to.
fn sign_in_form(
    req: &HttpRequest,
    keys: &Keys,
    status: StatusCode,
    error: Option<&str>,
) -> HttpResponse {
    let nonce = session::nonce();
    let mut resp = page(status, pages::sign_in(&sign_in_csrf(keys, &nonce), error));
    let max_age = session::SIGN_IN_LIFETIME_MS / 1000;
    if let Ok(v) = header::HeaderValue::from_str(&session::set_cookie(
        session::SIGN_IN_COOKIE,
        &nonce,
        max_age,
        over_tls(req),
    )) {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    resp
}

async fn sign_in_page(
    req: HttpRequest,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let keys = keys(&state)?;
    if signed_in(&req, &state).is_ok() {
        return Ok(see_other("/console"));
    }
    Ok(sign_in_form(&req, &keys, StatusCode::OK, None))
}

async fn sign_in(
    req: HttpRequest,
    form: Fields,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let keys = keys(&state)?;
    check_origin(&req)?;
    let nonce = cookie(&req, session::SIGN_IN_COOKIE).unwrap_or_default();
    let given = field(&form, "csrf").unwrap_or_default();
    if nonce.is_empty() || !keys.csrf_ok(&format!("sign-in:{nonce}"), given) {
        return Err(ConsoleError::Forbidden(
            "the sign-in form's CSRF token is missing or wrong: reload it and try again".into(),
        ));
    }
    let token = field(&form, "token").unwrap_or_default();
    let headers = [("authorization".to_string(), format!("Bearer {token}"))];
    let expected = state.admin_token.as_ref().map(Secret::expose);
    if let Err(e) = check_admin_token(headers.as_slice(), expected) {
        tracing::info!(why = %e, "console sign-in refused");
        return Ok(sign_in_form(
            &req,
            &keys,
            StatusCode::UNAUTHORIZED,
            Some("That is not this server's admin token."),
        ));
    }
    let value = keys.issue(state.clock.now_ms(), &session::nonce());
    tracing::info!("console signed in");
    let mut resp = see_other("/console");
    let tls = over_tls(&req);
    for c in [
        session::set_cookie(session::COOKIE, &value, session::LIFETIME_MS / 1000, tls),
        session::set_cookie(session::SIGN_IN_COOKIE, "", 0, tls),
    ] {
        if let Ok(v) = header::HeaderValue::from_str(&c) {
            resp.headers_mut().append(header::SET_COOKIE, v);
        }
    }
    Ok(resp)
}

async fn sign_out(
    req: HttpRequest,
    form: Fields,
    state: web::Data<AppState>,
) -> Result<HttpResponse, ConsoleError> {
    let session = posted(&req, &state, &form)?;
    state.console.signed_out.add(&session, state.clock.now_ms());
    tracing::info!("console signed out");
    let mut resp = see_other("/console/sign-in");
    if let Ok(v) =
        header::HeaderValue::from_str(&session::set_cookie(session::COOKIE, "", 0, over_tls(&req)))
    {
        resp.headers_mut().append(header::SET_COOKIE, v);
    }
    Ok(resp)
}
