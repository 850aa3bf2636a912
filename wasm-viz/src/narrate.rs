//! The narration: ring events told in plain words ("node 3 suspects node
//! 1: phi 8.3, threshold 8"), one line per event with the virtual time it
//! happened at, for the page's event log (each line jumps the timeline
//! there). Read from the trace only: nothing here feeds back into the run.

use std::collections::VecDeque;

use serde::Serialize;
use shen_rings::cartouche::CartoucheEvent;
use shen_rings::ouroboros::OuroborosEvent;
use shen_rings::stack::ShenEvent;
use shen_rings::sundial::SundialEvent;
use shen_rings::toy::RelayEvent;

/// Worlds of at most this many nodes (at the start) are narrated; bigger
/// ones keep no trace entries (the cheapest mode), so there is nothing to
/// tell.
pub const NARRATE_MAX_NODES: u64 = 100;
/// Most lines kept (the oldest go first).
pub const MAX_LINES: usize = 4_000;

/// One line of the narration.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Line {
    /// When it happened, µs of virtual time.
    pub at_us: u64,
    /// The node that reported it.
    pub node: u64,
    /// Its ring.
    pub ring: &'static str,
    /// What happened, in plain words.
    pub text: String,
}

/// The lines of this history, in time order.
#[derive(Clone, Debug, Default)]
pub struct Narration {
    lines: VecDeque<Line>,
    /// Events at or before this time were already told (a rewind replays
    /// them: they are not told twice).
    told_until_us: Option<u64>,
}

impl Narration {
    /// The lines, oldest first.
    pub fn lines(&self) -> impl ExactSizeIterator<Item = &Line> + '_ {
        self.lines.iter()
    }

    /// Tell an event of `node` at `at_us` (unless it was told already).
    pub fn push(&mut self, at_us: u64, node: u64, ring: &'static str, text: String) {
        if self.told_until_us.is_some_and(|t| at_us <= t) {
            return;
        }
        self.lines.push_back(Line {
            at_us,
            node,
            ring,
            text,
        });
        if self.lines.len() > MAX_LINES {
            self.lines.pop_front();
        }
    }

    /// The run went back in time from `reached_us`: the events up to there
    /// will happen again, already told.
    pub fn rewound(&mut self, reached_us: u64) {
        self.told_until_us = Some(self.told_until_us.map_or(reached_us, |t| t.max(reached_us)));
    }

    /// A new action at `now_us` forked the history: forget what came
    /// after (everything from now on is new, even at `now_us`).
    pub fn forked(&mut self, now_us: u64) {
        while self.lines.back().is_some_and(|l| l.at_us > now_us) {
            self.lines.pop_back();
        }
        self.told_until_us = None;
    }
}

/// The ring of an event.
pub fn ring_of(ev: &ShenEvent<u64>) -> &'static str {
    match ev {
        ShenEvent::Relay(_) => "relay",
        ShenEvent::Sundial(_) => "sundial",
        ShenEvent::Cartouche(_) => "cartouche",
        ShenEvent::Ouroboros(_) => "ouroboros",
    }
}

