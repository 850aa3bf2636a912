//! The transport's host callbacks: peers handed to Sundial, events to waiters and `/events`, formation on every tick.
//!
//! Healing after a partition: on every tick, a connected Shen peer that
//! Sundial does not count alive is introduced again (`add_seed`: the Join
//! carries our record, the answer theirs, refutations follow). A peer still
//! not alive after [`STALE_CONNECTION`] has its connection closed: a TCP
//! connection that lived through a partition can sit in retransmission
//! back-off for tens of seconds, while a fresh one, dialled on the next
//! discovery, works at once.

use std::collections::{HashMap, HashSet};
use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use shen_api::{EventLine, NodeInfo};
use shen_rings::ouroboros::OuroborosEvent;
use shen_rings::stack::ShenEvent;
use shen_rings::sundial::{Status, Sundial};
use shen_rings::{Node, RingId, Time};
use shen_transport_libp2p::{Host, NetView, PeerKey};
use tracing::{error, info, warn};

use super::formation::{adopt, adopt_joiner, store_members, FormStep, Formation, LogSettings};
use super::settings::write_atomic;
use super::{Event, Shared};

/// The node's [`Host`]: what the transport calls back into.
pub(crate) struct ShenHost {
    pub(crate) shared: Arc<Shared>,
    pub(crate) info_path: PathBuf,
    pub(crate) admin: SocketAddr,
    /// Peers identified as Shen nodes (re-introduced to Sundial while
    /// connected but not live in its view: heals partitions).
    pub(crate) shen_peers: HashSet<PeerKey>,
    /// Since when a connected Shen peer has not been alive in Sundial's view.
    pub(crate) stale_since: HashMap<PeerKey, Time>,
    /// Waiting to form the log (None once formed, or when not asked to).
    pub(crate) formation: Option<Formation>,
    pub(crate) data_dir: PathBuf,
    pub(crate) log: LogSettings,
    /// Number of the last event sent to `/events` (its SSE `id:`).
    pub(crate) event_seq: u64,
    /// This node.
    pub(crate) me: PeerKey,
}

/// How long a connected peer may stay not-alive in Sundial's view before its
/// connection is replaced by a fresh one.
pub(crate) const STALE_CONNECTION: Duration = Duration::from_secs(5);

pub(crate) fn sundial_of(node: &Node<PeerKey, Event>) -> Option<&Sundial<PeerKey>> {
    node.ring::<Sundial<PeerKey>>()
}

impl ShenHost {
    /// Form the log when the expected members are live (see `log_cluster`).
    fn maybe_form(
        &mut self,
        node: &mut Node<PeerKey, Event>,
        now: Time,
        rng: &mut dyn rand_core::RngCore,
    ) {
        let Some(f) = self.formation.as_mut() else {
            return;
        };
        let Some(s) = sundial_of(node) else {
            return;
        };
        let live: Vec<PeerKey> = s.live_members().copied().collect();
        match f.observe(live, now) {
            FormStep::Wait => {}
            FormStep::TooMany(n) => {
                // More live nodes than expected: the log most likely
                // formed without this node. Join it instead.
                warn!(
                    live = n,
                    expect = f.expect(),
                    "more live nodes than --bootstrap-expect: joining the running log instead of forming one"
                );
                match adopt_joiner(node, &self.data_dir, &self.log, now, rng) {
                    Ok(()) => self.formation = None,
                    Err(e) => error!("cannot open the log's write-ahead log: {e}; not joining"),
                }
            }
            FormStep::Form(members) => {
                if let Err(e) = store_members(&self.data_dir, &members) {
                    error!("cannot store the log member set: {e}; not forming the log");
                    return;
                }
                info!(
                    members = members.len(),
                    "log formed: starting Cartouche and Ouroboros"
                );
                if let Err(e) = adopt(node, &self.data_dir, &members, &self.log, now, rng) {
                    error!("cannot open the log's write-ahead log: {e}; not forming the log");
                    return;
                }
                self.formation = None;
            }
        }
    }
}

