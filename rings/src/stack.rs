//! The standard ring stack: which rings a Shen node runs, their settings as
//! one serde struct, and the node-wide event type.
//!
//! Every driver (the simulator, the browser, the libp2p node) builds its
//! nodes through [`build_node`], so a scenario or config file means the same
//! thing everywhere. Each ring that lands adds a field here and a variant to
//! [`ShenEvent`].

use alloc::boxed::Box;
use alloc::vec::Vec;
use core::time::Duration;

use serde::{Deserialize, Serialize};

use alloc::string::String;

use crate::cartouche::{AcceptorStore, Cartouche, CartoucheConfig, CartoucheEvent};
use crate::contract::{NodeId, Time};
use crate::node::Node;
use crate::ouroboros::{
    founding_chains_error, FoundingChain, FsyncPolicy, Ouroboros, OuroborosConfig, OuroborosEvent,
    RecoverError, WalStore,
};
use crate::phi::PhiConfig;
use crate::sundial::{Sundial, SundialConfig, SundialEvent};
use crate::toy::{Relay, RelayEvent};
use rand_core::RngCore;

/// Settings of the Relay teaching ring.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RelayConfig {
    /// How long the launcher waits for a lap before relaunching, in ms.
    #[serde(default = "default_lap_timeout_ms")]
    pub lap_timeout_ms: u64,
}

fn default_lap_timeout_ms() -> u64 {
    1_000
}

impl Default for RelayConfig {
    fn default() -> Self {
        RelayConfig {
            lap_timeout_ms: default_lap_timeout_ms(),
        }
    }
}

/// How a new Sundial node finds the cluster when built by [`build_node`].
#[derive(Copy, Clone, Debug, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum JoinMode {
    /// Through one peer: a pseudo-random member listed before it (the first
    /// member has no seed). Everyone starts at once knowing one peer.
    #[default]
    OneEarlierPeer,
    /// Knowing every member from the start.
    AllMembers,
}

/// Settings of Sundial Circle (times in milliseconds), with defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct SundialSettings {
    /// Cluster name (messages of other clusters are dropped).
    pub cluster: String,
    /// Gossip and probe period.
    pub interval_ms: u64,
    /// Peers per gossip round.
    pub fanout: usize,
    /// Largest message.
    pub max_message_bytes: usize,
    /// Monitors per member.
    pub monitors: usize,
    /// Phi threshold.
    pub phi_threshold: f64,
    /// Floor on the phi detector's standard deviation.
    pub phi_min_std_dev_ms: u64,
    /// Pause tolerated on top of the mean interval.
    pub acceptable_pause_ms: u64,
    /// Independent suspectors for the short confirmation path.
    pub required_suspectors: usize,
    /// Confirmation wait when every monitor agrees.
    pub suspicion_min_ms: u64,
    /// Confirmation wait with a single suspector.
    pub suspicion_max_ms: u64,
    /// How long tombstones are kept.
    pub dead_grace_ms: u64,
    /// How nodes find the cluster.
    pub join: JoinMode,
}

impl Default for SundialSettings {
    fn default() -> Self {
        let c = SundialConfig::default();
        SundialSettings {
            cluster: c.cluster,
            interval_ms: c.gossip_interval.as_millis() as u64,
            fanout: c.fanout,
            max_message_bytes: c.max_message_bytes,
            monitors: c.monitors,
            phi_threshold: c.phi.threshold,
            phi_min_std_dev_ms: c.phi.min_std_dev.as_millis() as u64,
            acceptable_pause_ms: c.phi.acceptable_pause.as_millis() as u64,
            required_suspectors: c.required_suspectors,
            suspicion_min_ms: c.suspicion_min.as_millis() as u64,
            suspicion_max_ms: c.suspicion_max.as_millis() as u64,
            dead_grace_ms: c.dead_grace.as_millis() as u64,
            join: JoinMode::default(),
        }
    }
}

