//! The log routes: `POST /log/append`, `GET /log/read`, `POST /log/txn`, `POST /token/acquire`.

use std::task::Poll;

use axum::body::{Body, Bytes};
use axum::extract::{RawQuery, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use http_body_util::{BodyExt, Limited};
use shen_api::{
    AppendQuery, ErrorBody, ErrorKind, MemberRequest, ReadQuery, TxnRequest, MAX_RECORD_BYTES,
    MAX_TXN_BYTES,
};

use super::error::{json, ApiError};
use super::AdminState;

/// The media type of `headers`, lowercased, without parameters.
fn media_type(headers: &HeaderMap) -> String {
    headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.split(';').next())
        .map(|v| v.trim().to_ascii_lowercase())
        .unwrap_or_default()
}

fn require_type(headers: &HeaderMap, want: &str, what: &str) -> Result<(), ApiError> {
    if media_type(headers) == want {
        return Ok(());
    }
    Err(ApiError(ErrorBody::new(
        ErrorKind::UnsupportedMediaType,
        format!("send the {what} as Content-Type: {want}"),
    )))
}

/// Read a body of at most `limit` bytes (chunked or with a length) within
/// `BODY_TIMEOUT`. A body that is already here is taken without arming a
/// timer.
async fn body_within<B>(body: B, limit: usize, what: &str) -> Result<Vec<u8>, ApiError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let mut read = std::pin::pin!(Limited::new(body, limit).collect());
    let read = match futures::poll!(read.as_mut()) {
        Poll::Ready(r) => r,
        Poll::Pending => match tokio::time::timeout(super::BODY_TIMEOUT, read).await {
            Ok(r) => r,
            Err(_) => {
                return Err(ApiError(ErrorBody::bad_request(format!(
                    "{what} not received within {:?}",
                    super::BODY_TIMEOUT
                ))))
            }
        },
    };
    match read {
        Ok(b) => Ok(b.to_bytes().into()),
        Err(e) => {
            let too_large = e.is::<http_body_util::LengthLimitError>();
            Err(ApiError(if too_large {
                ErrorBody::new(
                    ErrorKind::TooLarge,
                    format!("{what} exceeds the limit of {limit} bytes"),
                )
            } else {
                ErrorBody::bad_request(format!("{what} not received: {e}"))
            }))
        }
    }
}

fn query(raw: &Option<String>) -> &str {
    raw.as_deref().unwrap_or("")
}

/// `POST /log/append?key=K[&producer=ID&seq=N]` with the record as
/// `application/octet-stream` (with a producer: written at most once however
/// often it is sent).
pub(crate) async fn append(
    State(st): State<AdminState>,
    RawQuery(raw): RawQuery,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    append_parts(&st, raw.as_deref(), &headers, body).await
}

/// `POST /log/append` straight from hyper, for the hot path of
/// [`super::serve`] (no router, no extractor copies).
pub(crate) async fn append_request<B>(st: &AdminState, req: axum::http::Request<B>) -> Response
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let (parts, body) = req.into_parts();
    match append_parts(st, parts.uri.query(), &parts.headers, body).await {
        Ok(r) => r,
        Err(e) => e.into_response(),
    }
}

async fn append_parts<B>(
    st: &AdminState,
    raw: Option<&str>,
    headers: &HeaderMap,
    body: B,
) -> Result<Response, ApiError>
where
    B: http_body::Body<Data = Bytes>,
    B::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    let q = AppendQuery::parse(raw.unwrap_or("")).map_err(|e| ErrorBody::bad_request(e.0))?;
    // Only octet-stream: a browser must preflight it, and this server
    // approves no preflight for POST routes (no CSRF).
    require_type(headers, "application/octet-stream", "record")?;
    let data = body_within(body, MAX_RECORD_BYTES, "the record").await?;
    let t0 = std::time::Instant::now();
    let reply = st.ops.append(q.key, data, q.producer.zip(q.seq)).await?;
    if let Ok(mut h) = st.append_latency.lock() {
        h.observe(t0.elapsed().as_secs_f64());
    }
    Ok(json(StatusCode::OK, &reply))
}

/// `GET /log/read?partition=P|key=K|id=SCARAB&from=O&max=M`.
pub(crate) async fn read(
    State(st): State<AdminState>,
    RawQuery(raw): RawQuery,
) -> Result<Response, ApiError> {
    let q = ReadQuery::parse(query(&raw)).map_err(|e| ErrorBody::bad_request(e.0))?;
    let reply = st.ops.read(q).await?;
    Ok(json(StatusCode::OK, &reply))
}

/// `POST /log/txn` with a [`TxnRequest`] as `application/json`.
pub(crate) async fn txn(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require_type(&headers, "application/json", "transaction")?;
    let body = body_within(body, MAX_TXN_BYTES, "the transaction").await?;
    let req: TxnRequest = serde_json::from_slice(&body).map_err(|e| {
        ErrorBody::bad_request(format!(
            "expected {{\"records\": [{{\"key\": ..., \"data\": ...}}, ...]}}: {e}"
        ))
    })?;
    let records = req.decode().map_err(ErrorBody::bad_request)?;
    let reply = st.ops.txn(records).await?;
    Ok(json(StatusCode::OK, &reply))
}

/// `POST /token/acquire`: acquire the Cartouche token and release it.
pub(crate) async fn token_acquire(State(st): State<AdminState>) -> Result<Response, ApiError> {
    let reply = st.ops.token_acquire().await?;
    Ok(json(StatusCode::OK, &reply))
}

/// `POST /log/members`: ask for a change of the log's member set.
pub(crate) async fn members(
    State(st): State<AdminState>,
    headers: HeaderMap,
    body: Body,
) -> Result<Response, ApiError> {
    require_type(&headers, "application/json", "member change")?;
    let body = body_within(body, 4096, "the member change").await?;
    let req: MemberRequest = serde_json::from_slice(&body).map_err(|e| {
        ErrorBody::bad_request(format!(
            "expected {{\"op\": \"add\"|\"remove\"|\"leave\", \"node\": PEER_ID}}: {e}"
        ))
    })?;
    let reply = st.ops.member_change(req).await?;
    Ok(json(StatusCode::OK, &reply))
}
