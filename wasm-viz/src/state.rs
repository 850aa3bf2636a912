//! The exported JSON state (the page's test and bench hook): everything the
//! page draws, as data.
//!
//! `state_json` (full): time, trace hash, every node with its Sundial view,
//! suspicion and phi, Cartouche token and grant, the Ankh ownership ranges
//! from one node's view, messages in flight, invariants, the script.
//! `summary_json`: the same without per-node views and ranges (cheap enough
//! for every frame of a 500-node world). Log worlds add `log`: every
//! partition's chain and replicas, the client operations, writes in flight.

use serde::Serialize;
use shen_rings::sundial::Status;

use crate::invariants::{Check, NodeObs};
use crate::log::{ClientOp, MembersObs, PartObs, LOG_MAX_NODES};
use crate::script::format_script;
use crate::world::{Flight, World};

/// A node's Sundial view, member ids by status.
#[derive(Serialize, Default)]
pub struct View {
    /// Alive members (itself included).
    pub alive: Vec<u64>,
    /// Suspected members.
    pub suspect: Vec<u64>,
    /// Members declared dead (or left).
    pub dead: Vec<u64>,
}

/// One node.
#[derive(Serialize)]
pub struct NodeState {
    /// Everything observed at the last check point.
    #[serde(flatten)]
    pub obs: NodeObs,
    /// Whether a majority of the other running nodes declare it dead.
    pub declared_dead: bool,
    /// Its share of the ring in the reference view (0 when not placed).
    pub share: f64,
    /// Its view (full state only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub view: Option<View>,
    /// Its phi for each member it monitors (full state only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub phi: Option<Vec<(u64, f64)>>,
    /// Its grant `(request, generation, sequence, lease end µs)`.
    pub grant: Option<(u64, u64, u64, u64)>,
}

/// One ownership range of the ring, as fractions of the hash space.
#[derive(Serialize, Clone, Debug, PartialEq)]
pub struct Range {
    /// Start (exclusive), in `[0, 1)`.
    pub start: f64,
    /// End (inclusive), in `(0, 1]`; below `start` when it wraps.
    pub end: f64,
    /// Primary owner.
    pub owner: u64,
}

/// The Ankh ring from one node's view.
#[derive(Serialize)]
pub struct AnkhState {
    /// Whose view.
    pub view_of: u64,
    /// Virtual nodes per node.
    pub vnodes: u32,
    /// Placed members.
    pub members: Vec<u64>,
    /// Ownership ranges, adjacent ranges of one owner merged (full only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ranges: Option<Vec<Range>>,
    /// The replica chain (head first) of each partition (full only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub chains: Option<Vec<Vec<u64>>>,
}

/// The token.
#[derive(Serialize)]
pub struct TokenState {
    /// Running nodes holding a valid grant.
    pub holders: Vec<u64>,
    /// Nodes where a token rests.
    pub at: Vec<u64>,
    /// Token messages in flight `(message, from, to, generation)`.
    pub in_flight: Vec<(u64, u64, u64, u64)>,
    /// The highest fencing number held now `(generation, sequence)`.
    pub fencing: Option<(u64, u64)>,
    /// Pending requests over all nodes.
    pub queued: usize,
}

