//! The admin HTTP API of `shen run` (127.0.0.1 by default): a deliberately
//! tiny HTTP/1.1 server (one request per connection).
//!
//! - `GET /status` — JSON: members, health, ring ownership, the log's
//!   chains and epochs, network.
//! - `GET /metrics` — Prometheus text: messages, bytes, bad frames, floods,
//!   connections, ring events (suspicions, deaths, appends...) by name,
//!   client append latency.
//! - `GET /events` — Server-Sent Events: one `data: {json}` line per ring
//!   event, as it happens (the live visualization's input).
//! - `POST /log/append?key=K` — body: the record (at most 1 MiB). Answers
//!   `{"partition","offset"}` once every replica of the partition's chain
//!   has it; errors are JSON `{"error","kind"}` with 503 (retry), 504
//!   (timeout: outcome unknown) or 400.
//! - `GET /log/read?partition=P|key=K&from=O&max=M` — committed records
//!   from the partition's tail: `{"partition","from","committed","records"}`;
//!   `GET /log/read?id=SCARAB` — the one record with that Scarab ID.
//! - `POST /log/txn` — body (`Content-Type: application/json`):
//!   `{"records":[{"key":"K","data":"V"} | {"key":"K","data_hex":"HEX"},...]}`;
//!   appends them atomically across their partitions (all visible or none)
//!   under the Cartouche token. 200 `{"committed":true,"records":[...]}`
//!   with each record's place; 409 `{"committed":false,...}` if it aborted;
//!   504 if the outcome is unknown (it is then settled for readers, all or
//!   nothing).
//! - `POST /token/acquire` — acquire the Cartouche token and release it at
//!   once: `{"id","fencing","wait_ms"}` (for `shen bench` and smoke checks).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use shen_rings::Time;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tracing::debug;

use crate::log_cluster::{error_reply, parse_query, Outcome};
use crate::run_cmd::{status_json, Event, Shared};
use serde_json::{json, Value};
use shen_rings::cartouche::Cartouche;
use shen_rings::ouroboros::{partition_of_key, Ouroboros, OuroborosEvent};
use shen_rings::scarab::ScarabId;
use shen_rings::Node;
use shen_transport_libp2p::{Handle, PeerKey};

/// Largest request body accepted (one record of at most 1 MiB).
pub const MAX_BODY: usize = (1 << 20) + 1024;

/// Upper bounds (seconds) of the append latency histogram's buckets.
pub const LATENCY_BUCKETS: [f64; 12] = [
    0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 5.0,
];

/// A Prometheus-style cumulative histogram.
#[derive(Debug, Clone, Default)]
pub struct Histogram {
    counts: [u64; LATENCY_BUCKETS.len()],
    count: u64,
    sum: f64,
}

impl Histogram {
    /// Record one observation (seconds).
    pub fn observe(&mut self, v: f64) {
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            if v <= *b {
                self.counts[i] += 1;
            }
        }
        self.count += 1;
        self.sum += v;
    }

    /// Prometheus text for metric `name`.
    pub fn render(&self, name: &str, help: &str, out: &mut String) {
        let _ = writeln!(out, "# HELP {name} {help}\n# TYPE {name} histogram");
        for (i, b) in LATENCY_BUCKETS.iter().enumerate() {
            let _ = writeln!(out, "{name}_bucket{{le=\"{b}\"}} {}", self.counts[i]);
        }
        let _ = writeln!(out, "{name}_bucket{{le=\"+Inf\"}} {}", self.count);
        let _ = writeln!(out, "{name}_sum {}", self.sum);
        let _ = writeln!(out, "{name}_count {}", self.count);
    }
}

/// Accept admin connections forever.
pub async fn serve(listener: TcpListener, handle: Handle<Event>, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((sock, _)) => {
                let _ = sock.set_nodelay(true);
                let handle = handle.clone();
                let shared = shared.clone();
                tokio::spawn(async move {
                    if let Err(e) = serve_one(sock, handle, shared).await {
                        debug!("admin connection: {e}");
                    }
                });
            }
            Err(e) => {
                debug!("admin accept: {e}");
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        }
    }
}

