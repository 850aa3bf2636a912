//! The Shen log (Ouroboros Circle) in the viz: the settings a log world
//! runs, the client operations issued from the page and their outcome
//! ([`LogBook`], fed by the ring's events), and what is read from every
//! node's replicas at each check point ([`LogObs`], on which the two log
//! invariants are computed).
//!
//! A *log world* runs Sundial, Cartouche and Ouroboros together (the
//! standard stack's reactor wires them: Sundial's live set feeds
//! Ouroboros, which reconfigures its chains with a Cartouche grant's
//! fencing number as the ballot). It is kept small so it stays readable:
//! at most [`LOG_MAX_NODES`] nodes, [`LOG_PARTITIONS`] partitions, chains of
//! three.

use std::collections::hash_map::DefaultHasher;
use std::hash::{Hash, Hasher};

use serde::Serialize;
use shen_rings::ouroboros::{
    partition_of_key, Entry, LogError, Ouroboros, OuroborosEvent, OuroborosMsg,
};
use shen_rings::stack::{OuroborosSettings, ShenEvent};
use shen_rings::Time;
use shen_transport_memory::{Sim, TraceKind};

/// The most nodes a log world may have (the chains and the per-member
/// logs are drawn one by one).
pub const LOG_MAX_NODES: u64 = 16;
/// Partitions of a log world's log.
pub const LOG_PARTITIONS: u32 = 8;
/// Records a read asks for (and the most an outcome keeps for display).
pub const READ_MAX: u32 = 64;
/// Trace entries kept between two collections of log events (a log world
/// keeps a bounded trace; the hash covers every entry either way).
pub const TRACE_KEEP: usize = 1 << 17;

/// Ouroboros as a log world runs it: 8 partitions, chains of 3, timers
/// sized for the page's 40 ms mean latency (a chain round trip is ~5 hops).
pub fn log_settings() -> OuroborosSettings {
    OuroborosSettings {
        partitions: LOG_PARTITIONS,
        rf: 3,
        tick_ms: 40,
        request_timeout_ms: 6_000,
        round_timeout_ms: 2_000,
        ..OuroborosSettings::default()
    }
}

/// A record's fingerprint: equal records (same Scarab ID and payload) have
/// equal fingerprints.
pub fn fingerprint(id: u64, data: &[u8]) -> u64 {
    let mut h = DefaultHasher::new();
    (id, data).hash(&mut h);
    h.finish()
}

fn entry_print(e: &Entry<u64>) -> u64 {
    fingerprint(e.id, &e.data)
}

/// What became of a client operation.
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(tag = "state", rename_all = "snake_case")]
pub enum Outcome {
    /// No answer yet.
    Pending,
    /// The append is on every member of the chain.
    Acked {
        /// Its offset in the partition.
        offset: u64,
        /// Its Scarab ID (raw).
        id: u64,
    },
    /// The read returned.
    Read {
        /// The committed length at the tail.
        committed: u64,
        /// The records read, `(offset, payload)` (at most [`READ_MAX`]).
        records: Vec<(u64, String)>,
    },
    /// The operation failed.
    Failed {
        /// Why (the ring's error, as text).
        error: String,
        /// `true` when the outcome is unknown (a timed-out append may
        /// still be in the log).
        unknown: bool,
    },
}

/// One client operation issued from the page.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ClientOp {
    /// `append` or `read`.
    pub kind: &'static str,
    /// The client node.
    pub node: u64,
    /// Its request number there.
    pub req: u64,
    /// The partition.
    pub partition: u32,
    /// The key (appends).
    pub key: String,
    /// The payload (appends).
    pub data: String,
    /// When it was issued, µs.
    pub issued_us: u64,
    /// When its outcome came, µs.
    pub done_us: Option<u64>,
    /// Its outcome.
    pub outcome: Outcome,
}

/// An acknowledged append: `(partition, offset, Scarab ID, payload)`.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Acked {
    /// Partition.
    pub partition: u32,
    /// Offset.
    pub offset: u64,
    /// Scarab ID (raw).
    pub id: u64,
    /// Payload.
    pub data: String,
    /// The record's fingerprint.
    #[serde(skip)]
    pub print: u64,
}

/// The client operations of a run and the trace position up to which the
/// ring's events were read. Cloned into every timeline snapshot.
#[derive(Clone, Debug, PartialEq)]
pub struct LogBook {
    /// The world's partition count (a key's partition depends on it).
    partitions: u32,
    ops: Vec<ClientOp>,
    appends: u64,
    /// Global index of the next trace entry to read.
    pub trace_at: u64,
    /// Trace entries evicted before they were read (should stay 0).
    pub missed: u64,
}

