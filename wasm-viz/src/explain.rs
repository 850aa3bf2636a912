//! Every message kind of every ring, in plain words: its name, its decoded
//! fields, and one sentence saying why it was sent (the page's message
//! inspector). Read-only decoding of payloads already in flight: nothing
//! here feeds back into the simulation.
//!
//! A kind's position in [`KINDS`] (per ring) is its variant index in the
//! ring's message enum: postcard writes that index first, so the kind of
//! any payload is one table look-up ([`kind_of`]); [`describe`] decodes the
//! whole message. A test decodes every index and checks the tables hold
//! exactly the enums' variants, in order.

use core::fmt::Write as _;

use shen_rings::cartouche::CartoucheMsg;
use shen_rings::ouroboros::{Epoch, MemberChange, OuroborosMsg};
use shen_rings::sundial::{Record, SundialMsg};
use shen_rings::toy::RelayMsg;

/// One message kind.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Kind {
    /// The ring (`sundial`, `cartouche`, `ouroboros`, `relay`).
    pub ring: &'static str,
    /// The kind (snake case of the variant).
    pub name: &'static str,
    /// Why it is sent, one sentence; `{from}` and `{to}` stand for the
    /// sender and the receiver.
    pub why: &'static str,
}

const fn k(ring: &'static str, name: &'static str, why: &'static str) -> Kind {
    Kind { ring, name, why }
}

/// The rings whose messages [`KINDS`] explains.
pub const RINGS: [&str; 4] = ["sundial", "cartouche", "ouroboros", "relay"];