/// Read the request head; returns it and the body bytes read past it.
async fn read_head(sock: &mut TcpStream) -> std::io::Result<(String, Vec<u8>)> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 4096];
    loop {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
            let rest = buf.split_off(end + 4);
            return Ok((String::from_utf8_lossy(&buf).into_owned(), rest));
        }
        if buf.len() > 8192 {
            break;
        }
    }
    Ok((String::from_utf8_lossy(&buf).into_owned(), Vec::new()))
}

/// Read the rest of a body of `len` bytes.
async fn read_body(
    sock: &mut TcpStream,
    mut have: Vec<u8>,
    len: usize,
) -> std::io::Result<Vec<u8>> {
    let mut chunk = [0u8; 16384];
    while have.len() < len {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            return Err(std::io::Error::new(
                std::io::ErrorKind::UnexpectedEof,
                "body shorter than Content-Length",
            ));
        }
        have.extend_from_slice(&chunk[..n]);
    }
    have.truncate(len);
    Ok(have)
}

fn content_length(head: &str) -> Option<usize> {
    header(head, "content-length")?.parse().ok()
}

async fn respond_json(sock: &mut TcpStream, code: &str, v: &Value) -> std::io::Result<()> {
    let body = serde_json::to_string(v).unwrap_or_default() + "\n";
    respond(sock, code, "application/json", &body).await
}

async fn respond(sock: &mut TcpStream, code: &str, ctype: &str, body: &str) -> std::io::Result<()> {
    respond_with(sock, code, ctype, "", body).await
}

/// The value of header `name` (case-insensitive), if present.
fn header<'a>(head: &'a str, name: &str) -> Option<&'a str> {
    head.lines().skip(1).find_map(|l| {
        let (k, v) = l.split_once(':')?;
        k.trim().eq_ignore_ascii_case(name).then(|| v.trim())
    })
}

/// CORS headers letting a page served from this machine (`shen viz`, on
/// 127.0.0.1 or localhost) read `/status` and `/events`; other origins
/// get none, so a web page elsewhere cannot read them through a browser.
fn cors(head: &str) -> String {
    let Some(origin) = header(head, "origin") else {
        return String::new();
    };
    let local = ["http://127.0.0.1:", "http://localhost:", "http://[::1]:"]
        .iter()
        .any(|p| {
            origin
                .strip_prefix(p)
                .is_some_and(|port| port.parse::<u16>().is_ok())
        });
    if local {
        format!("Access-Control-Allow-Origin: {origin}\r\nVary: Origin\r\n")
    } else {
        String::new()
    }
}

async fn respond_with(
    sock: &mut TcpStream,
    code: &str,
    ctype: &str,
    extra: &str,
    body: &str,
) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {code}\r\nContent-Type: {ctype}\r\n{extra}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    let mut msg = head.into_bytes();
    msg.extend_from_slice(body.as_bytes());
    sock.write_all(&msg).await?;
    sock.shutdown().await
}

/// True for `POST /log/append` with `Connection: keep-alive`: such a
/// connection carries one append after another (load generators and
/// long-lived clients), every other request gets one answer and a close.
fn keep_alive_append(head: &str) -> bool {
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let (method, target) = (parts.next().unwrap_or(""), parts.next().unwrap_or(""));
    method == "POST"
        && target.split('?').next() == Some("/log/append")
        && header(head, "connection").is_some_and(|c| c.eq_ignore_ascii_case("keep-alive"))
}

async fn serve_one(
    mut sock: TcpStream,
    handle: Handle<Event>,
    shared: Arc<Shared>,
) -> std::io::Result<()> {
    let mut wait = Duration::from_secs(5);
    loop {
        let (head, rest) = match tokio::time::timeout(wait, read_head(&mut sock)).await {
            Ok(h) => h?,
            Err(_) => return Ok(()),
        };
        if head.is_empty() {
            return Ok(());
        }
        if !keep_alive_append(&head) {
            return serve_request(sock, head, rest, handle, shared).await;
        }
        let target = head.split_whitespace().nth(1).unwrap_or("");
        let query = parse_query(target.split_once('?').map(|(_, q)| q).unwrap_or(""));
        let Ok(query) = query else {
            return bad_query(&mut sock, query).await;
        };
        if !serve_append(&mut sock, &head, rest, &query, &handle, &shared, true).await? {
            return Ok(());
        }
        // Idle keep-alive connections close after 30 s.
        wait = Duration::from_secs(30);
    }
}

