//! `shen run`: one cluster node over libp2p.
//!
//! Settings come from flags, then environment variables (`SHEN_*`), then a
//! TOML file (`--config`), then defaults. The node runs the rings of the
//! `[stack]` table (Sundial by default) through `stack::build_node`, hands
//! every peer the transport discovers to Sundial as a join candidate, serves
//! the admin HTTP API on 127.0.0.1, and on SIGINT/SIGTERM leaves the cluster,
//! flushes and exits 0.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use shen_rings::ankh::{AnkhConfig, AnkhRing};
use shen_rings::ouroboros::FsyncPolicy;
use shen_rings::stack::{build_node, ShenEvent, StackConfig, SundialSettings};
use shen_rings::sundial::{Status, Sundial};
use shen_rings::{Node, RingId, Time};
// Re-exported for `log_cluster`, which names it `crate::run_cmd::write_atomic`.
pub(crate) use shen_storage::write_atomic;
use shen_transport_libp2p::identity::{load_or_create_identity, load_psk, IDENTITY_FILE};
use shen_transport_libp2p::libp2p::Multiaddr;
use shen_transport_libp2p::{Config, Handle, Host, NetView, PeerKey, Transport};
use tokio::sync::broadcast;
use tracing::{error, info, warn};

use crate::admin_http::{self, Histogram};
use crate::log_cluster::{
    self, adopt, adopt_before_start, load_members, store_members, FormStep, Formation, LogSettings,
    Waiters, LOG_MEMBERS_FILE,
};

/// The node's event type.
pub type Event = ShenEvent<PeerKey>;

/// File in the data directory describing the running node (PeerId, listen
/// addresses, admin address); read by `shen status --data-dir` and `shen up`.
pub const NODE_INFO_FILE: &str = "node.json";
/// File holding the restart counter (the node incarnation).
pub const INCARNATION_FILE: &str = "incarnation";
/// Default admin HTTP address.
pub const DEFAULT_ADMIN: &str = "127.0.0.1:7600";

/// `shen run` flags. Each may also come from the environment or the config
/// file; flags win over the environment, which wins over the file.
#[derive(Args, Debug, Clone, Default)]
pub struct RunArgs {
    /// TOML config file (keys: data_dir, listen, peers, psk, admin, mdns,
    /// and a [stack] table with ring settings, e.g. [stack.sundial]).
    #[arg(long, env = "SHEN_CONFIG", value_name = "FILE")]
    pub config: Option<PathBuf>,
    /// Directory for the node's identity (same PeerId after a restart),
    /// restart counter and node.json. Created if missing. Required.
    #[arg(long, env = "SHEN_DATA_DIR", value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Listen address (repeatable). Default: TCP and QUIC on every
    /// interface, random ports (/ip4/0.0.0.0/tcp/0, /ip4/0.0.0.0/udp/0/quic-v1).
    #[arg(
        long,
        env = "SHEN_LISTEN",
        value_name = "MULTIADDR",
        value_delimiter = ','
    )]
    pub listen: Vec<String>,
    /// A peer to contact at start, e.g. /ip4/10.0.0.2/tcp/4001 (repeatable,
    /// optional: mDNS finds peers on the LAN, Kademlia beyond it).
    #[arg(
        long = "peer",
        env = "SHEN_PEERS",
        value_name = "MULTIADDR",
        value_delimiter = ','
    )]
    pub peers: Vec<String>,
    /// Pre-shared key file (swarm.key format) for a private cluster: only
    /// nodes with the same key can connect. Disables QUIC (pnet is TCP-only).
    #[arg(long, env = "SHEN_PSK", value_name = "FILE")]
    pub psk: Option<PathBuf>,
    /// Admin HTTP address (/status, /metrics, /events). Port 0 picks one;
    /// the chosen address is written to DIR/node.json. Default 127.0.0.1:7600.
    #[arg(long, env = "SHEN_ADMIN", value_name = "HOST:PORT")]
    pub admin: Option<String>,
    /// Turn mDNS discovery off.
    #[arg(long, env = "SHEN_NO_MDNS")]
    pub no_mdns: bool,
    /// Frames per second one peer stream may send (twice that as a burst)
    /// before its connection is closed as a flood. Default 20000.
    #[arg(long, env = "SHEN_MAX_FRAMES_PER_SEC", value_name = "N")]
    pub max_frames_per_sec: Option<u32>,
    /// Form the replicated log once exactly N nodes (this one included) are
    /// live and have stayed so for 2 s; every node of the cluster must be
    /// given the same N. The formed member set is kept in
    /// DIR/log-members.json, so a restarted node rejoins it without this
    /// flag. Without it (and without that file) the node runs membership
    /// only.
    #[arg(long, env = "SHEN_BOOTSTRAP_EXPECT", value_name = "N")]
    pub bootstrap_expect: Option<usize>,
    /// When the log's write-ahead log (DIR/ouroboros-wal) is synced:
    /// `batch` (default: one fsync covers everything written since the
    /// last, and nothing is acknowledged before it), `every` (one fsync per
    /// record) or `never` (written, not synced: survives a killed process,
    /// not a power loss). Also `[stack.ouroboros] fsync` in the config file.
    #[arg(long, env = "SHEN_FSYNC", value_name = "POLICY")]
    pub fsync: Option<FsyncPolicy>,
}

