//! The event loop: one libp2p swarm, one sans-IO node, real time.
//!
//! # The swarm
//! [`Transport::new`] builds TCP + Noise + Yamux and (feature `quic`) QUIC,
//! or, with a PSK, TCP wrapped in `pnet` only (a QUIC listen address is then
//! an error); identify with listen addresses hidden (only *external*
//! addresses are advertised: listen addresses minus loopback, unless the
//! node listens on loopback only); mDNS; Kademlia in forced server mode,
//! bootstrapped every 5 s from whatever is known; libp2p-stream for
//! `/shen/<PROTOCOL_VERSION>`.
//!
//! # The loop
//! [`Transport::run`] is one `select!` loop owning the node (it is `!Send`):
//! swarm events, inbound envelopes, writer exits, commands (`Handle::run`
//! closures, `Handle::shutdown`), the earliest ring timer (a
//! `BTreeSet<(Time, seq, TimerKey)>`), housekeeping and a 1 s host tick.
//! After every input it drains the node's outputs (sends to itself are
//! delivered locally). Then, while the node `needs_flush()`, it takes up to
//! 512 more ready inputs without waiting, calls `Node::flush` once for all
//! of them (one fsync: group commit) and drains again.
//!
//! # Sending
//! Two lanes per peer (see `lanes`): control, and bulk for the rings named
//! in [`Config::bulk_rings`]. One writer task per peer and lane with a
//! bounded queue (1,024 frames and 8 MiB; when full, messages are dropped
//! and counted — rings tolerate loss) keeps one
//! long-lived outbound stream (dialling if needed) and writes everything
//! already queued, up to 256 KiB, in one write (one Yamux frame, one Noise
//! frame, one `sendto`); a lone frame is written without a copy. (One write
//! per frame cost about five `sendto`s per append; gathering them took
//! `shen bench` at 256 clients from about 15k to 23–28k writes/s.) A peer
//! whose stream cannot be opened is not retried for 1 s, and is looked up
//! in the DHT (at most every 3 s): its entry in our routing table is
//! dropped first (those addresses just failed; a lookup starting from
//! them would mark the peer failed and ignore what others report), and
//! the addresses the lookup returns are dialled even while another dial
//! is under way. That is how two members that restarted on new ports find
//! each other again through a third: without it they only heard of each
//! other through its gossip, suspected each other forever, and a chain
//! between them stalled.
//!
//! Whenever our external addresses change (a listener comes up, AutoNAT
//! confirms one, a relay reservation), identify is pushed to every
//! connected peer at once: one that identified us earlier (a restart
//! dials the stored peers before its listener is up) would otherwise
//! learn the new addresses only at the next periodic identify, a minute
//! later, and could not hand them on.
//!
//! # Receiving
//! One reader task per inbound stream decodes frames and envelopes and
//! forwards them through a bounded channel (back-pressure), one per lane:
//! 4,096 control frames, 32 bulk frames. A malformed,
//! oversized, empty or wrong-version frame, or more than
//! `max_frames_per_sec` (default 20,000/s, burst 40,000), closes the stream
//! and the loop closes the peer's connection with a `warn!` line; an
//! envelope for a ring this node does not run (yet) is logged at debug level
//! only. A peer may have at most 4 inbound Shen streams open at once (each
//! can buffer one 1 MiB frame).
//!
//! # Discovery and shutdown
//! mDNS results are filtered (no loopback unless we listen only on loopback,
//! no unspecified addresses, no QUIC under a PSK), added to Kademlia and
//! dialled. A peer whose identify lists `/shen/<version>` is handed to
//! `Host::on_peer` on every new connection, so a peer seen again after a
//! partition is re-introduced. `--peer` addresses are re-dialled every 5 s
//! until connected. On shutdown `Host::on_shutdown` runs (Sundial leave) and
//! the loop keeps going for `shutdown_grace` (500 ms) so the leave is sent.

use std::collections::{BTreeSet, HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use futures::{AsyncReadExt, AsyncWriteExt, StreamExt};
use libp2p::core::transport::ListenerId;
use libp2p::core::transport::Transport as _;
use libp2p::core::upgrade::Version;
use libp2p::identity::Keypair;
use libp2p::multiaddr::Protocol;
use libp2p::pnet::{PnetConfig, PreSharedKey};
use libp2p::swarm::behaviour::toggle::Toggle;
use libp2p::swarm::dial_opts::{DialOpts, PeerCondition};
use libp2p::swarm::{ConnectionId, NetworkBehaviour, SwarmEvent};
use libp2p::{
    autonat, dcutr, identify, kad, mdns, noise, relay, tcp, yamux, Multiaddr, PeerId,
    StreamProtocol, Swarm,
};
use rand_chacha::ChaCha8Rng;
use rand_core::{RngCore, SeedableRng};
use serde::Serialize;
use shen_rings::{Envelope, Node, NodeOutput, RingId, Time, TimerKey, WireError};

use crate::lanes::{lane_of, Lane, Queued, INBOUND_BULK_FRAMES, QUEUE_FRAMES};
use tokio::sync::{mpsc, oneshot};
use tracing::{debug, info, warn};

use crate::dial::Hints;
use crate::frame::{encode_envelope, FrameDecoder};
use crate::peers::{unix_now, PeerStore};
use crate::reach::{is_relayed, is_relayed_endpoint, Reach, MAX_RELAYS};
use crate::relay::{ConnKind, RelayLimits};
use crate::{shen_protocol, PeerKey, IDENTIFY_VERSION, KAD_PROTOCOL};

/// Transport settings.
#[derive(Clone)]
pub struct Config {
    /// The node's identity (see [`crate::identity::load_or_create_identity`]).
    pub keypair: Keypair,
    /// Addresses to listen on (`/ip4/0.0.0.0/tcp/0`, `/ip4/0.0.0.0/udp/0/quic-v1`).
    pub listen: Vec<Multiaddr>,
    /// Peers to dial at start (and again until connected): Kademlia
    /// bootstrap and Sundial join candidates. Optional.
    pub bootstrap: Vec<Multiaddr>,
    /// Private cluster key: TCP is wrapped in pnet and QUIC is disabled.
    pub psk: Option<PreSharedKey>,
    /// mDNS discovery on the LAN.
    pub mdns: bool,
    /// How often mDNS asks the LAN.
    pub mdns_query_interval: Duration,
    /// How often Kademlia re-bootstraps and unconnected `bootstrap`
    /// addresses are re-dialled.
    pub housekeeping_interval: Duration,
    /// Inbound frames per second one stream may send (twice that as a
    /// burst) before its connection is closed as a flood.
    pub max_frames_per_sec: u32,
    /// Close connections idle for this long.
    pub idle_timeout: Duration,
    /// After [`Handle::shutdown`], keep running this long so the leave
    /// messages are flushed.
    pub shutdown_grace: Duration,
    /// Where the peer store lives (`DIR/peers.json`); `None`: in memory.
    pub peer_store: Option<std::path::PathBuf>,
    /// The bounds of the Circuit Relay v2 server this node offers once
    /// it is publicly reachable.
    pub relay: RelayLimits,
    /// Rings whose messages are bulk data (e.g. the log's replication):
    /// they travel in their own lane, so other rings' messages never wait
    /// behind them. Empty: one lane for all.
    pub bulk_rings: Vec<RingId>,
}

impl Config {
    /// Defaults: TCP and (with the `quic` feature) QUIC on every interface,
    /// mDNS on, no PSK.
    pub fn new(keypair: Keypair) -> Config {
        let mut listen: Vec<Multiaddr> =
            vec!["/ip4/0.0.0.0/tcp/0".parse().expect("valid multiaddr")];
        if HAS_QUIC {
            listen.push(
                "/ip4/0.0.0.0/udp/0/quic-v1"
                    .parse()
                    .expect("valid multiaddr"),
            );
        }
        Config {
            keypair,
            listen,
            bootstrap: Vec::new(),
            psk: None,
            mdns: true,
            mdns_query_interval: Duration::from_secs(5),
            housekeeping_interval: Duration::from_secs(5),
            max_frames_per_sec: 20_000,
            idle_timeout: Duration::from_secs(60),
            shutdown_grace: Duration::from_millis(500),
            peer_store: None,
            relay: RelayLimits::default(),
            bulk_rings: Vec::new(),
        }
    }
}

/// Why the transport could not start.
#[derive(Debug, thiserror::Error)]
pub enum TransportError {
    /// Building the swarm failed.
    #[error("cannot build the libp2p swarm: {0}")]
    Build(String),
    /// A listen address was refused.
    #[error("cannot listen on {addr}: {reason}")]
    Listen {
        /// The address.
        addr: Multiaddr,
        /// Why.
        reason: String,
    },
    /// A listen address uses a transport that is off (QUIC with a PSK, or
    /// only QUIC in a build without the `quic` feature).
    #[error("{0}")]
    Unsupported(String),
}

/// Counters exported on `/metrics`.
#[derive(Default, Debug)]
pub struct Metrics {
    messages_sent: AtomicU64,
    bytes_sent: AtomicU64,
    messages_received: AtomicU64,
    bytes_received: AtomicU64,
    messages_dropped: AtomicU64,
    queue_full_drops: AtomicU64,
    bad_frames: AtomicU64,
    floods: AtomicU64,
    connections_opened: AtomicU64,
    connections_closed: AtomicU64,
    peers_discovered: AtomicU64,
    timers_fired: AtomicU64,
    punches_tried: AtomicU64,
    punches_succeeded: AtomicU64,
    relay_reservations_made: AtomicU64,
    relay_reservations_served: AtomicU64,
    relay_circuits_served: AtomicU64,
    relay_requests_denied: AtomicU64,
    relayed_bytes: AtomicU64,
    reachability_probes_ok: AtomicU64,
    reachability_probes_failed: AtomicU64,
}

/// A copy of the counters.
#[derive(Clone, Debug, Default, Serialize, PartialEq, Eq)]
pub struct MetricsSnapshot {
    /// Envelopes queued to peers.
    pub messages_sent: u64,
    /// Their encoded bytes (frames with prefix).
    pub bytes_sent: u64,
    /// Envelopes received and handed to the node.
    pub messages_received: u64,
    /// Their bytes.
    pub bytes_received: u64,
    /// Envelopes dropped (peer unreachable, queue full).
    pub messages_dropped: u64,
    /// Of those, dropped because the peer's lane queue was full (in frames
    /// or bytes): the peer or the link to it is slower than what is sent.
    pub queue_full_drops: u64,
    /// Malformed, oversized or wrong-version frames (connection closed).
    pub bad_frames: u64,
    /// Streams closed for exceeding the frame rate.
    pub floods: u64,
    /// Connections established.
    pub connections_opened: u64,
    /// Connections closed.
    pub connections_closed: u64,
    /// Times a Shen peer was handed to the host (identify).
    pub peers_discovered: u64,
    /// Ring timers fired.
    pub timers_fired: u64,
    /// DCUtR hole punches attempted (either side).
    pub punches_tried: u64,
    /// Hole punches that gave a direct connection.
    pub punches_succeeded: u64,
    /// Relay reservations this node obtained (renewals included).
    pub relay_reservations_made: u64,
    /// Relay reservations this node granted as a relay.
    pub relay_reservations_served: u64,
    /// Circuits this node relayed.
    pub relay_circuits_served: u64,
    /// Reservation and circuit requests this relay refused (limits).
    pub relay_requests_denied: u64,
    /// Shen bytes sent to and received from peers reached only through a relay.
    pub relayed_bytes: u64,
    /// AutoNAT v2 dial-backs that confirmed an address.
    pub reachability_probes_ok: u64,
    /// AutoNAT v2 dial-backs that failed.
    pub reachability_probes_failed: u64,
}

impl Metrics {
    fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }

    /// Read every counter.
    pub fn snapshot(&self) -> MetricsSnapshot {
        let g = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MetricsSnapshot {
            messages_sent: g(&self.messages_sent),
            bytes_sent: g(&self.bytes_sent),
            messages_received: g(&self.messages_received),
            bytes_received: g(&self.bytes_received),
            messages_dropped: g(&self.messages_dropped),
            queue_full_drops: g(&self.queue_full_drops),
            bad_frames: g(&self.bad_frames),
            floods: g(&self.floods),
            connections_opened: g(&self.connections_opened),
            connections_closed: g(&self.connections_closed),
            peers_discovered: g(&self.peers_discovered),
            timers_fired: g(&self.timers_fired),
            punches_tried: g(&self.punches_tried),
            punches_succeeded: g(&self.punches_succeeded),
            relay_reservations_made: g(&self.relay_reservations_made),
            relay_reservations_served: g(&self.relay_reservations_served),
            relay_circuits_served: g(&self.relay_circuits_served),
            relay_requests_denied: g(&self.relay_requests_denied),
            relayed_bytes: g(&self.relayed_bytes),
            reachability_probes_ok: g(&self.reachability_probes_ok),
            reachability_probes_failed: g(&self.reachability_probes_failed),
        }
    }
}

