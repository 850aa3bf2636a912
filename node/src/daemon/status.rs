//! The `/status` document of a running node, built from its rings and the transport's view.

use shen_api::{
    AnkhDoc, ChainDoc, ClusterHealth, LogDoc, LogStatsDoc, MemberDoc, MemberStatus, NetDoc,
    PeerConnDoc, RebalanceDoc, ShareDoc, StatusDoc, SundialStatsDoc, STATUS_SCHEMA,
};
use shen_rings::ankh::{AnkhConfig, AnkhRing};
use shen_rings::ouroboros::{Epoch, FsyncPolicy, MemberChange, Ouroboros, OuroborosStats};
use shen_rings::sundial::{Status, SundialStats};
use shen_rings::{Node, Time};
use shen_transport_libp2p::{NetView, PeerKey};

use super::host::sundial_of;
use super::Event;

/// An epoch as text: `generation.sequence` of its Cartouche fencing number.
pub fn epoch_text(e: Epoch) -> String {
    format!("{}.{}", e.generation, e.sequence)
}

fn fsync_word(p: FsyncPolicy) -> &'static str {
    match p {
        FsyncPolicy::Every => "every",
        FsyncPolicy::Batch => "batch",
        FsyncPolicy::Never => "never",
    }
}

fn member_status(s: Status) -> MemberStatus {
    match s {
        Status::Alive => MemberStatus::Alive,
        Status::Suspect => MemberStatus::Suspect,
        Status::Dead => MemberStatus::Dead,
        Status::Left => MemberStatus::Left,
    }
}

fn sundial_stats(s: &SundialStats) -> SundialStatsDoc {
    SundialStatsDoc {
        suspicions_raised: s.suspicions_raised,
        refutations: s.refutations,
        foreign_dropped: s.foreign_dropped,
    }
}

fn log_stats(s: &OuroborosStats) -> LogStatsDoc {
    LogStatsDoc {
        head_appends: s.head_appends,
        deduplicated: s.deduplicated,
        epoch_rejects: s.epoch_rejects,
        truncations: s.truncations,
        tables: s.tables,
        slow_marked: s.slow_marked,
        unsealed: s.unsealed,
        txn_committed: s.txn_committed,
        txn_aborted: s.txn_aborted,
        txn_resolved: s.txn_resolved,
    }
}

fn net_doc(view: &NetView) -> NetDoc {
    NetDoc {
        peer_id: view.peer_id.clone(),
        listen_addrs: view.listen_addrs.clone(),
        external_addrs: view.external_addrs.clone(),
        connected: view.connected.clone(),
        private: view.private,
        uptime_s: view.uptime_s,
        reachability: view.reachability.clone(),
        peers: view
            .peers
            .iter()
            .map(|p| PeerConnDoc {
                peer_id: p.peer_id.clone(),
                kind: p.kind.clone(),
            })
            .collect(),
        relays: view.relays.clone(),
    }
}

/// The `log` section.
pub fn log_doc(node: &Node<PeerKey, Event>, expect: Option<usize>) -> LogDoc {
    let Some(o) = node.ring::<Ouroboros<PeerKey>>() else {
        return LogDoc::not_formed(expect);
    };
    let me = *node.id();
    let table = o.table();
    let chains = table
        .chains
        .iter()
        .enumerate()
        .map(|(p, c)| ChainDoc {
            partition: p as u32,
            epoch: epoch_text(c.epoch),
            members: c.members.iter().map(|m| m.to_string()).collect(),
            learners: c.learners.iter().map(|m| m.to_string()).collect(),
            here: c.members.contains(&me) || c.learners.contains(&me),
            local_len: o.log_len(p as u32),
            committed: o.committed(p as u32),
            low_watermark: o.low_watermark(p as u32),
            high_watermark: o.log_len(p as u32),
            held_bytes: o.held_bytes(p as u32),
            disk_bytes: None,
        })
        .collect();
    LogDoc {
        formed: true,
        expect,
        recovered: Some(o.is_recovered()),
        restored: Some(o.is_restored()),
        fsync: o.fsync_policy().map(|p| fsync_word(p).to_string()),
        storage_failed: Some(o.storage_failed()),
        storage_error: o.storage_failure().map(str::to_string),
        members: o.members().iter().map(|m| m.to_string()).collect(),
        members_version: Some(o.member_set().version),
        leaving: o
            .member_set()
            .leaving
            .iter()
            .map(|m| m.to_string())
            .collect(),
        member: Some(o.member_set().contains(&me)),
        pending_changes: o.own_intents().map(change_text).collect(),
        shares: shares(o),
        rebalance: Some(rebalance(o, &me)),
        partitions: Some(o.config().partitions),
        rf: Some(o.config().rf),
        table_ballot: Some(epoch_text(table.ballot)),
        chains,
        stats: Some(log_stats(o.stats())),
    }
}

