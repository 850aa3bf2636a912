//! The Ouroboros history checker (`shen sim log`): drive Ouroboros Circle
//! (with Sundial feeding it failures and Cartouche serialising its
//! reconfigurations) in the simulator under a client workload and faults,
//! record the history of client operations and check it.
//!
//! The checker (per partition, against the final log read back after the
//! faults heal):
//! - **no acknowledged append lost**: every append acknowledged with offset
//!   `o` is the record at `o` in the final log;
//! - **no duplicates, no phantoms**: every record in the final log was
//!   appended by a client exactly once, although clients retry timed-out
//!   appends (at a random live node, with the same idempotent producer id
//!   and sequence: one producer per node and concurrency slot, the value
//!   as its sequence), so a retry written twice is a violation;
//! - **one order**: every record any read returned is the record the final
//!   log holds at that offset (all readers see prefixes of one order);
//! - **no stale reads**: a read invoked after an append was acknowledged
//!   returns a log that includes that append (real-time order);
//!
//! It also reports availability after healing: partitions whose final read
//! fails are listed as *unavailable* (their acknowledged appends cannot be
//! verified and are counted as such). That is a liveness gap, not a
//! safety violation: a chain whose caught-up members are all gone stays
//! unavailable rather than risk serving a log that misses acknowledged
//! records.
//!
//! Faults (with `faults`, on by default), from the seed: one node
//! crashes and restarts with an empty disk, later another one crashes for
//! good; a minority is partitioned away and healed; messages are lost
//! (1%), duplicated (1%) and reordered (5%); two clocks drift by ±5%.
//!
//! Debugging a seed: [`LogDebug`] (the CLI sets it from `SHEN_LOG_TRACE`,
//! `SHEN_LOG_DUMP`, `SHEN_LOG_DEBUG`) prints chain states on stderr.

use std::collections::{BTreeMap, BTreeSet};
use std::time::Duration;

use rand_chacha::rand_core::{RngCore, SeedableRng};
use rand_chacha::ChaCha8Rng;
use serde::Serialize;
use shen_rings::ouroboros::{MemberChange, Ouroboros, OuroborosEvent, Producer, ReadRecord};
use shen_rings::scarab::ScarabId;
use shen_rings::stack::{
    CartoucheSettings, JoinMode, OuroborosSettings, ShenEvent, StackConfig, SundialSettings,
};
use shen_rings::sundial::Sundial;
use shen_rings::Time;
use shen_transport_memory::{
    DiskFault, Latency, NetConfig, RestartMode, Sim, SimConfig, TraceKind, TraceMode,
};

use crate::check::{Check, Fold};
use crate::stats::percentile_rounded;

/// What `shen sim log` runs: the cluster, the workload, the faults.
#[derive(Clone, Debug, PartialEq)]
pub struct LogConfig {
    /// Cluster members.
    pub nodes: u64,
    /// First seed.
    pub seed: u64,
    /// Seeds to run (`seed..seed+runs`).
    pub runs: u64,
    /// Virtual duration of the workload, in seconds (then faults heal and
    /// the log is read back).
    pub duration_s: u64,
    /// Log partitions.
    pub partitions: u32,
    /// Client operations each node keeps in flight.
    pub concurrency: u64,
    /// Share of operations that are reads (0..1).
    pub read_ratio: f64,
    /// Inject faults (crash/restart, partition, loss, duplication,
    /// reordering, clock drift).
    pub faults: bool,
    /// One operation in N is a transaction of 2-3 records over random
    /// keys (0: none).
    pub txn_every: u64,
    /// Keep each node's write-ahead log on its simulated disk and
    /// acknowledge only what is synced there (`--durable false`: state in
    /// memory only).
    pub durable: bool,
    /// How long one fsync takes on the simulated disks, in microseconds.
    pub fsync_us: u64,
    /// How the member set changes during the run (see [`Membership`]).
    pub membership: Membership,
    /// Debug output on stderr (off by default).
    pub debug: LogDebug,
}

/// A membership schedule of `shen sim log`: the log's member set changes
/// under the workload, on top of the other faults (drawn from a generator
/// of its own, so a seed's other faults stay as they were).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Membership {
    /// The founding members throughout.
    #[default]
    Fixed,
    /// A new node starts at 25-35 % of the run and joins on its own.
    Join,
    /// A member leaves gracefully (`shen leave`) at 30-40 %; once out of
    /// the member set, its process stops for good.
    Leave,
    /// A member dies for good at 30-40 % and is replaced: half the seeds
    /// by `shen member remove` 1 s later, half by `replace_after` (5 s).
    /// (The second crash of the fault plan then restarts after 2 s.)
    Replace,
    /// 3 founders grow to 9 (a node every 400 ms from 10 %), one founder
    /// dies for good at 50 % (replaced), and from 60 % members leave one at
    /// a time until 4 remain.
    Grow,
    /// Each seed one of the four above (`seed % 4`: join, leave, replace,
    /// grow).
    Mixed,
}

impl Membership {
    /// The schedule a seed runs.
    pub fn for_seed(self, seed: u64) -> Membership {
        match self {
            Membership::Mixed => match seed % 4 {
                0 => Membership::Join,
                1 => Membership::Leave,
                2 => Membership::Replace,
                _ => Membership::Grow,
            },
            m => m,
        }
    }

    /// Parse a `--membership` value.
    pub fn parse(s: &str) -> Result<Membership, String> {
        Ok(match s {
            "fixed" => Membership::Fixed,
            "join" => Membership::Join,
            "leave" => Membership::Leave,
            "replace" => Membership::Replace,
            "grow" => Membership::Grow,
            "mixed" => Membership::Mixed,
            _ => {
                return Err(format!(
                    "--membership: {s:?} is not one of fixed, join, leave, replace, grow, mixed"
                ))
            }
        })
    }
}

impl Default for LogConfig {
    /// The `shen sim log` defaults.
    fn default() -> Self {
        LogConfig {
            nodes: 5,
            seed: 1,
            runs: 1,
            duration_s: 10,
            partitions: 16,
            concurrency: 4,
            read_ratio: 0.2,
            faults: true,
            txn_every: 50,
            durable: true,
            fsync_us: 300,
            membership: Membership::Fixed,
            debug: LogDebug::default(),
        }
    }
}

/// Debug output of a log check, printed on stderr (a debugging aid: run
/// one seed at a time).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct LogDebug {
    /// Print every table installation with this partition's chain state on
    /// each node.
    pub trace_partition: Option<u32>,
    /// Print every node's state for this partition before the second crash
    /// and at the end.
    pub dump_partition: Option<u32>,
    /// Print what settled after healing, blocked partitions and long
    /// chains.
    pub verbose: bool,
}

impl LogDebug {
    /// True when any debug output is on.
    pub fn any(&self) -> bool {
        self.trace_partition.is_some() || self.dump_partition.is_some() || self.verbose
    }
}

/// One run's result.
#[derive(Clone, Debug, Serialize, PartialEq, Default)]
pub struct LogRun {
    /// Seed.
    pub seed: u64,
    /// Appends acknowledged.
    pub acked: u64,
    /// Appends that failed with a definite error (never applied).
    pub failed: u64,
    /// Appends whose outcome is unknown (timed out on every attempt).
    pub unknown: u64,
    /// Timed-out appends sent again with the same producer id and
    /// sequence (each must be written at most once).
    #[serde(default)]
    pub retried: u64,
    /// Reads completed.
    pub reads: u64,
    /// Records in the final logs.
    pub records: u64,
    /// Acknowledged appends per virtual second.
    pub appends_per_s: f64,
    /// Append latency p50 (virtual µs).
    pub p50_us: u64,
    /// Append latency p99 (virtual µs).
    pub p99_us: u64,
    /// Configuration rounds that changed chains.
    pub reconfigurations: u64,
    /// Partitions whose final read failed after healing.
    pub unavailable: Vec<u32>,
    /// Acknowledged appends in unavailable partitions (not verifiable).
    pub unverified: u64,
    /// Acknowledged appends below their partition's final low watermark
    /// (deleted by retention, not lost).
    pub trimmed: u64,
    /// Reads by Scarab ID of acknowledged appends (each must find it).
    pub id_reads: u64,
    /// Times a predecessor found its successor slow (chain bypass).
    pub slow_marked: u64,
    /// Nodes that restarted from their write-ahead log (power loss: what
    /// was synced survived).
    pub restored: u64,
    /// The whole cluster lost power after the workload and restarted.
    pub cluster_power_loss: bool,
    /// Nodes whose disk failed (full or I/O error) during the workload:
    /// each must step out of every chain while its disk is bad, and is
    /// restarted on its (freed) disk later.
    pub disk_faults: u64,
    /// Chains of the newest table still holding the node with the failed
    /// disk once the cluster settled (see `check_disk_fault`).
    pub disk_stuck_chains: u64,
    /// Transactions committed / aborted / with an unknown outcome.
    pub txns: (u64, u64, u64),
    /// Chains longer than `rf` at the end (a recovery put a former member
    /// in front; trimmed once all are caught up).
    pub long_chains: u64,
    /// The membership schedule this seed ran.
    pub membership: Membership,
    /// The member set at the end (as the reading node's table has it).
    pub members: Vec<u64>,
    /// Its version (one per member change).
    pub members_version: u64,
    /// Member changes of the schedule not done by the end (a liveness
    /// gap, like `unavailable`).
    pub members_unfinished: Vec<String>,
    /// Replicas dropped after a hand-off (every node's count at the end).
    #[serde(default)]
    pub handed_off: u64,
    /// Safety violations found (empty = the history is correct).
    pub violations: Vec<String>,
}