/// What the loop knows about the network, shown to commands and the host.
#[derive(Clone, Debug, Serialize)]
pub struct NetView {
    /// This node.
    pub peer_id: String,
    /// Addresses the swarm listens on.
    pub listen_addrs: Vec<String>,
    /// Addresses advertised to peers (listen addresses without loopback,
    /// unless the node listens only on loopback).
    pub external_addrs: Vec<String>,
    /// Peers with an open connection.
    pub connected: Vec<String>,
    /// Whether a pre-shared key is in force.
    pub private: bool,
    /// Seconds since the transport started.
    pub uptime_s: f64,
    /// This node's reachability: `public`, `private`, `unknown`, `local`.
    pub reachability: String,
    /// How each connected peer is reached: `direct`, `relayed`, `hole-punched`.
    pub peers: Vec<PeerConn>,
    /// Relays holding a reservation for this node.
    pub relays: Vec<String>,
    #[serde(skip)]
    connected_ids: Vec<PeerId>,
}

/// One connected peer and how it is reached.
#[derive(Clone, Debug, Serialize, PartialEq, Eq)]
pub struct PeerConn {
    /// The peer.
    pub peer_id: String,
    /// `direct`, `relayed` or `hole-punched` (the best of its connections).
    pub kind: String,
}

impl NetView {
    /// Connected peers as ids.
    pub fn connected_peers(&self) -> &[PeerId] {
        &self.connected_ids
    }
}

type NodeFn<E> = Box<dyn FnOnce(&mut Node<PeerKey, E>, &NetView, Time, &mut dyn RngCore) + Send>;

/// A request to the event loop.
pub enum Command<E: 'static> {
    /// Run this against the node (from an admin request, a client...).
    Run(NodeFn<E>),
    /// Leave gracefully ([`Host::on_shutdown`]), flush for the grace
    /// period, stop.
    Shutdown,
}

/// A cloneable, `Send` handle to a running transport.
pub struct Handle<E: 'static> {
    tx: mpsc::UnboundedSender<Command<E>>,
    metrics: Arc<Metrics>,
    peer_id: PeerId,
}

impl<E: 'static> Clone for Handle<E> {
    fn clone(&self) -> Self {
        Handle {
            tx: self.tx.clone(),
            metrics: self.metrics.clone(),
            peer_id: self.peer_id,
        }
    }
}

impl<E: 'static> Handle<E> {
    /// Run `f` on the loop's thread with the node; the answer arrives on
    /// the returned receiver (dropped if the loop has stopped).
    pub fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce(&mut Node<PeerKey, E>, &NetView, Time, &mut dyn RngCore) -> T + Send + 'static,
    ) -> oneshot::Receiver<T> {
        let (tx, rx) = oneshot::channel();
        let _ = self.tx.send(Command::Run(Box::new(move |n, v, t, r| {
            let _ = tx.send(f(n, v, t, r));
        })));
        rx
    }

    /// Ask the loop to leave and stop.
    pub fn shutdown(&self) {
        let _ = self.tx.send(Command::Shutdown);
    }

    /// The counters.
    pub fn metrics(&self) -> MetricsSnapshot {
        self.metrics.snapshot()
    }

    /// This node's PeerId.
    pub fn peer_id(&self) -> PeerId {
        self.peer_id
    }
}

/// The application's reactions (this is where ring-specific policy lives;
/// the transport itself knows no protocol).
pub trait Host<E: 'static> {
    /// A peer speaking the Shen protocol was found (mDNS, Kademlia, a
    /// `--peer` address) and identified itself. Called on every new
    /// connection's identify exchange.
    fn on_peer(
        &mut self,
        _node: &mut Node<PeerKey, E>,
        _now: Time,
        _rng: &mut dyn RngCore,
        _peer: PeerKey,
    ) {
    }
    /// A ring event.
    fn on_event(&mut self, _now: Time, _ring: RingId, _event: &E) {}
    /// The listen addresses changed.
    fn on_listen(&mut self, _view: &NetView) {}
    /// Called about once a second. Returns peers whose connections should
    /// be closed (for example: connected, but silent to the rings for a long
    /// time — after a partition a stale TCP connection can sit in
    /// retransmission back-off for tens of seconds, while a fresh one, dialled
    /// on the next discovery, works at once).
    fn on_tick(
        &mut self,
        _node: &mut Node<PeerKey, E>,
        _view: &NetView,
        _now: Time,
        _rng: &mut dyn RngCore,
    ) -> Vec<PeerKey> {
        Vec::new()
    }
    /// Shutdown was requested: leave gracefully.
    fn on_shutdown(&mut self, _node: &mut Node<PeerKey, E>, _now: Time, _rng: &mut dyn RngCore) {}
}

/// Whether `addr` is a loopback IP address.
pub fn is_loopback(addr: &Multiaddr) -> bool {
    addr.iter().any(|p| match p {
        Protocol::Ip4(ip) => ip.is_loopback(),
        Protocol::Ip6(ip) => ip.is_loopback(),
        _ => false,
    })
}

fn ip_of(addr: &Multiaddr) -> Option<IpAddr> {
    addr.iter().find_map(|p| match p {
        Protocol::Ip4(ip) => Some(IpAddr::V4(ip)),
        Protocol::Ip6(ip) => Some(IpAddr::V6(ip)),
        _ => None,
    })
}

/// Whether this build carries the QUIC transport (cargo feature `quic`).
pub const HAS_QUIC: bool = cfg!(feature = "quic");

fn is_quic(addr: &Multiaddr) -> bool {
    addr.iter()
        .any(|p| matches!(p, Protocol::QuicV1 | Protocol::Quic))
}