impl SundialSettings {
    /// The protocol configuration these settings describe.
    pub fn to_config(&self) -> SundialConfig {
        let d = SundialConfig::default();
        SundialConfig {
            cluster: self.cluster.clone(),
            gossip_interval: Duration::from_millis(self.interval_ms.max(1)),
            fanout: self.fanout,
            max_message_bytes: self.max_message_bytes,
            monitors: self.monitors,
            phi: PhiConfig {
                threshold: self.phi_threshold,
                min_std_dev: Duration::from_millis(self.phi_min_std_dev_ms),
                acceptable_pause: Duration::from_millis(self.acceptable_pause_ms),
                first_interval: Duration::from_millis(self.interval_ms.max(1)),
                ..d.phi
            },
            required_suspectors: self.required_suspectors,
            suspicion_min: Duration::from_millis(self.suspicion_min_ms),
            suspicion_max: Duration::from_millis(self.suspicion_max_ms),
            dead_grace: Duration::from_millis(self.dead_grace_ms),
            ..d
        }
    }

    /// Check ranges; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.interval_ms == 0 {
            return Err(("interval_ms", "must be at least 1"));
        }
        if self.fanout == 0 {
            return Err(("fanout", "must be at least 1"));
        }
        if self.max_message_bytes < 256 {
            return Err(("max_message_bytes", "must be at least 256"));
        }
        if self.monitors == 0 {
            return Err(("monitors", "must be at least 1"));
        }
        if !(self.phi_threshold.is_finite() && self.phi_threshold > 0.0) {
            return Err(("phi_threshold", "must be a positive number"));
        }
        if self.suspicion_min_ms > self.suspicion_max_ms {
            return Err(("suspicion_min_ms", "must not exceed suspicion_max_ms"));
        }
        Ok(())
    }
}

/// Settings of Cartouche Ring (times in milliseconds), with defaults.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct CartoucheSettings {
    /// Longest a grant may be held.
    pub lease_ms: u64,
    /// How long an idle token rests at a node.
    pub idle_pass_ms: u64,
    /// Expected worst one-way delay (sizes the loss timeout).
    pub hop_latency_ms: u64,
    /// Bound on clock-rate error between members (0.1 = 10%).
    pub max_drift: f64,
    /// Wait for a majority before asking again.
    pub quorum_timeout_ms: u64,
    /// Upper bound of the random back-off before a candidacy.
    pub backoff_ms: u64,
    /// Keep the acceptor state on the node's disk, made durable before
    /// every answer that rests on it, so promises survive restarts (the
    /// driver supplies the store: [`build_node_with_stores`]).
    pub durable: bool,
    /// The idle-token shortcut: a requester without the token multicasts
    /// `Want` and an idle holder sends the token straight to it (on by
    /// default; off, requests wait for the token's walk).
    pub want_shortcut: bool,
}

impl Default for CartoucheSettings {
    fn default() -> Self {
        let c = CartoucheConfig::default();
        CartoucheSettings {
            lease_ms: c.lease.as_millis() as u64,
            idle_pass_ms: c.idle_pass.as_millis() as u64,
            hop_latency_ms: c.hop_latency.as_millis() as u64,
            max_drift: c.max_drift,
            quorum_timeout_ms: c.quorum_timeout.as_millis() as u64,
            backoff_ms: c.backoff.as_millis() as u64,
            durable: false,
            want_shortcut: c.want_shortcut,
        }
    }
}

impl CartoucheSettings {
    /// The protocol configuration these settings describe.
    pub fn to_config(&self) -> CartoucheConfig {
        CartoucheConfig {
            lease: Duration::from_millis(self.lease_ms),
            idle_pass: Duration::from_millis(self.idle_pass_ms),
            hop_latency: Duration::from_millis(self.hop_latency_ms),
            max_drift: self.max_drift,
            quorum_timeout: Duration::from_millis(self.quorum_timeout_ms),
            backoff: Duration::from_millis(self.backoff_ms),
            want_shortcut: self.want_shortcut,
        }
    }

    /// Check ranges; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.lease_ms == 0 {
            return Err(("lease_ms", "must be at least 1"));
        }
        if self.quorum_timeout_ms == 0 {
            return Err(("quorum_timeout_ms", "must be at least 1"));
        }
        if !(self.max_drift.is_finite() && (0.0..1.0).contains(&self.max_drift)) {
            return Err(("max_drift", "must be in [0, 1)"));
        }
        Ok(())
    }
}