/// The `shen run` config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct FileConfig {
    /// `--data-dir`.
    pub data_dir: Option<PathBuf>,
    /// `--listen`.
    #[serde(default)]
    pub listen: Vec<String>,
    /// `--peer`.
    #[serde(default)]
    pub peers: Vec<String>,
    /// `--psk`.
    pub psk: Option<PathBuf>,
    /// `--admin`.
    pub admin: Option<String>,
    /// mDNS on (default true).
    pub mdns: Option<bool>,
    /// `--max-frames-per-sec`.
    pub max_frames_per_sec: Option<u32>,
    /// `--bootstrap-expect`.
    pub bootstrap_expect: Option<usize>,
    /// Ring settings; Sundial with defaults when absent. `[stack.cartouche]`
    /// and `[stack.ouroboros]` tune the log rings (run once the log forms).
    pub stack: Option<StackConfig>,
}

/// Fully resolved settings.
#[derive(Debug, Clone)]
pub struct Settings {
    /// Data directory.
    pub data_dir: PathBuf,
    /// Listen addresses.
    pub listen: Vec<Multiaddr>,
    /// Bootstrap peers.
    pub peers: Vec<Multiaddr>,
    /// PSK file.
    pub psk: Option<PathBuf>,
    /// Admin address.
    pub admin: SocketAddr,
    /// mDNS on.
    pub mdns: bool,
    /// Flood limit per stream.
    pub max_frames_per_sec: u32,
    /// Rings run from the start (Sundial).
    pub stack: StackConfig,
    /// The log rings, run once the log forms.
    pub log: LogSettings,
}

fn parse_addrs(what: &str, list: &[String]) -> Result<Vec<Multiaddr>, String> {
    list.iter()
        .map(|s| {
            s.trim()
                .parse::<Multiaddr>()
                .map_err(|e| format!("invalid {what} address '{s}': {e}"))
        })
        .collect()
}