/// In a build without QUIC: drop the QUIC listen addresses (with a
/// warning, as the node does for QUIC under a PSK); only QUIC is an error.
fn drop_quic_listeners(listen: &mut Vec<Multiaddr>) -> Result<(), TransportError> {
    let before = listen.len();
    listen.retain(|a| {
        let quic = is_quic(a);
        if quic {
            warn!(addr = %a, "not listening: this build has no QUIC (cargo feature `quic` is off)");
        }
        !quic
    });
    if listen.is_empty() && before > 0 {
        return Err(TransportError::Unsupported(
            "every listen address is QUIC, and this build has no QUIC (cargo feature `quic` is off); add a TCP address".into(),
        ));
    }
    Ok(())
}

#[derive(NetworkBehaviour)]
struct Behaviour {
    stream: libp2p_stream::Behaviour,
    identify: identify::Behaviour,
    kad: kad::Behaviour<kad::store::MemoryStore>,
    mdns: Toggle<mdns::tokio::Behaviour>,
    hints: Hints,
    relay_client: relay::client::Behaviour,
    relay: crate::relay::ReachableRelay,
    dcutr: dcutr::Behaviour,
    autonat_client: autonat::v2::client::Behaviour,
    autonat_server: autonat::v2::server::Behaviour,
}

/// One open connection.
struct Conn {
    kind: ConnKind,
    remote: Multiaddr,
    dialer: bool,
}

enum Inbound {
    Frame {
        peer: PeerId,
        env: Envelope,
        bytes: usize,
    },
    Bad {
        peer: PeerId,
        reason: String,
        flood: bool,
    },
}

struct WriterExit {
    peer: PeerId,
    lane: Lane,
    gen: u64,
    failed_open: bool,
}

struct Outbound {
    tx: mpsc::Sender<Vec<u8>>,
    queued: Queued,
    gen: u64,
}

/// Inbound Shen streams one peer may have open at once (a node opens one
/// per lane; the rest is headroom for reconnects).
pub const MAX_INBOUND_STREAMS_PER_PEER: usize = 8;

fn release(open: &std::sync::Mutex<HashMap<PeerId, usize>>, peer: PeerId) {
    if let Ok(mut m) = open.lock() {
        if let Some(n) = m.get_mut(&peer) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                m.remove(&peer);
            }
        }
    }
}

/// How long a peer whose stream could not be opened is not retried.
const OPEN_BACKOFF: Duration = Duration::from_secs(1);

/// Most ready inputs (frames, commands) taken into one flush.
const GROUP_COMMIT_MAX: usize = 512;

/// Flushes in a row before the loop waits for input again (a flush can
/// release messages to this node itself, which may need another).
const MAX_FLUSH_ROUNDS: usize = 16;

/// A libp2p swarm ready to drive a node.
pub struct Transport<E: 'static> {
    swarm: Swarm<Behaviour>,
    config: Config,
    local: PeerId,
    only_loopback: bool,
    metrics: Arc<Metrics>,
    cmd_tx: mpsc::UnboundedSender<Command<E>>,
    cmd_rx: mpsc::UnboundedReceiver<Command<E>>,
    /// When the graceful shutdown ends (set by [`Command::Shutdown`]).
    stop_at: Option<Instant>,
    /// The last [`NetView`] built for a command, until a swarm event.
    view_cache: Option<NetView>,
    start: Instant,
    rng: ChaCha8Rng,
    timers: BTreeSet<(Time, u64, TimerKey)>,
    armed: HashMap<TimerKey, (Time, u64)>,
    timer_seq: u64,
    outbound: HashMap<(PeerId, Lane), Outbound>,
    backoff: HashMap<PeerId, Instant>,
    /// When a full lane was last reported, per peer and lane.
    full_warned: HashMap<(PeerId, Lane), Instant>,
    writer_gen: u64,
    exit_tx: mpsc::UnboundedSender<WriterExit>,
    exit_rx: mpsc::UnboundedReceiver<WriterExit>,
    inbound_tx: mpsc::Sender<Inbound>,
    inbound_rx: mpsc::Receiver<Inbound>,
    bulk_tx: mpsc::Sender<Inbound>,
    bulk_rx: mpsc::Receiver<Inbound>,
    local_queue: VecDeque<Envelope>,
    listen_addrs: Vec<Multiaddr>,
    connected: HashMap<PeerId, usize>,
    bootstrap_connected: HashSet<Multiaddr>,
    reach: Reach,
    kad_mode: Option<kad::Mode>,
    store: PeerStore,
    conns: HashMap<PeerId, HashMap<ConnectionId, Conn>>,
    relayed_only: HashSet<PeerId>,
    reservations: HashMap<PeerId, ListenerId>,
    /// Reservations asked for and not yet accepted. Their listeners are
    /// never removed while pending: libp2p-relay 0.22 panics ("Relay
    /// connection exist") when an acceptance arrives for a removed one.
    reservations_pending: HashSet<PeerId>,
    /// When each peer was last looked up in the DHT after its stream could
    /// not be opened.
    lookups: crate::lookup::Lookups,
}

