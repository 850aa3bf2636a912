//! `shen bench storage`: a local cluster's memory, restart time and read rate with a log larger than its cache.
//!
//! The run, on N `shen run` processes on loopback (default 3, chains of 3,
//! so every node holds every record):
//! 1. **Write** `--total-mib` (default 2048) of `--record-bytes` (default
//!    4096) records through `--concurrency` closed-loop clients, each
//!    record sent to its partition's head. The nodes' resident memory is
//!    sampled every 250 ms; the figure reported is each process's peak
//!    resident set (`VmHWM` in `/proc/PID/status`, which the kernel keeps,
//!    so no spike between samples is missed).
//! 2. **Restart** one node (`kill -9`, then `shen run` again on its data
//!    directory): the time until its admin API answers, until its log is
//!    rebuilt from disk (checkpoint plus the write-ahead log after it), and
//!    until it serves a read of a partition it is the tail of from offset
//!    0 — plus its peak resident set after the restart.
//! 3. **Read** the largest partition back from offset 0 to its end
//!    through its tail's admin API (`GET /log/read`, as many records as
//!    one answer holds), three times, and report record bytes per second
//!    of the median read.
//! 4. **Refill** (`--refill-mib`, default 256; 0 skips): `kill -9` the same
//!    node, wait until the others' chains no longer hold it, write that
//!    much through them, start it again, and time it until it is back in
//!    every chain it was in and holds every record those partitions
//!    committed while it was down (state transfer from its chains'
//!    predecessors, from disk) — plus its peak resident set meanwhile.
//!
//! The targets are issue 16's: peak RSS under 256 MiB per node with the
//! default 64 MiB cache, restart to serving reads within 3 s, reads at
//! 200 MB/s or more. They are printed next to the figures; the command
//! exits 0 either way (a benchmark reports, it does not judge), except on
//! an error. Build it with `--release` for meaningful figures.

use std::collections::BTreeMap;
use std::path::Path;
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use clap::Args;
use http_body_util::Full;
use hyper::body::Bytes;
use serde::Serialize;
use shen_api::{NodeInfo, ReadQuery, ReadReply};

use super::bench::{connect, exchange, fetch, request, shen_heads, Conn, Target};
use super::up::{start_cluster, Cluster};

/// `shen bench storage` flags.
#[derive(Args, Debug, Clone)]
pub struct StorageArgs {
    /// Shen nodes.
    #[arg(long, default_value_t = 3)]
    pub nodes: u32,
    /// MiB of record data to write (acknowledged).
    #[arg(long, default_value_t = 2048)]
    pub total_mib: u64,
    /// Record size in bytes.
    #[arg(long, default_value_t = 4096)]
    pub record_bytes: usize,
    /// Concurrent writers.
    #[arg(long, default_value_t = 64)]
    pub concurrency: u32,
    /// MiB written while one node is down, then refilled into it on its
    /// restart (0: no refill phase).
    #[arg(long, default_value_t = 256)]
    pub refill_mib: u64,
    /// At most this many MiB are written while one more node joins and
    /// partitions move to it (the writers stop when the move is over; 0:
    /// no rebalance phase).
    #[arg(long, default_value_t = 512)]
    pub rebalance_write_mib: u64,
    /// The nodes' `--rebalance-bytes-per-sec` (default: theirs).
    #[arg(long, value_name = "RATE", value_parser = crate::daemon::parse_rate)]
    pub rebalance_bytes_per_sec: Option<u64>,
    /// Print the report as JSON.
    #[arg(long)]
    pub json: bool,
}

