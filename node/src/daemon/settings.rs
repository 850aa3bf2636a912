//! The node's settings: `shen run` flags, `SHEN_*` environment variables and the TOML file, resolved.
//!
//! Flags win over the environment, which wins over the file (`--config`),
//! which wins over defaults.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};

use clap::Args;
use serde::Deserialize;
use shen_rings::ouroboros::FsyncPolicy;
use shen_rings::stack::{StackConfig, SundialSettings};
use shen_transport_libp2p::libp2p::Multiaddr;

use super::formation::LogSettings;
pub(crate) use shen_storage::write_atomic;

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
    /// A peer to contact at start, e.g. /ip4/10.0.0.2/tcp/4001,
    /// /dns4/node.example.org/tcp/4001 or /dnsaddr/cluster.example.org
    /// (repeatable, optional: mDNS finds peers on the LAN, and a node
    /// remembers the peers it has seen in DIR/peers.json, so a restart
    /// needs no --peer). Any member's address is an introduction.
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
    /// given the same N. The member set is kept in DIR/log-members.json,
    /// so a restarted node rejoins without this flag. Without it (and
    /// without that file), or when more than N nodes are live, the node
    /// joins a log that is already running (see --no-auto-join).
    #[arg(long, env = "SHEN_BOOTSTRAP_EXPECT", value_name = "N")]
    pub bootstrap_expect: Option<usize>,
    /// When the log's write-ahead log (DIR/ouroboros-wal) is synced:
    /// `batch` (default: one fsync covers everything written since the
    /// last, and nothing is acknowledged before it), `every` (one fsync per
    /// record) or `never` (written, not synced: survives a killed process,
    /// not a power loss). Also `[stack.ouroboros] fsync` in the config file.
    #[arg(long, env = "SHEN_FSYNC", value_name = "POLICY")]
    pub fsync: Option<FsyncPolicy>,
    /// Bytes of recent records kept in memory (all partitions together;
    /// older ones are read from disk). Default 64 MiB. Also `[storage]
    /// cache_bytes`.
    #[arg(long, env = "SHEN_CACHE_BYTES", value_name = "BYTES")]
    pub cache_bytes: Option<u64>,
    /// Retention by size: each partition replica deletes its oldest whole
    /// segments while at least this many bytes stay. Off by default. Also
    /// `[storage] retention_bytes`.
    #[arg(long, env = "SHEN_RETENTION_BYTES", value_name = "BYTES")]
    pub retention_bytes: Option<u64>,
    /// Retention by age: whole segments whose newest record is older than
    /// this many milliseconds are deleted. Off by default. Also `[storage]
    /// retention_ms`.
    #[arg(long, env = "SHEN_RETENTION_MS", value_name = "MS")]
    pub retention_ms: Option<u64>,
    /// Size of one segment file of a partition's records: retention deletes
    /// whole segments, so this is how finely it cuts (Kafka's
    /// `segment.bytes`). Default 64 MiB; 4 KiB to 1 GiB. Also `[storage]
    /// segment_bytes`.
    #[arg(long, env = "SHEN_SEGMENT_BYTES", value_name = "BYTES")]
    pub segment_bytes: Option<u64>,
    /// Do not ask to join a running log on its own: a node outside the
    /// log's member set then waits for `shen member add PEER_ID` (run on
    /// any member). Also `[stack.ouroboros] auto_join = false`.
    #[arg(long, env = "SHEN_NO_AUTO_JOIN")]
    pub no_auto_join: bool,
    /// Remove a member that the configuring node has seen dead for this
    /// long from the log's member set, so its partitions stay re-replicated
    /// elsewhere for good (`shen member remove` does it at once). A number
    /// with a unit: `90s`, `10m` (default), `2h`. Only while the others
    /// keep a margin (all up, or one more than a majority).
    #[arg(long, env = "SHEN_REPLACE_AFTER", value_name = "DURATION", value_parser = parse_duration)]
    pub replace_after: Option<std::time::Duration>,
    /// Cap on the bytes per second this node sends to replicas catching up
    /// (partitions moving to a new member, a leaver's partitions draining,
    /// refills after a failure), so appends keep their share of disk, CPU
    /// and link meanwhile. A number with an optional unit: `8MiB`
    /// (default), `500KB`, `1GiB`; `0` for no limit. Also
    /// `[stack.ouroboros] rebalance_bytes_per_sec`.
    #[arg(long, env = "SHEN_REBALANCE_BYTES_PER_SEC", value_name = "RATE", value_parser = parse_rate)]
    pub rebalance_bytes_per_sec: Option<u64>,
}

/// Bytes with an optional unit: `1048576`, `500KB`, `32MiB`, `1GiB`.
pub fn parse_rate(text: &str) -> Result<u64, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(digits);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("'{text}': expected bytes, with an optional unit (32MiB, 500KB)"))?;
    let k: u64 = match unit.trim() {
        "" | "B" => 1,
        "KB" | "kB" => 1_000,
        "KiB" => 1 << 10,
        "MB" => 1_000_000,
        "MiB" => 1 << 20,
        "GB" => 1_000_000_000,
        "GiB" => 1 << 30,
        u => {
            return Err(format!(
                "'{text}': unknown unit '{u}' (use B, KB, KiB, MB, MiB, GB or GiB)"
            ))
        }
    };
    n.checked_mul(k)
        .ok_or_else(|| format!("'{text}': too large"))
}

