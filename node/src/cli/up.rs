//! `shen up --nodes N`: a local cluster of N `shen run` processes on
//! loopback, each with its own temporary data directory, started with
//! `--bootstrap-expect N`. Waits until every node's Sundial view holds N live
//! members and the replicated log has formed on every node, prints where to
//! look (`/status`, `/events`, the live view `shen viz --live`) and how to
//! append and read, runs until Ctrl-C (or SIGTERM), then
//! stops every node gracefully and cleans up.
//!
//! mDNS does not announce on the loopback interface (and is turned off here
//! so nothing is multicast on the machine's real interfaces), so node 0's
//! address is given to the others with `--peer`; from there identify, Kademlia and
//! Sundial gossip spread the rest (no node is told about more than one).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use clap::Args;

use shen_api::NodeInfo;
use shen_client::{node_info, Http, ShenClient};

/// `shen up` flags.
#[derive(Args, Debug, Clone)]
pub struct UpArgs {
    /// Number of node processes (1..=64).
    #[arg(long, default_value_t = 3, allow_hyphen_values = true)]
    pub nodes: u32,
    /// Where to put the nodes' data directories (kept afterwards). Default:
    /// a temporary directory, removed on exit.
    #[arg(long, value_name = "DIR")]
    pub dir: Option<PathBuf>,
    /// Give up if the views have not converged after this many seconds.
    #[arg(long, default_value_t = 60, allow_hyphen_values = true)]
    pub timeout_s: u64,
    /// Stop the cluster as soon as it has converged (for scripts and tests).
    #[arg(long)]
    pub exit_when_ready: bool,
    /// Also serve the browser simulator's live view of this cluster
    /// (`shen viz --live`) on 127.0.0.1:PORT (0 picks a free port; the URL
    /// is printed). Needs the page built (scripts/build-viz.sh).
    #[arg(long, value_name = "PORT")]
    pub viz: Option<u16>,
}

struct Proc {
    child: Child,
    dir: PathBuf,
}

/// Running node processes; stopped (SIGTERM, then SIGKILL after 5 s) on
/// drop, and their root directory removed if it was temporary.
pub(crate) struct Cluster {
    procs: Vec<Proc>,
    root: PathBuf,
    remove_root: bool,
    /// More `shen run` flags for every node (a bench's settings).
    node_args: Vec<String>,
}

/// Start a local cluster of `nodes` processes of `exe` under `root` (removed
/// on drop if `remove_root`) and wait until it has converged and formed the
/// log; returns the cluster and each node's info.
pub(crate) fn start_cluster(
    exe: &Path,
    nodes: u32,
    root: &Path,
    remove_root: bool,
    timeout_s: u64,
    node_args: &[String],
) -> Result<(Cluster, Vec<NodeInfo>), String> {
    std::fs::create_dir_all(root).map_err(|e| format!("{}: {e}", root.display()))?;
    let mut cluster = Cluster {
        procs: Vec::new(),
        root: root.to_path_buf(),
        remove_root,
        node_args: node_args.to_vec(),
    };
    let args = UpArgs {
        nodes,
        dir: Some(root.to_path_buf()),
        timeout_s,
        exit_when_ready: true,
        viz: None,
    };
    let stop = AtomicBool::new(false);
    let infos = start(&args, exe, root, &mut cluster, &stop)?;
    Ok((cluster, infos))
}

impl Cluster {
    /// Each node's process id, in node order.
    pub(crate) fn pids(&self) -> Vec<u32> {
        self.procs.iter().map(|p| p.child.id()).collect()
    }

    /// Each node's data directory, in node order.
    pub(crate) fn dirs(&self) -> Vec<PathBuf> {
        self.procs.iter().map(|p| p.dir.clone()).collect()
    }