/// Every message kind, per ring in the order of its enum's variants.
pub const KINDS: &[Kind] = &[
    // Sundial: gossip (push-pull of member records) and failure detection.
    k("sundial", "syn", "Node {from} starts a gossip round with node {to}: it sends the hash of its view, so {to} can tell at once whether their member lists differ."),
    k("sundial", "syn_ack", "Node {from}'s view differs from the one node {to} hashed, so it answers with a filter of the records it holds, for {to} to send what it lacks."),
    k("sundial", "pull", "Node {from} sends a filter of its own records so that node {to} sends back the records {from} is missing."),
    k("sundial", "delta", "Node {from} sends node {to} the member records it lacks (newest changes first): this is how a join, a suspicion or a death spreads."),
    k("sundial", "join", "Node {from} is new (or restarted) and introduces itself to node {to}, a known member, so gossip spreads its record."),
    k("sundial", "probe", "Node {from} monitors node {to} (one of its predecessors on the circle) and checks it is alive: a late answer raises the phi {from} computes for {to}."),
    k("sundial", "probe_ack", "Node {from} answers node {to}'s probe with its heartbeat: proof it is alive, which keeps its phi low at {to}."),
    k("sundial", "suspected", "Node {from} suspects node {to} and tells it directly, so that {to}, if alive, refutes at once by raising its incarnation."),
    // Cartouche: one token circulating clockwise, grants fenced by a majority.
    k("cartouche", "token", "Node {from} passes the token clockwise to node {to}, its next live member: whoever holds the token may grant the lock to the first request in its queue."),
    k("cartouche", "token_ack", "Node {from} confirms to node {to} that the token arrived, so {to} stops retrying the hand-off."),
    k("cartouche", "confirm", "Node {from} holds the token and, before granting, asks node {to} to accept the grant's fencing number: a majority must, so a stale token can never grant."),
    k("cartouche", "confirm_ack", "Node {from} answers node {to}'s confirmation: whether it accepts the fencing number, and the newest generation it promised."),
    k("cartouche", "pre_vote", "Node {from} has not seen the token for too long and asks node {to} whether it looks lost there too, before disturbing anyone."),
    k("cartouche", "pre_vote_reply", "Node {from} tells candidate node {to} whether the token looks lost from where it stands."),
    k("cartouche", "prepare", "Node {from} believes the token is lost and asks node {to} to promise a new, higher generation: with a majority of promises it creates a new token."),
    k("cartouche", "promise", "Node {from} answers node {to}'s candidacy: whether it promises the new generation, and its pending requests to carry into the new token."),
    k("cartouche", "want", "Node {from} wants the lock and tells node {to}: if {to} holds an idle token it sends it straight over instead of letting it walk the ring."),
    // Ouroboros: the Shen log, chain replication plus Paxos for its table.
    k("ouroboros", "prepare", "Node {from} reconfigures the log (the token's holder: after a failure, for a member change, or to move chains to new members) and asks node {to} to promise its ballot: Paxos phase 1."),
    k("ouroboros", "promise", "Node {from} promises node {to}'s ballot and reports its table and its logs, so the new chains keep every acknowledged record."),
    k("ouroboros", "seal", "Node {from} asks node {to}, the tail of a chain being replaced, to stop acknowledging in the old epoch and report how far it got."),
    k("ouroboros", "sealed", "Node {from}, a sealed tail, reports its final commit point and log length to configurator {to}."),
    k("ouroboros", "accept", "Node {from} proposes a new table of chains to node {to}: Paxos phase 2."),
    k("ouroboros", "accepted", "Node {from} accepts the proposed table of configurator {to}; with a majority, the table is chosen."),
    k("ouroboros", "nack", "Node {from} refuses node {to}'s ballot because it already promised a higher one."),
    k("ouroboros", "commit", "Node {from} tells node {to} that the new table is chosen: chains switch to their new epoch."),
    k("ouroboros", "table_query", "Node {from} (restarted, or having seen a newer epoch) asks node {to} for its table of chains."),
    k("ouroboros", "table_reply", "Node {from} answers node {to} with its table of chains and Paxos state."),
    k("ouroboros", "append", "Node {from} forwards records down its chain to its successor {to} (or, from the tail, to a learner catching up before it joins): a record is acknowledged only once the tail has it."),
    k("ouroboros", "sync", "Node {from} tells its predecessor {to} how many records it holds, so {to} resends from there (after a gap or a new chain)."),
    k("ouroboros", "ack", "Node {from} tells its predecessor {to}, up the chain, how far the tail has the log (the commit point) and how much it holds."),
    k("ouroboros", "client_append", "Client node {from} asks node {to}, the head of the key's chain, to append a record."),
    k("ouroboros", "append_reply", "Head node {from} answers client {to}: the record's offset once every chain member has it, or why it failed."),
    k("ouroboros", "client_read", "Client node {from} reads a partition from node {to}, its chain's tail, the one member that only holds committed records."),
    k("ouroboros", "read_reply", "Tail node {from} answers client {to} with the committed records it asked for, or why not."),
    k("ouroboros", "check", "Tail node {from} asks node {to} whether its epoch is still the newest for the partition, so it never serves reads from a replaced chain."),
    k("ouroboros", "check_reply", "Node {from} answers tail {to}: whether no newer epoch for the partition was accepted here."),
    k("ouroboros", "skip", "Retention deleted the records {to} still needs: node {from} tells it that its log now starts at its low watermark and everything below is committed, so {to} jumps there."),
    k("ouroboros", "intent", "Node {from} asks member {to} for a change of the log's member set (to join, to leave, or to remove a dead member); it repeats this until a committed table shows the change done."),
    // Relay: the toy ring of the scenarios.
    k("relay", "baton", "Node {from} passes the baton clockwise to node {to}, counting hops to make a lap."),
];

/// The kinds of `ring`, in its enum's variant order.
pub fn kinds_of(ring: &str) -> impl Iterator<Item = &'static Kind> + '_ {
    KINDS.iter().filter(move |k| k.ring == ring)
}

/// The kind of a payload of `ring` (one look-up: the variant index postcard
/// writes first).
pub fn kind_of(ring: &str, payload: &[u8]) -> Option<&'static Kind> {
    let i = *payload.first()?;
    if i >= 0x80 {
        return None;
    }
    kinds_of(ring).nth(usize::from(i))
}

/// The explanation of kind `name` of `ring`, with the sender and receiver
/// filled in.
pub fn why(ring: &str, name: &str, from: u64, to: u64) -> Option<String> {
    kinds_of(ring)
        .find(|k| k.name == name)
        .map(|k| fill(k.why, from, to))
}

