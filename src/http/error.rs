//! The one place where failures become HTTP: status, rpcStatus body, Retry-After.

use crate::auth::AuthError;
use crate::protocol::RpcStatus;
use crate::service::ServiceError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

/// gRPC codes used in rpcStatus bodies (contract §6).
mod code {
    pub const INVALID_ARGUMENT: i32 = 3;
    pub const NOT_FOUND: i32 = 5;
    pub const FAILED_PRECONDITION: i32 = 9;
    pub const ABORTED: i32 = 10;
    pub const UNIMPLEMENTED: i32 = 12;
    pub const INTERNAL: i32 = 13;
    pub const UNAVAILABLE: i32 = 14;
    pub const UNAUTHENTICATED: i32 = 16;
}

/// Errors of the HTTP layer itself, plus everything the service reports.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// Names the failed check; never a secret, token or expected MAC.
    #[error("authentication failed: {0}")]
    Auth(#[from] AuthError),
    #[error("admin API: {0}")]
    AdminAuth(&'static str),
    #[error("request body is larger than {0} bytes")]
    TooLarge(usize),
    #[error("{0}")]
    UnsupportedMedia(String),
    #[error("the request body was not received in time")]
    BodyTimeout,
    #[error("reading the request body failed: {0}")]
    BodyRead(String),
    #[error("no such endpoint: {0}")]
    NoRoute(String),
    #[error("method {0} is not allowed here (use POST)")]
    MethodNotAllowed(String),
}

impl ApiError {
    fn parts(&self) -> (StatusCode, i32, String) {
        use ServiceError as S;
        let msg = self.to_string();
        match self {
            ApiError::Service(S::BadRequest(_)) => {
                (StatusCode::BAD_REQUEST, code::INVALID_ARGUMENT, msg)
            }
            ApiError::Service(S::NotFound(_)) => (StatusCode::NOT_FOUND, code::NOT_FOUND, msg),
            ApiError::Service(S::Unprocessable(_)) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                code::INVALID_ARGUMENT,
                msg,
            ),
            ApiError::Service(S::RequestIdReused(_)) => (
                StatusCode::UNPROCESSABLE_ENTITY,
                code::FAILED_PRECONDITION,
                msg,
            ),
            ApiError::Service(S::Unimplemented(_)) => {
                (StatusCode::UNPROCESSABLE_ENTITY, code::UNIMPLEMENTED, msg)
            }
            ApiError::Service(S::InFlight(_) | S::Conflict(_)) => {
                (StatusCode::CONFLICT, code::ABORTED, msg)
            }
            ApiError::Service(S::Unauthenticated(_)) | ApiError::AdminAuth(_) => {
                (StatusCode::UNAUTHORIZED, code::UNAUTHENTICATED, msg)
            }
            ApiError::Auth(e) if e.is_unavailable() => {
                (StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE, msg)
            }
            ApiError::Auth(_) => (StatusCode::UNAUTHORIZED, code::UNAUTHENTICATED, msg),
            ApiError::Service(S::Unavailable(_)) => (
                StatusCode::SERVICE_UNAVAILABLE,
                code::UNAVAILABLE,
                "the order store is unavailable; retry shortly".into(),
            ),
            ApiError::Service(S::Internal(_) | S::AlreadyRecorded) => (
                StatusCode::INTERNAL_SERVER_ERROR,
                code::INTERNAL,
                "internal error".into(),
            ),
            ApiError::TooLarge(_) => (StatusCode::PAYLOAD_TOO_LARGE, code::INVALID_ARGUMENT, msg),
            ApiError::UnsupportedMedia(_) => (
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                code::INVALID_ARGUMENT,
                msg,
            ),
            ApiError::BodyTimeout => (StatusCode::REQUEST_TIMEOUT, code::INVALID_ARGUMENT, msg),
            ApiError::BodyRead(_) => (StatusCode::BAD_REQUEST, code::INVALID_ARGUMENT, msg),
            ApiError::NoRoute(_) => (StatusCode::NOT_FOUND, code::NOT_FOUND, msg),
            ApiError::MethodNotAllowed(_) => {
                (StatusCode::METHOD_NOT_ALLOWED, code::INVALID_ARGUMENT, msg)
            }
        }
    }
}

impl ApiError {
    /// The status and the exact rpcStatus body of this error (also what tapes record).
    pub fn status_and_body(&self) -> (StatusCode, Vec<u8>) {
        let (status, code, message) = self.parts();
        let body = serde_json::to_vec(&RpcStatus {
            code,
            message,
            details: Vec::new(),
        })
        .unwrap_or_default();
        (status, body)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        let (status, body) = self.status_and_body();
        if status.is_server_error() {
            // The client gets an opaque message; the log gets the cause chain.
            tracing::error!(error = %self, cause = ?std::error::Error::source(self), "request failed");
        } else {
            tracing::info!(error = %self, status = status.as_u16(), "request refused");
        }
        let mut resp = HttpResponse::build(status);
        // Only where waiting helps: a duplicate still in flight, or the service unavailable
        // (not a conflict with the order's state, which a retry meets again).
        if status == StatusCode::SERVICE_UNAVAILABLE
            || matches!(self, ApiError::Service(ServiceError::InFlight(_)))
        {
            resp.insert_header((header::RETRY_AFTER, "1"));
        }
        resp.content_type("application/json").body(body)
    }
}
