//! What kind of failure an error is, and the domain's own refusal of a whole request. Every
//! layer's error names its kind and a stable code; `http::error` maps kinds to HTTP, once.

/// The kind of a failure: what the caller can do about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorKind {
    /// Wrong shape or impossible values: fix the request.
    Invalid,
    /// Well-formed but not possible for this order: change what is asked.
    Unprocessable,
    /// No such order (or other thing).
    NotFound,
    /// Conflicts with the current state (a stale version, a status that forbids it).
    Conflict,
    /// The request id was used before with a different request.
    Reused,
    /// Not served by this endpoint.
    Unsupported,
    /// The credentials do not cover the request.
    Unauthenticated,
    /// A request with the same id is still running: retry shortly.
    Busy,
    /// A dependency (the store, the signing keys) is unavailable: retry shortly.
    Unavailable,
    /// A bug or corrupt data.
    Internal,
}

/// Why a whole request is refused (as opposed to one failed update segment).
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DomainError {
    /// Wrong shape or impossible values (HTTP 400).
    #[error("{field}: {message}")]
    Invalid { field: String, message: String },
    /// Well-formed but not acceptable, e.g. an unknown product on create (HTTP 422).
    #[error("{field}: {message}")]
    Unprocessable { field: String, message: String },
}

impl DomainError {
    pub fn invalid(field: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::Invalid {
            field: field.into(),
            message: message.into(),
        }
    }
    pub fn unprocessable(field: impl Into<String>, message: impl Into<String>) -> Self {
        DomainError::Unprocessable {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn kind(&self) -> ErrorKind {
        match self {
            DomainError::Invalid { .. } => ErrorKind::Invalid,
            DomainError::Unprocessable { .. } => ErrorKind::Unprocessable,
        }
    }

    /// The stable machine-readable code.
    pub fn code(&self) -> &'static str {
        match self {
            DomainError::Invalid { .. } => "invalid_order",
            DomainError::Unprocessable { .. } => "order_not_acceptable",
        }
    }
}