    /// `kill -9` node `i` (its data directory stays).
    pub(crate) fn kill(&mut self, i: usize) -> Result<(), String> {
        let p = self
            .procs
            .get_mut(i)
            .ok_or_else(|| format!("no node {i}"))?;
        let _ = p.child.kill();
        let _ = p.child.wait();
        let _ = std::fs::remove_file(p.dir.join(shen_api::NODE_INFO_FILE));
        Ok(())
    }

    /// Start node `i` (stopped) again on its data directory with `--peer
    /// seed`. Returns when it was started, and its info once its admin API
    /// answers.
    pub(crate) fn restart(
        &mut self,
        i: usize,
        exe: &Path,
        seed: &str,
        timeout: Duration,
    ) -> Result<(Instant, NodeInfo), String> {
        let expect = self.procs.len() as u32;
        let p = self
            .procs
            .get_mut(i)
            .ok_or_else(|| format!("no node {i}"))?;
        let started = Instant::now();
        p.child = spawn_node(exe, &p.dir, Some(seed), Some(expect), &self.node_args)?;
        let info = wait_info(&p.dir, started + timeout, &AtomicBool::new(false))?;
        Ok((started, info))
    }

    /// Start one more node, in a new data directory under the cluster's
    /// root, with no `--bootstrap-expect`: it joins the running log (on
    /// its own). Returns when it was started and its info.
    pub(crate) fn add(
        &mut self,
        exe: &Path,
        seed: &str,
        timeout: Duration,
    ) -> Result<(Instant, NodeInfo), String> {
        let dir = self.root.join(format!("node-{}", self.procs.len()));
        let started = Instant::now();
        let child = spawn_node(exe, &dir, Some(seed), None, &self.node_args)?;
        self.procs.push(Proc {
            child,
            dir: dir.clone(),
        });
        let info = wait_info(&dir, started + timeout, &AtomicBool::new(false))?;
        Ok((started, info))
    }

    /// `kill -9` node `i`, then start it again on its data directory with
    /// `--peer seed` (see [`Cluster::restart`]).
    pub(crate) fn kill_and_restart(
        &mut self,
        i: usize,
        exe: &Path,
        seed: &str,
        timeout: Duration,
    ) -> Result<(Instant, NodeInfo), String> {
        self.kill(i)?;
        self.restart(i, exe, seed, timeout)
    }

    fn stop(&mut self) {
        for p in &self.procs {
            let _ = Command::new("kill")
                .arg("-TERM")
                .arg(p.child.id().to_string())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .status();
        }
        let deadline = Instant::now() + Duration::from_secs(5);
        for p in &mut self.procs {
            loop {
                match p.child.try_wait() {
                    Ok(Some(_)) => break,
                    Ok(None) if Instant::now() < deadline => {
                        std::thread::sleep(Duration::from_millis(50))
                    }
                    _ => {
                        let _ = p.child.kill();
                        let _ = p.child.wait();
                        break;
                    }
                }
            }
        }
        self.procs.clear();
        if self.remove_root {
            let _ = std::fs::remove_dir_all(&self.root);
        }
    }
}

impl Drop for Cluster {
    fn drop(&mut self) {
        self.stop();
    }
}

/// Start `exe run` on `dir` (loopback, no mDNS); `expect`: the
/// `--bootstrap-expect` (none: the node joins a running log); `extra`:
/// more flags.
fn spawn_node(
    exe: &Path,
    dir: &Path,
    peer: Option<&str>,
    expect: Option<u32>,
    extra: &[String],
) -> Result<Child, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let log = std::fs::OpenOptions::new()
        .create(true)
        .append(true)
        .open(dir.join("node.log"))
        .map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut cmd = Command::new(exe);
    cmd.arg("run")
        .arg("--data-dir")
        .arg(dir)
        // mDNS cannot announce on loopback; keep it off so nothing is
        // multicast on the machine's real interfaces.
        .args([
            "--listen",
            "/ip4/127.0.0.1/tcp/0",
            "--admin",
            "127.0.0.1:0",
            "--no-mdns",
        ])
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(log);
    if let Some(n) = expect {
        cmd.args(["--bootstrap-expect", &n.to_string()]);
    }
    if let Some(p) = peer {
        cmd.args(["--peer", p]);
    }
    cmd.args(extra);
    cmd.spawn()
        .map_err(|e| format!("cannot start {}: {e}", exe.display()))
}

