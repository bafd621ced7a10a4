//! The one place where failures become HTTP: each error's kind becomes a status and a gRPC
//! code, its stable code goes into the rpcStatus body (the merchant API) or the log (Fast's
//! endpoints, whose contract fixes `details: []`), and Retry-After is set where waiting helps.

use crate::auth::admin::AdminAuthError;
use crate::auth::AuthError;
use crate::domain::ErrorKind;
use crate::protocol::RpcStatus;
use crate::service::ServiceError;
use actix_web::http::{header, StatusCode};
use actix_web::{HttpResponse, ResponseError};

/// gRPC codes used in rpcStatus bodies.
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

/// The `domain` of the ErrorInfo detail that carries an error's code.
pub const ERROR_DOMAIN: &str = "fast-seller";

/// Errors of the HTTP layer itself, plus everything the service reports.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    #[error(transparent)]
    Service(#[from] ServiceError),
    /// Names the failed check; never a secret, token or expected MAC.
    #[error("authentication failed: {0}")]
    Auth(#[from] AuthError),
    #[error("admin API: {0}")]
    AdminAuth(#[from] AdminAuthError),
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
    /// Too many request bodies in memory at once (`--body-bytes-in-flight`).
    #[error("the server holds too many request bodies at once; retry shortly")]
    Overloaded,
}

/// The status and gRPC code of each kind of failure: the one mapping of kinds to HTTP.
fn http_of(kind: ErrorKind) -> (StatusCode, i32) {
    match kind {
        ErrorKind::Invalid => (StatusCode::BAD_REQUEST, code::INVALID_ARGUMENT),
        ErrorKind::Unprocessable => (StatusCode::UNPROCESSABLE_ENTITY, code::INVALID_ARGUMENT),
        ErrorKind::NotFound => (StatusCode::NOT_FOUND, code::NOT_FOUND),
        ErrorKind::Conflict | ErrorKind::Busy => (StatusCode::CONFLICT, code::ABORTED),
        ErrorKind::Reused => (StatusCode::UNPROCESSABLE_ENTITY, code::FAILED_PRECONDITION),
        ErrorKind::Unsupported => (StatusCode::UNPROCESSABLE_ENTITY, code::UNIMPLEMENTED),
        ErrorKind::Unauthenticated => (StatusCode::UNAUTHORIZED, code::UNAUTHENTICATED),
        ErrorKind::Unavailable => (StatusCode::SERVICE_UNAVAILABLE, code::UNAVAILABLE),
        ErrorKind::Internal => (StatusCode::INTERNAL_SERVER_ERROR, code::INTERNAL),
    }
}

impl ApiError {
    /// The stable machine-readable code of this error (README, "Error codes").
    pub fn code(&self) -> &'static str {
        match self {
            ApiError::Service(e) => e.code(),
            ApiError::Auth(e) => e.kind(),
            ApiError::AdminAuth(e) => e.code(),
            ApiError::TooLarge(_) => "body_too_large",
            ApiError::UnsupportedMedia(_) => "unsupported_media_type",
            ApiError::BodyTimeout => "body_timeout",
            ApiError::BodyRead(_) => "body_unreadable",
            ApiError::NoRoute(_) => "no_such_endpoint",
            ApiError::MethodNotAllowed(_) => "method_not_allowed",
            ApiError::Overloaded => "overloaded",
        }
    }

    fn parts(&self) -> (StatusCode, i32, String) {
        let msg = self.to_string();
        let kind = match self {
            ApiError::Service(e) => e.kind(),
            ApiError::Auth(e) if e.is_unavailable() => ErrorKind::Unavailable,
            ApiError::Auth(_) | ApiError::AdminAuth(_) => ErrorKind::Unauthenticated,
            ApiError::BodyRead(_) => ErrorKind::Invalid,
            ApiError::Overloaded => ErrorKind::Unavailable,
            ApiError::NoRoute(_) => ErrorKind::NotFound,
            ApiError::TooLarge(_) => {
                return (StatusCode::PAYLOAD_TOO_LARGE, code::INVALID_ARGUMENT, msg)
            }
            ApiError::UnsupportedMedia(_) => {
                return (
                    StatusCode::UNSUPPORTED_MEDIA_TYPE,
                    code::INVALID_ARGUMENT,
                    msg,
                )
            }
            ApiError::BodyTimeout => {
                return (StatusCode::REQUEST_TIMEOUT, code::INVALID_ARGUMENT, msg)
            }
            ApiError::MethodNotAllowed(_) => {
                return (StatusCode::METHOD_NOT_ALLOWED, code::INVALID_ARGUMENT, msg)
            }
        };
        let (status, grpc) = http_of(kind);
        // The client gets an opaque message for the server's own failures.
        let msg = match self {
            ApiError::Service(ServiceError::Unavailable(_)) => {
                "the order store is unavailable; retry shortly".into()
            }
            ApiError::Service(_) if kind == ErrorKind::Internal => "internal error".into(),
            _ => msg,
        };
        (status, grpc, msg)
    }

    /// The status and the message a person may see (opaque for the server's own failures),
    /// logged like every answer: for the console's HTML pages.
    pub fn status_and_message(&self) -> (StatusCode, String) {
        let (status, _, message) = self.parts();
        self.log(status);
        (status, message)
    }

    fn log(&self, status: StatusCode) {
        if status.is_server_error() {
            // The client gets an opaque message; the log gets the cause chain.
            tracing::error!(error = %self, code = self.code(), cause = %cause_chain(self), "request failed");
        } else {
            tracing::info!(error = %self, code = self.code(), status = status.as_u16(), "request refused");
        }
    }

    /// The status and the exact rpcStatus body of this error as Fast's endpoints answer it:
    /// `details: []`, as Fast's contract has it (also what tapes record).
    pub fn status_and_body(&self) -> (StatusCode, Vec<u8>) {
        self.rendered(Vec::new())
    }

    /// The status and rpcStatus body as the merchant API answers it: the stable code in
    /// `details`, as a `google.rpc.ErrorInfo`.
    pub fn status_and_body_with_code(&self) -> (StatusCode, Vec<u8>) {
        self.rendered(vec![serde_json::json!({
            "@type": "type.googleapis.com/google.rpc.ErrorInfo",
            "reason": self.code(),
            "domain": ERROR_DOMAIN,
        })])
    }

    fn rendered(&self, details: Vec<serde_json::Value>) -> (StatusCode, Vec<u8>) {
        let (status, code, message) = self.parts();
        let body = serde_json::to_vec(&RpcStatus {
            code,
            message,
            details,
        })
        .unwrap_or_default();
        (status, body)
    }

    /// The HTTP answer, logged; `body` is one of the renderings above.
    fn response(&self, (status, body): (StatusCode, Vec<u8>)) -> HttpResponse {
        self.log(status);
        let mut resp = HttpResponse::build(status);
        // Only where waiting helps: a duplicate still in flight, or the service unavailable
        // (not a conflict with the order's state, which a retry meets again).
        if status == StatusCode::SERVICE_UNAVAILABLE
            || matches!(self, ApiError::Service(e) if e.kind() == ErrorKind::Busy)
        {
            resp.insert_header((header::RETRY_AFTER, "1"));
        }
        resp.content_type("application/json").body(body)
    }
}

impl ResponseError for ApiError {
    fn status_code(&self) -> StatusCode {
        self.parts().0
    }

    fn error_response(&self) -> HttpResponse {
        self.response(self.status_and_body())
    }
}

/// An error of the merchant API (`/admin/v1`): like [`ApiError`], with its code in the body.
#[derive(Debug, thiserror::Error)]
#[error(transparent)]
pub struct AdminError(#[from] pub ApiError);

impl From<ServiceError> for AdminError {
    fn from(e: ServiceError) -> Self {
        AdminError(e.into())
    }
}

impl From<AdminAuthError> for AdminError {
    fn from(e: AdminAuthError) -> Self {
        AdminError(e.into())
    }
}

impl ResponseError for AdminError {
    fn status_code(&self) -> StatusCode {
        self.0.status_code()
    }

    fn error_response(&self) -> HttpResponse {
        self.0.response(self.0.status_and_body_with_code())
    }
}

/// The causes of `e`, in words, outermost first (`a: b: c`); empty without any.
fn cause_chain(e: &dyn std::error::Error) -> String {
    let mut causes = Vec::new();
    let mut next = e.source();
    while let Some(cause) = next {
        causes.push(cause.to_string());
        next = cause.source();
    }
    causes.join(": ")
}

#[cfg(test)]
mod tests {
    //! Snapshots of the error bodies, one per kind of failure, through the HTTP mapping.

    use super::*;
    use crate::domain::manage::{ManageError, RestockType};
    use crate::domain::DomainError;
    use crate::protocol::{Money, OrderStatus, ProtocolError};
    use crate::store::StoreError;
    use serde_json::Value;

    /// An error answer as the merchant API gives it.
    #[derive(serde::Serialize)]
    struct Answer {
        status: u16,
        body: RpcStatus,
    }

    /// Each error as the merchant API answers it (status and body), after checking that
    /// Fast's endpoints answer the same with `details: []`.
    fn answers(errors: Vec<ApiError>) -> Vec<Answer> {
        let answer = |e: &ApiError| {
            let (status, with_code) = e.status_and_body_with_code();
            let (fast_status, fast) = e.status_and_body();
            assert_eq!(status, fast_status);
            let body: RpcStatus = serde_json::from_slice(&with_code).unwrap();
            let fast: RpcStatus = serde_json::from_slice(&fast).unwrap();
            assert_eq!(
                fast.details,
                Vec::<Value>::new(),
                "Fast's contract: details []"
            );
            assert_eq!((fast.code, &fast.message), (body.code, &body.message));
            assert_eq!(body.details.len(), 1);
            assert_eq!(body.details[0]["reason"], e.code());
            Answer {
                status: status.as_u16(),
                body,
            }
        };
        errors.iter().map(answer).collect()
    }

    fn service(e: impl Into<ServiceError>) -> ApiError {
        ApiError::Service(e.into())
    }

    fn refused(kind: ErrorKind, code: &'static str, message: &str) -> ApiError {
        service(ServiceError::Refused {
            kind,
            code,
            message: message.into(),
        })
    }

    fn money(text: &str) -> Money {
        Money::parse(text).unwrap()
    }

    #[test]
    fn invalid() {
        insta::assert_json_snapshot!(answers(vec![
            service(ProtocolError::Malformed(
                "EOF while parsing an object at line 1 column 40".into()
            )),
            service(ProtocolError::Invalid(
                "order.order.lines[0].quantity: invalid type: boolean `true`".into()
            )),
            service(ProtocolError::UnknownField {
                path: "lines[0].qty".into(),
                expected: "line_id, quantity".into(),
            }),
            service(DomainError::invalid(
                "order.order.lines[0].quantity",
                "must not be negative"
            )),
            service(ManageError::InvalidQuantity {
                line: "L1".into(),
                quantity: 0
            }),
            service(ManageError::NoLines { action: "cancel" }),
            service(ManageError::DuplicateLine { line: "L1".into() }),
            service(ManageError::NegativeAmount {
                field: "shipping.amount".into(),
                value: money("-1.00"),
            }),
            service(ManageError::EmptyRefund),
            service(ManageError::InvalidDate {
                value: "tomorrow".into()
            }),
            service(ManageError::InvalidField {
                field: "note".into(),
                message: "longer than 2000 characters".into(),
            }),
            service(ServiceError::BadRequest(
                "state: `lost` is not pending, delivered or dead".into()
            )),
            refused(
                ErrorKind::Invalid,
                "order_id_missing",
                "order: order_id, external_id or external_order_id is required"
            ),
            refused(
                ErrorKind::Invalid,
                "request_id_empty",
                "request_id: must not be empty"
            ),
            refused(
                ErrorKind::Invalid,
                "refund_not_calculated",
                "give `calculation` or its total `amount`"
            ),
            ApiError::BodyRead("connection reset".into()),
        ]));
    }

    #[test]
    fn unprocessable() {
        insta::assert_json_snapshot!(answers(vec![
            service(DomainError::unprocessable(
                "order.order.lines[1]",
                "no catalog product matches line L-2"
            )),
            service(ManageError::MissingOrderId),
            service(ManageError::LineWithoutId { index: 2 }),
            service(ManageError::UnknownLine { line: "L9".into() }),
            service(ManageError::ExceedsCancelable {
                line: "L1".into(),
                requested: 3,
                available: 2,
            }),
            service(ManageError::NothingToCancel),
            service(ManageError::ExceedsRefundable {
                line: "L1".into(),
                requested: 3,
                refundable: 1,
                restock: RestockType::Return,
            }),
            service(ManageError::LineFullyRefunded { line: "L1".into() }),
            service(ManageError::RestockNotAllowed {
                line: "L1".into(),
                restock: RestockType::Cancel,
                why: "the line was fulfilled".into(),
            }),
            service(ManageError::ShippingExceeds {
                requested: money("10.00"),
                refundable: money("4.99"),
            }),
            service(ManageError::ExceedsPaid {
                what: "line L1".into(),
                refunded: money("30.00"),
                paid: money("29.99"),
            }),
            service(ManageError::ExceedsFulfillable {
                line: "L1".into(),
                requested: 2,
                available: 1,
            }),
            service(ManageError::NothingToFulfil),
        ]));
    }

    #[test]
    fn not_found() {
        insta::assert_json_snapshot!(answers(vec![
            refused(
                ErrorKind::NotFound,
                "order_not_found",
                "no order with order_id F-1"
            ),
            service(ServiceError::NotFound("no outbox event e-1".into())),
            ApiError::NoRoute("/fast/v1/refund".into()),
        ]));
    }

    #[test]
    fn conflict() {
        insta::assert_json_snapshot!(answers(vec![
            service(ManageError::VersionMismatch {
                current: 4,
                expected: 3
            }),
            service(ManageError::StatusForbids {
                action: "refund",
                status: OrderStatus::Canceled,
                why: "nothing was paid".into(),
            }),
            service(ManageError::LedgerOutOfSync {
                line: "L1".into(),
                order_quantity: 2,
                ledger_quantity: 3,
            }),
            service(ManageError::RefundMismatch {
                field: "total".into(),
                expected: "10.00".into(),
                actual: "9.00".into(),
            }),
            service(ManageError::DuplicateId {
                kind: "refund",
                id: "R-1".into()
            }),
            service(ManageError::AlreadyCaptured {
                at_ms: 1_700_000_000_000
            }),
            service(ServiceError::Conflict(
                "outbox event e-1 is pending, not dead".into()
            )),
        ]));
    }

    #[test]
    fn reused_and_unsupported() {
        insta::assert_json_snapshot!(answers(vec![
            service(ServiceError::RequestIdReused("r-9".into())),
            service(ServiceError::Unimplemented(
                "read of ENTITY_TYPE_USER is not supported".into()
            )),
        ]));
    }

    #[test]
    fn unauthenticated() {
        insta::assert_json_snapshot!(answers(vec![
            ApiError::Auth(AuthError::BadSignature),
            ApiError::AdminAuth(AdminAuthError::Disabled),
            ApiError::AdminAuth(AdminAuthError::MissingToken),
            ApiError::AdminAuth(AdminAuthError::WrongToken),
            service(ServiceError::Unauthenticated("app id mismatch".into())),
        ]));
    }

    #[test]
    fn busy_unavailable_and_internal() {
        insta::assert_json_snapshot!(answers(vec![
            service(ServiceError::InFlight("r-1".into())),
            service(ServiceError::Unavailable(StoreError::Conflict)),
            ApiError::Auth(AuthError::KeysUnavailable),
            ApiError::Overloaded,
            service(ServiceError::Internal(
                "stored order F-1 is unreadable".into()
            )),
            service(ServiceError::AlreadyRecorded),
        ]));
    }

    #[test]
    fn transport() {
        insta::assert_json_snapshot!(answers(vec![
            ApiError::TooLarge(262_144),
            ApiError::UnsupportedMedia(
                "Content-Type must be application/json (got `text/plain`)".into()
            ),
            ApiError::BodyTimeout,
            ApiError::MethodNotAllowed("GET".into()),
        ]));
    }

    #[test]
    fn retry_after_only_where_waiting_helps() {
        let retry_after = |e: ApiError| {
            e.error_response()
                .headers()
                .contains_key(header::RETRY_AFTER)
        };
        assert!(retry_after(service(ServiceError::InFlight("r".into()))));
        assert!(retry_after(service(ServiceError::Unavailable(
            StoreError::Conflict
        ))));
        assert!(!retry_after(service(ManageError::VersionMismatch {
            current: 2,
            expected: 1
        })));
    }
}
