//! Helpers for the multi-process cluster tests: find the `shen` binary,
//! start `shen run` processes (killed on drop), bounded waits.

#![warn(missing_docs)]

pub mod load;

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

/// The `shen` binary of this workspace (built with `cargo build -p
/// shen-node --bin shen` if the test run did not build it already).
pub fn shen_bin() -> PathBuf {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    BIN.get_or_init(|| {
        let exe = std::env::current_exe().expect("test executable path");
        // target/<profile>/deps/<test> -> target/<profile>/shen
        let profile_dir = exe
            .parent()
            .and_then(|d| d.parent())
            .expect("target/<profile> directory")
            .to_path_buf();
        let bin = profile_dir.join("shen");
        if !bin.exists() {
            let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
            let st = Command::new(cargo)
                .args(["build", "-p", "shen-node", "--bin", "shen"])
                .status()
                .expect("run cargo build");
            assert!(st.success(), "cargo build -p shen-node --bin shen failed");
        }
        assert!(bin.exists(), "no shen binary at {}", bin.display());
        bin
    })
    .clone()
}

/// `shen run` on loopback only: any free ports, no mDNS.
pub const LOOPBACK_ARGS: &[&str] = &[
    "--listen",
    "/ip4/127.0.0.1/tcp/0",
    "--admin",
    "127.0.0.1:0",
    "--no-mdns",
];

/// A scratch directory for a test's data directories and logs, removed
/// when dropped unless `SHEN_KEEP_TEST_DIRS` is set (then its path is
/// printed, to read the nodes' logs after a failure).
pub fn scratch_dir() -> tempfile::TempDir {
    let mut dir = tempfile::tempdir().expect("create a scratch directory");
    if std::env::var_os("SHEN_KEEP_TEST_DIRS").is_some() {
        dir.disable_cleanup(true);
        eprintln!("keeping {}", dir.path().display());
    }
    dir
}

/// Poll `f` every 100 ms until it returns `Some`, or panic with `what`
/// after `timeout`.
pub fn wait_for<T>(what: &str, timeout: Duration, mut f: impl FnMut() -> Option<T>) -> T {
    let until = Instant::now() + timeout;
    loop {
        if let Some(v) = f() {
            return v;
        }
        assert!(
            Instant::now() < until,
            "timed out after {timeout:?} waiting for {what}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A `shen run` process; SIGKILLed on drop if still running.
pub struct NodeProc {
    /// The process.
    pub child: Child,
    /// Its data directory.
    pub dir: PathBuf,
}

impl NodeProc {
    /// Start `prefix... shen run --data-dir dir args...` with stderr in
    /// `dir/node.log` (RUST_LOG=info unless set).
    pub fn start(prefix: &[&str], dir: &Path, args: &[&str]) -> NodeProc {
        NodeProc::start_logged(prefix, dir, &dir.join("node.log"), args)
    }

    /// [`NodeProc::start`] with stderr appended to `log` instead (for a
    /// data directory that may fill up).
    pub fn start_logged(prefix: &[&str], dir: &Path, log: &Path, args: &[&str]) -> NodeProc {
        std::fs::create_dir_all(dir).expect("create data dir");
        let _ = std::fs::remove_file(dir.join("node.json"));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(log)
            .expect("open the node's log file");
        let bin = shen_bin();
        let mut cmd = match prefix.split_first() {
            Some((p, rest)) => {
                let mut c = Command::new(p);
                c.args(rest).arg(&bin);
                c
            }
            None => Command::new(&bin),
        };
        cmd.arg("run")
            .arg("--data-dir")
            .arg(dir)
            .args(args)
            .env(
                "RUST_LOG",
                std::env::var("RUST_LOG").unwrap_or_else(|_| "info".into()),
            )
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        let child = cmd.spawn().expect("spawn shen run");
        NodeProc {
            child,
            dir: dir.to_path_buf(),
        }
    }

    /// The node's `node.json` once it is written (PeerId, listen
    /// addresses, admin address).
    pub fn info(&self, timeout: Duration) -> shen_api::NodeInfo {
        wait_for("node.json", timeout, || {
            shen_client::node_info(&self.dir)
                .ok()
                .filter(|i| !i.listen_addrs.is_empty())
        })
    }

    /// The node's log so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.join("node.log")).unwrap_or_default()
    }

    /// SIGTERM, then wait up to `timeout` for the exit; returns the exit code
    /// (`None` if it had to be killed).
    pub fn terminate(&mut self, timeout: Duration) -> Option<i32> {
        let _ = Command::new("kill")
            .arg("-TERM")
            .arg(self.child.id().to_string())
            .status();
        let until = Instant::now() + timeout;
        loop {
            if let Ok(Some(st)) = self.child.try_wait() {
                return st.code();
            }
            if Instant::now() > until {
                let _ = self.child.kill();
                let _ = self.child.wait();
                return None;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Drop for NodeProc {
    fn drop(&mut self) {
        if let Ok(None) = self.child.try_wait() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

/// A node's `/status` JSON through its admin address.
pub fn status(admin: &str) -> Option<serde_json::Value> {
    let body = http_get(admin, "/status", Duration::from_secs(2)).ok()?;
    serde_json::from_str(&body).ok()
}

/// Every chain full (`rf` members, no learners) in a `/status` document.
pub fn chains_settled(v: &serde_json::Value) -> bool {
    let rf = v["log"]["rf"].as_u64().unwrap_or(3) as usize;
    v["log"]["chains"].as_array().is_some_and(|cs| {
        cs.iter().all(|c| {
            c["members"].as_array().map_or(0, Vec::len) == rf
                && c["learners"].as_array().is_some_and(Vec::is_empty)
        })
    })
}

/// Chains in a `/status` document that list `who` as member or learner.
pub fn chains_with(v: &serde_json::Value, who: &str) -> usize {
    v["log"]["chains"].as_array().map_or(0, |cs| {
        cs.iter()
            .filter(|c| {
                let has = |k: &str| {
                    c[k].as_array()
                        .is_some_and(|a| a.iter().any(|m| m.as_str() == Some(who)))
                };
                has("members") || has("learners")
            })
            .count()
    })
}

/// `live_members` of a status document.
pub fn live(v: &serde_json::Value) -> u64 {
    v.get("live_members").and_then(|x| x.as_u64()).unwrap_or(0)
}

/// The value of a Prometheus counter line `name value` in `/metrics`.
pub fn metric(admin: &str, name: &str) -> Option<u64> {
    let body = http_get(admin, "/metrics", Duration::from_secs(2)).ok()?;
    body.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
}

/// GET `path` from `admin` through `shen-client`'s pool: the body of a 200.
pub fn http_get(admin: &str, path: &str, timeout: Duration) -> Result<String, String> {
    shen_client::Http::new(admin, timeout)
        .get_text(path)
        .map_err(|e| format!("{admin}{path}: {e}"))
}

/// One request (an `application/octet-stream` body for POST): the status
/// code, a status line and the body, whatever the code.
pub fn http_request(
    admin: &str,
    method: &str,
    path: &str,
    body: &[u8],
    timeout: Duration,
) -> Result<(u16, String, String), String> {
    let a = shen_client::Http::new(admin, timeout)
        .request(method, path, "application/octet-stream", body)
        .map_err(|e| e.to_string())?;
    Ok((a.status, format!("HTTP/1.1 {}", a.status), a.text()))
}