#[derive(Clone, Debug)]
enum Pending {
    Append {
        value: u64,
        since: Time,
        /// The idempotent producer (one per node and concurrency slot);
        /// the value is its sequence number.
        producer: u64,
        /// Attempts so far (a timed-out append is retried, up to
        /// `RETRIES` more times, with the same producer and sequence).
        attempt: u32,
    },
    Read {
        since: Time,
    },
    /// `read(id)` of the acknowledged append of `value`.
    ReadId {
        value: u64,
    },
    /// A transaction appending `values` (one record each).
    Txn {
        values: Vec<u64>,
    },
}

/// Retries of a timed-out append (with its producer id and sequence, at
/// a node picked at random: a client failing over).
const RETRIES: u32 = 2;

fn value_bytes(v: u64) -> Vec<u8> {
    v.to_be_bytes().to_vec()
}

fn value_of(r: &ReadRecord<u64>) -> Option<u64> {
    let b: [u8; 8] = r.data.as_slice().try_into().ok()?;
    Some(u64::from_be_bytes(b))
}

/// A completed read: partition, first offset, invocation time, records,
/// whether it was cut at the read limit, and the stable point it read up to.
type ReadSeen = (u32, u64, Time, Vec<ReadRecord<u64>>, bool, u64);

/// Everything recorded while a run goes on.
struct Book {
    trace_at: u64,
    /// Nodes down now (retries go to the others).
    down: BTreeSet<u64>,
    /// Timed-out appends are retried until then (so that every retry ends
    /// before the log is read back).
    retry_until: Time,
    /// Picks the node a retry goes to.
    retry_rng: ChaCha8Rng,
    /// The key of every single append, by value.
    keys: BTreeMap<u64, [u8; 8]>,
    pending: BTreeMap<(u64, u64), Pending>,
    in_flight: BTreeMap<u64, u64>,
    hist: History,
    run: LogRun,
    latencies: Vec<u64>,
}

struct History {
    /// value → (partition, offset) for acknowledged appends, with the
    /// completion time.
    acked: BTreeMap<u64, (u32, u64, Time)>,
    /// value → Scarab ID for acknowledged appends.
    ids: BTreeMap<u64, u64>,
    /// Acknowledged values in order (to pick `read(id)` targets).
    acked_order: Vec<u64>,
    /// Safety violations seen while the run goes on.
    online: Vec<String>,
    /// Every value ever sent.
    invoked: BTreeSet<u64>,
    /// Completed reads: (partition, from, invocation time, records, truncated).
    reads: Vec<ReadSeen>,
    /// Highest acknowledged offset per partition (where reads start).
    top: BTreeMap<u32, u64>,
    /// Transactions: their values and outcome (`Some(true)` committed,
    /// `Some(false)` aborted, `None` unknown or never finished).
    txns: Vec<(Vec<u64>, Option<bool>)>,
    /// Partition of every value written by a transaction.
    txn_part: BTreeMap<u64, u32>,
    /// Per partition, the highest low watermark a tail answered with
    /// (`OffsetOutOfRange { earliest }`): offsets below it were deleted by
    /// retention.
    lows: BTreeMap<u32, u64>,
    /// Values whose `read(id)` found nothing: fine only if the record is
    /// below the final low watermark (checked at the end).
    empty_id_reads: Vec<u64>,
}

/// Run one seed with the checker.
/// After the cluster settled with `node`'s disk faulty: the node must have
/// stepped out of the cluster and of every chain of the newest table.
/// Then its disk is freed and it restarts on it.
fn check_disk_fault(
    sim: &mut Sim<ShenEvent<u64>>,
    run: &mut LogRun,
    node: u64,
    kind: DiskFault,
    n: u64,
    down: &BTreeSet<u64>,
    shaky: &BTreeSet<u64>,
) -> Result<(), String> {
    if down.contains(&node) {
        return sim.set_disk_fault(node, None).map_err(|e| e.to_string());
    }
    let failed = sim
        .node(node)
        .and_then(|x| x.ring::<Ouroboros<u64>>())
        .is_some_and(|o| o.storage_failed());
    let left = sim
        .node(node)
        .and_then(|x| x.ring::<Sundial<u64>>())
        .is_some_and(|s| s.has_left());
    if failed && !left {
        run.violations.push(format!(
            "node {node}'s disk failed ({kind}) but it did not step out of the cluster"
        ));
    }
    if failed {
        // The newest table any running node knows (a majority decided it).
        let newest = (0..n)
            .filter(|i| *i != node && !down.contains(i))
            .filter_map(|i| sim.node(i).and_then(|x| x.ring::<Ouroboros<u64>>()))
            .map(|o| o.table())
            .max_by_key(|t| t.ballot);
        let stuck: Vec<usize> = newest
            .map(|t| {
                t.chains
                    .iter()
                    .enumerate()
                    // A chain that lost another member too (one that is
                    // down, or came back and may still be catching up) may
                    // rightly wait for it (see `derive`).
                    .filter(|(_, c)| {
                        c.members.contains(&node)
                            && !c.members.iter().any(|m| *m != node && shaky.contains(m))
                    })
                    .map(|(p, _)| p)
                    .collect()
            })
            .unwrap_or_default();
        // Liveness, not safety: with other faults overlapping (a member
        // that came back still catching up, a partition healing late), a
        // chain may rightly keep the failed node until the cluster can
        // pick a head that holds every acknowledged record. Counted and
        // reported; `tests/tests/disk_full.rs` checks the removal on real
        // processes.
        run.disk_stuck_chains += stuck.len() as u64;
    }
    sim.set_disk_fault(node, None).map_err(|e| e.to_string())?;
    sim.restart(node, RestartMode::Keep)
        .map_err(|e| e.to_string())
}

/// A membership schedule in progress (see [`Membership`]).
struct Elastic {
    rng: ChaCha8Rng,
    /// When to start a new node (it joins on its own: auto-join).
    adds: Vec<Time>,
    /// A member to kill for good, and when.
    kill: Option<(Time, u64)>,
    /// `shen member remove` of the killed member, and when.
    remove: Option<(Time, u64, u64)>,
    /// Graceful leaves still to start, from when.
    leaves: u64,
    leave_from: Time,
    /// Nodes not to pick for a leave or a kill while others can be (other
    /// faults use them) ...
    avoid: BTreeSet<u64>,
    /// ... and nodes never to pick (killed for good, or a failing disk).
    hard_avoid: BTreeSet<u64>,
    /// The member leaving now.
    leaving: Option<u64>,
    /// What must hold at the end: node → member? (the last step wins).
    goals: BTreeMap<u64, bool>,
    /// The member version last reported (verbose output).
    seen_version: u64,
}