/// Answer a query string that did not parse.
async fn bad_query<T>(sock: &mut TcpStream, query: Result<T, String>) -> std::io::Result<()> {
    let e = query.err().unwrap_or_default();
    respond_json(
        sock,
        "400 Bad Request",
        &json!({ "error": e, "kind": "bad_request" }),
    )
    .await
}

/// Answer one request on a connection that closes afterwards.
async fn serve_request(
    mut sock: TcpStream,
    head: String,
    rest: Vec<u8>,
    handle: Handle<Event>,
    shared: Arc<Shared>,
) -> std::io::Result<()> {
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let method = parts.next().unwrap_or("");
    let target = parts.next().unwrap_or("");
    let (path, query) = target.split_once('?').unwrap_or((target, ""));
    let query = parse_query(query);
    let Ok(query) = query else {
        return bad_query(&mut sock, query).await;
    };
    if method == "POST" && path == "/log/append" {
        serve_append(&mut sock, &head, rest, &query, &handle, &shared, false).await?;
        return Ok(());
    }
    if method == "POST" && path == "/log/txn" {
        let (code, v) = serve_txn(&mut sock, &head, rest, &handle, &shared).await?;
        return respond_json(&mut sock, code, &v).await;
    }
    if method == "POST" && path == "/token/acquire" {
        let (code, v) = token_acquire(&handle, &shared).await;
        return respond_json(&mut sock, code, &v).await;
    }
    if method != "GET" {
        return respond(
            &mut sock,
            "405 Method Not Allowed",
            "text/plain",
            "GET only\n",
        )
        .await;
    }
    match path {
        "/status" => {
            let expect = shared.log_expect;
            let rx = handle.run(move |node, view, now, _| status_json(node, view, now, expect));
            match tokio::time::timeout(Duration::from_secs(5), rx).await {
                Ok(Ok(v)) => {
                    let body = serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
                    respond_with(&mut sock, "200 OK", "application/json", &cors(&head), &body)
                        .await
                }
                _ => {
                    respond(
                        &mut sock,
                        "503 Service Unavailable",
                        "text/plain",
                        "node not answering\n",
                    )
                    .await
                }
            }
        }
        "/metrics" => {
            let body = metrics_text(&handle, &shared);
            respond(&mut sock, "200 OK", "text/plain; version=0.0.4", &body).await
        }
        "/events" => {
            let mut rx = shared.events.subscribe();
            let start = format!(
                "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\n{}Connection: close\r\n\r\n",
                cors(&head)
            );
            sock.write_all(start.as_bytes()).await?;
            sock.write_all(b": shen ring events\n\n").await?;
            loop {
                match rx.recv().await {
                    Ok(line) => {
                        sock.write_all(format!("data: {line}\n\n").as_bytes())
                            .await?;
                    }
                    Err(broadcast::error::RecvError::Lagged(n)) => {
                        sock.write_all(
                            format!(": {n} events skipped (slow reader)\n\n").as_bytes(),
                        )
                        .await?;
                    }
                    Err(broadcast::error::RecvError::Closed) => return Ok(()),
                }
            }
        }
        "/log/read" => {
            let (code, v) = read(&handle, &shared, &query).await;
            respond_json(&mut sock, code, &v).await
        }
        "/" => {
            respond(
                &mut sock,
                "200 OK",
                "text/plain",
                "shen admin: /status (JSON), /metrics (Prometheus), /events (SSE), POST /log/append?key=K, /log/read?partition=P&from=O\n",
            )
            .await
        }
        _ => respond(&mut sock, "404 Not Found", "text/plain", "not found\n").await,
    }
}

