//! The service's one error type.

use crate::domain::manage::ManageError;
use crate::domain::DomainError;
use crate::protocol::ProtocolError;
use crate::store::StoreError;

/// Why a request failed; `http::error` maps each kind to a status and an rpcStatus body.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// Malformed JSON or a wrong shape (names the field when it can).
    #[error("{0}")]
    BadRequest(String),
    #[error("{0}")]
    NotFound(String),
    /// Well-formed but refused by the domain.
    #[error("{0}")]
    Unprocessable(String),
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

impl From<ProtocolError> for ServiceError {
    fn from(e: ProtocolError) -> Self {
        ServiceError::BadRequest(e.to_string())
    }
}

impl From<DomainError> for ServiceError {
    fn from(e: DomainError) -> Self {
        match e {
            DomainError::Invalid { .. } => ServiceError::BadRequest(e.to_string()),
            DomainError::Unprocessable { .. } => ServiceError::Unprocessable(e.to_string()),
        }
    }
}

impl From<ManageError> for ServiceError {
    fn from(e: ManageError) -> Self {
        let message = e.to_string();
        match e.http_status() {
            400 => ServiceError::BadRequest(message),
            409 => ServiceError::Conflict(message),
            _ => ServiceError::Unprocessable(message),
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
