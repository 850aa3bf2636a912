//! Faults and control actions: the one vocabulary shared by scenario files,
//! the live API (the browser's buttons) and the trace.

use serde::{Deserialize, Serialize};

use crate::disk::{DiskFault, RestartMode};
use crate::net::NetConfig;

/// A fault or control action applied to a world, either scheduled at a
/// virtual time (in a [`Scenario`](crate::Scenario) or with
/// [`Sim::schedule`](crate::Sim::schedule)) or applied at once with
/// [`Sim::apply`](crate::Sim::apply) or the matching method.
///
/// Node ids are the nodes' indices (`0..nodes`). In TOML, a fault reads like
/// `{ crash = 2 }`, `{ restart = { node = 2, disk = "lose_unsynced" } }`,
/// `{ partition = [[0, 1], [2, 3]] }` or `"heal"`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case", deny_unknown_fields)]
pub enum Fault {
    /// Crash a node: its in-memory state and pending timers are gone and
    /// messages arriving for it are dropped until it restarts.
    Crash(u64),
    /// Restart a node (crashing it first if it is running) with a fresh
    /// incarnation; `disk` says what of its [`SimDisk`](crate::SimDisk)
    /// survives.
    Restart {
        /// The node.
        node: u64,
        /// What survives on disk (default: everything).
        #[serde(default)]
        disk: RestartMode,
    },
    /// Split the nodes into groups that cannot reach each other, both ways.
    /// Nodes in no group form one more group together. Adds to existing
    /// cuts.
    Partition(Vec<Vec<u64>>),
    /// Cut messages from every node of `from` to every node of `to` (the
    /// other direction keeps working). Adds to existing cuts.
    OneWay {
        /// Senders whose messages are cut.
        from: Vec<u64>,
        /// Destinations they can no longer reach.
        to: Vec<u64>,
    },
    /// Remove every partition and one-way cut.
    Heal,
    /// Replace the global network settings (links without their own
    /// settings use them).
    Network(NetConfig),
    /// Give the link `from` → `to` its own settings (`net` absent: back to
    /// the global settings). With `both`, also the link `to` → `from`.
    Link {
        /// Sender side.
        from: u64,
        /// Receiver side.
        to: u64,
        /// Apply to the reverse direction too.
        #[serde(default, skip_serializing_if = "core::ops::Not::not")]
        both: bool,
        /// The settings, or none to clear the override.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        net: Option<NetConfig>,
    },
    /// Hold the link `from` → `to`: messages arriving over it are parked
    /// until released.
    Hold {
        /// Sender side.
        from: u64,
        /// Receiver side.
        to: u64,
    },
    /// Release a held link: its parked messages are delivered now, in the
    /// order they arrived.
    Release {
        /// Sender side.
        from: u64,
        /// Receiver side.
        to: u64,
    },
    /// Drop one in-flight (or parked) message by id.
    DropMessage(u64),
    /// Send a copy of one in-flight (or parked) message, with fresh latency.
    DuplicateMessage(u64),
    /// Step a node's clock by `ms` milliseconds (negative: backwards).
    /// Pending timers are re-aimed at the new clock.
    Skew {
        /// The node.
        node: u64,
        /// The step, in ms.
        ms: f64,
    },
    /// From now on, run a node's clock `ppm` parts per million fast
    /// (negative: slow). Pending timers are re-aimed.
    Drift {
        /// The node.
        node: u64,
        /// Drift rate, in parts per million.
        ppm: i64,
    },
    /// Stall a node for `ms` milliseconds (a GC pause): deliveries and timers
    /// due meanwhile wait until it resumes.
    Pause {
        /// The node.
        node: u64,
        /// How long, in ms.
        ms: f64,
    },
    /// Give a node's disk a storage fault (`fault` absent: clear it, as
    /// when space was freed). Its write-ahead log fails from its next
    /// write or sync on, and the node steps out of the cluster.
    Disk {
        /// The node.
        node: u64,
        /// The fault, or none to clear it.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        fault: Option<DiskFault>,
    },
    /// Tell every running node except `member` that `member` failed (an
    /// oracle membership notification, via `Node::member_failed`).
    MemberFailed(u64),
    /// Tell every running node except `member` that `member` joined (via
    /// `Node::member_joined`).
    MemberJoined(u64),
}

