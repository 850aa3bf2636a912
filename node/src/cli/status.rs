//! `shen status`: read a running node's `/status` and print it as a table (or the JSON itself with `--json`).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use shen_api::{LogDoc, StatusDoc};
use shen_client::ShenClient;

use super::admin_address;
use crate::daemon::DEFAULT_ADMIN;

/// `shen status` flags.
#[derive(Args, Debug, Clone)]
pub struct StatusArgs {
    /// The node's admin address (HOST:PORT, as given to `shen run --admin`).
    #[arg(long, env = "SHEN_ADMIN", default_value = DEFAULT_ADMIN, value_name = "HOST:PORT")]
    pub admin: String,
    /// Find the admin address in a node's data directory (its node.json)
    /// instead.
    #[arg(long, value_name = "DIR")]
    pub data_dir: Option<PathBuf>,
    /// Print the raw JSON document.
    #[arg(long)]
    pub json: bool,
}

/// A PeerId shortened for tables.
pub fn short(id: &str) -> String {
    if id.chars().count() > 16 {
        let chars: Vec<char> = id.chars().collect();
        let head: String = chars[..8].iter().collect();
        let tail: String = chars[chars.len() - 6..].iter().collect();
        format!("{head}…{tail}")
    } else {
        id.to_string()
    }
}

/// A serde enum's word (`ok`, `alive`...).
fn word<T: serde::Serialize>(v: &T) -> String {
    serde_json::to_value(v)
        .ok()
        .and_then(|v| v.as_str().map(String::from))
        .unwrap_or_else(|| "?".into())
}

/// Render a `/status` document as a table.
pub fn render(v: &StatusDoc) -> String {
    let mut out = String::new();
    let opt = |x: &Option<String>| x.clone().unwrap_or_else(|| "?".into());
    out.push_str(&format!(
        "node {}  health {}  live members {}  connected peers {}  uptime {:.0}s{}\n",
        v.peer_id,
        v.health.as_ref().map(word).unwrap_or_else(|| "?".into()),
        v.live_members.unwrap_or(0),
        v.net.connected.len(),
        v.net.uptime_s,
        if v.net.private {
            "  (private cluster)"
        } else {
            ""
        }
    ));
    for r in &v.health_reasons {
        out.push_str(&format!("  health: {r}\n"));
    }
    out.push_str(&format!(
        "view {}  incarnation {}  rings {}\n",
        opt(&v.view_hash),
        v.incarnation.unwrap_or(0),
        v.rings.join(",")
    ));
    for a in &v.net.listen_addrs {
        out.push_str(&format!("listen {a}\n"));
    }
    if !v.net.reachability.is_empty() {
        out.push_str(&format!("reachability {}", v.net.reachability));
        if !v.net.relays.is_empty() {
            out.push_str(&format!("  relays {}", v.net.relays.join(",")));
        }
        out.push('\n');
    }
    for a in &v.net.external_addrs {
        out.push_str(&format!("external {a}\n"));
    }
    if !v.net.peers.is_empty() {
        out.push_str(&format!("\n{:<54} {}\n", "PEER", "CONNECTION"));
        for p in &v.net.peers {
            out.push_str(&format!("{:<54} {}\n", p.peer_id, p.kind));
        }
    }
    out.push('\n');
    // Ownership as the log places replicas when this node hosts the log
    // (a node outside the log's member set owns nothing of it, whatever
    // the Sundial view's Ankh ring says); else the Ankh share.
    let by_log = v.log.formed && !v.log.shares.is_empty();
    out.push_str(&format!(
        "{:<20} {:<8} {:>5} {:>6} {:>10}\n",
        "MEMBER",
        "STATUS",
        "INC",
        "PHI",
        if by_log { "OWNS(LOG)" } else { "OWNS(ANKH)" }
    ));
    for m in v.members() {
        let phi = m
            .phi
            .map(|p| format!("{p:.2}"))
            .unwrap_or_else(|| "-".into());
        let owns = if by_log {
            v.log
                .shares
                .iter()
                .find(|x| x.id == m.id)
                .map(|x| format!("{:.1}%", x.share * 100.0))
                .unwrap_or_else(|| "0.0%".into())
        } else {
            m.ownership
                .map(|p| format!("{:.1}%", p * 100.0))
                .unwrap_or_else(|| "-".into())
        };
        let label = if m.is_self {
            format!("{} *", short(&m.id))
        } else {
            short(&m.id)
        };
        out.push_str(&format!(
            "{:<20} {:<8} {:>5} {:>6} {:>10}\n",
            label,
            word(&m.status),
            m.incarnation,
            phi,
            owns
        ));
    }
    out.push_str("(* = this node; PHI = failure suspicion of the members it monitors)\n");
    render_log(&v.log, &mut out);
    out
}

