//! The admin HTTP API of `shen run` (127.0.0.1 by default): a deliberately
//! tiny HTTP/1.1 server (GET only, one request per connection).
//!
//! - `GET /status` — JSON: members, health, ring ownership, network.
//! - `GET /metrics` — Prometheus text: messages, bytes, bad frames, floods,
//!   connections, ring events (suspicions, deaths...) by name.
//! - `GET /events` — Server-Sent Events: one `data: {json}` line per ring
//!   event, as it happens (the live visualization's input).

use std::fmt::Write as _;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::broadcast;
use tracing::debug;

use crate::run_cmd::{status_json, Event, Shared};
use shen_transport_libp2p::Handle;

/// Accept admin connections forever.
pub async fn serve(listener: TcpListener, handle: Handle<Event>, shared: Arc<Shared>) {
    loop {
        match listener.accept().await {
            Ok((sock, _)) => {
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

async fn read_head(sock: &mut TcpStream) -> std::io::Result<String> {
    let mut buf = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    loop {
        let n = sock.read(&mut chunk).await?;
        if n == 0 {
            break;
        }
        buf.extend_from_slice(&chunk[..n]);
        if buf.windows(4).any(|w| w == b"\r\n\r\n") || buf.len() > 8192 {
            break;
        }
    }
    Ok(String::from_utf8_lossy(&buf).into_owned())
}

async fn respond(sock: &mut TcpStream, code: &str, ctype: &str, body: &str) -> std::io::Result<()> {
    let head = format!(
        "HTTP/1.1 {code}\r\nContent-Type: {ctype}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    sock.write_all(head.as_bytes()).await?;
    sock.write_all(body.as_bytes()).await?;
    sock.shutdown().await
}

async fn serve_one(
    mut sock: TcpStream,
    handle: Handle<Event>,
    shared: Arc<Shared>,
) -> std::io::Result<()> {
    let head = match tokio::time::timeout(Duration::from_secs(5), read_head(&mut sock)).await {
        Ok(h) => h?,
        Err(_) => return Ok(()),
    };
    let mut parts = head.lines().next().unwrap_or("").split_whitespace();
    let method = parts.next().unwrap_or("");
    let path = parts.next().unwrap_or("");
    let path = path.split('?').next().unwrap_or("");
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
            let rx = handle.run(|node, view, now, _| status_json(node, view, now));
            match tokio::time::timeout(Duration::from_secs(5), rx).await {
                Ok(Ok(v)) => {
                    let body = serde_json::to_string_pretty(&v).unwrap_or_default() + "\n";
                    respond(&mut sock, "200 OK", "application/json", &body).await
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
            sock.write_all(
                b"HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nCache-Control: no-cache\r\nConnection: close\r\n\r\n",
            )
            .await?;
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
        "/" => {
            respond(
                &mut sock,
                "200 OK",
                "text/plain",
                "shen admin: /status (JSON), /metrics (Prometheus), /events (SSE)\n",
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
    let counts = shared.counts.lock().map(|c| c.clone()).unwrap_or_default();
    let _ = writeln!(out, "# HELP shen_ring_events_total Ring events by name (sundial.suspected = suspicion events).\n# TYPE shen_ring_events_total counter");
    for name in shen_rings::stack::ShenEvent::<u64>::NAMES {
        let v = counts.get(name).copied().unwrap_or(0);
        let _ = writeln!(out, "shen_ring_events_total{{event=\"{name}\"}} {v}");
    }
    out
}