impl Default for LogBook {
    fn default() -> Self {
        LogBook::new(LOG_PARTITIONS)
    }
}

impl LogBook {
    /// The book of a log world of `partitions` partitions.
    pub fn new(partitions: u32) -> Self {
        LogBook {
            partitions,
            ops: Vec::new(),
            appends: 0,
            trace_at: 0,
            missed: 0,
        }
    }

    /// The operations, oldest first.
    pub fn ops(&self) -> &[ClientOp] {
        &self.ops
    }

    /// The payload of the next append under `key`: the key and the append's
    /// ordinal in the run (unique, so a lost record is told apart).
    pub fn next_payload(&self, key: &str) -> String {
        format!("{key}#{}", self.appends + 1)
    }

    /// Record an append issued at `now`.
    pub fn issued_append(&mut self, node: u64, req: u64, key: &str, now: Time) {
        let data = self.next_payload(key);
        self.appends += 1;
        self.ops.push(ClientOp {
            kind: "append",
            node,
            req,
            partition: partition_of_key(key.as_bytes(), self.partitions),
            key: key.to_string(),
            data,
            issued_us: now.as_micros(),
            done_us: None,
            outcome: Outcome::Pending,
        });
    }

    /// Record a read issued at `now`.
    pub fn issued_read(&mut self, node: u64, req: u64, partition: u32, now: Time) {
        self.ops.push(ClientOp {
            kind: "read",
            node,
            req,
            partition,
            key: String::new(),
            data: String::new(),
            issued_us: now.as_micros(),
            done_us: None,
            outcome: Outcome::Pending,
        });
    }

    /// Operations still waiting for an outcome.
    pub fn pending(&self) -> usize {
        self.ops
            .iter()
            .filter(|o| o.outcome == Outcome::Pending)
            .count()
    }

    /// The acknowledged appends, in acknowledgement order of issue.
    pub fn acked(&self) -> Vec<Acked> {
        self.ops
            .iter()
            .filter_map(|o| match o.outcome {
                Outcome::Acked { offset, id } => Some(Acked {
                    partition: o.partition,
                    offset,
                    id,
                    print: fingerprint(id, o.data.as_bytes()),
                    data: o.data.clone(),
                }),
                _ => None,
            })
            .collect()
    }

    /// Apply one Ouroboros event node `node` reported at `now`.
    pub fn on_event(&mut self, node: u64, ev: &OuroborosEvent<u64>, now: Time) {
        let (req, outcome) = match ev {
            OuroborosEvent::Appended {
                req, offset, id, ..
            } => (
                *req,
                Outcome::Acked {
                    offset: *offset,
                    id: *id,
                },
            ),
            OuroborosEvent::ReadDone {
                req,
                records,
                committed,
                ..
            } => (
                *req,
                Outcome::Read {
                    committed: *committed,
                    records: records
                        .iter()
                        .take(READ_MAX as usize)
                        .map(|r| (r.offset, String::from_utf8_lossy(&r.data).into_owned()))
                        .collect(),
                },
            ),
            OuroborosEvent::AppendFailed { req, error, .. }
            | OuroborosEvent::ReadFailed { req, error, .. } => (
                *req,
                Outcome::Failed {
                    error: error.to_string(),
                    unknown: matches!(error, LogError::Timeout),
                },
            ),
            _ => return,
        };
        // The newest pending operation with that request number at that
        // node (a restarted node numbers its requests afresh).
        if let Some(op) = self
            .ops
            .iter_mut()
            .rev()
            .find(|o| o.node == node && o.req == req && o.outcome == Outcome::Pending)
        {
            op.outcome = outcome;
            op.done_us = Some(now.as_micros());
        }
    }

    /// Read the Ouroboros events recorded in `sim`'s trace since the last
    /// call (then drop the kept entries: a log world's trace keeps them only
    /// until they are read).
    pub fn collect(&mut self, sim: &mut Sim<ShenEvent<u64>>) {
        let first = sim.trace().first_kept();
        if first > self.trace_at {
            self.missed += first - self.trace_at;
        }
        let mut evs = Vec::new();
        for (_, e) in sim.trace().since(self.trace_at) {
            if let TraceKind::Event {
                node,
                event: ShenEvent::Ouroboros(ev),
                ..
            } = &e.kind
            {
                evs.push((*node, e.at, ev.clone()));
            }
        }
        self.trace_at = sim.trace().total();
        sim.trace_mut().clear_kept();
        for (node, at, ev) in evs {
            self.on_event(node, &ev, at);
        }
    }
}

