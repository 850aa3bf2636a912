//! `shen status`: read a running node's `/status` and print it as a table
//! (or the JSON itself with `--json`).

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream, ToSocketAddrs};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

use clap::Args;
use serde_json::Value;

use crate::run_cmd::{NodeInfo, DEFAULT_ADMIN, NODE_INFO_FILE};

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

/// GET `path` from `addr` (HTTP/1.1, `Connection: close`); the body of a 200.
pub fn http_get(addr: &str, path: &str, timeout: Duration) -> Result<String, String> {
    let (code, status, body) = http_request(addr, "GET", path, &[], timeout)?;
    if code != 200 {
        return Err(format!("{addr}{path}: {status}"));
    }
    Ok(body)
}

/// Send one HTTP/1.1 request (`Connection: close`); returns the status
/// code, the status line and the body, whatever the code.
pub fn http_request(
    addr: &str,
    method: &str,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<(u16, String, String), String> {
    http_request_typed(
        addr,
        method,
        path,
        "application/octet-stream",
        body,
        timeout,
    )
}

/// [`http_request`] with the body's content type.
pub fn http_request_typed(
    addr: &str,
    method: &str,
    path: &str,
    content_type: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<(u16, String, String), String> {
    let sa: SocketAddr = addr
        .to_socket_addrs()
        .map_err(|e| format!("invalid admin address '{addr}': {e}"))?
        .next()
        .ok_or_else(|| format!("invalid admin address '{addr}'"))?;
    let mut s = TcpStream::connect_timeout(&sa, timeout)
        .map_err(|e| format!("cannot reach a node at {addr}: {e} (is `shen run` running?)"))?;
    let _ = s.set_read_timeout(Some(timeout));
    let _ = s.set_write_timeout(Some(timeout));
    write!(
        s,
        "{method} {path} HTTP/1.1\r\nHost: {addr}\r\nContent-Type: {content_type}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    )
    .and_then(|_| s.write_all(body))
    .map_err(|e| format!("{addr}: {e}"))?;
    let mut buf = Vec::new();
    s.read_to_end(&mut buf)
        .map_err(|e| format!("{addr}: {e}"))?;
    let text = String::from_utf8_lossy(&buf);
    let (head, body) = text
        .split_once("\r\n\r\n")
        .ok_or_else(|| format!("{addr}: not an HTTP answer"))?;
    let status = head.lines().next().unwrap_or("").to_string();
    let code = status
        .split_whitespace()
        .nth(1)
        .and_then(|c| c.parse().ok())
        .ok_or_else(|| format!("{addr}: not an HTTP answer"))?;
    Ok((code, status, body.to_string()))
}

/// The admin address written in `dir/node.json`.
pub fn admin_from_data_dir(dir: &std::path::Path) -> Result<NodeInfo, String> {
    let p = dir.join(NODE_INFO_FILE);
    let text = std::fs::read_to_string(&p)
        .map_err(|e| format!("cannot read {}: {e} (has the node started?)", p.display()))?;
    serde_json::from_str(&text).map_err(|e| format!("{}: {e}", p.display()))
}

fn short(id: &str) -> String {
    if id.len() > 16 {
        format!("{}…{}", &id[..8], &id[id.len() - 6..])
    } else {
        id.to_string()
    }
}

/// Render a `/status` document as a table.
pub fn render(v: &Value) -> String {
    let mut out = String::new();
    let s = |k: &str| v.get(k).and_then(|x| x.as_str()).unwrap_or("?").to_string();
    let n = |k: &str| v.get(k).and_then(|x| x.as_u64()).unwrap_or(0);
    let net = v.get("net");
    let uptime = net
        .and_then(|n| n.get("uptime_s"))
        .and_then(|x| x.as_f64())
        .unwrap_or(0.0);
    let connected = net
        .and_then(|n| n.get("connected"))
        .and_then(|x| x.as_array())
        .map(|a| a.len())
        .unwrap_or(0);
    let private = net
        .and_then(|n| n.get("private"))
        .and_then(|x| x.as_bool())
        .unwrap_or(false);
    out.push_str(&format!(
        "node {}  health {}  live members {}  connected peers {}  uptime {:.0}s{}\n",
        s("peer_id"),
        s("health"),
        n("live_members"),
        connected,
        uptime,
        if private { "  (private cluster)" } else { "" }
    ));
    out.push_str(&format!(
        "view {}  incarnation {}  rings {}\n",
        s("view_hash"),
        n("incarnation"),
        v.get("rings")
            .and_then(|r| r.as_array())
            .map(|a| a
                .iter()
                .filter_map(|x| x.as_str())
                .collect::<Vec<_>>()
                .join(","))
            .unwrap_or_default()
    ));
    if let Some(addrs) = net
        .and_then(|n| n.get("listen_addrs"))
        .and_then(|x| x.as_array())
    {
        for a in addrs.iter().filter_map(|a| a.as_str()) {
            out.push_str(&format!("listen {a}\n"));
        }
    }
    out.push('\n');
    out.push_str(&format!(
        "{:<20} {:<8} {:>5} {:>6} {:>10}\n",
        "MEMBER", "STATUS", "INC", "PHI", "OWNS(ANKH)"
    ));
    for m in v
        .get("members")
        .and_then(|m| m.as_array())
        .cloned()
        .unwrap_or_default()
    {
        let id = m.get("id").and_then(|x| x.as_str()).unwrap_or("?");
        let me = m.get("self").and_then(|x| x.as_bool()).unwrap_or(false);
        let phi = m
            .get("phi")
            .and_then(|x| x.as_f64())
            .map(|p| format!("{p:.2}"))
            .unwrap_or_else(|| "-".into());
        let owns = m
            .get("ownership")
            .and_then(|x| x.as_f64())
            .map(|p| format!("{:.1}%", p * 100.0))
            .unwrap_or_else(|| "-".into());
        let label = if me {
            format!("{} *", short(id))
        } else {
            short(id)
        };
        out.push_str(&format!(
            "{:<20} {:<8} {:>5} {:>6} {:>10}\n",
            label,
            m.get("status").and_then(|x| x.as_str()).unwrap_or("?"),
            m.get("incarnation").and_then(|x| x.as_u64()).unwrap_or(0),
            phi,
            owns
        ));
    }
    out.push_str("(* = this node; PHI = failure suspicion of the members it monitors)\n");
    render_log(v, &mut out);
    out
}

/// The log section: formation, then one line per chain.
fn render_log(v: &Value, out: &mut String) {
    let Some(log) = v.get("log") else {
        return;
    };
    out.push('\n');
    if log.get("formed").and_then(|x| x.as_bool()) != Some(true) {
        match log.get("expect").and_then(|x| x.as_u64()) {
            Some(n) => out.push_str(&format!(
                "log: not formed yet (waiting for exactly {n} live nodes)\n"
            )),
            None => out.push_str("log: none (start the cluster with --bootstrap-expect N)\n"),
        }
        return;
    }
    let members = log
        .get("members")
        .and_then(|m| m.as_array())
        .map(|a| a.len())
        .unwrap_or(0);
    let disk = match log.get("fsync").and_then(|x| x.as_str()) {
        Some(p) => format!(", write-ahead log (fsync {p})"),
        None => ", in memory".to_string(),
    };
    let note = if log.get("storage_failed").and_then(|x| x.as_bool()) == Some(true) {
        "  (STORAGE FAILED: this node stopped; restart it once the disk is fixed)"
    } else if log.get("recovered").and_then(|x| x.as_bool()) == Some(false) {
        "  (recovering after restart)"
    } else if log.get("restored").and_then(|x| x.as_bool()) == Some(true) {
        "  (rebuilt from its write-ahead log)"
    } else {
        ""
    };
    out.push_str(&format!(
        "log: {} partitions, rf {}, {} members, table {}{}{}\n",
        log.get("partitions").and_then(|x| x.as_u64()).unwrap_or(0),
        log.get("rf").and_then(|x| x.as_u64()).unwrap_or(0),
        members,
        log.get("table_ballot")
            .and_then(|x| x.as_str())
            .unwrap_or("?"),
        disk,
        note
    ));
    out.push_str(&format!(
        "{:>4} {:>8} {:<20} {:<20} {:<20} {:>9}\n",
        "PART", "EPOCH", "HEAD", "MIDDLE", "TAIL", "COMMITTED"
    ));
    for c in log
        .get("chains")
        .and_then(|c| c.as_array())
        .cloned()
        .unwrap_or_default()
    {
        let ms: Vec<String> = c
            .get("members")
            .and_then(|m| m.as_array())
            .map(|a| a.iter().filter_map(|x| x.as_str()).map(short).collect())
            .unwrap_or_default();
        let (head, middle, tail) = match ms.len() {
            0 => ("-".to_string(), "-".to_string(), "-".to_string()),
            1 => (ms[0].clone(), "-".to_string(), ms[0].clone()),
            2 => (ms[0].clone(), "-".to_string(), ms[1].clone()),
            n => (ms[0].clone(), ms[1..n - 1].join(","), ms[n - 1].clone()),
        };
        let learning = c
            .get("learners")
            .and_then(|m| m.as_array())
            .map(|a| a.len())
            .unwrap_or(0);
        let tail = if learning > 0 {
            format!("{tail} +{learning}L")
        } else {
            tail
        };
        let here = c.get("here").and_then(|x| x.as_bool()) == Some(true);
        let committed = if here {
            c.get("committed")
                .and_then(|x| x.as_u64())
                .map(|x| x.to_string())
                .unwrap_or_default()
        } else {
            "-".to_string()
        };
        out.push_str(&format!(
            "{:>4} {:>8} {:<20} {:<20} {:<20} {:>9}\n",
            c.get("partition").and_then(|x| x.as_u64()).unwrap_or(0),
            c.get("epoch").and_then(|x| x.as_str()).unwrap_or("?"),
            head,
            middle,
            tail,
            committed
        ));
    }
    out.push_str("(EPOCH = generation.sequence of the Cartouche fencing number that set the chain; +nL = replacements still catching up; COMMITTED = known here, '-' if not a member)\n");
}

/// Run `shen status`.
pub fn run(args: StatusArgs) -> ExitCode {
    let admin = match &args.data_dir {
        Some(d) => match admin_from_data_dir(d) {
            Ok(info) => info.admin,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::from(2);
            }
        },
        None => args.admin.clone(),
    };
    let body = match http_get(&admin, "/status", Duration::from_secs(5)) {
        Ok(b) => b,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let v: Value = match serde_json::from_str(&body) {
        Ok(v) => v,
        Err(e) => {
            eprintln!("error: {admin}/status is not JSON: {e}");
            return ExitCode::FAILURE;
        }
    };
    let text = if args.json {
        serde_json::to_string_pretty(&v).unwrap_or_default() + "\n"
    } else {
        render(&v)
    };
    print!("{text}");
    ExitCode::SUCCESS
}