impl Host<Event> for ShenHost {
    fn on_peer(
        &mut self,
        node: &mut Node<PeerKey, Event>,
        now: Time,
        rng: &mut dyn rand_core::RngCore,
        peer: PeerKey,
    ) {
        self.shen_peers.insert(peer);
        node.command::<Sundial<PeerKey>, _>(now, rng, |s, cx| s.add_seed(cx, peer));
    }

    fn on_event(&mut self, now: Time, _ring: RingId, event: &Event) {
        if let ShenEvent::Ouroboros(OuroborosEvent::MembersChanged {
            version,
            members,
            leaving,
        }) = event
        {
            info!(
                version,
                members = members.len(),
                leaving = leaving.len(),
                member = members.contains(&self.me),
                "the log's member set changed"
            );
            // A restart must know whom to ask: keep the file current while
            // this node is a member.
            if members.contains(&self.me) {
                if let Err(e) = store_members(&self.data_dir, members) {
                    warn!("cannot store the log member set: {e}");
                }
            }
        }
        if let ShenEvent::Ouroboros(OuroborosEvent::StorageFailed { reason }) = event {
            error!(
                "storage failed: {reason}; this node stops acknowledging and steps out of the cluster and of every chain; free the disk and restart it to rejoin"
            );
        }
        self.shared.waiters.deliver(event);
        let name = event.name();
        if let Ok(mut c) = self.shared.counts.lock() {
            *c.entry(name).or_insert(0) += 1;
        }
        if self.shared.events.receiver_count() > 0 {
            let line = EventLine {
                time_ms: now.as_millis(),
                name: name.to_string(),
                event,
            };
            if let Ok(text) = serde_json::to_string(&line) {
                self.event_seq += 1;
                let _ = self.shared.events.send((self.event_seq, text));
            }
        }
    }

    fn on_listen(&mut self, view: &NetView) {
        let info = NodeInfo {
            peer_id: view.peer_id.clone(),
            listen_addrs: view.listen_addrs.clone(),
            admin: self.admin.to_string(),
            pid: std::process::id(),
        };
        match serde_json::to_vec_pretty(&info) {
            Ok(bytes) => {
                if let Err(e) = write_atomic(&self.info_path, &bytes) {
                    warn!("cannot write node info: {e}");
                }
            }
            Err(e) => warn!("cannot encode node info: {e}"),
        }
    }

    fn on_tick(
        &mut self,
        node: &mut Node<PeerKey, Event>,
        view: &NetView,
        now: Time,
        rng: &mut dyn rand_core::RngCore,
    ) -> Vec<PeerKey> {
        // A connected Shen peer that Sundial does not count as live (after a
        // partition healed, or a restart) is introduced again: Join carries
        // our record, the answer carries theirs, and refutations follow.
        self.maybe_form(node, now, rng);
        let Some(s) = sundial_of(node) else {
            return Vec::new();
        };
        let stale: Vec<PeerKey> = view
            .connected_peers()
            .iter()
            .map(|p| PeerKey(*p))
            .filter(|p| self.shen_peers.contains(p))
            .filter(|p| s.record(p).is_none_or(|r| r.status != Status::Alive))
            .collect();
        self.stale_since.retain(|p, _| stale.contains(p));
        let mut close = Vec::new();
        for p in stale {
            let since = *self.stale_since.entry(p).or_insert(now);
            if now.saturating_since(since) >= STALE_CONNECTION {
                // Still not alive after several introductions: the
                // connection itself is probably stuck (TCP back-off after a
                // partition). A fresh one is dialled on the next discovery.
                self.stale_since.remove(&p);
                close.push(p);
            } else {
                node.command::<Sundial<PeerKey>, _>(now, rng, |s, cx| s.add_seed(cx, p));
            }
        }
        close
    }

    fn on_shutdown(
        &mut self,
        node: &mut Node<PeerKey, Event>,
        now: Time,
        rng: &mut dyn rand_core::RngCore,
    ) {
        node.command::<Sundial<PeerKey>, _>(now, rng, |s, cx| s.leave(cx));
    }
}