/// The whole state.
#[derive(Serialize)]
pub struct State<'a> {
    /// Virtual time, µs.
    pub time_us: u64,
    /// Time of the last check point, µs.
    pub observed_us: u64,
    /// The end of the timeline, µs.
    pub horizon_us: u64,
    /// Seed (as text: u64 does not fit a JS number).
    pub seed: String,
    /// Trace hash, 16 hex digits (as `shen sim run` prints it).
    pub trace_hash: String,
    /// Events processed.
    pub steps: u64,
    /// Nodes.
    pub nodes: Vec<NodeState>,
    /// Running nodes.
    pub up: usize,
    /// The Ankh ring.
    pub ankh: Option<AnkhState>,
    /// The Cartouche token.
    pub token: TokenState,
    /// Messages in flight.
    pub in_flight: usize,
    /// The messages themselves (full only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub messages: Option<Vec<Flight>>,
    /// Invariants.
    pub invariants: Vec<&'a Check>,
    /// Earliest violation, µs.
    pub first_violation_us: Option<u64>,
    /// Network: mean latency (ms) and loss; whether partitioned.
    pub latency_ms: f64,
    /// Loss probability.
    pub loss: f64,
    /// A partition cuts the network.
    pub partitioned: bool,
    /// Phi threshold.
    pub phi_threshold: f64,
    /// Event counts.
    pub events: &'a std::collections::BTreeMap<String, u64>,
    /// The fault script (URL form).
    pub script: String,
    /// Snapshot times of the timeline, µs (full only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub marks_us: Option<Vec<u64>>,
    /// The Shen log (log worlds only).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub log: Option<LogState<'a>>,
}

/// The Shen log: chains, replicas, client operations.
#[derive(Serialize)]
pub struct LogState<'a> {
    /// Partitions.
    pub partitions: u32,
    /// The most nodes a log world may have.
    pub max_nodes: u64,
    /// The newest table's ballot `(generation, sequence)`.
    pub ballot: (u64, u64),
    /// The newest table's member set: version, members, leaving.
    pub members: MembersObs,
    /// Nodes that asked to leave ([`crate::script::Op::Leave`]) and still
    /// run.
    pub leave_asked: Vec<u64>,
    /// Nodes that left the member set and were stopped for good.
    pub gone: Vec<u64>,
    /// Every partition's chain (newest table, head first) and the running
    /// replicas' log length, commit point and epoch, as of the last check
    /// point.
    pub chains: &'a [PartObs],
    /// Client operations issued from the page, oldest first.
    pub ops: &'a [ClientOp],
    /// Operations without an outcome yet.
    pub pending: usize,
    /// Acknowledged appends.
    pub acked: usize,
    /// Ouroboros messages in flight carrying records down a chain
    /// (`append`) or commit points up it (`ack`).
    pub chain_msgs_in_flight: usize,
    /// Trace entries evicted before the viz read them (0 unless a check
    /// interval overflowed the bounded trace).
    pub missed_events: u64,
}

/// Ownership ranges of a ring, merged.
pub fn ranges(world: &World) -> Vec<Range> {
    const SPACE: f64 = 18_446_744_073_709_551_616.0;
    let Some(r) = world.ref_ring() else {
        return Vec::new();
    };
    let pts: Vec<(u64, u64)> = r.ring.points().map(|(p, o)| (p, *o)).collect();
    let n = pts.len();
    let mut out: Vec<Range> = Vec::new();
    for i in 0..n {
        let (end, owner) = pts[i];
        let start = pts[(i + n - 1) % n].0;
        let range = Range {
            start: start as f64 / SPACE,
            end: if n == 1 { 1.0 } else { end as f64 / SPACE },
            owner,
        };
        match out.last_mut() {
            Some(last) if last.owner == owner && i > 0 => last.end = range.end,
            _ => out.push(range),
        }
    }
    // The first range wraps from the last point: merge it with the last
    // range when they share an owner.
    if out.len() > 1 && out[0].owner == out[out.len() - 1].owner {
        let last = out.pop().expect("len > 1");
        out[0].start = last.start;
    }
    out
}