/// Settings of Ouroboros Circle (times in milliseconds), with defaults.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct OuroborosSettings {
    /// Number of partitions.
    pub partitions: u32,
    /// Chain length (replicas per partition).
    pub rf: usize,
    /// Housekeeping period.
    pub tick_ms: u64,
    /// Client operation deadline.
    pub request_timeout_ms: u64,
    /// Configuration round deadline.
    pub round_timeout_ms: u64,
    /// Most records per chain message.
    pub max_batch: usize,
    /// A caught-up successor that leaves a record un-held this long is
    /// bypassed (removed from that chain) like a failed one.
    pub slow_after_ms: u64,
    /// How long a bypassed member stays out of those chains.
    pub slow_hold_ms: u64,
    /// Keep a write-ahead log on the node's disk (the simulator's disk in
    /// `shen sim`; the data directory in `shen run`) and acknowledge only
    /// what it holds: every message waits for the next flush. Off: state in
    /// memory only (a restarted node relearns everything from the others).
    pub durable: bool,
    /// When the write-ahead log is synced (with `durable`).
    pub fsync: FsyncPolicy,
    /// Retention by size (bytes kept per partition replica), off if `None`.
    pub retention_bytes: Option<u64>,
    /// Retention by age (milliseconds), off if `None`.
    pub retention_ms: Option<u64>,
    /// Write-ahead log bytes between checkpoints (with a record store).
    pub checkpoint_bytes: u64,
    /// Bytes of recent records kept in memory, in all (shared evenly by
    /// the partitions; with a record store, the rest is read back from it).
    pub cache_bytes: u64,
    /// A member seen dead this long is removed from the member set.
    pub replace_after_ms: u64,
    /// Most chains moving a replica at once (rebalancing).
    pub max_moves: usize,
    /// A node outside the member set asks to join on its own.
    pub auto_join: bool,
    /// Most bytes per second sent from this node to replicas catching up
    /// (rebalancing, refills); 0: no limit.
    pub rebalance_bytes_per_sec: u64,
}

impl Default for OuroborosSettings {
    fn default() -> Self {
        let c = OuroborosConfig::default();
        OuroborosSettings {
            partitions: c.partitions,
            rf: c.rf,
            tick_ms: c.tick.as_millis() as u64,
            request_timeout_ms: c.request_timeout.as_millis() as u64,
            round_timeout_ms: c.round_timeout.as_millis() as u64,
            max_batch: c.max_batch,
            slow_after_ms: c.slow_after.as_millis() as u64,
            slow_hold_ms: c.slow_hold.as_millis() as u64,
            durable: false,
            fsync: FsyncPolicy::Batch,
            retention_bytes: c.retention_bytes,
            retention_ms: c.retention_ms,
            checkpoint_bytes: c.checkpoint_bytes,
            cache_bytes: 64 << 20,
            replace_after_ms: c.replace_after.as_millis() as u64,
            max_moves: c.max_moves,
            auto_join: c.auto_join,
            rebalance_bytes_per_sec: c.rebalance_bytes_per_sec.unwrap_or(0),
        }
    }
}

impl OuroborosSettings {
    /// The protocol configuration these settings describe.
    pub fn to_config(&self) -> OuroborosConfig {
        OuroborosConfig {
            partitions: self.partitions,
            rf: self.rf,
            tick: Duration::from_millis(self.tick_ms),
            request_timeout: Duration::from_millis(self.request_timeout_ms),
            round_timeout: Duration::from_millis(self.round_timeout_ms),
            max_batch: self.max_batch,
            slow_after: Duration::from_millis(self.slow_after_ms),
            slow_hold: Duration::from_millis(self.slow_hold_ms),
            retention_bytes: self.retention_bytes,
            retention_ms: self.retention_ms,
            checkpoint_bytes: self.checkpoint_bytes,
            replace_after: Duration::from_millis(self.replace_after_ms),
            max_moves: self.max_moves,
            auto_join: self.auto_join,
            rebalance_bytes_per_sec: (self.rebalance_bytes_per_sec > 0)
                .then_some(self.rebalance_bytes_per_sec),
            ..OuroborosConfig::default()
        }
    }

    /// Check ranges; the error names the field.
    pub fn validate(&self) -> Result<(), (&'static str, &'static str)> {
        if self.request_timeout_ms == 0 {
            return Err(("request_timeout_ms", "must be at least 1"));
        }
        if self.round_timeout_ms == 0 {
            return Err(("round_timeout_ms", "must be at least 1"));
        }
        self.to_config().validate()
    }
}

