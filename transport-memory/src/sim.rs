//! The simulated world: nodes, the virtual clock, the event queue, the
//! network, faults, the run loop and snapshots.
//!
//! One event queue ordered by `(time, sequence)`; per-node ChaCha8 streams
//! derived from the world seed (adding a node does not perturb the others'
//! draws). [`Sim::has_event_at`] lets a live driver pick a fault time that
//! replays identically when scheduled up front ([`Sim::schedule`]).
//! Snapshots clone the whole world, disk contents included.
//!
//! **Invariant:** same seed + same scenario (+ the same live calls at the
//! same virtual times) ⇒ the same trace hash, natively and in wasm32.

use core::cmp::Ordering;
use core::time::Duration;
use std::collections::{BTreeMap, BTreeSet, BinaryHeap};
use std::rc::Rc;

use shen_rings::node::{Node, NodeOutput, TimerKey};
use shen_rings::ouroboros::read_all;
use shen_rings::ouroboros::PartitionLogs;
use shen_rings::stack::{build_node, build_node_with_stores, ShenEvent, StackConfig};
use shen_rings::{Ctx, Envelope, Ring, RingId, Time, WireError};

use crate::clock::NodeClock;
use crate::disk::{DiskContents, DiskFault, RestartMode, SimDisk, SimRecord, SimWal};
use crate::event::SimEvent;
use crate::fault::Fault;
use crate::net::{ms_to_us, Cut, LinkModel, NetConfig, Partitions};
use crate::rng::{node_rng, SimRng, Stream};
use crate::stats::{Count, EventCounts, RingTraffic, Traffic};
use crate::trace::{DropReason, HashState, Trace, TraceKind, TraceMode};

/// The most nodes one world may host.
pub const MAX_NODES: u64 = 1 << 20;

/// What a node factory is told when asked to build (or rebuild) a node.
#[derive(Debug)]
pub struct NodeInit<'a> {
    /// The node's id (its index in the world).
    pub id: u64,
    /// The incarnation: 1 at first boot, one more at every restart. Pass it
    /// to [`Node::new`] so timers from a previous life never collide.
    pub incarnation: u32,
    /// Every node id of the world, ascending (including this one).
    pub members: &'a [u64],
    /// The nodes the world was created with (a node added later with
    /// [`Sim::add_node`] is not among them: it joins a running cluster).
    pub founders: &'a [u64],
    /// The node's disk, holding whatever survived its last crash.
    pub disk: &'a SimDisk,
}

/// Builds the node state machine for a node of the world. Called at world
/// creation and at every restart.
pub type NodeFactory<E> = Rc<dyn Fn(&NodeInit<'_>) -> Node<u64, E>>;

/// A factory running the standard ring stack of `stack` on every node
/// (through [`shen_rings::stack::build_node`]).
///
/// With `ouroboros.durable`, Ouroboros keeps its write-ahead log on the
/// node's [`SimDisk`] (a [`SimWal`]), its partition records there too (a
/// [`PartitionLogs`] of two [`SimWal`]s per partition, with checkpoints),
/// and a restarted node recovers from what its disk kept.
pub fn stack_factory(stack: StackConfig) -> NodeFactory<ShenEvent<u64>> {
    Rc::new(move |init: &NodeInit<'_>| {
        // With the log, a node added later joins it (it is not a founder);
        // other stacks see every node of the world as a member.
        let members = if stack.ouroboros.is_some() {
            init.founders
        } else {
            init.members
        };
        let durable = stack.ouroboros.as_ref().filter(|o| o.durable);
        let acceptor = stack
            .cartouche
            .as_ref()
            .is_some_and(|c| c.durable)
            .then(|| {
                Box::new(SimRecord::new(init.disk, "cartouche/acceptor"))
                    as Box<dyn shen_rings::cartouche::AcceptorStore>
            });
        if durable.is_none() && acceptor.is_none() {
            return build_node(&stack, init.id, members, init.incarnation);
        }
        let (wal, parts) = match durable {
            None => (None, None),
            Some(settings) => {
                let wal = SimWal::open(init.disk, "ouroboros/wal/");
                // A disk that still fails at boot gives nothing back: the
                // node starts with an empty log on it, as an amnesiac, and
                // stops taking part at its first write (never as a node
                // without a disk, which would acknowledge what no disk
                // holds).
                let records = if init.disk.fault().is_some() {
                    Vec::new()
                } else {
                    read_all(&wal).unwrap_or_default()
                };
                let parts = (0..settings.partitions)
                    .map(|p| {
                        (
                            SimWal::open(init.disk, &format!("ouroboros/p{p}/index/")),
                            SimWal::open(init.disk, &format!("ouroboros/p{p}/data/")),
                        )
                    })
                    .collect();
                let parts = PartitionLogs::new(parts)
                    .ok()
                    .map(|p| Box::new(p) as shen_rings::ouroboros::BoxedRecords);
                (
                    Some((
                        records,
                        Box::new(wal) as Box<dyn shen_rings::ouroboros::WalStore>,
                    )),
                    parts,
                )
            }
        };
        build_node_with_stores(
            &stack,
            init.id,
            members,
            init.incarnation,
            wal,
            parts,
            acceptor,
        )
        // The simulator wrote these records itself; one it cannot read
        // back is a bug, and the node then restarts as if its disk were lost.
        .unwrap_or_else(|_| build_node(&stack, init.id, members, init.incarnation.max(2)))
    })
}

/// How to set up a world.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct SimConfig {
    /// The world seed: every random draw derives from it.
    pub seed: u64,
    /// How many nodes (ids `0..nodes`).
    pub nodes: u64,
    /// Global network settings.
    pub network: NetConfig,
    /// How much of the trace to keep in memory.
    pub trace: TraceMode,
}

/// Why a live call was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum SimError {
    /// The node id is not part of the world.
    #[error("no node {0} in this world")]
    NoSuchNode(u64),
    /// The node is crashed.
    #[error("node {0} is down")]
    NodeDown(u64),
    /// The message is not in flight (delivered, dropped or never sent).
    #[error("message {0} is not in flight")]
    NoSuchMessage(u64),
    /// A setting is out of range; the message names the field.
    #[error("{0}")]
    Invalid(String),
}

/// A message on the wire.
#[derive(Clone, Debug)]
struct Packet {
    id: u64,
    from: u64,
    to: u64,
    env: Envelope,
}

