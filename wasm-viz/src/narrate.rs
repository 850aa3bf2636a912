//! The narration: ring events told in plain words ("node 3 suspects node
//! 1: phi 8.3, threshold 8"), one line per event with the virtual time it
//! happened at, for the page's event log (each line jumps the timeline
//! there), and the faults that started it all. Read from the trace only:
//! nothing here feeds back into the run.
//!
//! # Causality across rings
//! Each line names the earlier lines that likely caused it (`causes`), by
//! rules that follow the stack's reactions across rings, within
//! [`CAUSE_WINDOW_US`]: a crash, pause or cut → a suspicion of that node →
//! its death (the same monitor's suspicion) → Ouroboros wanting a
//! reconfiguration (the node that declared it dead) → its token request →
//! the grant (and a token regenerated meanwhile) → the configuration round
//! done → the new table of chains (the new chain epoch) on every node; a
//! crash, cut or dropped message → a Cartouche candidacy → the token
//! regenerated; a suspicion of a node → its refutation. They are the
//! likely causes, read from the order of events, not a proof.

use std::collections::{BTreeMap, VecDeque};

use serde::Serialize;
use shen_rings::cartouche::CartoucheEvent;
use shen_rings::ouroboros::OuroborosEvent;
use shen_rings::stack::ShenEvent;
use shen_rings::sundial::SundialEvent;
use shen_rings::toy::RelayEvent;
use shen_transport_memory::{Fault, RestartMode};

/// Worlds of at most this many nodes (at the start) are narrated; bigger
/// ones keep no trace entries (the cheapest mode), so there is nothing to
/// tell.
pub const NARRATE_MAX_NODES: u64 = 100;
/// Most lines kept (the oldest go first).
pub const MAX_LINES: usize = 4_000;
/// How far back a line's causes are looked for, µs of virtual time.
pub const CAUSE_WINDOW_US: u64 = 30_000_000;
/// How close a token request follows the log's wish for it, µs.
const REQUEST_WINDOW_US: u64 = 2_000_000;
/// Most lines a cause chain ([`Narration::chain_of`]) gives.
pub const MAX_CHAIN: usize = 48;

/// What a line is about, for finding causes.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub enum Tag {
    /// Nothing a rule follows.
    #[default]
    Other,
    /// A node stopped answering: crashed, lost power or paused.
    Down(u64),
    /// The network was cut.
    Cut,
    /// A message was dropped by the user.
    Dropped,
    /// A node was suspected.
    Suspected(u64),
    /// A node was declared dead.
    Died(u64),
    /// A node refuted a suspicion about itself.
    Refuted,
    /// Ouroboros wants a reconfiguration (or the token for a transaction).
    WantsToken,
    /// A Cartouche request.
    Requested(u64),
    /// A Cartouche grant: request, fencing number.
    Granted(u64, u64, u64),
    /// A candidacy for a token generation.
    Candidate(u64),
    /// A token generation created.
    Regenerated(u64),
    /// An Ouroboros configuration round done, with its ballot.
    ReconfigDone(u64, u64),
    /// A new table of chains installed, with its ballot.
    TableInstalled(u64, u64),
}

/// What a ring event is about.
pub fn tag_of(ev: &ShenEvent<u64>) -> Tag {
    match ev {
        ShenEvent::Sundial(e) => match e {
            SundialEvent::Suspected { id, .. } => Tag::Suspected(*id),
            SundialEvent::Died { id } => Tag::Died(*id),
            SundialEvent::Refuted { .. } => Tag::Refuted,
            _ => Tag::Other,
        },
        ShenEvent::Cartouche(e) => match e {
            CartoucheEvent::Requested { id } => Tag::Requested(*id),
            CartoucheEvent::Granted { id, fencing, .. } => {
                Tag::Granted(*id, fencing.generation, fencing.sequence)
            }
            CartoucheEvent::Candidate { generation } => Tag::Candidate(*generation),
            CartoucheEvent::Regenerated { generation } => Tag::Regenerated(*generation),
            _ => Tag::Other,
        },
        ShenEvent::Ouroboros(e) => match e {
            OuroborosEvent::WantsReconfig | OuroborosEvent::WantsTxnToken { .. } => Tag::WantsToken,
            OuroborosEvent::ReconfigDone { ballot, .. } => {
                Tag::ReconfigDone(ballot.generation, ballot.sequence)
            }
            OuroborosEvent::TableInstalled { ballot } => {
                Tag::TableInstalled(ballot.generation, ballot.sequence)
            }
            _ => Tag::Other,
        },
        ShenEvent::Relay(_) => Tag::Other,
    }
}