/// Which rings a node runs, with their settings. A ring whose field is
/// `None` is not run.
#[derive(Clone, Debug, PartialEq, Default, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StackConfig {
    /// The Relay teaching ring.
    #[serde(default)]
    pub relay: Option<RelayConfig>,
    /// Sundial Circle membership.
    #[serde(default)]
    pub sundial: Option<SundialSettings>,
    /// Cartouche Ring mutual exclusion (over every member of the world).
    #[serde(default)]
    pub cartouche: Option<CartoucheSettings>,
    /// Ouroboros Circle chain replication (reconfigured through Cartouche
    /// when both run, fed live members by Sundial when it runs).
    #[serde(default)]
    pub ouroboros: Option<OuroborosSettings>,
    /// Start where a running cluster is instead of from scratch (the
    /// browser's fork of a live cluster); `None`: a fresh cluster.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start: Option<StartState>,
}

/// Where a world starts when it continues a running cluster: which
/// members every view holds dead, and the log's chains with their epochs.
/// Nodes are indexes into the world's member list. The driver keeps the
/// `down` nodes down (the simulator crashes them at time zero).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct StartState {
    /// Members every other node's Sundial view holds dead from the start.
    pub down: Vec<u32>,
    /// The log's founding chains, one per partition (empty: Ankh's
    /// placement); see [`OuroborosConfig::founding_chains`].
    pub chains: Vec<FoundingChain>,
}

impl StartState {
    /// Whether this start fits a world of `nodes` members running `stack`;
    /// the error says what does not.
    pub fn check(&self, nodes: u64, stack: &StackConfig) -> Result<(), String> {
        if let Some(d) = self.down.iter().find(|d| u64::from(**d) >= nodes) {
            return Err(format!("start: down node {d} of {nodes} nodes"));
        }
        if !self.down.is_empty() && stack.sundial.is_none() {
            return Err("start: down nodes need Sundial (it holds them dead)".into());
        }
        if !self.chains.is_empty() {
            let Some(o) = &stack.ouroboros else {
                return Err("start: chains need the log (Ouroboros)".into());
            };
            let n = usize::try_from(nodes).unwrap_or(usize::MAX);
            if let Some(e) = founding_chains_error(&self.chains, o.partitions, n) {
                return Err(format!("start: {e}"));
            }
        }
        Ok(())
    }

    /// The newest epoch generation of the chains (0 without chains).
    pub fn generation(&self) -> u64 {
        self.chains
            .iter()
            .map(|c| c.epoch.generation)
            .max()
            .unwrap_or(0)
    }
}

impl StackConfig {
    /// True when no ring is enabled.
    pub fn is_empty(&self) -> bool {
        self.relay.is_none()
            && self.sundial.is_none()
            && self.cartouche.is_none()
            && self.ouroboros.is_none()
    }
}

/// Every event any standard ring can report.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub enum ShenEvent<I> {
    /// From the Relay ring.
    Relay(RelayEvent<I>),
    /// From Sundial Circle.
    Sundial(SundialEvent<I>),
    /// From Cartouche Ring.
    Cartouche(CartoucheEvent),
    /// From Ouroboros Circle.
    Ouroboros(OuroborosEvent<I>),
}