#[derive(Clone, Debug)]
enum Ev {
    Deliver(Packet),
    Timer {
        node: u64,
        incarnation: u32,
        epoch: u32,
        key: TimerKey,
    },
    Fault(Box<Fault>),
    /// The node's durability barrier: it flushes (its writes become
    /// durable, its held messages leave).
    Flush {
        node: u64,
        incarnation: u32,
    },
}

/// A queued event, ordered by `(at, seq)` — ties broken by scheduling
/// order, so runs are deterministic.
#[derive(Clone, Debug)]
struct Entry {
    at: Time,
    seq: u64,
    ev: Ev,
}

impl PartialEq for Entry {
    fn eq(&self, o: &Self) -> bool {
        self.at == o.at && self.seq == o.seq
    }
}
impl Eq for Entry {}
impl PartialOrd for Entry {
    fn partial_cmp(&self, o: &Self) -> Option<Ordering> {
        Some(self.cmp(o))
    }
}
impl Ord for Entry {
    /// Reversed: `BinaryHeap` is a max-heap and we want the earliest first.
    fn cmp(&self, o: &Self) -> Ordering {
        o.at.cmp(&self.at).then_with(|| o.seq.cmp(&self.seq))
    }
}

#[derive(Clone, Debug, Default)]
struct Queue {
    heap: BinaryHeap<Entry>,
    seq: u64,
}

impl Queue {
    #[inline]
    fn push(&mut self, at: Time, ev: Ev) {
        let seq = self.seq;
        self.seq += 1;
        self.heap.push(Entry { at, seq, ev });
    }
}

/// One node slot of the world.
#[derive(Clone)]
struct Host<E: 'static> {
    node: Option<Node<u64, E>>,
    incarnation: u32,
    disk: SimDisk,
    ring_rng: SimRng,
    net_rng: SimRng,
    clock: NodeClock,
    clock_epoch: u32,
    paused_until: Option<Time>,
    /// Armed timers and their deadlines in the node's local time.
    timers: BTreeMap<TimerKey, Time>,
    /// A flush is scheduled for this incarnation.
    flush_pending: bool,
    traffic: RingTraffic,
    events: EventCounts,
}

impl<E: 'static> Host<E> {
    fn new(seed: u64, id: u64) -> Host<E> {
        Host {
            node: None,
            incarnation: 0,
            disk: SimDisk::new(),
            ring_rng: node_rng(seed, id, Stream::Ring),
            net_rng: node_rng(seed, id, Stream::Net),
            clock: NodeClock::default(),
            clock_epoch: 0,
            paused_until: None,
            timers: BTreeMap::new(),
            flush_pending: false,
            traffic: RingTraffic::default(),
            events: EventCounts::default(),
        }
    }
}

/// Everything of a world that a snapshot copies.
#[derive(Clone)]
struct World<E: 'static> {
    seed: u64,
    now: Time,
    next_msg: u64,
    steps: u64,
    queue: Queue,
    hosts: Vec<Host<E>>,
    members: Vec<u64>,
    founders: Vec<u64>,
    net: NetConfig,
    global: LinkModel,
    links: BTreeMap<(u64, u64), (NetConfig, LinkModel)>,
    partitions: Partitions,
    held_links: BTreeSet<(u64, u64)>,
    /// Messages parked on held links, in arrival order.
    parked: Vec<Packet>,
    /// In-flight messages dropped by hand, skipped when they come up.
    cancelled: BTreeSet<u64>,
    totals: Traffic,
    events: EventCounts,
    ring_names: BTreeMap<RingId, &'static str>,
    /// How long a node's flush (its fsync) takes.
    fsync: Duration,
}

/// A message in flight, as listed by [`Sim::in_flight`].
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct InFlight {
    /// Message id (use it with [`Sim::drop_message`] and
    /// [`Sim::duplicate_message`]).
    pub id: u64,
    /// Sender.
    pub from: u64,
    /// Destination.
    pub to: u64,
    /// The ring it belongs to.
    pub ring: RingId,
    /// Encoded size.
    pub bytes: u32,
    /// When it is due to arrive, or `None` while parked on a held link.
    pub arrives: Option<Time>,
    /// The message itself (decode the payload with the ring's message type
    /// to show or select it).
    #[serde(skip)]
    pub envelope: shen_rings::wire::Envelope,
}

/// An event a viewer may choose to happen next (see
/// [`Sim::pending_choices`]): a message to deliver or a timer to fire.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Choice {
    /// Message `id` in flight.
    Message {
        /// Message id.
        id: u64,
        /// Sender.
        from: u64,
        /// Destination.
        to: u64,
        /// Its ring.
        ring: RingId,
        /// When it is due, µs.
        due_us: u64,
    },
    /// An armed timer of a running node.
    Timer {
        /// The node.
        node: u64,
        /// The ring that armed it.
        ring: RingId,
        /// The ring's timer token.
        token: u64,
        /// When it is due, µs.
        due_us: u64,
    },
}

/// A node's state as the simulator sees it.
#[derive(Clone, Debug, PartialEq, Eq, serde::Serialize)]
pub struct NodeStatus {
    /// Running (not crashed).
    pub up: bool,
    /// Current incarnation (1 at first boot).
    pub incarnation: u32,
    /// Paused until this virtual time, if paused now.
    pub paused_until: Option<Time>,
    /// What the node's clock reads now.
    pub local_time: Time,
    /// The clock's drift in parts per million.
    pub drift_ppm: i64,
    /// Timers armed and not yet fired or cancelled.
    pub pending_timers: usize,
}

/// A deterministic simulated world of nodes `0..n`, each a
/// [`Node<u64, E>`](Node), exchanging messages over a simulated network in
/// virtual time.
///
/// One thread, no wall clock, no OS randomness: the same seed, node factory
/// and sequence of calls produce the same [trace](Sim::trace) and
/// [trace hash](Sim::trace_hash), bit for bit, on every platform.
pub struct Sim<E: SimEvent> {
    w: World<E>,
    trace: Trace<E>,
    factory: NodeFactory<E>,
    scratch: Vec<NodeOutput<u64, E>>,
}

/// A copy of a whole world at one virtual time (for timeline scrubbing).
/// Restore it with [`Sim::restore`] or [`Sim::from_snapshot`].
///
/// Disks are the one shared part: the nodes of a snapshot and of the world
/// it came from hold handles to the same [`SimDisk`]s, so the snapshot keeps
/// a copy of their contents and restoring writes it back. Run one world of a
/// lineage at a time when nodes keep disk handles.
pub struct Snapshot<E: SimEvent> {
    w: World<E>,
    hash: HashState,
    trace_mode: TraceMode,
    disks: Vec<DiskContents>,
    factory: NodeFactory<E>,
}

