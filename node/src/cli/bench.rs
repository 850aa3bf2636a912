//! `shen bench`: append throughput and latency of a real local cluster
//! (N `shen run` processes on loopback, the replicated log formed), then the
//! same workload against a local 3-member etcd cluster in the same run, if
//! an `etcd` binary is installed (Debian package `etcd-server`).
//!
//! The workload is the same for both systems: `C` clients, each with one
//! keep-alive HTTP/1.1 connection per member it writes to (hyper's client), each in a
//! closed loop writing one 256-byte record at a time (Shen: `POST
//! /log/append`; etcd: `POST /v3/kv/put` through its JSON gateway), for a
//! fixed time per concurrency level after a short warm-up. Reported:
//! acknowledged writes per second and latency p50/p99 as the client saw
//! them.
//!
//! What an acknowledgement means is printed next to every figure. Shen:
//! on every replica of the chain, in each node's write-ahead log, synced
//! per `--fsync` (default `batch`: group commit). etcd: on a majority,
//! fsynced (its default); etcd versions that have `--unsafe-no-fsync` are
//! measured a second time with it.

use std::path::PathBuf;
use std::process::{Child, Command, ExitCode, Stdio};
use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use http_body_util::{BodyExt, Full};
use hyper::body::Bytes;
use hyper::client::conn::http1::SendRequest;
use hyper_util::rt::TokioIo;
use serde::Serialize;
use shen_rings::ouroboros::FsyncPolicy;
use tokio::net::TcpStream;

use super::up::start_cluster;

/// `shen bench` flags.
#[derive(Args, Debug, Clone)]
#[command(args_conflicts_with_subcommands = true)]
pub struct BenchArgs {
    /// Another benchmark instead of append throughput.
    #[command(subcommand)]
    pub what: Option<BenchWhat>,
    /// Shen nodes (chains have 3 members, so 3 is one chain per partition
    /// over every node).
    #[arg(long, default_value_t = 3)]
    pub nodes: u32,
    /// Client concurrency levels, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64,256,1000")]
    pub concurrency: Vec<u32>,
    /// Measured seconds per level (after a 1 s warm-up).
    #[arg(long, default_value_t = 5)]
    pub duration_s: u64,
    /// Record size in bytes.
    #[arg(long, default_value_t = 256)]
    pub record_bytes: usize,
    /// Nodes for the token-acquire measurement (0: skip it).
    #[arg(long, default_value_t = 5)]
    pub token_nodes: u32,
    /// Skip the etcd comparison.
    #[arg(long)]
    pub no_etcd: bool,
    /// The etcd binary (default: `etcd` on PATH).
    #[arg(long, default_value = "etcd", value_name = "PATH")]
    pub etcd: String,
    /// Print the results as JSON.
    #[arg(long)]
    pub json: bool,
    /// Where clients send each write: `leader` (Shen: the head of the
    /// record's partition; etcd: the Raft leader) or `any` (client `c` to
    /// member `c mod n`, which forwards).
    #[arg(long, default_value = "leader", value_parser = ["leader", "any"])]
    pub route: String,
    /// The Shen nodes' fsync policy (`batch`, `every` or `never`; see
    /// `shen run --fsync`).
    #[arg(long, default_value = "batch")]
    pub fsync: FsyncPolicy,
    /// Run the Shen nodes from this `shen` binary instead of this one (an
    /// A/B comparison of two builds under the same load generator).
    #[arg(long, value_name = "PATH")]
    pub node_bin: Option<PathBuf>,
}

/// The other benchmarks of `shen bench`.
#[derive(clap::Subcommand, Debug, Clone)]
pub enum BenchWhat {
    /// Memory, restart time and read rate with a log larger than the cache
    /// (2 GiB of 4 KiB records into a local cluster by default).
    Storage(super::bench_storage::StorageArgs),
}

/// One measured level.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Level {
    /// System measured.
    pub system: String,
    /// What an acknowledgement means.
    pub durability: String,
    /// Where clients sent their writes.
    pub route: String,
    /// Clients.
    pub concurrency: u32,
    /// Acknowledged writes per second.
    pub writes_per_s: f64,
    /// Latency p50 in milliseconds.
    pub p50_ms: f64,
    /// Latency p99 in milliseconds.
    pub p99_ms: f64,
    /// Failed requests (non-200 answers or broken connections).
    pub errors: u64,
}

