//! Live mode: a real cluster drawn like the simulator. The page polls a
//! running `shen run` node's admin API (`GET /status`, JSON) and follows its
//! ring events (`GET /events`, Server-Sent Events: one `{"time_ms","name",
//! "event"}` object per line); this module turns both into the same kind
//! of shapes [`crate::render`] draws for a simulated world, and a running
//! cluster into a simulator link ("fork": a world that starts from the
//! cluster's members, Sundial states, chains and epochs, to try a what-if;
//! see [`fork_hash`]).
//!
//! The document is `shen-api`'s [`StatusDoc`], the one definition the node
//! writes: tolerant of fields it does not know (the status document may
//! grow) and strict about the ones it draws. A malformed document is an
//! error naming what is wrong and where, never a panic.

use core::f64::consts::{PI, TAU};

use serde::Serialize;
use serde_json::Value;
use shen_api::StatusDoc;
use shen_rings::hash::hash_bytes;

use crate::log::LOG_MAX_NODES;
use crate::render::{chain_arrows, chain_role, node_color, phi_color, Layout, Shape, CHAIN_COLOR};
use crate::script::{Action, Op, UrlParams, MAX_URL_CHAINS};
use crate::world::MAX_VIZ_NODES;
use shen_rings::cartouche::Fencing;
use shen_rings::ouroboros::FoundingChain;

/// Default phi threshold of Sundial (what the node colour is scaled to).
pub const PHI_THRESHOLD: f64 = 8.0;
/// How long an event keeps its member highlighted, ms.
pub const FLASH_MS: f64 = 1_500.0;

/// One member as the polled node's Sundial view has it.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LiveMember {
    /// Its peer id (text).
    pub id: String,
    /// Whether it is the polled node.
    pub me: bool,
    /// `alive`, `suspect`, `dead` or `left`.
    pub status: String,
    /// Its incarnation.
    pub incarnation: u64,
    /// The phi the polled node computes for it (if it monitors it).
    pub phi: Option<f64>,
    /// Its share of the Ankh ring (0..1), if placed.
    pub ownership: Option<f64>,
}

/// One partition's chain in the polled node's table.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct LiveChain {
    /// The partition.
    pub partition: u32,
    /// Its epoch (`generation.sequence`).
    pub epoch: String,
    /// Head first.
    pub members: Vec<String>,
    /// The polled node's log length for it (if it holds a replica).
    pub local_len: Option<u64>,
    /// The polled node's commit point for it.
    pub committed: Option<u64>,
}

/// The polled node's `/status`, as drawn.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
pub struct LiveStatus {
    /// The polled node's peer id.
    pub peer_id: String,
    /// `ok`, `degraded`, `alone`, ...
    pub health: String,
    /// Every member of its view.
    pub members: Vec<LiveMember>,
    /// The log's chains (empty when the node runs no log or it has not
    /// formed).
    pub chains: Vec<LiveChain>,
}

fn text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => String::new(),
        other => other.to_string(),
    }
}

/// A serde enum's word (`alive`, `degraded`...).
fn word<T: Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .as_ref()
        .map(text)
        .unwrap_or_default()
}

/// Why a `/status` document does not decode, in words: where, and what.
fn status_error(e: serde_path_to_error::Error<serde_json::Error>) -> String {
    let path = e.path().to_string();
    let inner = e.into_inner();
    if !inner.is_data() {
        return format!("/status is not JSON: {inner}");
    }
    let msg = inner.to_string();
    let msg = msg.split(" at line ").next().unwrap_or(&msg).to_string();
    if path == "." {
        if msg.contains("expected struct") {
            return "/status is not a JSON object".into();
        }
        if let Some(field) = msg.strip_prefix("missing field ") {
            return format!("/status has no {field}");
        }
        return format!("/status: {msg}");
    }
    if let Some(field) = msg.strip_prefix("missing field ") {
        return format!("/status: {path} has no {field}");
    }
    if msg.contains("expected a sequence") {
        return format!("/status: `{path}` is not a list");
    }
    format!("/status: {path}: {msg}")
}