impl<E: Clone + 'static> Transport<E> {
    /// Build the swarm and start listening. Must be called inside a tokio
    /// runtime.
    pub fn new(mut config: Config) -> Result<(Transport<E>, Handle<E>), TransportError> {
        let local = config.keypair.public().to_peer_id();
        if config.psk.is_some() {
            if let Some(a) = config.listen.iter().find(|a| is_quic(a)) {
                return Err(TransportError::Unsupported(format!(
                    "cannot listen on {a}: QUIC is disabled in a private (--psk) cluster; pnet works over TCP only"
                )));
            }
        }
        if !HAS_QUIC {
            drop_quic_listeners(&mut config.listen)?;
        }
        let mut swarm = build_swarm(&config)?;
        for addr in &config.listen {
            swarm
                .listen_on(addr.clone())
                .map_err(|e| TransportError::Listen {
                    addr: addr.clone(),
                    reason: e.to_string(),
                })?;
        }
        let only_loopback = !config.listen.is_empty() && config.listen.iter().all(is_loopback);
        let store = match &config.peer_store {
            Some(path) => PeerStore::load(path, unix_now()),
            None => PeerStore::in_memory(),
        };
        for (peer, addrs) in store.peers() {
            for a in addrs.iter().rev() {
                if !is_relayed(a) {
                    swarm.behaviour_mut().kad.add_address(&peer, a.clone());
                }
                swarm.behaviour_mut().hints.add_addr(peer, a.clone());
            }
        }
        let metrics = Arc::new(Metrics::default());
        let (cmd_tx, cmd_rx) = mpsc::unbounded_channel();
        let (exit_tx, exit_rx) = mpsc::unbounded_channel();
        let (inbound_tx, inbound_rx) = mpsc::channel(4096);
        let (bulk_tx, bulk_rx) = mpsc::channel(INBOUND_BULK_FRAMES);
        let handle = Handle {
            tx: cmd_tx.clone(),
            metrics: metrics.clone(),
            peer_id: local,
        };
        let t = Transport {
            swarm,
            config,
            local,
            only_loopback,
            metrics,
            cmd_tx,
            cmd_rx,
            stop_at: None,
            view_cache: None,
            start: Instant::now(),
            rng: ChaCha8Rng::from_os_rng(),
            timers: BTreeSet::new(),
            armed: HashMap::new(),
            timer_seq: 0,
            outbound: HashMap::new(),
            backoff: HashMap::new(),
            full_warned: HashMap::new(),
            writer_gen: 0,
            exit_tx,
            exit_rx,
            inbound_tx,
            inbound_rx,
            bulk_tx,
            bulk_rx,
            local_queue: VecDeque::new(),
            listen_addrs: Vec::new(),
            connected: HashMap::new(),
            bootstrap_connected: HashSet::new(),
            reach: Reach::new(only_loopback),
            kad_mode: None,
            store,
            conns: HashMap::new(),
            relayed_only: HashSet::new(),
            reservations: HashMap::new(),
            reservations_pending: HashSet::new(),
            lookups: crate::lookup::Lookups::default(),
        };
        Ok((t, handle))
    }

    /// This node's PeerId.
    pub fn local_peer_id(&self) -> PeerId {
        self.local
    }

    /// A handle (the same as the one [`Transport::new`] returned).
    pub fn handle(&self) -> Handle<E> {
        Handle {
            tx: self.cmd_tx.clone(),
            metrics: self.metrics.clone(),
            peer_id: self.local,
        }
    }

    fn now(&self) -> Time {
        Time::from_micros(u64::try_from(self.start.elapsed().as_micros()).unwrap_or(u64::MAX))
    }

    fn instant_of(&self, t: Time) -> Instant {
        self.start + Duration::from_micros(t.as_micros())
    }

    /// The view for a command: built once and kept until a swarm event
    /// may have changed it (commands arrive once per client request; the
    /// peer ids and addresses are formatted as text, which is not free).
    fn cached_view(&mut self) -> NetView {
        if let Some(v) = &mut self.view_cache {
            v.uptime_s = self.start.elapsed().as_secs_f64();
            return v.clone();
        }
        let v = self.view();
        self.view_cache = Some(v.clone());
        v
    }

    fn view(&self) -> NetView {
        let mut connected_ids: Vec<PeerId> = self.connected.keys().copied().collect();
        connected_ids.sort();
        NetView {
            peer_id: self.local.to_string(),
            listen_addrs: self.listen_addrs.iter().map(|a| a.to_string()).collect(),
            external_addrs: self
                .swarm
                .external_addresses()
                .map(|a| a.to_string())
                .collect(),
            connected: connected_ids.iter().map(|p| p.to_string()).collect(),
            private: self.config.psk.is_some(),
            uptime_s: self.start.elapsed().as_secs_f64(),
            reachability: self.reach.get().word().to_string(),
            peers: connected_ids
                .iter()
                .map(|p| PeerConn {
                    peer_id: p.to_string(),
                    kind: self
                        .kind_of(p)
                        .map(|k| k.word())
                        .unwrap_or("direct")
                        .to_string(),
                })
                .collect(),
            relays: {
                let mut r: Vec<String> = self.reservations.keys().map(|p| p.to_string()).collect();
                r.sort();
                r
            },
            connected_ids,
        }
    }

    /// The best connection kind to `peer` (punched > direct > relayed).
    fn kind_of(&self, peer: &PeerId) -> Option<ConnKind> {
        self.conns.get(peer)?.values().map(|c| c.kind).max()
    }

    fn refresh_relayed_only(&mut self, peer: PeerId) {
        if self.kind_of(&peer) == Some(ConnKind::Relayed) {
            self.relayed_only.insert(peer);
        } else {
            self.relayed_only.remove(&peer);
        }
    }

    /// Follow the reachability verdict: Kademlia's mode, and relay
    /// reservations (dropped once the node is public).
    fn update_reach(&mut self) {
        let r = self.reach.get();
        let mode = r.kad_mode();
        if self.kad_mode != Some(mode) {
            info!(reachability = r.word(), "Kademlia mode {mode:?}");
            self.swarm.behaviour_mut().kad.set_mode(Some(mode));
            self.kad_mode = Some(mode);
        }
        if !r.wants_relay() && !self.reservations.is_empty() {
            // A pending one is dropped once accepted (see reservations_pending).
            let pending = &self.reservations_pending;
            let done: Vec<(PeerId, ListenerId)> = self
                .reservations
                .iter()
                .filter(|(p, _)| !pending.contains(p))
                .map(|(p, l)| (*p, *l))
                .collect();
            for (relay, l) in done {
                info!(%relay, "publicly reachable: dropping the relay reservation");
                self.reservations.remove(&relay);
                self.swarm.remove_listener(l);
            }
        }
    }

    /// Reserve a slot on up to [`MAX_RELAYS`] relays while not public.
    fn reserve_relays(&mut self) {
        if !self.reach.get().wants_relay() || self.reservations.len() >= MAX_RELAYS {
            return;
        }
        let candidates: Vec<(PeerId, Multiaddr)> = self
            .swarm
            .behaviour()
            .hints
            .relays()
            .filter(|(p, _)| self.connected.contains_key(p) && !self.reservations.contains_key(p))
            .map(|(p, a)| (*p, a.clone()))
            .collect();
        for (relay, addr) in candidates {
            if self.reservations.len() >= MAX_RELAYS {
                break;
            }
            let mut circuit: Multiaddr = addr
                .iter()
                .filter(|p| !matches!(p, Protocol::P2p(_)))
                .collect();
            circuit.push(Protocol::P2p(relay));
            circuit.push(Protocol::P2pCircuit);
            match self.swarm.listen_on(circuit.clone()) {
                Ok(id) => {
                    info!(%relay, "reserving a relay slot: {circuit}");
                    self.reservations.insert(relay, id);
                    self.reservations_pending.insert(relay);
                }
                Err(e) => debug!(%relay, "cannot reserve on the relay: {e}"),
            }
        }
    }

    /// An inbound direct connection from another IP to one of our listen
    /// addresses proves that address reachable from there. AutoNAT v2 asks
    /// for dial-backs only over connections this node dialled, so the first
    /// public member of a cluster whose other members are all behind NATs
    /// (it dials no one) is confirmed this way.
    fn inbound_proves_reachable(&mut self, endpoint: &libp2p::core::ConnectedPoint) {
        let libp2p::core::ConnectedPoint::Listener {
            local_addr,
            send_back_addr,
        } = endpoint
        else {
            return;
        };
        if self.only_loopback || is_relayed(local_addr) || is_loopback(local_addr) {
            return;
        }
        if ip_of(local_addr).is_none() || ip_of(local_addr) == ip_of(send_back_addr) {
            return;
        }
        if self.listen_addrs.contains(local_addr)
            && !self.swarm.external_addresses().any(|a| a == local_addr)
        {
            info!(addr = %local_addr, from = %send_back_addr, "reachable: a peer connected to this listen address");
            self.swarm.add_external_address(local_addr.clone());
            self.push_identify();
            self.reach.confirmed(local_addr.clone());
            self.update_reach();
        }
    }

    /// Dial the peers in the store (a restart rejoins without `--peer`).
    fn dial_stored(&mut self) {
        for (peer, addrs) in self.store.peers().into_iter().take(32) {
            if peer == self.local || self.connected.contains_key(&peer) {
                continue;
            }
            let addrs: Vec<Multiaddr> = addrs.into_iter().filter(|a| self.allowed(a)).collect();
            if addrs.is_empty() {
                continue;
            }
            debug!(%peer, "dialling a stored peer");
            let opts = DialOpts::peer_id(peer)
                .addresses(addrs)
                .condition(PeerCondition::DisconnectedAndNotDialing)
                .build();
            let _ = self.swarm.dial(opts);
        }
    }

    /// Whether an address learned from a remote peer may be dialled.
    fn allowed(&self, addr: &Multiaddr) -> bool {
        if is_loopback(addr) && !self.only_loopback {
            return false;
        }
        if (self.config.psk.is_some() || !HAS_QUIC) && is_quic(addr) {
            return false;
        }
        match ip_of(addr) {
            Some(IpAddr::V4(ip)) => !ip.is_unspecified(),
            Some(IpAddr::V6(ip)) => !ip.is_unspecified(),
            None => true,
        }
    }

    /// Start the node and run until [`Handle::shutdown`].
    pub async fn run<H: Host<E>>(mut self, mut node: Node<PeerKey, E>, mut host: H) {
        let control = self.swarm.behaviour().stream.new_control();
        let mut accept_control = control.clone();
        match accept_control.accept(shen_protocol()) {
            Ok(mut incoming) => {
                let tx = Lanes {
                    control: self.inbound_tx.clone(),
                    bulk: self.bulk_tx.clone(),
                    bulk_rings: self.config.bulk_rings.clone().into(),
                };
                let rate = self.config.max_frames_per_sec.max(1);
                tokio::spawn(async move {
                    // Open inbound Shen streams per peer: a well-behaved peer
                    // uses one; each may buffer up to a frame (1 MiB).
                    let open: Arc<std::sync::Mutex<HashMap<PeerId, usize>>> = Arc::default();
                    while let Some((peer, mut stream)) = incoming.next().await {
                        let admitted = open.lock().is_ok_and(|mut m| {
                            let n = m.entry(peer).or_insert(0);
                            *n += 1;
                            *n <= MAX_INBOUND_STREAMS_PER_PEER
                        });
                        if !admitted {
                            warn!(%peer, "refusing a Shen stream: more than {MAX_INBOUND_STREAMS_PER_PEER} open from this peer");
                            release(&open, peer);
                            let _ = stream.close().await;
                            continue;
                        }
                        let tx = tx.clone();
                        let open = open.clone();
                        tokio::spawn(async move {
                            reader(peer, stream, tx, rate).await;
                            release(&open, peer);
                        });
                    }
                });
            }
            Err(e) => warn!("cannot accept {}: {e}", shen_protocol()),
        }
        for addr in self.config.bootstrap.clone() {
            self.dial_bootstrap(&addr);
        }
        if !self.store.is_empty() {
            info!(peers = self.store.len(), "rejoining from the peer store");
            self.dial_stored();
        }
        self.update_reach();
        let now = self.now();
        node.start(now, &mut self.rng);
        self.pump(&mut node, &mut host, &control);

        let mut housekeeping = tokio::time::interval(self.config.housekeeping_interval);
        housekeeping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let mut tick = tokio::time::interval(Duration::from_secs(1));
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        let far = Duration::from_secs(3600);
        loop {
            let next_timer = self
                .timers
                .first()
                .map(|(t, _, _)| self.instant_of(*t))
                .unwrap_or_else(|| Instant::now() + far);
            let wake = match self.stop_at {
                Some(s) => next_timer.min(s),
                None => next_timer,
            };
            tokio::select! {
                ev = self.swarm.select_next_some() => self.on_swarm_event(ev, &mut node, &mut host),
                Some(inb) = self.inbound_rx.recv() => self.on_inbound(inb, &mut node),
                Some(inb) = self.bulk_rx.recv() => self.on_inbound(inb, &mut node),
                Some(exit) = self.exit_rx.recv() => {
                    let key = (exit.peer, exit.lane);
                    if self.outbound.get(&key).is_some_and(|o| o.gen == exit.gen) {
                        self.outbound.remove(&key);
                    }
                    if exit.failed_open {
                        self.backoff.insert(exit.peer, Instant::now() + OPEN_BACKOFF);
                        self.look_up(exit.peer);
                    }
                }
                Some(cmd) = self.cmd_rx.recv() => self.on_command(cmd, &mut node, &mut host),
                _ = tokio::time::sleep_until(wake.into()) => {
                    if self.stop_at.is_some_and(|s| Instant::now() >= s) {
                        break;
                    }
                    self.fire_timers(&mut node);
                }
                _ = housekeeping.tick() => self.housekeeping(),
                _ = tick.tick() => {
                    let view = self.view();
                    let now = self.now();
                    for p in host.on_tick(&mut node, &view, now, &mut self.rng) {
                        info!(peer = %p, "closing a stale connection (the peer will be redialled when discovered)");
                        let _ = self.swarm.disconnect_peer_id(p.0);
                        self.outbound.remove(&(p.0, Lane::Control));
                        self.outbound.remove(&(p.0, Lane::Bulk));
                    }
                }
            }
            self.pump(&mut node, &mut host, &control);
            self.flush(&mut node, &mut host, &control);
        }
        self.store.save();
        // Dropping the writers' senders closes their streams after the
        // queued frames are written.
        self.outbound.clear();
        tokio::time::sleep(Duration::from_millis(50)).await;
        info!("stopped");
    }

    fn on_command<H: Host<E>>(
        &mut self,
        cmd: Command<E>,
        node: &mut Node<PeerKey, E>,
        host: &mut H,
    ) {
        match cmd {
            Command::Run(f) => {
                let view = self.cached_view();
                let now = self.now();
                f(node, &view, now, &mut self.rng);
            }
            Command::Shutdown => {
                if self.stop_at.is_none() {
                    info!("shutting down: leaving the cluster");
                    let now = self.now();
                    host.on_shutdown(node, now, &mut self.rng);
                    self.stop_at = Some(Instant::now() + self.config.shutdown_grace);
                }
            }
        }
    }

    /// The durability barrier, with group commit: when a ring holds
    /// messages until its state is durable, first take whatever input is
    /// already waiting (peer frames and local commands, bounded), so one
    /// flush (one fsync) covers all of it; then flush and send.
    fn flush<H: Host<E>>(
        &mut self,
        node: &mut Node<PeerKey, E>,
        host: &mut H,
        control: &libp2p_stream::Control,
    ) {
        let mut rounds = 0;
        while node.needs_flush() && rounds < MAX_FLUSH_ROUNDS {
            rounds += 1;
            for _ in 0..GROUP_COMMIT_MAX {
                let mut took = false;
                if let Ok(inb) = self.inbound_rx.try_recv() {
                    self.on_inbound(inb, node);
                    took = true;
                }
                if let Ok(inb) = self.bulk_rx.try_recv() {
                    self.on_inbound(inb, node);
                    took = true;
                }
                if let Ok(cmd) = self.cmd_rx.try_recv() {
                    self.on_command(cmd, node, host);
                    took = true;
                }
                if !took {
                    break;
                }
                self.pump(node, host, control);
            }
            let now = self.now();
            node.flush(now, &mut self.rng);
            self.pump(node, host, control);
        }
    }

    fn fire_timers(&mut self, node: &mut Node<PeerKey, E>) {
        let now = self.now();
        while let Some(&(at, seq, key)) = self.timers.first() {
            if at > now {
                break;
            }
            self.timers.remove(&(at, seq, key));
            self.armed.remove(&key);
            Metrics::add(&self.metrics.timers_fired, 1);
            node.handle_timer(now, &mut self.rng, key);
        }
    }

    fn housekeeping(&mut self) {
        for addr in self.config.bootstrap.clone() {
            if !self.bootstrap_connected.contains(&addr) {
                self.dial_bootstrap(&addr);
            }
        }
        if !self.connected.is_empty() {
            let _ = self.swarm.behaviour_mut().kad.bootstrap();
        } else if !self.store.is_empty() {
            self.dial_stored();
        }
        self.reserve_relays();
        self.store.age_out(unix_now());
        self.store.save();
        let now = Instant::now();
        self.backoff.retain(|_, until| *until > now);
    }

    /// Tell every connected peer our addresses again: they changed (a
    /// listener came up, AutoNAT confirmed one, a relay reservation), and
    /// a peer that identified us before would otherwise only learn them at
    /// the next periodic identify (a minute), unable to hand them on to
    /// the others that look us up.
    fn push_identify(&mut self) {
        let peers: Vec<PeerId> = self.connected.keys().copied().collect();
        self.swarm.behaviour_mut().identify.push(peers);
    }

    /// Ask the DHT where `peer` is now: its stream could not be opened
    /// with the addresses we hold (all stale after it restarted on a new
    /// port, say). Peers that know it answer with its current addresses,
    /// which [`Transport::on_found`] dials.
    fn look_up(&mut self, peer: PeerId) {
        if self.connected.contains_key(&peer)
            || self.connected.is_empty()
            || !self.lookups.due(peer, Instant::now())
        {
            return;
        }
        debug!(%peer, "stream could not be opened: looking the peer up in the DHT");
        // Forget the addresses our routing table holds for it (they just
        // failed): a lookup that starts from them marks the peer failed at
        // once and never tries the addresses the others report.
        let kad = &mut self.swarm.behaviour_mut().kad;
        kad.remove_peer(&peer);
        kad.get_closest_peers(peer);
    }

    /// The peers a DHT lookup found: those we are not connected to are
    /// dialled at the direct addresses the lookup returned (also kept as
    /// dial hints, ahead of stale ones).
    fn on_found(&mut self, peers: Vec<kad::PeerInfo>) {
        for info in peers {
            if info.peer_id == self.local || self.connected.contains_key(&info.peer_id) {
                continue;
            }
            let addrs: Vec<Multiaddr> = info
                .addrs
                .into_iter()
                .filter(|a| !is_relayed(a) && self.allowed(a))
                .collect();
            if addrs.is_empty() {
                continue;
            }
            for a in &addrs {
                self.swarm
                    .behaviour_mut()
                    .hints
                    .add_addr(info.peer_id, a.clone());
            }
            debug!(peer = %info.peer_id, ?addrs, "DHT lookup found the peer; dialling");
            self.backoff.remove(&info.peer_id);
            // Even while another dial is under way: that one is likely
            // trying the stale addresses (or a relay circuit).
            let opts = DialOpts::peer_id(info.peer_id)
                .addresses(addrs)
                .condition(PeerCondition::Disconnected)
                .build();
            if let Err(e) = self.swarm.dial(opts) {
                debug!(peer = %info.peer_id, "dial failed: {e}");
            }
        }
    }

    fn dial_bootstrap(&mut self, addr: &Multiaddr) {
        debug!(%addr, "dialling bootstrap peer");
        if let Err(e) = self.swarm.dial(addr.clone()) {
            debug!(%addr, "dial failed: {e}");
        }
    }

    /// Drain the node's outputs until none are left (local deliveries can
    /// produce more).
    fn pump<H: Host<E>>(
        &mut self,
        node: &mut Node<PeerKey, E>,
        host: &mut H,
        control: &libp2p_stream::Control,
    ) {
        loop {
            let outputs: Vec<NodeOutput<PeerKey, E>> = node.drain_outputs().collect();
            if outputs.is_empty() {
                match self.local_queue.pop_front() {
                    Some(env) => {
                        let now = self.now();
                        let me = PeerKey(self.local);
                        if let Err(e) = node.handle_envelope(now, &mut self.rng, me, &env) {
                            warn!("local delivery failed: {e}");
                        }
                        continue;
                    }
                    None => return,
                }
            }
            for o in outputs {
                match o {
                    NodeOutput::Send { to, envelope } => self.send(to, &envelope, control),
                    NodeOutput::SetTimer { key, at } => {
                        if let Some(old) = self.armed.remove(&key) {
                            self.timers.remove(&(old.0, old.1, key));
                        }
                        self.timer_seq += 1;
                        self.timers.insert((at, self.timer_seq, key));
                        self.armed.insert(key, (at, self.timer_seq));
                    }
                    NodeOutput::CancelTimer { key } => {
                        if let Some(old) = self.armed.remove(&key) {
                            self.timers.remove(&(old.0, old.1, key));
                        }
                    }
                    NodeOutput::Event { ring, event } => {
                        let now = self.now();
                        host.on_event(now, ring, &event);
                    }
                    NodeOutput::SendFailed { to, ring, error } => {
                        warn!(%to, ?ring, "ring message not sent: {error}");
                    }
                }
            }
        }
    }

    fn send(&mut self, to: PeerKey, env: &Envelope, control: &libp2p_stream::Control) {
        if to.0 == self.local {
            self.local_queue.push_back(env.clone());
            return;
        }
        let bytes = match encode_envelope(env) {
            Ok(b) => b,
            Err(e) => {
                warn!(%to, "cannot encode frame: {e}");
                return;
            }
        };
        let len = bytes.len() as u64;
        let lane = lane_of(&self.config.bulk_rings, env.ring);
        let key = (to.0, lane);
        let mut bytes = Some(bytes);
        if let Some(o) = self.outbound.get(&key) {
            if !o.queued.reserve(len as usize) {
                // This lane's queue holds its byte bound already.
                Metrics::add(&self.metrics.messages_dropped, 1);
                Metrics::add(&self.metrics.queue_full_drops, 1);
                self.warn_full(key, "bytes");
                return;
            }
            match o.tx.try_send(bytes.take().expect("set above")) {
                Ok(()) => {
                    Metrics::add(&self.metrics.messages_sent, 1);
                    Metrics::add(&self.metrics.bytes_sent, len);
                    if self.relayed_only.contains(&to.0) {
                        Metrics::add(&self.metrics.relayed_bytes, len);
                    }
                    return;
                }
                Err(mpsc::error::TrySendError::Full(_)) => {
                    o.queued.release(len as usize);
                    Metrics::add(&self.metrics.messages_dropped, 1);
                    Metrics::add(&self.metrics.queue_full_drops, 1);
                    self.warn_full(key, "frames");
                    return;
                }
                Err(mpsc::error::TrySendError::Closed(b)) => {
                    o.queued.release(len as usize);
                    self.outbound.remove(&key);
                    bytes = Some(b);
                }
            }
        }
        if self
            .backoff
            .get(&to.0)
            .is_some_and(|until| *until > Instant::now())
        {
            Metrics::add(&self.metrics.messages_dropped, 1);
            return;
        }
        let (tx, rx) = mpsc::channel(QUEUE_FRAMES);
        let queued = Queued::default();
        self.writer_gen += 1;
        let gen = self.writer_gen;
        queued.reserve(len as usize);
        if tx.try_send(bytes.take().expect("set above")).is_ok() {
            Metrics::add(&self.metrics.messages_sent, 1);
            Metrics::add(&self.metrics.bytes_sent, len);
        }
        tokio::spawn(writer(
            control.clone(),
            (to.0, lane, gen),
            rx,
            queued.clone(),
            self.exit_tx.clone(),
        ));
        self.outbound.insert(key, Outbound { tx, queued, gen });
    }

    /// Say (at most every 10 s per peer and lane) that a lane's queue is
    /// full: the peer, or the link to it, is slower than what is sent.
    fn warn_full(&mut self, key: (PeerId, Lane), bound: &str) {
        let now = Instant::now();
        let last = self.full_warned.get(&key).copied();
        if last.is_none_or(|t| now.duration_since(t) >= Duration::from_secs(10)) {
            self.full_warned.insert(key, now);
            let bytes = self.outbound.get(&key).map_or(0, |o| o.queued.bytes());
            warn!(peer = %key.0, lane = ?key.1, queued_bytes = bytes, "send queue full ({bound}): dropping messages to a slow peer or link");
        }
    }

    fn on_inbound(&mut self, inb: Inbound, node: &mut Node<PeerKey, E>) {
        match inb {
            Inbound::Frame { peer, env, bytes } => {
                Metrics::add(&self.metrics.messages_received, 1);
                Metrics::add(&self.metrics.bytes_received, bytes as u64);
                if self.relayed_only.contains(&peer) {
                    Metrics::add(&self.metrics.relayed_bytes, bytes as u64);
                }
                let now = self.now();
                match node.handle_envelope(now, &mut self.rng, PeerKey(peer), &env) {
                    Ok(()) => {}
                    Err(WireError::UnknownRing(r)) => {
                        debug!(%peer, ?r, "message for a ring this node does not run");
                    }
                    Err(e) => {
                        Metrics::add(&self.metrics.bad_frames, 1);
                        warn!(%peer, "closing connection: bad message: {e}");
                        let _ = self.swarm.disconnect_peer_id(peer);
                    }
                }
            }
            Inbound::Bad {
                peer,
                reason,
                flood,
            } => {
                if flood {
                    Metrics::add(&self.metrics.floods, 1);
                } else {
                    Metrics::add(&self.metrics.bad_frames, 1);
                }
                warn!(%peer, "closing connection: {reason}");
                let _ = self.swarm.disconnect_peer_id(peer);
            }
        }
    }

    fn on_swarm_event<H: Host<E>>(
        &mut self,
        ev: SwarmEvent<BehaviourEvent>,
        node: &mut Node<PeerKey, E>,
        host: &mut H,
    ) {
        self.view_cache = None;
        match ev {
            SwarmEvent::NewListenAddr { address, .. } => {
                info!("listening on {address}/p2p/{}", self.local);
                // A relayed address is reachable by construction; a direct
                // one is advertised only once AutoNAT confirms it (or on a
                // loopback-only node, where every listen address is).
                if is_relayed(&address) || self.only_loopback {
                    self.swarm.add_external_address(address.clone());
                    self.push_identify();
                }
                self.listen_addrs.push(address);
                host.on_listen(&self.view());
            }
            SwarmEvent::ExpiredListenAddr { address, .. } => {
                self.listen_addrs.retain(|a| *a != address);
                self.swarm.remove_external_address(&address);
                self.push_identify();
                host.on_listen(&self.view());
            }
            SwarmEvent::ListenerClosed {
                listener_id,
                addresses,
                ..
            } => {
                self.reservations.retain(|_, l| *l != listener_id);
                let kept = &self.reservations;
                self.reservations_pending.retain(|p| kept.contains_key(p));
                // Its addresses expired with it (libp2p sends no
                // `ExpiredListenAddr` for them).
                if !addresses.is_empty() {
                    self.listen_addrs.retain(|a| !addresses.contains(a));
                    for a in &addresses {
                        self.swarm.remove_external_address(a);
                    }
                    self.push_identify();
                    host.on_listen(&self.view());
                }
            }
            SwarmEvent::ExternalAddrConfirmed { address } => {
                info!(%address, "external address confirmed");
                self.reach.confirmed(address);
                self.update_reach();
            }
            SwarmEvent::ExternalAddrExpired { address } => {
                self.reach.expired(&address);
                self.update_reach();
            }
            SwarmEvent::ConnectionEstablished {
                peer_id,
                endpoint,
                connection_id,
                ..
            } => {
                Metrics::add(&self.metrics.connections_opened, 1);
                *self.connected.entry(peer_id).or_insert(0) += 1;
                let remote = endpoint.get_remote_address().clone();
                let kind = if is_relayed_endpoint(&endpoint) {
                    ConnKind::Relayed
                } else {
                    ConnKind::Direct
                };
                self.conns.entry(peer_id).or_default().insert(
                    connection_id,
                    Conn {
                        kind,
                        remote,
                        dialer: endpoint.is_dialer(),
                    },
                );
                self.refresh_relayed_only(peer_id);
                self.inbound_proves_reachable(&endpoint);
                if endpoint.is_dialer() {
                    let addr = endpoint.get_remote_address();
                    let plain: Multiaddr = addr
                        .iter()
                        .filter(|p| !matches!(p, Protocol::P2p(_)))
                        .collect();
                    for b in &self.config.bootstrap {
                        let bp: Multiaddr = b
                            .iter()
                            .filter(|p| !matches!(p, Protocol::P2p(_)))
                            .collect();
                        if bp == plain {
                            self.bootstrap_connected.insert(b.clone());
                        }
                    }
                }
                self.backoff.remove(&peer_id);
                debug!(%peer_id, "connected");
            }
            SwarmEvent::ConnectionClosed {
                peer_id,
                num_established,
                endpoint,
                connection_id,
                ..
            } => {
                Metrics::add(&self.metrics.connections_closed, 1);
                if let Some(m) = self.conns.get_mut(&peer_id) {
                    m.remove(&connection_id);
                    if m.is_empty() {
                        self.conns.remove(&peer_id);
                    }
                }
                self.refresh_relayed_only(peer_id);
                if num_established == 0 {
                    self.connected.remove(&peer_id);
                    if let Some(l) = self.reservations.remove(&peer_id) {
                        // The relay is gone: so is the address reserved on it
                        // (removing the listener expires it, and it is no
                        // longer advertised); try another relay.
                        warn!(relay = %peer_id, "lost the connection to a relay: dropping its reservation and relayed address");
                        self.reservations_pending.remove(&peer_id);
                        self.swarm.remove_listener(l);
                        // Advertised forms of it (with or without our own
                        // /p2p suffix) go too.
                        let stale: Vec<Multiaddr> = self
                            .swarm
                            .external_addresses()
                            .filter(|a| crate::reach::relayed_via(a, &peer_id))
                            .cloned()
                            .collect();
                        for a in &stale {
                            self.swarm.remove_external_address(a);
                        }
                        self.reserve_relays();
                    }
                    let addr = endpoint.get_remote_address();
                    let plain: Multiaddr = addr
                        .iter()
                        .filter(|p| !matches!(p, Protocol::P2p(_)))
                        .collect();
                    self.bootstrap_connected.retain(|b| {
                        let bp: Multiaddr = b
                            .iter()
                            .filter(|p| !matches!(p, Protocol::P2p(_)))
                            .collect();
                        bp != plain
                    });
                }
                debug!(%peer_id, "disconnected");
            }
            SwarmEvent::IncomingConnectionError { error, .. } => {
                debug!("incoming connection failed: {error}");
            }
            SwarmEvent::OutgoingConnectionError { peer_id, error, .. } => {
                debug!(?peer_id, "outgoing connection failed: {error}");
            }
            SwarmEvent::Behaviour(BehaviourEvent::Mdns(mdns::Event::Discovered(list))) => {
                let mut by_peer: HashMap<PeerId, Vec<Multiaddr>> = HashMap::new();
                for (peer, addr) in list {
                    if peer == self.local || !self.allowed(&addr) {
                        continue;
                    }
                    by_peer.entry(peer).or_default().push(addr);
                }
                for (peer, addrs) in by_peer {
                    for a in &addrs {
                        self.swarm.behaviour_mut().kad.add_address(&peer, a.clone());
                    }
                    if !self.connected.contains_key(&peer) {
                        debug!(%peer, "mDNS discovered; dialling");
                        let opts = DialOpts::peer_id(peer)
                            .addresses(addrs)
                            .condition(PeerCondition::DisconnectedAndNotDialing)
                            .build();
                        let _ = self.swarm.dial(opts);
                    }
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Identify(identify::Event::Received {
                peer_id,
                info,
                connection_id,
            })) => {
                // A direct address of this peer: the one we dialled, else
                // the first it advertises.
                let dialled = self
                    .conns
                    .get(&peer_id)
                    .and_then(|m| m.get(&connection_id))
                    .filter(|c| c.dialer)
                    .map(|c| c.remote.clone());
                let advertised: Vec<Multiaddr> = info
                    .listen_addrs
                    .iter()
                    .filter(|a| self.allowed(a))
                    .cloned()
                    .collect();
                // A relay must itself be reachable: it advertises a direct
                // (confirmed external) address. A NAT'd member serves HOP as
                // soon as it has a circuit address; reaching it through a
                // hole-punched connection does not make it a relay for others.
                let reachable = advertised.iter().any(|a| !is_relayed(a));
                if reachable && info.protocols.contains(&relay::HOP_PROTOCOL_NAME) {
                    let direct = dialled
                        .iter()
                        .chain(advertised.iter())
                        .find(|a| !is_relayed(a))
                        .cloned();
                    if let Some(a) = direct {
                        self.swarm.behaviour_mut().hints.add_relay(peer_id, a);
                        self.reserve_relays();
                    }
                } else {
                    self.swarm.behaviour_mut().hints.remove_relay(&peer_id);
                }
                if info.protocols.contains(&shen_protocol()) {
                    let mut seen: Vec<Multiaddr> = advertised.clone();
                    seen.extend(dialled);
                    self.store.record(peer_id, seen.iter().cloned(), unix_now());
                    for a in seen {
                        if !is_relayed(&a) {
                            self.swarm
                                .behaviour_mut()
                                .kad
                                .add_address(&peer_id, a.clone());
                        }
                        self.swarm.behaviour_mut().hints.add_addr(peer_id, a);
                    }
                    Metrics::add(&self.metrics.peers_discovered, 1);
                    debug!(%peer_id, "Shen peer identified");
                    let now = self.now();
                    host.on_peer(node, now, &mut self.rng, PeerKey(peer_id));
                } else {
                    debug!(%peer_id, "peer does not speak {}", shen_protocol());
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::OutboundQueryProgressed {
                result: kad::QueryResult::GetClosestPeers(r),
                ..
            })) => {
                let peers = match r {
                    Ok(ok) => ok.peers,
                    Err(kad::GetClosestPeersError::Timeout { peers, .. }) => peers,
                };
                debug!(found = peers.len(), "DHT lookup done");
                self.on_found(peers);
            }
            SwarmEvent::Behaviour(BehaviourEvent::Kad(kad::Event::RoutingUpdated {
                peer,
                is_new_peer,
                ..
            })) if is_new_peer && peer != self.local && !self.connected.contains_key(&peer) => {
                let opts = DialOpts::peer_id(peer)
                    .condition(PeerCondition::DisconnectedAndNotDialing)
                    .build();
                let _ = self.swarm.dial(opts);
            }
            SwarmEvent::Behaviour(BehaviourEvent::AutonatClient(ev)) => match ev.result {
                Ok(()) => {
                    Metrics::add(&self.metrics.reachability_probes_ok, 1);
                    info!(addr = %ev.tested_addr, server = %ev.server, "reachable: dial-back succeeded");
                    self.reach.confirmed(ev.tested_addr);
                    self.update_reach();
                    self.push_identify();
                }
                Err(e) => {
                    Metrics::add(&self.metrics.reachability_probes_failed, 1);
                    debug!(addr = %ev.tested_addr, server = %ev.server, "not reachable: {e}");
                    self.reach.failed(ev.tested_addr);
                    self.update_reach();
                    self.reserve_relays();
                }
            },
            SwarmEvent::Behaviour(BehaviourEvent::RelayClient(
                relay::client::Event::ReservationReqAccepted {
                    relay_peer_id,
                    renewal,
                    ..
                },
            )) => {
                Metrics::add(&self.metrics.relay_reservations_made, 1);
                if !renewal {
                    info!(relay = %relay_peer_id, "relay reservation accepted");
                }
                if self.reservations_pending.remove(&relay_peer_id) {
                    // Became public while it was pending: drop it now.
                    self.update_reach();
                }
            }
            SwarmEvent::Behaviour(BehaviourEvent::Relay(ev)) => match ev {
                relay::Event::ReservationReqAccepted { src_peer_id, .. } => {
                    Metrics::add(&self.metrics.relay_reservations_served, 1);
                    debug!(peer = %src_peer_id, "relay: reservation granted");
                }
                relay::Event::CircuitReqAccepted {
                    src_peer_id,
                    dst_peer_id,
                } => {
                    Metrics::add(&self.metrics.relay_circuits_served, 1);
                    debug!(src = %src_peer_id, dst = %dst_peer_id, "relay: circuit opened");
                }
                relay::Event::ReservationReqDenied { src_peer_id, .. } => {
                    Metrics::add(&self.metrics.relay_requests_denied, 1);
                    debug!(peer = %src_peer_id, "relay: reservation refused (limits)");
                }
                relay::Event::CircuitReqDenied { src_peer_id, .. } => {
                    Metrics::add(&self.metrics.relay_requests_denied, 1);
                    debug!(peer = %src_peer_id, "relay: circuit refused (limits)");
                }
                relay::Event::StatusChanged { status } => {
                    info!("relay server {status:?}");
                }
                _ => {}
            },
            SwarmEvent::Behaviour(BehaviourEvent::Dcutr(dcutr::Event {
                remote_peer_id,
                result,
            })) => {
                Metrics::add(&self.metrics.punches_tried, 1);
                match result {
                    Ok(conn) => {
                        Metrics::add(&self.metrics.punches_succeeded, 1);
                        info!(peer = %remote_peer_id, "hole punch succeeded: direct connection");
                        if let Some(c) = self
                            .conns
                            .get_mut(&remote_peer_id)
                            .and_then(|m| m.get_mut(&conn))
                        {
                            c.kind = ConnKind::Punched;
                        }
                        self.refresh_relayed_only(remote_peer_id);
                    }
                    Err(e) => {
                        info!(peer = %remote_peer_id, "hole punch failed (staying relayed): {e}")
                    }
                }
            }
            _ => {}
        }
    }
}