/// A member change in words (`join <id>`, `leave <id>`, `remove <id>`).
fn change_text(c: &MemberChange<PeerKey>) -> String {
    match c {
        MemberChange::Join(n) => format!("join {n}"),
        MemberChange::Leave(n) => format!("leave {n}"),
        MemberChange::Remove(n) => format!("remove {n}"),
    }
}

/// Each member's replicas, heads and learning chains in the table in
/// force, and its share of all chain slots.
fn shares(o: &Ouroboros<PeerKey>) -> Vec<ShareDoc> {
    let t = o.table();
    let slots = (t.chains.len() * o.config().rf).max(1) as f64;
    o.members()
        .iter()
        .map(|m| {
            let replicas = t.chains.iter().filter(|c| c.members.contains(m)).count() as u32;
            ShareDoc {
                id: m.to_string(),
                replicas,
                heads: t
                    .chains
                    .iter()
                    .filter(|c| c.members.first() == Some(m))
                    .count() as u32,
                learning: t.chains.iter().filter(|c| c.learners.contains(m)).count() as u32,
                share: f64::from(replicas) / slots,
            }
        })
        .collect()
}

/// Replicas moving, and this node's progress on those it is learning.
fn rebalance(o: &Ouroboros<PeerKey>, me: &PeerKey) -> RebalanceDoc {
    let t = o.table();
    let mut d = RebalanceDoc {
        moving: t.chains.iter().filter(|c| !c.learners.is_empty()).count() as u32,
        ..RebalanceDoc::default()
    };
    let (mut held_bytes, mut held_records) = (0u64, 0u64);
    for (p, c) in t.chains.iter().enumerate() {
        let p = p as u32;
        held_bytes += o.held_bytes(p);
        held_records += o.log_len(p).saturating_sub(o.low_watermark(p));
        if c.learners.contains(me) {
            d.learning_here += 1;
            d.bytes_done += o.held_bytes(p);
            d.records_behind += o.committed(p).saturating_sub(o.log_len(p));
        }
    }
    let mean = held_bytes.checked_div(held_records).unwrap_or(0);
    d.bytes_remaining = d.records_behind * mean;
    d
}

/// The whole `/status` document (schema [`STATUS_SCHEMA`]).
pub fn status_doc(
    node: &Node<PeerKey, Event>,
    view: &NetView,
    now: Time,
    expect: Option<usize>,
) -> StatusDoc {
    let doc = StatusDoc {
        schema: STATUS_SCHEMA,
        peer_id: view.peer_id.clone(),
        health: None,
        health_reasons: Vec::new(),
        live_members: None,
        view_hash: None,
        incarnation: None,
        members: None,
        rings: node.rings().map(|(_, n)| n.to_string()).collect(),
        ankh: None,
        sundial: None,
        log: log_doc(node, expect),
        net: net_doc(view),
    };
    let Some(s) = sundial_of(node) else {
        return doc;
    };
    let mut doc = sundial_part(doc, node, s, now);
    if doc.log.storage_failed == Some(true) {
        doc.health = Some(ClusterHealth::Degraded);
        doc.health_reasons.push(format!(
            "storage failed ({}): this node stopped acknowledging and stepped out of every chain; restart it once its disk is healthy",
            doc.log.storage_error.as_deref().unwrap_or("unknown error")
        ));
    } else if doc.health == Some(ClusterHealth::Degraded) {
        doc.health_reasons.push("a member is suspected".into());
    }
    doc
}

/// The Sundial part of the status: members, health, Ankh shares.
fn sundial_part(
    mut doc: StatusDoc,
    node: &Node<PeerKey, Event>,
    s: &shen_rings::sundial::Sundial<PeerKey>,
    now: Time,
) -> StatusDoc {
    let me = *node.id();
    let ankh = AnkhRing::from_members(AnkhConfig::default(), s.ankh_members()).ok();
    let members = s
        .records()
        .map(|r| MemberDoc {
            id: r.id.to_string(),
            is_self: r.id == me,
            status: member_status(r.status),
            incarnation: r.incarnation,
            suspectors: r.suspectors.len(),
            phi: s.phi_of(&r.id, now).filter(|p| p.is_finite()),
            ownership: ankh.as_ref().and_then(|a| a.share_of(&r.id)),
        })
        .collect();
    let live = s.live_count();
    let suspects = s.records().filter(|r| r.status == Status::Suspect).count();
    doc.health = Some(if s.has_left() {
        ClusterHealth::Left
    } else if live <= 1 {
        ClusterHealth::Alone
    } else if suspects > 0 {
        ClusterHealth::Degraded
    } else {
        ClusterHealth::Ok
    });
    doc.live_members = Some(live);
    doc.view_hash = Some(format!("{:016x}", s.view_hash()));
    doc.incarnation = Some(s.own().incarnation);
    doc.members = Some(members);
    doc.ankh = Some(AnkhDoc {
        vnodes: AnkhConfig::default().vnodes,
        members: ankh.as_ref().map(|a| a.len()).unwrap_or(0),
    });
    doc.sundial = Some(sundial_stats(s.stats()));
    doc
}
