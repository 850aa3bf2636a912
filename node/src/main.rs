//! `shen`: the Shen command-line tool — cluster nodes, the log's client commands, the simulator and Ankh ring statistics.

use std::process::ExitCode;

use clap::{Args, Parser, Subcommand};
use shen_node::cli;
use shen_node::cli::ring_stats::{render, ring_stats, RingStatsParams};
use shen_node::cli::write_stdout;

/// mimalloc: the admin path allocates per request (hyper, axum, JSON), and
/// glibc's malloc spent a sixth of that path's CPU under load.
#[global_allocator]
static ALLOC: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// How long mimalloc keeps freed memory before returning it to the OS, in
/// ms. Its default (1 s) kept up to 80 MiB of freed record buffers resident
/// on a node being refilled at 50 MB/s, past the 256 MiB bound of issue 16;
/// 10 ms (mimalloc 2's default) cost no measurable throughput in
/// `shen bench` (BENCHMARKS.md). `MIMALLOC_PURGE_DELAY` still overrides it.
const PURGE_DELAY_MS: std::ffi::c_long = 10;

/// `mi_option_purge_delay` of mimalloc.h, which the bindings lack: the
/// option just before `mi_option_use_numa_nodes`.
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t =
    libmimalloc_sys::mi_option_use_numa_nodes - 1;

fn tune_allocator() {
    if std::env::var_os("MIMALLOC_PURGE_DELAY").is_none() {
        // SAFETY: `mi_option_set` only stores an option value (atomically);
        // it has no preconditions and may be called at any time.
        unsafe { libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS) };
    }
}

/// Shen: ring patterns for distributed systems.
#[derive(Parser, Debug)]
#[command(name = "shen", version, about, long_about = None)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Ankh Ring (consistent hashing) tools.
    Ring {
        #[command(subcommand)]
        cmd: RingCommand,
    },
    /// Run scenarios in the deterministic simulator.
    Sim {
        #[command(subcommand)]
        cmd: cli::sim::SimCommand,
    },
    /// Run one cluster node over libp2p (mDNS + Kademlia discovery, admin
    /// HTTP on 127.0.0.1). SIGINT/SIGTERM: leave gracefully and exit 0.
    Run(shen_node::daemon::RunArgs),
    /// Start a local cluster of N node processes on loopback; Ctrl-C stops it.
    Up(cli::up::UpArgs),
    /// Show a running node's members, health, ring ownership, chains and
    /// epochs.
    Status(cli::status::StatusArgs),
    /// Measure append throughput and latency of a local cluster, and of a
    /// local etcd cluster with the same workload if etcd is installed.
    Bench(cli::bench::BenchArgs),
    /// Append a record to the replicated log through a running node.
    Append(cli::log::AppendArgs),
    /// Append several records atomically (all or none) through a running
    /// node: `shen txn KEY VALUE [KEY VALUE]...`.
    Txn(cli::log::TxnArgs),
    /// Read committed records of a log partition through a running node.
    Read(cli::log::ReadArgs),
    /// Follow a log partition (like `tail -f`) through a running node.
    Tail(cli::log::TailArgs),
    /// Serve the browser simulator (wasm-viz/www) on 127.0.0.1.
    Viz(cli::viz::VizArgs),
    /// Show the log's member set (`list`), or add or remove a member,
    /// through a running node.
    Member(cli::member::MemberArgs),
    /// Decommission a running node: its partitions move away, then it
    /// leaves the log's member set; exits 0 once it is out.
    Leave(cli::member::LeaveArgs),
}

#[derive(Subcommand, Debug)]
enum RingCommand {
    /// Measure balance, keys moved on join/leave, and lookup speed.
    Stats(StatsArgs),
}

#[derive(Args, Debug)]
struct StatsArgs {
    /// Physical nodes on the ring.
    #[arg(long, default_value_t = 100, allow_hyphen_values = true)]
    nodes: u32,
    /// Virtual nodes per physical node.
    #[arg(long, default_value_t = 160, allow_hyphen_values = true)]
    vnodes: u32,
    /// Random keys to place.
    #[arg(long, default_value_t = 1_000_000, allow_hyphen_values = true)]
    keys: u64,
    /// Replication factor (distinct nodes per key).
    #[arg(long, default_value_t = 3, allow_hyphen_values = true)]
    rf: usize,
    /// Seed for node ids and keys (same seed, same report).
    #[arg(long, default_value_t = 1, allow_hyphen_values = true)]
    seed: u64,
    /// Vnode salts tried per join (1 = plain random vnode placement).
    #[arg(long, default_value_t = 16, allow_hyphen_values = true)]
    salt_candidates: u32,
    /// Print the report as JSON (stable field names; see README).
    #[arg(long)]
    json: bool,
}

use cli::EXIT_USAGE;

fn main() -> ExitCode {
    tune_allocator();
    let cli = match Cli::try_parse() {
        Ok(c) => c,
        Err(e) => {
            use clap::error::ErrorKind;
            if matches!(e.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion)
                || matches!(
                    e.kind(),
                    ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand
                )
            {
                let _ = e.print();
                return if e.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
                    ExitCode::from(EXIT_USAGE)
                } else {
                    ExitCode::SUCCESS
                };
            }
            // One line, naming the flag; clap's hint lines are dropped.
            let text = e.to_string();
            let first = text.lines().next().unwrap_or("error: invalid arguments");
            eprintln!("{first}");
            return ExitCode::from(EXIT_USAGE);
        }
    };
    match cli.command {
        Command::Sim { cmd } => cli::sim::run(cmd),
        Command::Run(a) => cli::run::run(a),
        Command::Up(a) => cli::up::run(a),
        Command::Status(a) => cli::status::run(a),
        Command::Bench(a) => cli::bench::run(a),
        Command::Append(a) => cli::log::append(a),
        Command::Txn(a) => cli::log::txn(a),
        Command::Read(a) => cli::log::read(a),
        Command::Tail(a) => cli::log::tail(a),
        Command::Viz(a) => cli::viz::run(a),
        Command::Member(a) => cli::member::member(a),
        Command::Leave(a) => cli::member::leave(a),
        Command::Ring {
            cmd: RingCommand::Stats(a),
        } => {
            let params = RingStatsParams {
                nodes: a.nodes,
                vnodes: a.vnodes,
                keys: a.keys,
                rf: a.rf,
                seed: a.seed,
                salt_candidates: a.salt_candidates,
            };
            match ring_stats(&params) {
                Ok(s) if a.json => match serde_json::to_string_pretty(&s) {
                    Ok(j) => write_stdout(&(j + "\n")),
                    Err(e) => {
                        eprintln!("error: cannot encode report: {e}");
                        ExitCode::FAILURE
                    }
                },
                Ok(s) => write_stdout(&render(&s)),
                Err(e) => {
                    eprintln!("error: {e}");
                    ExitCode::from(EXIT_USAGE)
                }
            }
        }
    }
}