impl<I> ShenEvent<I> {
    /// Every name [`ShenEvent::name`] can return (lets drivers reject a
    /// misspelled event name in a scenario or filter).
    pub const NAMES: &'static [&'static str] = &[
        "relay.received",
        "relay.lap_completed",
        "relay.relaunched",
        "sundial.joined",
        "sundial.suspected",
        "sundial.recovered",
        "sundial.died",
        "sundial.left",
        "sundial.forgotten",
        "sundial.meta_changed",
        "sundial.refuted",
        "sundial.monitoring",
        "cartouche.granted",
        "cartouche.released",
        "cartouche.lease_expired",
        "cartouche.regenerated",
        "cartouche.candidate",
        "cartouche.token_discarded",
        "cartouche.requested",
        "ouroboros.appended",
        "ouroboros.append_failed",
        "ouroboros.read_done",
        "ouroboros.read_failed",
        "ouroboros.wants_reconfig",
        "ouroboros.reconfig_done",
        "ouroboros.reconfig_aborted",
        "ouroboros.table_installed",
        "ouroboros.storage_failed",
        "ouroboros.wants_txn_token",
        "ouroboros.txn_done",
        "ouroboros.members_changed",
    ];

    /// A stable dotted name (`ring.event`) for counting and filtering.
    pub fn name(&self) -> &'static str {
        match self {
            ShenEvent::Relay(RelayEvent::Received { .. }) => "relay.received",
            ShenEvent::Relay(RelayEvent::LapCompleted { .. }) => "relay.lap_completed",
            ShenEvent::Relay(RelayEvent::Relaunched { .. }) => "relay.relaunched",
            ShenEvent::Sundial(e) => match e {
                SundialEvent::Joined { .. } => "sundial.joined",
                SundialEvent::Suspected { .. } => "sundial.suspected",
                SundialEvent::Recovered { .. } => "sundial.recovered",
                SundialEvent::Died { .. } => "sundial.died",
                SundialEvent::Left { .. } => "sundial.left",
                SundialEvent::Forgotten { .. } => "sundial.forgotten",
                SundialEvent::MetaChanged { .. } => "sundial.meta_changed",
                SundialEvent::Refuted { .. } => "sundial.refuted",
                SundialEvent::Monitoring { .. } => "sundial.monitoring",
            },
            ShenEvent::Cartouche(e) => match e {
                CartoucheEvent::Granted { .. } => "cartouche.granted",
                CartoucheEvent::Released { .. } => "cartouche.released",
                CartoucheEvent::LeaseExpired { .. } => "cartouche.lease_expired",
                CartoucheEvent::Regenerated { .. } => "cartouche.regenerated",
                CartoucheEvent::Candidate { .. } => "cartouche.candidate",
                CartoucheEvent::TokenDiscarded { .. } => "cartouche.token_discarded",
                CartoucheEvent::Requested { .. } => "cartouche.requested",
            },
            ShenEvent::Ouroboros(e) => match e {
                OuroborosEvent::Appended { .. } => "ouroboros.appended",
                OuroborosEvent::AppendFailed { .. } => "ouroboros.append_failed",
                OuroborosEvent::ReadDone { .. } => "ouroboros.read_done",
                OuroborosEvent::ReadFailed { .. } => "ouroboros.read_failed",
                OuroborosEvent::WantsReconfig => "ouroboros.wants_reconfig",
                OuroborosEvent::ReconfigDone { .. } => "ouroboros.reconfig_done",
                OuroborosEvent::ReconfigAborted { .. } => "ouroboros.reconfig_aborted",
                OuroborosEvent::TableInstalled { .. } => "ouroboros.table_installed",
                OuroborosEvent::StorageFailed { .. } => "ouroboros.storage_failed",
                OuroborosEvent::WantsTxnToken { .. } => "ouroboros.wants_txn_token",
                OuroborosEvent::TxnDone { .. } => "ouroboros.txn_done",
                OuroborosEvent::MembersChanged { .. } => "ouroboros.members_changed",
            },
        }
    }
}

impl<I> From<CartoucheEvent> for ShenEvent<I> {
    fn from(e: CartoucheEvent) -> Self {
        ShenEvent::Cartouche(e)
    }
}

impl<I> From<OuroborosEvent<I>> for ShenEvent<I> {
    fn from(e: OuroborosEvent<I>) -> Self {
        ShenEvent::Ouroboros(e)
    }
}

impl<I> From<SundialEvent<I>> for ShenEvent<I> {
    fn from(e: SundialEvent<I>) -> Self {
        ShenEvent::Sundial(e)
    }
}

impl<I> From<RelayEvent<I>> for ShenEvent<I> {
    fn from(e: RelayEvent<I>) -> Self {
        ShenEvent::Relay(e)
    }
}

/// Build node `me` running the rings of `config`, knowing `members` as the
/// initial member list. `incarnation` must differ across restarts of the
/// same node.
pub fn build_node<I: NodeId>(
    config: &StackConfig,
    me: I,
    members: &[I],
    incarnation: u32,
) -> Node<I, ShenEvent<I>> {
    // Without a write-ahead log there is nothing to recover: cannot fail.
    match build_node_with_wal(config, me.clone(), members, incarnation, None) {
        Ok(n) => n,
        Err(_) => Node::new(me, incarnation),
    }
}