/// Prometheus text exposition of the transport counters and ring events.
pub fn metrics_text(handle: &Handle<Event>, shared: &Shared) -> String {
    let m = handle.metrics();
    let mut out = String::new();
    let mut counter = |name: &str, help: &str, v: u64| {
        let _ = writeln!(
            out,
            "# HELP {name} {help}\n# TYPE {name} counter\n{name} {v}"
        );
    };
    counter(
        "shen_messages_sent_total",
        "Envelopes queued to peers.",
        m.messages_sent,
    );
    counter(
        "shen_bytes_sent_total",
        "Bytes of frames queued to peers.",
        m.bytes_sent,
    );
    counter(
        "shen_messages_received_total",
        "Envelopes received from peers.",
        m.messages_received,
    );
    counter(
        "shen_bytes_received_total",
        "Bytes of frames received.",
        m.bytes_received,
    );
    counter(
        "shen_messages_dropped_total",
        "Envelopes dropped (unreachable peer, full queue).",
        m.messages_dropped,
    );
    counter(
        "shen_bad_frames_total",
        "Malformed, oversized or wrong-version frames (connection closed).",
        m.bad_frames,
    );
    counter(
        "shen_floods_total",
        "Streams closed for exceeding the frame rate.",
        m.floods,
    );
    counter(
        "shen_connections_opened_total",
        "Connections established.",
        m.connections_opened,
    );
    counter(
        "shen_connections_closed_total",
        "Connections closed.",
        m.connections_closed,
    );
    counter(
        "shen_peers_identified_total",
        "Shen peers identified and handed to Sundial.",
        m.peers_discovered,
    );
    counter(
        "shen_timers_fired_total",
        "Ring timers fired.",
        m.timers_fired,
    );
    if let Ok(h) = shared.append_latency.lock() {
        h.render(
            "shen_append_latency_seconds",
            "Client appends through this node's admin API, from request to acknowledgement.",
            &mut out,
        );
    }
    let counts = shared.counts.lock().map(|c| c.clone()).unwrap_or_default();
    let _ = writeln!(out, "# HELP shen_ring_events_total Ring events by name (sundial.suspected = suspicion events).\n# TYPE shen_ring_events_total counter");
    for name in shen_rings::stack::ShenEvent::<u64>::NAMES {
        let v = counts.get(name).copied().unwrap_or(0);
        let _ = writeln!(out, "shen_ring_events_total{{event=\"{name}\"}} {v}");
    }
    out
}

/// `POST /log/append`. With `keep`, a successful exchange leaves the
/// connection open (returns true); errors in the request close it.
async fn serve_append(
    sock: &mut TcpStream,
    head: &str,
    rest: Vec<u8>,
    query: &[(String, Vec<u8>)],
    handle: &Handle<Event>,
    shared: &Arc<Shared>,
    keep: bool,
) -> std::io::Result<bool> {
    // Only `application/octet-stream`: a browser must send a CORS
    // preflight for that type, which this server never approves, so a
    // web page cannot make a visitor's browser append (no CSRF).
    let ctype = header(head, "content-type").unwrap_or("");
    if !ctype.eq_ignore_ascii_case("application/octet-stream") {
        respond_json(sock, "415 Unsupported Media Type", &json!({ "error": "send the record as Content-Type: application/octet-stream", "kind": "bad_request" })).await?;
        return Ok(false);
    }
    let Some(len) = content_length(head) else {
        respond_json(
            sock,
            "411 Length Required",
            &json!({ "error": "Content-Length is required", "kind": "bad_request" }),
        )
        .await?;
        return Ok(false);
    };
    if len > MAX_BODY {
        respond_json(sock, "413 Payload Too Large", &json!({ "error": format!("record of {len} bytes exceeds the 1 MiB limit"), "kind": "too_large" })).await?;
        return Ok(false);
    }
    let body = match tokio::time::timeout(Duration::from_secs(10), read_body(sock, rest, len)).await
    {
        Ok(b) => b?,
        Err(_) => return Ok(false),
    };
    let (code, v) = append(handle, shared, query, body).await;
    if !keep {
        respond_json(sock, code, &v).await?;
        return Ok(false);
    }
    let body = serde_json::to_string(&v).unwrap_or_default() + "\n";
    let head = format!(
        "HTTP/1.1 {code}\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: keep-alive\r\n\r\n",
        body.len()
    );
    // One write: head and body in one segment (no Nagle/delayed-ACK stall).
    let mut msg = head.into_bytes();
    msg.extend_from_slice(body.as_bytes());
    sock.write_all(&msg).await?;
    Ok(true)
}