impl Fault {
    /// A short name for the fault's kind (`"crash"`, `"partition"`, ...).
    pub fn kind(&self) -> &'static str {
        match self {
            Fault::Crash(_) => "crash",
            Fault::Restart { .. } => "restart",
            Fault::Partition(_) => "partition",
            Fault::OneWay { .. } => "one_way",
            Fault::Heal => "heal",
            Fault::Network(_) => "network",
            Fault::Link { .. } => "link",
            Fault::Hold { .. } => "hold",
            Fault::Release { .. } => "release",
            Fault::DropMessage(_) => "drop_message",
            Fault::DuplicateMessage(_) => "duplicate_message",
            Fault::Skew { .. } => "skew",
            Fault::Drift { .. } => "drift",
            Fault::Pause { .. } => "pause",
            Fault::Disk { .. } => "disk",
            Fault::MemberFailed(_) => "member_failed",
            Fault::MemberJoined(_) => "member_joined",
        }
    }

    /// Check the fault against a world of `nodes` nodes. The error names the
    /// offending field, prefixed with `field`.
    pub fn validate(&self, field: &str, nodes: u64) -> Result<(), String> {
        let k = self.kind();
        let node = |sub: &str, n: u64| -> Result<(), String> {
            if n < nodes {
                Ok(())
            } else {
                Err(format!(
                    "{field}.{k}{sub}: node {n} is out of range (the world has {nodes} nodes: 0..{nodes})"
                ))
            }
        };
        let list = |sub: &str, ns: &[u64]| -> Result<(), String> {
            for (i, n) in ns.iter().enumerate() {
                node(&format!("{sub}[{i}]"), *n)?;
            }
            Ok(())
        };
        let ms = |sub: &str, v: f64, allow_negative: bool| -> Result<(), String> {
            let lim = 86_400_000.0;
            let lo = if allow_negative { -lim } else { 0.0 };
            if v.is_finite() && v >= lo && v <= lim {
                Ok(())
            } else {
                Err(format!(
                    "{field}.{k}{sub}: must be a number of milliseconds within [{lo}, {lim}], got {v}"
                ))
            }
        };
        match self {
            Fault::Crash(n) | Fault::MemberFailed(n) | Fault::MemberJoined(n) => node("", *n),
            Fault::Restart { node: n, .. } => node(".node", *n),
            Fault::Partition(groups) => {
                for (i, g) in groups.iter().enumerate() {
                    list(&format!("[{i}]"), g)?;
                }
                Ok(())
            }
            Fault::OneWay { from, to } => {
                list(".from", from)?;
                list(".to", to)
            }
            Fault::Heal | Fault::DropMessage(_) | Fault::DuplicateMessage(_) => Ok(()),
            Fault::Network(net) => net.validate(&format!("{field}.{k}")),
            Fault::Link { from, to, net, .. } => {
                node(".from", *from)?;
                node(".to", *to)?;
                match net {
                    Some(net) => net.validate(&format!("{field}.{k}.net")),
                    None => Ok(()),
                }
            }
            Fault::Hold { from, to } | Fault::Release { from, to } => {
                node(".from", *from)?;
                node(".to", *to)
            }
            Fault::Skew { node: n, ms: v } => {
                node(".node", *n)?;
                ms(".ms", *v, true)
            }
            Fault::Pause { node: n, ms: v } => {
                node(".node", *n)?;
                ms(".ms", *v, false)
            }
            Fault::Disk { node: n, .. } => node(".node", *n),
            Fault::Drift { node: n, ppm } => {
                node(".node", *n)?;
                if (crate::clock::MIN_DRIFT_PPM..=crate::clock::MAX_DRIFT_PPM).contains(ppm) {
                    Ok(())
                } else {
                    Err(format!(
                        "{field}.{k}.ppm: must be within [{}, {}], got {ppm}",
                        crate::clock::MIN_DRIFT_PPM,
                        crate::clock::MAX_DRIFT_PPM
                    ))
                }
            }
        }
    }
}