/// A node's write-ahead log as found at boot: its records, oldest first,
/// and the store to keep appending to.
pub type WalAtBoot = (Vec<Vec<u8>>, Box<dyn WalStore>);

/// [`build_node`], with Ouroboros on the write-ahead log `wal` (rebuilt
/// from its records, see [`Ouroboros::recover`]) when given.
pub fn build_node_with_wal<I: NodeId>(
    config: &StackConfig,
    me: I,
    members: &[I],
    incarnation: u32,
    wal: Option<WalAtBoot>,
) -> Result<Node<I, ShenEvent<I>>, RecoverError> {
    build_node_with_stores(config, me, members, incarnation, wal, None, None)
}

/// [`build_node_with_wal`], with the partition records kept in `records`
/// (see [`Ouroboros::recover_with_records`]; the cache holds at most
/// `cache_bytes` of the settings per partition) when given, and
/// Cartouche's acceptor state in `acceptor` when given (loaded from it: a
/// restart resumes its promises; see `cartouche::AcceptorStore`). A record
/// that cannot be read back is an error (index 0, the reason).
pub fn build_node_with_stores<I: NodeId>(
    config: &StackConfig,
    me: I,
    members: &[I],
    incarnation: u32,
    wal: Option<WalAtBoot>,
    records: Option<crate::ouroboros::BoxedRecords>,
    acceptor: Option<Box<dyn AcceptorStore>>,
) -> Result<Node<I, ShenEvent<I>>, RecoverError> {
    let mut node = Node::new(me.clone(), incarnation);
    if let Some(r) = &config.relay {
        let members: Vec<I> = members.to_vec();
        node.add_ring(
            Relay::new(members).with_lap_timeout(Duration::from_millis(r.lap_timeout_ms)),
        );
    }
    // The log's founding members are `members`, unless this node is not
    // among them: then it joins a running log (`Ouroboros::joiner`), or,
    // restarted, recovers the member set it was part of.
    let founding: &[I] = if members.contains(&me) { members } else { &[] };
    let ouro_config = |settings: &OuroborosSettings| {
        let mut c = settings.to_config();
        if let Some(start) = &config.start {
            c.founding_chains = start.chains.clone();
        }
        c
    };
    let ouro = match &config.ouroboros {
        None => None,
        Some(settings) => Some(match wal {
            Some((wal_records, store)) => Ouroboros::recover_with_records(
                founding,
                ouro_config(settings),
                incarnation > 1,
                &wal_records,
                store,
                settings.fsync,
                records.map(|r| {
                    let cache = usize::try_from(settings.cache_bytes).unwrap_or(usize::MAX);
                    (r, cache)
                }),
            )?,
            None => Ouroboros::new(founding, ouro_config(settings), incarnation > 1),
        }),
    };
    if let Some(settings) = &config.cartouche {
        let mut c = Cartouche::new(members.iter().cloned(), settings.to_config());
        // With the log, Cartouche's ring is the log's member set (as
        // recovered), with its slots as creator indexes.
        if let Some(o) = &ouro {
            c.set_members(&o.member_set().nodes);
        }
        let mut c = match acceptor {
            Some(store) => c
                .with_store(store)
                .map_err(|reason| RecoverError { index: 0, reason })?,
            None => c,
        };
        // Continuing a cluster: ballots above its newest epoch.
        if let Some(start) = &config.start {
            c.promise_at_least(start.generation());
        }
        node.add_ring(c);
    }
    if let Some(settings) = &config.sundial {
        let seeds: Vec<I> = match settings.join {
            JoinMode::AllMembers => members.iter().filter(|m| **m != me).cloned().collect(),
            JoinMode::OneEarlierPeer => {
                let pos = members
                    .iter()
                    .position(|m| *m == me)
                    .unwrap_or(members.len());
                if pos == 0 {
                    Vec::new()
                } else {
                    let pick = (me.placement_hash() % pos as u64) as usize;
                    alloc::vec![members[pick].clone()]
                }
            }
        };
        // Metadata always fits (no entries yet), so this cannot fail.
        if let Ok(s) = Sundial::new(me.clone(), settings.to_config(), Vec::new()) {
            let down: Vec<I> = config.start.as_ref().map_or_else(Vec::new, |st| {
                st.down
                    .iter()
                    .filter_map(|d| members.get(*d as usize).cloned())
                    .collect()
            });
            node.add_ring(s.with_seeds(seeds).with_dead(down));
        }
    }
    if let Some(ouro) = ouro {
        node.add_ring(ouro);
    }
    node.set_reactor(shen_reactor::<I>);
    Ok(node)
}