/// Parse a `/status` document (a [`shen_api::StatusDoc`]).
///
/// # Errors
/// Not JSON, not an object, or a field of the wrong type (a `members`
/// entry without an `id`, ...), named by its path.
pub fn parse_status(json: &str) -> Result<LiveStatus, String> {
    // serde also reads a struct from a JSON list: only objects are documents.
    if !json.trim_start().starts_with('{') {
        return Err(match serde_json::from_str::<serde::de::IgnoredAny>(json) {
            Ok(_) => "/status is not a JSON object".into(),
            Err(e) => format!("/status is not JSON: {e}"),
        });
    }
    let mut de = serde_json::Deserializer::from_str(json);
    let doc: StatusDoc = serde_path_to_error::deserialize(&mut de).map_err(status_error)?;
    de.end().map_err(|e| format!("/status is not JSON: {e}"))?;
    Ok(LiveStatus::from(&doc))
}

impl From<&StatusDoc> for LiveStatus {
    fn from(doc: &StatusDoc) -> LiveStatus {
        LiveStatus {
            peer_id: doc.peer_id.clone(),
            health: doc.health.as_ref().map(word).unwrap_or_default(),
            members: doc
                .members()
                .iter()
                .map(|m| LiveMember {
                    id: m.id.clone(),
                    me: m.is_self,
                    status: word(&m.status),
                    incarnation: m.incarnation,
                    phi: m.phi.filter(|p| p.is_finite()),
                    ownership: m.ownership,
                })
                .collect(),
            chains: doc
                .log
                .chains
                .iter()
                .map(|c| LiveChain {
                    partition: c.partition,
                    epoch: c.epoch.clone(),
                    members: c.members.clone(),
                    local_len: Some(c.local_len).filter(|_| c.here),
                    committed: Some(c.committed).filter(|_| c.here),
                })
                .collect(),
        }
    }
}

/// One event line of `/events`: its name, time, and the members of
/// `known` its payload mentions (any string equal to a member id).
///
/// # Errors
/// Not JSON, or no `name`.
pub fn parse_event(line: &str, known: &[String]) -> Result<(String, u64, Vec<String>), String> {
    let v: Value = serde_json::from_str(line).map_err(|e| format!("event is not JSON: {e}"))?;
    let name = v
        .get("name")
        .and_then(Value::as_str)
        .ok_or("event has no `name`")?
        .to_string();
    let time = v.get("time_ms").and_then(Value::as_u64).unwrap_or(0);
    let mut found = Vec::new();
    let mut stack = vec![v.get("event").cloned().unwrap_or(Value::Null)];
    while let Some(x) = stack.pop() {
        match x {
            Value::String(s) if known.contains(&s) && !found.contains(&s) => found.push(s),
            Value::Array(a) => stack.extend(a),
            Value::Object(o) => stack.extend(o.into_iter().map(|(_, v)| v)),
            _ => {}
        }
    }
    Ok((name, time, found))
}

/// The colour an event of `name` flashes its members with.
pub fn event_color(name: &str) -> &'static str {
    match name.split('.').next().unwrap_or("") {
        "sundial" => "#ff9800",
        "cartouche" => "#ffd700",
        "ouroboros" => CHAIN_COLOR,
        _ => "#ffffff",
    }
}