/// One node's replica of one partition.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct ReplicaObs {
    /// The node.
    pub node: u64,
    /// Log length.
    pub len: u64,
    /// Commit point as known there.
    pub commit: u64,
    /// The epoch of the partition's chain in the node's table
    /// `(generation, sequence)`.
    pub epoch: (u64, u64),
    /// Whether its table lists it in the chain.
    pub member: bool,
    /// Fingerprints of its log's records (see [`fingerprint`]).
    #[serde(skip)]
    pub prints: Vec<u64>,
}

impl ReplicaObs {
    /// Records it holds as committed.
    pub fn committed(&self) -> u64 {
        self.commit.min(self.len)
    }
}

/// One partition as seen at a check point.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct PartObs {
    /// The partition.
    pub partition: u32,
    /// Its chain in the newest table any running node has, head first.
    pub chain: Vec<u64>,
    /// That chain's epoch `(generation, sequence)`.
    pub epoch: (u64, u64),
    /// New replicas catching up from the tail before they join the chain
    /// (no part in acknowledgements or reads yet).
    pub learners: Vec<u64>,
    /// Running nodes holding a replica (listed in their table's chain, or
    /// with a non-empty log).
    pub replicas: Vec<ReplicaObs>,
}

impl PartObs {
    /// The replica of `node`, if it runs and holds one.
    pub fn replica(&self, node: u64) -> Option<&ReplicaObs> {
        self.replicas.iter().find(|r| r.node == node)
    }
}

/// The log's member set in the newest table.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct MembersObs {
    /// Its version (bumped by every change).
    pub version: u64,
    /// The members, sorted.
    pub nodes: Vec<u64>,
    /// Members being decommissioned (their chains move away first).
    pub leaving: Vec<u64>,
}

/// The log at a check point.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LogObs {
    /// The newest table's ballot `(generation, sequence)`.
    pub ballot: (u64, u64),
    /// The newest table's member set.
    pub members: MembersObs,
    /// Every partition.
    pub partitions: Vec<PartObs>,
    /// Acknowledged appends so far.
    pub acked: Vec<Acked>,
}

impl LogObs {
    /// Look at every running node's Ouroboros replicas in `sim`.
    pub fn take(sim: &Sim<ShenEvent<u64>>, book: &LogBook) -> LogObs {
        let rings: Vec<(u64, &Ouroboros<u64>)> = (0..sim.node_count())
            .filter_map(|id| {
                sim.node(id)
                    .and_then(|n| n.ring::<Ouroboros<u64>>())
                    .map(|o| (id, o))
            })
            .collect();
        let newest = rings
            .iter()
            .map(|(_, o)| o.table())
            .max_by_key(|t| t.ballot);
        let parts = newest.map_or(0, |t| t.chains.len() as u32);
        let partitions = (0..parts)
            .map(|p| {
                let chain = newest.and_then(|t| t.chains.get(p as usize));
                let replicas = rings
                    .iter()
                    .filter_map(|(id, o)| {
                        let c = o.table().chains.get(p as usize)?;
                        let member = c.members.contains(id);
                        let log = o.log(p);
                        let learner = chain.is_some_and(|n| n.learners.contains(id));
                        (member || learner || !log.is_empty()).then(|| ReplicaObs {
                            node: *id,
                            len: log.len() as u64,
                            commit: o.committed(p),
                            epoch: (c.epoch.generation, c.epoch.sequence),
                            member,
                            prints: log.iter().map(entry_print).collect(),
                        })
                    })
                    .collect();
                PartObs {
                    partition: p,
                    chain: chain.map(|c| c.members.clone()).unwrap_or_default(),
                    epoch: chain.map_or((0, 0), |c| (c.epoch.generation, c.epoch.sequence)),
                    learners: chain.map(|c| c.learners.clone()).unwrap_or_default(),
                    replicas,
                }
            })
            .collect();
        let members = newest.map_or_else(MembersObs::default, |t| MembersObs {
            version: t.members.version,
            nodes: t.members.ids().copied().collect(),
            leaving: t.members.leaving.clone(),
        });
        LogObs {
            ballot: newest.map_or((0, 0), |t| (t.ballot.generation, t.ballot.sequence)),
            members,
            partitions,
            acked: book.acked(),
        }
    }