/// Token acquire latency (request → grant) over a cluster.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct TokenLevel {
    /// Cluster size.
    pub nodes: u32,
    /// Grants measured (one at a time, from each node in turn).
    pub grants: u64,
    /// Latency p50 in milliseconds (as the node saw it).
    pub p50_ms: f64,
    /// Latency p99 in milliseconds.
    pub p99_ms: f64,
    /// Failed acquires.
    pub errors: u64,
}

/// Acquire and release the token from each node in turn for `secs`.
fn measure_token(addrs: &[String], secs: u64) -> TokenLevel {
    let until = Instant::now() + Duration::from_secs(secs);
    let mut lat = Vec::new();
    let mut errors = 0;
    let mut i = 0usize;
    while Instant::now() < until {
        let addr = &addrs[i % addrs.len()];
        i += 1;
        let r = shen_client::Http::new(addr.clone(), Duration::from_secs(15)).request(
            "POST",
            shen_api::routes::TOKEN_ACQUIRE,
            "",
            &[],
        );
        let wait = match r {
            Ok(a) if a.status == 200 => serde_json::from_slice::<shen_api::TokenReply>(&a.body)
                .ok()
                .map(|t| t.wait_ms),
            _ => None,
        };
        match wait {
            Some(ms) => lat.push((ms * 1000.0) as u64),
            None => errors += 1,
        }
    }
    lat.sort_unstable();
    TokenLevel {
        nodes: addrs.len() as u32,
        grants: lat.len() as u64,
        p50_ms: pct(&lat, 0.5),
        p99_ms: pct(&lat, 0.99),
        errors,
    }
}

/// Everything `shen bench` measured.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct BenchReport {
    /// Append levels, Shen then etcd.
    pub appends: Vec<Level>,
    /// Token acquire latency, if measured.
    pub token: Option<TokenLevel>,
    /// Shen's best level within the p99 bound against etcd's best.
    pub headline: Option<Headline>,
}

/// What etcd's fsynced levels are labelled.
const ETCD_FSYNCED: &str = "on a majority, fsynced";

/// The p99 bound of the headline comparison (the target: at least
/// 5× etcd's throughput with p99 within 10 ms).
pub const HEADLINE_P99_MS: f64 = 10.0;

/// Shen's highest throughput at a level whose p99 is within a bound,
/// against etcd's highest throughput at any level (fsynced).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct Headline {
    /// The p99 bound (ms).
    pub p99_bound_ms: f64,
    /// Shen's best level within the bound (`None`: no level was).
    pub shen_concurrency: Option<u32>,
    /// Its writes per second (0 if none).
    pub shen_writes_per_s: f64,
    /// etcd's best level.
    pub etcd_concurrency: u32,
    /// Its writes per second.
    pub etcd_writes_per_s: f64,
    /// Shen / etcd.
    pub ratio: f64,
}

/// The headline comparison of `levels`, if etcd was measured.
pub fn headline(levels: &[Level], p99_bound_ms: f64) -> Option<Headline> {
    let best = |it: &mut dyn Iterator<Item = &Level>| {
        it.max_by(|a, b| a.writes_per_s.total_cmp(&b.writes_per_s))
            .cloned()
    };
    let etcd = best(
        &mut levels
            .iter()
            .filter(|l| l.system == "etcd" && l.durability == ETCD_FSYNCED),
    )?;
    let shen = best(
        &mut levels
            .iter()
            .filter(|l| l.system == "shen" && l.p99_ms <= p99_bound_ms),
    );
    let shen_writes = shen.as_ref().map_or(0.0, |l| l.writes_per_s);
    Some(Headline {
        p99_bound_ms,
        shen_concurrency: shen.map(|l| l.concurrency),
        shen_writes_per_s: shen_writes,
        etcd_concurrency: etcd.concurrency,
        etcd_writes_per_s: etcd.writes_per_s,
        ratio: shen_writes / etcd.writes_per_s.max(1e-9),
    })
}