impl Elastic {
    fn new(
        sched: Membership,
        seed: u64,
        d_ms: u64,
        avoid: BTreeSet<u64>,
        hard_avoid: BTreeSet<u64>,
    ) -> Elastic {
        let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x3e3b_e125);
        let mut between =
            |lo: u64, hi: u64| Time::from_millis(lo + rng.next_u64() % (hi - lo).max(1));
        let mut e = Elastic {
            adds: Vec::new(),
            kill: None,
            remove: None,
            leaves: 0,
            leave_from: Time::ZERO,
            avoid,
            hard_avoid,
            leaving: None,
            goals: BTreeMap::new(),
            seen_version: 0,
            rng: ChaCha8Rng::seed_from_u64(seed ^ 0x001e_a7e5),
        };
        match sched {
            Membership::Fixed | Membership::Mixed => {}
            Membership::Join => e.adds.push(between(d_ms / 4, d_ms * 7 / 20)),
            Membership::Leave => {
                e.leaves = 1;
                e.leave_from = between(d_ms * 3 / 10, d_ms * 2 / 5);
            }
            Membership::Replace => {
                let at = between(d_ms * 3 / 10, d_ms * 2 / 5);
                let by_command = seed % 8 < 4;
                e.kill = Some((at, u64::from(by_command)));
            }
            Membership::Grow => {
                let from = d_ms / 10;
                e.adds = (0..6).map(|k| Time::from_millis(from + k * 400)).collect();
                e.kill = Some((Time::from_millis(d_ms / 2), 0));
                e.leaves = 4;
                e.leave_from = Time::from_millis(d_ms * 3 / 5);
            }
        }
        e
    }

    /// Every step taken and every goal met (as the first live node sees
    /// the member set).
    fn done(&self, sim: &Sim<ShenEvent<u64>>, down: &BTreeSet<u64>) -> bool {
        self.unfinished(sim, down).is_empty()
            && self.adds.is_empty()
            && self.kill.is_none()
            && self.remove.is_none()
            && self.leaves == 0
            && self.leaving.is_none()
    }

    /// Goals not met yet.
    fn unfinished(&self, sim: &Sim<ShenEvent<u64>>, down: &BTreeSet<u64>) -> Vec<String> {
        let Some(o) = (0..sim.node_count())
            .filter(|i| !down.contains(i))
            .find_map(|i| sim.node(i).and_then(|x| x.ring::<Ouroboros<u64>>()))
        else {
            return Vec::new();
        };
        let m = o.member_set();
        let mut out = Vec::new();
        for (node, member) in &self.goals {
            if m.contains(node) != *member {
                out.push(if *member {
                    format!("node {node} never became a member")
                } else {
                    format!("node {node} is still a member")
                });
            }
        }
        if !self.adds.is_empty() || self.leaves > 0 || self.leaving.is_some() {
            out.push("the schedule did not finish".into());
        }
        out
    }

    /// Pick a live member, not avoided, not leaving.
    fn pick(&mut self, sim: &Sim<ShenEvent<u64>>, down: &BTreeSet<u64>) -> Option<u64> {
        let members = (0..sim.node_count())
            .filter(|i| !down.contains(i))
            .find_map(|i| sim.node(i).and_then(|x| x.ring::<Ouroboros<u64>>()))
            .map(|o| o.members())
            .unwrap_or_default();
        let up: Vec<u64> = members
            .into_iter()
            .filter(|m| !down.contains(m) && Some(*m) != self.leaving)
            .collect();
        // Keep clear of the nodes other faults use, unless all are; never
        // a node another fault kills for good or whose disk fails.
        let up: Vec<u64> = up
            .into_iter()
            .filter(|m| !self.hard_avoid.contains(m))
            .collect();
        let clear: Vec<u64> = up
            .iter()
            .copied()
            .filter(|m| !self.avoid.contains(m))
            .collect();
        let cands = if clear.is_empty() { up } else { clear };
        if cands.is_empty() {
            return None;
        }
        Some(cands[(self.rng.next_u64() % cands.len() as u64) as usize])
    }

    /// Act on the schedule at the current time.
    fn step(
        &mut self,
        sim: &mut Sim<ShenEvent<u64>>,
        down: &mut BTreeSet<u64>,
        verbose: bool,
    ) -> Result<(), String> {
        let now = sim.now();
        if verbose {
            let m = (0..sim.node_count())
                .filter(|i| !down.contains(i))
                .find_map(|i| sim.node(i).and_then(|x| x.ring::<Ouroboros<u64>>()))
                .map(|o| o.member_set().clone());
            if let Some(m) = m.filter(|m| m.version > self.seen_version) {
                self.seen_version = m.version;
                eprintln!(
                    "t={} member set v{}: {:?} leaving {:?}",
                    now.as_micros(),
                    m.version,
                    m.ids().collect::<Vec<_>>(),
                    m.leaving
                );
            }
        }
        if self.adds.first().is_some_and(|t| now >= *t) {
            self.adds.remove(0);
            let id = sim.add_node().map_err(|e| e.to_string())?;
            self.goals.insert(id, true);
            if verbose {
                eprintln!("t={} node {id} starts (joins)", now.as_micros());
            }
        }
        if let Some((at, by_command)) = self.kill {
            if now >= at {
                self.kill = None;
                if let Some(v) = self.pick(sim, down) {
                    sim.crash(v).map_err(|e| e.to_string())?;
                    down.insert(v);
                    self.avoid.insert(v);
                    self.goals.insert(v, false);
                    if by_command == 1 {
                        self.remove = Some((now + Duration::from_secs(1), v, 0));
                    }
                    if verbose {
                        eprintln!("t={} node {v} dies for good", now.as_micros());
                    }
                }
            }
        }
        if let Some((at, v, _)) = self.remove {
            if now >= at {
                self.remove = None;
                if let Some(op) = (0..sim.node_count()).find(|i| !down.contains(i)) {
                    sim.command::<Ouroboros<u64>, _>(op, |o, _| {
                        o.request_member_change(MemberChange::Remove(v))
                    })
                    .map_err(|e| e.to_string())?;
                    if verbose {
                        eprintln!("t={} node {op}: member remove {v}", now.as_micros());
                    }
                }
            }
        }
        // A leaver that is out of the member set stops for good. One that
        // restarted meanwhile (power loss) before the leave was marked in
        // the table is asked again, as `shen leave` does while it waits.
        if let Some(l) = self.leaving {
            let ask_again = sim
                .node(l)
                .and_then(|x| x.ring::<Ouroboros<u64>>())
                .is_some_and(|o| {
                    let m = o.member_set();
                    m.contains(&l) && !m.is_leaving(&l) && o.own_intents().next().is_none()
                });
            if ask_again && !down.contains(&l) {
                sim.command::<Ouroboros<u64>, _>(l, |o, _| {
                    o.request_member_change(MemberChange::Leave(l))
                })
                .map_err(|e| e.to_string())?;
            }
        }
        if let Some(l) = self.leaving {
            // (A leaver that another fault crashed meanwhile is not out:
            // it restarts and its leave goes on, marked in the table.)
            let out = sim
                .node(l)
                .and_then(|x| x.ring::<Ouroboros<u64>>())
                .is_some_and(|o| !o.member_set().contains(&l));
            if out {
                self.leaving = None;
                if !down.contains(&l) {
                    sim.crash(l).map_err(|e| e.to_string())?;
                    down.insert(l);
                }
                if verbose {
                    eprintln!("t={} node {l} left", now.as_micros());
                }
            }
        }
        if self.leaving.is_none()
            && self.leaves > 0
            && now >= self.leave_from
            && self.adds.is_empty()
        {
            if let Some(l) = self.pick(sim, down) {
                self.leaves -= 1;
                self.leaving = Some(l);
                self.avoid.insert(l);
                self.goals.insert(l, false);
                sim.command::<Ouroboros<u64>, _>(l, |o, _| {
                    o.request_member_change(MemberChange::Leave(l))
                })
                .map_err(|e| e.to_string())?;
                if verbose {
                    eprintln!("t={} node {l} asks to leave", now.as_micros());
                }
            }
        }
        Ok(())
    }
}