/// A fault in plain words: `(node, whole network, text, tag)`; `None` for
/// faults the page does not tell.
pub fn fault_sentence(f: &Fault) -> Option<(u64, bool, String, Tag)> {
    Some(match f {
        Fault::Crash(n) => (*n, false, format!("node {n} crashes"), Tag::Down(*n)),
        Fault::Restart { node, disk } => {
            let (what, tag) = match disk {
                RestartMode::Keep => ("restarts with its disk", Tag::Other),
                RestartMode::LoseUnsynced => (
                    "loses power and restarts: its writes not yet synced are gone",
                    Tag::Down(*node),
                ),
                RestartMode::LoseDisk => ("restarts with an empty disk", Tag::Down(*node)),
            };
            (*node, false, format!("node {node} {what}"), tag)
        }
        Fault::Pause { node, ms } => (
            *node,
            false,
            format!("node {node} stalls for {ms} ms (a pause: it answers nothing meanwhile)"),
            Tag::Down(*node),
        ),
        Fault::Skew { node, ms } => (
            *node,
            false,
            format!("node {node}'s clock steps by {ms} ms"),
            Tag::Other,
        ),
        Fault::Partition(groups) => {
            let g: Vec<String> = groups
                .iter()
                .map(|g| {
                    let ids: Vec<String> = g.iter().map(u64::to_string).collect();
                    format!("{{{}}}", ids.join(", "))
                })
                .collect();
            (
                0,
                true,
                format!("the network is cut: {}", g.join(" | ")),
                Tag::Cut,
            )
        }
        Fault::Heal => (0, true, "the network heals".to_string(), Tag::Other),
        Fault::DropMessage(id) => (0, true, format!("message {id} is dropped"), Tag::Dropped),
        _ => return None,
    })
}

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
    /// Its number in this history (a line keeps it across rewinds).
    pub id: u64,
    /// About the whole network (a cut, a heal, a dropped message), not
    /// `node` alone.
    #[serde(skip_serializing_if = "core::ops::Not::not")]
    pub all: bool,
    /// The earlier lines that likely caused it (see the module doc).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub causes: Vec<u64>,
    #[serde(skip)]
    tag: Tag,
}

/// The lines of this history, in time order.
#[derive(Clone, Debug, Default)]
pub struct Narration {
    lines: VecDeque<Line>,
    /// Events at or before this time were already told (a rewind replays
    /// them: they are not told twice).
    told_until_us: Option<u64>,
    /// The next line's id.
    next_id: u64,
}