/// A duration with a unit: `500ms`, `90s`, `10m`, `2h`.
pub fn parse_duration(text: &str) -> Result<std::time::Duration, String> {
    let t = text.trim();
    let digits = t.find(|c: char| !c.is_ascii_digit()).unwrap_or(t.len());
    let (n, unit) = t.split_at(digits);
    let n: u64 = n
        .parse()
        .map_err(|_| format!("'{text}': expected a number with a unit (500ms, 90s, 10m, 2h)"))?;
    let ms = match unit {
        "ms" => n,
        "s" => n.saturating_mul(1000),
        "m" => n.saturating_mul(60_000),
        "h" => n.saturating_mul(3_600_000),
        _ => {
            return Err(format!(
                "'{text}': unknown unit '{unit}' (use ms, s, m or h)"
            ))
        }
    };
    if ms == 0 {
        return Err(format!("'{text}': must be positive"));
    }
    Ok(std::time::Duration::from_millis(ms))
}

/// The `[storage]` section of the config file.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct StorageConfig {
    /// `--cache-bytes`.
    pub cache_bytes: Option<u64>,
    /// `--retention-bytes`.
    pub retention_bytes: Option<u64>,
    /// `--retention-ms`.
    pub retention_ms: Option<u64>,
    /// `--segment-bytes`.
    pub segment_bytes: Option<u64>,
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
    /// Record storage: cache and retention.
    #[serde(default)]
    pub storage: StorageConfig,
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
        segment_bytes: shen_storage::DEFAULT_SEGMENT_BYTES,
    };
    let mut log = log;
    if let Some(policy) = args.fsync {
        log.ouroboros.fsync = policy;
    }
    // A real node always keeps the write-ahead log.
    log.ouroboros.durable = true;
    if args.no_auto_join {
        log.ouroboros.auto_join = false;
    }
    if let Some(r) = args.rebalance_bytes_per_sec {
        log.ouroboros.rebalance_bytes_per_sec = r;
    }
    if let Some(d) = args.replace_after {
        log.ouroboros.replace_after_ms = u64::try_from(d.as_millis()).unwrap_or(u64::MAX);
    }
    if let Some(b) = args.cache_bytes.or(file.storage.cache_bytes) {
        log.ouroboros.cache_bytes = b;
    }
    if let Some(b) = args.retention_bytes.or(file.storage.retention_bytes) {
        if b == 0 {
            return Err(
                "--retention-bytes must be at least 1 (leave it unset for no limit)".into(),
            );
        }
        log.ouroboros.retention_bytes = Some(b);
    }
    if let Some(b) = args.segment_bytes.or(file.storage.segment_bytes) {
        if !(4096..=1 << 30).contains(&b) {
            return Err(format!(
                "--segment-bytes {b}: must be between 4096 (4 KiB) and 1073741824 (1 GiB)"
            ));
        }
        log.segment_bytes = b;
    }
    if let Some(ms) = args.retention_ms.or(file.storage.retention_ms) {
        if ms == 0 {
            return Err("--retention-ms must be at least 1 (leave it unset for no limit)".into());
        }
        log.ouroboros.retention_ms = Some(ms);
    }
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
pub(crate) fn next_incarnation(dir: &Path) -> Result<u32, String> {
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

    #[test]
    fn durations_and_rates_parse_with_units_and_name_bad_ones() {
        let ok: &[(&str, u64)] = &[
            ("500ms", 500),
            ("90s", 90_000),
            ("10m", 600_000),
            ("2h", 7_200_000),
        ];
        for (t, ms) in ok {
            assert_eq!(parse_duration(t).unwrap().as_millis() as u64, *ms, "{t}");
        }
        for t in ["", "10", "0s", "5d", "-1s", "s"] {
            assert!(parse_duration(t).is_err(), "{t}");
        }
        let ok: &[(&str, u64)] = &[
            ("0", 0),
            ("1048576", 1 << 20),
            ("500KB", 500_000),
            ("64KiB", 64 << 10),
            ("32MiB", 32 << 20),
            ("10MB", 10_000_000),
            ("1GiB", 1 << 30),
            ("2GB", 2_000_000_000),
        ];
        for (t, b) in ok {
            assert_eq!(parse_rate(t).unwrap(), *b, "{t}");
        }
        for t in [
            "",
            "MiB",
            "5 TiB",
            "1.5MiB",
            "-3",
            "99999999999999999999GiB",
        ] {
            let e = parse_rate(t).unwrap_err();
            assert!(e.contains(t.trim()), "{t}: {e}");
        }
    }

    #[test]
    fn the_rebalance_rate_reaches_the_log_settings() {
        let a = RunArgs {
            data_dir: Some("/tmp/x".into()),
            rebalance_bytes_per_sec: Some(8 << 20),
            ..RunArgs::default()
        };
        let s = resolve(&a).unwrap();
        let log = &s.log;
        assert_eq!(
            log.ouroboros.to_config().rebalance_bytes_per_sec,
            Some(8 << 20)
        );
        let a = RunArgs {
            rebalance_bytes_per_sec: Some(0),
            ..a
        };
        let log = resolve(&a).unwrap().log;
        assert_eq!(log.ouroboros.to_config().rebalance_bytes_per_sec, None);
    }
}