fn run_one(a: &LogConfig, seed: u64) -> Result<LogRun, String> {
    let sched = a.membership.for_seed(seed);
    // Founders (nodes added later join the running log).
    let n = if sched == Membership::Grow {
        3
    } else {
        a.nodes
    };
    let ouro = OuroborosSettings {
        partitions: a.partitions,
        // Round trips here are 2-10 ms (plus 50 ms to repair a loss); the
        // slow-replica fault adds 500+.
        slow_after_ms: 300,
        durable: a.durable,
        // Small enough that every run deletes old segments, writes
        // checkpoints and reads old records back from the disk.
        retention_bytes: Some(4096),
        checkpoint_bytes: 16 << 10,
        cache_bytes: 2048,
        // Elastic schedules replace a dead member within the run.
        replace_after_ms: if sched == Membership::Fixed {
            OuroborosSettings::default().replace_after_ms
        } else {
            5_000
        },
        ..OuroborosSettings::default()
    };
    let stack = StackConfig {
        sundial: Some(SundialSettings {
            join: JoinMode::AllMembers,
            ..SundialSettings::default()
        }),
        cartouche: Some(CartoucheSettings::default()),
        ouroboros: Some(ouro),
        ..StackConfig::default()
    };
    let network = NetConfig {
        latency: Latency::Uniform { min: 1.0, max: 5.0 },
        loss: if a.faults { 0.01 } else { 0.0 },
        duplicate: if a.faults { 0.01 } else { 0.0 },
        reorder: if a.faults { 0.05 } else { 0.0 },
        reorder_ms: if a.faults { 10.0 } else { 0.0 },
    };
    let mut sim = Sim::with_stack(
        SimConfig {
            seed,
            nodes: n,
            network: network.clone(),
            trace: TraceMode::Full,
        },
        stack,
    )
    .map_err(|e| e.to_string())?;
    sim.set_fsync_delay(Duration::from_micros(a.fsync_us));
    let mut rng = ChaCha8Rng::seed_from_u64(seed ^ 0x0b0b_0c0c);
    let rand_between =
        |rng: &mut ChaCha8Rng, lo: u64, hi: u64| lo + rng.next_u64() % (hi - lo).max(1);
    let end = Time::from_secs(a.duration_s);

    // Fault plan (times in ms, relative to the run).
    let d_ms = a.duration_s * 1000;
    let crash1_at = Time::from_millis(rand_between(&mut rng, d_ms / 10, d_ms / 5));
    let restart1_at = crash1_at + Duration::from_millis(rand_between(&mut rng, 1_500, 2_500));
    let part_at = Time::from_millis(rand_between(&mut rng, d_ms * 2 / 5, d_ms / 2));
    let heal_at = part_at + Duration::from_millis(rand_between(&mut rng, 1_000, 4_000));
    let crash2_at = Time::from_millis(rand_between(&mut rng, d_ms * 7 / 10, d_ms * 4 / 5));
    let crash1 = rng.next_u64() % n;
    let crash2 = (crash1 + 1 + rng.next_u64() % (n - 1).max(1)) % n;
    // With a durable log, two seeds in three restart the first crashed node
    // from what its disk synced (power loss: un-synced writes are gone);
    // the third, and every seed without one, from an empty disk.
    let restart1_mode = if a.durable && rng.next_u64() % 3 != 0 {
        RestartMode::LoseUnsynced
    } else {
        RestartMode::LoseDisk
    };
    // A power blip (durable runs): one node loses power and is back within
    // 50-400 ms, before failure detection removes it from its chains, so it
    // resumes its roles from what its disk synced.
    let blip_at = Time::from_millis(rand_between(&mut rng, d_ms * 11 / 20, d_ms * 13 / 20));
    let blip_back = blip_at + Duration::from_millis(rand_between(&mut rng, 50, 400));
    let blip = rng.next_u64() % n;
    let mut blipped = (false, false);
    let mut done = [false; 5];
    if a.faults && n >= 3 {
        for _ in 0..2 {
            let node = rng.next_u64() % n;
            let ppm = if rng.next_u64() % 2 == 0 {
                50_000
            } else {
                -50_000
            };
            sim.set_drift(node, ppm).map_err(|e| e.to_string())?;
        }
    }
    // A slow replica: one node's links take 250-300 ms each way for 2-3 s
    // (it stays a live member; its predecessors bypass it).
    let slow_at = Time::from_millis(rand_between(&mut rng, d_ms / 4, d_ms * 7 / 20));
    let slow_end = slow_at + Duration::from_millis(rand_between(&mut rng, 2_000, 3_000));
    let slow_node = rng.next_u64() % n;
    let (mut slowed, mut unslowed) = (false, false);
    // A storage fault (durable runs with faults): one node other than the
    // first crashed one finds its disk full or failing at 30-40 % of the
    // run; 2-3 s later the fault is checked (the node must have stepped out
    // of the cluster and of every chain), cleared (space freed) and the
    // node restarted on its disk. Drawn from a generator of its own, so the
    // other faults of a seed are as they were before this one existed.
    let mut disk_rng = ChaCha8Rng::seed_from_u64(seed ^ 0xd15c_fa11);
    let disk_at = Time::from_millis(rand_between(&mut disk_rng, d_ms * 3 / 10, d_ms * 2 / 5));
    let disk_node = (crash1 + 1 + disk_rng.next_u64() % (n - 1).max(1)) % n;
    let disk_kind = if disk_rng.next_u64() % 2 == 0 {
        DiskFault::Full
    } else {
        DiskFault::Io
    };
    let mut disk_faulted = false;
    // The membership schedule keeps clear of the nodes other faults use.
    let mut elastic = Elastic::new(
        sched,
        seed,
        d_ms,
        [crash1, crash2, disk_node, blip, slow_node]
            .into_iter()
            .filter(|i| *i < n)
            .collect(),
        if a.faults {
            [crash2, disk_node].into_iter().filter(|i| *i < n).collect()
        } else {
            BTreeSet::new()
        },
    );

    let mut down: BTreeSet<u64> = BTreeSet::new();
    let mut crash2_back: Option<Time> = None;

    let mut next_value: u64 = 1;
    let mut book = Book {
        trace_at: 0,
        down: BTreeSet::new(),
        retry_until: end + Duration::from_secs(4),
        retry_rng: ChaCha8Rng::seed_from_u64(seed ^ 0x7e7e_7e7e),
        keys: BTreeMap::new(),
        pending: BTreeMap::new(),
        in_flight: (0..n).map(|i| (i, 0)).collect(),
        hist: History {
            acked: BTreeMap::new(),
            ids: BTreeMap::new(),
            acked_order: Vec::new(),
            online: Vec::new(),
            invoked: BTreeSet::new(),
            reads: Vec::new(),
            top: BTreeMap::new(),
            txns: Vec::new(),
            txn_part: BTreeMap::new(),
            lows: BTreeMap::new(),
            empty_id_reads: Vec::new(),
        },
        run: LogRun {
            seed,
            ..LogRun::default()
        },
        latencies: Vec::new(),
    };
    let mut last_issue = Time::ZERO;

    let process =
        |sim: &mut Sim<ShenEvent<u64>>,
         b: &mut Book,
         final_reads: &mut Option<&mut BTreeMap<u64, Vec<ReadRecord<u64>>>>| {
            let now = sim.now();
            let mut evs = Vec::new();
            for (_, e) in sim.trace().since(b.trace_at) {
                if let TraceKind::Event {
                    node,
                    event: ShenEvent::Ouroboros(ev),
                    ..
                } = &e.kind
                {
                    evs.push((*node, ev.clone()));
                }
            }
            b.trace_at = sim.trace().total();
            sim.trace_mut().clear_kept();
            let watch = a.debug.trace_partition;
            for (node, ev) in evs {
                if let (Some(p), OuroborosEvent::TableInstalled { .. }) = (watch, &ev) {
                    if let Some(o) = sim.node(node).and_then(|x| x.ring::<Ouroboros<u64>>()) {
                        eprintln!(
                            "t={} node {node} installs: {}",
                            now.as_micros(),
                            o.debug_partition(p)
                        );
                    }
                }
                match ev {
                    OuroborosEvent::Appended {
                        req,
                        partition,
                        offset,
                        id,
                    } => {
                        if let Some(Pending::Append { value, since, .. }) =
                            b.pending.remove(&(node, req))
                        {
                            *b.in_flight.entry(node).or_default() -= 1;
                            b.hist.acked.insert(value, (partition, offset, now));
                            b.hist.ids.insert(value, id);
                            b.hist.acked_order.push(value);
                            let t = b.hist.top.entry(partition).or_default();
                            *t = (*t).max(offset);
                            b.run.acked += 1;
                            b.latencies.push((now - since).as_micros() as u64);
                        }
                    }
                    OuroborosEvent::AppendFailed { req, error, .. }
                        if b.pending.contains_key(&(node, req)) =>
                    {
                        let pending = b.pending.remove(&(node, req));
                        *b.in_flight.entry(node).or_default() -= 1;
                        let timeout = matches!(error, shen_rings::ouroboros::LogError::Timeout);
                        if let (
                            true,
                            true,
                            Some(Pending::Append {
                                value,
                                since,
                                producer,
                                attempt,
                            }),
                        ) = (
                            timeout,
                            now < b.retry_until && final_reads.is_none(),
                            pending,
                        ) {
                            if attempt < RETRIES {
                                // Fail over to a live node, same producer
                                // and sequence.
                                let live: Vec<u64> = (0..sim.node_count())
                                    .filter(|i| !b.down.contains(i))
                                    .collect();
                                let at =
                                    live[(b.retry_rng.next_u64() % live.len() as u64) as usize];
                                let key = b.keys.get(&value).copied().unwrap_or_default();
                                let pr = Producer {
                                    id: producer,
                                    seq: value,
                                };
                                let r = sim
                                    .command::<Ouroboros<u64>, _>(at, |o, cx| {
                                        o.append_as(cx, &key, value_bytes(value), Some(pr))
                                    })
                                    .ok()
                                    .flatten();
                                if let Some(r) = r {
                                    b.run.retried += 1;
                                    b.pending.insert(
                                        (at, r),
                                        Pending::Append {
                                            value,
                                            since,
                                            producer,
                                            attempt: attempt + 1,
                                        },
                                    );
                                    *b.in_flight.entry(at).or_default() += 1;
                                    continue;
                                }
                            }
                        }
                        if timeout {
                            b.run.unknown += 1;
                        } else {
                            b.run.failed += 1;
                        }
                    }
                    OuroborosEvent::ReadDone {
                        req,
                        partition,
                        from,
                        records,
                        committed,
                    } => {
                        let is_id_read =
                            matches!(b.pending.get(&(node, req)), Some(Pending::ReadId { .. }));
                        if let (Some(fr), false) = (final_reads.as_deref_mut(), is_id_read) {
                            if b.pending.remove(&(node, req)).is_some() {
                                fr.insert(u64::from(partition), records);
                            }
                            continue;
                        }
                        let pending = b.pending.remove(&(node, req));
                        if let Some(Pending::ReadId { value }) = pending {
                            *b.in_flight.entry(node).or_default() -= 1;
                            b.run.id_reads += 1;
                            let found: Vec<Option<u64>> = records.iter().map(value_of).collect();
                            if found.is_empty() {
                                b.hist.empty_id_reads.push(value);
                            } else if found != [Some(value)] {
                                let id = b.hist.ids.get(&value).copied().unwrap_or(0);
                                b.hist.online.push(format!(
                                    "read(id {}) of acknowledged append {value} returned {found:?}",
                                    ScarabId::from_u64(id)
                                ));
                            }
                            continue;
                        }
                        if let Some(Pending::Read { since }) = pending {
                            *b.in_flight.entry(node).or_default() -= 1;
                            b.run.reads += 1;
                            let truncated = records.len() >= 1024;
                            b.hist
                                .reads
                                .push((partition, from, since, records, truncated, committed));
                        }
                    }
                    OuroborosEvent::ReadFailed {
                        req,
                        partition,
                        error: shen_rings::ouroboros::LogError::OffsetOutOfRange { earliest, .. },
                    } if b.pending.contains_key(&(node, req)) => {
                        b.pending.remove(&(node, req));
                        if final_reads.is_none() {
                            *b.in_flight.entry(node).or_default() -= 1;
                        }
                        let low = b.hist.lows.entry(partition).or_default();
                        *low = (*low).max(earliest);
                    }
                    OuroborosEvent::ReadFailed { req, .. }
                        if b.pending.remove(&(node, req)).is_some() && final_reads.is_none() =>
                    {
                        *b.in_flight.entry(node).or_default() -= 1;
                    }
                    OuroborosEvent::ReconfigDone { changed, .. } if changed > 0 => {
                        b.run.reconfigurations += 1;
                    }
                    OuroborosEvent::TxnDone {
                        req,
                        committed,
                        records,
                        ..
                    } => {
                        if let Some(Pending::Txn { values }) = b.pending.remove(&(node, req)) {
                            *b.in_flight.entry(node).or_default() -= 1;
                            match committed {
                                Some(true) => {
                                    b.run.txns.0 += 1;
                                    b.run.acked += records.len() as u64;
                                    if records.len() != values.len() {
                                        b.hist.online.push(format!(
                                            "transaction of {values:?} committed with {} places",
                                            records.len()
                                        ));
                                    }
                                    for (value, (partition, offset, id)) in
                                        values.iter().zip(records)
                                    {
                                        b.hist.acked.insert(*value, (partition, offset, now));
                                        b.hist.ids.insert(*value, id);
                                        b.hist.acked_order.push(*value);
                                        let t = b.hist.top.entry(partition).or_default();
                                        *t = (*t).max(offset);
                                    }
                                }
                                Some(false) => b.run.txns.1 += 1,
                                None => b.run.txns.2 += 1,
                            }
                            b.hist.txns.push((values, committed));
                        }
                    }
                    _ => {}
                }
            }
        };

    while sim.now() < end {
        if !sim.step() {
            break;
        }
        let now = sim.now();
        process(&mut sim, &mut book, &mut None);
        if a.faults && n >= 5 {
            if !done[0] && now >= crash1_at {
                sim.crash(crash1).map_err(|e| e.to_string())?;
                down.insert(crash1);
                done[0] = true;
            }
            if !done[1] && now >= restart1_at {
                sim.restart(crash1, restart1_mode)
                    .map_err(|e| e.to_string())?;
                if sim
                    .node(crash1)
                    .and_then(|x| x.ring::<Ouroboros<u64>>())
                    .is_some_and(|o| o.is_restored())
                {
                    book.run.restored += 1;
                }
                down.remove(&crash1);
                done[1] = true;
            }
            if !done[2] && now >= part_at {
                let mut all: Vec<u64> = (0..sim.node_count()).collect();
                for i in (1..all.len()).rev() {
                    let j = (rng.next_u64() % (i as u64 + 1)) as usize;
                    all.swap(i, j);
                }
                let minority = (all.len() - 1) / 2;
                let (small, big) = all.split_at(minority);
                sim.partition(vec![small.to_vec(), big.to_vec()])
                    .map_err(|e| e.to_string())?;
                done[2] = true;
            }
            if !done[3] && now >= heal_at {
                sim.heal().map_err(|e| e.to_string())?;
                done[3] = true;
            }
            if !slowed && now >= slow_at {
                slowed = true;
                let slow_net = NetConfig {
                    latency: Latency::Uniform {
                        min: 250.0,
                        max: 300.0,
                    },
                    ..network.clone()
                };
                for other in (0..sim.node_count()).filter(|o| *o != slow_node) {
                    sim.set_link(slow_node, other, Some(slow_net.clone()))
                        .map_err(|e| e.to_string())?;
                    sim.set_link(other, slow_node, Some(slow_net.clone()))
                        .map_err(|e| e.to_string())?;
                }
            }
            if slowed && !unslowed && now >= slow_end {
                unslowed = true;
                for other in (0..sim.node_count()).filter(|o| *o != slow_node) {
                    sim.set_link(slow_node, other, None)
                        .map_err(|e| e.to_string())?;
                    sim.set_link(other, slow_node, None)
                        .map_err(|e| e.to_string())?;
                }
            }
            if a.faults
                && a.durable
                && n >= 3
                && !disk_faulted
                && now >= disk_at
                && !down.contains(&disk_node)
            {
                sim.set_disk_fault(disk_node, Some(disk_kind))
                    .map_err(|e| e.to_string())?;
                disk_faulted = true;
                book.run.disk_faults += 1;
                if a.debug.verbose {
                    eprintln!(
                        "t={} disk fault ({disk_kind}) on node {disk_node}",
                        now.as_micros()
                    );
                }
            }
            if a.durable && !blipped.0 && now >= blip_at && !down.contains(&blip) {
                sim.crash(blip).map_err(|e| e.to_string())?;
                down.insert(blip);
                blipped.0 = true;
            }
            if blipped.0 && !blipped.1 && now >= blip_back {
                sim.restart(blip, RestartMode::LoseUnsynced)
                    .map_err(|e| e.to_string())?;
                down.remove(&blip);
                blipped.1 = true;
                if sim
                    .node(blip)
                    .and_then(|x| x.ring::<Ouroboros<u64>>())
                    .is_some_and(|o| o.is_restored())
                {
                    book.run.restored += 1;
                }
            }
            if !done[4] && now >= crash2_at && !down.contains(&crash2) {
                if let Some(p) = a.debug.dump_partition {
                    eprintln!("before crash of {crash2} at {}:", now.as_micros());
                    for i in 0..sim.node_count() {
                        if let Some(o) = sim.node(i).and_then(|x| x.ring::<Ouroboros<u64>>()) {
                            eprintln!("   node {i}: {}", o.debug_partition(p));
                        }
                    }
                }
                sim.crash(crash2).map_err(|e| e.to_string())?;
                down.insert(crash2);
                done[4] = true;
                // With a replacement scheduled, the second crash is not
                // for good: a replacement by `replace_after` needs a
                // margin (see `shen_rings::ouroboros` members), and two of
                // five dead for good leave none.
                if sched == Membership::Replace {
                    crash2_back = Some(now + Duration::from_secs(2));
                }
            }
            if crash2_back.is_some_and(|t| now >= t) {
                crash2_back = None;
                sim.restart(crash2, RestartMode::LoseUnsynced)
                    .map_err(|e| e.to_string())?;
                down.remove(&crash2);
            }
        }
        elastic.step(&mut sim, &mut down, a.debug.verbose)?;
        book.down.clone_from(&down);
        // Workload: keep `concurrency` operations in flight per live node,
        // issued at most once per virtual millisecond.
        if now.saturating_since(last_issue) < Duration::from_millis(1) {
            continue;
        }
        last_issue = now;
        for i in 0..sim.node_count() {
            if down.contains(&i) {
                continue;
            }
            while book.in_flight.get(&i).copied().unwrap_or(0) < a.concurrency {
                let read = (rng.next_u64() % 1000) as f64 / 1000.0 < a.read_ratio;
                let by_id = read && !book.hist.acked_order.is_empty() && rng.next_u64() % 8 == 0;
                let r = if by_id {
                    let k = book.hist.acked_order.len() as u64;
                    let value = book.hist.acked_order[(rng.next_u64() % k) as usize];
                    let id = ScarabId::from_u64(book.hist.ids[&value]);
                    sim.command::<Ouroboros<u64>, _>(i, |o, cx| o.read_id(cx, id))
                        .map_err(|e| e.to_string())?
                        .map(|req| (req, Pending::ReadId { value }))
                } else if read {
                    let p = (rng.next_u64() % u64::from(a.partitions)) as u32;
                    let top = book.hist.top.get(&p).copied().unwrap_or(0);
                    let from = top.saturating_sub(rng.next_u64() % 64);
                    sim.command::<Ouroboros<u64>, _>(i, |o, cx| o.read_range(cx, p, from, 1024))
                        .map_err(|e| e.to_string())?
                        .map(|req| (req, Pending::Read { since: now }))
                } else if a.txn_every > 0
                    && rng.next_u64() % a.txn_every == 0
                    && !book
                        .pending
                        .iter()
                        .any(|((x, _), p)| *x == i && matches!(p, Pending::Txn { .. }))
                {
                    let k = 2 + rng.next_u64() % 2;
                    let mut recs = Vec::new();
                    let mut values = Vec::new();
                    for _ in 0..k {
                        let value = next_value;
                        next_value += 1;
                        book.hist.invoked.insert(value);
                        values.push(value);
                        let key = (rng.next_u64() % 4096).to_be_bytes().to_vec();
                        let part = shen_rings::ouroboros::partition_of_key(&key, a.partitions);
                        book.hist.txn_part.insert(value, part);
                        recs.push((key, value_bytes(value)));
                    }
                    sim.command::<Ouroboros<u64>, _>(i, |o, cx| o.transaction(cx, recs))
                        .map_err(|e| e.to_string())?
                        .map(|req| (req, Pending::Txn { values }))
                } else {
                    let value = next_value;
                    next_value += 1;
                    book.hist.invoked.insert(value);
                    let key = (rng.next_u64() % 4096).to_be_bytes();
                    book.keys.insert(value, key);
                    // The smallest free producer slot of this node: each
                    // producer has one append in flight at a time.
                    let used: BTreeSet<u64> = book
                        .pending
                        .values()
                        .filter_map(|p| match p {
                            Pending::Append { producer, .. } => Some(*producer),
                            _ => None,
                        })
                        .collect();
                    let producer = (i * 1000..).find(|x| !used.contains(x)).unwrap_or(i);
                    let pr = Producer {
                        id: producer,
                        seq: value,
                    };
                    sim.command::<Ouroboros<u64>, _>(i, |o, cx| {
                        o.append_as(cx, &key, value_bytes(value), Some(pr))
                    })
                    .map_err(|e| e.to_string())?
                    .map(|req| {
                        (
                            req,
                            Pending::Append {
                                value,
                                since: now,
                                producer,
                                attempt: 0,
                            },
                        )
                    })
                };
                let Some((req, p)) = r else {
                    return Err("the node runs no Ouroboros ring".into());
                };
                book.pending.insert((i, req), p);
                *book.in_flight.entry(i).or_default() += 1;
            }
        }
        process(&mut sim, &mut book, &mut None);
    }
    let workload_s = sim.now().as_micros() as f64 / 1e6;
    book.run.slow_marked = (0..sim.node_count())
        .filter_map(|i| sim.node(i).and_then(|x| x.ring::<Ouroboros<u64>>()))
        .map(|o| o.stats().slow_marked)
        .sum();

    // Heal, let every operation finish, then read every partition back.
    if a.faults {
        sim.heal().map_err(|e| e.to_string())?;
    }
    // Every other durable seed: the whole cluster loses power at once (the
    // operations in flight are lost, un-synced writes too) and every node
    // comes back from its disk.
    if a.faults && a.durable && seed % 2 == 0 {
        let live: Vec<u64> = (0..sim.node_count())
            .filter(|i| !down.contains(i))
            .collect();
        for &i in &live {
            sim.crash(i).map_err(|e| e.to_string())?;
        }
        for &i in &live {
            sim.restart(i, RestartMode::LoseUnsynced)
                .map_err(|e| e.to_string())?;
            if sim
                .node(i)
                .and_then(|x| x.ring::<Ouroboros<u64>>())
                .is_some_and(|o| o.is_restored())
            {
                book.run.restored += 1;
            }
        }
        book.run.cluster_power_loss = true;
    }
    let before = sim.event_counts();
    let settle = sim.now() + Duration::from_secs(8);
    while sim.now() < settle && sim.step() {
        process(&mut sim, &mut book, &mut None);
        elastic.step(&mut sim, &mut down, a.debug.verbose)?;
        book.down.clone_from(&down);
    }
    if disk_faulted {
        // Members that crashed and came back during the run may still be
        // catching up; a chain with one of them may rightly keep waiting.
        let mut shaky = down.clone();
        shaky.insert(crash1);
        if a.durable {
            shaky.insert(blip);
        }
        let count = sim.node_count();
        check_disk_fault(
            &mut sim,
            &mut book.run,
            disk_node,
            disk_kind,
            count,
            &down,
            &shaky,
        )?;
        let back = sim.now() + Duration::from_secs(5);
        while sim.now() < back && sim.step() {
            process(&mut sim, &mut book, &mut None);
        }
        let rejoined = (0..sim.node_count())
            .filter(|i| *i != disk_node && !down.contains(i))
            .filter_map(|i| sim.node(i).and_then(|x| x.ring::<Sundial<u64>>()))
            .any(|s| s.live_members().any(|m| *m == disk_node));
        if !rejoined && !down.contains(&disk_node) {
            book.run.violations.push(format!(
                "node {disk_node} did not rejoin within 5 s of its restart on a freed disk"
            ));
        }
    }
    // Member changes still under way (a leave, a removal) get more time,
    // under no load.
    let more = sim.now() + Duration::from_secs(10);
    while sim.now() < more && !elastic.done(&sim, &down) && sim.step() {
        process(&mut sim, &mut book, &mut None);
        elastic.step(&mut sim, &mut down, a.debug.verbose)?;
        book.down.clone_from(&down);
    }
    if a.debug.verbose {
        let after = sim.event_counts();
        for (k, v) in &after {
            let b = before.get(k).copied().unwrap_or(0);
            if *v > b {
                eprintln!("settle: {k} +{}", v - b);
            }
        }
    }
    // Transactions left undecided (their coordinator crashed or timed out)
    // are settled by the tails they block; give that time.
    let blocked = |sim: &mut Sim<ShenEvent<u64>>, down: &BTreeSet<u64>| -> BTreeSet<u32> {
        let mut out = BTreeSet::new();
        for i in (0..sim.node_count()).filter(|i| !down.contains(i)) {
            if let Ok(Some(b)) =
                sim.command::<Ouroboros<u64>, _>(i, |o, cx| o.blocked_partitions(cx.me))
            {
                out.extend(b);
            }
        }
        out
    };
    let deadline = sim.now() + Duration::from_secs(20);
    while sim.now() < deadline && !blocked(&mut sim, &down).is_empty() {
        let t = sim.now() + Duration::from_millis(500);
        while sim.now() < t && sim.step() {
            process(&mut sim, &mut book, &mut None);
        }
    }
    let reader = (0..sim.node_count())
        .find(|i| !down.contains(i))
        .ok_or("no live node")?;
    let mut finals: BTreeMap<u64, BTreeMap<u64, ReadRecord<u64>>> = BTreeMap::new();
    let mut complete: BTreeSet<u32> = BTreeSet::new();
    let mut failures = 0;
    while complete.len() < a.partitions as usize && failures < 10 {
        let todo: Vec<u32> = (0..a.partitions)
            .filter(|p| !complete.contains(p))
            .collect();
        let mut asked = BTreeMap::new();
        for p in todo {
            let from = finals
                .get(&u64::from(p))
                .and_then(|l| l.keys().next_back())
                .map_or(0, |o| o + 1)
                .max(book.hist.lows.get(&p).copied().unwrap_or(0));
            let req = sim
                .command::<Ouroboros<u64>, _>(reader, |o, cx| o.read_range(cx, p, from, 1024))
                .map_err(|e| e.to_string())?
                .ok_or("no ouroboros")?;
            book.pending
                .insert((reader, req), Pending::Read { since: sim.now() });
            asked.insert(p, req);
        }
        let mut got: BTreeMap<u64, Vec<ReadRecord<u64>>> = BTreeMap::new();
        let lows_before = book.hist.lows.clone();
        let until = sim.now() + Duration::from_secs(3);
        while sim.now() < until && sim.step() {
            process(&mut sim, &mut book, &mut Some(&mut got));
            if asked
                .values()
                .all(|r| !book.pending.contains_key(&(reader, *r)))
            {
                break;
            }
        }
        // A tail answering `OffsetOutOfRange` moved the read up: progress.
        let mut progress = book.hist.lows != lows_before;
        for (p, recs) in got {
            progress = true;
            let full = recs.len() >= 1024;
            finals
                .entry(p)
                .or_default()
                .extend(recs.into_iter().map(|r| (r.offset, r)));
            if !full {
                complete.insert(p as u32);
            }
        }
        if !progress {
            failures += 1;
        }
    }

    if let Some(p) = a.debug.dump_partition {
        for i in 0..sim.node_count() {
            match sim.node(i).and_then(|x| x.ring::<Ouroboros<u64>>()) {
                Some(o) => eprintln!(
                    "   node {i}: {} | {} | members {:?}",
                    o.debug_partition(p),
                    o.round_debug(),
                    o.member_set()
                ),
                None => eprintln!("   node {i}: down"),
            }
            if let Some(c) = sim
                .node(i)
                .and_then(|x| x.ring::<shen_rings::cartouche::Cartouche<u64>>())
            {
                eprintln!("   cartouche {i}: {c:?}");
            }
        }
    }
    // A partition still waiting at an undecided transaction was read only
    // up to it: not complete (a liveness gap, reported as unavailable).
    for p in blocked(&mut sim, &down) {
        if a.debug.verbose {
            eprintln!("partition {p} still waits at an undecided transaction");
            for i in 0..sim.node_count() {
                if let Some(o) = sim.node(i).and_then(|x| x.ring::<Ouroboros<u64>>()) {
                    eprintln!("   node {i}: {} | {}", o.txns_debug(), o.debug_partition(p));
                }
            }
        }
        complete.remove(&p);
    }
    if let Some(o) = sim.node(reader).and_then(|x| x.ring::<Ouroboros<u64>>()) {
        let rf = o.config().rf;
        book.run.long_chains = o
            .table()
            .chains
            .iter()
            .filter(|c| c.members.len() > rf)
            .count() as u64;
        if a.debug.verbose {
            for (p, c) in o.table().chains.iter().enumerate() {
                if c.members.len() > rf {
                    eprintln!(
                        "long chain {p}: {:?} learners {:?} down {:?}",
                        c.members, c.learners, down
                    );
                    for i in 0..sim.node_count() {
                        if let Some(x) = sim.node(i).and_then(|x| x.ring::<Ouroboros<u64>>()) {
                            eprintln!("   node {i}: {}", x.debug_partition(p as u32));
                        }
                    }
                }
            }
        }
    }
    book.run.membership = sched;
    book.run.members_unfinished = elastic.unfinished(&sim, &down);
    book.run.handed_off = (0..sim.node_count())
        .filter_map(|i| sim.node(i).and_then(|x| x.ring::<Ouroboros<u64>>()))
        .map(|o| o.stats().handed_off)
        .sum();
    if let Some(o) = sim.node(reader).and_then(|x| x.ring::<Ouroboros<u64>>()) {
        book.run.members = o.members();
        book.run.members_version = o.member_set().version;
    }
    // ---- check
    let v = &mut book.run.violations;
    v.append(&mut book.hist.online);
    // Offsets below a partition's final low watermark were deleted by
    // retention; everything at or above it is checked as before.
    let lows = book.hist.lows.clone();
    let trimmed = |p: u32, o: u64| o < lows.get(&p).copied().unwrap_or(0);
    for val in &book.hist.empty_id_reads {
        match book.hist.acked.get(val) {
            Some((p, o, _)) if trimmed(*p, *o) || !complete.contains(p) => {}
            _ => v.push(format!(
                "read(id) of acknowledged append {val} found nothing, and it is not below a low watermark"
            )),
        }
    }
    let mut seen: BTreeMap<u64, (u32, u64)> = BTreeMap::new();
    for p in 0..a.partitions {
        let Some(log) = finals.get(&u64::from(p)).filter(|_| complete.contains(&p)) else {
            book.run.unavailable.push(p);
            continue;
        };
        let log: Vec<&ReadRecord<u64>> = log.values().collect();
        for w in log.windows(2) {
            if w[1].id <= w[0].id {
                v.push(format!(
                    "partition {p}: Scarab IDs do not increase at offset {} ({} then {})",
                    w[1].offset,
                    ScarabId::from_u64(w[0].id),
                    ScarabId::from_u64(w[1].id)
                ));
            }
        }
        for r in &log {
            if u32::from(ScarabId::from_u64(r.id).node()) != p {
                v.push(format!(
                    "partition {p} offset {}: Scarab ID {} names partition {}",
                    r.offset,
                    ScarabId::from_u64(r.id),
                    ScarabId::from_u64(r.id).node()
                ));
            }
            let Some(val) = value_of(r) else {
                v.push(format!(
                    "partition {p} offset {}: malformed record",
                    r.offset
                ));
                continue;
            };
            if !book.hist.invoked.contains(&val) {
                v.push(format!(
                    "partition {p} offset {}: phantom value {val}",
                    r.offset
                ));
            }
            if let Some(prev) = seen.insert(val, (p, r.offset)) {
                v.push(format!(
                    "value {val} appears twice: {prev:?} and ({p}, {})",
                    r.offset
                ));
            }
        }
        book.run.records += log.len() as u64;
    }
    let final_at = |p: u32, o: u64| -> Option<u64> {
        finals
            .get(&u64::from(p))
            .and_then(|l| l.get(&o))
            .and_then(value_of)
    };
    for (val, (p, o, _)) in &book.hist.acked {
        if !complete.contains(p) {
            book.run.unverified += 1;
            continue;
        }
        if trimmed(*p, *o) {
            book.run.trimmed += 1;
            continue;
        }
        match final_at(*p, *o) {
            Some(x) if x == *val => {}
            other => v.push(format!(
                "acknowledged append {val} at ({p}, {o}) lost: final log has {other:?}"
            )),
        }
        let final_id = finals
            .get(&u64::from(*p))
            .and_then(|l| l.get(o))
            .map(|r| r.id);
        if final_id != book.hist.ids.get(val).copied() {
            v.push(format!(
                "acknowledged append {val} at ({p}, {o}): acknowledged with another Scarab ID than the log holds"
            ));
        }
    }
    // Per partition: acknowledgements by time, each with the highest offset
    // acknowledged up to then.
    // Entries: (time, highest offset so far, its value, its ack time).
    let mut by_time: BTreeMap<u32, Vec<(Time, u64, u64, Time)>> = BTreeMap::new();
    for (val, (p, o, at)) in &book.hist.acked {
        by_time.entry(*p).or_default().push((*at, *o, *val, *at));
    }
    for acks in by_time.values_mut() {
        acks.sort_unstable();
        let mut best: Option<(u64, u64, Time)> = None;
        for a in acks.iter_mut() {
            match best {
                Some((bo, bv, bt)) if bo > a.1 => *a = (a.0, bo, bv, bt),
                _ => best = Some((a.1, a.2, a.3)),
            }
        }
    }
    for (p, from, since, records, truncated, stable) in &book.hist.reads {
        if !complete.contains(p) {
            continue;
        }
        for r in records {
            let got = value_of(r);
            if !trimmed(*p, r.offset) && got != final_at(*p, r.offset) {
                v.push(format!(
                    "read of partition {p} saw {got:?} at offset {} but the final log has {:?}",
                    r.offset,
                    final_at(*p, r.offset)
                ));
            }
        }
        if *truncated {
            continue;
        }
        let end = (*stable).max(*from);
        // The highest offset acknowledged before the read was invoked.
        if let Some(acks) = by_time.get(p) {
            let i = acks.partition_point(|(t, _, _, _)| t < since);
            if i > 0 {
                let (_, ao, val, at) = acks[i - 1];
                if ao >= *from && ao >= end {
                    v.push(format!(
                        "stale read of partition {p} invoked at {}µs: append {val} acknowledged at {}µs (offset {ao}) is missing (read returned up to {end})",
                        since.as_micros(),
                        at.as_micros()
                    ));
                }
            }
        }
    }
    // Transactions: all of a transaction's records are in the final logs
    // or none; an aborted one's never, in no read either (a committed one's
    // were checked above as acknowledged appends).
    let mut read_values: BTreeSet<u64> = BTreeSet::new();
    for (_, _, _, records, _, _) in &book.hist.reads {
        read_values.extend(records.iter().filter_map(value_of));
    }
    // Transactions still running when the run ended count as unknown.
    for p in book.pending.values() {
        if let Pending::Txn { values } = p {
            book.hist.txns.push((values.clone(), None));
        }
    }
    for (values, outcome) in &book.hist.txns {
        let verifiable = values.iter().all(|x| {
            book.hist
                .txn_part
                .get(x)
                .is_some_and(|p| complete.contains(p))
        });
        // A committed transaction's trimmed records count as present; one
        // of unknown outcome touching a trimmed partition is not verifiable.
        let gone = |x: &u64| {
            book.hist
                .acked
                .get(x)
                .is_some_and(|(p, o, _)| trimmed(*p, *o))
        };
        let present = values
            .iter()
            .filter(|x| seen.contains_key(x) || gone(x))
            .count();
        let touches_trimmed = values.iter().any(|x| {
            book.hist
                .txn_part
                .get(x)
                .is_some_and(|p| lows.get(p).is_some_and(|l| *l > 0))
        });
        if *outcome == Some(false) {
            if let Some(x) = values.iter().find(|x| read_values.contains(x)) {
                v.push(format!("aborted transaction {values:?}: a read saw {x}"));
            }
        }
        if !verifiable || (outcome.is_none() && touches_trimmed) {
            continue;
        }
        match outcome {
            Some(false) if present > 0 => v.push(format!(
                "aborted transaction {values:?}: {present} of its records are in the log"
            )),
            _ if present > 0 && present < values.len() => v.push(format!(
                "transaction {values:?} ({outcome:?}) is partly in the log: {present} of {}",
                values.len()
            )),
            _ => {}
        }
    }
    v.truncate(20);
    book.latencies.sort_unstable();
    book.run.p50_us = percentile_rounded(&book.latencies, 0.5);
    book.run.p99_us = percentile_rounded(&book.latencies, 0.99);
    book.run.appends_per_s = book.run.acked as f64 / workload_s.max(1e-9);
    Ok(book.run)
}