/// What `shen bench storage` measured.
#[derive(Debug, Clone, Serialize)]
pub struct StorageReport {
    /// Nodes in the cluster.
    pub nodes: u32,
    /// Record size.
    pub record_bytes: usize,
    /// Record bytes acknowledged.
    pub written_bytes: u64,
    /// Seconds the writes took.
    pub write_s: f64,
    /// Acknowledged record bytes per second while writing.
    pub write_mb_per_s: f64,
    /// Appends answered with an error (retried).
    pub write_errors: u64,
    /// Each node's peak resident set while writing, MiB.
    pub peak_rss_mib: Vec<f64>,
    /// Each node's data directory size after writing, MiB.
    pub disk_mib: Vec<f64>,
    /// The restarted node.
    pub restarted: usize,
    /// Seconds from its start to its admin API answering ...
    pub restart_admin_s: f64,
    /// ... to its log rebuilt from disk and voting again ...
    pub restart_recovered_s: f64,
    /// ... and to a read from offset 0 of a partition it is the tail of
    /// answered through it (`None`: not within 60 s).
    pub restart_serving_s: Option<f64>,
    /// Its peak resident set after the restart, MiB.
    pub restart_peak_rss_mib: f64,
    /// The partition read back, and its tail.
    pub read_partition: u32,
    /// Records and record bytes read back.
    pub read_records: u64,
    /// Record bytes read back.
    pub read_bytes: u64,
    /// Seconds the read took (the median of 3 reads).
    pub read_s: f64,
    /// Record bytes per second.
    pub read_mb_per_s: f64,
    /// The refill phase, if run.
    pub refill: Option<RefillReport>,
    /// The rebalance phase, if run.
    pub rebalance: Option<RebalanceReport>,
}

/// What the rebalance phase measured.
#[derive(Debug, Clone, Serialize)]
pub struct RebalanceReport {
    /// Chains the new node ended in.
    pub partitions_gained: u32,
    /// Record bytes it holds for them at the end.
    pub moved_bytes: u64,
    /// Seconds from its start until it is a member and every chain is
    /// full with no learner (`None`: not within 300 s).
    pub rebalance_s: Option<f64>,
    /// `moved_bytes` per second of `rebalance_s`.
    pub moved_mb_per_s: Option<f64>,
    /// Record bytes acknowledged per second while partitions moved.
    pub write_mb_per_s_during: f64,
}

/// What the refill phase measured.
#[derive(Debug, Clone, Serialize)]
pub struct RefillReport {
    /// Record bytes acknowledged while the node was down.
    pub written_bytes: u64,
    /// Seconds from its start to holding all of them in every chain it is
    /// back in (`None`: not within 300 s).
    pub refill_s: Option<f64>,
    /// `written_bytes` per second of `refill_s`.
    pub refill_mb_per_s: Option<f64>,
    /// Its peak resident set after the restart, MiB.
    pub peak_rss_mib: f64,
    /// The other nodes' peak resident sets over the whole run (VmHWM), so
    /// with the refill they fed, MiB.
    pub senders_peak_rss_mib: Vec<f64>,
    /// Messages the nodes dropped for a full send queue from its restart
    /// to its refill (`shen_queue_full_drops_total`; 0 when the refill's
    /// flow control keeps within what the links take).
    pub queue_full_drops: u64,
}

const MIB: f64 = 1024.0 * 1024.0;

/// Reads of the largest partition; the report gives the median.
const READ_SAMPLES: usize = 3;

/// A process's resident set, and its peak, in bytes (`/proc/PID/status`).
fn rss(pid: u32) -> Option<(u64, u64)> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
        Some(kb * 1024)
    };
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

/// Bytes of the files under `dir`.
fn dir_bytes(dir: &Path) -> u64 {
    let mut total = 0;
    let mut stack = vec![dir.to_path_buf()];
    while let Some(d) = stack.pop() {
        let Ok(rd) = std::fs::read_dir(&d) else {
            continue;
        };
        for e in rd.flatten() {
            match e.metadata() {
                Ok(m) if m.is_dir() => stack.push(e.path()),
                Ok(m) => total += m.len(),
                Err(_) => {}
            }
        }
    }
    total
}