/// Acquire the Cartouche token for a client and release it at once:
/// `{"id","fencing","wait_ms"}` (how long the grant took).
async fn token_acquire(handle: &Handle<Event>, shared: &Arc<Shared>) -> (&'static str, Value) {
    let t0 = std::time::Instant::now();
    let sh = shared.clone();
    let rx = handle.run(move |node, _, now, rng| {
        let id =
            node.command::<Cartouche<PeerKey>, _>(now, rng, |c, cx| c.request(cx, "client"))?;
        Some((id, sh.waiters.register_token(id)))
    });
    let (id, wait) = match tokio::time::timeout(Duration::from_secs(5), rx).await {
        Ok(Ok(Some(s))) => s,
        Ok(Ok(None)) => return not_formed(shared.log_expect),
        _ => {
            return (
                "503 Service Unavailable",
                json!({ "error": "node not answering", "kind": "unavailable" }),
            )
        }
    };
    let fencing = match tokio::time::timeout(Duration::from_secs(10), wait).await {
        Ok(Ok(f)) => f,
        _ => {
            shared.waiters.forget_token(id);
            drop(handle.run(move |node, _, now, rng| {
                node.command::<Cartouche<PeerKey>, _>(now, rng, |c, cx| c.release(cx, id));
            }));
            return (
                "504 Gateway Timeout",
                json!({ "error": "the token was not granted within 10 s", "kind": "timeout" }),
            );
        }
    };
    let wait_ms = t0.elapsed().as_secs_f64() * 1000.0;
    drop(handle.run(move |node, _, now, rng| {
        node.command::<Cartouche<PeerKey>, _>(now, rng, |c, cx| c.release(cx, id));
    }));
    (
        "200 OK",
        json!({
            "id": id,
            "fencing": crate::log_cluster::epoch_text(fencing),
            "wait_ms": wait_ms,
        }),
    )
}

fn param<'a>(query: &'a [(String, Vec<u8>)], name: &str) -> Option<&'a [u8]> {
    query
        .iter()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.as_slice())
}

fn num_param(query: &[(String, Vec<u8>)], name: &str) -> Result<Option<u64>, Value> {
    match param(query, name) {
        None => Ok(None),
        Some(v) => std::str::from_utf8(v)
            .ok()
            .and_then(|t| t.parse().ok())
            .map(Some)
            .ok_or_else(|| json!({ "error": format!("{name} must be a non-negative integer"), "kind": "bad_request" })),
    }
}

fn not_formed(expect: Option<usize>) -> (&'static str, Value) {
    let why = match expect {
        Some(n) => format!("the log has not formed yet: waiting for exactly {n} live nodes (--bootstrap-expect {n})"),
        None => "this node runs no log: start the cluster with --bootstrap-expect N".to_string(),
    };
    (
        "503 Service Unavailable",
        json!({ "error": why, "kind": "not_formed" }),
    )
}

/// Run a client operation on the node's Ouroboros and wait for its outcome
/// (at most `deadlines` request timeouts, plus a margin).
async fn run_op(
    handle: &Handle<Event>,
    shared: &Arc<Shared>,
    deadlines: u32,
    op: impl FnOnce(&mut Node<PeerKey, Event>, Time, &mut dyn rand_core::RngCore) -> Option<u64>
        + Send
        + 'static,
) -> Result<Outcome, (&'static str, Value)> {
    let sh = shared.clone();
    let rx = handle.run(move |node, _, now, rng| {
        let timeout = node.ring::<Ouroboros<PeerKey>>()?.config().request_timeout * deadlines;
        let req = op(node, now, rng)?;
        Some((req, timeout, sh.waiters.register(req)))
    });
    let started = match tokio::time::timeout(Duration::from_secs(5), rx).await {
        Ok(Ok(Some(s))) => s,
        Ok(Ok(None)) => return Err(not_formed(shared.log_expect)),
        _ => {
            return Err((
                "503 Service Unavailable",
                json!({ "error": "node not answering", "kind": "unavailable" }),
            ))
        }
    };
    let (req, timeout, wait) = started;
    match tokio::time::timeout(timeout + Duration::from_secs(2), wait).await {
        Ok(Ok(outcome)) => Ok(outcome),
        _ => {
            shared.waiters.forget(req);
            Err(error_reply(&shen_rings::ouroboros::LogError::Timeout))
        }
    }
}

/// Most records in one transaction.
const MAX_TXN_RECORDS: usize = 256;

/// A transaction's records: (key, payload).
type Records = Vec<(Vec<u8>, Vec<u8>)>;