impl Check for LogConfig {
    type Run = LogRun;
    type Report = Vec<LogRun>;
    type Fold = LogFold;

    fn validate(&self) -> Result<(), String> {
        if self.nodes == 0 || self.nodes > 64 {
            return Err("--nodes must be between 1 and 64".into());
        }
        if self.runs == 0 || self.duration_s == 0 || self.partitions == 0 || self.partitions > 1024
        {
            return Err(
                "--runs and --duration-s must be positive, --partitions in 1..=1024".into(),
            );
        }
        if !(0.0..=1.0).contains(&self.read_ratio) || self.concurrency == 0 {
            return Err("--read-ratio must be in [0, 1] and --concurrency positive".into());
        }
        Ok(())
    }

    fn seeds(&self) -> core::ops::Range<u64> {
        self.seed..self.seed.saturating_add(self.runs)
    }

    fn run_seed(&self, seed: u64) -> Result<LogRun, String> {
        run_one(self, seed)
    }

    fn fold(&self) -> LogFold {
        LogFold(Vec::new())
    }
}

/// The log report is every run, in seed order.
#[derive(Debug, Default)]
pub struct LogFold(Vec<LogRun>);

impl Fold for LogFold {
    type Run = LogRun;
    type Report = Vec<LogRun>;

    fn push(&mut self, run: LogRun) {
        self.0.push(run);
    }