/// Build the state; `full` adds views, ranges, chains and messages.
pub fn state(world: &World, full: bool) -> State<'_> {
    let obs = world.observation();
    let sim = world.sim();
    let up = obs.nodes.iter().filter(|n| n.up).count();
    let flights = world.flights();
    let ring = world.ref_ring();
    let nodes = obs
        .nodes
        .iter()
        .map(|o| {
            let others = up.saturating_sub(usize::from(o.up)) as u32;
            let view = full.then(|| {
                let mut v = View::default();
                for (id, status, _, _) in world.view_of(o.id) {
                    match status {
                        Status::Alive => v.alive.push(id),
                        Status::Suspect => v.suspect.push(id),
                        Status::Dead | Status::Left => v.dead.push(id),
                    }
                }
                v
            });
            NodeState {
                declared_dead: others > 0 && o.dead_votes * 2 > others,
                share: ring.and_then(|r| r.ring.share_of(&o.id)).unwrap_or(0.0),
                view,
                phi: full.then(|| world.phis_of(o.id)),
                grant: world
                    .grant_of(o.id)
                    .map(|(r, f, t)| (r, f.generation, f.sequence, t)),
                obs: o.clone(),
            }
        })
        .collect();
    let ankh = ring.map(|r| {
        let mut members: Vec<u64> = r.ring.members().map(|m| m.id).collect();
        members.sort_unstable();
        AnkhState {
            view_of: r.view_of,
            vnodes: r.ring.config().vnodes,
            members,
            ranges: full.then(|| ranges(world)),
            chains: full.then(|| {
                (0..r.ring.config().partitions)
                    .map(|p| r.ring.chain_of(p).copied().collect())
                    .collect()
            }),
        }
    });
    let token = TokenState {
        holders: obs.holders(),
        at: obs
            .nodes
            .iter()
            .filter(|n| n.up && n.has_token)
            .map(|n| n.id)
            .collect(),
        in_flight: flights
            .iter()
            .filter_map(|f| f.token_generation.map(|g| (f.id, f.from, f.to, g)))
            .collect(),
        fencing: obs
            .nodes
            .iter()
            .filter(|n| n.up)
            .filter_map(|n| n.holding)
            .max()
            .map(|f| (f.generation, f.sequence)),
        queued: obs.nodes.iter().filter(|n| n.up).map(|n| n.pending).sum(),
    };
    let (latency_ms, loss) = world.net();
    let inv = world.invariants();
    let log = world.log_book().map(|book| {
        let lo = obs.log.as_ref();
        LogState {
            partitions: world
                .config()
                .stack
                .ouroboros
                .as_ref()
                .map_or(0, |o| o.partitions),
            max_nodes: LOG_MAX_NODES,
            ballot: lo.map_or((0, 0), |l| l.ballot),
            members: lo.map(|l| l.members.clone()).unwrap_or_default(),
            leave_asked: world.departures().leaving.iter().copied().collect(),
            gone: world.departures().gone.iter().copied().collect(),
            chains: lo.map_or(&[][..], |l| l.partitions.as_slice()),
            ops: book.ops(),
            pending: book.pending(),
            acked: book.acked().len(),
            chain_msgs_in_flight: flights
                .iter()
                .filter(|f| matches!(f.kind, Some("append" | "ack")))
                .count(),
            missed_events: book.missed,
        }
    });
    State {
        time_us: world.now().as_micros(),
        observed_us: obs.at_us,
        horizon_us: world.horizon().as_micros(),
        seed: world.config().seed.to_string(),
        trace_hash: format!("{:016x}", sim.trace_hash()),
        steps: sim.steps(),
        nodes,
        up,
        ankh,
        token,
        in_flight: flights.len(),
        messages: full.then_some(flights),
        invariants: inv.all(),
        first_violation_us: inv.first_violation_us(),
        latency_ms,
        loss,
        partitioned: obs.partitioned,
        phi_threshold: obs.phi_threshold,
        events: &obs.events,
        script: format_script(&world.script()),
        marks_us: full.then(|| world.mark_times().iter().map(|t| t.as_micros()).collect()),
        log,
    }
}

/// The state as JSON.
pub fn state_json(world: &World, full: bool) -> String {
    serde_json::to_string(&state(world, full)).unwrap_or_else(|e| format!("{{\"error\":\"{e}\"}}"))
}
