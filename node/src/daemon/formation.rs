//! Log formation: how `shen run` nodes that found each other form the fixed member set the log runs over.
//!
//! Sundial (over libp2p) finds the nodes; this module decides when the
//! set is formed and hosts Cartouche and Ouroboros over it.
//!
//! # Formation (`--bootstrap-expect N`)
//! Cartouche's token ring and Ouroboros's configuration rounds need every
//! node to agree on one member set (majorities are counted over it). Nodes
//! discover each other with no seed list, so the set is *formed* once, the
//! way Consul and Nomad bootstrap their servers: a node started with
//! `--bootstrap-expect N` waits until Sundial shows exactly N live members
//! (itself included), unchanged for [`FORM_STABLE`], then adopts that set,
//! stores it in `DIR/log-members.json` and starts Cartouche and Ouroboros
//! over it. Every node of a cluster started with the same N sees the same N
//! members, so all form the same set. A restarted node reads the file and
//! rejoins the same set at once, rebuilding its Ouroboros state (logs,
//! replica state, acceptor state, table) from its write-ahead log in
//! `DIR/ouroboros-wal` (see `shen_rings::ouroboros`'s durability notes);
//! without one it rejoins as a restarted member that relearns the table
//! from a majority and is refilled by state transfer.
//!
//! # After formation: the member set changes
//! The member set then lives in the log's table and changes one node at a
//! time (`shen_rings::ouroboros` members): a node started without
//! `--bootstrap-expect` and without a member file, or one that finds more
//! live nodes than it expected (the log already formed), hosts the log as
//! a *joiner* and, unless `--no-auto-join`, asks to be added. The file is
//! rewritten with the member set whenever a table changes it while this
//! node is in it, so a restart knows whom to ask.

use std::path::Path;
use std::time::Duration;

use serde::{Deserialize, Serialize};
use shen_rings::cartouche::Cartouche;
use shen_rings::ouroboros::{read_all, Ouroboros, PartitionLogs};
use shen_rings::stack::{CartoucheSettings, OuroborosSettings, ShenEvent};
use shen_rings::sundial::Sundial;
use shen_rings::{Node, Time};
use shen_transport_libp2p::PeerKey;
use tracing::info;

use shen_storage::{SegmentLog, SegmentLogConfig};

/// The formed member set, in the data directory.
pub const LOG_MEMBERS_FILE: &str = "log-members.json";

/// How long the live set must stay the same before it is adopted.
pub const FORM_STABLE: Duration = Duration::from_secs(2);

/// What `log-members.json` holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct LogMembers {
    /// Schema version.
    pub schema: u32,
    /// The members' PeerIds, sorted.
    pub members: Vec<String>,
}

/// Settings of the log rings in a real cluster.
#[derive(Debug, Clone)]
pub struct LogSettings {
    /// Form the log once this many nodes are live (`None`: do not form
    /// one unless the data directory already holds a formed set).
    pub expect: Option<usize>,
    /// Cartouche settings.
    pub cartouche: CartoucheSettings,
    /// Ouroboros settings.
    pub ouroboros: OuroborosSettings,
    /// Size of one segment file of a partition's records (`DIR/parts/N/`),
    /// the unit retention deletes. Default
    /// [`shen_storage::DEFAULT_SEGMENT_BYTES`].
    pub segment_bytes: u64,
}

impl Default for LogSettings {
    fn default() -> LogSettings {
        LogSettings {
            expect: None,
            cartouche: CartoucheSettings::default(),
            ouroboros: OuroborosSettings::default(),
            segment_bytes: shen_storage::DEFAULT_SEGMENT_BYTES,
        }
    }
}

/// What [`Formation::observe`] decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FormStep {
    /// Keep waiting.
    Wait,
    /// More live nodes than expected: the set is ambiguous (warn once).
    TooMany(usize),
    /// Adopt this set (sorted) now.
    Form(Vec<PeerKey>),
}

/// The formation rule as a small state machine (testable without a
/// network): feed it the live set on every tick.
#[derive(Debug, Clone)]
pub struct Formation {
    expect: usize,
    candidate: Option<(Vec<PeerKey>, Time)>,
    warned: bool,
    done: bool,
}