/// The simulator link a live cluster forks into: the world starts where
/// the cluster is, as the polled node sees it.
/// - **Members:** as many nodes (at least one, at most the page's limit),
///   node `i` being the `i`-th member of the polled node's view.
/// - **Sundial states:** members it holds dead or left are down from the
///   start (crashed at 0 ms) and every view holds them dead (`down=`).
/// - **Chains and epochs:** a cluster running the log (3 to
///   [`LOG_MAX_NODES`] nodes) forks into a log world whose founding table
///   is the cluster's: every partition's chain, head first, with its epoch
///   (`chains=`), so the sim's rounds continue from there. Chain members
///   the fork has no node for are left out; if a chain is then empty, or
///   an epoch is not `G.S`, the log world starts from Ankh's placement.
///
/// Records are not copied: the forked log starts empty.
pub fn fork_hash(status: &LiveStatus, seed: u64) -> String {
    let n = (status.members.len() as u64).clamp(1, MAX_VIZ_NODES);
    let kept = &status.members[..status.members.len().min(n as usize)];
    let index = |id: &str| kept.iter().position(|m| m.id == id).map(|i| i as u32);
    let mut p = UrlParams {
        seed,
        nodes: n,
        ..UrlParams::default()
    };
    p.start.down = kept
        .iter()
        .enumerate()
        .filter(|(_, m)| m.status == "dead" || m.status == "left")
        .map(|(i, _)| i as u32)
        .collect();
    let log = !status.chains.is_empty() && (3..=LOG_MAX_NODES).contains(&n);
    if log {
        p.rings = Some(
            ["sundial", "cartouche", "ouroboros"]
                .map(String::from)
                .to_vec(),
        );
        let mut sorted: Vec<&LiveChain> = status.chains.iter().collect();
        sorted.sort_by_key(|c| c.partition);
        let chains: Option<Vec<FoundingChain>> = sorted
            .iter()
            .enumerate()
            .map(|(i, c)| {
                let (g, q) = c.epoch.split_once('.')?;
                let members: Vec<u32> = c.members.iter().filter_map(|m| index(m)).collect();
                (c.partition as usize == i && !members.is_empty()).then_some(())?;
                Some(FoundingChain {
                    epoch: Fencing {
                        generation: g.parse().ok()?,
                        sequence: q.parse().ok()?,
                    },
                    members,
                })
            })
            .collect();
        if let Some(chains) = chains.filter(|c| c.len() <= MAX_URL_CHAINS) {
            p.start.chains = chains;
        }
    }
    p.faults = p
        .start
        .down
        .iter()
        .map(|&d| Action {
            at_us: 0,
            op: Op::Crash(u64::from(d)),
        })
        .collect();
    p.to_hash()
}

fn short(id: &str) -> String {
    let n = id.chars().count();
    if n <= 8 {
        id.to_string()
    } else {
        format!("…{}", id.chars().skip(n - 6).collect::<String>())
    }
}

/// Where member `id` is drawn: at the angle of the hash of its id.
pub fn member_pos(lay: &Layout, id: &str) -> (f64, f64) {
    let a = Layout::angle_of_hash(hash_bytes(id.as_bytes()));
    (lay.cx + lay.radius * a.cos(), lay.cy + lay.radius * a.sin())
}