/// Event `ev` reported by `node`, in plain words. `phi(m)` is the phi
/// `node` computes for member `m` at that instant (if it monitors it);
/// `threshold` the phi at which a monitor suspects.
pub fn sentence(
    node: u64,
    ev: &ShenEvent<u64>,
    phi: impl Fn(u64) -> Option<f64>,
    threshold: f64,
) -> String {
    match ev {
        ShenEvent::Sundial(e) => match e {
            SundialEvent::Joined { id } if *id == node => format!("node {node} joins the cluster"),
            SundialEvent::Joined { id } => format!("node {node} learns that node {id} is a member"),
            SundialEvent::Suspected { id, by } => {
                let who: Vec<String> = by.iter().map(u64::to_string).collect();
                match phi(*id) {
                    Some(p) => {
                        let mut s = format!(
                            "node {node} suspects node {id}: phi {p:.1} (threshold \
                             {threshold:.0}), too long without an answer"
                        );
                        if !by.is_empty() {
                            s.push_str(&format!("; suspected by {}", who.join(", ")));
                        }
                        s
                    }
                    None if by.is_empty() => {
                        format!("node {node} hears by gossip that node {id} is suspected")
                    }
                    None => format!(
                        "node {node} hears by gossip that node {id} is suspected (by {})",
                        who.join(", ")
                    ),
                }
            }
            SundialEvent::Recovered { id } => {
                format!("node {node} hears from node {id} again: no longer suspected")
            }
            SundialEvent::Died { id } => format!("node {node} declares node {id} dead"),
            SundialEvent::Left { id } => format!("node {node} learns that node {id} left"),
            SundialEvent::Forgotten { id } => {
                format!("node {node} forgets node {id} (its tombstone expired)")
            }
            SundialEvent::MetaChanged { id } => {
                format!("node {node} sees node {id}'s metadata change")
            }
            SundialEvent::Refuted { incarnation } => format!(
                "node {node} refutes a suspicion about itself: incarnation {incarnation}"
            ),
            SundialEvent::Monitoring { id } => format!(
                "node {node} starts monitoring node {id}, one of its predecessors on the circle"
            ),
        },
        ShenEvent::Cartouche(e) => match e {
            CartoucheEvent::Granted { id, fencing, .. } => format!(
                "node {node} is granted the lock (request {id}, fencing {}.{}): a majority confirmed",
                fencing.generation, fencing.sequence
            ),
            CartoucheEvent::Released { id, .. } => {
                format!("node {node} releases the lock (request {id})")
            }
            CartoucheEvent::LeaseExpired { id, .. } => {
                format!("node {node}'s lease ran out before it released (request {id})")
            }
            CartoucheEvent::Regenerated { generation } => format!(
                "node {node} creates a new token, generation {generation}: a majority promised"
            ),
            CartoucheEvent::Candidate { generation } => format!(
                "node {node} has not seen the token for too long and asks for generation {generation}"
            ),
            CartoucheEvent::TokenDiscarded { generation, .. } => {
                format!("node {node} drops a stale token (generation {generation})")
            }
            CartoucheEvent::Requested { id } => {
                format!("node {node} asks for the lock (request {id})")
            }
        },
        ShenEvent::Ouroboros(e) => match e {
            OuroborosEvent::Appended {
                partition, offset, ..
            } => format!(
                "node {node}'s append is acknowledged: partition {partition}, offset {offset}, on every chain member"
            ),
            OuroborosEvent::AppendFailed {
                partition, error, ..
            } => format!("node {node}'s append to partition {partition} failed: {error}"),
            OuroborosEvent::ReadDone {
                partition,
                records,
                committed,
                ..
            } => format!(
                "node {node} read {} record(s) of partition {partition} (committed {committed})",
                records.len()
            ),
            OuroborosEvent::ReadFailed {
                partition, error, ..
            } => format!("node {node}'s read of partition {partition} failed: {error}"),
            OuroborosEvent::WantsReconfig => format!(
                "node {node} wants the log reconfigured (a chain member failed): it needs the token"
            ),
            OuroborosEvent::ReconfigDone { ballot, changed } => format!(
                "node {node} installed new chains (ballot {}.{}, {changed} partition(s) changed)",
                ballot.generation, ballot.sequence
            ),
            OuroborosEvent::ReconfigAborted { ballot } => format!(
                "node {node}'s reconfiguration (ballot {}.{}) was abandoned",
                ballot.generation, ballot.sequence
            ),
            OuroborosEvent::TableInstalled { ballot } => format!(
                "node {node} installs the new table of chains (ballot {}.{})",
                ballot.generation, ballot.sequence
            ),
            OuroborosEvent::WantsTxnToken { req } => {
                format!("node {node} needs the token for transaction {req}")
            }
            OuroborosEvent::TxnDone { req, committed, .. } => format!(
                "node {node}'s transaction {req} {}",
                match committed {
                    Some(true) => "committed",
                    Some(false) => "aborted",
                    None => "failed",
                }
            ),
            OuroborosEvent::StorageFailed { reason } => {
                format!("node {node}'s storage failed: {reason}")
            }
        },
        ShenEvent::Relay(e) => match e {
            RelayEvent::Received { from, hops, .. } => {
                format!("node {node} receives the baton from node {from} (hop {hops})")
            }
            RelayEvent::LapCompleted { lap, hops } => {
                format!("node {node} completes lap {lap} in {hops} hops")
            }
            RelayEvent::Relaunched { lap } => {
                format!("node {node} relaunches the baton (lap {lap})")
            }
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_read_as_sentences() {
        let s = sentence(
            3,
            &ShenEvent::Sundial(SundialEvent::Suspected {
                id: 1,
                by: vec![3, 5],
            }),
            |m| (m == 1).then_some(8.34),
            8.0,
        );
        assert_eq!(
            s,
            "node 3 suspects node 1: phi 8.3 (threshold 8), too long without an answer; suspected by 3, 5"
        );
        let s = sentence(
            2,
            &ShenEvent::Sundial(SundialEvent::Died { id: 4 }),
            |_| None,
            8.0,
        );
        assert_eq!(s, "node 2 declares node 4 dead");
        let s = sentence(
            6,
            &ShenEvent::Sundial(SundialEvent::Suspected { id: 1, by: vec![3] }),
            |_| None,
            8.0,
        );
        assert_eq!(s, "node 6 hears by gossip that node 1 is suspected (by 3)");
    }

    #[test]
    fn a_rewind_does_not_tell_twice_and_a_fork_forgets_the_future() {
        let mut n = Narration::default();
        n.push(10, 0, "sundial", "a".into());
        n.push(20, 0, "sundial", "b".into());
        n.rewound(20);
        n.push(20, 0, "sundial", "b".into());
        n.push(30, 0, "sundial", "c".into());
        assert_eq!(
            n.lines().map(|l| l.text.as_str()).collect::<Vec<_>>(),
            ["a", "b", "c"]
        );
        n.forked(15);
        assert_eq!(n.lines().len(), 1);
        n.push(15, 0, "sundial", "x".into());
        assert_eq!(
            n.lines().map(|l| l.text.as_str()).collect::<Vec<_>>(),
            ["a", "x"]
        );
    }
}