fn wait_info(dir: &Path, until: Instant, stop: &AtomicBool) -> Result<NodeInfo, String> {
    loop {
        if let Ok(info) = node_info(dir) {
            let http = Http::new(info.admin.clone(), Duration::from_secs(1));
            // `/status` too: a node built before `/healthz` existed (an
            // older build under `shen bench --node-bin`).
            if !info.listen_addrs.is_empty()
                && (http.get_text(shen_api::routes::HEALTHZ).is_ok()
                    || http.get_text(shen_api::routes::STATUS).is_ok())
            {
                return Ok(info);
            }
        }
        if Instant::now() > until || stop.load(Ordering::SeqCst) {
            return Err(format!(
                "node in {} did not start (see its node.log)",
                dir.display()
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A node's live member count and whether its log has formed.
fn live_members(admin: &str) -> Option<(u64, bool)> {
    let doc = ShenClient::new(admin)
        .with_timeout(Duration::from_secs(2))
        .status()
        .ok()?;
    Some((doc.live_members? as u64, doc.log.formed))
}

fn install_signal_flag() -> Arc<AtomicBool> {
    let flag = Arc::new(AtomicBool::new(false));
    let f = flag.clone();
    std::thread::spawn(move || {
        let Ok(rt) = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
        else {
            return;
        };
        rt.block_on(async move {
            use tokio::signal::unix::{signal, SignalKind};
            let (Ok(mut term), Ok(mut int)) = (
                signal(SignalKind::terminate()),
                signal(SignalKind::interrupt()),
            ) else {
                return;
            };
            tokio::select! {
                _ = term.recv() => {}
                _ = int.recv() => {}
            }
            f.store(true, Ordering::SeqCst);
        });
    });
    flag
}

/// Run `shen up`.
pub fn run(args: UpArgs) -> ExitCode {
    if args.nodes == 0 || args.nodes > 64 {
        eprintln!("error: --nodes must be between 1 and 64");
        return ExitCode::from(2);
    }
    if args.timeout_s == 0 {
        eprintln!("error: --timeout-s must be at least 1");
        return ExitCode::from(2);
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot find the shen binary: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Without --dir: a fresh directory, removed by the cluster's drop.
    let (root, remove_root) = match &args.dir {
        Some(d) => (d.clone(), false),
        None => match tempfile::Builder::new().prefix("shen-up-").tempdir() {
            Ok(d) => (d.keep(), true),
            Err(e) => {
                eprintln!("error: temporary directory: {e}");
                return ExitCode::from(2);
            }
        },
    };
    if let Err(e) = std::fs::create_dir_all(&root) {
        eprintln!("error: {}: {e}", root.display());
        return ExitCode::from(2);
    }
    let stop = install_signal_flag();
    let mut cluster = Cluster {
        procs: Vec::new(),
        root: root.clone(),
        remove_root,
        node_args: Vec::new(),
    };
    match start(&args, &exe, &root, &mut cluster, &stop) {
        Ok(infos) => {
            println!(
                "shen up: {} nodes converged (every view has {} live members) and the log formed",
                args.nodes, args.nodes
            );
            println!();
            for (i, info) in infos.iter().enumerate() {
                println!(
                    "node {i}  {}  http://{}/status  logs {}",
                    info.peer_id,
                    info.admin,
                    root.join(format!("node-{i}")).join("node.log").display()
                );
            }
            if let Some(first) = infos.first() {
                println!();
                println!(
                    "  shen status --admin {}        # a readable table",
                    first.admin
                );
                println!(
                    "  curl -N http://{}/events      # live ring events",
                    first.admin
                );
                println!("  curl http://{}/metrics        # Prometheus", first.admin);
                println!(
                    "  shen append --admin {} greeting hello     # append a record",
                    first.admin
                );
                if let Some(last) = infos.last() {
                    println!(
                        "  shen read --admin {} --key greeting       # read it from another node",
                        last.admin
                    );
                }
                println!(
                    "  shen tail --admin {} --key greeting       # follow the partition",
                    first.admin
                );
                println!(
                    "  shen txn --admin {} alice -10 bob +10     # append atomically (all or none)",
                    first.admin
                );
                println!(
                    "  shen viz --live {}               # the live view of this cluster in the browser",
                    first.admin
                );
            }
            if let (Some(port), Some(first)) = (args.viz, infos.first()) {
                if let Err(why) = super::viz::Source::Embedded.check() {
                    println!();
                    println!("live view: {why}; then `shen viz --live {}`", first.admin);
                } else {
                    println!();
                    match Command::new(&exe)
                        .args(["viz", "--live", &first.admin, "--port", &port.to_string()])
                        .stdin(Stdio::null())
                        .spawn()
                    {
                        Ok(child) => cluster.procs.push(Proc {
                            child,
                            dir: root.clone(),
                        }),
                        Err(e) => eprintln!("live view: cannot start `shen viz`: {e}"),
                    }
                }
            }
            if !args.exit_when_ready {
                println!();
                println!("running; press Ctrl-C to stop the cluster");
                while !stop.load(Ordering::SeqCst) {
                    std::thread::sleep(Duration::from_millis(100));
                    for (i, p) in cluster.procs.iter_mut().enumerate() {
                        if let Ok(Some(st)) = p.child.try_wait() {
                            eprintln!(
                                "node {i} exited ({st}); see {}",
                                p.dir.join("node.log").display()
                            );
                        }
                    }
                    cluster
                        .procs
                        .retain_mut(|p| !matches!(p.child.try_wait(), Ok(Some(_))));
                }
            }
            println!("stopping {} processes...", cluster.procs.len());
            cluster.stop();
            println!("stopped");
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            cluster.stop();
            ExitCode::FAILURE
        }
    }
}

fn start(
    args: &UpArgs,
    exe: &Path,
    root: &Path,
    cluster: &mut Cluster,
    stop: &AtomicBool,
) -> Result<Vec<NodeInfo>, String> {
    let until = Instant::now() + Duration::from_secs(args.timeout_s);
    let dir0 = root.join("node-0");
    let _ = std::fs::remove_file(dir0.join(shen_api::NODE_INFO_FILE));
    let c0 = spawn_node(exe, &dir0, None, Some(args.nodes), &cluster.node_args)?;
    cluster.procs.push(Proc {
        child: c0,
        dir: dir0.clone(),
    });
    let info0 = wait_info(&dir0, until, stop)?;
    let seed = format!("{}/p2p/{}", info0.listen_addrs[0], info0.peer_id);
    for i in 1..args.nodes {
        let dir = root.join(format!("node-{i}"));
        let _ = std::fs::remove_file(dir.join(shen_api::NODE_INFO_FILE));
        let c = spawn_node(exe, &dir, Some(&seed), Some(args.nodes), &cluster.node_args)?;
        cluster.procs.push(Proc { child: c, dir });
    }
    let mut infos = vec![info0];
    for p in cluster.procs.iter().skip(1) {
        infos.push(wait_info(&p.dir, until, stop)?);
    }
    let n = u64::from(args.nodes);
    loop {
        let counts: Vec<Option<(u64, bool)>> =
            infos.iter().map(|i| live_members(&i.admin)).collect();
        if counts.iter().all(|c| *c == Some((n, true))) {
            return Ok(infos);
        }
        if stop.load(Ordering::SeqCst) {
            return Err("interrupted before the cluster converged".into());
        }
        if Instant::now() > until {
            return Err(format!(
                "views did not converge within {}s (live members, log formed, per node: {:?})",
                args.timeout_s, counts
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
    }
}