/// The records of a `POST /log/txn` body, or why not.
fn txn_records(body: &[u8]) -> Result<Records, String> {
    let v: Value = serde_json::from_slice(body).map_err(|e| format!("body is not JSON: {e}"))?;
    let list = v["records"]
        .as_array()
        .ok_or("expected {\"records\": [{\"key\": ..., \"data\": ...}, ...]}")?;
    if list.is_empty() || list.len() > MAX_TXN_RECORDS {
        return Err(format!(
            "a transaction holds 1 to {MAX_TXN_RECORDS} records, not {}",
            list.len()
        ));
    }
    list.iter()
        .enumerate()
        .map(|(i, r)| {
            let key = r["key"]
                .as_str()
                .ok_or(format!("records[{i}].key must be a string"))?;
            let data = match (r["data"].as_str(), r["data_hex"].as_str()) {
                (Some(d), None) => d.as_bytes().to_vec(),
                (None, Some(h)) => crate::client::hex_decode(h)
                    .ok_or(format!("records[{i}].data_hex is not hex"))?,
                _ => return Err(format!("records[{i}] needs data or data_hex (one of them)")),
            };
            Ok((key.as_bytes().to_vec(), data))
        })
        .collect()
}

/// `POST /log/txn`.
async fn serve_txn(
    sock: &mut TcpStream,
    head: &str,
    rest: Vec<u8>,
    handle: &Handle<Event>,
    shared: &Arc<Shared>,
) -> std::io::Result<(&'static str, Value)> {
    // JSON needs a CORS preflight from a browser, never approved here.
    let ctype = header(head, "content-type").unwrap_or("");
    if !ctype
        .split(';')
        .next()
        .is_some_and(|t| t.trim().eq_ignore_ascii_case("application/json"))
    {
        return Ok((
            "415 Unsupported Media Type",
            json!({ "error": "send the transaction as Content-Type: application/json", "kind": "bad_request" }),
        ));
    }
    let Some(len) = content_length(head) else {
        return Ok((
            "411 Length Required",
            json!({ "error": "Content-Length is required", "kind": "bad_request" }),
        ));
    };
    if len > MAX_BODY * 2 {
        return Ok((
            "413 Payload Too Large",
            json!({ "error": format!("transaction of {len} bytes exceeds the 2 MiB limit"), "kind": "too_large" }),
        ));
    }
    let body = match tokio::time::timeout(Duration::from_secs(10), read_body(sock, rest, len)).await
    {
        Ok(b) => b?,
        Err(_) => {
            return Ok((
                "408 Request Timeout",
                json!({ "error": "body not received", "kind": "bad_request" }),
            ))
        }
    };
    let records = match txn_records(&body) {
        Ok(r) => r,
        Err(e) => {
            return Ok((
                "400 Bad Request",
                json!({ "error": e, "kind": "bad_request" }),
            ))
        }
    };
    Ok(txn(handle, shared, records).await)
}

async fn txn(
    handle: &Handle<Event>,
    shared: &Arc<Shared>,
    records: Records,
) -> (&'static str, Value) {
    // A transaction has three rounds of appends: three request timeouts
    // (its own deadline inside the node).
    let outcome = match run_op(handle, shared, 3, move |node, now, rng| {
        node.command::<Ouroboros<PeerKey>, _>(now, rng, |o, cx| o.transaction(cx, records))
    })
    .await
    {
        Ok(o) => o,
        Err(e) => return e,
    };
    match outcome {
        OuroborosEvent::TxnDone {
            committed: Some(true),
            records,
            ..
        } => {
            let recs: Vec<Value> = records
                .iter()
                .map(|(p, o, id)| {
                    json!({ "partition": p, "offset": o, "id": ScarabId::from_u64(*id).to_string() })
                })
                .collect();
            ("200 OK", json!({ "committed": true, "records": recs }))
        }
        OuroborosEvent::TxnDone {
            committed: Some(false),
            error,
            ..
        } => (
            "409 Conflict",
            json!({
                "committed": false,
                "error": error.map(|e| e.to_string()).unwrap_or_else(|| "the transaction aborted: a record could not be written".into()),
                "kind": "aborted",
            }),
        ),
        OuroborosEvent::TxnDone { .. } => {
            let (code, mut v) = error_reply(&shen_rings::ouroboros::LogError::Timeout);
            v["committed"] = Value::Null;
            (code, v)
        }
        other => (
            "500 Internal Server Error",
            json!({ "error": format!("unexpected outcome {}", ShenEventName(&other)), "kind": "internal" }),
        ),
    }
}