/// Merge flags/env with the config file and check everything.
pub fn resolve(args: &RunArgs) -> Result<Settings, String> {
    let file: FileConfig = match &args.config {
        Some(p) => {
            let text = std::fs::read_to_string(p)
                .map_err(|e| format!("cannot read config {}: {e}", p.display()))?;
            toml::from_str(&text).map_err(|e| {
                format!(
                    "config {}: {}",
                    p.display(),
                    e.to_string().lines().collect::<Vec<_>>().join(" ")
                )
            })?
        }
        None => FileConfig::default(),
    };
    let data_dir = args
        .data_dir
        .clone()
        .or(file.data_dir)
        .ok_or("--data-dir is required (or SHEN_DATA_DIR, or data_dir in --config)")?;
    let listen = if !args.listen.is_empty() {
        args.listen.clone()
    } else {
        file.listen
    };
    let listen = if listen.is_empty() {
        vec![
            "/ip4/0.0.0.0/tcp/0".to_string(),
            "/ip4/0.0.0.0/udp/0/quic-v1".to_string(),
        ]
    } else {
        listen
    };
    let mut listen = parse_addrs("--listen", &listen)?;
    let peers = if !args.peers.is_empty() {
        args.peers.clone()
    } else {
        file.peers
    };
    let peers = parse_addrs("--peer", &peers)?;
    let psk = args.psk.clone().or(file.psk);
    if psk.is_some() {
        // pnet runs over TCP only: QUIC listeners are dropped (documented).
        let before = listen.len();
        listen.retain(|a| {
            !a.iter().any(|p| {
                matches!(
                    p,
                    shen_transport_libp2p::libp2p::multiaddr::Protocol::QuicV1
                        | shen_transport_libp2p::libp2p::multiaddr::Protocol::Quic
                )
            })
        });
        if listen.is_empty() && before > 0 {
            return Err("--psk: every --listen address is QUIC, which cannot carry a pre-shared key; add a TCP address".into());
        }
    }
    let admin_text = args
        .admin
        .clone()
        .or(file.admin)
        .unwrap_or_else(|| DEFAULT_ADMIN.to_string());
    let admin: SocketAddr = admin_text
        .parse()
        .map_err(|e| format!("invalid --admin address '{admin_text}': {e} (expected HOST:PORT)"))?;
    let mdns = !args.no_mdns && file.mdns.unwrap_or(true);
    let max_frames_per_sec = args
        .max_frames_per_sec
        .or(file.max_frames_per_sec)
        .unwrap_or(20_000);
    if max_frames_per_sec == 0 {
        return Err("--max-frames-per-sec must be at least 1".into());
    }
    let mut stack = file.stack.unwrap_or(StackConfig {
        sundial: Some(SundialSettings::default()),
        ..StackConfig::default()
    });
    if stack.relay.is_some() {
        return Err("config [stack]: relay is a teaching ring for the simulator; it does not run in real clusters".into());
    }
    let log = LogSettings {
        expect: args.bootstrap_expect.or(file.bootstrap_expect),
        cartouche: stack.cartouche.take().unwrap_or_default(),
        ouroboros: stack.ouroboros.take().unwrap_or_default(),
    };
    let mut log = log;
    if let Some(policy) = args.fsync {
        log.ouroboros.fsync = policy;
    }
    // A real node always keeps the write-ahead log.
    log.ouroboros.durable = true;
    if let Some(n) = log.expect {
        if !(1..=1000).contains(&n) {
            return Err(format!(
                "--bootstrap-expect {n}: must be between 1 and 1000"
            ));
        }
    }
    if let Err((field, why)) = log.cartouche.validate() {
        return Err(format!("config [stack.cartouche] {field}: {why}"));
    }
    if let Err((field, why)) = log.ouroboros.validate() {
        return Err(format!("config [stack.ouroboros] {field}: {why}"));
    }
    let Some(sundial) = &stack.sundial else {
        return Err(
            "config [stack]: sundial must be enabled (it is how nodes find the cluster)".into(),
        );
    };
    if let Err((field, why)) = sundial.validate() {
        return Err(format!("config [stack.sundial] {field}: {why}"));
    }
    Ok(Settings {
        data_dir,
        listen,
        peers,
        psk,
        admin,
        mdns,
        max_frames_per_sec,
        stack,
        log,
    })
}

/// Read, bump and durably store the restart counter.
fn next_incarnation(dir: &Path) -> Result<u32, String> {
    let p = dir.join(INCARNATION_FILE);
    let last: u32 = match std::fs::read_to_string(&p) {
        Ok(s) => s
            .trim()
            .parse()
            .map_err(|_| format!("{}: not a number", p.display()))?,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => 0,
        Err(e) => return Err(format!("{}: {e}", p.display())),
    };
    let next = last.wrapping_add(1);
    write_atomic(&p, format!("{next}\n").as_bytes())?;
    Ok(next)
}

/// What `node.json` holds.
#[derive(Debug, Clone, Serialize, Deserialize, Default)]
pub struct NodeInfo {
    /// PeerId.
    pub peer_id: String,
    /// Listen addresses (without /p2p).
    pub listen_addrs: Vec<String>,
    /// Admin HTTP address.
    pub admin: String,
    /// Process id.
    pub pid: u32,
}

/// Event counters and the live event stream, shared with the admin server.
pub struct Shared {
    /// `/events` subscribers.
    pub events: broadcast::Sender<String>,
    /// Ring events by name.
    pub counts: Mutex<BTreeMap<&'static str, u64>>,
    /// Client requests waiting for Ouroboros.
    pub waiters: Waiters,
    /// Client append latency (seconds), as the admin API saw it.
    pub append_latency: Mutex<Histogram>,
    /// `--bootstrap-expect`.
    pub log_expect: Option<usize>,
}

struct ShenHost {
    shared: Arc<Shared>,
    info_path: PathBuf,
    admin: SocketAddr,
    /// Peers identified as Shen nodes (re-introduced to Sundial while
    /// connected but not live in its view: heals partitions).
    shen_peers: HashSet<PeerKey>,
    /// Since when a connected Shen peer has not been alive in Sundial's view.
    stale_since: HashMap<PeerKey, Time>,
    /// Waiting to form the log (None once formed, or when not asked to).
    formation: Option<Formation>,
    data_dir: PathBuf,
    log: LogSettings,
}