fn fill(text: &str, from: u64, to: u64) -> String {
    text.replace("{from}", &from.to_string())
        .replace("{to}", &to.to_string())
}

/// A payload of `ring` decoded: its kind's name and its fields, as text.
/// `None` when the payload does not decode as that ring's message.
pub fn describe(ring: &str, payload: &[u8]) -> Option<(&'static str, String)> {
    match ring {
        "sundial" => postcard::take_from_bytes::<SundialMsg<u64>>(payload)
            .ok()
            .map(|(m, _)| sundial(&m)),
        "cartouche" => postcard::take_from_bytes::<CartoucheMsg<u64>>(payload)
            .ok()
            .map(|(m, _)| cartouche(&m)),
        "ouroboros" => postcard::take_from_bytes::<OuroborosMsg<u64>>(payload)
            .ok()
            .map(|(m, _)| ouroboros(&m)),
        "relay" => postcard::take_from_bytes::<RelayMsg>(payload)
            .ok()
            .map(|(m, _)| match m {
                RelayMsg::Baton { hops, lap } => ("baton", format!("lap {lap}, hop {hops}")),
            }),
        _ => None,
    }
}

/// Debug text cut to `max` characters.
fn short(v: &impl core::fmt::Debug, max: usize) -> String {
    let s = format!("{v:?}");
    if s.chars().count() <= max {
        s
    } else {
        let mut t: String = s.chars().take(max).collect();
        t.push('…');
        t
    }
}

fn records(rs: &[Record<u64>]) -> String {
    let mut s = format!("{} record(s):", rs.len());
    for r in rs.iter().take(8) {
        let _ = write!(
            s,
            " node {} {:?} inc {}{};",
            r.id,
            r.status,
            r.incarnation,
            if r.suspectors.is_empty() {
                String::new()
            } else {
                format!(" by {:?}", r.suspectors)
            }
        );
    }
    if rs.len() > 8 {
        s.push_str(" …");
    }
    s
}

fn sundial(m: &SundialMsg<u64>) -> (&'static str, String) {
    match m {
        SundialMsg::Syn {
            view_hash, size, ..
        } => ("syn", format!("view hash {view_hash:016x}, {size} records")),
        SundialMsg::SynAck { filter, .. } => (
            "syn_ack",
            format!(
                "filter of {} bytes, {} probes, slice {}/{}",
                filter.bits.len(),
                filter.k,
                filter.part,
                filter.parts
            ),
        ),
        SundialMsg::Pull { filter, .. } => (
            "pull",
            format!(
                "filter of {} bytes, {} probes, slice {}/{}",
                filter.bits.len(),
                filter.k,
                filter.part,
                filter.parts
            ),
        ),
        SundialMsg::Delta { records: rs, .. } => ("delta", records(rs)),
        SundialMsg::Join { record, .. } => ("join", records(core::slice::from_ref(record))),
        SundialMsg::Probe { seq, .. } => ("probe", format!("sequence {seq}")),
        SundialMsg::ProbeAck { seq, heartbeat, .. } => (
            "probe_ack",
            format!("answers probe {seq}, heartbeat {heartbeat}"),
        ),
        SundialMsg::Suspected { incarnation, .. } => (
            "suspected",
            format!("suspected at incarnation {incarnation}"),
        ),
    }
}