    fn finish(self) -> Vec<LogRun> {
        self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::run_all;

    #[test]
    fn a_short_faulty_run_is_correct_and_does_work() {
        let c = LogConfig {
            seed: 3,
            runs: 2,
            ..LogConfig::default()
        };
        let runs = run_all(&c).unwrap();
        assert_eq!(runs.iter().map(|r| r.seed).collect::<Vec<_>>(), [3, 4]);
        for r in &runs {
            assert!(
                r.violations.is_empty(),
                "seed {}: {:?}",
                r.seed,
                r.violations
            );
            assert!(r.acked > 1_000, "seed {}: {} acked", r.seed, r.acked);
            assert!(r.p50_us > 0 && r.p50_us <= r.p99_us);
        }
        // Seed 4 is even: the whole cluster lost power.
        assert!(runs[1].cluster_power_loss && !runs[0].cluster_power_loss);
        // Same seed, same run.
        assert_eq!(c.run_seed(4).unwrap(), runs[1]);
    }

    #[test]
    fn bad_configs_are_named() {
        let bad = |f: fn(&mut LogConfig)| {
            let mut c = LogConfig::default();
            f(&mut c);
            c.validate().unwrap_err()
        };
        assert!(bad(|c| c.nodes = 0).contains("--nodes"));
        assert!(bad(|c| c.nodes = 65).contains("--nodes"));
        assert!(bad(|c| c.runs = 0).contains("--runs"));
        assert!(bad(|c| c.partitions = 2000).contains("--partitions"));
        assert!(bad(|c| c.read_ratio = 1.5).contains("--read-ratio"));
        assert!(bad(|c| c.concurrency = 0).contains("--concurrency"));
        assert!(matches!(
            run_all(&LogConfig {
                nodes: 0,
                ..LogConfig::default()
            }),
            Err(crate::CheckError::Invalid(_))
        ));
        assert_eq!(LogConfig::default().validate(), Ok(()));
    }
}
