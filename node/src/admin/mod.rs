//! The admin HTTP API of `shen run`: axum routes over [`Ops`], with keep-alive, limits, timeouts, CORS and Server-Sent Events.
//!
//! Routes and documents are listed in `shen-api`, which alone defines
//! their JSON. Every connection is HTTP/1.1 with keep-alive (hyper), so
//! ordinary clients (curl, Python's `http.client`, ureq's pool) reuse
//! connections without special headers; chunked bodies and `Expect:
//! 100-continue` work as hyper implements them.
//!
//! Limits: request heads at most [`MAX_HEAD_BYTES`] and read within
//! [`HEAD_TIMEOUT`]; bodies at most `shen_api::MAX_RECORD_BYTES` (append)
//! or `MAX_TXN_BYTES` (transactions), read within [`BODY_TIMEOUT`]; every
//! request but `/events` and appends (bounded by the log's own deadline)
//! ends within [`REQUEST_TIMEOUT`]. CORS: only pages served from this machine
//! (`http://127.0.0.1:*`, `http://localhost:*`, `http://[::1]:*`, i.e.
//! `shen viz`) may read the GET routes; POST routes take only
//! `application/octet-stream` or `application/json`, which a browser must
//! preflight, and no preflight is approved for them, so a web page cannot
//! make a visitor's browser append (no CSRF).
//!
//! Architecture invariant: this module encodes and decodes; what the node
//! does is `crate::daemon::Ops`. The daemon never imports this module.

