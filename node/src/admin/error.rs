//! Error answers: an `ErrorBody` as JSON with the status its kind names.

use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use serde::Serialize;
use shen_api::ErrorBody;

/// An error answer.
#[derive(Debug)]
pub struct ApiError(pub ErrorBody);

impl From<ErrorBody> for ApiError {
    fn from(e: ErrorBody) -> ApiError {
        ApiError(e)
    }
}

/// `doc` as a JSON answer (one line and a newline).
pub(crate) fn json<T: Serialize>(code: StatusCode, doc: &T) -> Response {
    let body = serde_json::to_string(doc).unwrap_or_default() + "\n";
    (code, [(header::CONTENT_TYPE, "application/json")], body).into_response()
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let code =
            StatusCode::from_u16(self.0.http_status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        json(code, &self.0)
    }
}