impl Formation {
    /// Wait for `expect` live members.
    pub fn new(expect: usize) -> Formation {
        Formation {
            expect,
            candidate: None,
            warned: false,
            done: false,
        }
    }

    /// The number of members awaited.
    pub fn expect(&self) -> usize {
        self.expect
    }

    /// Observe Sundial's live set (self included) at `now`.
    pub fn observe(&mut self, mut live: Vec<PeerKey>, now: Time) -> FormStep {
        if self.done {
            return FormStep::Wait;
        }
        live.sort();
        live.dedup();
        if live.len() > self.expect {
            self.candidate = None;
            if self.warned {
                return FormStep::Wait;
            }
            self.warned = true;
            return FormStep::TooMany(live.len());
        }
        if live.len() < self.expect {
            self.candidate = None;
            return FormStep::Wait;
        }
        match &self.candidate {
            Some((set, since)) if *set == live => {
                if now.saturating_since(*since) >= FORM_STABLE {
                    self.done = true;
                    FormStep::Form(live)
                } else {
                    FormStep::Wait
                }
            }
            _ => {
                self.candidate = Some((live, now));
                FormStep::Wait
            }
        }
    }
}

/// Read the formed set from `dir`, if any.
pub fn load_members(dir: &Path) -> Result<Option<Vec<PeerKey>>, String> {
    let p = dir.join(LOG_MEMBERS_FILE);
    let text = match std::fs::read_to_string(&p) {
        Ok(t) => t,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(None),
        Err(e) => return Err(format!("{}: {e}", p.display())),
    };
    let file: LogMembers =
        serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))?;
    if file.schema != 1 {
        return Err(format!(
            "{}: unknown schema {} (this build reads 1)",
            p.display(),
            file.schema
        ));
    }
    let mut members = Vec::with_capacity(file.members.len());
    for m in &file.members {
        let id = m
            .parse()
            .map_err(|e| format!("{}: bad PeerId '{m}': {e}", p.display()))?;
        members.push(PeerKey(id));
    }
    if members.is_empty() {
        return Err(format!("{}: empty member list", p.display()));
    }
    members.sort();
    members.dedup();
    Ok(Some(members))
}

/// Store the formed set in `dir` (durably, atomically).
pub fn store_members(dir: &Path, members: &[PeerKey]) -> Result<(), String> {
    let file = LogMembers {
        schema: 1,
        members: members.iter().map(|m| m.to_string()).collect(),
    };
    let bytes = serde_json::to_vec_pretty(&file).map_err(|e| e.to_string())?;
    super::settings::write_atomic(&dir.join(LOG_MEMBERS_FILE), &bytes)
}

/// The write-ahead log's directory inside the data directory.
pub const WAL_DIR: &str = "ouroboros-wal";

/// Build this node's Ouroboros over `members`: on the write-ahead log in
/// `DIR/ouroboros-wal` when `settings.ouroboros.durable` (rebuilt from it if
/// it holds a previous life's state), else in memory. `restarted`: the node
/// was a member before (with no usable log it relearns from the others).
pub fn open_ouroboros(
    dir: &Path,
    members: &[PeerKey],
    settings: &LogSettings,
    restarted: bool,
) -> Result<Ouroboros<PeerKey>, String> {
    let config = settings.ouroboros.to_config();
    if !settings.ouroboros.durable {
        return Ok(Ouroboros::new(members, config, restarted));
    }
    let path = dir.join(WAL_DIR);
    let wal = SegmentLog::open(&path).map_err(|e| format!("{}: {e}", path.display()))?;
    let records = read_all(&wal).map_err(|e| format!("{}: {e}", path.display()))?;
    let n = records.len();
    let parts = open_parts(dir, settings.ouroboros.partitions, settings.segment_bytes)?;
    let cache = usize::try_from(settings.ouroboros.cache_bytes).unwrap_or(usize::MAX);
    let o = Ouroboros::recover_with_records(
        members,
        config,
        restarted,
        &records,
        Box::new(wal),
        settings.ouroboros.fsync,
        Some((Box::new(parts), cache)),
    )
    .map_err(|e| format!("{}: {e}", path.display()))?;
    if o.is_restored() {
        let held: u64 = (0..settings.ouroboros.partitions)
            .map(|p| o.log_len(p))
            .sum();
        info!(
            records = n,
            entries = held,
            "log state recovered from the write-ahead log"
        );
    }
    Ok(o)
}