/// Write `total` records of `record_bytes` through `concurrency` clients,
/// each to its partition's head, adding acknowledged bytes to `acked`.
/// Returns the answers that were errors (each retried).
fn write_phase(
    rt: &tokio::runtime::Runtime,
    infos: &[NodeInfo],
    a: &StorageArgs,
    total: u64,
    acked: &Arc<AtomicU64>,
    stop: &Arc<AtomicBool>,
) -> Result<u64, String> {
    let route = shen_heads(infos)?;
    let addrs: Vec<String> = infos.iter().map(|i| i.admin.clone()).collect();
    let next = Arc::new(AtomicU64::new(0));
    let errors = Arc::new(AtomicU64::new(0));
    let record_bytes = a.record_bytes;
    // Bounded in time as well as in count.
    let deadline = Instant::now() + Duration::from_secs(3600);
    rt.block_on(async {
        let mut tasks = Vec::new();
        for c in 0..a.concurrency {
            let (route, addrs, next, errors, acked, stop) = (
                route.clone(),
                addrs.clone(),
                next.clone(),
                errors.clone(),
                acked.clone(),
                stop.clone(),
            );
            tasks.push(tokio::spawn(async move {
                let mut conns: Vec<Option<Conn>> = (0..addrs.len()).map(|_| None).collect();
                let mut record = vec![0u8; record_bytes];
                'records: loop {
                    if stop.load(Ordering::Relaxed) {
                        break;
                    }
                    let seq = next.fetch_add(1, Ordering::Relaxed);
                    if seq >= total {
                        break;
                    }
                    // Printable, different per record.
                    for (i, b) in record.iter_mut().enumerate() {
                        *b = b'a' + ((seq as usize + i) % 26) as u8;
                    }
                    let key = format!("s{seq}");
                    let m = route.pick(c, key.as_bytes(), addrs.len());
                    // Retried until acknowledged (a 503 while a chain
                    // changes wrote nothing).
                    loop {
                        if Instant::now() > deadline {
                            break 'records;
                        }
                        if conns[m].is_none() {
                            conns[m] = connect(&addrs[m]).await;
                            if conns[m].is_none() {
                                errors.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(50)).await;
                                continue;
                            }
                        }
                        let Some(conn) = conns[m].as_mut() else {
                            continue;
                        };
                        let req = request(&Target::Shen, &addrs[m], &key, &record);
                        match exchange(conn, req).await {
                            Some(200) => {
                                acked.fetch_add(record_bytes as u64, Ordering::Relaxed);
                                break;
                            }
                            Some(_) => {
                                errors.fetch_add(1, Ordering::Relaxed);
                                tokio::time::sleep(Duration::from_millis(20)).await;
                            }
                            None => {
                                errors.fetch_add(1, Ordering::Relaxed);
                                conns[m] = None;
                            }
                        }
                    }
                }
            }));
        }
        for t in tasks {
            let _ = t.await;
        }
    });
    Ok(errors.load(Ordering::Relaxed))
}

/// `GET path` on `conn`: the status and the whole body.
async fn get(conn: &mut Conn, addr: &str, path: &str) -> Option<(u16, Bytes)> {
    let mut req = hyper::Request::new(Full::new(Bytes::new()));
    *req.uri_mut() = path.parse().ok()?;
    if let Ok(v) = hyper::header::HeaderValue::from_str(addr) {
        req.headers_mut().insert(hyper::header::HOST, v);
    }
    fetch(conn, req).await
}

/// Read partition `p` from offset 0 to `end` through `admin`: (records,
/// record bytes). Each answer holds as many records as fit one frame.
async fn read_back(admin: &str, p: u32, end: u64) -> Result<(u64, u64), String> {
    let mut conn = connect(admin)
        .await
        .ok_or_else(|| format!("cannot connect to {admin}"))?;
    let (mut from, mut records, mut bytes) = (0u64, 0u64, 0u64);
    let deadline = Instant::now() + Duration::from_secs(600);
    while from < end {
        if Instant::now() > deadline {
            return Err(format!("reading partition {p} took over 600 s"));
        }
        let path = ReadQuery::partition(p, from, ReadQuery::LIMIT).to_path();
        let (code, body) = get(&mut conn, admin, &path)
            .await
            .ok_or_else(|| format!("the connection to {admin} failed"))?;
        if code != 200 {
            return Err(format!(
                "read of partition {p} from {from}: HTTP {code}: {}",
                String::from_utf8_lossy(&body)
            ));
        }
        let reply: ReadReply =
            serde_json::from_slice(&body).map_err(|e| format!("read answer: {e}"))?;
        let Some(last) = reply.records.last() else {
            break;
        };
        from = last.offset + 1;
        records += reply.records.len() as u64;
        bytes += reply
            .records
            .iter()
            .map(|r| r.data.as_ref().map_or(0, |d| d.len()) as u64)
            .sum::<u64>();
    }
    Ok((records, bytes))
}

/// The partition with the most records and the index of its tail.
fn largest_partition(infos: &[NodeInfo]) -> Result<(u32, usize, u64), String> {
    let st = shen_client::ShenClient::new(infos[0].admin.clone())
        .status()
        .map_err(|e| format!("status of {}: {e}", infos[0].admin))?;
    st.log
        .chains
        .iter()
        .filter_map(|c| {
            let tail = c.members.last()?;
            let i = infos.iter().position(|n| &n.peer_id == tail)?;
            Some((c.partition, i, c.committed))
        })
        .max_by_key(|c| c.2)
        .ok_or_else(|| "no partition has a tail among the bench nodes".to_string())
}