    /// Chain prefix order: in every partition, the committed prefixes of
    /// all replicas are prefixes of one log (each record committed at an
    /// offset is the same record everywhere). The first disagreement, if
    /// any.
    pub fn prefix_violation(&self) -> Option<String> {
        for part in &self.partitions {
            let Some(longest) = part.replicas.iter().max_by_key(|r| r.committed()) else {
                continue;
            };
            for r in &part.replicas {
                let c = r.committed() as usize;
                if let Some(o) = (0..c).find(|&o| r.prints[o] != longest.prints[o]) {
                    return Some(format!(
                        "partition {}: nodes {} (epoch {:?}) and {} (epoch {:?}) committed \
                         different records at offset {o}",
                        part.partition, r.node, r.epoch, longest.node, longest.epoch
                    ));
                }
            }
        }
        None
    }

    /// No lost acknowledged append: `(broken, missing)`. `broken`: a
    /// replica committed another record at an acknowledged offset (always
    /// a violation). `missing`: an acknowledged append is not (yet) in the
    /// committed log of its chain's tail (a violation once it lasts; a new
    /// tail catches up first).
    pub fn ack_check(&self) -> (Option<String>, Option<String>) {
        let mut missing = None;
        for a in &self.acked {
            let Some(part) = self.partitions.get(a.partition as usize) else {
                continue;
            };
            for r in &part.replicas {
                if r.committed() > a.offset && r.prints[a.offset as usize] != a.print {
                    return (
                        Some(format!(
                            "append `{}` acknowledged at ({}, {}) but node {} committed another \
                             record there",
                            a.data, a.partition, a.offset, r.node
                        )),
                        None,
                    );
                }
            }
            if missing.is_some() {
                continue;
            }
            let tail = part.chain.last().copied();
            let held = tail
                .and_then(|t| part.replica(t))
                .is_some_and(|r| r.committed() > a.offset);
            if !held {
                missing = Some(match tail {
                    Some(t) => format!(
                        "append `{}` acknowledged at ({}, {}) is not in the committed log of \
                         the tail, node {t}",
                        a.data, a.partition, a.offset
                    ),
                    None => format!(
                        "append `{}` acknowledged at ({}, {}): the partition has no chain",
                        a.data, a.partition, a.offset
                    ),
                });
            }
        }
        (None, missing)
    }
}