/// The partition records' directory inside the data directory: one
/// `N/index` and `N/data` segment log per partition.
pub const PARTS_DIR: &str = "parts";

/// Open (or create) every partition's index and data logs under
/// `DIR/parts/N/`.
fn open_parts(
    dir: &Path,
    partitions: u32,
    segment_bytes: u64,
) -> Result<PartitionLogs<SegmentLog>, String> {
    let root = dir.join(PARTS_DIR);
    let config = SegmentLogConfig {
        segment_bytes,
        ..SegmentLogConfig::default()
    };
    let mut logs = Vec::new();
    for p in 0..partitions {
        let open = |what: &str| {
            let path = root.join(p.to_string()).join(what);
            SegmentLog::open_with(&path, config).map_err(|e| format!("{}: {e}", path.display()))
        };
        logs.push((open("index")?, open("data")?));
    }
    PartitionLogs::new(logs).map_err(|e| format!("{}: {e}", root.display()))
}

/// Bytes of the partition records on disk, per partition (the sizes of the
/// files under `DIR/parts/N/`).
pub fn part_disk_bytes(dir: &Path, p: u32) -> u64 {
    fn walk(path: &Path) -> u64 {
        let Ok(entries) = std::fs::read_dir(path) else {
            return 0;
        };
        entries
            .flatten()
            .map(|e| match e.metadata() {
                Ok(m) if m.is_dir() => walk(&e.path()),
                Ok(m) => m.len(),
                Err(_) => 0,
            })
            .sum()
    }
    walk(&dir.join(PARTS_DIR).join(p.to_string()))
}

/// Host Cartouche and Ouroboros over `members` on `node` (started at once
/// if the node runs).
pub fn adopt(
    node: &mut Node<PeerKey, ShenEvent<PeerKey>>,
    dir: &Path,
    members: &[PeerKey],
    settings: &LogSettings,
    now: Time,
    rng: &mut dyn rand_core::RngCore,
) -> Result<(), String> {
    let mut ouroboros = open_ouroboros(dir, members, settings, false)?;
    let mut cartouche = open_cartouche(dir, members, settings)?;
    cartouche.set_members(&ouroboros.member_set().nodes);
    ouroboros.set_wall_clock(unix_now_ms().saturating_sub(now.as_millis()));
    node.add_started_ring(now, rng, cartouche);
    node.add_started_ring(now, rng, ouroboros);
    sync_live(node, now, rng);
    Ok(())
}

/// Host the rings on a node that has not started yet (restart path).
pub fn adopt_before_start(
    node: &mut Node<PeerKey, ShenEvent<PeerKey>>,
    dir: &Path,
    members: &[PeerKey],
    settings: &LogSettings,
) -> Result<(), String> {
    let mut ouroboros = open_ouroboros(dir, members, settings, true)?;
    let mut cartouche = open_cartouche(dir, members, settings)?;
    // The member set as recovered (it may have changed since formation).
    cartouche.set_members(&ouroboros.member_set().nodes);
    node.add_ring(cartouche);
    ouroboros.set_wall_clock(unix_now_ms());
    node.add_ring(ouroboros);
    Ok(())
}

/// Host the log's rings on a node that is not a member of any log yet: it
/// learns the table from the live nodes and (with auto-join) asks to be
/// added; it takes part as a member once a round adds it
/// (`Ouroboros::joiner`). Started at once if the node runs.
pub fn adopt_joiner(
    node: &mut Node<PeerKey, ShenEvent<PeerKey>>,
    dir: &Path,
    settings: &LogSettings,
    now: Time,
    rng: &mut dyn rand_core::RngCore,
) -> Result<(), String> {
    adopt(node, dir, &[], settings, now, rng)
}

