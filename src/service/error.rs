//! The service's one error type. Every error names its [`ErrorKind`] (what `http::error`
//! maps to a status) and a stable machine-readable code.

use crate::domain::manage::ManageError;
use crate::domain::{DomainError, ErrorKind};
use crate::protocol::ProtocolError;
use crate::store::StoreError;

/// Why a request failed.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// A refusal with its own code: a protocol, domain or merchant-action error, or a
    /// use case's own check.
    #[error("{message}")]
    Refused {
        kind: ErrorKind,
        code: &'static str,
        message: String,
    },
    /// Malformed input without a more precise code (code `invalid_argument`).
    #[error("{0}")]
    BadRequest(String),
    /// Code `not_found`.
    #[error("{0}")]
    NotFound(String),
    /// The request_id was used before with a different body.
    #[error("request_id {0} was already used with a different request body")]
    RequestIdReused(String),
    /// The entity type is not served by this endpoint.
    #[error("{0}")]
    Unimplemented(String),
    /// Another instance sharing the store recorded this request_id first (internal: the
    /// request is answered with that record).
    #[error("the request was recorded concurrently")]
    AlreadyRecorded,
    /// The request conflicts with the current state (e.g. retrying an event that is not dead).
    #[error("{0}")]
    Conflict(String),
    /// The caller's credentials do not cover this request.
    #[error("authentication failed: {0}")]
    Unauthenticated(String),
    /// A request with the same request_id is still running.
    #[error("a request with request_id {0} is still in progress; retry shortly")]
    InFlight(String),
    /// The store could not commit or read; nothing was changed.
    #[error("storage unavailable")]
    Unavailable(#[source] StoreError),
    /// A bug or corrupt data: the client sees no details.
    #[error("internal error: {0}")]
    Internal(String),
}

impl ServiceError {
    /// A malformed request, with its code.
    pub(crate) fn invalid(code: &'static str, message: impl Into<String>) -> ServiceError {
        ServiceError::Refused {
            kind: ErrorKind::Invalid,
            code,
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            ServiceError::Refused { kind, .. } => *kind,
            ServiceError::BadRequest(_) => ErrorKind::Invalid,
            ServiceError::NotFound(_) => ErrorKind::NotFound,
            ServiceError::RequestIdReused(_) => ErrorKind::Reused,
            ServiceError::Unimplemented(_) => ErrorKind::Unsupported,
            ServiceError::Conflict(_) => ErrorKind::Conflict,
            ServiceError::Unauthenticated(_) => ErrorKind::Unauthenticated,
            ServiceError::InFlight(_) => ErrorKind::Busy,
            ServiceError::Unavailable(_) => ErrorKind::Unavailable,
            ServiceError::AlreadyRecorded | ServiceError::Internal(_) => ErrorKind::Internal,
        }
    }

    /// The stable machine-readable code (README, "Error codes").
    pub fn code(&self) -> &'static str {
        match self {
            ServiceError::Refused { code, .. } => code,
            ServiceError::BadRequest(_) => "invalid_argument",
            ServiceError::NotFound(_) => "not_found",
            ServiceError::RequestIdReused(_) => "request_id_reused",
            ServiceError::Unimplemented(_) => "entity_not_supported",
            ServiceError::Conflict(_) => "conflict",
            ServiceError::Unauthenticated(_) => "app_id_mismatch",
            ServiceError::InFlight(_) => "request_in_flight",
            ServiceError::Unavailable(_) => "store_unavailable",
            ServiceError::AlreadyRecorded | ServiceError::Internal(_) => "internal",
        }
    }
}

impl From<ProtocolError> for ServiceError {
    fn from(e: ProtocolError) -> Self {
        ServiceError::invalid(e.code(), e.to_string())
    }
}

impl From<DomainError> for ServiceError {
    fn from(e: DomainError) -> Self {
        ServiceError::Refused {
            kind: e.kind(),
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl From<ManageError> for ServiceError {
    fn from(e: ManageError) -> Self {
        ServiceError::Refused {
            kind: e.kind(),
            code: e.code(),
            message: e.to_string(),
        }
    }
}

impl From<StoreError> for ServiceError {
    fn from(e: StoreError) -> Self {
        match e {
            StoreError::Corrupt(m) => ServiceError::Internal(m),
            other => ServiceError::Unavailable(other),
        }
    }
}