fn build_swarm(config: &Config) -> Result<Swarm<Behaviour>, TransportError> {
    let relay_limits = config.relay;
    let make_behaviour = |key: &Keypair,
                          relay_client: relay::client::Behaviour|
     -> Result<Behaviour, Box<dyn std::error::Error + Send + Sync>> {
        let local = key.public().to_peer_id();
        let identify = identify::Behaviour::new(
            identify::Config::new(IDENTIFY_VERSION.to_string(), key.public())
                .with_agent_version(format!("shen/{}", env!("CARGO_PKG_VERSION")))
                // Only external addresses (confirmed by AutoNAT, relayed
                // circuits, or loopback-only listen addresses) are advertised.
                .with_hide_listen_addrs(true)
                .with_interval(Duration::from_secs(60)),
        );
        let mut kcfg = kad::Config::new(StreamProtocol::new(KAD_PROTOCOL));
        kcfg.set_query_timeout(Duration::from_secs(30));
        let mut kad = kad::Behaviour::with_config(local, kad::store::MemoryStore::new(local), kcfg);
        // Client until reachability is confirmed (`Transport::update_reach`).
        kad.set_mode(Some(kad::Mode::Client));
        let mdns = if config.mdns {
            let mcfg = mdns::Config {
                query_interval: config.mdns_query_interval,
                ..mdns::Config::default()
            };
            Some(mdns::tokio::Behaviour::new(mcfg, local)?)
        } else {
            None
        };
        Ok(Behaviour {
            stream: libp2p_stream::Behaviour::new(),
            identify,
            kad,
            mdns: Toggle::from(mdns),
            hints: Hints::default(),
            relay_client,
            relay: crate::relay::ReachableRelay(relay::Behaviour::new(
                local,
                relay_limits.config(),
            )),
            dcutr: dcutr::Behaviour::new(local),
            autonat_client: autonat::v2::client::Behaviour::default(),
            autonat_server: autonat::v2::server::Behaviour::default(),
        })
    };
    let idle = config.idle_timeout;
    let build_err = |e: &dyn std::fmt::Display| TransportError::Build(e.to_string());
    // DNS (`/dns4`, `/dns6`, `/dnsaddr` in `--peer`) with the system's
    // resolver; without /etc/resolv.conf, a resolver that knows no server
    // (DNS addresses then fail to dial, the rest works).
    let system_dns = std::path::Path::new("/etc/resolv.conf").exists();
    macro_rules! finish {
        ($b:expr) => {
            $b.with_relay_client(noise::Config::new, yamux::Config::default)
                .map_err(|e| build_err(&e))?
                .with_behaviour(make_behaviour)
                .map_err(|e| build_err(&e))?
                .with_swarm_config(|c| c.with_idle_connection_timeout(idle))
                .build()
        };
    }
    macro_rules! with_dns {
        ($b:expr) => {
            if system_dns {
                finish!($b.with_dns().map_err(|e| build_err(&e))?)
            } else {
                finish!($b.with_dns_config(
                    libp2p::dns::ResolverConfig::default(),
                    libp2p::dns::ResolverOpts::default()
                ))
            }
        };
    }
    let swarm = match &config.psk {
        None => {
            let builder = libp2p::SwarmBuilder::with_existing_identity(config.keypair.clone())
                .with_tokio()
                .with_tcp(
                    tcp::Config::default().nodelay(true),
                    noise::Config::new,
                    yamux::Config::default,
                )
                .map_err(|e| build_err(&e))?;
            #[cfg(feature = "quic")]
            let builder = builder.with_quic();
            with_dns!(builder)
        }
        Some(psk) => {
            let psk = *psk;
            let noise = noise::Config::new(&config.keypair).map_err(|e| build_err(&e))?;
            let builder = libp2p::SwarmBuilder::with_existing_identity(config.keypair.clone())
                .with_tokio()
                .with_other_transport(move |_key| {
                    tcp::tokio::Transport::new(tcp::Config::default().nodelay(true))
                        .and_then(move |socket, _| PnetConfig::new(psk).handshake(socket))
                        .upgrade(Version::V1)
                        .authenticate(noise)
                        .multiplex(yamux::Config::default())
                        .timeout(Duration::from_secs(20))
                })
                .map_err(|e| build_err(&e))?;
            with_dns!(builder)
        }
    };
    Ok(swarm)
}