/// The scene of a live cluster: members on the circle (fill: phi; rings:
/// suspect orange, dead dark red, the polled node white), each member's
/// Ankh share as an arc of its colour, the chain of log partition
/// `partition` when the cluster runs the log, and `flashes` (member,
/// colour, age in ms) fading out over [`FLASH_MS`].
pub fn live_scene(
    status: &LiveStatus,
    width: f64,
    height: f64,
    partition: Option<u32>,
    flashes: &[(String, &'static str, f64)],
) -> Vec<Shape> {
    let n = status.members.len() as u64;
    let lay = Layout::new(width, height, n);
    let mut out = Vec::new();
    // Ownership: one arc per member, as long as its share, where it sits.
    let ring_r = lay.radius * 0.72;
    out.push(Shape::Arc {
        r: ring_r,
        a0: 0.0,
        a1: TAU,
        width: (lay.radius * 0.07).max(3.0),
        color: "#2a2f3a".into(),
    });
    for m in &status.members {
        let Some(share) = m.ownership.filter(|s| *s > 0.0) else {
            continue;
        };
        let a = Layout::angle_of_hash(hash_bytes(m.id.as_bytes()));
        out.push(Shape::Arc {
            r: ring_r,
            a0: a - share * PI,
            a1: a + share * PI,
            width: (lay.radius * 0.07).max(3.0),
            color: node_color(hash_bytes(m.id.as_bytes()) % 360),
        });
    }
    let chain = partition.and_then(|p| status.chains.iter().find(|c| c.partition == p));
    if let Some(c) = chain {
        let pts: Vec<(f64, f64)> = c.members.iter().map(|m| member_pos(&lay, m)).collect();
        chain_arrows(&pts, lay.node_r + 7.0, &mut out);
        let (left, mut y) = (12.0, 18.0);
        out.push(Shape::Label {
            x: left,
            y,
            text: format!("live log partition {} · epoch {}", c.partition, c.epoch),
            color: "#e0f7fa".into(),
        });
        for (i, m) in c.members.iter().enumerate() {
            y += 20.0;
            let here = status.members.iter().any(|x| x.me && x.id == *m);
            let mut t = format!("{} {}", chain_role(i, c.members.len()), short(m));
            if let (true, Some(len), Some(commit)) = (here, c.local_len, c.committed) {
                t.push_str(&format!(" (polled: len {len} · commit {commit})"));
            }
            out.push(Shape::Label {
                x: left,
                y,
                text: t,
                color: "#cfd8dc".into(),
            });
        }
    }
    for m in &status.members {
        let (x, y) = member_pos(&lay, &m.id);
        let r = lay.node_r;
        let dead = matches!(m.status.as_str(), "dead" | "left");
        let fill = if dead {
            "#555".to_string()
        } else {
            phi_color(m.phi.unwrap_or(0.0), PHI_THRESHOLD)
        };
        let stroke = match m.status.as_str() {
            "suspect" => Some(("#ff9800".to_string(), (r * 0.3).max(1.5))),
            "dead" | "left" => Some(("#b71c1c".to_string(), (r * 0.35).max(1.5))),
            _ => None,
        };
        out.push(Shape::Circle {
            x,
            y,
            r,
            fill: Some(fill),
            stroke,
        });
        if m.me {
            out.push(Shape::Circle {
                x,
                y,
                r: r + 6.0,
                fill: None,
                stroke: Some(("#ffffff".into(), 1.5)),
            });
        }
        for (who, color, age) in flashes {
            if *who == m.id && *age < FLASH_MS {
                let k = 1.0 - age / FLASH_MS;
                out.push(Shape::Circle {
                    x,
                    y,
                    r: r + 4.0 + 10.0 * (1.0 - k),
                    fill: None,
                    stroke: Some(((*color).to_string(), 3.0 * k + 0.5)),
                });
            }
        }
        if let Some(c) = chain {
            if let Some(i) = c.members.iter().position(|x| *x == m.id) {
                let (dx, dy) = (lay.cx - x, lay.cy - y);
                let len = (dx * dx + dy * dy).sqrt().max(1.0);
                out.push(Shape::Text {
                    x: x + dx / len * (r + 16.0),
                    y: y + dy / len * (r + 16.0),
                    text: chain_role(i, c.members.len()).into(),
                    color: CHAIN_COLOR.into(),
                });
            }
        }
        if n <= 40 {
            let (dx, dy) = (x - lay.cx, y - lay.cy);
            let len = (dx * dx + dy * dy).sqrt().max(1.0);
            let phi = m.phi.map_or(String::new(), |p| format!(" φ{p:.1}"));
            out.push(Shape::Text {
                x: x + dx / len * (r + 22.0),
                y: y + dy / len * (r + 22.0),
                text: format!("{}{phi}", short(&m.id)),
                color: "#cfd8dc".into(),
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const STATUS: &str = r#"{
        "schema": 1, "peer_id": "12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1111",
        "health": "degraded",
        "members": [
            {"id": "12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1111", "self": true, "status": "alive", "incarnation": 1, "phi": null, "ownership": 0.4},
            {"id": "peer-b", "self": false, "status": "suspect", "incarnation": 3, "phi": 9.5, "ownership": 0.3, "extra": [1, 2]},
            {"id": "peer-c", "self": false, "status": "dead", "incarnation": 2, "phi": null, "ownership": null}
        ],
        "log": {"formed": true, "partitions": 2, "chains": [
            {"partition": 0, "epoch": "3.1", "members": ["peer-b", "12D3KooWAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA1111"], "here": true, "local_len": 5, "committed": 4},
            {"partition": 1, "epoch": "3.1", "members": ["peer-c"], "here": false, "local_len": 0, "committed": 0}
        ]}
    }"#;

    #[test]
    fn a_status_document_is_parsed_and_drawn() {
        let s = parse_status(STATUS).unwrap();
        assert_eq!(s.members.len(), 3);
        assert!(s.members[0].me && !s.members[1].me);
        assert_eq!(s.members[1].status, "suspect");
        assert_eq!(s.members[1].phi, Some(9.5));
        assert_eq!(s.members[2].phi, None);
        assert_eq!(s.chains.len(), 2);
        assert_eq!(
            (s.chains[0].local_len, s.chains[0].committed),
            (Some(5), Some(4))
        );
        assert_eq!(s.chains[1].local_len, None, "not a replica here");
        let shapes = live_scene(
            &s,
            760.0,
            620.0,
            Some(0),
            &[("peer-b".into(), "#ff9800", 100.0)],
        );
        let lay = Layout::new(760.0, 620.0, 3);
        let (bx, by) = member_pos(&lay, "peer-b");
        // The suspect is orange-ringed and red-filled (phi over threshold).
        assert!(shapes.iter().any(
            |x| matches!(x, Shape::Circle { x: cx, y: cy, fill: Some(f), stroke: Some((c, _)), .. }
            if *cx == bx && *cy == by && f == "hsl(0,80%,45%)" && c == "#ff9800")
        ));
        // The flash, the chain arrow (line + head) and the panel.
        assert!(shapes.iter().any(
            |x| matches!(x, Shape::Circle { x: cx, fill: None, stroke: Some((c, _)), r, .. }
            if *cx == bx && c == "#ff9800" && *r > lay.node_r + 4.0)
        ));
        let arrows = shapes
            .iter()
            .filter(|x| matches!(x, Shape::Line { color, .. } if color == CHAIN_COLOR))
            .count();
        assert_eq!(arrows, 3);
        assert!(shapes.iter().any(
            |x| matches!(x, Shape::Label { text, .. } if text.contains("polled: len 5 · commit 4"))
        ));
        // Two ownership arcs (the dead member has none) and the track.
        assert_eq!(
            shapes
                .iter()
                .filter(|x| matches!(x, Shape::Arc { .. }))
                .count(),
            3
        );
        // A fork starts where the cluster is: as many nodes, the dead one
        // down and held dead, the log's chains with their epochs.
        assert_eq!(
            fork_hash(&s, 9),
            "seed=9&nodes=3&rings=sundial,cartouche,ouroboros&down=2&chains=3.1:1-0,3.1:2\
             &faults=0:crash:2"
        );
        let plain = LiveStatus {
            chains: vec![],
            ..s.clone()
        };
        assert_eq!(
            fork_hash(&plain, 9),
            "seed=9&nodes=3&down=2&faults=0:crash:2"
        );
        assert_eq!(fork_hash(&LiveStatus::default(), 1), "seed=1&nodes=1");
        // An epoch the fork cannot read: the log starts from Ankh's table.
        let mut odd = s.clone();
        odd.chains[1].epoch = "new".into();
        assert!(!fork_hash(&odd, 9).contains("chains="));
    }

    /// The forked world runs from the cluster's state: its founding table
    /// is the cluster's chains and epochs, every view holds the dead
    /// member dead from the first instant, and the log carries on from
    /// there: the chain with the dead member is re-formed without it under
    /// a newer ballot, and appends commit.
    #[test]
    fn a_fork_starts_from_the_cluster_and_carries_on() {
        use crate::world::{VizConfig, World};
        use shen_rings::ouroboros::Ouroboros;
        use shen_rings::sundial::{Status, Sundial};
        use shen_rings::Time;

        let mut s = parse_status(STATUS).unwrap();
        s.chains[0].epoch = "131073.4".into();
        s.chains[1].members = vec!["peer-c".into(), "peer-b".into()];
        let hash = fork_hash(&s, 9);
        let p = UrlParams::parse(&hash).unwrap();
        let mut w = World::with_script(VizConfig::from_url(&p).unwrap(), p.faults.clone()).unwrap();
        w.run_to(Time::from_millis(1)).unwrap();
        let table = |w: &World, n: u64| {
            w.sim()
                .node(n)
                .and_then(|x| x.ring::<Ouroboros<u64>>())
                .map(|o| o.table().clone())
                .unwrap()
        };
        let t = table(&w, 0);
        assert_eq!(t.chains.len(), 2);
        assert_eq!(t.chains[0].members, vec![1, 0]);
        assert_eq!(
            (t.chains[0].epoch.generation, t.chains[0].epoch.sequence),
            (131_073, 4)
        );
        assert_eq!(t.chains[1].members, vec![2, 1]);
        assert_eq!(table(&w, 1), t, "every node starts from the same table");
        let mut first =
            World::with_script(VizConfig::from_url(&p).unwrap(), p.faults.clone()).unwrap();
        first.run_to(Time::from_millis(100)).unwrap();
        let up: Vec<bool> = first.observation().nodes.iter().map(|n| n.up).collect();
        assert_eq!(up, [true, true, false], "node 2 is down from the start");
        for n in [0, 1] {
            let view = w
                .sim()
                .node(n)
                .and_then(|x| x.ring::<Sundial<u64>>())
                .unwrap();
            assert_eq!(
                view.record(&2).map(|r| r.status),
                Some(Status::Dead),
                "node {n} holds node 2 dead from the start"
            );
        }
        // Faults only, the fork is the scenario it exports: `shen sim run`
        // replays it to the same trace hash.
        let mut quiet =
            World::with_script(VizConfig::from_url(&p).unwrap(), p.faults.clone()).unwrap();
        quiet.run_to(Time::from_millis(3_000)).unwrap();
        let toml = quiet.scenario().unwrap().to_toml().unwrap();
        assert!(toml.contains("[stack.start]"), "{toml}");
        assert_eq!(crate::trace_hash(&toml, 9).unwrap(), quiet.trace_hash());
        w.act(crate::script::Op::Append {
            node: 0,
            key: "k".into(),
        })
        .unwrap();
        w.run_to(Time::from_millis(8_000)).unwrap();
        let after = table(&w, 0);
        assert!(
            after.ballot > t.ballot,
            "{:?} then {:?}",
            t.ballot,
            after.ballot
        );
        assert!(
            after.chains[1].members.iter().all(|m| *m != 2)
                && after.chains[1].epoch > t.chains[0].epoch
                && after.chains[0].epoch == t.chains[0].epoch,
            "{:?}",
            after.chains
        );
        let book = w.log_book().unwrap();
        assert!(
            book.ops().iter().all(|o| o.done_us.is_some()),
            "the append completed: {:?}",
            book.ops()
        );
        assert_eq!(w.invariants().first_violation_us(), None);
    }

    /// A start that does not fit the world is a clear error, not a
    /// silently different run.
    #[test]
    fn a_start_that_does_not_fit_is_refused() {
        use crate::world::VizConfig;
        let log = "nodes=3&rings=sundial,cartouche,ouroboros";
        for (hash, want) in [
            ("nodes=3&down=5".to_string(), "down node 5 of 3 nodes"),
            ("nodes=3&chains=1.1:0".into(), "only a log world"),
            (format!("{log}&chains=1.1:0-3"), "names node 3, of 3 nodes"),
            (format!("{log}&chains=1.1:0-0"), "names a node twice"),
            ("nodes=3&rings=cartouche&down=1".into(), "need Sundial"),
        ] {
            let p = UrlParams::parse(&hash).unwrap();
            let e = VizConfig::from_url(&p).unwrap_err();
            assert!(e.contains(want), "{hash}: {e}");
        }
    }

    #[test]
    fn bad_documents_are_errors_not_panics() {
        for (bad, want) in [
            ("", "not JSON"),
            ("<html>", "not JSON"),
            ("[1]", "not a JSON object"),
            (r#"{"members": 3}"#, "`members` is not a list"),
            (
                r#"{"members": [{"status": "alive"}]}"#,
                "members[0] has no `id`",
            ),
        ] {
            let e = parse_status(bad).unwrap_err();
            assert!(e.contains(want), "{bad}: {e}");
        }
        // Unknown fields and a missing log are fine.
        let s = parse_status(r#"{"peer_id": "x", "new_field": {}}"#).unwrap();
        assert!(s.members.is_empty() && s.chains.is_empty());
        assert!(live_scene(&s, 10.0, 10.0, Some(3), &[]).len() == 1);
    }

    #[test]
    fn events_name_the_members_they_mention() {
        let known = vec!["peer-b".to_string(), "peer-c".to_string()];
        let (name, t, who) = parse_event(
            r#"{"time_ms": 1200, "name": "sundial.suspected", "event": {"Sundial": {"Suspected": {"member": "peer-c", "by": ["peer-b", "zz"]}}}}"#,
            &known,
        )
        .unwrap();
        assert_eq!((name.as_str(), t), ("sundial.suspected", 1200));
        let mut who = who;
        who.sort();
        assert_eq!(who, known);
        assert_eq!(event_color(&name), "#ff9800");
        assert!(parse_event("nope", &known)
            .unwrap_err()
            .contains("not JSON"));
        assert!(parse_event("{}", &known).unwrap_err().contains("no `name`"));
    }
}