/// A partition whose tail is node `i`, as node 0 sees the chains.
fn tailed_by(infos: &[NodeInfo], i: usize) -> Option<u32> {
    let st = shen_client::ShenClient::new(infos[0].admin.clone())
        .with_timeout(Duration::from_secs(2))
        .status()
        .ok()?;
    st.log
        .chains
        .iter()
        .find(|c| c.members.last() == Some(&infos[i].peer_id) && c.committed > 0)
        .map(|c| c.partition)
}

/// Restart node `i` and time it back to serving.
fn restart_phase(
    cluster: &mut Cluster,
    infos: &mut [NodeInfo],
    exe: &Path,
    i: usize,
) -> Result<(f64, f64, Option<f64>, f64), String> {
    let p = tailed_by(infos, i).ok_or_else(|| format!("node {i} is the tail of no partition"))?;
    let seed = format!("{}/p2p/{}", infos[0].listen_addrs[0], infos[0].peer_id);
    let (started, info) = cluster.kill_and_restart(i, exe, &seed, Duration::from_secs(60))?;
    let admin_s = started.elapsed().as_secs_f64();
    infos[i] = info;
    let client =
        shen_client::ShenClient::new(infos[i].admin.clone()).with_timeout(Duration::from_secs(2));
    let until = started + Duration::from_secs(60);
    let recovered_s = loop {
        if let Ok(st) = client.status() {
            if st.log.restored == Some(true) && st.log.recovered == Some(true) {
                break started.elapsed().as_secs_f64();
            }
        }
        if Instant::now() > until {
            return Err(format!("node {i} did not rebuild its log within 60 s"));
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let serving_s = loop {
        if let Ok(r) = client.read_range(p, 0, 1) {
            if !r.is_empty() {
                break Some(started.elapsed().as_secs_f64());
            }
        }
        if Instant::now() > until {
            break None;
        }
        std::thread::sleep(Duration::from_millis(10));
    };
    let pid = cluster.pids()[i];
    let peak = rss(pid).map_or(0.0, |r| r.1 as f64 / MIB);
    Ok((admin_s, recovered_s, serving_s, peak))
}

/// The partitions whose chain (as `admin` sees it) holds `peer` as a
/// member, with their committed counts there; `None` if unreadable.
fn chains_of(admin: &str, peer: &str) -> Option<Vec<(u32, u64)>> {
    let st = shen_client::ShenClient::new(admin.to_string())
        .with_timeout(Duration::from_secs(2))
        .status()
        .ok()?;
    Some(
        st.log
            .chains
            .iter()
            .filter(|c| c.members.iter().any(|m| m == peer))
            .map(|c| (c.partition, c.committed))
            .collect(),
    )
}

/// The messages `admin`'s node dropped for a full send queue so far.
fn queue_full_drops(admin: &str) -> Option<u64> {
    let text = shen_client::Http::new(admin.to_string(), Duration::from_secs(2))
        .get_text("/metrics")
        .ok()?;
    text.lines()
        .find_map(|l| l.strip_prefix("shen_queue_full_drops_total "))
        .and_then(|v| v.trim().parse().ok())
}

/// Kill node `i`, write `--refill-mib` through the others, restart it and
/// time its refill.
fn refill_phase(
    rt: &tokio::runtime::Runtime,
    cluster: &mut Cluster,
    infos: &mut [NodeInfo],
    exe: &Path,
    a: &StorageArgs,
    i: usize,
) -> Result<RefillReport, String> {
    let me = infos[i].peer_id.clone();
    let others: Vec<NodeInfo> = (0..infos.len())
        .filter(|&k| k != i)
        .map(|k| infos[k].clone())
        .collect();
    // It was just restarted: wait until the chains hold it again.
    let until = Instant::now() + Duration::from_secs(120);
    let mine: Vec<u32> = loop {
        let mine: Vec<u32> = chains_of(&others[0].admin, &me)
            .unwrap_or_default()
            .into_iter()
            .map(|c| c.0)
            .collect();
        if !mine.is_empty() {
            break mine;
        }
        if Instant::now() > until {
            return Err(format!("node {i} is in no chain 120 s after its restart"));
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    if !a.json {
        println!(
            "refill: kill -9 node {i} (in {} chains), write {} MiB through the others",
            mine.len(),
            a.refill_mib
        );
    }
    cluster.kill(i)?;
    // The survivors first reconfigure around it (Sundial declares it dead,
    // then new chain epochs); writes go to the new heads.
    let until = Instant::now() + Duration::from_secs(120);
    loop {
        if chains_of(&others[0].admin, &me).is_some_and(|c| c.is_empty()) {
            break;
        }
        if Instant::now() > until {
            return Err(format!(
                "the chains still hold node {i} 120 s after its kill"
            ));
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    let acked = Arc::new(AtomicU64::new(0));
    let total = (a.refill_mib * 1024 * 1024).div_ceil(a.record_bytes as u64);
    write_phase(rt, &others, a, total, &acked, &Arc::default())?;
    let written_bytes = acked.load(Ordering::Relaxed);
    // What it must hold again: every record committed meanwhile.
    let mut target: BTreeMap<u32, u64> = BTreeMap::new();
    for o in &others {
        for (p, committed) in chains_of(&o.admin, &o.peer_id).unwrap_or_default() {
            if mine.contains(&p) {
                let t = target.entry(p).or_default();
                *t = (*t).max(committed);
            }
        }
    }
    let seed = format!("{}/p2p/{}", others[0].listen_addrs[0], others[0].peer_id);
    let drops = |infos: &[NodeInfo]| -> u64 {
        infos
            .iter()
            .filter_map(|n| queue_full_drops(&n.admin))
            .sum()
    };
    let drops_before = drops(&others);
    let (started, info) = cluster.restart(i, exe, &seed, Duration::from_secs(60))?;
    infos[i] = info;
    let client =
        shen_client::ShenClient::new(infos[i].admin.clone()).with_timeout(Duration::from_secs(2));
    let until = started + Duration::from_secs(300);
    let refill_s = loop {
        let done = client.status().ok().is_some_and(|st| {
            mine.iter().all(|p| {
                st.log.chains.iter().any(|c| {
                    c.partition == *p
                        && c.members.contains(&me)
                        && c.local_len >= target.get(p).copied().unwrap_or(0)
                })
            })
        });
        if done {
            break Some(started.elapsed().as_secs_f64());
        }
        if Instant::now() > until {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let queue_full_drops = drops(infos).saturating_sub(drops_before);
    let pids = cluster.pids();
    let pid = pids[i];
    let senders_peak_rss_mib = (0..pids.len())
        .filter(|&k| k != i)
        .map(|k| rss(pids[k]).map_or(0.0, |r| r.1 as f64 / MIB))
        .collect();
    Ok(RefillReport {
        senders_peak_rss_mib,
        queue_full_drops,
        written_bytes,
        refill_s,
        refill_mb_per_s: refill_s.map(|s| written_bytes as f64 / 1e6 / s.max(1e-9)),
        peak_rss_mib: rss(pid).map_or(0.0, |r| r.1 as f64 / MIB),
    })
}

/// Start one more node (it joins on its own) while writers write
/// `--rebalance-write-mib` through the others, and time the move.
fn rebalance_phase(
    rt: &tokio::runtime::Runtime,
    cluster: &mut Cluster,
    infos: &[NodeInfo],
    exe: &Path,
    a: &StorageArgs,
) -> Result<RebalanceReport, String> {
    let seed = format!("{}/p2p/{}", infos[0].listen_addrs[0], infos[0].peer_id);
    if !a.json {
        println!(
            "rebalance: start node {} (it joins on its own) while writing {} MiB",
            infos.len(),
            a.rebalance_write_mib
        );
    }
    let acked = Arc::new(AtomicU64::new(0));
    let stop = Arc::new(AtomicBool::new(false));
    // Writers go on until the move is over (or this much was written).
    let total = (a.rebalance_write_mib * 1024 * 1024).div_ceil(a.record_bytes as u64);
    let writing_from = Instant::now();
    let writer = {
        let (infos, a, acked, stop) = (infos.to_vec(), a.clone(), acked.clone(), stop.clone());
        std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| e.to_string())?;
            let r = write_phase(&rt, &infos, &a, total, &acked, &stop);
            Ok::<_, String>((r?, Instant::now()))
        })
    };
    let _ = rt;
    let (started, info) = cluster.add(exe, &seed, Duration::from_secs(60))?;
    let me = info.peer_id.clone();
    let client =
        shen_client::ShenClient::new(info.admin.clone()).with_timeout(Duration::from_secs(2));
    let until = started + Duration::from_secs(300);
    let mut last = None;
    let rebalance_s = loop {
        if let Ok(st) = client.status() {
            let rf = st.log.rf.unwrap_or(3);
            let member = st.log.members.contains(&me);
            let full = !st.log.chains.is_empty()
                && st
                    .log
                    .chains
                    .iter()
                    .all(|c| c.members.len() == rf && c.learners.is_empty());
            let gained = st.log.chains.iter().any(|c| c.members.contains(&me));
            if member && full && gained {
                last = Some(st);
                break Some(started.elapsed().as_secs_f64());
            }
        }
        if Instant::now() > until {
            break None;
        }
        std::thread::sleep(Duration::from_millis(100));
    };
    let moved_at = Instant::now();
    let written_during = acked.load(Ordering::Relaxed);
    stop.store(true, Ordering::Relaxed);
    // The rate over the time the writers wrote while partitions moved (up
    // to the end of the move, or their end if they ran out first).
    let writers_end = match writer.join() {
        Ok(Ok((_, end))) => end.min(moved_at),
        _ => moved_at,
    };
    let during_s = writers_end
        .saturating_duration_since(writing_from)
        .as_secs_f64();
    let st = match last {
        Some(st) => st,
        None => client.status().map_err(|e| e.to_string())?,
    };
    let mine: Vec<_> = st
        .log
        .chains
        .iter()
        .filter(|c| c.members.contains(&me))
        .collect();
    let moved_bytes: u64 = mine.iter().map(|c| c.held_bytes).sum();
    Ok(RebalanceReport {
        partitions_gained: mine.len() as u32,
        moved_bytes,
        rebalance_s,
        moved_mb_per_s: rebalance_s.map(|s| moved_bytes as f64 / 1e6 / s.max(1e-9)),
        write_mb_per_s_during: written_during as f64 / 1e6 / during_s.max(1e-9),
    })
}

/// Run `shen bench storage`.
pub fn run(a: StorageArgs) -> ExitCode {
    if a.nodes < 1 || a.nodes > 7 {
        eprintln!("error: --nodes must be between 1 and 7");
        return ExitCode::from(2);
    }
    if a.record_bytes == 0 || a.record_bytes > 512 * 1024 {
        eprintln!("error: --record-bytes must be between 1 and 524288");
        return ExitCode::from(2);
    }
    if a.total_mib == 0 || a.total_mib > 64 * 1024 {
        eprintln!("error: --total-mib must be between 1 and 65536");
        return ExitCode::from(2);
    }
    if a.refill_mib > 64 * 1024 {
        eprintln!("error: --refill-mib must be at most 65536");
        return ExitCode::from(2);
    }
    if a.concurrency == 0 || a.concurrency > 4096 {
        eprintln!("error: --concurrency must be between 1 and 4096");
        return ExitCode::from(2);
    }
    if cfg!(debug_assertions) && !a.json {
        eprintln!("note: a debug build; build with --release for meaningful figures");
    }
    let exe = match std::env::current_exe() {
        Ok(e) => e,
        Err(e) => {
            eprintln!("error: cannot find the shen binary: {e}");
            return ExitCode::FAILURE;
        }
    };
    match measure(&a, &exe) {
        Ok(r) => {
            if a.json {
                match serde_json::to_string_pretty(&r) {
                    Ok(t) => println!("{t}"),
                    Err(e) => {
                        eprintln!("error: {e}");
                        return ExitCode::FAILURE;
                    }
                }
            } else {
                print_report(&r);
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn measure(a: &StorageArgs, exe: &Path) -> Result<StorageReport, String> {
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .map_err(|e| format!("cannot start the runtime: {e}"))?;
    let root = tempfile::Builder::new()
        .prefix("shen-bench-storage-")
        .tempdir()
        .map_err(|e| format!("temporary directory: {e}"))?
        .keep();
    let node_args: Vec<String> = a
        .rebalance_bytes_per_sec
        .map(|r| vec!["--rebalance-bytes-per-sec".into(), r.to_string()])
        .unwrap_or_default();
    let (mut cluster, mut infos) = start_cluster(exe, a.nodes, &root, true, 60, &node_args)?;
    let total_bytes = a.total_mib * 1024 * 1024;
    let total = total_bytes.div_ceil(a.record_bytes as u64);
    if !a.json {
        println!(
            "shen bench storage: {} nodes on loopback, {} MiB of {}-byte records, {} writers",
            a.nodes, a.total_mib, a.record_bytes, a.concurrency
        );
    }
    // Memory sampler (progress too); the peak comes from VmHWM.
    let acked = Arc::new(AtomicU64::new(0));
    let done = Arc::new(AtomicBool::new(false));
    let pids = cluster.pids();
    let sampled: Arc<Mutex<Vec<u64>>> = Arc::new(Mutex::new(vec![0; pids.len()]));
    let sampler = {
        let (acked, done, sampled, pids) =
            (acked.clone(), done.clone(), sampled.clone(), pids.clone());
        let quiet = a.json;
        std::thread::spawn(move || {
            let t0 = Instant::now();
            let mut last_print = Instant::now();
            while !done.load(Ordering::Relaxed) {
                for (k, pid) in pids.iter().enumerate() {
                    if let Some((now, _)) = rss(*pid) {
                        if let Ok(mut s) = sampled.lock() {
                            s[k] = s[k].max(now);
                        }
                    }
                }
                if !quiet && last_print.elapsed() >= Duration::from_secs(10) {
                    last_print = Instant::now();
                    let b = acked.load(Ordering::Relaxed) as f64;
                    let rss: Vec<String> = pids
                        .iter()
                        .map(|p| rss(*p).map_or("-".into(), |r| format!("{:.0}", r.0 as f64 / MIB)))
                        .collect();
                    println!(
                        "  {:>6.0} MiB written in {:>5.1} s ({:.1} MB/s), RSS MiB now: {}",
                        b / MIB,
                        t0.elapsed().as_secs_f64(),
                        b / 1e6 / t0.elapsed().as_secs_f64(),
                        rss.join(" / ")
                    );
                }
                std::thread::sleep(Duration::from_millis(250));
            }
        })
    };
    let t0 = Instant::now();
    let errors = write_phase(&rt, &infos, a, total, &acked, &Arc::default());
    let write_s = t0.elapsed().as_secs_f64();
    done.store(true, Ordering::Relaxed);
    let _ = sampler.join();
    let write_errors = errors?;
    let written = acked.load(Ordering::Relaxed);
    if written < total * a.record_bytes as u64 {
        return Err(format!(
            "only {written} of {} bytes were acknowledged within the time bound",
            total * a.record_bytes as u64
        ));
    }
    let peak_rss_mib: Vec<f64> = pids
        .iter()
        .map(|p| rss(*p).map_or(0.0, |r| r.1 as f64 / MIB))
        .collect();
    let disk_mib: Vec<f64> = cluster
        .dirs()
        .iter()
        .map(|d| dir_bytes(d) as f64 / MIB)
        .collect();
    // Restart the last node (not the seed the others were given).
    let restarted = infos.len() - 1;
    let (restart_admin_s, restart_recovered_s, restart_serving_s, restart_peak_rss_mib) =
        restart_phase(&mut cluster, &mut infos, exe, restarted)?;
    // Read the largest partition back through its tail.
    let (p, tail, end) = largest_partition(&infos)?;
    // Three times; the median counts (one read of ~30 MiB takes ~0.15 s,
    // so one sample moves with whatever else the machine does meanwhile).
    let mut times = Vec::new();
    let (mut read_records, mut read_bytes) = (0, 0);
    for _ in 0..READ_SAMPLES {
        let t1 = Instant::now();
        (read_records, read_bytes) = rt.block_on(read_back(&infos[tail].admin, p, end))?;
        times.push(t1.elapsed().as_secs_f64());
    }
    times.sort_by(f64::total_cmp);
    let read_s = times[times.len() / 2];
    let refill = if a.refill_mib > 0 && a.nodes > 1 {
        Some(refill_phase(
            &rt,
            &mut cluster,
            &mut infos,
            exe,
            a,
            restarted,
        )?)
    } else {
        None
    };
    let rebalance = if a.rebalance_write_mib > 0 {
        Some(rebalance_phase(&rt, &mut cluster, &infos, exe, a)?)
    } else {
        None
    };
    drop(cluster);
    Ok(StorageReport {
        nodes: a.nodes,
        record_bytes: a.record_bytes,
        written_bytes: written,
        write_s,
        write_mb_per_s: written as f64 / 1e6 / write_s,
        write_errors,
        peak_rss_mib,
        disk_mib,
        restarted,
        restart_admin_s,
        restart_recovered_s,
        restart_serving_s,
        restart_peak_rss_mib,
        read_partition: p,
        read_records,
        read_bytes,
        read_s,
        read_mb_per_s: read_bytes as f64 / 1e6 / read_s.max(1e-9),
        refill,
        rebalance,
    })
}

fn print_report(r: &StorageReport) {
    let peak = r.peak_rss_mib.iter().copied().fold(0.0, f64::max);
    let verdict = |ok: bool| if ok { "meets" } else { "MISSES" };
    println!(
        "write: {:.0} MiB acknowledged in {:.1} s ({:.1} MB/s, {} error answers retried)",
        r.written_bytes as f64 / MIB,
        r.write_s,
        r.write_mb_per_s,
        r.write_errors
    );
    println!(
        "peak RSS per node (VmHWM): {} MiB — {} the 256 MiB target",
        r.peak_rss_mib
            .iter()
            .map(|m| format!("{m:.0}"))
            .collect::<Vec<_>>()
            .join(" / "),
        verdict(peak < 256.0)
    );
    println!(
        "on disk per node: {} MiB",
        r.disk_mib
            .iter()
            .map(|m| format!("{m:.0}"))
            .collect::<Vec<_>>()
            .join(" / ")
    );
    match r.restart_serving_s {
        Some(s) => println!(
            "restart of node {} (kill -9): admin API in {:.2} s, log rebuilt in {:.2} s, serving reads in {:.2} s — {} the 3 s target; peak RSS after it {:.0} MiB",
            r.restarted,
            r.restart_admin_s,
            r.restart_recovered_s,
            s,
            verdict(s <= 3.0),
            r.restart_peak_rss_mib
        ),
        None => println!(
            "restart of node {} (kill -9): admin API in {:.2} s, log rebuilt in {:.2} s, NOT serving reads within 60 s",
            r.restarted, r.restart_admin_s, r.restart_recovered_s
        ),
    }
    println!(
        "read partition {} from offset 0: {} records, {:.0} MiB in {:.2} s ({:.0} MB/s) — {} the 200 MB/s target",
        r.read_partition,
        r.read_records,
        r.read_bytes as f64 / MIB,
        r.read_s,
        r.read_mb_per_s,
        verdict(r.read_mb_per_s >= 200.0)
    );
    if let Some(f) = &r.refill {
        match (f.refill_s, f.refill_mb_per_s) {
            (Some(s), Some(rate)) => println!(
                "refill of node {} after {:.0} MiB written while it was down: {:.2} s ({:.1} MB/s); peak RSS after it {:.0} MiB (the nodes feeding it: {} MiB); {} messages dropped for full queues",
                r.restarted,
                f.written_bytes as f64 / MIB,
                s,
                rate,
                f.peak_rss_mib,
                f.senders_peak_rss_mib
                    .iter()
                    .map(|m| format!("{m:.0}"))
                    .collect::<Vec<_>>()
                    .join(" / "),
                f.queue_full_drops
            ),
            _ => println!(
                "refill of node {} after {:.0} MiB written while it was down: NOT refilled within 300 s",
                r.restarted,
                f.written_bytes as f64 / MIB
            ),
        }
    }
    if let Some(b) = &r.rebalance {
        match (b.rebalance_s, b.moved_mb_per_s) {
            (Some(t), Some(mbps)) => println!(
                "rebalance to a new node: {} partitions ({:.1} MiB) moved in {:.2} s ({:.1} MB/s); writes meanwhile {:.1} MB/s (write phase: {:.1} MB/s, {:.0}%)",
                b.partitions_gained,
                b.moved_bytes as f64 / MIB,
                t,
                mbps,
                b.write_mb_per_s_during,
                r.write_mb_per_s,
                100.0 * b.write_mb_per_s_during / r.write_mb_per_s.max(1e-9)
            ),
            _ => println!(
                "rebalance to a new node: NOT settled within 300 s ({} partitions there)",
                b.partitions_gained
            ),
        }
    }
}