/// Standard base64 with padding (etcd's JSON gateway encodes keys and
/// values so), from the `base64` crate.
pub fn base64(bytes: &[u8]) -> String {
    use base64::Engine as _;
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

/// What one client writes.
#[derive(Clone)]
pub(super) enum Target {
    Shen,
    Etcd,
}

/// One write: a hyper request on a kept-alive connection.
pub(super) fn request(
    target: &Target,
    addr: &str,
    key: &str,
    record: &[u8],
) -> hyper::Request<Full<Bytes>> {
    let (uri, ctype, body) = match target {
        Target::Shen => (
            shen_api::AppendQuery::key(key.as_bytes()).to_path(),
            "application/octet-stream",
            Bytes::copy_from_slice(record),
        ),
        Target::Etcd => (
            "/v3/kv/put".to_string(),
            "application/json",
            Bytes::from(format!(
                "{{\"key\":\"{}\",\"value\":\"{}\"}}",
                base64(key.as_bytes()),
                base64(record)
            )),
        ),
    };
    let mut req = hyper::Request::new(Full::new(body));
    *req.method_mut() = hyper::Method::POST;
    if let Ok(u) = uri.parse() {
        *req.uri_mut() = u;
    }
    let h = req.headers_mut();
    if let Ok(v) = hyper::header::HeaderValue::from_str(addr) {
        h.insert(hyper::header::HOST, v);
    }
    h.insert(
        hyper::header::CONTENT_TYPE,
        hyper::header::HeaderValue::from_static(ctype),
    );
    req
}

/// A kept-alive HTTP/1.1 connection (hyper's client): the request half
/// and the future that drives the socket. The client's own task polls
/// both, so a request costs no hand-off to another task (and on a
/// 2-core machine the load generator takes less CPU from the nodes).
pub(super) struct Conn {
    pub(super) sender: SendRequest<Full<Bytes>>,
    pub(super) driver: std::pin::Pin<Box<dyn std::future::Future<Output = ()> + Send>>,
}

/// Open a connection to `addr`.
pub(super) async fn connect(addr: &str) -> Option<Conn> {
    let sock = TcpStream::connect(addr).await.ok()?;
    let _ = sock.set_nodelay(true);
    let (sender, conn) = hyper::client::conn::http1::handshake(TokioIo::new(sock))
        .await
        .ok()?;
    Some(Conn {
        sender,
        driver: Box::pin(async move {
            let _ = conn.await;
        }),
    })
}

/// Send one request and read its whole answer: its status, or `None`
/// if the connection failed or closed (open a new one).
pub(super) async fn exchange(conn: &mut Conn, req: hyper::Request<Full<Bytes>>) -> Option<u16> {
    fetch(conn, req).await.map(|(code, _)| code)
}

/// [`exchange`], keeping the answer's body.
pub(super) async fn fetch(
    conn: &mut Conn,
    req: hyper::Request<Full<Bytes>>,
) -> Option<(u16, Bytes)> {
    let sender = &mut conn.sender;
    let send = async move {
        sender.ready().await?;
        let resp = sender.send_request(req).await?;
        let code = resp.status().as_u16();
        let body = resp.into_body().collect().await?.to_bytes();
        Ok::<(u16, Bytes), hyper::Error>((code, body))
    };
    tokio::select! {
        biased;
        r = send => r.ok(),
        // The driver ends only when the connection does.
        _ = &mut conn.driver => None,
    }
}

/// Which member each request goes to.
#[derive(Clone, Debug)]
pub(super) enum Route {
    /// Client `c` keeps one connection to member `c mod n` and sends
    /// everything there (the member forwards to the head or leader).
    Spread,
    /// Shen, head-aware: each record goes to its partition's head
    /// (`heads[p]` indexes the member list), the way a partition-aware
    /// producer sends to the partition leader.
    Heads {
        partitions: u32,
        heads: Arc<Vec<usize>>,
    },
    /// etcd, leader-aware: every request to the Raft leader.
    Leader(usize),
}

impl Route {
    pub(super) fn pick(&self, client: u32, key: &[u8], members: usize) -> usize {
        match self {
            Route::Spread => client as usize % members,
            Route::Heads { partitions, heads } => {
                let p = shen_rings::ouroboros::partition_of_key(key, *partitions) as usize;
                heads.get(p).copied().unwrap_or(client as usize % members)
            }
            Route::Leader(l) => *l,
        }
    }
}

/// Run `concurrency` closed-loop clients over `addrs` for warm-up +
/// `measure`; latencies (µs) of requests started in the measured window.
async fn load(
    target: Target,
    route: Route,
    addrs: Vec<String>,
    concurrency: u32,
    record: Vec<u8>,
    measure: Duration,
) -> (Vec<u64>, u64) {
    let start = Instant::now();
    let from = start + Duration::from_secs(1);
    let until = from + measure;
    let lat: Arc<Mutex<Vec<u64>>> = Arc::default();
    let errors = Arc::new(std::sync::atomic::AtomicU64::new(0));
    let mut tasks = Vec::new();
    for c in 0..concurrency {
        let (target, route, addrs, record, lat, errors) = (
            target.clone(),
            route.clone(),
            addrs.clone(),
            record.clone(),
            lat.clone(),
            errors.clone(),
        );
        tasks.push(tokio::spawn(async move {
            let mut mine = Vec::new();
            // One keep-alive connection per member, opened on first use.
            let mut conns: Vec<Option<Conn>> = (0..addrs.len()).map(|_| None).collect();
            let mut i = 0u64;
            while Instant::now() < until {
                let key = format!("c{c}-{i}");
                let m = route.pick(c, key.as_bytes(), addrs.len());
                if conns[m].is_none() {
                    match connect(&addrs[m]).await {
                        Some(sender) => conns[m] = Some(sender),
                        None => {
                            errors.fetch_add(1, Ordering::Relaxed);
                            tokio::time::sleep(Duration::from_millis(50)).await;
                            continue;
                        }
                    }
                }
                let Some(conn) = conns[m].as_mut() else {
                    continue;
                };
                let req = request(&target, &addrs[m], &key, &record);
                i += 1;
                let t0 = Instant::now();
                let ok = exchange(conn, req).await;
                let measured = t0 >= from && t0 < until;
                match ok {
                    Some(200) => {
                        if measured {
                            mine.push(t0.elapsed().as_micros() as u64);
                        }
                    }
                    Some(_) => {
                        if measured {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                    }
                    None => {
                        if measured {
                            errors.fetch_add(1, Ordering::Relaxed);
                        }
                        conns[m] = None;
                    }
                }
            }
            if let Ok(mut l) = lat.lock() {
                l.extend(mine);
            }
        }));
    }
    for t in tasks {
        let _ = t.await;
    }
    let mut v = lat.lock().map(|l| l.clone()).unwrap_or_default();
    v.sort_unstable();
    (v, errors.load(Ordering::Relaxed))
}

fn pct(sorted: &[u64], q: f64) -> f64 {
    if sorted.is_empty() {
        return 0.0;
    }
    let i = ((sorted.len() as f64 - 1.0) * q).round() as usize;
    sorted[i.min(sorted.len() - 1)] as f64 / 1000.0
}

#[allow(clippy::too_many_arguments)]
fn measure_levels(
    rt: &tokio::runtime::Runtime,
    system: &str,
    durability: &str,
    target: Target,
    route: &Route,
    addrs: &[String],
    a: &BenchArgs,
) -> Vec<Level> {
    let record = vec![b'x'; a.record_bytes];
    a.concurrency
        .iter()
        .map(|&c| {
            let (lat, errors) = rt.block_on(load(
                target.clone(),
                route.clone(),
                addrs.to_vec(),
                c,
                record.clone(),
                Duration::from_secs(a.duration_s),
            ));
            let level = Level {
                system: system.to_string(),
                durability: durability.to_string(),
                route: match route {
                    Route::Spread => "any member".into(),
                    Route::Heads { .. } => "partition head".into(),
                    Route::Leader(_) => "leader".into(),
                },
                concurrency: c,
                writes_per_s: lat.len() as f64 / a.duration_s as f64,
                p50_ms: pct(&lat, 0.5),
                p99_ms: pct(&lat, 0.99),
                errors,
            };
            if !a.json {
                print_level(&level);
            }
            level
        })
        .collect()
}

fn print_level(l: &Level) {
    println!(
        "{:<6} {:>6} clients  {:>9.0} writes/s  p50 {:>7.2} ms  p99 {:>7.2} ms  {:>5} errors  ({}; sent to {}{})",
        l.system,
        l.concurrency,
        l.writes_per_s,
        l.p50_ms,
        l.p99_ms,
        l.errors,
        l.durability,
        if l.route == "any member" { "" } else { "the " },
        l.route
    );
}

/// A free TCP port on 127.0.0.1 (bound and released).
fn free_port() -> Result<u16, String> {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .map_err(|e| format!("no free port: {e}"))
}

/// Three local etcd members; killed on drop.
struct Etcd {
    procs: Vec<Child>,
    clients: Vec<String>,
    dir: PathBuf,
}

impl Drop for Etcd {
    fn drop(&mut self) {
        for p in &mut self.procs {
            let _ = p.kill();
            let _ = p.wait();
        }
        let _ = std::fs::remove_dir_all(&self.dir);
    }
}

fn etcd_supports_no_fsync(bin: &str) -> bool {
    Command::new(bin)
        .arg("--help")
        .output()
        .map(|o| {
            String::from_utf8_lossy(&o.stdout).contains("unsafe-no-fsync")
                || String::from_utf8_lossy(&o.stderr).contains("unsafe-no-fsync")
        })
        .unwrap_or(false)
}

fn start_etcd(bin: &str, no_fsync: bool) -> Result<Etcd, String> {
    // A fresh directory, removed by `Etcd`'s drop.
    let dir = tempfile::Builder::new()
        .prefix(&format!("shen-bench-etcd-{}-", u8::from(no_fsync)))
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?
        .keep();
    let mut peers = Vec::new();
    let mut clients = Vec::new();
    for _ in 0..3 {
        peers.push(format!("http://127.0.0.1:{}", free_port()?));
        clients.push(format!("127.0.0.1:{}", free_port()?));
    }
    let cluster: Vec<String> = peers
        .iter()
        .enumerate()
        .map(|(i, p)| format!("e{i}={p}"))
        .collect();
    let cluster = cluster.join(",");
    let mut etcd = Etcd {
        procs: Vec::new(),
        clients: clients.clone(),
        dir,
    };
    for i in 0..3 {
        let data = etcd.dir.join(format!("e{i}"));
        let log =
            std::fs::File::create(etcd.dir.join(format!("e{i}.log"))).map_err(|e| e.to_string())?;
        let client_url = format!("http://{}", clients[i]);
        let mut cmd = Command::new(bin);
        cmd.args(["--name", &format!("e{i}")])
            .arg("--data-dir")
            .arg(&data)
            .args(["--listen-client-urls", &client_url])
            .args(["--advertise-client-urls", &client_url])
            .args(["--listen-peer-urls", &peers[i]])
            .args(["--initial-advertise-peer-urls", &peers[i]])
            .args(["--initial-cluster", &cluster])
            .args(["--initial-cluster-state", "new"])
            .args(["--initial-cluster-token", "shen-bench"])
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(log);
        if no_fsync {
            cmd.arg("--unsafe-no-fsync");
        }
        etcd.procs.push(
            cmd.spawn()
                .map_err(|e| format!("cannot start {bin}: {e}"))?,
        );
    }
    // Wait for a leader: a put through every member succeeds.
    let until = Instant::now() + Duration::from_secs(30);
    let body = format!(
        "{{\"key\":\"{}\",\"value\":\"{}\"}}",
        base64(b"ready"),
        base64(b"1")
    );
    for c in &clients {
        loop {
            let r = shen_client::Http::new(c.clone(), Duration::from_secs(2)).request(
                "POST",
                "/v3/kv/put",
                "application/json",
                body.as_bytes(),
            );
            if matches!(r, Ok(ref a) if a.status == 200) {
                break;
            }
            if Instant::now() > until {
                return Err(format!("etcd member {c} not ready after 30 s: {r:?}"));
            }
            std::thread::sleep(Duration::from_millis(200));
        }
    }
    Ok(etcd)
}

/// Each partition's head, as an index into `infos` (from the first
/// node's `/status`).
pub(super) fn shen_heads(infos: &[shen_api::NodeInfo]) -> Result<Route, String> {
    let first = infos.first().ok_or("no Shen node")?;
    let status = shen_client::ShenClient::new(first.admin.clone())
        .cluster_status()
        .map_err(|e| format!("cannot read the chains from {}: {e}", first.admin))?;
    let mut heads = vec![0; status.partitions as usize];
    for c in &status.chains {
        let head = c
            .members
            .first()
            .ok_or_else(|| format!("partition {} has no chain", c.partition))?;
        let i = infos
            .iter()
            .position(|n| &n.peer_id == head)
            .ok_or_else(|| {
                format!(
                    "partition {}'s head {head} is not a bench node",
                    c.partition
                )
            })?;
        if let Some(h) = heads.get_mut(c.partition as usize) {
            *h = i;
        }
    }
    Ok(Route::Heads {
        partitions: status.partitions,
        heads: Arc::new(heads),
    })
}

/// The etcd member that is the Raft leader (an index into `clients`),
/// from `POST /v3/maintenance/status` on each member.
fn etcd_leader(clients: &[String]) -> Result<usize, String> {
    for (i, c) in clients.iter().enumerate() {
        let r = shen_client::Http::new(c.clone(), Duration::from_secs(5)).request(
            "POST",
            "/v3/maintenance/status",
            "application/json",
            b"{}",
        );
        if let Some(a) = r.ok().filter(|a| a.status == 200) {
            let v: serde_json::Value =
                serde_json::from_slice(&a.body).map_err(|e| e.to_string())?;
            let me = v["header"]["member_id"].as_str().unwrap_or("");
            if !me.is_empty() && v["leader"].as_str() == Some(me) {
                return Ok(i);
            }
        }
    }
    Err("no etcd member reports itself as the leader".into())
}

/// Run `shen bench`.
pub fn run(a: BenchArgs) -> ExitCode {
    if let Some(BenchWhat::Storage(s)) = a.what {
        return super::bench_storage::run(s);
    }
    if a.nodes == 0 || a.nodes > 16 {
        eprintln!("error: --nodes must be between 1 and 16");
        return ExitCode::from(2);
    }
    if a.concurrency.is_empty() || a.concurrency.iter().any(|&c| c == 0 || c > 10_000) {
        eprintln!("error: --concurrency levels must be between 1 and 10000");
        return ExitCode::from(2);
    }
    if a.duration_s == 0 || a.duration_s > 600 {
        eprintln!("error: --duration-s must be between 1 and 600");
        return ExitCode::from(2);
    }
    if a.record_bytes == 0 || a.record_bytes > 64 * 1024 {
        eprintln!("error: --record-bytes must be between 1 and 65536");
        return ExitCode::from(2);
    }
    // The load generator runs on one thread: its clients never wake one
    // another across cores, so it leaves more of a small machine to the
    // nodes it measures (one thread drives far more than the nodes can take).
    let rt = match tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    let exe = match a
        .node_bin
        .clone()
        .map(Ok)
        .unwrap_or_else(std::env::current_exe)
    {
        Ok(e) if e.is_file() => e,
        Ok(e) => {
            eprintln!("error: --node-bin {}: no such file", e.display());
            return ExitCode::from(2);
        }
        Err(e) => {
            eprintln!("error: cannot find the shen binary: {e}");
            return ExitCode::FAILURE;
        }
    };
    // Fresh directories, removed by the clusters' drop (`remove_root`).
    let root: PathBuf = match tempfile::Builder::new().prefix("shen-bench-").tempdir() {
        Ok(d) => d.keep(),
        Err(e) => {
            eprintln!("error: temporary directory: {e}");
            return ExitCode::FAILURE;
        }
    };
    // The node processes read their policy from the environment.
    std::env::set_var(
        "SHEN_FSYNC",
        match a.fsync {
            FsyncPolicy::Batch => "batch",
            FsyncPolicy::Every => "every",
            FsyncPolicy::Never => "never",
        },
    );
    let mut results = Vec::new();
    {
        let (cluster, infos) = match start_cluster(&exe, a.nodes, &root, true, 60, &[]) {
            Ok(c) => c,
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        };
        if !a.json {
            println!(
                "shen bench: {} Shen nodes on loopback, {}-byte records, {} s per level",
                a.nodes, a.record_bytes, a.duration_s
            );
        }
        let addrs: Vec<String> = infos.iter().map(|i| i.admin.clone()).collect();
        let route = if a.route == "leader" {
            match shen_heads(&infos) {
                Ok(r) => r,
                Err(e) => {
                    eprintln!("error: {e}");
                    return ExitCode::FAILURE;
                }
            }
        } else {
            Route::Spread
        };
        results.extend(measure_levels(
            &rt,
            "shen",
            match a.fsync {
                FsyncPolicy::Batch => "on every chain replica, fsynced (group commit)",
                FsyncPolicy::Every => "on every chain replica, fsynced per record",
                FsyncPolicy::Never => "on every chain replica, written, not fsynced",
            },
            Target::Shen,
            &route,
            &addrs,
            &a,
        ));
        drop(cluster);
    }
    if !a.no_etcd {
        let have = Command::new(&a.etcd)
            .arg("--version")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .status()
            .is_ok();
        if !have {
            eprintln!(
                "note: no `{}` binary: skipping the etcd comparison (apt-get install etcd-server)",
                a.etcd
            );
        } else {
            let mut modes = vec![(false, ETCD_FSYNCED)];
            if etcd_supports_no_fsync(&a.etcd) {
                modes.push((true, "on a majority, in memory (--unsafe-no-fsync)"));
            }
            for (no_fsync, durability) in modes {
                match start_etcd(&a.etcd, no_fsync) {
                    Ok(etcd) => {
                        let route = if a.route == "leader" {
                            match etcd_leader(&etcd.clients) {
                                Ok(l) => Route::Leader(l),
                                Err(e) => {
                                    eprintln!("error: {e}");
                                    return ExitCode::FAILURE;
                                }
                            }
                        } else {
                            Route::Spread
                        };
                        let levels = measure_levels(
                            &rt,
                            "etcd",
                            durability,
                            Target::Etcd,
                            &route,
                            &etcd.clients,
                            &a,
                        );
                        results.extend(levels);
                    }
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            }
        }
    }
    let mut token = None;
    if a.token_nodes > 0 {
        let troot = match tempfile::Builder::new()
            .prefix("shen-bench-token-")
            .tempdir()
        {
            Ok(d) => d.keep(),
            Err(e) => {
                eprintln!("error: temporary directory: {e}");
                return ExitCode::FAILURE;
            }
        };
        match start_cluster(&exe, a.token_nodes, &troot, true, 60, &[]) {
            Ok((cluster, infos)) => {
                let addrs: Vec<String> = infos.iter().map(|i| i.admin.clone()).collect();
                // Let the token settle after formation.
                std::thread::sleep(Duration::from_secs(1));
                let t = measure_token(&addrs, a.duration_s);
                if !a.json {
                    println!(
                        "token  {:>6} nodes    {:>9} grants    p50 {:>7.2} ms  p99 {:>7.2} ms  {:>5} errors  (acquire = request until the majority-confirmed grant)",
                        t.nodes, t.grants, t.p50_ms, t.p99_ms, t.errors
                    );
                }
                token = Some(t);
                drop(cluster);
            }
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    let report = BenchReport {
        appends: results.clone(),
        token: token.clone(),
        headline: headline(&results, HEADLINE_P99_MS),
    };
    if a.json {
        match serde_json::to_string_pretty(&report) {
            Ok(s) => println!("{s}"),
            Err(e) => {
                eprintln!("error: {e}");
                return ExitCode::FAILURE;
            }
        }
    } else {
        for l in results.iter().filter(|l| l.system == "etcd") {
            if let Some(s) = results
                .iter()
                .find(|s| s.system == "shen" && s.concurrency == l.concurrency)
            {
                println!(
                    "ratio at {:>5} clients: Shen/etcd ({}) = {:.2}x throughput, p99 {:.2} vs {:.2} ms",
                    l.concurrency,
                    l.durability,
                    s.writes_per_s / l.writes_per_s.max(1e-9),
                    s.p99_ms,
                    l.p99_ms
                );
            }
        }
        if let Some(h) = &report.headline {
            match h.shen_concurrency {
                Some(c) => println!(
                    "headline: Shen's best level with p99 <= {} ms: {} clients, {:.0} writes/s = {:.2}x etcd's best ({:.0} writes/s at {} clients, fsynced)",
                    h.p99_bound_ms, c, h.shen_writes_per_s, h.ratio, h.etcd_writes_per_s, h.etcd_concurrency
                ),
                None => println!(
                    "headline: no Shen level kept p99 <= {} ms (etcd's best: {:.0} writes/s at {} clients)",
                    h.p99_bound_ms, h.etcd_writes_per_s, h.etcd_concurrency
                ),
            }
        }
    }
    if results.iter().any(|l| l.writes_per_s == 0.0) {
        eprintln!("error: a level acknowledged no writes");
        return ExitCode::FAILURE;
    }
    if token.is_some_and(|t| t.grants == 0) {
        eprintln!("error: no token grant was measured");
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}

#[cfg(test)]
mod tests {
    use super::*;

    fn level(system: &str, concurrency: u32, writes_per_s: f64, p99_ms: f64) -> Level {
        Level {
            system: system.into(),
            durability: if system == "etcd" {
                ETCD_FSYNCED.into()
            } else {
                "x".into()
            },
            route: "leader".into(),
            concurrency,
            writes_per_s,
            p50_ms: p99_ms / 2.0,
            p99_ms,
            errors: 0,
        }
    }

    #[test]
    fn headline_is_shens_best_level_within_the_bound_against_etcds_best() {
        let mut levels = vec![
            level("shen", 16, 6_000.0, 4.0),
            level("shen", 64, 15_000.0, 7.5),
            level("shen", 256, 26_000.0, 15.0),
            level("etcd", 16, 5_000.0, 8.0),
            level("etcd", 256, 10_000.0, 60.0),
            level("etcd", 1000, 9_800.0, 170.0),
        ];
        // An unsafe etcd mode is never the reference.
        let mut fast = level("etcd", 1000, 50_000.0, 20.0);
        fast.durability = "on a majority, in memory (--unsafe-no-fsync)".into();
        levels.push(fast);
        let h = headline(&levels, 10.0).unwrap();
        assert_eq!(h.shen_concurrency, Some(64));
        assert_eq!(h.etcd_concurrency, 256);
        assert!((h.ratio - 1.5).abs() < 1e-9, "{h:?}");
        // No Shen level within the bound: ratio 0, said so.
        let h = headline(&levels, 1.0).unwrap();
        assert_eq!((h.shen_concurrency, h.ratio), (None, 0.0));
        // Without etcd there is no headline.
        assert!(headline(&levels[..3], 10.0).is_none());
    }

    #[test]
    fn routes_pick_the_member_that_should_take_the_write() {
        let keys: Vec<String> = (0..200).map(|i| format!("c3-{i}")).collect();
        for k in &keys {
            assert_eq!(Route::Spread.pick(5, k.as_bytes(), 3), 2);
            assert_eq!(Route::Leader(1).pick(5, k.as_bytes(), 3), 1);
        }
        // Partition p's head is member p mod 3.
        let heads = Route::Heads {
            partitions: 8,
            heads: Arc::new((0..8).map(|p| p % 3).collect()),
        };
        let mut seen = [false; 3];
        for k in &keys {
            let p = shen_rings::ouroboros::partition_of_key(k.as_bytes(), 8) as usize;
            let m = heads.pick(5, k.as_bytes(), 3);
            assert_eq!(m, p % 3, "{k}");
            seen[m] = true;
        }
        assert_eq!(seen, [true; 3], "keys spread over every head");
    }

    #[test]
    fn base64_matches_rfc_4648_vectors() {
        assert_eq!(base64(b""), "");
        assert_eq!(base64(b"f"), "Zg==");
        assert_eq!(base64(b"fo"), "Zm8=");
        assert_eq!(base64(b"foo"), "Zm9v");
        assert_eq!(base64(b"foob"), "Zm9vYg==");
        assert_eq!(base64(b"fooba"), "Zm9vYmE=");
        assert_eq!(base64(b"foobar"), "Zm9vYmFy");
        assert_eq!(base64(&[0xff, 0xfe]), "//4=");
    }
}