/// How the standard rings react to each other on one node:
/// - Sundial's live members feed Ouroboros (which chains need a change);
/// - Ouroboros asks Cartouche for the token to reconfigure, runs its round
///   with the grant's fencing number as the ballot, and releases it;
/// - a node whose write-ahead log failed (disk full, I/O error, failed
///   fsync) leaves through Sundial, so the others take it out of every
///   chain as they do for a member that left, at once rather than after
///   failure detection. Safe: its Ouroboros already stopped answering
///   (nothing it acknowledged rests on what it failed to write, because
///   its sends are gated on the flush that failed), and the chains change
///   only through the usual quorum round with a fresh epoch; it rejoins
///   with a new incarnation once restarted on a healthy disk.
fn shen_reactor<I: NodeId>(
    node: &mut Node<I, ShenEvent<I>>,
    now: Time,
    rng: &mut dyn RngCore,
    event: &ShenEvent<I>,
) {
    match event {
        ShenEvent::Sundial(_) => {
            let Some(s) = node.ring::<Sundial<I>>() else {
                return;
            };
            let live: Vec<I> = s.live_members().cloned().collect();
            node.command::<Ouroboros<I>, _>(now, rng, |o, _| o.set_live(live));
        }
        ShenEvent::Ouroboros(OuroborosEvent::MembersChanged { .. }) => {
            // Cartouche's ring follows the log's committed member set.
            let Some(nodes) = node
                .ring::<Ouroboros<I>>()
                .map(|o| o.member_set().nodes.clone())
            else {
                return;
            };
            node.command::<Cartouche<I>, _>(now, rng, |c, _| c.set_members(&nodes));
        }
        ShenEvent::Ouroboros(OuroborosEvent::StorageFailed { .. }) => {
            node.command::<Sundial<I>, _>(now, rng, |s, cx| s.leave(cx));
        }
        ShenEvent::Ouroboros(OuroborosEvent::WantsReconfig) => {
            let id = node.command::<Cartouche<I>, _>(now, rng, |c, cx| c.request(cx, "ouroboros"));
            if id.is_some() {
                node.command::<Ouroboros<I>, _>(now, rng, |o, _| o.set_token_request(id));
            }
        }
        ShenEvent::Ouroboros(OuroborosEvent::WantsTxnToken { req }) => {
            let req = *req;
            let id = node.command::<Cartouche<I>, _>(now, rng, |c, cx| c.request(cx, "txn"));
            if let Some(id) = id {
                node.command::<Ouroboros<I>, _>(now, rng, |o, _| o.set_txn_token(req, id));
            }
        }
        ShenEvent::Cartouche(CartoucheEvent::Granted { id, fencing, .. }) => {
            let (ours, txn) = node.ring::<Ouroboros<I>>().map_or((false, None), |o| {
                (o.token_request() == Some(*id), o.txn_for_token(*id))
            });
            let (id, f) = (*id, *fencing);
            if ours {
                node.command::<Ouroboros<I>, _>(now, rng, |o, cx| o.reconfigure(cx, f));
            } else if let Some(req) = txn {
                let running = node.ring::<Ouroboros<I>>().is_some_and(|o| o.has_txn(req));
                if running {
                    node.command::<Ouroboros<I>, _>(now, rng, |o, cx| o.txn_granted(cx, req, f));
                } else {
                    // The transaction gave up before the grant came.
                    node.command::<Cartouche<I>, _>(now, rng, |c, cx| c.release(cx, id));
                }
            }
        }
        ShenEvent::Ouroboros(OuroborosEvent::TxnDone { req, .. }) => {
            let token = node
                .ring::<Ouroboros<I>>()
                .and_then(|o| o.token_of_txn(*req));
            if let Some(id) = token {
                node.command::<Cartouche<I>, _>(now, rng, |c, cx| c.release(cx, id));
            }
        }
        ShenEvent::Ouroboros(
            OuroborosEvent::ReconfigDone { .. } | OuroborosEvent::ReconfigAborted { .. },
        ) => {
            let id = node.ring::<Ouroboros<I>>().and_then(|o| o.token_request());
            if let Some(id) = id {
                node.command::<Ouroboros<I>, _>(now, rng, |o, _| o.set_token_request(None));
                node.command::<Cartouche<I>, _>(now, rng, |c, cx| c.release(cx, id));
            }
        }
        ShenEvent::Cartouche(
            CartoucheEvent::LeaseExpired { id, .. } | CartoucheEvent::Released { id, .. },
        ) => {
            let ours = node
                .ring::<Ouroboros<I>>()
                .is_some_and(|o| o.token_request() == Some(*id));
            if ours {
                node.command::<Ouroboros<I>, _>(now, rng, |o, _| o.set_token_request(None));
            }
            let id = *id;
            node.command::<Ouroboros<I>, _>(now, rng, |o, _| o.clear_txn_token(id));
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_event_name_is_listed() {
        let sundial = [
            SundialEvent::Joined { id: 1 },
            SundialEvent::Suspected {
                id: 1,
                by: Vec::new(),
            },
            SundialEvent::Recovered { id: 1 },
            SundialEvent::Died { id: 1 },
            SundialEvent::Left { id: 1 },
            SundialEvent::Forgotten { id: 1 },
            SundialEvent::MetaChanged { id: 1 },
            SundialEvent::Refuted { incarnation: 1 },
            SundialEvent::Monitoring { id: 1 },
        ];
        let mut all: Vec<ShenEvent<u64>> = alloc::vec![
            ShenEvent::Relay(RelayEvent::Received {
                from: 1,
                hops: 1,
                lap: 1,
            }),
            ShenEvent::Relay(RelayEvent::LapCompleted { lap: 1, hops: 1 }),
            ShenEvent::Relay(RelayEvent::Relaunched { lap: 1 }),
        ];
        all.extend(sundial.into_iter().map(ShenEvent::Sundial));
        let f = crate::cartouche::Fencing::default();
        all.extend(
            [
                CartoucheEvent::Granted {
                    id: 1,
                    fencing: f,
                    lease_until: 1,
                },
                CartoucheEvent::Released { id: 1, fencing: f },
                CartoucheEvent::LeaseExpired { id: 1, fencing: f },
                CartoucheEvent::Regenerated { generation: 1 },
                CartoucheEvent::Candidate { generation: 1 },
                CartoucheEvent::TokenDiscarded {
                    generation: 1,
                    sequence: 1,
                },
                CartoucheEvent::Requested { id: 1 },
            ]
            .into_iter()
            .map(ShenEvent::Cartouche),
        );
        let b = crate::cartouche::Fencing::default();
        all.extend(
            [
                OuroborosEvent::Appended {
                    req: 1,
                    partition: 0,
                    offset: 0,
                    id: 0,
                },
                OuroborosEvent::AppendFailed {
                    req: 1,
                    partition: 0,
                    error: crate::ouroboros::LogError::Timeout,
                },
                OuroborosEvent::ReadDone {
                    req: 1,
                    partition: 0,
                    from: 0,
                    records: Vec::new(),
                    committed: 0,
                },
                OuroborosEvent::ReadFailed {
                    req: 1,
                    partition: 0,
                    error: crate::ouroboros::LogError::StaleEpoch,
                },
                OuroborosEvent::WantsReconfig,
                OuroborosEvent::ReconfigDone {
                    ballot: b,
                    changed: 1,
                },
                OuroborosEvent::ReconfigAborted { ballot: b },
                OuroborosEvent::TableInstalled { ballot: b },
                OuroborosEvent::StorageFailed {
                    reason: "disk full".into(),
                },
                OuroborosEvent::WantsTxnToken { req: 1 },
                OuroborosEvent::TxnDone {
                    req: 1,
                    committed: None,
                    records: Vec::new(),
                    error: None,
                },
                OuroborosEvent::MembersChanged {
                    version: 1,
                    members: Vec::new(),
                    leaving: Vec::new(),
                },
            ]
            .into_iter()
            .map(ShenEvent::Ouroboros),
        );
        for e in &all {
            assert!(ShenEvent::<u64>::NAMES.contains(&e.name()), "{}", e.name());
        }
        assert_eq!(all.len(), ShenEvent::<u64>::NAMES.len());
    }
}