impl Narration {
    /// The lines, oldest first.
    pub fn lines(&self) -> impl ExactSizeIterator<Item = &Line> + '_ {
        self.lines.iter()
    }

    /// Tell an event of `node` at `at_us` (unless it was told already).
    pub fn push(&mut self, at_us: u64, node: u64, ring: &'static str, text: String) {
        self.push_tagged(at_us, (node, false), ring, text, Tag::Other);
    }

    /// [`Narration::push`] of a line about `tag`, linked to its causes;
    /// `who` is the node and whether the line is about the whole network.
    pub fn push_tagged(
        &mut self,
        at_us: u64,
        who: (u64, bool),
        ring: &'static str,
        text: String,
        tag: Tag,
    ) {
        if self.told_until_us.is_some_and(|t| at_us <= t) {
            return;
        }
        let causes = self.causes_of(at_us, who.0, tag);
        self.lines.push_back(Line {
            at_us,
            node: who.0,
            ring,
            text,
            id: self.next_id,
            all: who.1,
            causes,
            tag,
        });
        self.next_id += 1;
        if self.lines.len() > MAX_LINES {
            self.lines.pop_front();
        }
    }

    /// The latest line since `since_us` that `want` accepts.
    fn latest(&self, since_us: u64, want: impl Fn(&Line) -> bool) -> Option<&Line> {
        self.lines
            .iter()
            .rev()
            .take_while(|l| l.at_us >= since_us)
            .find(|l| want(l))
    }

    /// The likely causes of a line about `tag` by `node` at `at_us`.
    fn causes_of(&self, at_us: u64, node: u64, tag: Tag) -> Vec<u64> {
        let since = at_us.saturating_sub(CAUSE_WINDOW_US);
        let by = |t: fn(&Tag) -> bool| move |l: &Line| l.node == node && !l.all && t(&l.tag);
        let mut out: Vec<&Line> = Vec::new();
        match tag {
            Tag::Suspected(x) => {
                out.extend(self.latest(since, |l| {
                    matches!(l.tag, Tag::Down(y) if y == x) || l.tag == Tag::Cut
                }));
            }
            Tag::Died(x) => {
                let suspected = |l: &Line| matches!(l.tag, Tag::Suspected(y) if y == x);
                let own = self.latest(since, |l| l.node == node && suspected(l));
                out.extend(own.or_else(|| self.latest(since, suspected)).or_else(|| {
                    self.latest(since, |l| {
                        matches!(l.tag, Tag::Down(y) if y == x) || l.tag == Tag::Cut
                    })
                }));
            }
            Tag::Refuted => {
                out.extend(self.latest(since, |l| matches!(l.tag, Tag::Suspected(y) if y == node)));
            }
            Tag::WantsToken => {
                out.extend(self.latest(since, by(|t| matches!(t, Tag::Died(_)))));
            }
            Tag::Requested(_) => {
                let recent = at_us.saturating_sub(REQUEST_WINDOW_US);
                out.extend(self.latest(recent, by(|t| *t == Tag::WantsToken)));
            }
            Tag::Granted(id, ..) => {
                let req = self.latest(since, |l| l.node == node && l.tag == Tag::Requested(id));
                if let Some(r) = req {
                    let t = r.at_us;
                    out.push(r);
                    out.extend(self.latest(t, |l| matches!(l.tag, Tag::Regenerated(_))));
                }
            }
            Tag::Candidate(_) => {
                out.extend(self.latest(since, |l| {
                    matches!(l.tag, Tag::Down(_) | Tag::Cut | Tag::Dropped)
                }));
            }
            Tag::Regenerated(g) => {
                out.extend(self.latest(since, |l| l.node == node && l.tag == Tag::Candidate(g)));
            }
            Tag::ReconfigDone(..) => {
                out.extend(self.latest(since, by(|t| matches!(t, Tag::Granted(..)))));
            }
            Tag::TableInstalled(g, q) => {
                // Told by the round's leader; the leader's own comes with
                // its grant (the ballot is the grant's fencing number).
                out.extend(
                    self.latest(since, |l| l.tag == Tag::ReconfigDone(g, q))
                        .or_else(|| {
                            self.latest(
                                since,
                                |l| matches!(l.tag, Tag::Granted(_, a, b) if (a, b) == (g, q)),
                            )
                        }),
                );
            }
            Tag::Other | Tag::Down(_) | Tag::Cut | Tag::Dropped => {}
        }
        let mut ids: Vec<u64> = out.iter().map(|l| l.id).collect();
        ids.sort_unstable();
        ids.dedup();
        ids
    }

    /// How long each granted Cartouche request waited, µs: from its
    /// `Requested` line to the `Granted` line of the same node and request
    /// id, over the lines kept, in grant order.
    pub fn grant_waits(&self) -> Vec<u64> {
        let mut asked: BTreeMap<(u64, u64), u64> = BTreeMap::new();
        let mut out = Vec::new();
        for l in &self.lines {
            match l.tag {
                Tag::Requested(id) => {
                    asked.insert((l.node, id), l.at_us);
                }
                Tag::Granted(id, ..) => {
                    if let Some(at) = asked.remove(&(l.node, id)) {
                        out.push(l.at_us.saturating_sub(at));
                    }
                }
                _ => {}
            }
        }
        out
    }

    /// The line numbered `id`.
    pub fn line(&self, id: u64) -> Option<&Line> {
        // Ids grow with the deque's order: a binary search.
        let i = self.lines.partition_point(|l| l.id < id);
        self.lines.get(i).filter(|l| l.id == id)
    }

    /// Line `id` and every line it likely follows from, transitively,
    /// oldest first (at most [`MAX_CHAIN`]); empty for an unknown id.
    pub fn chain_of(&self, id: u64) -> Vec<&Line> {
        let mut seen: Vec<u64> = Vec::new();
        let mut todo = vec![id];
        while let Some(i) = todo.pop() {
            if seen.contains(&i) || seen.len() >= MAX_CHAIN {
                continue;
            }
            if let Some(l) = self.line(i) {
                seen.push(i);
                todo.extend(l.causes.iter().copied());
            }
        }
        let mut out: Vec<&Line> = seen.iter().filter_map(|&i| self.line(i)).collect();
        out.sort_by_key(|l| (l.at_us, l.id));
        out
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
                "node {node} wants the log reconfigured (a chain member failed, a member change \
                 was asked for, or chains should move to balance the members): it needs the token"
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
            OuroborosEvent::MembersChanged {
                version,
                members,
                leaving,
            } => {
                let list = |v: &[u64]| v.iter().map(u64::to_string).collect::<Vec<_>>().join(", ");
                if leaving.is_empty() {
                    format!(
                        "node {node} installs member set v{version}: {}",
                        list(members)
                    )
                } else {
                    format!(
                        "node {node} installs member set v{version}: {} ({} leaving: its partitions move away first)",
                        list(members),
                        list(leaving)
                    )
                }
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
    fn causes_follow_the_rules_within_the_window() {
        let mut n = Narration::default();
        n.push_tagged(
            1_000,
            (3, false),
            "fault",
            "node 3 crashes".into(),
            Tag::Down(3),
        );
        n.push_tagged(2_000, (0, false), "sundial", "s".into(), Tag::Suspected(3));
        n.push_tagged(2_100, (1, false), "sundial", "s".into(), Tag::Suspected(3));
        n.push_tagged(3_000, (0, false), "sundial", "d".into(), Tag::Died(3));
        // A request nobody's wish explains (the user's) has no cause.
        n.push_tagged(
            3_500,
            (2, false),
            "cartouche",
            "r".into(),
            Tag::Requested(9),
        );
        n.push_tagged(3_600, (0, false), "ouroboros", "w".into(), Tag::WantsToken);
        n.push_tagged(
            3_600,
            (0, false),
            "cartouche",
            "r".into(),
            Tag::Requested(1),
        );
        let c: Vec<Vec<u64>> = n.lines().map(|l| l.causes.clone()).collect();
        assert_eq!(
            c,
            [vec![], vec![0], vec![0], vec![1], vec![], vec![3], vec![5]]
        );
        let chain: Vec<u64> = n.chain_of(6).iter().map(|l| l.id).collect();
        assert_eq!(chain, [0, 1, 3, 5, 6]);
        // Out of the window: no cause.
        let late = CAUSE_WINDOW_US + 10_000;
        n.push_tagged(late, (4, false), "sundial", "s".into(), Tag::Suspected(3));
        assert!(n.lines().last().unwrap().causes.is_empty());
        assert_eq!(n.line(4).unwrap().text, "r");
        assert!(n.line(99).is_none());
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