/// The file of Cartouche's acceptor state (promised generation, last
/// acknowledged number) in the data directory.
pub const CARTOUCHE_STATE_FILE: &str = "cartouche-acceptor";

/// Cartouche over the log's members, its acceptor state kept in
/// [`CARTOUCHE_STATE_FILE`]: stored (fsynced) before any answer that
/// depends on it leaves, so mutual exclusion holds across restarts.
fn open_cartouche(
    dir: &Path,
    members: &[PeerKey],
    settings: &LogSettings,
) -> Result<Cartouche<PeerKey>, String> {
    let file = shen_storage::RecordFile::new(dir.join(CARTOUCHE_STATE_FILE));
    let shown = file.path().display().to_string();
    Cartouche::new(members.iter().copied(), settings.cartouche.to_config())
        .with_store(Box::new(file))
        .map_err(|e| format!("{shown}: {e}"))
}

/// Milliseconds since the Unix epoch (for Scarab IDs; 0 if the clock is
/// before 1970).
fn unix_now_ms() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

/// Hand Ouroboros Sundial's live set.
pub fn sync_live(
    node: &mut Node<PeerKey, ShenEvent<PeerKey>>,
    now: Time,
    rng: &mut dyn rand_core::RngCore,
) {
    let live: Vec<PeerKey> = node
        .ring::<Sundial<PeerKey>>()
        .map(|s| s.live_members().copied().collect())
        .unwrap_or_default();
    node.command::<Ouroboros<PeerKey>, _>(now, rng, |o, _| o.set_live(live));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(i: u8) -> PeerKey {
        let kp = shen_transport_libp2p::libp2p::identity::Keypair::ed25519_from_bytes([i; 32])
            .expect("valid key");
        PeerKey(kp.public().to_peer_id())
    }

    #[test]
    fn forms_only_after_the_expected_set_is_stable() {
        let (a, b, c, d) = (key(1), key(2), key(3), key(4));
        let mut f = Formation::new(3);
        let t = |ms| Time::from_millis(ms);
        assert_eq!(f.observe(vec![a, b], t(0)), FormStep::Wait);
        assert_eq!(f.observe(vec![c, a, b], t(100)), FormStep::Wait);
        // Changes reset the clock.
        assert_eq!(f.observe(vec![a, b], t(1000)), FormStep::Wait);
        assert_eq!(f.observe(vec![b, c, a], t(1500)), FormStep::Wait);
        assert_eq!(f.observe(vec![a, b, c], t(3000)), FormStep::Wait);
        let mut want = vec![a, b, c];
        want.sort();
        assert_eq!(f.observe(vec![c, b, a], t(3500)), FormStep::Form(want));
        // Once formed, never again.
        assert_eq!(f.observe(vec![a, b, c], t(9000)), FormStep::Wait);

        let mut g = Formation::new(3);
        assert_eq!(g.observe(vec![a, b, c, d], t(0)), FormStep::TooMany(4));
        assert_eq!(g.observe(vec![a, b, c, d], t(5000)), FormStep::Wait);
        assert_eq!(g.observe(vec![a, b, c], t(6000)), FormStep::Wait);
        assert!(matches!(
            g.observe(vec![a, b, c], t(8000)),
            FormStep::Form(_)
        ));
    }

    #[test]
    fn member_file_round_trips_and_rejects_garbage() {
        let dir = tempfile::tempdir().unwrap();
        assert_eq!(load_members(dir.path()).unwrap(), None);
        let mut set = vec![key(9), key(7)];
        store_members(dir.path(), &set).unwrap();
        set.sort();
        assert_eq!(load_members(dir.path()).unwrap(), Some(set));
        std::fs::write(
            dir.path().join(LOG_MEMBERS_FILE),
            "{\"schema\":1,\"members\":[\"nope\"]}",
        )
        .unwrap();
        let e = load_members(dir.path()).unwrap_err();
        assert!(e.contains("bad PeerId 'nope'"), "{e}");
        std::fs::write(
            dir.path().join(LOG_MEMBERS_FILE),
            "{\"schema\":2,\"members\":[]}",
        )
        .unwrap();
        assert!(load_members(dir.path())
            .unwrap_err()
            .contains("unknown schema 2"));
    }
}
