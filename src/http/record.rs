//! `serve --record DIR`: a middleware around the Fast endpoints that hands every finished
//! exchange (request headers and body, answer status and body) to the [`Recorder`], which
//! knows only the tape format and nothing of HTTP, the service or start-up.

use super::{endpoint_label, AppState};
use actix_web::body::{BoxBody, MessageBody as _};
use actix_web::dev::{ServiceRequest, ServiceResponse};
use actix_web::middleware::Next;
use actix_web::{web, HttpMessage as _};

/// The request body as the handler read it, left in the request's extensions once the call
/// passed authentication. A request without one (wrong verb, body refused before it was
/// read, authentication failed) is not recorded.
#[derive(Clone)]
pub(super) struct ReadBody(pub web::Bytes);

/// Records the exchange when the server records and the handler read a body; the answer
/// goes out unchanged, after the tape line is written.
pub(super) async fn record_exchange(
    req: ServiceRequest,
    next: Next<BoxBody>,
) -> Result<ServiceResponse<BoxBody>, actix_web::Error> {
    let recorder = req
        .app_data::<web::Data<AppState>>()
        .and_then(|state| state.recorder.clone());
    let res = next.call(req).await?;
    let Some(recorder) = recorder else {
        return Ok(res);
    };
    let Some(ReadBody(body)) = res.request().extensions().get::<ReadBody>().cloned() else {
        return Ok(res);
    };
    let endpoint = endpoint_label(res.request().path());
    let headers: Vec<(String, String)> = res
        .request()
        .headers()
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_str().unwrap_or("").to_string()))
        .collect();
    let status = res.status().as_u16();
    let (req, response) = res.into_parts();
    let (response, answer) = response.into_parts();
    // The Fast endpoints answer with complete bodies; anything streamed passes unrecorded.
    let answer = match answer.try_into_bytes() {
        Ok(bytes) => bytes,
        Err(answer) => return Ok(ServiceResponse::new(req, response.set_body(answer))),
    };
    let bytes = answer.clone();
    // A short append under a lock; kept off the async worker thread.
    let _ = tokio::task::spawn_blocking(move || {
        recorder.record(endpoint, &headers, &body, status, &bytes)
    })
    .await;
    Ok(ServiceResponse::new(
        req,
        response.set_body(BoxBody::new(answer)),
    ))
}