/// Most bytes gathered into one write by a stream writer.
const COALESCE_BYTES: usize = 256 * 1024;

async fn writer(
    mut control: libp2p_stream::Control,
    (peer, lane, gen): (PeerId, Lane, u64),
    mut rx: mpsc::Receiver<Vec<u8>>,
    queued: Queued,
    exit: mpsc::UnboundedSender<WriterExit>,
) {
    let opened = tokio::time::timeout(
        Duration::from_secs(10),
        control.open_stream(peer, shen_protocol()),
    )
    .await;
    let mut stream = match opened {
        Ok(Ok(s)) => s,
        Ok(Err(e)) => {
            debug!(%peer, "cannot open a Shen stream: {e}");
            let _ = exit.send(WriterExit {
                peer,
                lane,
                gen,
                failed_open: true,
            });
            return;
        }
        Err(_) => {
            debug!(%peer, "opening a Shen stream timed out");
            let _ = exit.send(WriterExit {
                peer,
                lane,
                gen,
                failed_open: true,
            });
            return;
        }
    };
    // Frames queued together go out in one write (one multiplexer frame,
    // one encrypted frame, one syscall) up to `COALESCE_BYTES`; a frame
    // that is alone is written as it is (no copy).
    let mut batch: Vec<u8> = Vec::new();
    while let Some(first) = rx.recv().await {
        let mut taken = first.len();
        let written = match rx.try_recv() {
            Err(_) => stream.write_all(&first).await,
            Ok(second) => {
                batch.clear();
                batch.extend_from_slice(&first);
                batch.extend_from_slice(&second);
                while batch.len() < COALESCE_BYTES {
                    match rx.try_recv() {
                        Ok(more) => batch.extend_from_slice(&more),
                        Err(_) => break,
                    }
                }
                taken = batch.len();
                let r = stream.write_all(&batch).await;
                // Keep at most one batch's worth of buffer per peer (a
                // 1 MiB frame may have grown it).
                if batch.capacity() > 2 * COALESCE_BYTES {
                    batch = Vec::new();
                }
                r
            }
        };
        let ok = written.is_ok() && stream.flush().await.is_ok();
        queued.release(taken);
        if !ok {
            break;
        }
    }
    let _ = stream.close().await;
    let _ = exit.send(WriterExit {
        peer,
        lane,
        gen,
        failed_open: false,
    });
}