impl<E: SimEvent> Clone for Snapshot<E> {
    fn clone(&self) -> Self {
        Snapshot {
            w: self.w.clone(),
            hash: self.hash.clone(),
            trace_mode: self.trace_mode,
            disks: self.disks.clone(),
            factory: self.factory.clone(),
        }
    }
}

impl<E: SimEvent> Snapshot<E> {
    /// The virtual time the snapshot was taken at.
    pub fn time(&self) -> Time {
        self.w.now
    }

    /// How many trace entries had been recorded when it was taken.
    pub fn trace_len(&self) -> u64 {
        self.hash.total()
    }
}

fn wire_reason(e: &WireError) -> DropReason {
    match e {
        WireError::TooLarge { .. } => DropReason::TooLarge,
        WireError::Version { .. } => DropReason::BadVersion,
        WireError::Malformed(_) => DropReason::Malformed,
        WireError::UnknownRing(_) => DropReason::UnknownRing,
    }
}

fn len_u32(n: u64) -> u32 {
    u32::try_from(n).unwrap_or(u32::MAX)
}

impl Sim<ShenEvent<u64>> {
    /// A world whose nodes run the standard ring stack `stack`.
    pub fn with_stack(config: SimConfig, stack: StackConfig) -> Result<Self, SimError> {
        Sim::new(config, stack_factory(stack))
    }
}

impl<E: SimEvent> Sim<E> {
    /// A world of `config.nodes` nodes built by `factory`, all started at
    /// virtual time zero (in id order).
    pub fn new(config: SimConfig, factory: NodeFactory<E>) -> Result<Self, SimError> {
        let global = config
            .network
            .compile("network")
            .map_err(SimError::Invalid)?;
        if config.nodes > MAX_NODES {
            return Err(SimError::Invalid(format!(
                "nodes: at most {MAX_NODES} nodes, got {}",
                config.nodes
            )));
        }
        let hosts = (0..config.nodes)
            .map(|id| Host::new(config.seed, id))
            .collect();
        let mut sim = Sim {
            w: World {
                seed: config.seed,
                now: Time::ZERO,
                next_msg: 0,
                steps: 0,
                queue: Queue::default(),
                hosts,
                members: (0..config.nodes).collect(),
                founders: (0..config.nodes).collect(),
                net: config.network,
                global,
                links: BTreeMap::new(),
                partitions: Partitions::default(),
                held_links: BTreeSet::new(),
                parked: Vec::new(),
                cancelled: BTreeSet::new(),
                totals: Traffic::default(),
                events: EventCounts::default(),
                ring_names: BTreeMap::new(),
                fsync: Duration::ZERO,
            },
            trace: Trace::new(config.trace),
            factory,
            scratch: Vec::new(),
        };
        for i in 0..sim.w.hosts.len() {
            sim.boot(i);
        }
        Ok(sim)
    }

    // ------------------------------------------------------------ reading

    /// The current virtual time.
    pub fn now(&self) -> Time {
        self.w.now
    }

    /// The world seed.
    pub fn seed(&self) -> u64 {
        self.w.seed
    }

    /// How many nodes the world has (running or crashed).
    pub fn node_count(&self) -> u64 {
        self.w.hosts.len() as u64
    }

    /// How many events have been processed.
    pub fn steps(&self) -> u64 {
        self.w.steps
    }

    /// How many events are queued.
    pub fn pending_events(&self) -> usize {
        self.w.queue.heap.len()
    }

    /// When the next queued event is due.
    pub fn next_event_at(&self) -> Option<Time> {
        self.w.queue.heap.peek().map(|e| e.at)
    }

    /// Whether any queued event (delivery, timer or scheduled fault) is due
    /// at exactly `t`. Lets a live driver pick a fault time that replays
    /// identically when the fault is scheduled up front instead.
    pub fn has_event_at(&self, t: Time) -> bool {
        self.w.queue.heap.iter().any(|e| e.at == t)
    }

    fn index(&self, id: u64) -> Result<usize, SimError> {
        usize::try_from(id)
            .ok()
            .filter(|i| *i < self.w.hosts.len())
            .ok_or(SimError::NoSuchNode(id))
    }

    /// Node `id`'s state machine, if it exists and is running (inspect a
    /// ring with [`Node::ring`]).
    pub fn node(&self, id: u64) -> Option<&Node<u64, E>> {
        let i = self.index(id).ok()?;
        self.w.hosts[i].node.as_ref()
    }

    /// Node `id`'s disk.
    pub fn disk(&self, id: u64) -> Option<&SimDisk> {
        let i = self.index(id).ok()?;
        Some(&self.w.hosts[i].disk)
    }

    /// Node `id`'s status.
    pub fn node_status(&self, id: u64) -> Option<NodeStatus> {
        let i = self.index(id).ok()?;
        let h = &self.w.hosts[i];
        Some(NodeStatus {
            up: h.node.is_some(),
            incarnation: h.incarnation,
            paused_until: h.paused_until.filter(|t| *t > self.w.now),
            local_time: h.clock.local(self.w.now),
            drift_ppm: h.clock.drift_ppm(),
            pending_timers: h.timers.len(),
        })
    }

    /// The trace.
    pub fn trace(&self) -> &Trace<E> {
        &self.trace
    }

    /// The trace, to change its retention or clear kept entries.
    pub fn trace_mut(&mut self) -> &mut Trace<E> {
        &mut self.trace
    }

    /// The running hash of every trace entry so far.
    pub fn trace_hash(&self) -> u64 {
        self.trace.hash()
    }

    /// Traffic over the whole world.
    pub fn traffic(&self) -> Traffic {
        self.w.totals
    }

    /// Traffic over the whole world, per ring.
    pub fn traffic_by_ring(&self) -> BTreeMap<RingId, Traffic> {
        let mut m: BTreeMap<RingId, Traffic> = BTreeMap::new();
        for h in &self.w.hosts {
            for (r, t) in &h.traffic.0 {
                *m.entry(*r).or_default() += *t;
            }
        }
        m
    }

    /// Node `id`'s traffic, per ring.
    pub fn node_traffic(&self, id: u64) -> Option<BTreeMap<RingId, Traffic>> {
        let i = self.index(id).ok()?;
        Some(self.w.hosts[i].traffic.0.iter().copied().collect())
    }