fn cartouche(m: &CartoucheMsg<u64>) -> (&'static str, String) {
    match m {
        CartoucheMsg::Token(t) => (
            "token",
            format!(
                "generation {}, last grant {}, hop {}, queue {}",
                t.generation,
                t.sequence,
                t.hops,
                if t.queue.is_empty() {
                    "empty".to_string()
                } else {
                    t.queue
                        .iter()
                        .map(|r| format!("node {}", r.node))
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            ),
        ),
        CartoucheMsg::TokenAck { generation, hops } => {
            ("token_ack", format!("generation {generation}, hop {hops}"))
        }
        CartoucheMsg::Confirm { fencing } => (
            "confirm",
            format!("fencing ({}, {})", fencing.generation, fencing.sequence),
        ),
        CartoucheMsg::ConfirmAck {
            fencing,
            ok,
            promised,
            confirmed,
        } => (
            "confirm_ack",
            format!(
                "fencing ({}, {}): {}; promised generation {promised}, highest confirmed ({}, {})",
                fencing.generation,
                fencing.sequence,
                if *ok { "accepted" } else { "refused" },
                confirmed.generation,
                confirmed.sequence
            ),
        ),
        CartoucheMsg::PreVote { generation } => {
            ("pre_vote", format!("would create generation {generation}"))
        }
        CartoucheMsg::PreVoteReply { generation, ok } => (
            "pre_vote_reply",
            format!(
                "generation {generation}: {}",
                if *ok {
                    "agrees it looks lost"
                } else {
                    "disagrees"
                }
            ),
        ),
        CartoucheMsg::Prepare { generation } => {
            ("prepare", format!("promise generation {generation}?"))
        }
        CartoucheMsg::Promise {
            generation,
            ok,
            promised,
            requests,
            ..
        } => (
            "promise",
            format!(
                "generation {generation}: {}; promised {promised}; {} pending request(s)",
                if *ok { "promised" } else { "refused" },
                requests.len()
            ),
        ),
        CartoucheMsg::Want { request } => (
            "want",
            format!(
                "request {} of node {} ({})",
                request.id, request.node, request.name
            ),
        ),
    }
}

fn ouroboros(m: &OuroborosMsg<u64>) -> (&'static str, String) {
    let ep = |e: &Epoch| format!("{}.{}", e.generation, e.sequence);
    match m {
        OuroborosMsg::Prepare { ballot } => ("prepare", format!("ballot {}", ep(ballot))),
        OuroborosMsg::Promise { ballot, stale, reports, .. } => (
            "promise",
            format!(
                "ballot {}; {} partition report(s), {} stale",
                ep(ballot),
                reports.len(),
                stale.len()
            ),
        ),
        OuroborosMsg::Seal { ballot, p, epoch } => (
            "seal",
            format!(
                "partition {p}: seal epoch {} (ballot {})",
                ep(epoch),
                ep(ballot)
            ),
        ),
        OuroborosMsg::Sealed { p, info, .. } => (
            "sealed",
            format!("partition {p}: commit {}, length {}", info.commit, info.len),
        ),
        OuroborosMsg::Accept { table } => ("accept", short(table, 240)),
        OuroborosMsg::Accepted { ballot } => ("accepted", format!("ballot {}", ep(ballot))),
        OuroborosMsg::Nack { ballot, promised } => (
            "nack",
            format!(
                "ballot {} refused: promised {}",
                ep(ballot),
                ep(promised)
            ),
        ),
        OuroborosMsg::Commit { table } => ("commit", short(table, 240)),
        OuroborosMsg::TableQuery => ("table_query", "no fields".into()),
        OuroborosMsg::TableReply { state } => ("table_reply", short(state, 240)),
        OuroborosMsg::Append {
            p,
            epoch,
            start,
            entries,
            commit,
            ..
        } => (
            "append",
            format!(
                "partition {p}, epoch {}: {} record(s) from offset {start}, sender's commit {commit}",
                ep(epoch),
                entries.len()
            ),
        ),
        OuroborosMsg::Sync { p, epoch, len } => (
            "sync",
            format!("partition {p}, epoch {}: holds {len}", ep(epoch)),
        ),
        OuroborosMsg::Skip { p, epoch, low, .. } => (
            "skip",
            format!("partition {p}, epoch {}: my log starts at {low}", ep(epoch)),
        ),
        OuroborosMsg::Ack { p, epoch, upto, held } => (
            "ack",
            format!(
                "partition {p}, epoch {}: committed {upto}, holds {held}",
                ep(epoch)
            ),
        ),
        OuroborosMsg::ClientAppend { p, req, key, data, .. } => (
            "client_append",
            format!(
                "partition {p}, request {req}, key \"{}\", {} byte(s): \"{}\"",
                String::from_utf8_lossy(key),
                data.len(),
                String::from_utf8_lossy(&data[..data.len().min(40)])
            ),
        ),
        OuroborosMsg::AppendReply { req, result, .. } => (
            "append_reply",
            match result {
                Ok((offset, _)) => format!("request {req}: appended at offset {offset}"),
                Err(e) => format!("request {req}: failed ({})", short(e, 120)),
            },
        ),
        OuroborosMsg::ClientRead { p, req, from, max, .. } => (
            "client_read",
            format!("partition {p}, request {req}: up to {max} record(s) from offset {from}"),
        ),
        OuroborosMsg::ReadReply { req, result } => (
            "read_reply",
            match result {
                Ok((rs, committed)) => {
                    format!("request {req}: {} record(s), committed {committed}", rs.len())
                }
                Err(e) => format!("request {req}: failed ({})", short(e, 120)),
            },
        ),
        OuroborosMsg::Check {
            p,
            epoch,
            nonce,
            members_version,
        } => (
            "check",
            format!(
                "partition {p}, epoch {}, member set v{members_version} (nonce {nonce})",
                ep(epoch)
            ),
        ),
        OuroborosMsg::CheckReply { nonce, ok } => (
            "check_reply",
            format!(
                "nonce {nonce}: {}",
                if *ok { "still the newest" } else { "a newer epoch exists" }
            ),
        ),
        OuroborosMsg::Intent { change } => (
            "intent",
            match change {
                MemberChange::Join(n) => format!("please add node {n} to the members"),
                MemberChange::Leave(n) => format!("node {n} wants to leave: move its partitions away"),
                MemberChange::Remove(n) => format!("please remove node {n}"),
            },
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_message_kind_of_every_ring_has_an_explanation() {
        for ring in RINGS {
            let kinds: Vec<&Kind> = kinds_of(ring).collect();
            assert!(!kinds.is_empty(), "{ring}");
            // Variant i decodes (from zeroed fields) to the i-th kind; the
            // index after the last does not decode: the table holds exactly
            // the enum's variants, in order.
            for i in 0..=kinds.len() {
                let mut payload = vec![i as u8];
                payload.extend([0u8; 64]);
                let got = describe(ring, &payload);
                if i == kinds.len() {
                    assert!(got.is_none(), "{ring}: a variant {i} beyond the table");
                    continue;
                }
                let (name, fields) = got.unwrap_or_else(|| panic!("{ring}: variant {i}"));
                assert_eq!(name, kinds[i].name, "{ring} variant {i}");
                assert!(!fields.is_empty());
                assert_eq!(kind_of(ring, &payload), Some(kinds[i]));
                let why = why(ring, name, 3, 7).unwrap();
                assert!(
                    why.ends_with('.') && why.contains('3') && why.contains('7'),
                    "{ring}.{name}: {why}"
                );
                assert!(!why.contains('{'), "{ring}.{name}: {why}");
            }
        }
        // Names are unique within a ring.
        for ring in RINGS {
            let mut names: Vec<&str> = kinds_of(ring).map(|k| k.name).collect();
            let n = names.len();
            names.sort_unstable();
            names.dedup();
            assert_eq!(names.len(), n, "{ring}");
        }
        assert!(KINDS.iter().all(|k| RINGS.contains(&k.ring)));
        assert_eq!(kind_of("sundial", &[]), None);
        assert_eq!(kind_of("nope", &[0]), None);
    }

    #[test]
    fn real_messages_are_described() {
        let probe = postcard::to_allocvec(&SundialMsg::<u64>::Probe {
            cluster: 1,
            seq: 42,
        })
        .unwrap();
        assert_eq!(
            describe("sundial", &probe),
            Some(("probe", "sequence 42".to_string()))
        );
        assert_eq!(kind_of("sundial", &probe).map(|k| k.name), Some("probe"));
        let tok = postcard::to_allocvec(&CartoucheMsg::<u64>::TokenAck {
            generation: 2,
            hops: 9,
        })
        .unwrap();
        assert_eq!(
            describe("cartouche", &tok),
            Some(("token_ack", "generation 2, hop 9".to_string()))
        );
        assert_eq!(describe("sundial", &[0xff, 0xff]), None);
    }
}
