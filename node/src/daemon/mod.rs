//! The node daemon: one libp2p transport driving the rings, the log's formation, and typed operations on it.
//!
//! [`Daemon::open`] prepares a node from its [`Settings`] (identity,
//! incarnation, rings, a formed log rebuilt from disk) and returns the
//! [`Ops`] handle that the admin API serves; [`Daemon::run`] drives it until
//! [`Ops::shutdown`]. Architecture invariant: nothing here knows HTTP; the
//! admin layer (`crate::admin`) calls [`Ops`], never the transport.

mod format;
mod formation;
mod host;
mod ops;
mod settings;
mod status;
mod waiters;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};

use shen_rings::stack::{build_node, ShenEvent};
use shen_rings::Node;
use shen_transport_libp2p::identity::{load_or_create_identity, IDENTITY_FILE};
/// The peer store in the data directory (peers seen, for rejoining without `--peer`).
const PEER_STORE_FILE: &str = "peers.json";
use shen_transport_libp2p::libp2p::pnet::PreSharedKey;
use shen_transport_libp2p::{Config, PeerKey, Transport};
use tokio::sync::broadcast;
use tracing::info;

pub use format::{DATA_FORMAT, FORMAT_FILE};
pub use formation::{
    load_members, store_members, FormStep, Formation, LogMembers, LogSettings, FORM_STABLE,
    LOG_MEMBERS_FILE, WAL_DIR,
};
pub use ops::{Ops, TransportMetrics};
pub use settings::{
    parse_duration, parse_rate, resolve, FileConfig, RunArgs, Settings, DEFAULT_ADMIN,
    INCARNATION_FILE,
};
pub use status::{epoch_text, status_doc};

use formation::{adopt_before_start, Formation as Form};
use host::ShenHost;
use waiters::Waiters;

/// The node's event type.
pub type Event = ShenEvent<PeerKey>;

/// What the host and the operations share: the event stream, counters and
/// the requests waiting for their outcome.
pub(crate) struct Shared {
    /// `/events` subscribers: (event number, an `shen_api::EventLine` in JSON).
    pub(crate) events: broadcast::Sender<(u64, String)>,
    /// Ring events by name.
    pub(crate) counts: Mutex<BTreeMap<&'static str, u64>>,
    /// Client requests waiting for Ouroboros.
    pub(crate) waiters: Waiters,
    /// `--bootstrap-expect`.
    pub(crate) log_expect: Option<usize>,
    /// The data directory (for the partitions' bytes on disk in `/status`).
    pub(crate) data_dir: std::path::PathBuf,
}

/// A prepared node: run it with [`Daemon::run`].
pub struct Daemon {
    transport: Transport<Event>,
    node: Node<PeerKey, Event>,
    host: ShenHost,
    /// The data directory's lock, held while the daemon lives.
    _lock: std::fs::File,
}

/// The lock file in a data directory: a running `shen run` holds an
/// exclusive advisory lock (`flock`) on it; the operating system drops it
/// when the process dies, however it dies.
pub const LOCK_FILE: &str = "LOCK";

/// Take the data directory's exclusive lock, or say who holds it. Creating
/// the (empty) lock file is the only change made, and only when missing.
pub fn lock_data_dir(dir: &std::path::Path) -> Result<std::fs::File, String> {
    let path = dir.join(LOCK_FILE);
    let file = std::fs::OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(&path)
        .map_err(|e| format!("cannot open the lock file {}: {e}", path.display()))?;
    match rustix::fs::flock(&file, rustix::fs::FlockOperation::NonBlockingLockExclusive) {
        Ok(()) => Ok(file),
        Err(e) if e == rustix::io::Errno::WOULDBLOCK => Err(format!(
            "the data directory {} is in use by another shen process (it holds {}); \
             stop it first or give this node another --data-dir",
            dir.display(),
            path.display()
        )),
        Err(e) => Err(format!("cannot lock {}: {e}", path.display())),
    }
}