/// How long a connected peer may stay not-alive in Sundial's view before its
/// connection is replaced by a fresh one.
const STALE_CONNECTION: Duration = Duration::from_secs(5);

fn sundial_of(node: &Node<PeerKey, Event>) -> Option<&Sundial<PeerKey>> {
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
            FormStep::TooMany(n) => warn!(
                live = n,
                expect = f.expect(),
                "more live nodes than --bootstrap-expect: not forming the log until exactly that many are live"
            ),
            FormStep::Form(members) => {
                if let Err(e) = store_members(&self.data_dir, &members) {
                    error!("cannot store the log member set: {e}; not forming the log");
                    return;
                }
                info!(members = members.len(), "log formed: starting Cartouche and Ouroboros");
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
        self.shared.waiters.deliver(event);
        let name = event.name();
        if let Ok(mut c) = self.shared.counts.lock() {
            *c.entry(name).or_insert(0) += 1;
        }
        if self.shared.events.receiver_count() > 0 {
            let line = json!({ "time_ms": now.as_millis(), "name": name, "event": event });
            let _ = self.shared.events.send(line.to_string());
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

fn status_name(s: Status) -> &'static str {
    match s {
        Status::Alive => "alive",
        Status::Suspect => "suspect",
        Status::Dead => "dead",
        Status::Left => "left",
    }
}

/// The `/status` document (schema 1).
pub fn status_json(
    node: &Node<PeerKey, Event>,
    view: &NetView,
    now: Time,
    expect: Option<usize>,
) -> Value {
    let me = *node.id();
    let rings: Vec<&str> = node.rings().map(|(_, n)| n).collect();
    let log = log_cluster::status_section(node, expect);
    let Some(s) = sundial_of(node) else {
        return json!({ "schema": 1, "peer_id": view.peer_id, "rings": rings, "net": view, "log": log });
    };
    let ankh = AnkhRing::from_members(AnkhConfig::default(), s.ankh_members()).ok();
    let members: Vec<Value> = s
        .records()
        .map(|r| {
            let share = ankh.as_ref().and_then(|a| a.share_of(&r.id));
            json!({
                "id": r.id.to_string(),
                "self": r.id == me,
                "status": status_name(r.status),
                "incarnation": r.incarnation,
                "suspectors": r.suspectors.len(),
                "phi": s.phi_of(&r.id, now).filter(|p| p.is_finite()),
                "ownership": share,
            })
        })
        .collect();
    let live = s.live_count();
    let suspects = s.records().filter(|r| r.status == Status::Suspect).count();
    let health = if s.has_left() {
        "left"
    } else if live <= 1 {
        "alone"
    } else if suspects > 0 {
        "degraded"
    } else {
        "ok"
    };
    json!({
        "schema": 1,
        "peer_id": view.peer_id,
        "health": health,
        "live_members": live,
        "view_hash": format!("{:016x}", s.view_hash()),
        "incarnation": s.own().incarnation,
        "members": members,
        "rings": rings,
        "ankh": { "vnodes": AnkhConfig::default().vnodes, "members": ankh.as_ref().map(|a| a.len()).unwrap_or(0) },
        "sundial": s.stats(),
        "log": log,
        "net": view,
    })
}

/// Run `shen run`.
pub fn run(args: RunArgs) -> ExitCode {
    let settings = match resolve(&args) {
        Ok(s) => s,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    // A bad key file is bad input (exit 2), found before anything starts.
    let psk = match &settings.psk {
        Some(p) => match load_psk(p) {
            Ok(k) => Some(k),
            Err(e) => {
                eprintln!("error: --psk {e}");
                return ExitCode::from(2);
            }
        },
        None => None,
    };
    init_tracing();
    let rt = match runtime() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    match rt.block_on(run_node(settings, psk)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// The tokio runtime of the node and its tools (two workers: the machines
/// this runs on are small).
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// Install the `tracing` subscriber (`RUST_LOG`, default `info`).
pub fn init_tracing() {
    use tracing_subscriber::EnvFilter;
    let filter = EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info"));
    let _ = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(false)
        .try_init();
}

async fn run_node(
    settings: Settings,
    psk: Option<shen_transport_libp2p::libp2p::pnet::PreSharedKey>,
) -> Result<(), String> {
    let dir = &settings.data_dir;
    std::fs::create_dir_all(dir).map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
    let keypair = load_or_create_identity(&dir.join(IDENTITY_FILE)).map_err(|e| e.to_string())?;
    let incarnation = next_incarnation(dir)?;
    let mut config = Config::new(keypair);
    config.listen = settings.listen.clone();
    config.bootstrap = settings.peers.clone();
    config.psk = psk;
    config.mdns = settings.mdns;
    config.max_frames_per_sec = settings.max_frames_per_sec;
    let (transport, handle) = Transport::<Event>::new(config).map_err(|e| e.to_string())?;
    let me = PeerKey(transport.local_peer_id());
    info!(peer_id = %me, incarnation, private = settings.psk.is_some(), "starting node");
    let mut node = build_node(&settings.stack, me, &[me], incarnation);
    let formed = load_members(dir)?;
    let formation = match &formed {
        Some(members) => {
            if !members.contains(&me) {
                return Err(format!(
                    "{}: this node ({me}) is not in the formed log member set",
                    dir.join(LOG_MEMBERS_FILE).display()
                ));
            }
            info!(members = members.len(), "rejoining the formed log");
            adopt_before_start(&mut node, dir, members, &settings.log)?;
            None
        }
        None => settings.log.expect.map(Formation::new),
    };

    let listener = tokio::net::TcpListener::bind(settings.admin)
        .await
        .map_err(|e| format!("cannot bind admin HTTP on {}: {e}", settings.admin))?;
    let admin = listener
        .local_addr()
        .map_err(|e| format!("admin HTTP: {e}"))?;
    info!("admin HTTP on http://{admin}/status");
    let (events, _) = broadcast::channel(1024);
    let shared = Arc::new(Shared {
        events,
        counts: Mutex::new(BTreeMap::new()),
        waiters: Waiters::default(),
        append_latency: Mutex::new(Histogram::default()),
        log_expect: settings.log.expect,
    });
    tokio::spawn(admin_http::serve(listener, handle.clone(), shared.clone()));
    tokio::spawn(shutdown_on_signal(handle.clone()));
    let host = ShenHost {
        shared,
        info_path: dir.join(NODE_INFO_FILE),
        admin,
        shen_peers: HashSet::new(),
        stale_since: HashMap::new(),
        formation,
        data_dir: dir.clone(),
        log: settings.log.clone(),
    };
    transport.run(node, host).await;
    info!("node stopped cleanly");
    Ok(())
}

async fn shutdown_on_signal(handle: Handle<Event>) {
    use tokio::signal::unix::{signal, SignalKind};
    let (mut term, mut int) = match (
        signal(SignalKind::terminate()),
        signal(SignalKind::interrupt()),
    ) {
        (Ok(t), Ok(i)) => (t, i),
        _ => {
            error!("cannot install signal handlers");
            return;
        }
    };
    tokio::select! {
        _ = term.recv() => info!("SIGTERM"),
        _ = int.recv() => info!("SIGINT"),
    }
    handle.shutdown();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn resolve_rejects_bad_input() {
        let mut a = RunArgs::default();
        assert!(resolve(&a).unwrap_err().contains("--data-dir"));
        a.data_dir = Some("/tmp/x".into());
        a.listen = vec!["not-an-addr".into()];
        assert!(resolve(&a).unwrap_err().contains("--listen"));
        a.listen = vec!["/ip4/127.0.0.1/tcp/0".into()];
        a.admin = Some("nope".into());
        assert!(resolve(&a).unwrap_err().contains("--admin"));
        a.admin = None;
        let s = resolve(&a).unwrap();
        assert_eq!(s.admin.to_string(), DEFAULT_ADMIN);
        assert!(s.stack.sundial.is_some());
    }

    #[test]
    fn config_file_fills_gaps_and_names_bad_keys() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("shen.toml");
        std::fs::write(
            &p,
            "data_dir = \"/tmp/d\"\npeers = [\"/ip4/10.0.0.1/tcp/4001\"]\nmdns = false\n[stack.sundial]\ninterval_ms = 100\n",
        )
        .unwrap();
        let a = RunArgs {
            config: Some(p.clone()),
            ..RunArgs::default()
        };
        let s = resolve(&a).unwrap();
        assert_eq!(s.data_dir, PathBuf::from("/tmp/d"));
        assert_eq!(s.peers.len(), 1);
        assert!(!s.mdns);
        assert_eq!(s.stack.sundial.as_ref().unwrap().interval_ms, 100);
        std::fs::write(&p, "data_dirr = \"/tmp/d\"\n").unwrap();
        let e = resolve(&a).unwrap_err();
        assert!(e.contains("data_dirr"), "{e}");
    }
}