async fn append(
    handle: &Handle<Event>,
    shared: &Arc<Shared>,
    query: &[(String, Vec<u8>)],
    body: Vec<u8>,
) -> (&'static str, Value) {
    let Some(key) = param(query, "key").map(|k| k.to_vec()) else {
        return (
            "400 Bad Request",
            json!({ "error": "key is required: POST /log/append?key=K", "kind": "bad_request" }),
        );
    };
    let t0 = std::time::Instant::now();
    let outcome = run_op(handle, shared, 1, move |node, now, rng| {
        node.command::<Ouroboros<PeerKey>, _>(now, rng, |o, cx| o.append(cx, &key, body))
    })
    .await;
    match outcome {
        Ok(OuroborosEvent::Appended {
            partition,
            offset,
            id,
            ..
        }) => {
            if let Ok(mut h) = shared.append_latency.lock() {
                h.observe(t0.elapsed().as_secs_f64());
            }
            let id = ScarabId::from_u64(id).to_string();
            (
                "200 OK",
                json!({ "partition": partition, "offset": offset, "id": id }),
            )
        }
        Ok(OuroborosEvent::AppendFailed { error, .. }) => error_reply(&error),
        Ok(other) => (
            "500 Internal Server Error",
            json!({ "error": format!("unexpected outcome {}", ShenEventName(&other)), "kind": "internal" }),
        ),
        Err(e) => e,
    }
}

async fn read(
    handle: &Handle<Event>,
    shared: &Arc<Shared>,
    query: &[(String, Vec<u8>)],
) -> (&'static str, Value) {
    let nums = (|| {
        Ok::<_, Value>((
            num_param(query, "partition")?,
            num_param(query, "from")?.unwrap_or(0),
            num_param(query, "max")?.unwrap_or(100).clamp(1, 10_000),
        ))
    })();
    let (partition, from, max) = match nums {
        Ok(n) => n,
        Err(e) => return ("400 Bad Request", e),
    };
    let key = param(query, "key").map(|k| k.to_vec());
    let id = match param(query, "id").map(|v| String::from_utf8_lossy(v).parse::<ScarabId>()) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(e)) => {
            return (
                "400 Bad Request",
                json!({ "error": format!("id: {e}"), "kind": "bad_request" }),
            )
        }
    };
    if partition.is_none() && key.is_none() && id.is_none() {
        return (
            "400 Bad Request",
            json!({ "error": "give partition=P, key=K or id=SCARAB", "kind": "bad_request" }),
        );
    }
    let outcome = run_op(handle, shared, 1, move |node, now, rng| {
        node.command::<Ouroboros<PeerKey>, _>(now, rng, |o, cx| {
            if let Some(id) = id {
                return o.read_id(cx, id);
            }
            let p = match (partition, &key) {
                (Some(p), _) => u32::try_from(p).unwrap_or(u32::MAX),
                (None, Some(k)) => partition_of_key(k, o.config().partitions),
                (None, None) => 0,
            };
            o.read_range(cx, p, from, max as u32)
        })
    })
    .await;
    match outcome {
        Ok(OuroborosEvent::ReadDone {
            partition,
            from,
            records,
            committed,
            ..
        }) => {
            let recs: Vec<Value> = records
                .iter()
                .map(|r| {
                    let mut v = json!({
                        "offset": r.offset,
                        "id": ScarabId::from_u64(r.id).to_string(),
                        "origin": r.origin.to_string(),
                        "req": r.req,
                    });
                    match std::str::from_utf8(&r.data) {
                        Ok(t) => v["data"] = json!(t),
                        Err(_) => v["data_hex"] = json!(hex(&r.data)),
                    }
                    v
                })
                .collect();
            (
                "200 OK",
                json!({ "partition": partition, "from": from, "committed": committed, "records": recs }),
            )
        }
        Ok(OuroborosEvent::ReadFailed { error, .. }) => error_reply(&error),
        Ok(other) => (
            "500 Internal Server Error",
            json!({ "error": format!("unexpected outcome {}", ShenEventName(&other)), "kind": "internal" }),
        ),
        Err(e) => e,
    }
}

fn hex(b: &[u8]) -> String {
    b.iter().map(|x| format!("{x:02x}")).collect()
}

struct ShenEventName<'a>(&'a OuroborosEvent<PeerKey>);

impl core::fmt::Display for ShenEventName<'_> {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        write!(
            f,
            "{}",
            shen_rings::stack::ShenEvent::Ouroboros(self.0.clone()).name()
        )
    }
}