impl Daemon {
    /// Prepare the node of `settings` (its admin API will listen on
    /// `admin`, written to `node.json`): identity, restart counter, rings,
    /// and a formed log rebuilt from the data directory.
    pub fn open(
        settings: &Settings,
        psk: Option<PreSharedKey>,
        admin: SocketAddr,
    ) -> Result<(Daemon, Ops), String> {
        let dir = &settings.data_dir;
        std::fs::create_dir_all(dir)
            .map_err(|e| format!("cannot create {}: {e}", dir.display()))?;
        // Before anything reads or writes the directory: a second process
        // on it must change nothing.
        let lock = lock_data_dir(dir)?;
        format::check_or_init(dir)?;
        let keypair =
            load_or_create_identity(&dir.join(IDENTITY_FILE)).map_err(|e| e.to_string())?;
        let incarnation = settings::next_incarnation(dir)?;
        let mut config = Config::new(keypair);
        config.listen = settings.listen.clone();
        config.bootstrap = settings.peers.clone();
        config.psk = psk;
        config.mdns = settings.mdns;
        config.max_frames_per_sec = settings.max_frames_per_sec;
        config.peer_store = Some(dir.join(PEER_STORE_FILE));
        // The log's replication is bulk: membership probes and the token
        // never queue behind records (see the transport's `lanes`).
        config.bulk_rings = vec![shen_rings::RingId::OUROBOROS];
        let (transport, handle) = Transport::<Event>::new(config).map_err(|e| e.to_string())?;
        let me = PeerKey(transport.local_peer_id());
        info!(peer_id = %me, incarnation, private = settings.psk.is_some(), "starting node");
        let mut node = build_node(&settings.stack, me, &[me], incarnation);
        let formation = match load_members(dir)? {
            Some(members) => {
                if !members.contains(&me) {
                    return Err(format!(
                        "{}: this node ({me}) is not in the log member set the file lists",
                        dir.join(LOG_MEMBERS_FILE).display()
                    ));
                }
                info!(members = members.len(), "rejoining the log");
                adopt_before_start(&mut node, dir, &members, &settings.log)?;
                None
            }
            None => match settings.log.expect {
                Some(n) => Some(Form::new(n)),
                None => {
                    // No member file and nothing to form: host the log as a
                    // joiner (it joins a running log it finds).
                    info!(
                        auto_join = settings.log.ouroboros.auto_join,
                        "no log here yet: joining one when found"
                    );
                    adopt_before_start(&mut node, dir, &[], &settings.log)?;
                    None
                }
            },
        };
        let (events, _) = broadcast::channel(1024);
        let shared = Arc::new(Shared {
            events,
            counts: Mutex::new(BTreeMap::new()),
            waiters: Waiters::default(),
            log_expect: settings.log.expect,
            data_dir: dir.clone(),
        });
        let host = ShenHost {
            shared: shared.clone(),
            info_path: dir.join(shen_api::NODE_INFO_FILE),
            admin,
            shen_peers: HashSet::new(),
            stale_since: HashMap::new(),
            formation,
            data_dir: dir.clone(),
            log: settings.log.clone(),
            event_seq: 0,
            me,
        };
        let ops = Ops::new(handle, shared);
        Ok((
            Daemon {
                transport,
                node,
                host,
                _lock: lock,
            },
            ops,
        ))
    }

    /// Drive the node until [`Ops::shutdown`] (it then leaves the cluster
    /// gracefully and flushes).
    pub async fn run(self) {
        self.transport.run(self.node, self.host).await;
        info!("node stopped cleanly");
    }
}

/// The tokio runtime of the node and its tools: `TOKIO_WORKER_THREADS`
/// workers (default 2: the machines this runs on are small).
pub fn runtime() -> Result<tokio::runtime::Runtime, String> {
    let workers = worker_threads(std::env::var("TOKIO_WORKER_THREADS").ok().as_deref())?;
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(workers)
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))
}

/// Worker threads for a `TOKIO_WORKER_THREADS` value (unset: 2).
pub fn worker_threads(var: Option<&str>) -> Result<usize, String> {
    match var {
        None => Ok(2),
        Some(v) => v
            .trim()
            .parse::<usize>()
            .ok()
            .filter(|n| (1..=1024).contains(n))
            .ok_or_else(|| {
                format!("TOKIO_WORKER_THREADS must be a number from 1 to 1024, not '{v}'")
            }),
    }
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

#[cfg(test)]
mod tests {
    use super::worker_threads;

    #[test]
    fn worker_threads_follow_the_environment() {
        assert_eq!(worker_threads(None), Ok(2));
        assert_eq!(worker_threads(Some("4")), Ok(4));
        assert_eq!(worker_threads(Some(" 1 ")), Ok(1));
        for bad in ["0", "-1", "many", "", "5000"] {
            assert!(
                worker_threads(Some(bad))
                    .unwrap_err()
                    .contains("TOKIO_WORKER_THREADS"),
                "{bad}"
            );
        }
    }
}