/// A token bucket for the inbound frame rate of one stream.
struct Bucket {
    tokens: f64,
    rate: f64,
    burst: f64,
    last: Instant,
}

impl Bucket {
    fn new(rate: u32) -> Bucket {
        let rate = f64::from(rate);
        Bucket {
            tokens: rate * 2.0,
            rate,
            burst: rate * 2.0,
            last: Instant::now(),
        }
    }

    fn take(&mut self) -> bool {
        let now = Instant::now();
        let dt = now.duration_since(self.last).as_secs_f64();
        self.last = now;
        self.tokens = (self.tokens + dt * self.rate).min(self.burst);
        if self.tokens >= 1.0 {
            self.tokens -= 1.0;
            true
        } else {
            false
        }
    }
}

/// Where readers hand inbound frames: each lane's channel into the loop.
#[derive(Clone)]
struct Lanes {
    control: mpsc::Sender<Inbound>,
    bulk: mpsc::Sender<Inbound>,
    bulk_rings: Arc<[RingId]>,
}

async fn reader(peer: PeerId, mut stream: libp2p::Stream, lanes: Lanes, rate: u32) {
    let tx = &lanes.control;
    let mut dec = FrameDecoder::default();
    let mut buf = vec![0u8; 64 * 1024];
    let mut bucket = Bucket::new(rate);
    let bad = |reason: String, flood: bool| Inbound::Bad {
        peer,
        reason,
        flood,
    };
    loop {
        let n = match stream.read(&mut buf).await {
            Ok(0) | Err(_) => return,
            Ok(n) => n,
        };
        dec.push(&buf[..n]);
        loop {
            match dec.next_frame() {
                Ok(None) => break,
                Ok(Some(frame)) => {
                    if !bucket.take() {
                        let _ = tx
                            .send(bad(
                                format!("flood: more than {rate} frames/s on a Shen stream"),
                                true,
                            ))
                            .await;
                        let _ = stream.close().await;
                        return;
                    }
                    match Envelope::from_frame(&frame) {
                        Ok(env) => {
                            let bytes = frame.len() + crate::frame::PREFIX_BYTES;
                            let to = match lane_of(&lanes.bulk_rings, env.ring) {
                                Lane::Control => &lanes.control,
                                Lane::Bulk => &lanes.bulk,
                            };
                            if to.send(Inbound::Frame { peer, env, bytes }).await.is_err() {
                                return;
                            }
                        }
                        Err(e) => {
                            let _ = tx.send(bad(format!("bad frame: {e}"), false)).await;
                            let _ = stream.close().await;
                            return;
                        }
                    }
                }
                Err(e) => {
                    let _ = tx.send(bad(format!("bad frame: {e}"), false)).await;
                    let _ = stream.close().await;
                    return;
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loopback_and_quic_detection() {
        let a: Multiaddr = "/ip4/127.0.0.1/tcp/1".parse().unwrap();
        let b: Multiaddr = "/ip4/10.0.0.1/udp/1/quic-v1".parse().unwrap();
        let c: Multiaddr = "/ip6/::1/tcp/1".parse().unwrap();
        assert!(is_loopback(&a) && is_loopback(&c) && !is_loopback(&b));
        assert!(is_quic(&b) && !is_quic(&a));
    }

    #[test]
    fn default_listen_has_quic_only_when_built_with_it() {
        let config = Config::new(Keypair::generate_ed25519());
        assert_eq!(
            config.listen.iter().filter(|a| is_quic(a)).count(),
            usize::from(HAS_QUIC)
        );
        assert_eq!(config.listen.iter().filter(|a| !is_quic(a)).count(), 1);
    }

    #[test]
    fn quic_listeners_are_dropped_and_only_quic_is_refused() {
        let tcp: Multiaddr = "/ip4/127.0.0.1/tcp/0".parse().unwrap();
        let quic: Multiaddr = "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap();
        let mut both = vec![tcp.clone(), quic.clone()];
        drop_quic_listeners(&mut both).unwrap();
        assert_eq!(both, vec![tcp]);
        let mut only_quic = vec![quic];
        assert!(matches!(
            drop_quic_listeners(&mut only_quic),
            Err(TransportError::Unsupported(_))
        ));
        let mut none: Vec<Multiaddr> = Vec::new();
        drop_quic_listeners(&mut none).unwrap();
    }

    /// Without the `quic` feature a node given TCP and QUIC listens on TCP
    /// only, and one given only QUIC refuses to start.
    #[cfg(not(feature = "quic"))]
    #[tokio::test]
    async fn without_quic_feature_only_tcp_listens() {
        let mut config = Config::new(Keypair::generate_ed25519());
        config.mdns = false;
        config.listen = vec![
            "/ip4/127.0.0.1/tcp/0".parse().unwrap(),
            "/ip4/127.0.0.1/udp/0/quic-v1".parse().unwrap(),
        ];
        let (transport, _handle) = Transport::<()>::new(config.clone()).unwrap();
        assert!(transport.config.listen.iter().all(|a| !is_quic(a)));
        config.listen.remove(0);
        assert!(matches!(
            Transport::<()>::new(config),
            Err(TransportError::Unsupported(_))
        ));
    }
}