mod error;
mod events;
mod log;
mod metrics;

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::extract::State;
use axum::http::{header, HeaderValue, Method, Request, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::Router;
use hyper::body::Incoming;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use shen_api::{routes, ErrorBody, ErrorKind, Liveness};
use tokio::net::TcpListener;
use tower::ServiceExt;
use tower_http::cors::{AllowOrigin, CorsLayer};
use tracing::debug;

use crate::daemon::Ops;

pub use error::ApiError;
pub use metrics::{Histogram, LATENCY_BUCKETS};

/// Largest request head (request line and headers).
pub const MAX_HEAD_BYTES: usize = 64 << 10;
/// How long a client may take to send a request head.
pub const HEAD_TIMEOUT: Duration = Duration::from_secs(30);
/// How long a client may take to send a request body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// Longest a request other than `/events` and appends may take (a transaction waits
/// up to three request timeouts of the log, 9 s by default).
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(60);

/// What every handler shares.
#[derive(Clone)]
pub(crate) struct AdminState {
    pub(crate) ops: Ops,
    /// Client append latency (seconds), as the admin API saw it.
    pub(crate) append_latency: Arc<std::sync::Mutex<Histogram>>,
}

/// True for pages served from this machine (`shen viz` on loopback).
pub fn local_origin(origin: &[u8]) -> bool {
    let Ok(origin) = std::str::from_utf8(origin) else {
        return false;
    };
    ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
        .iter()
        .any(|p| {
            origin
                .strip_prefix(p)
                .is_some_and(|port| port.parse::<u16>().is_ok())
        })
}

/// The admin API's routes over `ops`.
pub fn router(ops: Ops) -> Router {
    routes_over(AdminState {
        ops,
        append_latency: Arc::default(),
    })
}

fn routes_over(state: AdminState) -> Router {
    let cors = CorsLayer::new()
        .allow_origin(AllowOrigin::predicate(|o: &HeaderValue, _| {
            local_origin(o.as_bytes())
        }))
        .allow_methods([Method::GET]);
    // The append route is the hot path: it carries no extra layers (its
    // body read and the log operation have their own deadlines; a browser
    // cannot post to it, see above).
    let hot = Router::new().route(routes::APPEND, post(log::append));
    let bounded = Router::new()
        .route("/", get(index))
        .route(routes::STATUS, get(status))
        .route(routes::HEALTHZ, get(healthz))
        .route(routes::READYZ, get(readyz))
        .route(routes::METRICS, get(metrics::metrics))
        .route(routes::READ, get(log::read))
        .route(routes::TXN, post(log::txn))
        .route(routes::TOKEN_ACQUIRE, post(log::token_acquire))
        .route(routes::MEMBERS, post(log::members))
        .layer(tower_http::timeout::TimeoutLayer::with_status_code(
            StatusCode::GATEWAY_TIMEOUT,
            REQUEST_TIMEOUT,
        ));
    let readable = Router::new()
        .route(routes::EVENTS, get(events::events))
        .merge(bounded)
        .layer(cors);
    Router::new()
        .merge(hot)
        .merge(readable)
        .fallback(not_found)
        .method_not_allowed_fallback(method_not_allowed)
        .with_state(state)
}

/// Serve the admin API on `listener` until the process ends: one task per
/// connection, HTTP/1.1 with keep-alive. `POST /log/append`, the hot
/// path, goes straight from hyper to its handler; everything else through
/// the router (which also knows the append route, for its other methods).
pub async fn serve(listener: TcpListener, ops: Ops) {
    let state = AdminState {
        ops,
        append_latency: Arc::default(),
    };
    let app = routes_over(state.clone());
    serve_with(listener, move || {
        let (state, app) = (state.clone(), app.clone());
        hyper::service::service_fn(move |req: Request<Incoming>| {
            let (state, app) = (state.clone(), app.clone());
            async move {
                if req.method() == Method::POST && req.uri().path() == routes::APPEND {
                    return Ok(log::append_request(&state, req).await);
                }
                app.oneshot(req.map(Body::new)).await
            }
        })
    })
    .await
}

/// Serve `app` on `listener` until the process ends: one task per
/// connection, HTTP/1.1 with keep-alive, head limits and a head timeout,
/// header names in Title-Case (as every HTTP/1.1 client expects to read
/// them, and as curl prints them).
pub async fn serve_http1(listener: TcpListener, app: Router) {
    serve_with(listener, move || TowerToHyperService::new(app.clone())).await
}

/// The accept loop of [`serve`] and [`serve_http1`]: `service()` makes each
/// connection's service.
async fn serve_with<S, F>(listener: TcpListener, service: F)
where
    F: Fn() -> S,
    S: hyper::service::Service<Request<Incoming>, Response = Response> + Send + 'static,
    S::Future: Send + 'static,
    S::Error: Into<Box<dyn std::error::Error + Send + Sync>>,
{
    loop {
        let (sock, _) = match listener.accept().await {
            Ok(s) => s,
            Err(e) => {
                debug!("accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
        };
        let _ = sock.set_nodelay(true);
        let service = service();
        tokio::spawn(async move {
            let conn = hyper::server::conn::http1::Builder::new()
                .keep_alive(true)
                .title_case_headers(true)
                .max_buf_size(MAX_HEAD_BYTES.max(8192))
                .timer(TokioTimer::new())
                .header_read_timeout(HEAD_TIMEOUT)
                .serve_connection(TokioIo::new(sock), service);
            if let Err(e) = conn.await {
                debug!("connection: {e}");
            }
        });
    }
}

async fn index() -> &'static str {
    "shen admin: GET /status (JSON), /healthz, /readyz, /metrics (Prometheus), /events (SSE), POST /log/append?key=K, GET /log/read?partition=P&from=O, POST /log/txn, POST /log/members ({\"op\": \"add\"|\"remove\"|\"leave\", \"node\": PEER_ID}), POST /token/acquire\n"
}

async fn status(State(st): State<AdminState>) -> Response {
    match st.ops.status().await {
        Ok(doc) => {
            let body = serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n";
            ([(header::CONTENT_TYPE, "application/json")], body).into_response()
        }
        Err(e) => ApiError(e).into_response(),
    }
}

async fn healthz(State(st): State<AdminState>) -> Response {
    error::json(
        StatusCode::OK,
        &Liveness {
            alive: true,
            peer_id: st.ops.peer_id(),
        },
    )
}

async fn readyz(State(st): State<AdminState>) -> Response {
    let r = st.ops.readiness().await;
    let code = if r.ready {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    error::json(code, &r)
}

async fn not_found() -> ApiError {
    ApiError(ErrorBody::new(
        ErrorKind::NotFound,
        "no such route (see GET /)",
    ))
}

async fn method_not_allowed() -> ApiError {
    ApiError(ErrorBody::new(
        ErrorKind::MethodNotAllowed,
        "this route does not take that method (see GET /)",
    ))
}
