//! `GET /metrics`: Prometheus text of the transport's counters, ring events and append latency.

use std::fmt::Write as _;
use std::sync::Mutex;

use axum::extract::State;
use axum::http::header;
use axum::response::IntoResponse;

use super::AdminState;
use crate::daemon::Ops;

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

/// Prometheus text exposition of the transport counters and ring events.
pub fn metrics_text(ops: &Ops, append_latency: &Mutex<Histogram>) -> String {
    let m = ops.transport_metrics();
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
        "shen_queue_full_drops_total",
        "Envelopes dropped because a peer's send queue was full (a slow peer or link).",
        m.queue_full_drops,
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
    counter(
        "shen_hole_punches_tried_total",
        "DCUtR hole punches attempted.",
        m.punches_tried,
    );
    counter(
        "shen_hole_punches_succeeded_total",
        "Hole punches that gave a direct connection.",
        m.punches_succeeded,
    );
    counter(
        "shen_relay_reservations_made_total",
        "Relay reservations this node obtained (renewals included).",
        m.relay_reservations_made,
    );
    counter(
        "shen_relay_reservations_served_total",
        "Relay reservations this node granted as a relay.",
        m.relay_reservations_served,
    );
    counter(
        "shen_relay_circuits_served_total",
        "Circuits this node relayed.",
        m.relay_circuits_served,
    );
    counter(
        "shen_relay_requests_denied_total",
        "Reservation and circuit requests this relay refused (limits).",
        m.relay_requests_denied,
    );
    counter(
        "shen_relayed_bytes_total",
        "Shen bytes exchanged with peers reached only through a relay.",
        m.relayed_bytes,
    );
    counter(
        "shen_reachability_probes_ok_total",
        "AutoNAT v2 dial-backs that confirmed an address.",
        m.reachability_probes_ok,
    );
    counter(
        "shen_reachability_probes_failed_total",
        "AutoNAT v2 dial-backs that failed.",
        m.reachability_probes_failed,
    );
    if let Ok(h) = append_latency.lock() {
        h.render(
            "shen_append_latency_seconds",
            "Client appends through this node's admin API, from request to acknowledgement.",
            &mut out,
        );
    }
    let counts = ops.event_counts();
    let _ = writeln!(
        out,
        "# HELP shen_storage_faults_total Write-ahead log failures (no space, I/O error, failed fsync); each takes this node out of the cluster until restarted.\n# TYPE shen_storage_faults_total counter\nshen_storage_faults_total {}",
        counts.get("ouroboros.storage_failed").copied().unwrap_or(0)
    );
    let _ = writeln!(out, "# HELP shen_ring_events_total Ring events by name (sundial.suspected = suspicion events).\n# TYPE shen_ring_events_total counter");
    for name in shen_rings::stack::ShenEvent::<u64>::NAMES {
        let v = counts.get(name).copied().unwrap_or(0);
        let _ = writeln!(out, "shen_ring_events_total{{event=\"{name}\"}} {v}");
    }
    out
}

pub(crate) async fn metrics(State(st): State<AdminState>) -> impl IntoResponse {
    (
        [(header::CONTENT_TYPE, "text/plain; version=0.0.4")],
        metrics_text(&st.ops, &st.append_latency),
    )
}