    /// The name of ring `id`, as reported by the nodes that run it.
    pub fn ring_name(&self, id: RingId) -> Option<&'static str> {
        self.w.ring_names.get(&id).copied()
    }

    /// How many events of each name every node reported.
    pub fn event_counts(&self) -> BTreeMap<&'static str, u64> {
        self.w.events.0.iter().copied().collect()
    }

    /// How many events named `name` every node reported.
    pub fn event_count(&self, name: &str) -> u64 {
        self.w.events.get(name)
    }

    /// How many events named `name` node `id` reported.
    pub fn node_event_count(&self, id: u64, name: &str) -> u64 {
        self.index(id)
            .map(|i| self.w.hosts[i].events.get(name))
            .unwrap_or(0)
    }

    /// The global network settings.
    pub fn network(&self) -> &NetConfig {
        &self.w.net
    }

    /// Whether a partition currently cuts messages from `from` to `to`.
    pub fn is_cut(&self, from: u64, to: u64) -> bool {
        self.w.partitions.blocks(from, to)
    }

    /// Links currently held, as `(from, to)`.
    pub fn held_links(&self) -> Vec<(u64, u64)> {
        self.w.held_links.iter().copied().collect()
    }

    /// Every message in flight or parked, by id.
    pub fn in_flight(&self) -> Vec<InFlight> {
        let mut v: Vec<InFlight> = self
            .w
            .queue
            .heap
            .iter()
            .filter_map(|e| match &e.ev {
                Ev::Deliver(p) if !self.w.cancelled.contains(&p.id) => Some(InFlight {
                    id: p.id,
                    from: p.from,
                    to: p.to,
                    ring: p.env.ring,
                    bytes: len_u32(p.env.encoded_len() as u64),
                    arrives: Some(e.at),
                    envelope: p.env.clone(),
                }),
                _ => None,
            })
            .chain(self.w.parked.iter().map(|p| InFlight {
                id: p.id,
                from: p.from,
                to: p.to,
                ring: p.env.ring,
                bytes: len_u32(p.env.encoded_len() as u64),
                arrives: None,
                envelope: p.env.clone(),
            }))
            .collect();
        v.sort_by_key(|m| m.id);
        v
    }

    /// Visit the messages in flight (queued, not cancelled) whose id is at
    /// least `min_id`, without copying them: `f(id, ring, payload)`, in no
    /// particular order. Read-only (a viewer decoding what was just sent);
    /// parked messages are not visited.
    pub fn visit_in_flight_since(&self, min_id: u64, mut f: impl FnMut(u64, RingId, &[u8])) {
        for e in self.w.queue.heap.iter() {
            if let Ev::Deliver(p) = &e.ev {
                if p.id >= min_id && !self.w.cancelled.contains(&p.id) {
                    f(p.id, p.env.ring, &p.env.payload);
                }
            }
        }
    }

    // ------------------------------------------------- chosen deliveries
    //
    // A viewer (the browser simulator's delivery-choice mode) may pick the
    // next event itself instead of the queue's order: deliver one message
    // or fire one timer *now*. Deterministic like every other call: the
    // same calls at the same virtual times give the same run. A run that
    // never calls them is unchanged (same trace, same hash).

    /// The messages in flight (queued, not parked) and the live timers of
    /// running nodes, in the order they would happen.
    pub fn pending_choices(&self) -> Vec<Choice> {
        let mut v: Vec<(Time, u64, Choice)> = self
            .w
            .queue
            .heap
            .iter()
            .filter_map(|e| match &e.ev {
                Ev::Deliver(p) if !self.w.cancelled.contains(&p.id) => Some((
                    e.at,
                    e.seq,
                    Choice::Message {
                        id: p.id,
                        from: p.from,
                        to: p.to,
                        ring: p.env.ring,
                        due_us: e.at.as_micros(),
                    },
                )),
                Ev::Timer {
                    node,
                    incarnation,
                    epoch,
                    key,
                } if self.timer_is_live(*node, *incarnation, *epoch, key) => Some((
                    e.at,
                    e.seq,
                    Choice::Timer {
                        node: *node,
                        ring: key.ring,
                        token: key.token.0,
                        due_us: e.at.as_micros(),
                    },
                )),
                _ => None,
            })
            .collect();
        v.sort_by_key(|(at, seq, _)| (*at, *seq));
        v.into_iter().map(|(_, _, c)| c).collect()
    }

    fn timer_is_live(&self, node: u64, incarnation: u32, epoch: u32, key: &TimerKey) -> bool {
        self.host_index(node).is_some_and(|i| {
            let h = &self.w.hosts[i];
            h.node.is_some()
                && h.incarnation == incarnation
                && h.clock_epoch == epoch
                && h.timers.contains_key(key)
        })
    }

    /// Take the first queued event `pick` selects out of the queue.
    fn take_queued(&mut self, mut pick: impl FnMut(&Sim<E>, &Ev) -> bool) -> Option<Entry> {
        let heap = core::mem::take(&mut self.w.queue.heap);
        let mut v = heap.into_vec();
        let i = v.iter().position(|e| pick(self, &e.ev));
        let taken = i.map(|i| v.swap_remove(i));
        self.w.queue.heap = BinaryHeap::from(v);
        taken
    }

    /// Deliver message `id` now, before everything else queued.
    ///
    /// # Errors
    /// [`SimError::NoSuchMessage`] when it is not in flight (parked
    /// messages wait for their link's release).
    pub fn deliver_now(&mut self, id: u64) -> Result<(), SimError> {
        let e = self
            .take_queued(|s, ev| matches!(ev, Ev::Deliver(p) if p.id == id && !s.w.cancelled.contains(&p.id)))
            .ok_or(SimError::NoSuchMessage(id))?;
        let Ev::Deliver(p) = e.ev else {
            unreachable!("take_queued picked a delivery");
        };
        self.w.steps += 1;
        self.deliver(p);
        Ok(())
    }

    /// Fire node `node`'s timer (`ring`, `token`) now, before its time.
    ///
    /// # Errors
    /// [`SimError::NoSuchNode`], or [`SimError::Invalid`] when no such
    /// timer is armed.
    pub fn fire_timer_now(&mut self, node: u64, ring: RingId, token: u64) -> Result<(), SimError> {
        self.host_index(node).ok_or(SimError::NoSuchNode(node))?;
        let e = self
            .take_queued(|s, ev| match ev {
                Ev::Timer {
                    node: n,
                    incarnation,
                    epoch,
                    key,
                } => {
                    *n == node
                        && key.ring == ring
                        && key.token.0 == token
                        && s.timer_is_live(*n, *incarnation, *epoch, key)
                }
                _ => false,
            })
            .ok_or_else(|| {
                SimError::Invalid(format!(
                    "node {node} has no timer {token} of that ring armed"
                ))
            })?;
        let Ev::Timer {
            node,
            incarnation,
            epoch,
            key,
        } = e.ev
        else {
            unreachable!("take_queued picked a timer");
        };
        self.w.steps += 1;
        self.fire_timer(node, incarnation, epoch, key);
        Ok(())
    }

    // -------------------------------------------------------------- running

    /// Process the next event. Returns `false` when nothing is queued.
    pub fn step(&mut self) -> bool {
        let Some(e) = self.w.queue.heap.pop() else {
            return false;
        };
        if e.at > self.w.now {
            self.w.now = e.at;
        }
        self.w.steps += 1;
        match e.ev {
            Ev::Deliver(p) => self.deliver(p),
            Ev::Timer {
                node,
                incarnation,
                epoch,
                key,
            } => self.fire_timer(node, incarnation, epoch, key),
            Ev::Fault(f) => {
                // A scheduled fault that no longer applies (say, a message
                // already delivered) is skipped.
                let _ = self.apply(*f);
            }
            Ev::Flush { node, incarnation } => self.flush_node(node, incarnation),
        }
        true
    }

    /// How long a node's flush takes (its fsync; zero by default). Nodes
    /// whose rings gate their sends on durability (Ouroboros with a store)
    /// flush this long after they first have something to flush; what
    /// they do meanwhile joins the same flush (group commit), and a crash
    /// before it loses the un-synced writes and the held messages.
    pub fn set_fsync_delay(&mut self, d: Duration) {
        self.w.fsync = d;
    }

    /// The host index of node `node`, if it exists.
    fn host_index(&self, node: u64) -> Option<usize> {
        usize::try_from(node)
            .ok()
            .filter(|i| *i < self.w.hosts.len())
    }

    fn flush_node(&mut self, node: u64, incarnation: u32) {
        let now = self.w.now;
        let Some(i) = self.host_index(node) else {
            return;
        };
        let h = &mut self.w.hosts[i];
        if h.node.is_none() || h.incarnation != incarnation {
            return;
        }
        if let Some(until) = h.paused_until {
            if now < until {
                self.w.queue.push(until, Ev::Flush { node, incarnation });
                return;
            }
        }
        h.flush_pending = false;
        let local = h.clock.local(now);
        if let Some(n) = h.node.as_mut() {
            n.flush(local, &mut h.ring_rng);
        }
        self.process_outputs(i);
    }

    /// Process every event due at or before `t`, then set the clock to `t`
    /// (if later). Returns how many events were processed.
    pub fn run_until(&mut self, t: Time) -> u64 {
        let mut n = 0;
        while let Some(top) = self.w.queue.heap.peek() {
            if top.at > t {
                break;
            }
            self.step();
            n += 1;
        }
        if self.w.now < t {
            self.w.now = t;
        }
        n
    }

    /// Run for `d` of virtual time.
    pub fn run_for(&mut self, d: Duration) -> u64 {
        let t = self.w.now + d;
        self.run_until(t)
    }

    /// Process at most `max` events. Returns how many were processed.
    pub fn run_steps(&mut self, max: u64) -> u64 {
        let mut n = 0;
        while n < max && self.step() {
            n += 1;
        }
        n
    }

    // ------------------------------------------------------------ internals

    /// Build node `i` through the factory and start it.
    fn boot(&mut self, i: usize) {
        let now = self.w.now;
        let h = &mut self.w.hosts[i];
        h.incarnation = h.incarnation.wrapping_add(1);
        h.timers.clear();
        h.paused_until = None;
        let init = NodeInit {
            id: i as u64,
            incarnation: h.incarnation,
            members: &self.w.members,
            founders: &self.w.founders,
            disk: &h.disk,
        };
        let mut node = (self.factory)(&init);
        for (id, name) in node.rings() {
            self.w.ring_names.entry(id).or_insert(name);
        }
        let local = h.clock.local(now);
        let incarnation = h.incarnation;
        node.start(local, &mut h.ring_rng);
        h.node = Some(node);
        self.trace.record(
            now,
            TraceKind::NodeStarted {
                node: i as u64,
                incarnation,
            },
        );
        self.process_outputs(i);
    }

    /// Act on everything node `i` asked for, in order.
    fn process_outputs(&mut self, i: usize) {
        let mut outs = core::mem::take(&mut self.scratch);
        if let Some(node) = self.w.hosts[i].node.as_mut() {
            outs.extend(node.drain_outputs());
        }
        let me = i as u64;
        for o in outs.drain(..) {
            match o {
                NodeOutput::Send { to, envelope } => self.send(me, to, envelope),
                NodeOutput::SetTimer { key, at } => self.set_timer(i, key, at),
                NodeOutput::CancelTimer { key } => {
                    self.w.hosts[i].timers.remove(&key);
                }
                NodeOutput::Event { ring, event } => {
                    let name = event.name();
                    self.w.events.bump(name);
                    self.w.hosts[i].events.bump(name);
                    self.trace.record(
                        self.w.now,
                        TraceKind::Event {
                            node: me,
                            ring,
                            event,
                        },
                    );
                }
                NodeOutput::SendFailed { to, ring, .. } => {
                    self.trace
                        .record(self.w.now, TraceKind::SendFailed { node: me, to, ring });
                }
            }
        }
        self.scratch = outs;
        let fsync = self.w.fsync;
        let World {
            hosts, queue, now, ..
        } = &mut self.w;
        let h = &mut hosts[i];
        if !h.flush_pending && h.node.as_ref().is_some_and(|n| n.needs_flush()) {
            h.flush_pending = true;
            queue.push(
                *now + fsync,
                Ev::Flush {
                    node: me,
                    incarnation: h.incarnation,
                },
            );
        }
    }

    fn link_model(&self, from: u64, to: u64) -> &LinkModel {
        if self.w.links.is_empty() {
            &self.w.global
        } else {
            self.w
                .links
                .get(&(from, to))
                .map(|(_, m)| m)
                .unwrap_or(&self.w.global)
        }
    }

    fn count_drop(
        &mut self,
        id: u64,
        from: u64,
        to: u64,
        ring: RingId,
        bytes: u64,
        reason: DropReason,
    ) {
        if let Some(h) = usize::try_from(from)
            .ok()
            .and_then(|i| self.w.hosts.get_mut(i))
        {
            h.traffic.bump(ring, Count::Dropped, bytes);
        }
        self.w.totals.bump(Count::Dropped, bytes);
        self.trace.record(
            self.w.now,
            TraceKind::Dropped {
                id,
                from,
                to,
                ring,
                reason,
            },
        );
    }

    fn send(&mut self, from: u64, to: u64, env: Envelope) {
        let now = self.w.now;
        let id = self.w.next_msg;
        self.w.next_msg += 1;
        let bytes = env.encoded_len() as u64;
        let ring = env.ring;
        let fi = from as usize;
        self.w.hosts[fi].traffic.bump(ring, Count::Sent, bytes);
        self.w.totals.bump(Count::Sent, bytes);
        self.trace.record(
            now,
            TraceKind::Sent {
                id,
                from,
                to,
                ring,
                bytes: len_u32(bytes),
            },
        );
        if to >= self.w.hosts.len() as u64 {
            self.count_drop(id, from, to, ring, bytes, DropReason::UnknownNode);
            return;
        }
        if !self.w.partitions.is_empty() && self.w.partitions.blocks(from, to) {
            self.count_drop(id, from, to, ring, bytes, DropReason::Partition);
            return;
        }
        let w = &mut self.w;
        let model = if w.links.is_empty() {
            &w.global
        } else {
            w.links
                .get(&(from, to))
                .map(|(_, m)| m)
                .unwrap_or(&w.global)
        };
        let rng = &mut w.hosts[fi].net_rng;
        if model.lost(rng) {
            self.count_drop(id, from, to, ring, bytes, DropReason::Loss);
            return;
        }
        let delay = model.delay_us(rng);
        let dup_delay = if model.duplicated(rng) {
            Some(model.delay_us(rng))
        } else {
            None
        };
        if let Some(d2) = dup_delay {
            let copy = w.next_msg;
            w.next_msg += 1;
            w.hosts[fi].traffic.bump(ring, Count::Sent, bytes);
            w.totals.bump(Count::Sent, bytes);
            self.trace.record(now, TraceKind::Duplicated { id, copy });
            w.queue.push(
                now + Duration::from_micros(d2),
                Ev::Deliver(Packet {
                    id: copy,
                    from,
                    to,
                    env: env.clone(),
                }),
            );
        }
        w.queue.push(
            now + Duration::from_micros(delay),
            Ev::Deliver(Packet { id, from, to, env }),
        );
    }

    fn deliver(&mut self, p: Packet) {
        if !self.w.cancelled.is_empty() && self.w.cancelled.remove(&p.id) {
            return; // dropped by hand; already traced and counted
        }
        let now = self.w.now;
        let ring = p.env.ring;
        if !self.w.partitions.is_empty() && self.w.partitions.blocks(p.from, p.to) {
            let bytes = p.env.encoded_len() as u64;
            self.count_drop(p.id, p.from, p.to, ring, bytes, DropReason::Partition);
            return;
        }
        if !self.w.held_links.is_empty() && self.w.held_links.contains(&(p.from, p.to)) {
            self.trace.record(now, TraceKind::Held { id: p.id });
            self.w.parked.push(p);
            return;
        }
        let ti = p.to as usize;
        let h = &mut self.w.hosts[ti];
        if let Some(until) = h.paused_until {
            if now < until && h.node.is_some() {
                self.w.queue.push(until, Ev::Deliver(p));
                return;
            }
            h.paused_until = None;
        }
        let Some(node) = h.node.as_mut() else {
            let bytes = p.env.encoded_len() as u64;
            self.count_drop(p.id, p.from, p.to, ring, bytes, DropReason::NodeDown);
            return;
        };
        let local = h.clock.local(now);
        let bytes = p.env.encoded_len() as u64;
        match node.handle_envelope(local, &mut h.ring_rng, p.from, &p.env) {
            Ok(()) => {
                h.traffic.bump(ring, Count::Delivered, bytes);
                self.w.totals.bump(Count::Delivered, bytes);
                self.trace.record(
                    now,
                    TraceKind::Delivered {
                        id: p.id,
                        from: p.from,
                        to: p.to,
                        ring,
                    },
                );
                self.process_outputs(ti);
            }
            Err(e) => {
                self.count_drop(p.id, p.from, p.to, ring, bytes, wire_reason(&e));
            }
        }
    }

    fn set_timer(&mut self, i: usize, key: TimerKey, at_local: Time) {
        let now = self.w.now;
        let h = &mut self.w.hosts[i];
        h.timers.insert(key, at_local);
        let at = h.clock.virtual_for(at_local, now);
        let ev = Ev::Timer {
            node: i as u64,
            incarnation: h.incarnation,
            epoch: h.clock_epoch,
            key,
        };
        self.w.queue.push(at, ev);
    }

    fn fire_timer(&mut self, node: u64, incarnation: u32, epoch: u32, key: TimerKey) {
        let now = self.w.now;
        let Some(i) = self.host_index(node) else {
            return;
        };
        let h = &mut self.w.hosts[i];
        if h.node.is_none()
            || h.incarnation != incarnation
            || h.clock_epoch != epoch
            || !h.timers.contains_key(&key)
        {
            return; // stale: cancelled, re-aimed or from a previous life
        }
        if let Some(until) = h.paused_until {
            if now < until {
                self.w.queue.push(
                    until,
                    Ev::Timer {
                        node,
                        incarnation,
                        epoch,
                        key,
                    },
                );
                return;
            }
            h.paused_until = None;
        }
        h.timers.remove(&key);
        let local = h.clock.local(now);
        if let Some(n) = h.node.as_mut() {
            n.handle_timer(local, &mut h.ring_rng, key);
        }
        self.trace.record(
            now,
            TraceKind::TimerFired {
                node,
                ring: key.ring,
                token: key.token.0,
            },
        );
        self.process_outputs(i);
    }

    /// Re-aim node `i`'s armed timers after its clock changed.
    fn rearm_timers(&mut self, i: usize) {
        let now = self.w.now;
        let World { hosts, queue, .. } = &mut self.w;
        let h = &mut hosts[i];
        h.clock_epoch = h.clock_epoch.wrapping_add(1);
        for (key, at_local) in &h.timers {
            let at = h.clock.virtual_for(*at_local, now);
            queue.push(
                at,
                Ev::Timer {
                    node: i as u64,
                    incarnation: h.incarnation,
                    epoch: h.clock_epoch,
                    key: *key,
                },
            );
        }
    }

    fn crash_host(&mut self, i: usize) {
        let h = &mut self.w.hosts[i];
        h.node = None;
        h.timers.clear();
        h.paused_until = None;
        h.flush_pending = false;
    }

    /// Find a message in flight or parked.
    fn find_message(&self, id: u64) -> Option<&Packet> {
        if self.w.cancelled.contains(&id) {
            return None;
        }
        self.w.parked.iter().find(|p| p.id == id).or_else(|| {
            self.w.queue.heap.iter().find_map(|e| match &e.ev {
                Ev::Deliver(p) if p.id == id => Some(p),
                _ => None,
            })
        })
    }

    // ------------------------------------------------------- faults (live)

    /// Apply a fault or control action now. Each also has its own method
    /// ([`Sim::crash`], [`Sim::partition`], ...); every applied fault is
    /// recorded in the trace.
    pub fn apply(&mut self, fault: Fault) -> Result<(), SimError> {
        fault
            .validate("fault", self.node_count())
            .map_err(SimError::Invalid)?;
        let now = self.w.now;
        // Compile before recording so a refused fault leaves no trace.
        let compiled = match &fault {
            Fault::Network(net) => Some(net.compile("fault.network").map_err(SimError::Invalid)?),
            Fault::Link { net: Some(net), .. } => {
                Some(net.compile("fault.link.net").map_err(SimError::Invalid)?)
            }
            _ => None,
        };
        if let Fault::DropMessage(id) | Fault::DuplicateMessage(id) = &fault {
            if self.find_message(*id).is_none() {
                return Err(SimError::NoSuchMessage(*id));
            }
        }
        self.trace
            .record(now, TraceKind::Fault(Box::new(fault.clone())));
        // Validated above: node ids are in range.
        let ix = |n: u64| n as usize;
        match fault {
            Fault::Crash(n) => self.crash_host(ix(n)),
            Fault::Disk { node, fault } => self.w.hosts[ix(node)].disk.set_fault(fault),
            Fault::Restart { node, disk } => {
                let i = ix(node);
                self.crash_host(i);
                self.w.hosts[i].disk.apply_restart(disk);
                self.boot(i);
            }
            Fault::Partition(groups) => {
                let n = self.node_count();
                self.w.partitions.split(n, &groups);
            }
            Fault::OneWay { from, to } => self.w.partitions.add(Cut::new(&from, &to)),
            Fault::Heal => self.w.partitions.heal(),
            Fault::Network(net) => {
                if let Some(m) = compiled {
                    self.w.global = m;
                    self.w.net = net;
                }
            }
            Fault::Link {
                from,
                to,
                both,
                net,
            } => {
                let mut pairs = vec![(from, to)];
                if both {
                    pairs.push((to, from));
                }
                for pair in pairs {
                    match (&net, &compiled) {
                        (Some(net), Some(m)) => {
                            self.w.links.insert(pair, (net.clone(), m.clone()));
                        }
                        _ => {
                            self.w.links.remove(&pair);
                        }
                    }
                }
            }
            Fault::Hold { from, to } => {
                self.w.held_links.insert((from, to));
            }
            Fault::Release { from, to } => {
                self.w.held_links.remove(&(from, to));
                let parked = core::mem::take(&mut self.w.parked);
                for p in parked {
                    if p.from == from && p.to == to {
                        self.trace.record(now, TraceKind::Released { id: p.id });
                        self.w.queue.push(now, Ev::Deliver(p));
                    } else {
                        self.w.parked.push(p);
                    }
                }
            }
            Fault::DropMessage(id) => {
                let (from, to, ring, bytes) = match self.find_message(id) {
                    Some(p) => (p.from, p.to, p.env.ring, p.env.encoded_len() as u64),
                    None => return Ok(()),
                };
                if let Some(pos) = self.w.parked.iter().position(|p| p.id == id) {
                    self.w.parked.remove(pos);
                } else {
                    self.w.cancelled.insert(id);
                }
                self.count_drop(id, from, to, ring, bytes, DropReason::Manual);
            }
            Fault::DuplicateMessage(id) => {
                let Some(p) = self.find_message(id).cloned() else {
                    return Ok(());
                };
                let copy = self.w.next_msg;
                self.w.next_msg += 1;
                let bytes = p.env.encoded_len() as u64;
                let fi = ix(p.from);
                let delay = {
                    let model = self.link_model(p.from, p.to).clone();
                    model.delay_us(&mut self.w.hosts[fi].net_rng)
                };
                self.w.hosts[fi]
                    .traffic
                    .bump(p.env.ring, Count::Sent, bytes);
                self.w.totals.bump(Count::Sent, bytes);
                self.trace.record(now, TraceKind::Duplicated { id, copy });
                self.w.queue.push(
                    now + Duration::from_micros(delay),
                    Ev::Deliver(Packet { id: copy, ..p }),
                );
            }
            Fault::Skew { node, ms } => {
                let i = ix(node);
                let us = (ms * 1000.0).round() as i64;
                self.w.hosts[i].clock.step(now, us);
                self.rearm_timers(i);
            }
            Fault::Drift { node, ppm } => {
                let i = ix(node);
                self.w.hosts[i].clock.set_drift(now, ppm);
                self.rearm_timers(i);
            }
            Fault::Pause { node, ms } => {
                let h = &mut self.w.hosts[ix(node)];
                if h.node.is_some() {
                    let until = now + Duration::from_micros(ms_to_us(ms));
                    h.paused_until = Some(h.paused_until.map_or(until, |u| u.max(until)));
                }
            }
            Fault::MemberFailed(member) | Fault::MemberJoined(member) => {
                let failed = matches!(fault, Fault::MemberFailed(_));
                for i in 0..self.w.hosts.len() {
                    if i as u64 == member {
                        continue;
                    }
                    let h = &mut self.w.hosts[i];
                    let local = h.clock.local(now);
                    let Some(node) = h.node.as_mut() else {
                        continue;
                    };
                    if failed {
                        node.member_failed(local, &mut h.ring_rng, &member);
                    } else {
                        node.member_joined(local, &mut h.ring_rng, &member);
                    }
                    self.process_outputs(i);
                }
            }
        }
        Ok(())
    }

    /// Schedule `fault` at virtual time `at` (now, if `at` has passed).
    /// Node ids are checked now; a message fault whose message is gone by
    /// then is skipped.
    pub fn schedule(&mut self, at: Time, fault: Fault) -> Result<(), SimError> {
        fault
            .validate("fault", self.node_count())
            .map_err(SimError::Invalid)?;
        let at = at.max(self.w.now);
        self.w.queue.push(at, Ev::Fault(Box::new(fault)));
        Ok(())
    }

    /// Give node `id`'s disk a storage fault, or clear it (see
    /// [`Fault::Disk`]).
    pub fn set_disk_fault(&mut self, id: u64, fault: Option<DiskFault>) -> Result<(), SimError> {
        self.apply(Fault::Disk { node: id, fault })
    }

    /// Crash node `id` (see [`Fault::Crash`]).
    pub fn crash(&mut self, id: u64) -> Result<(), SimError> {
        self.apply(Fault::Crash(id))
    }

    /// Restart node `id` with a fresh incarnation; `disk` says what
    /// survives on its disk (see [`Fault::Restart`]).
    pub fn restart(&mut self, id: u64, disk: RestartMode) -> Result<(), SimError> {
        self.apply(Fault::Restart { node: id, disk })
    }

    /// Cut the world into `groups` (two-way; unlisted nodes form one more
    /// group).
    pub fn partition(&mut self, groups: Vec<Vec<u64>>) -> Result<(), SimError> {
        self.apply(Fault::Partition(groups))
    }

    /// Cut messages from `from` nodes to `to` nodes (one way).
    pub fn partition_one_way(&mut self, from: Vec<u64>, to: Vec<u64>) -> Result<(), SimError> {
        self.apply(Fault::OneWay { from, to })
    }

    /// Remove every partition.
    pub fn heal(&mut self) -> Result<(), SimError> {
        self.apply(Fault::Heal)
    }

    /// Replace the global network settings.
    pub fn set_network(&mut self, net: NetConfig) -> Result<(), SimError> {
        self.apply(Fault::Network(net))
    }

    /// Give link `from` → `to` its own settings (`None` clears them).
    pub fn set_link(&mut self, from: u64, to: u64, net: Option<NetConfig>) -> Result<(), SimError> {
        self.apply(Fault::Link {
            from,
            to,
            both: false,
            net,
        })
    }

    /// Hold link `from` → `to`: park messages arriving over it.
    pub fn hold(&mut self, from: u64, to: u64) -> Result<(), SimError> {
        self.apply(Fault::Hold { from, to })
    }

    /// Release link `from` → `to`, delivering its parked messages now.
    pub fn release(&mut self, from: u64, to: u64) -> Result<(), SimError> {
        self.apply(Fault::Release { from, to })
    }

    /// Drop one message in flight (or parked) by id.
    pub fn drop_message(&mut self, id: u64) -> Result<(), SimError> {
        self.apply(Fault::DropMessage(id))
    }

    /// Send a copy of one message in flight (or parked), with fresh latency.
    pub fn duplicate_message(&mut self, id: u64) -> Result<(), SimError> {
        self.apply(Fault::DuplicateMessage(id))
    }

    /// Step node `id`'s clock by `delta_us` microseconds.
    pub fn skew_clock(&mut self, id: u64, delta_us: i64) -> Result<(), SimError> {
        self.apply(Fault::Skew {
            node: id,
            ms: delta_us as f64 / 1000.0,
        })
    }

    /// Run node `id`'s clock `ppm` parts per million fast (negative: slow).
    pub fn set_drift(&mut self, id: u64, ppm: i64) -> Result<(), SimError> {
        self.apply(Fault::Drift { node: id, ppm })
    }

    /// Stall node `id` for `d` (deliveries and timers wait).
    pub fn pause(&mut self, id: u64, d: Duration) -> Result<(), SimError> {
        self.apply(Fault::Pause {
            node: id,
            ms: d.as_micros() as f64 / 1000.0,
        })
    }

    /// Tell every other running node that `member` failed.
    pub fn member_failed(&mut self, member: u64) -> Result<(), SimError> {
        self.apply(Fault::MemberFailed(member))
    }

    /// Tell every other running node that `member` joined.
    pub fn member_joined(&mut self, member: u64) -> Result<(), SimError> {
        self.apply(Fault::MemberJoined(member))
    }

    /// Add a node to the world (id: the next index) and start it. Existing
    /// nodes are not told (see [`Sim::member_joined`]); it is not a
    /// founder ([`NodeInit::founders`]), so the standard stack starts it as
    /// a node joining the running cluster (Sundial seeds: the founders).
    pub fn add_node(&mut self) -> Result<u64, SimError> {
        let id = self.node_count();
        if id >= MAX_NODES {
            return Err(SimError::Invalid(format!(
                "nodes: at most {MAX_NODES} nodes"
            )));
        }
        self.w.hosts.push(Host::new(self.w.seed, id));
        self.w.members.push(id);
        self.boot(self.w.hosts.len() - 1);
        Ok(id)
    }

    /// Run a local command against ring `R` on node `id` (for example "ask
    /// for the token") and act on what it produced. `Ok(None)` when the node
    /// does not run `R`.
    pub fn command<R, T>(
        &mut self,
        id: u64,
        f: impl FnOnce(&mut R, &mut Ctx<'_, u64, R::Msg, R::Event>) -> T,
    ) -> Result<Option<T>, SimError>
    where
        R: Ring<u64>,
        R::Event: Into<E>,
    {
        let i = self.index(id)?;
        let now = self.w.now;
        let h = &mut self.w.hosts[i];
        let local = h.clock.local(now);
        let node = h.node.as_mut().ok_or(SimError::NodeDown(id))?;
        let r = node.command::<R, T>(local, &mut h.ring_rng, f);
        self.process_outputs(i);
        Ok(r)
    }

    // ------------------------------------------------------------ snapshots

    /// Copy the whole world (nodes, queue, network, RNGs, counters, disk
    /// contents and the trace hash; not the kept trace entries).
    pub fn snapshot(&self) -> Snapshot<E> {
        Snapshot {
            w: self.w.clone(),
            hash: self.trace.hash_state(),
            trace_mode: self.trace.mode(),
            disks: self.w.hosts.iter().map(|h| h.disk.contents()).collect(),
            factory: self.factory.clone(),
        }
    }

    /// Go back (or forward) to `snap`. Kept trace entries recorded after the
    /// snapshot are discarded; the trace hash continues from the snapshot's.
    pub fn restore(&mut self, snap: &Snapshot<E>) {
        self.w = snap.w.clone();
        for (h, c) in self.w.hosts.iter().zip(&snap.disks) {
            h.disk.set_contents(c.clone());
        }
        self.trace.rewind(&snap.hash);
        self.factory = snap.factory.clone();
    }

    /// A new simulator continuing from `snap` (with no kept trace entries
    /// before it).
    pub fn from_snapshot(snap: &Snapshot<E>) -> Sim<E> {
        let mut trace = Trace::new(snap.trace_mode);
        trace.rewind(&snap.hash);
        let sim = Sim {
            w: snap.w.clone(),
            trace,
            factory: snap.factory.clone(),
            scratch: Vec::new(),
        };
        for (h, c) in sim.w.hosts.iter().zip(&snap.disks) {
            h.disk.set_contents(c.clone());
        }
        sim
    }
}