/// The log section: formation, then one line per chain.
fn render_log(log: &LogDoc, out: &mut String) {
    out.push('\n');
    if !log.formed {
        match log.expect {
            Some(n) => out.push_str(&format!(
                "log: not formed yet (waiting for exactly {n} live nodes)\n"
            )),
            None => out.push_str("log: none (start the cluster with --bootstrap-expect N)\n"),
        }
        return;
    }
    let disk = match &log.fsync {
        Some(p) => format!(", write-ahead log (fsync {p})"),
        None => ", in memory".to_string(),
    };
    let note = if log.storage_failed == Some(true) {
        "  (STORAGE FAILED: this node stopped; restart it once the disk is fixed)"
    } else if log.recovered == Some(false) {
        "  (recovering after restart)"
    } else if log.restored == Some(true) {
        "  (rebuilt from its write-ahead log)"
    } else {
        ""
    };
    out.push_str(&format!(
        "log: {} partitions, rf {}, {} members, table {}{}{}\n",
        log.partitions.unwrap_or(0),
        log.rf.unwrap_or(0),
        log.members.len(),
        log.table_ballot.as_deref().unwrap_or("?"),
        disk,
        note
    ));
    if log.member == Some(false) {
        out.push_str(if log.members.is_empty() {
            "this node is not a member: looking for a log to join\n"
        } else {
            "this node is not a member of the log (it forwards requests; it joins when added)\n"
        });
    }
    out.push_str(&super::member::render(log));
    out.push_str(&format!(
        "{:>4} {:>8} {:<20} {:<20} {:<20} {:>9} {:>9} {:>9} {:>10}\n",
        "PART", "EPOCH", "HEAD", "MIDDLE", "TAIL", "COMMITTED", "LOW", "HIGH", "DISK"
    ));
    for c in &log.chains {
        let ms: Vec<String> = c.members.iter().map(|m| short(m)).collect();
        let (head, middle, tail) = match ms.len() {
            0 => ("-".to_string(), "-".to_string(), "-".to_string()),
            1 => (ms[0].clone(), "-".to_string(), ms[0].clone()),
            2 => (ms[0].clone(), "-".to_string(), ms[1].clone()),
            n => (ms[0].clone(), ms[1..n - 1].join(","), ms[n - 1].clone()),
        };
        let tail = if c.learners.is_empty() {
            tail
        } else {
            format!("{tail} +{}L", c.learners.len())
        };
        let committed = if c.here {
            c.committed.to_string()
        } else {
            "-".to_string()
        };
        let (low, high) = if c.here {
            (c.low_watermark.to_string(), c.high_watermark.to_string())
        } else {
            ("-".to_string(), "-".to_string())
        };
        let disk = c.disk_bytes.map_or("-".to_string(), |b| b.to_string());
        out.push_str(&format!(
            "{:>4} {:>8} {:<20} {:<20} {:<20} {:>9} {:>9} {:>9} {:>10}\n",
            c.partition, c.epoch, head, middle, tail, committed, low, high, disk
        ));
    }
    out.push_str("(EPOCH = generation.sequence of the Cartouche fencing number that set the chain; +nL = replacements still catching up; COMMITTED = known here, '-' if not a member; LOW/HIGH = this node's low and high watermarks, below LOW retention deleted the records; DISK = bytes of the partition's files here)\n");
}

/// Run `shen status`.
pub fn run(args: StatusArgs) -> ExitCode {
    let admin = match admin_address(&args.admin, args.data_dir.as_deref()) {
        Ok(a) => a,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::from(2);
        }
    };
    let doc = match ShenClient::new(admin)
        .with_timeout(Duration::from_secs(5))
        .status()
    {
        Ok(d) => d,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let text = if args.json {
        serde_json::to_string_pretty(&doc).unwrap_or_default() + "\n"
    } else {
        render(&doc)
    };
    super::write_stdout(&text)
}