/// What an Ouroboros message is, for drawing: `(kind, partition)`.
/// Kinds: `append` (records down the chain), `ack` (commit point up the
/// chain), `sync`, `client_append`, `append_reply`, `client_read`,
/// `read_reply`, `check`/`check_reply` (the tail's read check), `config`
/// (the table's Paxos round and queries).
pub fn message_kind(payload: &[u8]) -> Option<(&'static str, Option<u32>)> {
    let msg: OuroborosMsg<u64> = postcard::from_bytes(payload).ok()?;
    Some(match msg {
        OuroborosMsg::Append { p, .. } => ("append", Some(p)),
        OuroborosMsg::Ack { p, .. } => ("ack", Some(p)),
        OuroborosMsg::Sync { p, .. } => ("sync", Some(p)),
        OuroborosMsg::Skip { p, .. } => ("skip", Some(p)),
        OuroborosMsg::ClientAppend { p, .. } => ("client_append", Some(p)),
        OuroborosMsg::AppendReply { .. } => ("append_reply", None),
        OuroborosMsg::ClientRead { p, .. } => ("client_read", Some(p)),
        OuroborosMsg::ReadReply { .. } => ("read_reply", None),
        OuroborosMsg::Check { p, .. } => ("check", Some(p)),
        OuroborosMsg::CheckReply { .. } => ("check_reply", None),
        OuroborosMsg::Seal { p, .. } | OuroborosMsg::Sealed { p, .. } => ("config", Some(p)),
        _ => ("config", None),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn replica(node: u64, prints: &[u64], commit: u64) -> ReplicaObs {
        ReplicaObs {
            node,
            len: prints.len() as u64,
            commit,
            epoch: (1, 0),
            member: true,
            prints: prints.to_vec(),
        }
    }

    fn part(p: u32, chain: &[u64], replicas: Vec<ReplicaObs>) -> PartObs {
        PartObs {
            partition: p,
            chain: chain.to_vec(),
            epoch: (1, 0),
            learners: Vec::new(),
            replicas,
        }
    }

    fn acked(p: u32, offset: u64, data: &str) -> Acked {
        let id = 1000 + offset;
        Acked {
            partition: p,
            offset,
            id,
            data: data.into(),
            print: fingerprint(id, data.as_bytes()),
        }
    }

    fn f(offset: u64, data: &str) -> u64 {
        fingerprint(1000 + offset, data.as_bytes())
    }

    #[test]
    fn agreeing_prefixes_pass_and_a_diverged_committed_record_is_caught() {
        let (a, b, c) = (f(0, "a#1"), f(1, "b#2"), f(2, "c#3"));
        let mut log = LogObs {
            partitions: vec![
                part(0, &[], vec![]),
                part(
                    1,
                    &[0, 1, 2],
                    vec![
                        replica(0, &[a, b, c], 3),
                        replica(1, &[a, b, c], 2),
                        replica(2, &[a, b], 2),
                    ],
                ),
            ],
            ..LogObs::default()
        };
        assert_eq!(log.prefix_violation(), None);
        // An uncommitted suffix may differ (a deposed head's leftovers).
        log.partitions[1].replicas[2] = replica(2, &[a, b, f(2, "zzz")], 2);
        assert_eq!(log.prefix_violation(), None);
        // A committed one may not.
        log.partitions[1].replicas[2] = replica(2, &[a, f(1, "evil")], 2);
        let v = log.prefix_violation().expect("a violation");
        assert!(v.contains("partition 1") && v.contains("offset 1"), "{v}");
        assert!(v.contains("nodes 2"), "{v}");
    }

    #[test]
    fn an_acknowledged_append_must_stay_at_its_offset_in_the_tail() {
        let (a, b) = (f(0, "a#1"), f(1, "b#2"));
        let mut log = LogObs {
            partitions: vec![part(
                0,
                &[3, 4, 5],
                vec![
                    replica(3, &[a, b], 2),
                    replica(4, &[a, b], 2),
                    replica(5, &[a, b], 2),
                ],
            )],
            acked: vec![acked(0, 0, "a#1"), acked(0, 1, "b#2")],
            ..LogObs::default()
        };
        assert_eq!(log.ack_check(), (None, None));
        // The tail is a new member still catching up: missing, not broken.
        log.partitions[0].replicas[2] = replica(5, &[a], 1);
        let (broken, missing) = log.ack_check();
        assert_eq!(broken, None);
        assert!(missing.unwrap().contains("`b#2` acknowledged at (0, 1)"));
        // The tail committed another record at offset 1: lost.
        log.partitions[0].replicas[2] = replica(5, &[a, f(1, "other")], 2);
        let (broken, _) = log.ack_check();
        let broken = broken.expect("broken");
        assert!(
            broken.contains("node 5 committed another record"),
            "{broken}"
        );
        // Every replica of the chain is gone (restarted with empty logs).
        log.partitions[0].replicas = vec![replica(3, &[], 0)];
        assert!(log.ack_check().1.unwrap().contains("tail, node 5"));
    }

    #[test]
    fn the_book_matches_outcomes_to_requests() {
        let mut book = LogBook::default();
        book.issued_append(2, 7, "k1", Time::from_millis(5));
        book.issued_append(3, 7, "k2", Time::from_millis(6));
        book.issued_read(2, 8, 4, Time::from_millis(7));
        assert_eq!(book.pending(), 3);
        assert_eq!(book.ops()[0].data, "k1#1");
        assert_eq!(book.ops()[1].data, "k2#2");
        assert_eq!(book.next_payload("z"), "z#3");
        book.on_event(
            3,
            &OuroborosEvent::Appended {
                req: 7,
                partition: book.ops()[1].partition,
                offset: 4,
                id: 99,
            },
            Time::from_millis(9),
        );
        book.on_event(
            2,
            &OuroborosEvent::ReadFailed {
                req: 8,
                partition: 4,
                error: LogError::NotEnoughReplicas,
            },
            Time::from_millis(10),
        );
        // An answer for a request nobody waits for changes nothing.
        book.on_event(
            9,
            &OuroborosEvent::Appended {
                req: 7,
                partition: 0,
                offset: 0,
                id: 1,
            },
            Time::from_millis(11),
        );
        assert_eq!(book.pending(), 1);
        assert_eq!(book.ops()[1].outcome, Outcome::Acked { offset: 4, id: 99 });
        assert_eq!(book.ops()[1].done_us, Some(9_000));
        assert!(
            matches!(&book.ops()[2].outcome, Outcome::Failed { unknown: false, error } if error.contains("not enough replicas"))
        );
        let acked = book.acked();
        assert_eq!(acked.len(), 1);
        assert_eq!(
            (acked[0].offset, acked[0].print),
            (4, fingerprint(99, b"k2#2"))
        );
    }
}
